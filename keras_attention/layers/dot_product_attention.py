"""Multiplicative (Luong) attention for RNN encoder-decoders."""

import math

import keras
from keras import ops

from keras_attention.layers._rnn_attention import SOFTMAX_DTYPE
from keras_attention.layers._rnn_attention import RNNAttention
from keras_attention.layers._rnn_attention import shared_call_docstring
from keras_attention.layers._utils import clone_initializer

SCORE_MODES = ("dot", "general")


@keras.saving.register_keras_serializable(package="keras_attention")
@shared_call_docstring
class DotProductAttention(RNNAttention):
    """Multiplicative attention, the "dot" and "general" scores of Luong.

    Each query (a decoder state) is scored against every key (an encoder
    state) with a dot product, `score(q, k) = q . k` (`score_mode="dot"`),
    or with a learned bilinear form, `score(q, k) = q^T W k`
    (`score_mode="general"`); the scores go through a softmax over the keys
    and the weights average the values into a context vector. With
    `use_scale=True` the scores are divided by `sqrt(key_dim)`. A whole
    sequence of decoder states is scored in one call; a single decoder step
    (a rank-2 query) works too.

    Keys masked out by `value_mask` (or the implicit Keras mask of `value`,
    for example from `Embedding(mask_zero=True)`) or by `attention_mask` get
    exactly zero weight. A query whose keys are all masked gets zero weights
    and a zero context. Scores and softmax are computed in float32 whatever
    the compute dtype, so float16 dot products cannot overflow. The implicit
    mask of the query is passed on to the output.

    Args:
        score_mode: `"dot"` (the query and key sizes must match) or
            `"general"` (a `(query_dim, key_dim)` kernel `W`). Defaults to
            `"dot"`.
        use_scale: bool, whether to divide the scores by `sqrt(key_dim)`.
            Defaults to `False`.
        dropout: float in `[0, 1)`, the fraction of attention weights dropped
            during training. Defaults to `0.0`.
        kernel_initializer: initializer of `W` in `"general"` mode. Defaults
            to `"glorot_uniform"`.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    {call_arguments}

    Example:

    >>> encoder_states = keras.random.normal((2, 7, 16))
    >>> decoder_states = keras.random.normal((2, 5, 32))
    >>> attention = DotProductAttention(score_mode="general")
    >>> context, weights = attention(
    ...     decoder_states, encoder_states, return_attention_scores=True)
    >>> context.shape, weights.shape
    (TensorShape([2, 5, 16]), TensorShape([2, 5, 7]))
    >>> DotProductAttention()(encoder_states[:, 0], encoder_states).shape
    TensorShape([2, 16])

    References:
        - [Luong et al., 2015](https://arxiv.org/abs/1508.04025)
    """

    def __init__(
        self,
        score_mode="dot",
        use_scale=False,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        if score_mode not in SCORE_MODES:
            raise ValueError(
                f"`score_mode` must be one of {SCORE_MODES}. "
                f"Received: score_mode={score_mode!r}"
            )
        super().__init__(dropout=dropout, **kwargs)
        self.score_mode = score_mode
        self.use_scale = use_scale
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _build_scores(self, query_dim, key_dim):
        self.kernel = None
        if self.score_mode == "dot":
            if query_dim != key_dim:
                raise ValueError(
                    "`score_mode='dot'` needs queries and keys of the same "
                    "size; use `score_mode='general'` otherwise. Received: "
                    f"query_dim={query_dim}, key_dim={key_dim}"
                )
        else:
            self.kernel = self.add_weight(
                name="kernel",
                shape=(query_dim, key_dim),
                initializer=clone_initializer(self.kernel_initializer),
            )

    def _calculate_scores(self, query, key):
        if self.kernel is not None:
            query = ops.matmul(query, self.kernel)  # (batch, q_len, key_dim)
        query = ops.cast(query, SOFTMAX_DTYPE)  # (batch, q_len, key_dim)
        key = ops.cast(key, SOFTMAX_DTYPE)  # (batch, k_len, key_dim)
        scores = ops.einsum("bqd,bkd->bqk", query, key)  # (batch, q_len, k_len)
        if self.use_scale:
            scores = scores / math.sqrt(key.shape[-1])
        return scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "score_mode": self.score_mode,
                "use_scale": self.use_scale,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
