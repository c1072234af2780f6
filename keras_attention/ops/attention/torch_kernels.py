"""PyTorch's memory-efficient attention: its fused kernel, or our blocks.

* `"fused"`: `torch.nn.functional.scaled_dot_product_attention`, whose CPU
  and GPU kernels (flash / memory-efficient) never hold the `n^2` scores.
  Its conventions are brought to ours: the causal mask is passed as
  `is_causal` only where PyTorch's top-left alignment equals our
  bottom-right one (`q_len == k_len`), else as a mask; a query row whose
  keys are all masked (NaN in PyTorch) attends every key and has its output
  zeroed, so the output and the gradients stay finite; float16 and bfloat16
  inputs run in float32 so that the softmax statistics are float32.
* `"blockwise"`: query blocks against the keys they may see (all of them,
  those up to the diagonal with `causal`, those of the window with
  `window`: the cost of a windowed call grows as `n * window`), each under
  `torch.utils.checkpoint` so the backward pass recomputes its weights.
  This serves dropout, whose mask must follow the Keras seed (PyTorch's
  kernel draws from its own global generator): each block's mask comes from
  a `torch.Generator` seeded from the call's seed and the block index, so
  the recomputation redraws the same mask. It serves the soft cap too,
  which PyTorch's kernel lacks, and a chunked sliding window.

An additive `bias` goes to the fused kernel as its float `attn_mask`, the
boolean mask folded in as `MASKED_SCORE`.

Every call that wants neither the weights nor dropout runs the fused
kernel, dense or chunked: it is PyTorch's fastest. The others run
`reference.reference_attention` (dense) or the blocks (chunked).
"""

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from keras_attention.ops.attention.reference import MASKED_SCORE
from keras_attention.ops.attention.reference import full_mask
from keras_attention.ops.attention.reference import logits
from keras_attention.ops.dropout import seed_bits

__all__ = ["attention"]

# Query rows per block of the blockwise kernel (with `chunk_size=None`).
QUERY_BLOCK = 512


def _heads_first(x, dtype):
    return x.transpose(1, 2).to(dtype)  # (b, n, h, d) -> (b, h, n, d)


def _fused(query, key, value, mask, causal, scale, bias, window):
    q_len, k_len = query.shape[1], key.shape[1]
    is_causal = causal and mask is None and window is None and q_len == k_len
    if (causal or window is not None) and not is_causal:
        mask = full_mask(mask, causal, q_len, k_len, window)
    has_keys = None
    if mask is not None:
        has_keys = mask.any(-1, keepdim=True)  # (b|1, h|1, q|1, 1)
        mask = mask | ~has_keys
    if bias is not None:
        # Clamped as in `reference.logits`: a -inf bias stays finite.
        bias = bias.float().clamp_min(MASKED_SCORE)
        if mask is not None:
            bias = bias.masked_fill(~mask, MASKED_SCORE)
        mask = bias
    out = F.scaled_dot_product_attention(
        _heads_first(query, torch.float32),
        _heads_first(key, torch.float32),
        _heads_first(value, torch.float32),
        attn_mask=mask,
        is_causal=is_causal,
        scale=scale,
    )  # (b, h, q, dv)
    if has_keys is not None:
        out = out * has_keys
    return out


def _block_attention(q, k, v, mask, bias, rows, cols, options):
    """Exact attention of one query block `q` (b, h, Bq, d) to keys `k`.

    `rows` (Bq, 1) and `cols` (1, Bk) are the positions of the block's
    queries and keys, already shifted to the bottom-right alignment;
    `options` holds `causal`, `window`, `scale`, `soft_cap`, the dropout
    `rate` and `seed` (two ints and the block's index).
    """
    allowed = mask
    distance = rows - cols
    for part in _position_parts(distance, options):
        allowed = part if allowed is None else allowed & part
    scores = torch.einsum("bhqd,bhkd->bhqk", q * options["scale"], k)
    scores = logits(scores, options["soft_cap"], bias)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, MASKED_SCORE)
    weights = torch.softmax(scores, dim=-1)
    if allowed is not None:
        weights = weights * allowed.any(-1, keepdim=True)
    rate = options["rate"]
    if rate > 0.0:
        generator = torch.Generator(device=q.device)
        high, low, block = options["seed"]
        generator.manual_seed(high * 1_000_003 + low + block)
        keep = (
            torch.rand(weights.shape, generator=generator, device=q.device)
            >= rate
        )
        weights = weights * keep / (1.0 - rate)
    return torch.einsum("bhqk,bhkd->bhqd", weights, v)


def _position_parts(distance, options):
    """The causal and window masks of a block, from `query - key` offsets."""
    if options["causal"]:
        yield distance >= 0
    if options["window"] is not None:
        yield distance.abs() < options["window"]


def _key_span(first, last, k_len, causal, window):
    """The keys `[low, high)` that queries at `first..last` may see."""
    low, high = 0, k_len
    if causal:
        high = min(k_len, last + 1)
    if window is not None:
        low = max(0, first - window + 1)
        if not causal:
            high = min(k_len, last + window)
    return low, max(low, high)


def _slice(x, axis, start, stop):
    """`x[..., start:stop, ...]` along `axis`, unless it broadcasts there."""
    if x is None or x.shape[axis] == 1:
        return x
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _blockwise(query, key, value, mask, bias, rows, options):
    q_len, k_len = query.shape[1], key.shape[1]
    q = _heads_first(query, torch.float32)
    k = _heads_first(key, torch.float32)
    v = _heads_first(value, torch.float32)
    words = [0, 0]
    if options["rate"] > 0.0:
        words = [int(w) for w in seed_bits(options["seed"])]
    offset = k_len - q_len  # bottom-right alignment
    blocks = []
    for start in range(0, q_len, rows):
        stop = min(start + rows, q_len)
        low, high = _key_span(
            start + offset,
            stop - 1 + offset,
            k_len,
            options["causal"],
            options["window"],
        )
        if high == low:
            blocks.append(
                q.new_zeros(q.shape[:2] + (stop - start, v.shape[-1]))
            )
            continue
        positions = torch.arange(start, stop, device=q.device) + offset
        cols = torch.arange(low, high, device=q.device)
        block_options = dict(options, seed=words + [start])
        blocks.append(
            checkpoint(
                _block_attention,
                q[:, :, start:stop],
                k[:, :, low:high],
                v[:, :, low:high],
                _slice(_slice(mask, 2, start, stop), 3, low, high),
                _slice(_slice(bias, 2, start, stop), 3, low, high),
                positions[:, None],
                cols[None, :],
                block_options,
                use_reentrant=False,
            )
        )
    if not blocks:
        return q.new_zeros(q.shape[:3] + (v.shape[-1],))
    return torch.cat(blocks, dim=2)


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
    """Runs `strategy` (`"fused"` or `"blockwise"`); returns (output, None)."""
    del return_weights  # the dense kernel serves calls that want weights
    if strategy.kernel == "fused":
        out = _fused(query, key, value, mask, causal, scale, bias, window)
    else:
        options = dict(
            causal=bool(causal),
            window=window,
            scale=scale,
            soft_cap=soft_cap,
            rate=float(dropout_rate),
            seed=seed,
        )
        out = _blockwise(
            query,
            key,
            value,
            mask,
            bias,
            strategy.chunk_size or QUERY_BLOCK,
            options,
        )
    return out.transpose(1, 2).to(query.dtype), None
