"""Logic shared by the attention layers of RNN encoder-decoders.

`AdditiveAttention` (Bahdanau) and `DotProductAttention` (Luong) differ only
in how they score a query against a key. Everything else lives here, once:
checking the input shapes, accepting a single decoder step (rank-2 query) or
a whole sequence of decoder states (rank-3 query), combining the masks,
the masked softmax, dropout on the weights and the weighted sum of values.
"""

import keras
from keras import ops

from keras_attention.layers._utils import check_attention_masks
from keras_attention.layers._utils import check_rank_3
from keras_attention.layers._utils import check_rate
from keras_attention.layers._utils import check_same_batch
from keras_attention.ops.attention import masked_softmax
from keras_attention.ops.dropout import dropout
from keras_attention.ops.masks import compute_attention_mask

# The softmax always runs in this dtype, whatever the compute dtype.
SOFTMAX_DTYPE = "float32"


# The `Call arguments:` and `Returns:` sections of every RNN attention layer,
# filled into their docstrings by `shared_call_docstring`.
_CALL_DOCSTRING = """Call arguments:
        query: `(batch, q_len, query_dim)` decoder states, or
            `(batch, query_dim)` for a single decoder step.
        value: `(batch, k_len, value_dim)` encoder states.
        key: optional `(batch, k_len, key_dim)` keys. Defaults to `value`.
        query_mask: optional boolean `(batch, q_len)` mask (`(batch,)` for a
            rank-2 query) of the real queries; masked queries get a zero
            context. Defaults to the implicit Keras mask of `query`.
        value_mask: optional boolean `(batch, k_len)` mask of the real
            keys and values. Defaults to the implicit Keras mask of `value`.
        attention_mask: optional boolean `(batch, q_len, k_len)` mask
            (`(batch, k_len)` for a rank-2 query); `True` means "may
            attend".
        return_attention_scores: bool, whether to also return the attention
            weights (before dropout). Defaults to `False`.
        training: bool, whether dropout is active.

    Returns:
        The context, `(batch, q_len, value_dim)` (or `(batch, value_dim)` for
        a rank-2 query), and with `return_attention_scores=True` also the
        attention weights, `(batch, q_len, k_len)` (or `(batch, k_len)`)."""


def shared_call_docstring(cls):
    """Class decorator: put the shared call sections in `cls.__doc__`."""
    cls.__doc__ = cls.__doc__.replace("{call_arguments}", _CALL_DOCSTRING)
    return cls


def _check_shapes(query_shape, value_shape, key_shape=None):
    """Validate the ranks, lengths and batch sizes of the inputs.

    Returns:
        `key_shape`, defaulting to `value_shape`.
    """
    query_shape = tuple(query_shape)
    if len(query_shape) not in (2, 3):
        raise ValueError(
            "`query` must have rank 2, (batch, query_dim), for one decoder "
            "step, or rank 3, (batch, query_length, query_dim), for a "
            f"sequence. Received: query.shape={query_shape}"
        )
    check_rank_3("value", value_shape)
    key_shape = tuple(value_shape if key_shape is None else key_shape)
    check_rank_3("key", key_shape)
    key_length, value_length = key_shape[1], value_shape[1]
    if None not in (key_length, value_length) and key_length != value_length:
        raise ValueError(
            "`key` and `value` must have the same length (axis 1). "
            f"Received: key.shape={key_shape}, "
            f"value.shape={tuple(value_shape)}"
        )
    check_same_batch("query", query_shape, "value", value_shape)
    check_same_batch("key", key_shape, "value", value_shape)
    return key_shape


class RNNAttention(keras.layers.Layer):
    """Base class of the attention layers of RNN encoder-decoders.

    Subclasses create their scoring weights in `_build_scores(query_dim,
    key_dim)` and compute the raw scores in
    `_calculate_scores(query, key)`, from
    `(batch, q_len, query_dim)` queries and `(batch, k_len, key_dim)` keys to
    `(batch, q_len, k_len)` scores. This class does the rest; its call
    arguments are documented in `_CALL_DOCSTRING`.

    Args:
        dropout: float in `[0, 1)`, the fraction of attention weights dropped
            during training. Defaults to `0.0`.
        **kwargs: other keyword arguments of `keras.layers.Layer`.
    """

    def __init__(self, dropout=0.0, **kwargs):
        check_rate("dropout", dropout)
        super().__init__(**kwargs)
        self.dropout = dropout
        self.supports_masking = True
        self.seed_generator = (
            keras.random.SeedGenerator() if dropout > 0.0 else None
        )

    def _build_scores(self, query_dim, key_dim):
        """Create the weights of the score function."""
        raise NotImplementedError

    def _calculate_scores(self, query, key):
        """Raw `(batch, q_len, k_len)` scores of queries against keys."""
        raise NotImplementedError

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = _check_shapes(query_shape, value_shape, key_shape)
        query_dim, key_dim = query_shape[-1], key_shape[-1]
        if query_dim is None or key_dim is None:
            raise ValueError(
                "The last axes of `query` and `key` must be known to build "
                f"the layer. Received: query.shape={tuple(query_shape)}, "
                f"key.shape={key_shape}"
            )
        self._build_scores(query_dim, key_dim)
        self.built = True

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
    ):
        _check_shapes(
            query.shape, value.shape, None if key is None else key.shape
        )
        if key is None:
            key = value
        single_step = len(query.shape) == 2
        if single_step:
            # One decoder step is a sequence of one query.
            query = ops.expand_dims(query, 1)  # (batch, 1, query_dim)
            if query_mask is not None:
                query_mask = ops.expand_dims(query_mask, 1)  # (batch, 1)
            if attention_mask is not None:
                # (batch, 1, k_len)
                attention_mask = ops.expand_dims(attention_mask, 1)
        check_attention_masks(
            query.shape,
            key.shape,
            query_mask=query_mask,
            value_mask=value_mask,
            attention_mask=attention_mask,
        )
        mask = compute_attention_mask(
            query,
            value,
            query_mask=query_mask,
            value_mask=value_mask,
            attention_mask=attention_mask,
        )  # (batch|1, q_len|1, k_len) or None

        scores = self._calculate_scores(query, key)  # (batch, q_len, k_len)
        weights = masked_softmax(scores, mask)  # float32 (batch, q_len, k_len)
        weights = ops.cast(weights, self.compute_dtype)
        attended = weights
        if training and self.dropout > 0.0:
            attended = dropout(weights, self.dropout, seed=self.seed_generator)
        # (batch, q_len, value_dim)
        context = ops.einsum("bqk,bkd->bqd", attended, value)

        if single_step:
            context = ops.squeeze(context, 1)  # (batch, value_dim)
            weights = ops.squeeze(weights, 1)  # (batch, k_len)
        if return_attention_scores:
            return context, weights
        return context

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        _check_shapes(query_shape, value_shape, key_shape)
        return tuple(query_shape)[:-1] + (value_shape[-1],)

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
    ):
        key_shape = None if key is None else key.shape
        output_shape = self.compute_output_shape(
            query.shape, value.shape, key_shape
        )
        output = keras.KerasTensor(output_shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        # (batch, k_len) or (batch, q_len, k_len)
        weights_shape = tuple(query.shape)[:-1] + (value.shape[1],)
        weights = keras.KerasTensor(weights_shape, dtype=self.compute_dtype)
        return output, weights

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout})
        return config
