"""Multi-head self-attention with one fused query/key/value projection."""

import keras
from keras import ops

from keras_attention.layers import multi_head_attention as mha
from keras_attention.layers._utils import check_rank_3
from keras_attention.ops.masks import compute_attention_mask

__all__ = ["MultiHeadSelfAttention"]


@keras.saving.register_keras_serializable(package="keras_attention")
class MultiHeadSelfAttention(mha._MultiHeadAttentionBase):
    """Multi-head self-attention with a fused query/key/value projection.

    Computes the same function as `MultiHeadAttention(query=x, value=x)`,
    but projects the input to the queries, keys and values of every head
    with one kernel of shape `(features, num_heads, 2 * key_dim +
    value_dim)` instead of three. Along the last axis the fused kernel
    holds the query, then the key, then the value projection of each head;
    each is computed from its slice of the kernel, which is faster than
    splitting the output of one large matmul.
    The heads then go through `keras_attention.ops.scaled_dot_product_attention`
    and the same output projection (`attention_output`) as
    `MultiHeadAttention`.

    Masks are boolean (`True` = may attend) and combined with a logical AND:
    the implicit Keras padding mask of `inputs` (applied to the keys and to
    the queries, as `keras.layers.MultiHeadAttention` does for self-
    attention), `attention_mask` and the causal mask. A query whose keys are
    all masked gets a zero output (never NaN). The output carries the mask
    of `inputs`.

    Args:
        num_heads: int, number of attention heads.
        key_dim: int, size of each head for the query and the key.
        value_dim: int, size of each head for the value. Defaults to
            `key_dim`.
        output_dim: int, size of the output features. Defaults to the last
            dimension of the input.
        dropout: float in `[0, 1)`, dropout rate on the attention weights.
            Defaults to `0.0`.
        use_bias: bool, whether the projections have biases. Defaults to
            `True`.
        kernel_initializer: initializer of the projection kernels. Defaults
            to `"glorot_uniform"`.
        bias_initializer: initializer of the projection biases. Defaults to
            `"zeros"`.
        attention_implementation: `"dense"`, `"chunked"` (memory-efficient: it
            recomputes the weights in the backward pass) or `"auto"`, passed to
            `scaled_dot_product_attention`. Defaults to `"auto"`.
        chunk_size: int, query rows per tile of the attention, or `None`
            to size tiles from a memory budget. Defaults to `None`.
        seed: optional int, seed of the attention dropout. Defaults to
            `None`.
        num_key_value_heads, sliding_window, soft_cap, rotary,
        rotary_max_wavelength, rotary_scaling_factor: grouped-query
            attention, local attention, logit soft-capping and rotary
            position embeddings, as in `MultiHeadAttention`. With grouped
            heads the fused kernel has shape `(features,
            num_key_value_heads, group * key_dim + key_dim + value_dim)`:
            per key/value head, its group of query heads, its key and its
            value.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: `(batch, length, features)` tensor.
        attention_mask: optional boolean `(batch, length, length)` mask,
            `True` where query `i` may attend to key `j`.
        use_causal_mask: bool, whether position `i` may only attend to
            positions `j <= i`. Defaults to `False`.
        return_attention_scores: bool, whether to also return the attention
            weights. Defaults to `False`.
        training: bool, whether dropout is active. Defaults to `None`.
        mask: optional `(batch, length)` padding mask of `inputs`. Defaults
            to the implicit Keras mask of `inputs` (e.g. from
            `Embedding(mask_zero=True)`), also when `attention_mask` is
            passed, which stops Keras from filling `mask` in itself.

    Returns:
        The `(batch, length, output_dim)` output, or the tuple
        `(output, scores)` with `scores` of shape
        `(batch, num_heads, length, length)` when
        `return_attention_scores=True`.

    Example:

    >>> layer = MultiHeadSelfAttention(num_heads=2, key_dim=4)
    >>> x = keras.random.normal((3, 5, 8))
    >>> layer(x, use_causal_mask=True).shape
    TensorShape([3, 5, 8])

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def _group(self):
        return self.num_heads // self.num_key_value_heads

    def build(self, input_shape):
        check_rank_3("inputs", input_shape)
        self.query_key_value_dense = self._head_projection(
            "query_key_value",
            (self._group() + 1) * self.key_dim + self.value_dim,
            input_shape,
            heads=self.num_key_value_heads,
        )
        self._build_output_projection(input_shape)

    def call(
        self,
        inputs,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        mask=None,
    ):
        check_rank_3("inputs", inputs.shape)
        mha._check_features("inputs", inputs.shape, self.query_key_value_dense)
        if mask is None:
            # Keras fills `mask` in only when `inputs` is the one tensor
            # argument; with an `attention_mask` too, read it here.
            mask = getattr(inputs, "_keras_mask", None)
        # The copy drops the implicit Keras mask, which this layer handles
        # itself, so that the projection does not warn about it.
        # Each of q, k, v from its slice of the fused kernel: 1.2x faster
        # than splitting one fused output (forward+backward, graph mode).
        query, key, value = self.query_key_value_dense(
            ops.copy(inputs),
            sections=[
                self._group() * self.key_dim,
                self.key_dim,
                self.value_dim,
            ],
        )  # (b, t, g, group * k), (b, t, g, k), (b, t, g, v)
        if self._group() > 1:
            # Query head `i` of key/value head `i // group`, as the op wants.
            batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
            query = ops.reshape(
                query, (batch, length, self.num_heads, self.key_dim)
            )
        attention_mask = compute_attention_mask(
            inputs,
            inputs,
            query_mask=mask,
            value_mask=mask,
            attention_mask=attention_mask,
        )  # (batch|1, length|1, length|1)
        output, scores = self._attend(
            self._rotate(query),
            self._rotate(key),
            value,
            attention_mask,
            training,
            return_attention_scores,
            causal=use_causal_mask,
            window=self.sliding_window,
        )
        return (output, scores) if return_attention_scores else output

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return input_shape[:-1] + (self._output_dim(input_shape),)

    def compute_output_spec(
        self,
        inputs,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        mask=None,
    ):
        outputs = self._output_spec(
            inputs.shape, inputs.shape[1], return_attention_scores
        )
        return outputs if return_attention_scores else outputs[0]
