"""PyTorch's memory-efficient attention: its fused kernel, or our blocks.

* `"fused"`: `torch.nn.functional.scaled_dot_product_attention`, whose CPU
  and GPU kernels (flash / memory-efficient) never hold the `n^2` scores.
  Its conventions are brought to ours: the causal mask is passed as
  `is_causal` only where PyTorch's top-left alignment equals our
  bottom-right one (`q_len == k_len`), else as a mask; a query row whose
  keys are all masked (NaN in PyTorch) attends every key and has its output
  zeroed, so the output and the gradients stay finite; float16 and bfloat16
  inputs run in float32 so that the softmax statistics are float32.
* `"blockwise"`: query blocks against all keys, each under
  `torch.utils.checkpoint` so the backward pass recomputes its weights.
  This serves dropout, whose mask must follow the Keras seed (PyTorch's
  kernel draws from its own global generator): each block's mask comes from
  a `torch.Generator` seeded from the call's seed and the block index, so
  the recomputation redraws the same mask.

Every call that wants neither the weights nor dropout runs the fused
kernel, dense or chunked: it is PyTorch's fastest. The others run
`reference.reference_attention` (dense) or the blocks (chunked).
"""

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from keras_attention.ops.attention.reference import MASKED_SCORE
from keras_attention.ops.attention.reference import full_mask
from keras_attention.ops.dropout import seed_bits

__all__ = ["attention"]

# Query rows per block of the blockwise kernel (with `chunk_size=None`).
QUERY_BLOCK = 512


def _heads_first(x, dtype):
    return x.transpose(1, 2).to(dtype)  # (b, n, h, d) -> (b, h, n, d)


def _fused(query, key, value, mask, causal, scale):
    q_len, k_len = query.shape[1], key.shape[1]
    is_causal = causal and mask is None and q_len == k_len
    if causal and not is_causal:
        mask = full_mask(mask, causal, q_len, k_len)
    has_keys = None
    if mask is not None:
        has_keys = mask.any(-1, keepdim=True)  # (b|1, h|1, q|1, 1)
        mask = mask | ~has_keys
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


def _block_attention(q, k, v, mask, start, offset, causal, scale, rate, seed):
    """Exact attention of one query block `q` (b, h, Bq, d) to all keys.

    `start` is the block's first query row, `offset` is `k_len - q_len` (the
    causal alignment) and `seed` two ints of the dropout mask.
    """
    rows = start + torch.arange(q.shape[2], device=q.device)[:, None]
    cols = torch.arange(k.shape[2], device=q.device)[None, :]
    allowed = mask
    if causal:
        part = cols <= rows + offset
        allowed = part if allowed is None else allowed & part
    scores = torch.einsum("bhqd,bhkd->bhqk", q * scale, k)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, MASKED_SCORE)
    weights = torch.softmax(scores, dim=-1)
    if allowed is not None:
        weights = weights * allowed.any(-1, keepdim=True)
    if rate > 0.0:
        generator = torch.Generator(device=q.device)
        generator.manual_seed(seed[0] * 1_000_003 + seed[1] + start)
        keep = (
            torch.rand(weights.shape, generator=generator, device=q.device)
            >= rate
        )
        weights = weights * keep / (1.0 - rate)
    return torch.einsum("bhqk,bhkd->bhqd", weights, v)


def _blockwise(query, key, value, mask, causal, scale, rate, seed, rows):
    q_len = query.shape[1]
    q = _heads_first(query, torch.float32)
    k = _heads_first(key, torch.float32)
    v = _heads_first(value, torch.float32)
    words = [int(w) for w in seed_bits(seed)] if rate > 0.0 else [0, 0]
    offset = key.shape[1] - q_len
    blocks = []
    for start in range(0, q_len, rows):
        block_mask = mask
        if mask is not None and mask.shape[2] != 1:
            block_mask = mask[:, :, start : start + rows]
        blocks.append(
            checkpoint(
                _block_attention,
                q[:, :, start : start + rows],
                k,
                v,
                block_mask,
                start,
                offset,
                causal,
                scale,
                rate,
                words,
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
):
    """Runs `strategy` (`"fused"` or `"blockwise"`); returns (output, None)."""
    del return_weights  # the dense kernel serves calls that want weights
    if strategy.kernel == "fused":
        out = _fused(query, key, value, mask, causal, scale)
    else:
        out = _blockwise(
            query,
            key,
            value,
            mask,
            causal,
            scale,
            float(dropout_rate),
            seed,
            strategy.chunk_size or QUERY_BLOCK,
        )
    return out.transpose(1, 2).to(query.dtype), None
