"""Multi-head attention (Vaswani et al., 2017), self or cross, with a cache.

The module also holds `_MultiHeadAttentionBase`, the private base class that
`MultiHeadSelfAttention` shares with `MultiHeadAttention`: argument
validation, the configuration, the mask handling, the attention core, the
dropout and the output projection live there once.
"""

import numbers

import keras
from keras import ops

from keras_attention.layers._matmul_einsum_dense import MatMulEinsumDense
from keras_attention.layers._utils import check_attention_masks
from keras_attention.layers._utils import check_implementation
from keras_attention.layers._utils import check_positive_int
from keras_attention.layers._utils import check_rank_3
from keras_attention.layers._utils import check_rate
from keras_attention.layers._utils import clone_initializer
from keras_attention.layers.rotary_embedding import RotaryEmbedding
from keras_attention.ops.attention import scaled_dot_product_attention
from keras_attention.ops.attention.validation import check_soft_cap
from keras_attention.ops.masks import compute_attention_mask
from keras_attention.ops.masks import merge_masks
from keras_attention.ops.runtime_checks import check_then
from keras_attention.ops.updates import slice_update

__all__ = ["MultiHeadAttention"]

# Einsum equations of the projections (b: batch, t: time, d: input features,
# h: heads, k: per-head depth, o: output features).
_HEAD_PROJECTION = "btd,dhk->bthk"
_OUTPUT_PROJECTION = "bthk,hko->bto"
# Axis of `cache` that holds the keys (index 0) and the values (index 1).
_CACHE_KV_AXIS = 1


def _check_cache_update(cache, new_entries, index):
    """`cache`, once the new entries are checked to fit in it.

    `slice_update` would clamp an out-of-range index and overwrite the last
    entries silently. Known sizes raise a `ValueError` now; an index or
    lengths known only at run time are checked by `check_then`.
    """
    head = (
        "The new keys and values do not fit in the cache: "
        "`cache_update_index + new_len` must be at most the cache's max_len "
        "(axis 2), and the index non-negative. Received: "
    )
    max_len, new_len = cache.shape[2], new_entries.shape[2]
    static_index = (
        int(index)
        if isinstance(index, numbers.Integral) and not isinstance(index, bool)
        else None
    )
    if None not in (static_index, max_len, new_len):
        if static_index < 0 or static_index + new_len > max_len:
            raise ValueError(
                f"{head}cache_update_index={static_index}, "
                f"new_len={new_len}, max_len={max_len}"
            )
        return cache
    index = ops.cast(index, "int32")
    new_len, max_len = ops.shape(new_entries)[2], ops.shape(cache)[2]
    fits = ops.logical_and(index >= 0, index + new_len <= max_len)
    # The tensors themselves, not a formatted string: string formatting ops
    # would stop `jit_compile=True` decoding.
    return check_then(
        cache,
        fits,
        [
            head + "cache_update_index=",
            index,
            ", new_len=",
            new_len,
            ", max_len=",
            max_len,
        ],
    )


def rolling_cache_positions(last_position, cache_length):
    """`(cache_length,)` positions held by the slots of a rolling cache.

    A rolling cache writes the token at position `p` to slot
    `p % cache_length`. Once every position up to `last_position` is
    written, slot `s` holds the latest position `<= last_position` that
    maps to it; a negative entry marks a slot not written yet.

    Args:
        last_position: int or scalar int tensor, the last position written
            (`-1` before any).
        cache_length: int or scalar int tensor, the number of slots.

    Returns:
        An int32 `(cache_length,)` tensor.

    Example:

    >>> keras.ops.convert_to_numpy(rolling_cache_positions(5, 4)).tolist()
    [4, 5, 2, 3]
    """
    last_position = ops.cast(last_position, "int32")
    slots = ops.arange(cache_length, dtype="int32")  # (cache_length,)
    return last_position - ops.mod(last_position - slots, cache_length)


def _roll_into_cache(cache, new_entries, index):
    """`(cache, entries, positions)` of a rolling-cache update.

    `entries` are the cache as it was followed by the new entries, all
    attended to (the cache alone could have lost keys of the window of an
    early new token to a later one), and `positions` their absolute
    positions (negative: an empty slot). `cache` is the updated rolling
    cache: slot `p % cache_length` holds the new token at position `p`
    for the last `cache_length` of them.
    """
    length = ops.shape(cache)[2]
    new_len = ops.shape(new_entries)[2]
    index = ops.cast(index, "int32")
    entries = ops.concatenate([cache, new_entries], axis=2)
    positions = ops.concatenate(
        [
            rolling_cache_positions(index - 1, length),
            index + ops.arange(new_len, dtype="int32"),
        ],
        axis=0,
    )  # (cache_length + new_len,)
    if new_entries.shape[2] == 1:  # a decoding step: one in-place write
        slot = ops.mod(index, length)
        cache = slice_update(cache, [0, 0, slot, 0, 0], new_entries)
        return cache, entries, positions
    # Slot `s` takes its latest new token, or keeps its old entry.
    held = rolling_cache_positions(index + new_len - 1, length)
    slots = ops.arange(length, dtype="int32")
    source = ops.where(held >= index, length + held - index, slots)
    return ops.take(entries, source, axis=2), entries, positions


def _check_features(name, shape, projection):
    """Raise if the last axis of `shape` does not fit the built projection."""
    expected = projection.kernel.shape[0]
    if shape[-1] is not None and shape[-1] != expected:
        raise ValueError(
            f"`{name}` must have {expected} features (last axis), as when "
            f"the layer was built. Received: {name}.shape={tuple(shape)}"
        )


def _check_key_value_heads(num_heads, num_key_value_heads):
    """`num_key_value_heads` (default `num_heads`), once it divides it."""
    if num_key_value_heads is None:
        return num_heads
    num_key_value_heads = check_positive_int(
        "num_key_value_heads", num_key_value_heads
    )
    if num_heads % num_key_value_heads:
        raise ValueError(
            "`num_key_value_heads` must divide `num_heads`: each key/value "
            "head serves a group of query heads. Received: "
            f"num_heads={num_heads}, num_key_value_heads={num_key_value_heads}"
        )
    return num_key_value_heads


class _MultiHeadAttentionBase(keras.layers.Layer):
    """Shared machinery of `MultiHeadAttention` and `MultiHeadSelfAttention`.

    Subclasses create their input projections in `build()` (with
    `_head_projection`), call `_build_output_projection()`, and in `call()`
    hand the projected `(batch, length, heads, depth)` tensors and the
    combined mask to `_attend()`.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        output_dim=None,
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        attention_implementation="auto",
        chunk_size=None,
        seed=None,
        num_key_value_heads=None,
        sliding_window=None,
        soft_cap=None,
        rotary=False,
        rotary_max_wavelength=10000,
        rotary_scaling_factor=1.0,
        **kwargs,
    ):
        num_heads = check_positive_int("num_heads", num_heads)
        key_dim = check_positive_int("key_dim", key_dim)
        num_key_value_heads = _check_key_value_heads(
            num_heads, num_key_value_heads
        )
        sliding_window = check_positive_int(
            "sliding_window", sliding_window, allow_none=True
        )
        check_soft_cap(soft_cap)
        if not isinstance(rotary, bool):
            raise ValueError(
                f"`rotary` must be a bool. Received: rotary={rotary!r}"
            )
        if rotary and key_dim % 2:
            raise ValueError(
                "Rotary position embeddings rotate pairs of features, so "
                f"they need an even `key_dim`. Received: key_dim={key_dim}"
            )
        value_dim = check_positive_int("value_dim", value_dim, allow_none=True)
        output_dim = check_positive_int(
            "output_dim", output_dim, allow_none=True
        )
        chunk_size = check_positive_int(
            "chunk_size", chunk_size, allow_none=True
        )
        check_rate("dropout", dropout)
        check_implementation(
            "attention_implementation", attention_implementation
        )
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = key_dim if value_dim is None else value_dim
        self.output_dim = output_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.attention_implementation = attention_implementation
        self.chunk_size = chunk_size
        self.seed = seed
        self.num_key_value_heads = num_key_value_heads
        self.sliding_window = sliding_window
        self.soft_cap = None if soft_cap is None else float(soft_cap)
        self.rotary = rotary
        self.rotary_max_wavelength = rotary_max_wavelength
        self.rotary_scaling_factor = rotary_scaling_factor
        self.supports_masking = True
        self._seed_generator = (
            keras.random.SeedGenerator(seed) if dropout > 0.0 else None
        )
        self._rotary_embedding = None
        if rotary:
            # No weights: the layer only rotates (batch, len, heads, depth).
            self._rotary_embedding = RotaryEmbedding(
                max_wavelength=rotary_max_wavelength,
                scaling_factor=rotary_scaling_factor,
                dtype=self.dtype_policy,
                name="rotary_embedding",
            )

    def _rotate(self, heads, start_index=0):
        """`heads` rotated for positions `start_index + t` (if `rotary`)."""
        if self._rotary_embedding is None:
            return heads
        return self._rotary_embedding(heads, start_index=start_index)

    def _head_projection(self, name, depth, input_shape, heads=None):
        """A built `(d_in) -> (heads, depth)` projection named `name`."""
        layer = MatMulEinsumDense(
            _HEAD_PROJECTION,
            output_shape=(None, heads or self.num_heads, depth),
            bias_axes="hk" if self.use_bias else None,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            name=name,
            dtype=self.dtype_policy,
        )
        layer.build(input_shape)
        return layer

    def _build_output_projection(self, query_shape):
        output_dim = self._output_dim(query_shape)
        self.output_dense = MatMulEinsumDense(
            _OUTPUT_PROJECTION,
            output_shape=(None, output_dim),
            bias_axes="o" if self.use_bias else None,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            name="attention_output",
            dtype=self.dtype_policy,
        )
        self.output_dense.build(
            (query_shape[0], query_shape[1], self.num_heads, self.value_dim)
        )

    def _output_dim(self, query_shape):
        return query_shape[-1] if self.output_dim is None else self.output_dim

    def _attend(
        self,
        query,
        key,
        value,
        attention_mask,
        training,
        return_attention_scores,
        causal=False,
        window=None,
    ):
        """Attention over projected heads, then the output projection.

        Args:
            query: `(batch, q_len, heads, key_dim)` projected queries.
            key: `(batch, k_len, kv_heads, key_dim)` projected keys.
            value: `(batch, k_len, kv_heads, value_dim)` projected values.
            attention_mask: boolean mask broadcastable to
                `(batch, q_len, k_len)`, or `None`.
            training: bool, whether dropout is active.
            return_attention_scores: bool, whether to return the weights.
            causal: bool, the op's (bottom-right) causal mask, built per
                tile by the memory-efficient kernels.
            window: optional int, the op's sliding window.

        Returns:
            `(output, scores)`: the `(batch, q_len, output_dim)` output and
            the `(batch, heads, q_len, k_len)` weights (`None` unless
            requested).
        """
        if attention_mask is not None:
            attention_mask = ops.expand_dims(attention_mask, 1)  # (b, 1, q, k)
        result = scaled_dot_product_attention(
            query,
            key,
            value,
            mask=attention_mask,
            dropout_rate=self.dropout,
            training=training,
            seed=self._seed_generator,
            return_attention_scores=return_attention_scores,
            implementation=self.attention_implementation,
            chunk_size=self.chunk_size,
            causal=causal,
            window=window,
            soft_cap=self.soft_cap,
        )
        scores = None
        if return_attention_scores:
            result, scores = result  # scores: (batch, heads, q_len, k_len)
        output = self.output_dense(result)  # (batch, q_len, output_dim)
        return output, scores

    def _output_spec(self, query_shape, key_length, return_attention_scores):
        """`KerasTensor`s of the output and, if requested, the scores."""
        query_shape = tuple(query_shape)
        output = keras.KerasTensor(
            query_shape[:-1] + (self._output_dim(query_shape),),
            dtype=self.compute_dtype,
        )
        if not return_attention_scores:
            return (output,)
        scores = keras.KerasTensor(
            (query_shape[0], self.num_heads, query_shape[1], key_length),
            dtype=self.compute_dtype,
        )
        return output, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "output_dim": self.output_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "attention_implementation": self.attention_implementation,
                "chunk_size": self.chunk_size,
                "seed": self.seed,
                "num_key_value_heads": self.num_key_value_heads,
                "sliding_window": self.sliding_window,
                "soft_cap": self.soft_cap,
                "rotary": self.rotary,
                "rotary_max_wavelength": self.rotary_max_wavelength,
                "rotary_scaling_factor": self.rotary_scaling_factor,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_attention")
class MultiHeadAttention(_MultiHeadAttentionBase):
    """Multi-head scaled dot-product attention, self or cross.

    The query, key and value are projected to `num_heads` heads, every head
    computes `softmax(Q K^T / sqrt(key_dim)) V` with
    `keras_attention.ops.scaled_dot_product_attention`, and the heads are
    projected back to `output_dim` features. With `query = value` this is
    self-attention, otherwise cross-attention. The weights are laid out
    exactly like those of `keras.layers.MultiHeadAttention` (sublayers
    `query`, `key`, `value` and `attention_output`), so they can be copied
    one-to-one with `set_weights`.

    Masks are boolean (`True` = may attend) and combined with a logical AND:
    the implicit Keras masks of `query`, `value` and `key` (for example from
    `Embedding(mask_zero=True)`), `attention_mask` and the causal mask. A
    query whose keys are all masked gets a zero output (never NaN). The
    output carries the query's mask. The causal mask is aligned to the
    bottom-right corner: query `i` sees keys `j <= i + k_len - q_len`, the
    usual lower-triangular mask when `q_len == k_len`.

    For fast autoregressive decoding the layer takes a key/value `cache` of
    shape `(batch, 2, max_len, num_key_value_heads, key_dim)` holding
    projected keys (`cache[:, 0]`) and values (`cache[:, 1]`); this needs
    `value_dim == key_dim`.
    - With `cache_update_index`, the keys and values of the current `value`
      (and `key`) input, usually a single token, are projected, written into
      the cache at that index, and the queries attend over the whole cache.
      Cache positions that are not written yet must be masked: with
      `use_causal_mask=True` query `t` of the current step attends the cache
      positions `<= cache_update_index + t`; an explicit `attention_mask`
      must have shape `(batch, q_len, max_len)` and cover the same rule. The
      implicit masks of `value` and `key` describe only the new tokens and
      are ignored in this mode.
    - Without `cache_update_index`, the cache is used as it is (for example
      cross-attention keys and values precomputed once with
      `compute_cache()`): `value` and `key` are not projected.
    - With `rolling_cache=True` (causal self-attention with a
      `sliding_window` `w`), the cache is a ring buffer of
      `cache_len >= w` slots that holds only the last `cache_len`
      positions: the token at position `p` goes to slot `p % cache_len`,
      so memory is bounded by the window, not by the sequence. Before a
      call at `cache_update_index = i` it must hold positions
      `i - cache_len .. i - 1` (those `>= 0`), as the previous calls leave
      it. The queries attend to the cache as it was followed by the new
      tokens (so a prompt chunk of any length, even longer than the
      cache, is exact), masked by absolute positions; keys are rotated at
      their absolute positions before they are cached. The outputs equal
      those of the full-length cache and of the uncached causal call.
    With a cache the layer also returns the (updated) cache.

    Args:
        num_heads: int, number of attention heads.
        key_dim: int, size of each head for the query and the key.
        value_dim: int, size of each head for the value. Defaults to
            `key_dim`.
        output_dim: int, size of the output features. Defaults to the last
            dimension of the query.
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
        num_key_value_heads: int dividing `num_heads`, the number of key
            and value heads (grouped-query attention; `1` is multi-query
            attention). The key/value projections and the cache hold only
            these heads; query head `i` uses key/value head
            `i // (num_heads // num_key_value_heads)`, as in
            `keras.layers.GroupedQueryAttention`. Defaults to `num_heads`.
        sliding_window: optional int `w`, local attention: with the causal
            mask query `i` sees keys `[i - w + 1, i]`, without it keys
            less than `w` positions away. The memory-efficient attention
            then costs `length * w`, not `length^2`. Defaults to `None`.
        soft_cap: optional positive float, logit soft-capping: scores
            become `soft_cap * tanh(scores / soft_cap)`. Defaults to `None`.
        rotary: bool, whether to rotate each head's queries and keys with
            rotary position embeddings (Su et al., 2021), positions counted
            from 0 (from `cache_update_index` with a cache, which then holds
            rotated keys). Meant for self-attention. Defaults to `False`.
        rotary_max_wavelength: int, the longest wavelength of the rotary
            embedding. Defaults to `10000`.
        rotary_scaling_factor: float, positions are divided by it (linear
            position interpolation). Defaults to `1.0`.
        **kwargs: other keyword arguments of `keras.layers.Layer`, such as
            `name` and `dtype`.

    Call arguments:
        query: `(batch, q_len, query_features)` tensor.
        value: `(batch, k_len, value_features)` tensor.
        key: optional `(batch, k_len, key_features)` tensor. Defaults to
            `value`.
        query_mask: optional `(batch, q_len)` mask of the queries, filled in
            by Keras from the implicit mask of `query`.
        value_mask: optional `(batch, k_len)` mask of the values, filled in
            by Keras from the implicit mask of `value`.
        key_mask: optional `(batch, k_len)` mask of the keys, filled in by
            Keras from the implicit mask of `key`.
        attention_mask: optional boolean `(batch, q_len, k_len)` mask
            (`k_len = max_len` with a cache), `True` where query `i` may
            attend to key `j`.
        use_causal_mask: bool, whether query `i` may only attend to earlier
            keys (see above for the cache). Defaults to `False`.
        return_attention_scores: bool, whether to also return the attention
            weights. Defaults to `False`.
        training: bool, whether dropout is active. Defaults to `None`.
        cache: optional `(batch, 2, max_len, num_key_value_heads,
            key_dim)` key/value cache.
        cache_update_index: optional int or scalar int tensor, the position
            at which the keys and values of `value` are written into
            `cache`.
        rolling_cache: bool, whether `cache` is a rolling cache (see
            above; needs `cache_update_index`, `use_causal_mask=True`, a
            `sliding_window`, no `attention_mask`). Defaults to `False`.

    Returns:
        The `(batch, q_len, output_dim)` output; with
        `return_attention_scores=True` the tuple `(output, scores)` where
        `scores` has shape `(batch, num_heads, q_len, k_len)` (with a
        rolling cache `k_len = cache_len + q_len`: the slots, then the new
        tokens); with a cache, the updated cache is appended:
        `(output, cache)` or `(output, scores, cache)`.

    Example:

    >>> layer = MultiHeadAttention(num_heads=2, key_dim=4)
    >>> query = keras.random.normal((3, 5, 8))
    >>> value = keras.random.normal((3, 7, 6))
    >>> layer(query, value).shape
    TensorShape([3, 5, 8])

    Cached self-attention decoding, one token at a time:

    >>> self_attention = MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = keras.random.normal((3, 5, 8))
    >>> cache = keras.ops.zeros((3, 2, 5, 2, 4))  # (batch, 2, len, heads, 4)
    >>> for t in range(5):
    ...     token = x[:, t:t + 1]
    ...     step, cache = self_attention(
    ...         token, token, cache=cache, cache_update_index=t,
    ...         use_causal_mask=True)
    >>> step.shape
    TensorShape([3, 1, 8])

    With a sliding window the cache can hold the window only:

    >>> local = MultiHeadAttention(num_heads=2, key_dim=4, sliding_window=2)
    >>> cache = keras.ops.zeros((3, 2, 2, 2, 4))  # (batch, 2, w, heads, 4)
    >>> for t in range(5):
    ...     token = x[:, t:t + 1]
    ...     step, cache = local(
    ...         token, token, cache=cache, cache_update_index=t,
    ...         use_causal_mask=True, rolling_cache=True)
    >>> cache.shape
    TensorShape([3, 2, 2, 2, 4])

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        check_rank_3("query", query_shape)
        check_rank_3("value", value_shape)
        check_rank_3("key", key_shape)
        self.query_dense = self._head_projection(
            "query", self.key_dim, query_shape
        )
        heads = self.num_key_value_heads
        self.key_dense = self._head_projection(
            "key", self.key_dim, key_shape, heads
        )
        self.value_dense = self._head_projection(
            "value", self.value_dim, value_shape, heads
        )
        self._build_output_projection(query_shape)

    def _check_inputs(self, **tensors):
        """Raise if an input's rank or features do not fit the layer."""
        projections = {
            "query": self.query_dense,
            "value": self.value_dense,
            "key": self.key_dense,
        }
        for name, tensor in tensors.items():
            check_rank_3(name, tensor.shape)
            _check_features(name, tensor.shape, projections[name])

    def _check_cache_support(self):
        if self.value_dim != self.key_dim:
            raise ValueError(
                "A key/value cache stores keys and values in one tensor, so "
                "it needs `value_dim == key_dim`. Received: "
                f"key_dim={self.key_dim}, value_dim={self.value_dim}"
            )

    def _check_cache(self, cache):
        self._check_cache_support()
        shape = tuple(cache.shape)
        expected = (2, None, self.num_key_value_heads, self.key_dim)
        if len(shape) != 5 or any(
            got is not None and want is not None and got != want
            for got, want in zip(shape[1:], expected)
        ):
            raise ValueError(
                "`cache` must have shape (batch, 2, max_len, "
                "num_key_value_heads, key_dim) = (batch, 2, max_len, "
                f"{self.num_key_value_heads}, {self.key_dim}). Received: "
                f"cache.shape={shape}"
            )

    def _check_rolling_cache(
        self, cache, cache_update_index, use_causal_mask, attention_mask
    ):
        """Raise unless a rolling cache can give the uncached result."""
        needs = {
            "a `cache`": cache is not None,
            "a `cache_update_index`": cache_update_index is not None,
            "`use_causal_mask=True`": use_causal_mask,
            "no `attention_mask` (slots are not positions)": (
                attention_mask is None
            ),
            "a layer with a `sliding_window`": self.sliding_window is not None,
        }
        for need, met in needs.items():
            if not met:
                raise ValueError(
                    f"`rolling_cache=True` needs {need}. Received: "
                    f"cache_update_index={cache_update_index}, "
                    f"use_causal_mask={use_causal_mask}, sliding_window="
                    f"{self.sliding_window}, cache="
                    f"{None if cache is None else tuple(cache.shape)}, "
                    f"attention_mask={attention_mask is not None}"
                )
        length = cache.shape[2]
        if length is not None and length < self.sliding_window:
            raise ValueError(
                "A rolling `cache` must hold at least `sliding_window` "
                "positions (axis 2), or it would drop keys that the window "
                f"still sees. Received: cache.shape={tuple(cache.shape)}, "
                f"sliding_window={self.sliding_window}"
            )
        if isinstance(cache_update_index, numbers.Integral) and (
            cache_update_index < 0
        ):
            raise ValueError(
                "`cache_update_index` must be non-negative. Received: "
                f"cache_update_index={cache_update_index}"
            )

    def compute_cache(self, value, key=None):
        """Projects a whole sequence into a key/value cache.

        Used to precompute the keys and values of a cross-attention (the
        encoder outputs, once per sequence) and to seed a self-attention
        cache with a prompt. The layer must be built.

        Args:
            value: `(batch, length, value_features)` tensor.
            key: optional `(batch, length, key_features)` tensor. Defaults
                to `value`.

        Returns:
            The `(batch, 2, length, num_key_value_heads, key_dim)` cache
            (with `rotary`, keys rotated for positions `0..length - 1`).
        """
        self._check_cache_support()
        if not self.built:
            raise ValueError(
                "`compute_cache()` needs the projection weights: call or "
                f"build the layer first. Received: layer {self.name!r} that "
                "is not built"
            )
        key = value if key is None else key
        self._check_inputs(value=value, key=key)
        keys = self._rotate(self.key_dense(ops.copy(key)))  # (b, len, h, k)
        values = self.value_dense(ops.copy(value))  # (batch, len, heads, dim)
        return ops.stack([keys, values], axis=_CACHE_KV_AXIS)

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        cache=None,
        cache_update_index=None,
        rolling_cache=False,
    ):
        key = value if key is None else key
        self._check_inputs(query=query, value=value, key=key)
        if cache is None and cache_update_index is not None:
            raise ValueError(
                "`cache_update_index` needs a `cache`. Received: cache=None, "
                f"cache_update_index={cache_update_index}"
            )
        if rolling_cache:
            self._check_rolling_cache(
                cache, cache_update_index, use_causal_mask, attention_mask
            )
        # The copies drop the implicit Keras masks, which this layer handles
        # itself, so that the projections do not warn about them.
        projected_query = self.query_dense(ops.copy(query))  # (b, q, h, k)
        position = 0  # of the first query (and new key), for `rotary`
        key_positions = None  # of the cached keys, for the masks
        if cache is None:
            keys = self._rotate(self.key_dense(ops.copy(key)))  # (b, k, g, k)
            values = self.value_dense(ops.copy(value))  # (b, k_len, g, v)
        else:
            self._check_cache(cache)
            cache = ops.cast(cache, self.compute_dtype)
            entries = cache  # what the queries attend to
            if cache_update_index is not None:
                position = cache_update_index
                # One in-place-able update of the stacked cache: writing keys
                # and values apart and re-stacking would copy it every step.
                new_entries = ops.stack(
                    [
                        self._rotate(self.key_dense(ops.copy(key)), position),
                        self.value_dense(ops.copy(value)),
                    ],
                    axis=_CACHE_KV_AXIS,
                )  # (batch, 2, new_len, kv_heads, key_dim)
                if rolling_cache:
                    cache, entries, key_positions = _roll_into_cache(
                        cache, new_entries, cache_update_index
                    )  # entries: (batch, 2, cache_len + new_len, g, k)
                else:
                    cache = _check_cache_update(
                        cache, new_entries, cache_update_index
                    )
                    cache = slice_update(
                        cache, [0, 0, cache_update_index, 0, 0], new_entries
                    )
                    entries = cache
                    key_positions = ops.arange(
                        ops.shape(cache)[2], dtype="int32"
                    )  # (max_len,)
                # The new tokens' masks do not cover the whole cache.
                value_mask = key_mask = None
            keys = entries[:, 0]  # (batch, max_len, kv_heads, key_dim)
            values = entries[:, 1]  # (batch, max_len, kv_heads, key_dim)
        projected_query = self._rotate(projected_query, position)

        check_attention_masks(
            query.shape,
            keys.shape,
            query_mask=query_mask,
            value_mask=value_mask,
            key_mask=key_mask,
            attention_mask=attention_mask,
        )
        mask = compute_attention_mask(
            query,
            keys,
            query_mask=query_mask,
            value_mask=value_mask,
            key_mask=key_mask,
            attention_mask=attention_mask,
        )  # (batch|1, q_len|1, k_len|1)
        # Without a cache the op builds the causal and window masks itself
        # (per tile on the memory-efficient path); with one, queries stand
        # at `cache_update_index + t`, not at the bottom-right corner.
        causal, window = use_causal_mask, self.sliding_window
        if cache_update_index is not None and (causal or window):
            query_positions = ops.cast(
                cache_update_index, "int32"
            ) + ops.arange(ops.shape(query)[1], dtype="int32")  # (q_len,)
            mask = merge_masks(
                mask,
                _positional_mask(
                    query_positions, key_positions, causal, window
                ),
            )
            causal, window = False, None

        output, scores = self._attend(
            projected_query,
            keys,
            values,
            mask,
            training,
            return_attention_scores,
            causal=causal,
            window=window,
        )
        outputs = (output,)
        if return_attention_scores:
            outputs += (scores,)
        if cache is not None:
            outputs += (cache,)
        return outputs[0] if len(outputs) == 1 else outputs

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        query_shape = tuple(query_shape)
        return query_shape[:-1] + (self._output_dim(query_shape),)

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        cache=None,
        cache_update_index=None,
        rolling_cache=False,
    ):
        key = value if key is None else key
        key_length = key.shape[1] if cache is None else cache.shape[2]
        if rolling_cache and None not in (key_length, key.shape[1]):
            key_length += key.shape[1]  # the cache, then the new tokens
        elif rolling_cache:
            key_length = None
        outputs = self._output_spec(
            query.shape, key_length, return_attention_scores
        )
        if cache is not None:
            outputs += (
                keras.KerasTensor(cache.shape, dtype=self.compute_dtype),
            )
        return outputs[0] if len(outputs) == 1 else outputs


def _positional_mask(query_positions, key_positions, causal, window):
    """`(1, q_len, k_len)` mask of queries over keys, by absolute position.

    With `causal` a query sees keys at positions `<=` its own; with
    `window` only those less than `window` positions away (before it when
    causal). Keys at negative positions (empty rolling-cache slots) are
    never seen.
    """
    distance = query_positions[:, None] - key_positions[None, :]  # (q, k)
    allowed = ops.greater_equal(key_positions, 0)[None, :]  # (1, k_len)
    if causal:
        allowed = ops.logical_and(allowed, ops.greater_equal(distance, 0))
    if window:
        allowed = ops.logical_and(allowed, ops.less(ops.abs(distance), window))
    return allowed[None]  # (1, q_len, k_len)
