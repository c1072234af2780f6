"""Additive (Bahdanau) attention for RNN encoder-decoders."""

import keras
from keras import ops

from keras_attention.layers._rnn_attention import RNNAttention
from keras_attention.layers._rnn_attention import shared_call_docstring
from keras_attention.layers._utils import check_positive_int
from keras_attention.layers._utils import clone_initializer


@keras.saving.register_keras_serializable(package="keras_attention")
@shared_call_docstring
class AdditiveAttention(RNNAttention):
    """Additive attention, the score of Bahdanau et al. (2014).

    Each query (a decoder state) is scored against every key (an encoder
    state) with a one-hidden-layer network,
    `score(q, k) = v^T tanh(W_q q + W_k k + b)`; the scores go through a
    softmax over the keys and the weights average the values into a context
    vector. The keys are projected once and the projected queries are
    broadcast against them, so a whole sequence of decoder states is scored
    in one call. A single decoder step (a rank-2 query) works too.

    Keys masked out by `value_mask` (or the implicit Keras mask of `value`,
    for example from `Embedding(mask_zero=True)`) or by `attention_mask` get
    exactly zero weight. A query whose keys are all masked gets zero weights
    and a zero context. The softmax runs in float32 whatever the compute
    dtype. The implicit mask of the query is passed on to the output.

    Args:
        units: int, the size of the hidden layer of the score network.
        use_bias: bool, whether the score network adds a bias `b`. Defaults
            to `True`.
        dropout: float in `[0, 1)`, the fraction of attention weights dropped
            during training. Defaults to `0.0`.
        kernel_initializer: initializer of `W_q`, `W_k` and `v`. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of `b`. Defaults to `"zeros"`.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    {call_arguments}

    Example:

    >>> encoder_states = keras.random.normal((2, 7, 16))
    >>> decoder_states = keras.random.normal((2, 5, 32))
    >>> attention = AdditiveAttention(units=8)
    >>> context, weights = attention(
    ...     decoder_states, encoder_states, return_attention_scores=True)
    >>> context.shape, weights.shape
    (TensorShape([2, 5, 16]), TensorShape([2, 5, 7]))
    >>> attention(decoder_states[:, 0], encoder_states).shape
    TensorShape([2, 16])

    References:
        - [Bahdanau et al., 2014](https://arxiv.org/abs/1409.0473)
    """

    def __init__(
        self,
        units,
        use_bias=True,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        units = check_positive_int("units", units)
        super().__init__(dropout=dropout, **kwargs)
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _build_scores(self, query_dim, key_dim):
        self.query_kernel = self.add_weight(
            name="query_kernel",
            shape=(query_dim, self.units),
            initializer=clone_initializer(self.kernel_initializer),
        )
        self.key_kernel = self.add_weight(
            name="key_kernel",
            shape=(key_dim, self.units),
            initializer=clone_initializer(self.kernel_initializer),
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=clone_initializer(self.bias_initializer),
            )
        self.score_vector = self.add_weight(
            name="score_vector",
            shape=(self.units,),
            initializer=clone_initializer(self.kernel_initializer),
        )

    def _calculate_scores(self, query, key):
        # Project every key once, then broadcast the projected queries.
        keys = ops.matmul(key, self.key_kernel)  # (batch, k_len, units)
        if self.bias is not None:
            keys = keys + self.bias  # (batch, k_len, units)
        queries = ops.matmul(query, self.query_kernel)  # (batch, q_len, units)
        hidden = ops.tanh(
            ops.expand_dims(queries, 2) + ops.expand_dims(keys, 1)
        )  # (batch, q_len, k_len, units)
        return ops.einsum(
            "bqku,u->bqk", hidden, self.score_vector
        )  # (batch, q_len, k_len)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
