"""Scaled dot-product attention, `softmax(Q K^T / sqrt(d_k)) V`, anywhere.

One public op, `scaled_dot_product_attention`, with the same conventions on
TensorFlow, JAX and PyTorch: boolean masks with True = may attend, causal
masks aligned to the bottom-right corner, float32 scores and softmax
statistics whatever the input dtype, and a zero output (never NaN) for a
query whose keys are all masked. Each concept has its module:

- `reference.py`: the formula in `keras.ops`, on one screen; the tests'
  oracle, the dense kernel of JAX, and PyTorch's when weights or
  dropout are asked for.
- `validation.py`: every argument check (static shapes only).
- `dispatch.py`: `choose_strategy`, a pure function from (backend,
  implementation, shapes, weights/dropout wanted, kernel family) to the
  kernel that runs.
- `tensorflow_kernels.py`: one batched matmul, and cache-sized tiles with a
  hand-written recomputing gradient.
- `jax_kernels.py`: an online softmax over the visited key blocks, a
  `jax.custom_vjp` whose backward pass recomputes them (memory linear in
  the length).
- `torch_kernels.py`: `torch.nn.functional.scaled_dot_product_attention`
  where its semantics match ours, a blockwise `torch.autograd.Function`
  for seeded dropout, the soft cap and a chunked window.
- `block_schedule.py`: which key blocks each query block visits (the
  blocks causality and windows leave), in pure Python.
- `core.py`: the public function: validate, dispatch, run.

The dispatch, by `keras.backend.backend()`:

| backend    | `"dense"`                | `"chunked"` (memory-efficient) |
| ---------- | ------------------------ | ------------------------------ |
| TensorFlow | batched matmul; tiles    | tiles recomputed in backward   |
|            | for long ones on CPU     |                                |
| JAX        | reference (XLA-fused)    | online softmax over key blocks |
| PyTorch    | fused kernel; reference  | fused kernel; blocks (dropout, |
|            | (weights, dropout, cap)  | soft cap, window)              |
| other      | reference                | reference                      |

`"auto"` picks `"chunked"` when no weights are asked for and the float32
scores would take 1 GiB or more, or, with a sliding `window`, 16 MiB or
more with keys at least four windows long. Returned weights always come
from the dense path.

Every kernel takes the same score options: an additive `attention_bias`
(differentiable, broadcast to `(batch, heads, q_len, k_len)`), logit
soft-capping `soft_cap * tanh(s / soft_cap)` (applied before the bias) and
a sliding `window` (aligned bottom-right like the causal mask). The
memory-efficient kernels build the causal and window masks per tile from
positions, never as an `n x n` tensor, and skip the blocks outside the
window and above the diagonal, so a windowed call costs `n * window`, not
`n^2`, and a causal one half of a full one (TensorFlow under XLA, whose
slices need static sizes, does so with static lengths and masks the causal
blocks with dynamic ones).
"""

from keras_attention.ops.attention.core import scaled_dot_product_attention
from keras_attention.ops.attention.reference import masked_softmax
from keras_attention.ops.attention.reference import reference_attention

__all__ = [
    "masked_softmax",
    "reference_attention",
    "scaled_dot_product_attention",
]
