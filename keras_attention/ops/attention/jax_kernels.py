"""JAX's memory-efficient attention: an online softmax over key blocks.

The queries are cut into blocks; each query block runs a `lax.scan` over key
blocks that keeps only a running row maximum, row sum and weighted sum of
values (Rabe & Staats, 2021; the forward pass of FlashAttention). Both the
query-block function and the key step are wrapped in `jax.checkpoint`, so
the backward pass recomputes a block's scores instead of storing them:
memory grows with `n * block`, never `n^2`. With a sliding window each query
block visits only the fixed number of key blocks that cover its window, so
the cost grows as `n * window`. A causal call visits every key block (the
blocks past the diagonal are masked, not skipped: skipping them with
`lax.cond` made the backward pass keep residuals of every block pair).

The dense implementation on JAX is `reference.reference_attention`, which
XLA fuses well at the lengths where the `n^2` weights fit.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from keras_attention.ops.attention.reference import MASKED_SCORE
from keras_attention.ops.dropout import seed_bits

__all__ = ["attention"]

# Query rows and keys per block (with `chunk_size=None`): a (512, 1024)
# float32 score block is 2 MiB, which stays in a CPU's L2/L3 cache.
QUERY_BLOCK = 512
KEY_BLOCK = 1024


def _pad_axis(x, axis, size, value=0):
    pad = size - x.shape[axis]
    if pad == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, pad)
    return jnp.pad(x, widths, constant_values=value)


def _blocks(x, block, axis=2):
    """(b, h, n, d) -> (n // block, b, h, block, d)."""
    shape = (
        x.shape[:axis] + (x.shape[axis] // block, block) + x.shape[axis + 1 :]
    )
    return jnp.moveaxis(x.reshape(shape), axis, 0)


def attention(
    query,
    key,
    value,
    mask,
    causal,
    scale,
    dropout_rate,
    seed,
    strategy,
    return_weights,
    bias=None,
    window=None,
    soft_cap=None,
):
    """Blockwise attention; returns (output, None)."""
    del return_weights  # the dense kernel serves calls that want weights
    rate = float(dropout_rate)
    bits = seed_bits(seed) if rate > 0.0 else None
    output = _blockwise(
        query,
        key,
        value,
        mask,
        bits,
        bias,
        causal=bool(causal),
        scale=float(scale),
        rate=rate,
        block=strategy.chunk_size,
        window=window,
        soft_cap=soft_cap,
    )
    return output, None


# Compiled once per shape and option set, eagerly called or traced.
@functools.partial(
    jax.jit,
    static_argnames=("causal", "scale", "rate", "block", "window", "soft_cap"),
)
def _blockwise(
    query,
    key,
    value,
    mask,
    bits,
    bias,
    causal,
    scale,
    rate,
    block,
    window,
    soft_cap,
):
    batch, q_len, heads, _ = query.shape
    k_len, v_depth = key.shape[1], value.shape[-1]
    dtype = query.dtype
    q_block = min(block or QUERY_BLOCK, max(q_len, 1))
    k_block = min(block or KEY_BLOCK, max(k_len, 1))
    q_blocks_n = -(-q_len // q_block)
    k_blocks_n = -(-k_len // k_block)
    if q_len == 0 or k_len == 0 or batch == 0:
        return jnp.zeros((batch, q_len, heads, v_depth), dtype)
    offset = k_len - q_len  # bottom-right causal alignment

    def heads_first(x, length, block):
        x = jnp.transpose(x.astype(jnp.float32), (0, 2, 1, 3))  # (b, h, n, d)
        return _blocks(_pad_axis(x, 2, length * block), block)

    q = heads_first(query * scale, q_blocks_n, q_block)  # (nq, b, h, Bq, d)
    k = heads_first(key, k_blocks_n, k_block)  # (nk, b, h, Bk, d)
    v = heads_first(value, k_blocks_n, k_block)  # (nk, b, h, Bk, dv)

    def pad_blocks(x, value):
        if x.shape[2] != 1:
            x = _pad_axis(x, 2, q_blocks_n * q_block, value)
        if x.shape[3] != 1:
            x = _pad_axis(x, 3, k_blocks_n * k_block, value)
        return x

    def block_of(x, i, j):
        """The part of rank-4 `x` broadcastable to block (i, j)'s scores."""
        if x.shape[2] != 1:
            x = lax.dynamic_slice_in_dim(x, i * q_block, q_block, 2)
        if x.shape[3] != 1:
            x = lax.dynamic_slice_in_dim(x, j * k_block, k_block, 3)
        return x

    if mask is not None:
        mask = pad_blocks(mask, False)
    if bias is not None:
        bias = pad_blocks(bias, 0)
    base_key = None
    if rate > 0.0:
        base_key = jax.random.wrap_key_data(bits.astype(jnp.uint32))

    def block_mask(i, j):
        """Boolean mask broadcastable to (b, h, Bq, Bk) of block (i, j)."""
        rows = i * q_block + jnp.arange(q_block)[:, None]  # (Bq, 1)
        cols = j * k_block + jnp.arange(k_block)[None, :]  # (1, Bk)
        allowed = cols < k_len
        distance = rows + offset - cols  # (Bq, Bk)
        if causal:
            allowed = allowed & (distance >= 0)
        if window is not None:
            allowed = allowed & (jnp.abs(distance) < window)
        allowed = allowed[None, None]  # (1, 1, Bq, Bk)
        if mask is not None:
            allowed = allowed & block_of(mask, i, j)
        return allowed

    # Key blocks each query block visits: all of them, or with a window the
    # fixed number that covers it, from a start that follows the block (a
    # `lax.cond` skip instead would make the backward pass keep residuals
    # of every (query, key) block pair: quadratic memory).
    visited = k_blocks_n
    if window is not None:
        reach = (window - 1) * (1 if causal else 2)
        visited = min(k_blocks_n, -(-(q_block + reach) // k_block) + 1)

    def first_key_block(i):
        if window is None:
            return 0
        first = i * q_block + offset - (window - 1)
        return jnp.clip(first // k_block, 0, k_blocks_n - visited)

    def key_step(i, q_i, carry, j):
        row_max, row_sum, acc = carry  # (b,h,Bq,1), (b,h,Bq,1), (b,h,Bq,dv)
        scores = jnp.einsum("bhqd,bhkd->bhqk", q_i, k[j])  # (b, h, Bq, Bk)
        if soft_cap is not None:
            scores = jnp.tanh(scores / soft_cap) * soft_cap
        if bias is not None:
            part = block_of(bias, i, j).astype(jnp.float32)
            scores = scores + jnp.maximum(part, MASKED_SCORE)
        allowed = block_mask(i, j)
        scores = jnp.where(allowed, scores, MASKED_SCORE)
        new_max = jnp.maximum(row_max, scores.max(-1, keepdims=True))
        p = jnp.where(allowed, jnp.exp(scores - new_max), 0.0)
        correction = jnp.exp(row_max - new_max)
        row_sum = row_sum * correction + p.sum(-1, keepdims=True)
        if base_key is not None:
            block_key = jax.random.fold_in(jax.random.fold_in(base_key, i), j)
            keep = jax.random.uniform(block_key, p.shape) >= rate
            p = jnp.where(keep, p / (1.0 - rate), 0.0)
        acc = acc * correction + jnp.einsum("bhqk,bhkd->bhqd", p, v[j])
        return new_max, row_sum, acc

    def query_block(i, q_i):
        start = first_key_block(i)

        def step(carry, t):
            return jax.checkpoint(key_step)(i, q_i, carry, start + t), None

        init = (
            jnp.full((batch, heads, q_block, 1), MASKED_SCORE, jnp.float32),
            jnp.zeros((batch, heads, q_block, 1), jnp.float32),
            jnp.zeros((batch, heads, q_block, v_depth), jnp.float32),
        )
        (_, row_sum, acc), _ = lax.scan(step, init, jnp.arange(visited))
        # A row with no key to attend to has row_sum 0 and acc 0: output 0.
        return acc / jnp.where(row_sum > 0.0, row_sum, 1.0)

    outputs = lax.map(
        lambda args: jax.checkpoint(query_block)(*args),
        (jnp.arange(q_blocks_n), q),
    )  # (nq, b, h, Bq, dv)
    output = jnp.moveaxis(outputs, 0, 2).reshape(
        batch, heads, q_blocks_n * q_block, v_depth
    )[:, :, :q_len]
    return jnp.transpose(output, (0, 2, 1, 3)).astype(dtype)
