"""The Transformer decoder block (Vaswani et al., 2017), with a KV cache."""

import keras
from keras import ops

from keras_attention.layers._transformer_utils import TransformerBlockBase
from keras_attention.layers._transformer_utils import check_sequence_shape
from keras_attention.layers._transformer_utils import sequence_padding_mask
from keras_attention.layers._utils import check_attention_mask
from keras_attention.layers._utils import check_floating
from keras_attention.layers._utils import check_same_batch
from keras_attention.layers.multi_head_attention import MultiHeadAttention


def _as_tuple(outputs):
    if isinstance(outputs, (tuple, list)):
        return tuple(outputs)
    return (outputs,)


@keras.saving.register_keras_serializable(package="keras_attention")
class TransformerDecoderBlock(TransformerBlockBase):
    """Transformer decoder block: masked self-attention, cross-attention, FFN.

    Three sublayers, each wrapped in a residual connection with dropout on
    the sublayer output and a layer normalization (post-LN by default,
    `x = LayerNorm(x + Dropout(Sublayer(x)))`; pre-LN with
    `norm_first=True`, `x = x + Dropout(Sublayer(LayerNorm(x)))`, after
    which a pre-LN stack needs one final `LayerNormalization`):

    1. causal multi-head self-attention over the decoder sequence;
    2. multi-head cross-attention from the decoder sequence to the encoder
       output. The block has this sublayer only when it is built with an
       `encoder_sequence`; without one (decoder-only models such as GPT) it
       is skipped, and the number of call arguments must not change after
       the first call;
    3. the position-wise feed-forward network `Dense(feed_forward_dim,
       activation) -> Dense(d_model)`.

    Masking: the implicit Keras masks of `decoder_sequence` and
    `encoder_sequence` are merged (logical AND) with the explicit
    `decoder_padding_mask` and `encoder_padding_mask`. Padded keys get zero
    weight and padded queries attend to nothing (zero attention output,
    never NaN). The output carries the decoder sequence's Keras mask.

    Cached decoding: create an empty self-attention cache with
    `empty_self_attention_cache(batch_size, max_length)` and the
    cross-attention cache once with
    `compute_cross_attention_cache(encoder_sequence)`, then call the block
    on one token (or a few) at a time with
    `self_attention_cache_update_index` set to the position of the first
    token. The keys and values of the new tokens are written into the
    returned cache, and the causal mask lets token `t` see cache positions
    `<= self_attention_cache_update_index + t`. While decoding with a cache,
    `decoder_padding_mask` only masks the new (query) tokens, and
    `decoder_attention_mask` must have shape
    `(batch, tgt_len, max_length)`.

    With a `sliding_window` the self-attention cache can be rolling:
    `empty_self_attention_cache(batch_size, max_length, rolling=True)`
    holds only the last `sliding_window` positions (slot `p % window` for
    position `p`), and calls with `rolling_cache=True` give the same
    outputs as the full-length cache, for prompt chunks of any length.

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
        normalization, num_key_value_heads, sliding_window, soft_cap,
        rotary, rotary_max_wavelength: RMS normalization, grouped-query,
            local and soft-capped attention and rotary positions in the
            self-attention, as in `TransformerBlock` (cross-attention gets
            the grouped heads and the soft cap only).
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        decoder_sequence: `(batch, tgt_len, d_model)` tensor.
        encoder_sequence: optional `(batch, src_len, encoder_dim)` encoder
            output, attended to by the cross-attention. Defaults to `None`
            (no cross-attention).
        decoder_padding_mask: optional `(batch, tgt_len)` boolean mask, True
            for real decoder tokens.
        encoder_padding_mask: optional `(batch, src_len)` boolean mask, True
            for real encoder tokens.
        decoder_attention_mask: optional `(batch, tgt_len, tgt_len)` boolean
            self-attention mask (`(batch, tgt_len, max_length)` with a
            cache).
        encoder_attention_mask: optional `(batch, tgt_len, src_len)` boolean
            cross-attention mask.
        use_causal_mask: bool, whether decoder token `i` may only attend to
            decoder tokens `j <= i`. Defaults to `True`.
        self_attention_cache: optional `(batch, 2, max_length, num_heads,
            key_dim)` key/value cache of the self-attention. Needs
            `self_attention_cache_update_index`.
        self_attention_cache_update_index: int or scalar int tensor, the
            position of the first token of `decoder_sequence` in the cache.
        rolling_cache: bool, whether `self_attention_cache` is a rolling
            cache of the last positions only (a block with a
            `sliding_window`, causal; see `MultiHeadAttention`). Defaults
            to `False`.
        cross_attention_cache: optional `(batch, 2, src_len, num_heads,
            key_dim)` key/value cache of the cross-attention, from
            `compute_cross_attention_cache`. Used as is (the encoder output
            is not projected again). Required together with a
            `self_attention_cache` when the block has cross-attention.
        return_attention_scores: bool, whether to also return the attention
            weights. Defaults to `False`.
        training: bool, whether dropout is active.

    Returns:
        The `(batch, tgt_len, d_model)` output when neither attention scores
        nor a `self_attention_cache` are asked for. Otherwise a tuple, in
        this order, of which only the items that apply are present:
        `(output, self_scores, cross_scores, self_attention_cache,
        cross_attention_cache)`:

        - `self_scores`, `(batch, num_heads, tgt_len, tgt_len)` (or
          `max_length` keys with a cache), and `cross_scores`,
          `(batch, num_heads, tgt_len, src_len)`, with
          `return_attention_scores=True`; `cross_scores` only when the block
          has cross-attention;
        - the updated `self_attention_cache` and the `cross_attention_cache`
          (unchanged) when a `self_attention_cache` is given;
          `cross_attention_cache` only when the block has cross-attention
          (KerasHub's `TransformerDecoder` convention).

        For example, `(output, self_scores, cross_scores)` with scores and
        no cache, `(output, self_attention_cache, cross_attention_cache)`
        with a cache and no scores, `(output, self_attention_cache)` for a
        decoder-only block with a cache.

    Example:

    >>> block = TransformerDecoderBlock(num_heads=2, feed_forward_dim=32)
    >>> target = keras.random.normal((2, 4, 16))
    >>> source = keras.random.normal((2, 6, 16))
    >>> block(target, source).shape
    TensorShape([2, 4, 16])
    >>> cache = block.empty_self_attention_cache(2, max_length=4)
    >>> cross_cache = block.compute_cross_attention_cache(source)
    >>> step, cache, cross_cache = block(
    ...     target[:, :1], source, self_attention_cache=cache,
    ...     self_attention_cache_update_index=0,
    ...     cross_attention_cache=cross_cache)
    >>> step.shape, cache.shape
    (TensorShape([2, 1, 16]), TensorShape([2, 2, 4, 2, 8]))

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Xiong et al., 2020](https://arxiv.org/abs/2002.04745) (pre-LN)
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        d_model = check_sequence_shape(
            "decoder_sequence", decoder_sequence_shape
        )
        self._self_attention = MultiHeadAttention(
            **self._attention_kwargs(d_model, "self_attention")
        )
        self._self_attention.build(
            decoder_sequence_shape, decoder_sequence_shape
        )
        self._self_attention_norm, self._self_attention_dropout = (
            self._make_norm_and_dropout(
                "self_attention", decoder_sequence_shape
            )
        )
        self._cross_attention = None
        if encoder_sequence_shape is not None:
            check_sequence_shape("encoder_sequence", encoder_sequence_shape)
            check_same_batch(
                "decoder_sequence",
                decoder_sequence_shape,
                "encoder_sequence",
                encoder_sequence_shape,
            )
            self._cross_attention = MultiHeadAttention(
                **self._attention_kwargs(
                    d_model, "cross_attention", positional=False
                )
            )
            self._cross_attention.build(
                decoder_sequence_shape, encoder_sequence_shape
            )
            self._cross_attention_norm, self._cross_attention_dropout = (
                self._make_norm_and_dropout(
                    "cross_attention", decoder_sequence_shape
                )
            )
        self._build_feed_forward(decoder_sequence_shape)
        self.built = True

    def _check_call_arguments(
        self,
        decoder_sequence,
        encoder_sequence,
        self_attention_cache,
        self_attention_cache_update_index,
        cross_attention_cache,
    ):
        check_sequence_shape("decoder_sequence", decoder_sequence.shape)
        check_floating("decoder_sequence", decoder_sequence)
        has_cross_attention = self._cross_attention is not None
        if has_cross_attention != (encoder_sequence is not None):
            built_with = "with" if has_cross_attention else "without"
            raise ValueError(
                "The number of call arguments of `TransformerDecoderBlock` "
                "must not change: a block first called with an "
                "`encoder_sequence` has cross-attention and always needs one; "
                "a block first called without one has none. This block was "
                f"built {built_with} cross-attention. Received: "
                f"encoder_sequence={encoder_sequence!r}"
            )
        if encoder_sequence is not None:
            check_sequence_shape("encoder_sequence", encoder_sequence.shape)
            check_same_batch(
                "decoder_sequence",
                decoder_sequence.shape,
                "encoder_sequence",
                encoder_sequence.shape,
            )
        if self_attention_cache is not None:
            if self_attention_cache_update_index is None:
                raise ValueError(
                    "A `self_attention_cache` needs the position of the new "
                    "tokens in `self_attention_cache_update_index`. Received: "
                    "self_attention_cache_update_index=None"
                )
            if has_cross_attention and cross_attention_cache is None:
                raise ValueError(
                    "With cross-attention, a `self_attention_cache` needs a "
                    "`cross_attention_cache` (see "
                    "`compute_cross_attention_cache`). Received: "
                    "cross_attention_cache=None"
                )
        if cross_attention_cache is not None and not has_cross_attention:
            raise ValueError(
                "`cross_attention_cache` needs a block with cross-attention "
                "(called with an `encoder_sequence`). Received: "
                "encoder_sequence=None"
            )

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_attention_mask=None,
        use_causal_mask=True,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        return_attention_scores=False,
        training=None,
        decoder_sequence_mask=None,
        encoder_sequence_mask=None,
        rolling_cache=False,
    ):
        self._check_call_arguments(
            decoder_sequence,
            encoder_sequence,
            self_attention_cache,
            self_attention_cache_update_index,
            cross_attention_cache,
        )
        if rolling_cache and self_attention_cache is None:
            raise ValueError(
                "`rolling_cache=True` needs a `self_attention_cache` (see "
                "`empty_self_attention_cache(..., rolling=True)`). Received: "
                "self_attention_cache=None"
            )
        has_cache = self_attention_cache is not None
        batch, target_len = tuple(decoder_sequence.shape)[:2]
        if not has_cache:  # with a cache the keys are the cache's
            check_attention_mask(
                "decoder_attention_mask",
                decoder_attention_mask,
                (batch, target_len, target_len),
            )
        if encoder_sequence is not None and cross_attention_cache is None:
            check_attention_mask(
                "encoder_attention_mask",
                encoder_attention_mask,
                (batch, target_len, tuple(encoder_sequence.shape)[1]),
            )
        decoder_padding = sequence_padding_mask(
            "decoder_sequence",
            decoder_sequence,
            decoder_sequence_mask,
            decoder_padding_mask,
            "decoder_padding_mask",
        )  # (batch, tgt_len) or None

        def self_attention(x):
            return _as_tuple(
                self._self_attention(
                    x,
                    x,
                    query_mask=decoder_padding,
                    # With a cache the keys are the cache, not `x`.
                    value_mask=None if has_cache else decoder_padding,
                    attention_mask=decoder_attention_mask,
                    use_causal_mask=use_causal_mask,
                    return_attention_scores=return_attention_scores,
                    training=training,
                    cache=self_attention_cache,
                    cache_update_index=self_attention_cache_update_index,
                    rolling_cache=rolling_cache,
                )
            )

        x, self_extras = self._residual(
            decoder_sequence,
            self_attention,
            self._self_attention_norm,
            self._self_attention_dropout,
            training=training,
        )  # (batch, tgt_len, d_model)

        cross_extras = ()
        if self._cross_attention is not None:
            encoder_padding = sequence_padding_mask(
                "encoder_sequence",
                encoder_sequence,
                encoder_sequence_mask,
                encoder_padding_mask,
                "encoder_padding_mask",
            )  # (batch, src_len) or None

            def cross_attention(x):
                return _as_tuple(
                    self._cross_attention(
                        x,
                        encoder_sequence,
                        query_mask=decoder_padding,
                        value_mask=encoder_padding,
                        attention_mask=encoder_attention_mask,
                        return_attention_scores=return_attention_scores,
                        training=training,
                        cache=cross_attention_cache,
                    )
                )

            x, cross_extras = self._residual(
                x,
                cross_attention,
                self._cross_attention_norm,
                self._cross_attention_dropout,
                training=training,
            )  # (batch, tgt_len, d_model)

        x, _ = self._residual(
            x,
            self._feed_forward,
            self._feed_forward_norm,
            self._feed_forward_dropout,
            training=training,
        )  # (batch, tgt_len, d_model)

        # Each attention returns (scores?, cache?) after its output.
        scores, caches = [], []
        for extras, present in (
            (self_extras, True),
            (cross_extras, self._cross_attention is not None),
        ):
            if not present:
                continue
            extras = list(extras)
            if return_attention_scores:
                scores.append(extras.pop(0))
            cache = extras.pop(0) if extras else None
            caches.append(cache)
        outputs = [x]
        if return_attention_scores:
            outputs.extend(scores)
        if has_cache:
            outputs.extend(caches)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def compute_cross_attention_cache(self, encoder_sequence):
        """Project an encoder output into the cross-attention key/value cache.

        Compute this once per source sequence and pass it as
        `cross_attention_cache` at every decoding step.

        Args:
            encoder_sequence: `(batch, src_len, encoder_dim)` tensor.

        Returns:
            A `(batch, 2, src_len, num_heads, key_dim)` tensor.
        """
        if not self.built or self._cross_attention is None:
            raise ValueError(
                "`compute_cross_attention_cache` needs a block built with "
                "cross-attention: call it once on `(decoder_sequence, "
                f"encoder_sequence)` first. Received: built={self.built}"
            )
        check_sequence_shape("encoder_sequence", encoder_sequence.shape)
        return self._cross_attention.compute_cache(encoder_sequence)

    def empty_self_attention_cache(
        self, batch_size, max_length, dtype=None, rolling=False
    ):
        """A zero self-attention cache for `max_length` decoding steps.

        Args:
            batch_size: int or scalar tensor.
            max_length: int or scalar tensor, the number of positions.
            dtype: the cache dtype. Defaults to the layer's compute dtype.
            rolling: bool, whether to make a rolling cache of the last
                `sliding_window` positions (for `rolling_cache=True`),
                whatever `max_length`. Needs a `sliding_window`. Defaults
                to `False`.

        Returns:
            A `(batch_size, 2, length, num_key_value_heads, key_dim)` zero
            tensor, `length` being `max_length` (`sliding_window` when
            rolling).
        """
        if not self.built:
            raise ValueError(
                "`empty_self_attention_cache` needs a built block (its "
                "`key_dim` may depend on d_model): call or build it first. "
                f"Received: built={self.built}"
            )
        if rolling:
            if self.sliding_window is None:
                raise ValueError(
                    "A rolling cache (`rolling=True`) needs a block with a "
                    "`sliding_window`. Received: rolling=True, "
                    "sliding_window=None"
                )
            max_length = self.sliding_window
        key_dim = self._self_attention.key_dim
        return ops.zeros(
            (
                batch_size,
                2,
                max_length,
                self._self_attention.num_key_value_heads,
                key_dim,
            ),
            dtype=dtype or self.compute_dtype,
        )

    def compute_output_shape(
        self,
        decoder_sequence_shape,
        encoder_sequence_shape=None,
        decoder_padding_mask_shape=None,
        encoder_padding_mask_shape=None,
        decoder_attention_mask_shape=None,
        encoder_attention_mask_shape=None,
    ):
        check_sequence_shape("decoder_sequence", decoder_sequence_shape)
        if encoder_sequence_shape is not None:
            check_sequence_shape("encoder_sequence", encoder_sequence_shape)
            check_same_batch(
                "decoder_sequence",
                decoder_sequence_shape,
                "encoder_sequence",
                encoder_sequence_shape,
            )
        return tuple(decoder_sequence_shape)

    def compute_output_spec(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_attention_mask=None,
        use_causal_mask=True,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        return_attention_scores=False,
        training=None,
        decoder_sequence_mask=None,
        encoder_sequence_mask=None,
        rolling_cache=False,
    ):
        output_shape = self.compute_output_shape(decoder_sequence.shape)
        dtype = self.compute_dtype
        outputs = [keras.KerasTensor(output_shape, dtype=dtype)]
        has_cross_attention = encoder_sequence is not None
        if return_attention_scores:
            batch, tgt_len = output_shape[0], output_shape[1]
            self_keys = tgt_len
            if self_attention_cache is not None:
                self_keys = self_attention_cache.shape[2]
                if rolling_cache:  # the slots, then the new tokens
                    self_keys = (
                        None
                        if None in (self_keys, tgt_len)
                        else self_keys + tgt_len
                    )
            key_lengths = [self_keys]
            if has_cross_attention:
                cross_keys = encoder_sequence.shape[1]
                if cross_attention_cache is not None:
                    cross_keys = cross_attention_cache.shape[2]
                key_lengths.append(cross_keys)
            for keys in key_lengths:
                outputs.append(
                    keras.KerasTensor(
                        (batch, self.num_heads, tgt_len, keys), dtype=dtype
                    )
                )
        if self_attention_cache is not None:
            outputs.append(
                keras.KerasTensor(self_attention_cache.shape, dtype=dtype)
            )
            if has_cross_attention and cross_attention_cache is not None:
                outputs.append(
                    keras.KerasTensor(cross_attention_cache.shape, dtype=dtype)
                )
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
