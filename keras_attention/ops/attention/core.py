"""The public attention op: validate, choose a kernel, run it.

See `keras_attention.ops.attention` for the layout and the dispatch.
"""

import importlib

import keras
from keras import ops

from keras_attention.ops.attention import validation
from keras_attention.ops.attention.dispatch import choose_strategy
from keras_attention.ops.attention.reference import reference_attention
from keras_attention.ops.masks import as_bool_mask

__all__ = ["scaled_dot_product_attention"]

# The module of each backend's own kernels; other backends run the
# reference kernel only.
_KERNEL_MODULES = {
    "tensorflow": "keras_attention.ops.attention.tensorflow_kernels",
    "jax": "keras_attention.ops.attention.jax_kernels",
    "torch": "keras_attention.ops.attention.torch_kernels",
}


def backend_kernels(backend=None):
    """The kernel module of `backend` (default: Keras's), or `None`."""
    name = _KERNEL_MODULES.get(backend or keras.backend.backend())
    return None if name is None else importlib.import_module(name)


def _as_rank_4(mask):
    """`mask` with leading axes of size 1 up to rank 4 (validated first)."""
    if mask is not None:
        while len(mask.shape) < 4:
            mask = ops.expand_dims(mask, 0)
    return mask


def _share_key_value_heads(query, key, value):
    """Repeat grouped key/value heads to the query heads (GQA, MQA).

    Query head `i` attends with key/value head `i // group`, as in
    `keras.layers.GroupedQueryAttention`.
    """
    q_heads, kv_heads = query.shape[2], key.shape[2]
    if q_heads is None or kv_heads is None or q_heads == kv_heads:
        return key, value
    group = q_heads // kv_heads
    return ops.repeat(key, group, axis=2), ops.repeat(value, group, axis=2)


def scaled_dot_product_attention(
    query,
    key,
    value,
    mask=None,
    causal=False,
    scale=None,
    dropout_rate=0.0,
    training=None,
    seed=None,
    return_attention_scores=False,
    implementation="auto",
    chunk_size=None,
    attention_bias=None,
    window=None,
    soft_cap=None,
):
    """Scaled dot-product attention, `softmax(Q K^T / sqrt(d_k)) V`.

    Inputs are laid out `(batch, length, heads, depth)` as in
    `keras.ops.dot_product_attention`. Scores and softmax statistics are
    computed in float32 (for float16 inputs `Q K^T` too, past whose range
    float16 would overflow); the output has the dtype of `query`. Keys masked
    out get exactly zero weight, and a query whose keys are all masked gets
    a zero output.

    Args:
        query: `(batch, q_len, heads, depth)` tensor.
        key: `(batch, k_len, kv_heads, depth)` tensor. `kv_heads` divides
            `heads`: fewer key/value heads than query heads is grouped-query
            attention (one is multi-query attention); query head `i` uses
            key/value head `i // (heads // kv_heads)`.
        value: `(batch, k_len, kv_heads, value_depth)` tensor.
        mask: optional boolean mask (True = may attend) broadcastable to
            `(batch, heads, q_len, k_len)`; non-boolean masks are read as
            `mask != 0`. Defaults to `None`.
        causal: bool, whether query `i` may only attend to keys
            `j <= i + k_len - q_len` (the usual lower-triangular mask when
            `q_len == k_len`). Defaults to `False`.
        scale: float, the factor applied to the scores. Defaults to
            `1 / sqrt(depth)`.
        dropout_rate: float in `[0, 1)`, dropout on the attention weights,
            applied only when `training` is truthy. Defaults to `0.0`.
        training: bool, whether dropout is active. With `False` the tiled
            dense path does not keep the weights for a backward pass
            (inference is faster; a gradient, if asked for, recomputes
            them). Defaults to `None` (no dropout, weights kept).
        seed: optional int or `keras.random.SeedGenerator` for dropout.
        return_attention_scores: bool, whether to also return the
            `(batch, heads, q_len, k_len)` attention weights (these need the
            dense implementation). Defaults to `False`.
        implementation: `"dense"` (keeps the weights for the backward
            pass), `"chunked"` (memory-efficient: never holds the `n^2`
            scores, recomputes them in the backward pass) or `"auto"`.
            `"auto"` uses the chunked path when no weights are requested
            and the static shapes say the float32 score matrix would take at
            least `AUTO_CHUNKED_MIN_SCORE_BYTES` (1 GiB), else the dense
            path. Each backend runs its own kernels (see
            `keras_attention.ops.attention`). Defaults to `"auto"`.
        chunk_size: int, query rows per tile, or `None` to pick the most
            rows (up to 1024) whose float32 scores `(rows, k_len)` fit in
            16 MiB. With `None` the dense path tiles only when one head's
            scores take `DENSE_TILE_MIN_BYTES` or more (from 256 x 256 to
            1,024 x 1,024 keys, by the CPU kernels in use), known from
            static shapes, and no GPU is visible; an explicit `chunk_size`
            always tiles. On JAX and PyTorch it sets the blocks of the
            chunked path (on JAX the key blocks too); their dense path has
            no tiles. Defaults to `None`.
        attention_bias: optional float tensor broadcastable to
            `(batch, heads, q_len, k_len)`, added to the (capped) scores
            before the softmax: ALiBi slopes, relative-position biases.
            It is differentiable. Defaults to `None`.
        window: optional positive int, sliding-window (local) attention:
            with `causal`, query `i` sees keys `[i - window + 1, i]`;
            without, keys `j` with `|i - j| < window` (positions aligned
            bottom-right, as the causal mask). The chunked implementation
            skips the blocks outside the window, so its cost grows as
            `n * window`; the dense one masks. Defaults to `None`.
        soft_cap: optional positive float: scores become
            `soft_cap * tanh(scores / soft_cap)` before the bias and the
            softmax (logit soft-capping, as in Gemma 2). Defaults to
            `None`.

    Returns:
        The `(batch, q_len, heads, value_depth)` output, or the tuple
        `(output, weights)` when `return_attention_scores=True`.

    Example:

    >>> q = keras.random.normal((2, 5, 4, 8))
    >>> k = v = keras.random.normal((2, 7, 4, 8))
    >>> tuple(scaled_dot_product_attention(q, k, v).shape)
    (2, 5, 4, 8)

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Rabe & Staats, 2021](https://arxiv.org/abs/2112.05682)
        - [Dao et al., 2022](https://arxiv.org/abs/2205.14135)
    """
    query = ops.convert_to_tensor(query)
    validation.check_floating(query)
    key = ops.convert_to_tensor(key, dtype=query.dtype)
    value = ops.convert_to_tensor(value, dtype=query.dtype)
    mask = None if mask is None else as_bool_mask(mask)
    validation.validate_attention_inputs(
        query, key, value, mask, implementation, chunk_size, dropout_rate
    )
    if attention_bias is not None:
        attention_bias = ops.convert_to_tensor(attention_bias)
    validation.check_score_options(query, key, attention_bias, window, soft_cap)
    validation.check_weights_available(implementation, return_attention_scores)
    mask = _as_rank_4(mask)
    key, value = _share_key_value_heads(query, key, value)
    attention_bias = _as_rank_4(attention_bias)
    if window is not None:
        window = int(window)
    if soft_cap is not None:
        soft_cap = float(soft_cap)
    if chunk_size is not None:
        chunk_size = int(chunk_size)  # NumPy integers too
    if scale is None:
        scale = validation.default_scale(query)
    use_dropout = dropout_rate > 0.0 and bool(training)
    dropout_rate = dropout_rate if use_dropout else 0.0
    backend = keras.backend.backend()
    kernels = backend_kernels(backend)
    strategy = choose_strategy(
        backend,
        implementation,
        tuple(query.shape),
        tuple(key.shape),
        return_weights=return_attention_scores,
        dropout=use_dropout,
        training=training,
        chunk_size=chunk_size,
        dense_tile_min_bytes=(
            kernels.dense_tile_min_bytes() if backend == "tensorflow" else None
        ),
        window=window,
        soft_cap=soft_cap is not None,
    )
    options = dict(bias=attention_bias, window=window, soft_cap=soft_cap)
    if strategy.kernel == "dense" and backend != "tensorflow":
        output, weights = reference_attention(
            query,
            key,
            value,
            mask,
            causal,
            scale,
            dropout_rate,
            seed,
            **options,
        )
    else:
        output, weights = kernels.attention(
            query,
            key,
            value,
            mask,
            causal,
            scale,
            dropout_rate,
            seed,
            strategy,
            return_attention_scores,
            **options,
        )
    if return_attention_scores:
        return output, ops.cast(weights, query.dtype)
    return output
