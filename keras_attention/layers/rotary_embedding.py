"""Rotary position embedding, RoPE (Su et al., 2021)."""

import numbers

import keras
from keras import ops

# Positions, angles and the rotation are computed in at least this dtype
# whatever the compute dtype: in float16 the positions past 2048 are no
# longer exact integers.
ANGLE_DTYPE = "float32"


def _positive_number(name, value):
    """`value` as a Python int or float; raise unless a positive number."""
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not value > 0
    ):
        raise ValueError(
            f"`{name}` must be a positive number. Received: {name}={value!r}"
        )
    return int(value) if isinstance(value, numbers.Integral) else float(value)


@keras.saving.register_keras_serializable(package="keras_attention")
class RotaryEmbedding(keras.layers.Layer):
    """Rotary position embedding: rotates feature pairs by their position.

    For the token at position `p` (counted from `start_index`, or read from
    `positions`) and each of the `d / 2` frequencies
    `w_i = max_wavelength^(-2i / d)`, the features `x[i]` and `x[i + d/2]`
    (the first half of the feature axis paired with the second half, the
    "rotate-half" layout of GPT-NeoX, Llama and
    `keras_hub.layers.RotaryEmbedding`) are rotated by the angle
    `theta = (p / scaling_factor) * w_i`:
    `y[i] = x[i] cos(theta) - x[i + d/2] sin(theta)` and
    `y[i + d/2] = x[i + d/2] cos(theta) + x[i] sin(theta)`.
    Apply it to the queries and the keys (not the values) before attention:
    the dot product of a query rotated at position `m` and a key rotated at
    position `n` then depends on their positions only through `m - n`. The
    layer has no weights and works for any sequence length. Angles and the
    rotation are computed in float32 and the result is cast to the compute
    dtype. The implicit Keras mask of the input is passed on; the positions
    of padded tokens are rotated like any other.

    Args:
        max_wavelength: positive number, the longest wavelength of the
            rotations. Defaults to `10000`.
        scaling_factor: positive number that positions are divided by
            (linear position interpolation, to stretch a model to longer
            sequences). Defaults to `1.0`.
        sequence_axis: int, the sequence axis of the inputs. Defaults to
            `1`.
        feature_axis: int, the feature axis of the inputs, whose size must
            be known and even. Defaults to `-1`.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: a tensor with the batch on axis 0, e.g. queries or keys
            `(batch, seq_len, num_heads, head_dim)` or
            `(batch, seq_len, features)`.
        start_index: int or scalar integer tensor, the position of the first
            element of the sequence, e.g. the cache update index when
            decoding one token at a time. Defaults to `0`.
        positions: optional integer tensor `(batch, seq_len)` or
            `(seq_len,)`, the position of every token (e.g. counted from the
            first real token of a left-padded prompt). When given,
            `start_index` must be left at `0`. Defaults to `None`.

    Returns:
        The rotated tensor, with the shape of `inputs`, in the compute dtype.

    Example:

    >>> rope = RotaryEmbedding()
    >>> query = keras.random.normal((2, 10, 4, 16))  # (batch, seq, heads, dim)
    >>> rope(query).shape
    TensorShape([2, 10, 4, 16])
    >>> # One new token at position 10, during cached decoding:
    >>> rope(query[:, :1], start_index=10).shape
    TensorShape([2, 1, 4, 16])

    References:
        - [Su et al., 2021](https://arxiv.org/abs/2104.09864)
    """

    def __init__(
        self,
        max_wavelength=10000,
        scaling_factor=1.0,
        sequence_axis=1,
        feature_axis=-1,
        **kwargs,
    ):
        max_wavelength = _positive_number("max_wavelength", max_wavelength)
        scaling_factor = _positive_number("scaling_factor", scaling_factor)
        for name, value in (
            ("sequence_axis", sequence_axis),
            ("feature_axis", feature_axis),
        ):
            if not isinstance(value, numbers.Integral) or isinstance(
                value, bool
            ):
                raise ValueError(
                    f"`{name}` must be an int. Received: {name}={value!r}"
                )
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength
        self.scaling_factor = float(scaling_factor)
        self.sequence_axis = int(sequence_axis)
        self.feature_axis = int(feature_axis)
        self.supports_masking = True
        self.built = True

    def _axes(self, input_shape):
        """Non-negative sequence and feature axes; raise if invalid."""
        rank = len(input_shape)
        shape = tuple(input_shape)
        axes = []
        for name in ("sequence_axis", "feature_axis"):
            axis = getattr(self, name)
            if not -rank <= axis < rank or axis % rank == 0:
                raise ValueError(
                    f"`{name}` must name a non-batch axis of the inputs "
                    f"(axis 0 is the batch). Received: {name}={axis}, "
                    f"inputs.shape={shape}"
                )
            axes.append(axis % rank)
        if axes[0] == axes[1]:
            raise ValueError(
                "`sequence_axis` and `feature_axis` must differ. Received: "
                f"sequence_axis={self.sequence_axis}, "
                f"feature_axis={self.feature_axis}, inputs.shape={shape}"
            )
        depth = shape[axes[1]]
        if depth is None or depth % 2:
            raise ValueError(
                "`RotaryEmbedding` needs an even feature dimension. Received: "
                f"feature dimension {depth} (axis {self.feature_axis} of "
                f"inputs.shape={shape})"
            )
        return axes

    def _angles(self, seq_len, half_depth, start_index, positions):
        """Rotation angles `(batch or 1, seq_len, half_depth)`."""
        if positions is None:
            positions = ops.arange(seq_len, dtype=ANGLE_DTYPE) + ops.cast(
                start_index, ANGLE_DTYPE
            )  # (seq_len,)
        positions = ops.cast(positions, ANGLE_DTYPE)
        if len(positions.shape) == 1:
            positions = ops.expand_dims(positions, 0)  # (1, seq_len)
        positions = positions / self.scaling_factor
        # The exponent of pair i is 2i / d, with d = 2 * half_depth.
        exponents = ops.arange(half_depth, dtype=ANGLE_DTYPE) / float(
            half_depth
        )  # (half_depth,)
        inverse_frequencies = ops.power(
            ops.cast(self.max_wavelength, ANGLE_DTYPE), -exponents
        )  # (half_depth,)
        return ops.einsum("bs,f->bsf", positions, inverse_frequencies)

    def call(self, inputs, start_index=0, positions=None):
        if positions is not None and not (
            isinstance(start_index, numbers.Integral) and start_index == 0
        ):
            raise ValueError(
                "Pass either `start_index` or `positions`, not both. "
                f"Received: start_index={start_index}, positions.shape="
                f"{tuple(positions.shape)}"
            )
        if positions is not None and len(positions.shape) not in (1, 2):
            raise ValueError(
                "`positions` must have shape (batch, seq_len) or (seq_len,). "
                f"Received: positions.shape={tuple(positions.shape)}"
            )
        rank = len(inputs.shape)
        sequence_axis, feature_axis = self._axes(inputs.shape)
        half_depth = inputs.shape[feature_axis] // 2
        dtype = keras.backend.result_type(inputs.dtype, ANGLE_DTYPE)
        # Work in the layout (batch, seq_len, ..., features).
        x = ops.moveaxis(
            ops.cast(inputs, dtype), (sequence_axis, feature_axis), (1, -1)
        )  # (batch, seq_len, ..., d)
        angles = self._angles(
            ops.shape(x)[1], half_depth, start_index, positions
        )  # (batch or 1, seq_len, d / 2)
        for _ in range(rank - 3):  # one axis per other (e.g. heads) axis
            angles = ops.expand_dims(angles, 2)
        cos = ops.cast(ops.cos(angles), dtype)  # (batch, seq_len, ..., d / 2)
        sin = ops.cast(ops.sin(angles), dtype)
        first, second = ops.split(x, 2, axis=-1)  # (batch, seq_len, ..., d / 2)
        rotated = ops.concatenate(
            [first * cos - second * sin, second * cos + first * sin], axis=-1
        )  # (batch, seq_len, ..., d)
        rotated = ops.moveaxis(rotated, (1, -1), (sequence_axis, feature_axis))
        return ops.cast(rotated, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        self._axes(input_shape)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_wavelength": self.max_wavelength,
                "scaling_factor": self.scaling_factor,
                "sequence_axis": self.sequence_axis,
                "feature_axis": self.feature_axis,
            }
        )
        return config
