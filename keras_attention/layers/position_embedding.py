"""Learned position embeddings."""

import keras
from keras import ops

from keras_attention.layers._utils import check_positive_int
from keras_attention.layers._utils import clone_initializer
from keras_attention.ops.runtime_checks import check_then


@keras.saving.register_keras_serializable(package="keras_attention")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embeddings, one trainable vector per position.

    The layer holds a `(sequence_length, d)` table and returns the rows of
    positions `start_index .. start_index + seq_len - 1`, broadcast to the
    shape of the input. Add the result to the token embeddings. The sequence
    may be shorter than the table, never longer: a too long sequence raises
    a `ValueError` when its length is known when the layer is traced or
    called eagerly, and an `InvalidArgumentError` with the same message when
    a TensorFlow graph runs otherwise. (XLA drops run-time assertions: a
    compiled function fails on the slice instead, with a shorter message.)
    The implicit Keras mask of the input is passed on.

    Args:
        sequence_length: positive int, the number of positions in the table,
            the longest sequence the layer accepts.
        initializer: initializer of the table. Defaults to
            `"glorot_uniform"`.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: `(batch, seq_len, d)` tensor, usually the token embeddings
            (any rank >= 2 with the sequence on axis -2 and the features on
            axis -1). Only its shape is used.
        start_index: int or scalar integer tensor, the position of the first
            element of the sequence. Defaults to `0`.

    Returns:
        The position embeddings, with the shape of `inputs`, in the compute
        dtype.

    Add the result to the inputs with `keras.layers.Add()`, which keeps
    their padding mask (e.g. from `Embedding(mask_zero=True)`); the `+`
    operator drops Keras masks.

    Example:

    >>> embeddings = keras.random.normal((2, 10, 16))
    >>> positions = PositionEmbedding(sequence_length=32)(embeddings)
    >>> keras.layers.Add()([embeddings, positions]).shape
    TensorShape([2, 10, 16])

    References:
        - [Gehring et al., 2017](https://arxiv.org/abs/1705.03122)
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        sequence_length = check_positive_int("sequence_length", sequence_length)
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        if len(inputs_shape) < 2 or inputs_shape[-1] is None:
            raise ValueError(
                "`inputs` must have rank >= 2, (..., seq_len, d), with a "
                f"known last axis. Received: inputs.shape={inputs_shape}"
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=clone_initializer(self.initializer),
        )
        self.built = True

    def _too_long_message(self, length, start_index):
        return (
            "The input sequence does not fit in the position table: "
            "`start_index + seq_len` must be at most `sequence_length`. "
            f"Received: seq_len={length}, start_index={start_index}, "
            f"sequence_length={self.sequence_length}"
        )

    def _checked_table(self, static_length, length, start_index):
        """The position table, once the positions are checked to fit in it.

        Positions known from static shapes and Python ints raise a
        `ValueError` now; the others are checked by `check_then`.
        """
        table = ops.cast(self.embeddings, self.compute_dtype)
        static_start = start_index if isinstance(start_index, int) else "?"
        if static_length is not None and static_length > self.sequence_length:
            raise ValueError(
                self._too_long_message(static_length, static_start)
            )
        if static_length is not None and isinstance(start_index, int):
            if start_index < 0 or start_index + static_length > (
                self.sequence_length
            ):
                raise ValueError(
                    self._too_long_message(static_length, start_index)
                )
            return table
        start_index = ops.cast(start_index, "int32")
        length = ops.cast(length, "int32")
        fits = ops.logical_and(
            start_index >= 0, start_index + length <= self.sequence_length
        )
        # Constant strings and the tensors themselves, not a formatted
        # string: XLA compiles (and skips) such an assertion, while string
        # formatting ops would stop `jit_compile=True` decoding.
        head, _, _ = self._too_long_message("", "").partition("Received:")
        return check_then(
            table,
            fits,
            [
                head + "Received: seq_len=",
                length,
                ", start_index=",
                start_index,
                f", sequence_length={self.sequence_length}",
            ],
        )

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length, depth = shape[-2], shape[-1]
        table = self._checked_table(inputs.shape[-2], length, start_index)
        # (seq_len, d)
        embeddings = ops.slice(table, (start_index, 0), (length, depth))
        return ops.broadcast_to(embeddings, shape)  # (..., seq_len, d)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
