"""Root mean square layer normalization (Zhang and Sennrich, 2019)."""

import numbers

import keras
from keras import ops

# The mean of squares is computed in at least this dtype: in float16 a
# feature of magnitude 256 already squares to infinity.
STATISTIC_DTYPE = "float32"


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="keras_attention")
class RMSNormalization(keras.layers.Layer):
    """Root mean square normalization with a learned scale.

    Divides the inputs by the root mean square of their features and
    multiplies by a learned `scale`:
    `y = x / sqrt(mean(x^2, axis) + epsilon) * scale`. Unlike layer
    normalization it neither subtracts the mean nor adds an offset. The
    weight is the plain multiplier `scale` (initialized to ones): the same
    weight, computation and default `epsilon` as
    `keras.layers.RMSNormalization`, so weights copy between the two. The
    statistic is computed in float32 whatever the compute dtype (under
    `mixed_float16` large activations would otherwise square to infinity)
    and the result is cast to the compute dtype. The implicit Keras mask of
    the input is passed on unchanged; with the default `axis=-1` every
    position is normalized on its own, so padded positions never affect the
    others.

    Args:
        axis: int or list of ints, the axes to normalize (and the shape of
            `scale`). Defaults to `-1`.
        epsilon: positive float added to the mean of squares. Defaults to
            `1e-6`.
        scale_initializer: initializer of `scale`. Defaults to `"ones"`.
        scale_regularizer: optional regularizer of `scale`. Defaults to
            `None`.
        scale_constraint: optional constraint of `scale`. Defaults to
            `None`.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: a tensor of any rank, e.g. `(batch, seq_len, features)`.

    Returns:
        The normalized tensor, with the shape of `inputs`, in the compute
        dtype.

    Example:

    >>> norm = RMSNormalization()
    >>> y = norm(keras.random.normal((2, 5, 16)))
    >>> y.shape
    TensorShape([2, 5, 16])
    >>> tuple(norm.scale.shape)
    (16,)

    References:
        - [Zhang and Sennrich, 2019](https://arxiv.org/abs/1910.07467)
    """

    def __init__(
        self,
        axis=-1,
        epsilon=1e-6,
        scale_initializer="ones",
        scale_regularizer=None,
        scale_constraint=None,
        **kwargs,
    ):
        if isinstance(axis, (list, tuple)) and axis and all(map(_is_int, axis)):
            axis = [int(a) for a in axis]
        elif _is_int(axis):
            axis = int(axis)
        else:
            raise ValueError(
                "`axis` must be an int or a non-empty list of ints. "
                f"Received: axis={axis!r}"
            )
        if (
            not isinstance(epsilon, numbers.Real)
            or isinstance(epsilon, bool)
            or not epsilon > 0
        ):
            raise ValueError(
                "`epsilon` must be a positive float. "
                f"Received: epsilon={epsilon!r}"
            )
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = float(epsilon)
        self.scale_initializer = keras.initializers.get(scale_initializer)
        self.scale_regularizer = keras.regularizers.get(scale_regularizer)
        self.scale_constraint = keras.constraints.get(scale_constraint)
        self.supports_masking = True

    def _axes(self, input_shape):
        """The normalized axes as sorted non-negative ints; raise if invalid."""
        rank = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for axis in axes:
            if not -rank <= axis < rank:
                raise ValueError(
                    f"`axis` is out of range for inputs of rank {rank}. "
                    f"Received: axis={self.axis}, "
                    f"inputs.shape={tuple(input_shape)}"
                )
        normalized = sorted(axis % rank for axis in axes)
        if len(set(normalized)) != len(normalized):
            raise ValueError(
                "`axis` must not name one axis twice. "
                f"Received: axis={self.axis}, inputs.shape={tuple(input_shape)}"
            )
        return normalized

    def build(self, input_shape):
        axes = self._axes(input_shape)
        shape = tuple(input_shape[axis] for axis in axes)
        if any(dim is None for dim in shape):
            raise ValueError(
                "The normalized axes of the inputs must have known sizes. "
                f"Received: axis={self.axis}, inputs.shape={tuple(input_shape)}"
            )
        self.scale = self.add_weight(
            name="scale",
            shape=shape,
            initializer=self.scale_initializer,
            regularizer=self.scale_regularizer,
            constraint=self.scale_constraint,
        )  # (normalized dims,)

    def call(self, inputs):
        rank = len(inputs.shape)
        axes = self._axes(inputs.shape)
        dtype = keras.backend.result_type(inputs.dtype, STATISTIC_DTYPE)
        x = ops.cast(inputs, dtype)  # (..., features)
        mean_square = ops.mean(ops.square(x), axis=axes, keepdims=True)
        normalized = x * ops.rsqrt(mean_square + self.epsilon)
        # `scale` holds the normalized dims only; give it the rank of x.
        scale_shape = [1] * rank
        for axis, size in zip(axes, self.scale.shape):
            scale_shape[axis] = size
        scale = ops.reshape(ops.cast(self.scale, dtype), scale_shape)
        return ops.cast(normalized * scale, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        self._axes(input_shape)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "epsilon": self.epsilon,
                "scale_initializer": keras.initializers.serialize(
                    self.scale_initializer
                ),
                "scale_regularizer": keras.regularizers.serialize(
                    self.scale_regularizer
                ),
                "scale_constraint": keras.constraints.serialize(
                    self.scale_constraint
                ),
            }
        )
        return config
