"""PyTorch's memory-efficient attention: its fused kernel, or our blocks.

* `"fused"`: `torch.nn.functional.scaled_dot_product_attention`, whose CPU
  and GPU kernels (flash / memory-efficient) never hold the `n^2` scores.
  Its conventions are brought to ours: the causal mask is passed as
  `is_causal` only where PyTorch's top-left alignment equals our
  bottom-right one (`q_len == k_len`), else as a mask; a query row whose
  keys are all masked (NaN in PyTorch) attends every key and has its output
  zeroed, so the output and the gradients stay finite; a NaN or Inf key
  reaches only the queries that may see it, as on the other backends
  (PyTorch's kernel adds the mask to the scores, and `NaN - inf` is NaN);
  float16 and bfloat16 inputs run in float32 so that the softmax statistics
  are float32.
* `"blockwise"`: a `torch.autograd.Function` over (query block, key
  block) pairs, visiting only the key blocks some query of the block may
  see (`block_schedule`: up to the diagonal with `causal`, those of the
  window with `window`, so a causal call does half the work and a windowed
  one grows as `n * window`). Its forward pass is an online softmax that
  keeps only the output and each row's float32 maximum and sum; its
  backward pass recomputes each block's weights from them and adds the
  block's key and value gradients in place: memory linear in `n`. This
  serves dropout, whose mask must follow the Keras seed (PyTorch's kernel
  draws from its own global generator): each block's mask comes from a
  `torch.Generator` seeded from the call's seed and the block's position,
  so the backward pass redraws the same mask. It serves the soft cap too,
  which PyTorch's kernel lacks, and a chunked sliding window (PyTorch's
  kernel would take the window as an `n^2` mask and skip nothing).

An additive `bias` goes to the fused kernel as its float `attn_mask`, the
boolean mask folded in as `MASKED_SCORE`.

Every call that wants neither the weights nor dropout runs the fused
kernel, dense or chunked: it is PyTorch's fastest. The others run
`reference.reference_attention` (dense) or the blocks (chunked).
"""

import torch
import torch.nn.functional as F

from keras_attention.ops.attention.block_schedule import block_is_unmasked
from keras_attention.ops.attention.block_schedule import schedule
from keras_attention.ops.attention.reference import MASKED_SCORE
from keras_attention.ops.attention.reference import full_mask
from keras_attention.ops.dropout import seed_bits

__all__ = ["attention"]

# Query rows per block of the blockwise kernel (with `chunk_size=None`):
# at most QUERY_BLOCK, halved until a block's float32 scores over its key
# span (all heads of the batch) fit BLOCK_BUDGET_BYTES. A causal window of
# 512 then spans 1,023 keys: 16 MiB for 8 heads.
QUERY_BLOCK = 512
BLOCK_BUDGET_BYTES = 32 * 2**20


def _heads_first(x, dtype):
    return x.transpose(1, 2).to(dtype)  # (b, n, h, d) -> (b, h, n, d)


def _screen_non_finite_keys(key, mask, is_causal):
    """Keys with NaN/Inf zeroed, and the query rows that may see one.

    PyTorch's kernel adds the mask to the scores, so a NaN key stays NaN
    where it is masked out and reaches every query; ours (like the other
    backends) never lets a masked key reach a query. The kernel gets the
    keys with every non-finite one zeroed; the rows whose mask lets them
    see such a key are set to NaN afterwards, as they would be.

    Returns:
        `(key, poisoned)`: `key` `(b, k, h, d)` and a boolean
        `(b, h, q|1, 1)` tensor, or `(key, None)` when nothing masks.
    """
    if mask is None and not is_causal:
        return key, None  # every query sees every key: NaN flows by itself
    bad = ~torch.isfinite(key).all(-1)  # (b, k, h)
    key = key.masked_fill(bad[..., None], 0.0)
    bad = bad.transpose(1, 2)  # (b, h, k)
    if is_causal:  # q_len == k_len: query i sees keys 0..i
        poisoned = torch.cummax(bad.to(torch.int8), dim=-1).values.bool()
        return key, poisoned[..., None]
    # Broadcast axes (of size 1) expanded for the product (views, no copy).
    batch = torch.broadcast_shapes(mask.shape[:2], bad.shape[:2])
    k_len = bad.shape[-1]
    seen = torch.matmul(
        mask.to(torch.float32).expand(*batch, mask.shape[2], k_len),
        bad[..., None].to(torch.float32).expand(*batch, k_len, 1),
    )  # (b, h, q|1, 1): how many non-finite keys each row may see
    return key, seen > 0


def _fused(query, key, value, mask, causal, scale, bias, window):
    q_len, k_len = query.shape[1], key.shape[1]
    is_causal = causal and mask is None and window is None and q_len == k_len
    if (causal or window is not None) and not is_causal:
        mask = full_mask(mask, causal, q_len, k_len, window)
    key, poisoned = _screen_non_finite_keys(key, mask, is_causal)
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
    if poisoned is not None:
        out = out.masked_fill(poisoned, float("nan"))
    return out


def _slice(x, axis, start, stop):
    """`x[..., start:stop, ...]` along `axis`, unless it broadcasts there."""
    if x is None or x.shape[axis] == 1:
        return x
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


class _Blocks:
    """The static description of one blockwise call (shared by both passes).

    Args:
        plan: `block_schedule.schedule(...)` of the call.
        offset: `k_len - q_len` (bottom-right alignment).
        options: `causal`, `window`, `scale`, `soft_cap`, dropout `rate`
            and `words` (two seed ints).
    """

    def __init__(self, plan, offset, options):
        self.plan = plan
        self.offset = offset
        self.causal = options["causal"]
        self.window = options["window"]
        self.scale = options["scale"]
        self.soft_cap = options["soft_cap"]
        self.rate = options["rate"]
        self.words = options["words"]
        self._masks = {}

    def excluded(self, q_start, q_stop, k_start, k_stop, device):
        """Where causality or the window exclude a block's pairs (Bq, Bk),
        or `None` where they exclude none.

        Blocks at the same diagonal offset share one mask, built once.
        """
        if block_is_unmasked(
            q_start,
            q_stop,
            k_start,
            k_stop,
            self.offset,
            self.causal,
            self.window,
        ):
            return None
        shift = q_start + self.offset - k_start
        cache_key = (shift, q_stop - q_start, k_stop - k_start)
        if cache_key not in self._masks:
            rows = torch.arange(q_stop - q_start, device=device) + shift
            cols = torch.arange(k_stop - k_start, device=device)
            distance = rows[:, None] - cols[None, :]  # query - key
            excluded = torch.zeros(
                distance.shape, dtype=torch.bool, device=device
            )
            if self.causal:
                excluded |= distance < 0
            if self.window is not None:
                excluded |= (
                    distance if self.causal else distance.abs()
                ) >= self.window
            self._masks[cache_key] = excluded
        return self._masks[cache_key]

    def keep(self, shape, q_start, k_start, device):
        """The dropout multiplier of a block (0 or `1 / (1 - rate)`), drawn
        alike in both passes."""
        generator = torch.Generator(device=device)
        high, low = self.words
        generator.manual_seed(
            (
                ((high * 1_000_003 + low) * 1_000_033 + q_start) * 1_000_037
                + k_start
            )
            % 2**63
        )
        keep = torch.rand(shape, generator=generator, device=device) >= (
            self.rate
        )
        return keep / (1.0 - self.rate)


def _block_logits(q_i, k_j, mask, bias, blocks, rows, cols):
    """Logits (b, h, Bq, Bk) of one block, what it excludes, and its tanh.

    `q_i` is already scaled. Excluded logits are `MASKED_SCORE`; the
    exclusions are `None` where the block excludes nothing, and the tanh
    is `None` without a soft cap.
    """
    (q_start, q_stop), (k_start, k_stop) = rows, cols
    scores = torch.matmul(q_i, k_j.transpose(-1, -2))  # (b, h, Bq, Bk)
    capped = None
    if blocks.soft_cap is not None:
        capped = torch.tanh(scores / blocks.soft_cap)
        scores = capped * blocks.soft_cap
    if bias is not None:
        part = _slice(_slice(bias, 2, q_start, q_stop), 3, k_start, k_stop)
        scores = scores + part.float().clamp_min(MASKED_SCORE)
    excluded = blocks.excluded(q_start, q_stop, k_start, k_stop, q_i.device)
    if mask is not None:
        part = _slice(_slice(mask, 2, q_start, q_stop), 3, k_start, k_stop)
        excluded = ~part if excluded is None else excluded | ~part
    if excluded is not None:
        scores = scores.masked_fill_(excluded, MASKED_SCORE)
    return scores, excluded, capped


def _rows_with_keys(excluded):
    """Bool (.., Bq, 1): whether a row of a block keeps any key."""
    return ~excluded.all(-1, keepdim=True)


class _BlockwiseAttention(torch.autograd.Function):
    """Attention over the scheduled blocks, memory linear in the length.

    Each query block takes the exact softmax over the keys it may see (one
    fused kernel, fewer passes over the block than an online softmax), and
    never over those that causality or the window exclude. The forward pass
    keeps only its inputs and the output; the backward pass recomputes each
    block's weights and adds its key and value gradients in place.
    """

    @staticmethod
    def forward(ctx, q, k, v, mask, bias, blocks):
        # q (b, h, nq, d) scaled, k (b, h, nk, d), v (b, h, nk, dv): float32.
        out = q.new_zeros(q.shape[:3] + (v.shape[-1],))
        for q_start, q_stop, keys in blocks.plan:
            for k_start, k_stop in keys:
                scores, excluded, _ = _block_logits(
                    q[:, :, q_start:q_stop],
                    k[:, :, k_start:k_stop],
                    mask,
                    bias,
                    blocks,
                    (q_start, q_stop),
                    (k_start, k_stop),
                )
                weights = torch.softmax(scores, -1)  # (b, h, Bq, Bk)
                if blocks.rate > 0.0:
                    weights = weights * blocks.keep(
                        weights.shape, q_start, k_start, weights.device
                    )
                block_out = torch.matmul(weights, v[:, :, k_start:k_stop])
                if excluded is not None:
                    # A row without keys came out uniform: zero its output.
                    block_out = block_out * _rows_with_keys(excluded)
                out[:, :, q_start:q_stop] = block_out
        ctx.blocks = blocks
        ctx.save_for_backward(q, k, v, mask, bias, out)
        return out

    @staticmethod
    def backward(ctx, d_out):
        q, k, v, mask, bias, out = ctx.saved_tensors
        blocks = ctx.blocks
        # rowsum(P * dP) = rowsum(dO * O): one (n, dv) pass per row.
        delta = (d_out * out).sum(-1, keepdim=True)
        d_q, d_k, d_v = (torch.zeros_like(x) for x in (q, k, v))
        d_bias = None
        if bias is not None and ctx.needs_input_grad[4]:
            d_bias = torch.zeros(
                bias.shape, dtype=torch.float32, device=bias.device
            )
        for q_start, q_stop, keys in blocks.plan:
            rows = slice(q_start, q_stop)
            q_i, d_out_i = q[:, :, rows], d_out[:, :, rows]
            for k_start, k_stop in keys:
                cols = slice(k_start, k_stop)
                scores, excluded, capped = _block_logits(
                    q_i,
                    k[:, :, cols],
                    mask,
                    bias,
                    blocks,
                    (q_start, q_stop),
                    (k_start, k_stop),
                )
                weights = torch.softmax(scores, -1)
                d_out_ij = d_out_i
                if excluded is not None:
                    # Rows without keys had their output zeroed.
                    d_out_ij = d_out_i * _rows_with_keys(excluded)
                d_weights = torch.matmul(
                    d_out_ij, v[:, :, cols].transpose(-1, -2)
                )
                attended = weights
                if blocks.rate > 0.0:
                    keep = blocks.keep(
                        weights.shape, q_start, k_start, weights.device
                    )
                    attended = weights * keep
                    d_weights.mul_(keep)
                d_v[:, :, cols] += torch.matmul(
                    attended.transpose(-1, -2), d_out_ij
                )
                d_logits = d_weights.sub_(delta[:, :, rows]).mul_(weights)
                if d_bias is not None:
                    _add_bias_part(d_bias, d_logits, rows, cols)
                d_scores = d_logits
                if capped is not None:
                    d_scores = d_logits * (1.0 - capped.square())
                d_q[:, :, rows] += torch.matmul(d_scores, k[:, :, cols])
                d_k[:, :, cols] += torch.matmul(d_scores.transpose(-1, -2), q_i)
        return d_q, d_k, d_v, None, d_bias, None


def _add_bias_part(d_bias, d_logits, rows, cols):
    """Adds a block's logit gradient to `d_bias`, summed where it broadcasts."""
    for axis in range(4):
        if d_bias.shape[axis] == 1 and d_logits.shape[axis] != 1:
            d_logits = d_logits.sum(axis, keepdim=True)
    index = [slice(None)] * 4
    if d_bias.shape[2] != 1:
        index[2] = rows
    if d_bias.shape[3] != 1:
        index[3] = cols
    d_bias[tuple(index)] += d_logits


def _query_rows(batch_heads, k_len, causal, window):
    """Query rows per block so that a block's scores fit the budget."""
    rows = QUERY_BLOCK
    reach = None
    if window is not None:
        reach = window - 1 if causal else 2 * (window - 1)
    while rows > 1:
        span = k_len if reach is None else min(k_len, rows + reach)
        if batch_heads * rows * span * 4 <= BLOCK_BUDGET_BYTES:
            break
        rows //= 2
    return rows


def _blockwise(query, key, value, mask, bias, rows, options):
    q_len, k_len = query.shape[1], key.shape[1]
    q = (_heads_first(query, torch.float32) * options["scale"]).contiguous()
    k = _heads_first(key, torch.float32).contiguous()
    v = _heads_first(value, torch.float32).contiguous()
    words = (0, 0)
    if options["rate"] > 0.0:
        words = tuple(int(w) for w in seed_bits(options["seed"]))
    causal, window = options["causal"], options["window"]
    if rows is None:
        rows = _query_rows(q.shape[0] * q.shape[1], k_len, causal, window)
    plan = schedule(q_len, k_len, rows, None, causal, window)
    blocks = _Blocks(plan, k_len - q_len, dict(options, words=words))
    return _BlockwiseAttention.apply(q, k, v, mask, bias, blocks)


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
            strategy.chunk_size,
            options,
        )
    return out.transpose(1, 2).to(query.dtype), None
