"""JAX's memory-efficient attention: an online softmax over key blocks.

The queries are cut into blocks; each query block loops over only the key
blocks some of its queries may see (`block_schedule`: up to the diagonal
with `causal`, those of its window with `window`), keeping a running row
maximum, row sum and weighted sum of values (Rabe & Staats, 2021; the
forward pass of FlashAttention). A causal call thus does about half the work
of a full one, and a windowed one grows as `n * window`.

The loops have per-block trip counts, which reverse-mode autodiff cannot go
through, so the op is a `jax.custom_vjp`: its forward pass keeps only the
output and each row's float32 maximum and inverse sum; its backward pass
recomputes each visited block's weights from them and adds that block's
key, value and bias gradients in place. Memory grows with `n * block`,
never `n^2` (a `lax.cond` skip under plain autodiff had kept residuals of
every block pair).

The dense implementation on JAX is `reference.reference_attention`, which
XLA fuses well at the lengths where the `n^2` weights fit.
"""

import collections
import functools

import jax
import jax.numpy as jnp
from jax import lax

from keras_attention.ops.attention.block_schedule import key_block_range
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
    if q_len == 0 or k_len == 0 or batch == 0:
        return jnp.zeros((batch, q_len, heads, v_depth), dtype)
    q_block = min(block or QUERY_BLOCK, q_len)
    k_block = min(block or KEY_BLOCK, k_len)
    q_blocks_n = -(-q_len // q_block)
    k_blocks_n = -(-k_len // k_block)
    ranges = [
        key_block_range(
            i * q_block,
            min((i + 1) * q_block, q_len),
            q_len,
            k_len,
            k_block,
            causal,
            window,
        )
        for i in range(q_blocks_n)
    ]
    geometry = _Geometry(
        q_block=q_block,
        k_block=k_block,
        k_len=k_len,
        offset=k_len - q_len,  # bottom-right alignment
        first=tuple(first for first, _ in ranges),
        stop=tuple(stop for _, stop in ranges),
        causal=causal,
        window=window,
        soft_cap=soft_cap,
        rate=rate,
    )

    def heads_first(x, blocks_n, block):
        x = jnp.transpose(x.astype(jnp.float32), (0, 2, 1, 3))  # (b, h, n, d)
        return _blocks(_pad_axis(x, 2, blocks_n * block), block)

    q = heads_first(query * scale, q_blocks_n, q_block)  # (nq, b, h, Bq, d)
    k = heads_first(key, k_blocks_n, k_block)  # (nk, b, h, Bk, d)
    v = heads_first(value, k_blocks_n, k_block)  # (nk, b, h, Bk, dv)

    def pad_blocks(x, value):
        if x.shape[2] != 1:
            x = _pad_axis(x, 2, q_blocks_n * q_block, value)
        if x.shape[3] != 1:
            x = _pad_axis(x, 3, k_blocks_n * k_block, value)
        return x

    if mask is not None:
        mask = pad_blocks(mask, False)
    if bias is not None:
        bias = pad_blocks(bias.astype(jnp.float32), 0.0)
    key_data = None
    if rate > 0.0:
        key_data = bits.astype(jnp.uint32)
    outputs = _attend(geometry, q, k, v, mask, bias, key_data)
    output = jnp.moveaxis(outputs, 0, 2).reshape(
        batch, heads, q_blocks_n * q_block, v_depth
    )[:, :, :q_len]
    return jnp.transpose(output, (0, 2, 1, 3)).astype(dtype)


_Geometry = collections.namedtuple(
    "_Geometry",
    [
        "q_block",
        "k_block",
        "k_len",
        "offset",
        "first",
        "stop",
        "causal",
        "window",
        "soft_cap",
        "rate",
    ],
)
_Geometry.__doc__ = """The static blocks of one call: sizes, each query
block's key blocks `[first[i], stop[i])` (`block_schedule`), the options."""


def _block_of(x, geometry, i, j):
    """The part of padded rank-4 `x` broadcastable to block (i, j)."""
    if x.shape[2] != 1:
        x = lax.dynamic_slice_in_dim(
            x, i * geometry.q_block, geometry.q_block, 2
        )
    if x.shape[3] != 1:
        x = lax.dynamic_slice_in_dim(
            x, j * geometry.k_block, geometry.k_block, 3
        )
    return x


def _add_block(total, part, geometry, i, j):
    """`total` (padded, rank 4) plus block (i, j)'s `part`, summed where
    `total` broadcasts."""
    axes = tuple(a for a in range(4) if total.shape[a] == 1 != part.shape[a])
    part = part.sum(axes, keepdims=True)
    starts = [0, 0, 0, 0]
    if total.shape[2] != 1:
        starts[2] = i * geometry.q_block
    if total.shape[3] != 1:
        starts[3] = j * geometry.k_block
    current = lax.dynamic_slice(total, starts, part.shape)
    return lax.dynamic_update_slice(total, current + part, starts)


def _block_logits(geometry, q_i, k_j, mask, bias, i, j):
    """Logits (b, h, Bq, Bk) of block (i, j), what it allows, its tanh.

    Disallowed logits are `MASKED_SCORE`; the tanh is `None` without a soft
    cap.
    """
    scores = jnp.einsum("bhqd,bhkd->bhqk", q_i, k_j)
    capped = None
    if geometry.soft_cap is not None:
        capped = jnp.tanh(scores / geometry.soft_cap)
        scores = capped * geometry.soft_cap
    if bias is not None:
        scores = scores + jnp.maximum(
            _block_of(bias, geometry, i, j), MASKED_SCORE
        )
    rows = i * geometry.q_block + jnp.arange(geometry.q_block)[:, None]
    cols = j * geometry.k_block + jnp.arange(geometry.k_block)[None, :]
    allowed = cols < geometry.k_len
    distance = rows + geometry.offset - cols  # (Bq, Bk)
    if geometry.causal:
        allowed = allowed & (distance >= 0)
    if geometry.window is not None:
        near = distance if geometry.causal else jnp.abs(distance)
        allowed = allowed & (near < geometry.window)
    allowed = allowed[None, None]  # (1, 1, Bq, Bk)
    if mask is not None:
        allowed = allowed & _block_of(mask, geometry, i, j)
    return jnp.where(allowed, scores, MASKED_SCORE), allowed, capped


def _dropout_scale(geometry, key_data, shape, i, j):
    """Block (i, j)'s dropout multiplier, drawn alike in both passes."""
    base = jax.random.wrap_key_data(key_data)
    block_key = jax.random.fold_in(jax.random.fold_in(base, i), j)
    keep = jax.random.uniform(block_key, shape) >= geometry.rate
    return jnp.where(keep, 1.0 / (1.0 - geometry.rate), 0.0)


def _forward(geometry, q, k, v, mask, bias, key_data):
    """Online softmax over each query block's key blocks.

    Returns the output blocks and each row's float32 maximum and inverse
    sum (0 for a row without keys), all the backward pass needs.
    """
    first, stop = jnp.array(geometry.first), jnp.array(geometry.stop)
    _, batch, heads, q_block, _ = q.shape
    v_depth = v.shape[-1]

    def query_block(i):
        q_i = q[i]

        def key_step(j, carry):
            row_max, row_sum, acc = carry  # (b,h,Bq,1) twice, (b,h,Bq,dv)
            scores, allowed, _ = _block_logits(
                geometry, q_i, k[j], mask, bias, i, j
            )
            new_max = jnp.maximum(row_max, scores.max(-1, keepdims=True))
            p = jnp.where(allowed, jnp.exp(scores - new_max), 0.0)
            correction = jnp.exp(row_max - new_max)
            row_sum = row_sum * correction + p.sum(-1, keepdims=True)
            if key_data is not None:
                p = p * _dropout_scale(geometry, key_data, p.shape, i, j)
            acc = acc * correction + jnp.einsum("bhqk,bhkd->bhqd", p, v[j])
            return new_max, row_sum, acc

        init = (
            jnp.full((batch, heads, q_block, 1), MASKED_SCORE, jnp.float32),
            jnp.zeros((batch, heads, q_block, 1), jnp.float32),
            jnp.zeros((batch, heads, q_block, v_depth), jnp.float32),
        )
        row_max, row_sum, acc = lax.fori_loop(first[i], stop[i], key_step, init)
        # A row with no key to attend to has sum 0: output 0.
        inverse = jnp.where(row_sum > 0.0, 1.0 / row_sum, 0.0)
        return acc * inverse, row_max, inverse

    return lax.map(query_block, jnp.arange(q.shape[0]))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _attend(geometry, q, k, v, mask, bias, key_data):
    """Blockwise attention of the padded blocks (memory linear in n)."""
    return _forward(geometry, q, k, v, mask, bias, key_data)[0]


def _attend_forward(geometry, q, k, v, mask, bias, key_data):
    out, row_max, inverse = _forward(geometry, q, k, v, mask, bias, key_data)
    return out, (q, k, v, mask, bias, key_data, out, row_max, inverse)


def _attend_backward(geometry, residuals, d_out):
    """Recomputes each visited block's weights and accumulates the gradients
    of the queries, keys, values and bias, visiting only those blocks."""
    q, k, v, mask, bias, key_data, out, row_max, inverse = residuals
    first, stop = jnp.array(geometry.first), jnp.array(geometry.stop)
    # rowsum(P * dP) = rowsum(dO * O): one (n, dv) pass per row.
    delta = (d_out * out).sum(-1, keepdims=True)  # (nq, b, h, Bq, 1)

    def query_block(i, carry):
        d_q, d_k, d_v, d_bias = carry
        q_i, d_out_i = q[i], d_out[i]

        def key_step(j, carry):
            d_q_i, d_k, d_v, d_bias = carry
            scores, allowed, capped = _block_logits(
                geometry, q_i, k[j], mask, bias, i, j
            )
            p = jnp.where(allowed, jnp.exp(scores - row_max[i]), 0.0)
            p = p * inverse[i]  # the softmax weights (b, h, Bq, Bk)
            d_p = jnp.einsum("bhqd,bhkd->bhqk", d_out_i, v[j])
            attended = p
            if key_data is not None:
                keep = _dropout_scale(geometry, key_data, p.shape, i, j)
                attended, d_p = p * keep, d_p * keep
            d_v = d_v.at[j].add(
                jnp.einsum("bhqk,bhqd->bhkd", attended, d_out_i)
            )
            d_logits = p * (d_p - delta[i])
            if d_bias is not None:
                d_bias = _add_block(d_bias, d_logits, geometry, i, j)
            d_scores = d_logits
            if capped is not None:
                d_scores = d_logits * (1.0 - jnp.square(capped))
            d_q_i = d_q_i + jnp.einsum("bhqk,bhkd->bhqd", d_scores, k[j])
            d_k = d_k.at[j].add(jnp.einsum("bhqk,bhqd->bhkd", d_scores, q_i))
            return d_q_i, d_k, d_v, d_bias

        d_q_i, d_k, d_v, d_bias = lax.fori_loop(
            first[i], stop[i], key_step, (jnp.zeros_like(q_i), d_k, d_v, d_bias)
        )
        return d_q.at[i].set(d_q_i), d_k, d_v, d_bias

    init = (
        jnp.zeros_like(q),
        jnp.zeros_like(k),
        jnp.zeros_like(v),
        None if bias is None else jnp.zeros_like(bias),
    )
    d_q, d_k, d_v, d_bias = lax.fori_loop(0, q.shape[0], query_block, init)
    return d_q, d_k, d_v, None, d_bias, None


_attend.defvjp(_attend_forward, _attend_backward)
