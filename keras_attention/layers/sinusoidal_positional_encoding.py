"""Fixed sinusoidal positional encoding (Vaswani et al., 2017)."""

import keras
from keras import ops

# Angles are computed in this dtype whatever the compute dtype: in float16
# the positions past 2048 are no longer exact integers.
ANGLE_DTYPE = "float32"


@keras.saving.register_keras_serializable(package="keras_attention")
class SinusoidalPositionalEncoding(keras.layers.Layer):
    """Fixed sinusoidal positional encoding of the Transformer.

    Returns, for every position `pos` of the input sequence and every
    feature `j` of its `d` features,
    `PE(pos, 2i) = sin(pos / max_wavelength^(2i / d))` and
    `PE(pos, 2i + 1) = cos(pos / max_wavelength^(2i / d))`, broadcast to the
    shape of the input. Add the result to the token embeddings. The encoding
    has no weights and works for any sequence length; `start_index` shifts
    the positions, for decoding one token at a time. With an odd `d` the last
    feature is a sine. Angles are computed in float32 and the result is cast
    to the compute dtype. The implicit Keras mask of the input is passed on.

    Args:
        max_wavelength: positive number, the longest wavelength of the
            sines and cosines. Defaults to `10000`.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: `(batch, seq_len, d)` tensor, usually the token embeddings
            (any rank >= 2 with the sequence on axis -2 and the features on
            axis -1). Only its shape is used.
        start_index: int or scalar integer tensor, the position of the first
            element of the sequence. Defaults to `0`.

    Returns:
        The encoding, with the shape of `inputs`, in the compute dtype.

    Add the result to the inputs with `keras.layers.Add()`, which keeps
    their padding mask (e.g. from `Embedding(mask_zero=True)`); the `+`
    operator drops Keras masks.

    Example:

    >>> embeddings = keras.random.normal((2, 10, 16))
    >>> encoding = SinusoidalPositionalEncoding()(embeddings)
    >>> keras.layers.Add()([embeddings, encoding]).shape
    TensorShape([2, 10, 16])

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        if not max_wavelength > 0:
            raise ValueError(
                "`max_wavelength` must be positive. "
                f"Received: max_wavelength={max_wavelength}"
            )
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength
        self.supports_masking = True
        self.built = True

    def call(self, inputs, start_index=0):
        if len(inputs.shape) < 2:
            raise ValueError(
                "`inputs` must have rank >= 2, (..., seq_len, d). "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )
        shape = ops.shape(inputs)
        seq_len, depth = shape[-2], shape[-1]
        positions = ops.cast(ops.arange(seq_len), ANGLE_DTYPE) + ops.cast(
            start_index, ANGLE_DTYPE
        )  # (seq_len,)
        features = ops.arange(depth)  # (d,)
        # Features 2i and 2i + 1 share the frequency max_wavelength^(-2i/d).
        exponents = ops.cast(2 * (features // 2), ANGLE_DTYPE) / ops.cast(
            depth, ANGLE_DTYPE
        )  # (d,)
        frequencies = ops.power(
            ops.cast(self.max_wavelength, ANGLE_DTYPE), -exponents
        )  # (d,)
        angles = ops.expand_dims(positions, 1) * frequencies  # (seq_len, d)
        encoding = ops.where(
            ops.equal(features % 2, 0), ops.sin(angles), ops.cos(angles)
        )  # (seq_len, d)
        encoding = ops.cast(encoding, self.compute_dtype)
        return ops.broadcast_to(encoding, shape)  # (..., seq_len, d)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength})
        return config
