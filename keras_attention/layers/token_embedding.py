"""Token embeddings that can also project hidden states back to logits."""

import math

import keras
from keras import ops

from keras_attention.layers._utils import check_positive_int
from keras_attention.layers._utils import clone_initializer
from keras_attention.ops.runtime_checks import check_then


def check_token_id(name, value, vocabulary_size, allow_none=False):
    """Raise unless `value` is an int id in `[0, vocabulary_size)`."""
    if value is None and allow_none:
        return
    valid = isinstance(value, int) and not isinstance(value, bool)
    if not valid or not 0 <= value < vocabulary_size:
        raise ValueError(
            f"`{name}` must be an integer in [0, {vocabulary_size}). "
            f"Received: {name}={value!r}"
        )


@keras.saving.register_keras_serializable(package="keras_attention")
class TokenEmbedding(keras.layers.Layer):
    """Token embedding scaled by `sqrt(embedding_dim)`, also usable in reverse.

    Forward, `TokenEmbedding(ids)` looks the ids up in a
    `(vocabulary_size, embedding_dim)` table `E` and multiplies the vectors
    by `sqrt(embedding_dim)`, as the Transformer does before adding the
    positional encodings. In reverse, `TokenEmbedding(hidden, reverse=True)`
    is the output projection tied to the same table:
    `logits = hidden @ E^T (+ output_bias)`, computed and returned in
    float32 whatever the compute dtype. Calling one layer both ways in a
    Functional model shares the table between the embedding and the output
    layer, and the model still saves and reloads as `.keras`.

    Ids outside `[0, vocabulary_size)` are refused rather than looked up
    (NumPy-style indexing would wrap a negative id, a TensorFlow graph on a
    GPU would return zeros): a `ValueError` naming the smallest and largest
    id when the call runs eagerly, an `InvalidArgumentError` with the same
    message in a TensorFlow graph (`runtime_checks.check_then`). Inside
    `jax.jit`, and under XLA on TensorFlow, no run-time check is possible:
    such ids then give NaN vectors on every backend, which the training
    loop's NaN guard reports.

    The layer does not attach a Keras mask (the reverse call could not use
    it); `padding_mask(ids)` gives the boolean padding mask of an id tensor,
    `True` for real tokens, to pass to the blocks explicitly.

    Args:
        vocabulary_size: positive int, the number of token ids.
        embedding_dim: positive int, the size of each vector.
        padding_id: int in `[0, vocabulary_size)`, the id `padding_mask`
            marks as padding. Defaults to `0`.
        use_output_bias: bool, whether the reverse call adds a learned
            `(vocabulary_size,)` bias. Defaults to `False`.
        embeddings_initializer: initializer of the table. Defaults to
            `RandomNormal(stddev=embedding_dim ** -0.5)`, so that the scaled
            embeddings have unit variance.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: `(batch, length)` int ids, or with `reverse=True` a
            `(batch, length, embedding_dim)` tensor.
        reverse: bool, whether to project onto the vocabulary instead of
            embedding. Defaults to `False`.

    Returns:
        `(batch, length, embedding_dim)` scaled embeddings in the compute
        dtype, or with `reverse=True` `(batch, length, vocabulary_size)`
        float32 logits.

    Example:

    >>> embedding = TokenEmbedding(10, 4, use_output_bias=True)
    >>> vectors = embedding(np.array([[1, 2, 0]]))
    >>> vectors.shape
    TensorShape([1, 3, 4])
    >>> embedding(vectors, reverse=True).shape
    TensorShape([1, 3, 10])

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762),
          section 3.4
        - [Press and Wolf, 2017](https://arxiv.org/abs/1608.05859)
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        padding_id=0,
        use_output_bias=False,
        embeddings_initializer=None,
        **kwargs,
    ):
        vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        check_token_id("padding_id", padding_id, vocabulary_size)
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.padding_id = padding_id
        self.use_output_bias = use_output_bias
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.RandomNormal(
                stddev=embedding_dim**-0.5
            )
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )

    def build(self, inputs_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocabulary_size, self.embedding_dim),
            initializer=clone_initializer(self.embeddings_initializer),
        )
        self.output_bias = None
        if self.use_output_bias:
            self.output_bias = self.add_weight(
                name="output_bias",
                shape=(self.vocabulary_size,),
                initializer="zeros",
            )
        self.built = True

    def padding_mask(self, token_ids):
        """`(batch, length)` boolean mask of `token_ids`, True = real token."""
        return ops.not_equal(token_ids, self.padding_id)

    def call(self, inputs, reverse=False):
        if reverse:
            if inputs.shape[-1] != self.embedding_dim:
                raise ValueError(
                    "`TokenEmbedding(..., reverse=True)` needs inputs with "
                    f"embedding_dim={self.embedding_dim} features. Received: "
                    f"inputs.shape={tuple(inputs.shape)}"
                )
            hidden = ops.cast(inputs, "float32")
            table = ops.cast(self.embeddings, "float32")
            # (batch, length, vocabulary_size)
            logits = ops.matmul(hidden, ops.transpose(table))
            if self.output_bias is not None:
                logits = logits + ops.cast(self.output_bias, "float32")
            return logits
        ids = ops.cast(inputs, "int32")
        valid = ops.logical_and(ids >= 0, ids < self.vocabulary_size)
        ids = self._checked_ids(ids, valid)
        # Where no check runs (traced JAX, XLA), an invalid id gives NaN on
        # every backend, rather than a wrapped or clamped row.
        vectors = ops.take(self.embeddings, ops.where(valid, ids, 0), axis=0)
        vectors = ops.cast(vectors, self.compute_dtype)  # (batch, len, d)
        vectors = ops.where(valid[..., None], vectors, float("nan"))
        return vectors * ops.cast(
            math.sqrt(self.embedding_dim), self.compute_dtype
        )  # (batch, len, d)

    def _checked_ids(self, ids, valid):
        """`ids`, once every id is checked to be in the table (`valid`)."""
        if 0 in ids.shape:
            return ids  # nothing to look up (and no min/max to report)
        # Constant strings and the tensors themselves, not a formatted
        # string, which `jit_compile=True` could not compile.
        return check_then(
            ids,
            ops.all(valid),
            [
                f"`TokenEmbedding` token ids must be in [0, "
                f"{self.vocabulary_size}) (vocabulary_size="
                f"{self.vocabulary_size}). Received: ids from ",
                ops.min(ids),
                " to ",
                ops.max(ids),
            ],
        )

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape) + (self.embedding_dim,)

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            return keras.KerasTensor(
                tuple(inputs.shape[:-1]) + (self.vocabulary_size,),
                dtype="float32",
            )
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "padding_id": self.padding_id,
                "use_output_bias": self.use_output_bias,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
