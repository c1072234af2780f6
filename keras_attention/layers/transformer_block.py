"""The Transformer encoder block (Vaswani et al., 2017)."""

import keras

from keras_attention.layers._transformer_utils import TransformerBlockBase
from keras_attention.layers._transformer_utils import check_sequence_shape
from keras_attention.layers._transformer_utils import sequence_padding_mask
from keras_attention.layers._utils import check_floating
from keras_attention.layers.multi_head_self_attention import (
    MultiHeadSelfAttention,
)


@keras.saving.register_keras_serializable(package="keras_attention")
class TransformerBlock(TransformerBlockBase):
    """Transformer encoder block: self-attention, then a feed-forward net.

    Each of the two sublayers, multi-head self-attention and the
    position-wise feed-forward network `Dense(feed_forward_dim, activation)
    -> Dense(d_model)`, is wrapped in a residual connection with dropout on
    the sublayer output and a layer normalization. By default the
    normalization follows the residual sum, as in the paper (post-LN):
    `x = LayerNorm(x + Dropout(Sublayer(x)))`. With `norm_first=True` it
    precedes the sublayer (pre-LN, as in GPT-2), which trains more stably in
    deep stacks: `x = x + Dropout(Sublayer(LayerNorm(x)))`; a pre-LN stack
    then needs one final `LayerNormalization` after its last block. `d_model`
    is the last axis of the input and is kept.

    Masking: the implicit Keras mask of `inputs` (for example from
    `Embedding(mask_zero=True)`) and an explicit `padding_mask` are merged
    (logical AND). Padded tokens are never attended to, and padded queries
    attend to nothing (their attention output is zero, never NaN), so
    changing padded tokens leaves the outputs of real tokens unchanged. The
    output carries the input's Keras mask.

    Args:
        num_heads: int, the number of attention heads.
        feed_forward_dim: int, the hidden width of the feed-forward network.
        key_dim: int, the size of each head's queries and keys. Defaults to
            `d_model // num_heads` (then `d_model` must be divisible by
            `num_heads`).
        value_dim: int, the size of each head's values. Defaults to
            `key_dim`.
        dropout: float in `[0, 1)`, dropout on each sublayer's output before
            the residual sum. Defaults to `0.0`.
        attention_dropout: float in `[0, 1)`, dropout on the attention
            weights. Defaults to `dropout`.
        activation: activation of the feed-forward hidden layer, or
            `"swiglu"` / `"geglu"` for a gated feed-forward network
            (`act(x W_gate) * (x W_in)`, with SiLU or GELU). Defaults to
            `"relu"`.
        norm_first: bool, whether to normalize before each sublayer (pre-LN)
            instead of after the residual sum (post-LN). Defaults to
            `False`.
        layer_norm_epsilon: float, the epsilon of the layer normalizations.
            Defaults to `1e-5`.
        kernel_initializer: initializer of the dense and attention kernels.
            Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the biases. Defaults to `"zeros"`.
        attention_implementation: `"auto"`, `"dense"` or `"chunked"`, see
            `keras_attention.ops.scaled_dot_product_attention`. Defaults to
            `"auto"`.
        normalization: `"layer"` (`LayerNormalization`) or `"rms"`
            (`RMSNormalization`, as in Llama and Gemma). Defaults to
            `"layer"`.
        num_key_value_heads: int dividing `num_heads`, the key/value heads
            of the attention (grouped-query attention; `1` is multi-query).
            Defaults to `num_heads`.
        sliding_window: optional int, local self-attention over the last
            `sliding_window` positions (see `MultiHeadAttention`). Defaults
            to `None`.
        soft_cap: optional float, attention logit soft-capping. Defaults
            to `None`.
        rotary: bool, rotary position embeddings in the self-attention.
            Defaults to `False`.
        rotary_max_wavelength: int, their longest wavelength. Defaults to
            `10000`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, seq_len, d_model)` tensor.
        padding_mask: optional `(batch, seq_len)` boolean mask, True for
            real tokens. Merged with the implicit Keras mask of `inputs`.
        attention_mask: optional `(batch, seq_len, seq_len)` boolean mask,
            True where query `i` may attend to key `j`.
        use_causal_mask: bool, whether token `i` may only attend to tokens
            `j <= i`. Defaults to `False`.
        return_attention_scores: bool, whether to also return the attention
            weights. Defaults to `False`.
        training: bool, whether dropout is active.

    Returns:
        The `(batch, seq_len, d_model)` output or, with
        `return_attention_scores=True`, the tuple `(output, scores)` with
        `scores` of shape `(batch, num_heads, seq_len, seq_len)`.

    Example:

    >>> block = TransformerBlock(num_heads=2, feed_forward_dim=32)
    >>> x = keras.random.normal((2, 5, 16))
    >>> block(x).shape
    TensorShape([2, 5, 16])
    >>> output, scores = block(x, return_attention_scores=True)
    >>> scores.shape
    TensorShape([2, 2, 5, 5])

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Xiong et al., 2020](https://arxiv.org/abs/2002.04745) (pre-LN)
    """

    def build(self, inputs_shape):
        d_model = check_sequence_shape("inputs", inputs_shape)
        self._self_attention = MultiHeadSelfAttention(
            **self._attention_kwargs(d_model, "self_attention")
        )
        self._self_attention.build(inputs_shape)
        self._self_attention_norm, self._self_attention_dropout = (
            self._make_norm_and_dropout("self_attention", inputs_shape)
        )
        self._build_feed_forward(inputs_shape)
        self.built = True

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        mask=None,
    ):
        check_sequence_shape("inputs", inputs.shape)
        check_floating("inputs", inputs)
        padding = sequence_padding_mask(
            "inputs", inputs, mask, padding_mask, "padding_mask"
        )  # (batch, seq) or None

        def self_attention(x):
            outputs = self._self_attention(
                x,
                attention_mask=attention_mask,
                use_causal_mask=use_causal_mask,
                return_attention_scores=return_attention_scores,
                training=training,
                mask=padding,
            )
            return tuple(outputs) if return_attention_scores else (outputs,)

        x, extras = self._residual(
            inputs,
            self_attention,
            self._self_attention_norm,
            self._self_attention_dropout,
            training=training,
        )  # (batch, seq, d_model)
        x, _ = self._residual(
            x,
            self._feed_forward,
            self._feed_forward_norm,
            self._feed_forward_dropout,
            training=training,
        )  # (batch, seq, d_model)
        if return_attention_scores:
            return x, extras[0]  # scores: (batch, heads, seq, seq)
        return x

    def compute_output_shape(
        self, inputs_shape, padding_mask_shape=None, attention_mask_shape=None
    ):
        check_sequence_shape("inputs", inputs_shape)
        return tuple(inputs_shape)

    def compute_output_spec(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        mask=None,
    ):
        output_shape = self.compute_output_shape(inputs.shape)
        output = keras.KerasTensor(output_shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        batch, seq_len = output_shape[0], output_shape[1]
        scores = keras.KerasTensor(
            (batch, self.num_heads, seq_len, seq_len), dtype=self.compute_dtype
        )
        return output, scores
