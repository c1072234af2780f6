"""The private base of the subword tokenizer layers: shapes and framing.

Both subword tokenizers (`WordPieceTokenizer`, `SentencePieceTokenizer`)
take the same inputs, frame ids the same way (`[START] ... [END]`, cut to
`sequence_length` keeping the end id, padded with the padding id), read
ids back the same way (up to the first end id, without padding and start
ids) and look tokens up the same way. Only the subword model in between
differs: each subclass sets `vocabulary`, `_token_to_id`, the four
special ids (`padding_id`, `oov_id`, `start_id`, `end_id`),
`sequence_length` and `add_start_end`, and defines `tokenize` and
`detokenize`.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_attention.text.wordpiece_vocabulary import check_string_tensor

ID_DTYPES = ("int32", "int64")


class SubwordTokenizer(keras.layers.Layer):
    """Token lookups, call and output shapes of a subword tokenizer layer."""

    def __init__(self, **kwargs):
        dtype = kwargs.pop("dtype", None) or "int32"
        if keras.dtype_policies.get(dtype).name not in ID_DTYPES:
            raise ValueError(
                f"`dtype` must be one of {ID_DTYPES} (the id dtype). "
                f"Received: dtype={dtype!r}"
            )
        super().__init__(dtype=dtype, **kwargs)

    def __call__(self, inputs, *args, **kwargs):
        # Keras only passes tensors positionally; accept Python strings and
        # NumPy string arrays too, as `tokenize` does.
        if not isinstance(inputs, (tf.Tensor, tf.RaggedTensor)) and not (
            isinstance(inputs, keras.KerasTensor)
        ):
            inputs = check_string_tensor(inputs)
        return super().__call__(inputs, *args, **kwargs)

    @property
    def vocabulary_size(self):
        """The number of ids, special tokens included."""
        return len(self.vocabulary)

    def get_vocabulary(self):
        """All tokens as a list of Python strings (the index is the id)."""
        return list(self.vocabulary)

    def id_to_token(self, id):
        """The token of an id.

        Args:
            id: a Python int, or an integer tensor (dense or ragged) of any
                shape.

        Returns:
            A Python string for an int; for a tensor, a string tensor of the
            same shape (out-of-range ids give the out-of-vocabulary token).
        """
        if isinstance(id, (int, np.integer)):
            if not 0 <= id < self.vocabulary_size:
                raise ValueError(
                    f"`id` must be in [0, {self.vocabulary_size}). "
                    f"Received: id={id}"
                )
            return self.vocabulary[id]
        if isinstance(id, tf.RaggedTensor):
            return id.with_flat_values(self.id_to_token(id.flat_values))
        ids = valid_ids(self, tf.convert_to_tensor(id))
        return tf.gather(tf.constant(self.vocabulary, tf.string), ids)

    def token_to_id(self, token):
        """The id of a token string (a `ValueError` if it is unknown)."""
        if token not in self._token_to_id:
            raise ValueError(
                f"The token is not in the vocabulary. Received: {token!r}"
            )
        return self._token_to_id[token]

    def call(self, inputs):
        return self.tokenize(inputs)

    def compute_output_shape(self, input_shape):
        batch_shape = tuple(input_shape)
        if len(batch_shape) == 2 and batch_shape[-1] == 1:
            batch_shape = batch_shape[:1]
        return batch_shape + (self.sequence_length,)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape),
            dtype=self.compute_dtype,
            ragged=self.sequence_length is None,
        )


def batch_of_texts(inputs):
    """`(texts (batch,), scalar)` from a scalar, `(batch,)` or `(batch, 1)`.

    Raises:
        ValueError: for non-strings or another shape.
    """
    texts = check_string_tensor(inputs)
    rank = texts.shape.rank
    if rank == 2 and texts.shape[-1] == 1:
        texts = tf.squeeze(texts, axis=-1)  # (batch,)
    elif rank not in (0, 1):
        raise ValueError(
            "`inputs` must be a scalar, `(batch,)` or `(batch, 1)` "
            f"strings. Received: shape={texts.shape}"
        )
    scalar = rank == 0
    if scalar:
        texts = texts[tf.newaxis]  # (1,)
    return texts, scalar


def frame_ids(tokenizer, ids):
    """`(batch, None)` int32 ragged ids framed as `tokenizer` says.

    With `tokenizer.add_start_end` the start and end ids go around each
    sequence (the end id kept on truncation); with a `sequence_length`
    the ids are cut and padded to a dense `(batch, sequence_length)`.
    """
    length = tokenizer.sequence_length
    if tokenizer.add_start_end:
        if length is not None:
            ids = ids[:, : length - 2]
        batch = ids.nrows()
        start = tf.fill([batch, 1], tokenizer.start_id)  # (batch, 1)
        end = tf.fill([batch, 1], tokenizer.end_id)  # (batch, 1)
        ids = tf.concat([start, ids, end], axis=1)  # (batch, None)
    if length is not None:
        ids = ids.to_tensor(
            default_value=tokenizer.padding_id, shape=[None, length]
        )  # (batch, sequence_length)
    return ids


def ids_to_read(tokenizer, ids):
    """The ids `detokenize` reads: `(batch, None)` ragged int32.

    Each sequence up to its first end id, without padding and start ids;
    out-of-range ids become the out-of-vocabulary id.

    Raises:
        ValueError: for non-integer ids or a rank other than 2.
    """
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.convert_to_tensor(ids)
    if not ids.dtype.is_integer:
        raise ValueError(
            f"`ids` must be integers. Received: dtype={ids.dtype.name}"
        )
    if ids.shape.rank != 2:
        raise ValueError(
            "`ids` must be `(length,)` or `(batch, length)`. "
            f"Received: shape={ids.shape}"
        )
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_tensor(default_value=tokenizer.padding_id)
    ids = valid_ids(tokenizer, ids)  # (batch, length)
    is_end = tf.cast(ids == tokenizer.end_id, tf.int32)  # (batch, length)
    before_end = tf.cumsum(is_end, axis=1) == 0  # (batch, length)
    keep = (
        before_end & (ids != tokenizer.padding_id) & (ids != tokenizer.start_id)
    )  # (batch, length)
    return tf.ragged.boolean_mask(ids, keep)  # (batch, None)


def detokenize_with(tokenizer, ids, detokenize):
    """`detokenize(ids_to_read(ids))`, a `(batch,)` or scalar string.

    Args:
        tokenizer: the tokenizer layer (its special ids).
        ids: `(batch, length)` dense or ragged ids, or `(length,)`.
        detokenize: the subword model's detokenizer of ragged ids.
    """
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.convert_to_tensor(ids)
    if ids.shape.rank == 1:
        return detokenize_with(tokenizer, ids[tf.newaxis], detokenize)[0]
    return detokenize(ids_to_read(tokenizer, ids))  # (batch,)


def valid_ids(tokenizer, ids):
    """Casts to int32 and maps out-of-range ids to the oov id."""
    ids = tf.cast(ids, tf.int32)
    in_range = (ids >= 0) & (ids < tokenizer.vocabulary_size)
    return tf.where(in_range, ids, tokenizer.oov_id)


def check_sequence_length(sequence_length, add_start_end):
    """`sequence_length` as an int or `None`, or a `ValueError`."""
    if sequence_length is None:
        return None
    if (
        not isinstance(sequence_length, int)
        and not hasattr(sequence_length, "__index__")
    ) or isinstance(sequence_length, bool):
        valid = False
    else:
        valid = int(sequence_length) >= (2 if add_start_end else 1)
    if not valid:
        raise ValueError(
            "`sequence_length` must be `None` or a positive int (at "
            "least 2 with `add_start_end=True`). "
            f"Received: sequence_length={sequence_length}"
        )
    return int(sequence_length)
