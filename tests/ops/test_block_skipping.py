"""The memory-efficient kernels skip the blocks causality and windows exclude.

Skipping must change nothing but the cost: on every backend the chunked
path equals the dense one (outputs and gradients, the bias's included) for
causal, windowed and causal windowed attention with lengths that are not
multiples of the block, more or fewer queries than keys (bottom-right
alignment), padding masks, grouped key/value heads, a soft cap and a bias.
Then the skipping itself: the block schedule visits about half the blocks
for causal attention and a number that does not grow with `n` per query
block with a window, and each kernel visits only those.
"""

import keras
import numpy as np
import pytest

from keras_attention.ops.attention import block_schedule
from keras_attention.ops.attention import scaled_dot_product_attention
from tests.testing import value_and_gradients

BACKEND = keras.backend.backend()

# (q_len, k_len, causal, window, soft_cap): lengths that no block of 4
# divides. Few cases: each is one more XLA compilation on JAX.
GEOMETRIES = {
    "causal": (11, 11, True, None, None),
    "causal, fewer queries, soft cap": (6, 13, True, None, 2.0),
    "causal, more queries": (13, 6, True, None, None),
    "causal window, soft cap": (13, 13, True, 5, 2.0),
    "causal window, fewer queries": (7, 13, True, 3, None),
    "two-sided window, more queries, soft cap": (13, 9, False, 2, 2.0),
}


def inputs(q_len, k_len, heads=4, kv_heads=2, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(2, q_len, heads, 8)).astype("float32") * 2.0
    k = rng.normal(size=(2, k_len, kv_heads, 8)).astype("float32") * 2.0
    v = rng.normal(size=(2, k_len, kv_heads, 6)).astype("float32")
    # Padding: the second sequence's last three keys; its first query
    # row keeps no key at all.
    mask = np.ones((2, 1, q_len, k_len), bool)
    mask[1, :, :, k_len - 3 :] = False
    mask[1, :, 0, :] = False
    bias = rng.normal(size=(1, heads, q_len, k_len)).astype("float32")
    return q, k, v, mask, bias


def attend_with(mask, causal, window, **kwargs):
    def attend(q, k, v, bias):
        out = scaled_dot_product_attention(
            q,
            k,
            v,
            mask=mask,
            attention_bias=bias,
            causal=causal,
            window=window,
            **kwargs,
        )
        return out, keras.ops.sum(keras.ops.sin(out) * out)

    return attend


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_chunked_equals_dense_with_skipped_blocks(name):
    q_len, k_len, causal, window, soft_cap = GEOMETRIES[name]
    q, k, v, mask, bias = inputs(q_len, k_len)
    results = {
        implementation: value_and_gradients(
            attend_with(
                mask,
                causal,
                window,
                soft_cap=soft_cap,
                implementation=implementation,
                chunk_size=4,
            ),
            q,
            k,
            v,
            bias,
        )
        for implementation in ("dense", "chunked")
    }
    for dense, chunked in zip(results["dense"], results["chunked"]):
        assert np.isfinite(chunked).all()
        np.testing.assert_allclose(chunked, dense, atol=5e-5)
    # The fully masked row: zero output, zero query gradient.
    assert not results["chunked"][0][1, 0].any()
    assert not results["chunked"][1][1, 0].any()


@pytest.mark.parametrize("causal,window", [(True, None), (True, 4), (False, 3)])
def test_chunked_equals_dense_in_bfloat16(causal, window):
    q, k, v, mask, _ = inputs(9, 9)
    outputs = [
        keras.ops.convert_to_numpy(
            keras.ops.cast(
                scaled_dot_product_attention(
                    keras.ops.cast(q, "bfloat16"),
                    keras.ops.cast(k, "bfloat16"),
                    keras.ops.cast(v, "bfloat16"),
                    mask=mask,
                    causal=causal,
                    window=window,
                    soft_cap=3.0,
                    implementation=implementation,
                    chunk_size=4,
                ),
                "float32",
            )
        )
        for implementation in ("dense", "chunked")
    ]
    np.testing.assert_allclose(outputs[1], outputs[0], atol=2e-2)


def visited_blocks(q_len, k_len, block, causal, window):
    plan = block_schedule.schedule(q_len, k_len, block, block, causal, window)
    return sum(len(keys) for *_, keys in plan)


def test_causal_schedule_visits_the_lower_triangle_of_blocks():
    blocks = 16
    full = visited_blocks(blocks * 4, blocks * 4, 4, False, None)
    causal = visited_blocks(blocks * 4, blocks * 4, 4, True, None)
    assert full == blocks * blocks
    assert causal == blocks * (blocks + 1) // 2


@pytest.mark.parametrize("causal", [True, False])
def test_window_schedule_grows_linearly(causal):
    # Each query block visits at most the key blocks its window spans,
    # whatever n: 4 queries and a window of 5 reach 8 (causal: 4) keys.
    reach = 4 if causal else 8
    for n in (64, 256):
        plan = block_schedule.schedule(n, n, 4, 4, causal, 5)
        assert max(len(keys) for *_, keys in plan) <= (4 + reach) // 4 + 1
    assert visited_blocks(256, 256, 4, causal, 5) < 256 * 256 / 16 / 10


def test_schedule_covers_every_allowed_pair_and_flags_partial_blocks():
    for q_len, k_len, causal, window, _ in GEOMETRIES.values():
        offset = k_len - q_len
        distance = np.arange(q_len)[:, None] + offset - np.arange(k_len)
        allowed = np.ones((q_len, k_len), bool)
        if causal:
            allowed &= distance >= 0
        if window is not None:
            allowed &= (distance if causal else np.abs(distance)) < window
        covered = np.zeros_like(allowed)
        plan = block_schedule.schedule(q_len, k_len, 4, 4, causal, window)
        for q_start, q_stop, keys in plan:
            for k_start, k_stop in keys:
                covered[q_start:q_stop, k_start:k_stop] = True
                unmasked = block_schedule.block_is_unmasked(
                    q_start, q_stop, k_start, k_stop, offset, causal, window
                )
                block = allowed[q_start:q_stop, k_start:k_stop]
                assert unmasked == block.all()
                assert block.any()
        assert not (allowed & ~covered).any()


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's blocks")
@pytest.mark.parametrize("causal,window", [(True, None), (True, 3), (False, 2)])
def test_torch_blocks_compute_only_the_scheduled_blocks(
    monkeypatch, causal, window
):
    from keras_attention.ops.attention import torch_kernels

    calls = []
    original = torch_kernels._block_logits

    def counting(*args):
        calls.append(args[-1])  # the block's keys
        return original(*args)

    monkeypatch.setattr(torch_kernels, "_block_logits", counting)
    q, k, v, _, bias = inputs(16, 16)
    attend = attend_with(
        None, causal, window, soft_cap=2.0, implementation="chunked",
        chunk_size=4,
    )  # fmt: skip
    value_and_gradients(attend, q, k, v, bias)
    plan = block_schedule.schedule(16, 16, 4, None, causal, window)
    expected = [keys for *_, spans in plan for keys in spans]
    assert calls == expected * 2
    keys_computed = sum(stop - start for start, stop in expected) * 4
    assert keys_computed < 16 * 16 * (0.8 if window else 0.7)


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's blocks")
def test_torch_blockwise_dropout_gradient_matches_finite_differences():
    import torch

    q, k, v, _, _ = inputs(5, 7, heads=1, kv_heads=1)
    tensors = [torch.tensor(x, dtype=torch.float32) for x in (q, k, v)]

    def loss(q, k, v):
        out = scaled_dot_product_attention(
            q,
            k,
            v,
            causal=True,
            window=3,
            dropout_rate=0.3,
            training=True,
            seed=7,
            implementation="chunked",
            chunk_size=2,
        )
        return (out.sin() * out).sum()

    leaves = [t.clone().requires_grad_(True) for t in tensors]
    grads = torch.autograd.grad(loss(*leaves), leaves)
    step = 1e-2
    for index, grad in enumerate(grads):
        for position in [(0, 2, 0, 1), (1, 4, 0, 3)]:
            up = [t.clone() for t in tensors]
            down = [t.clone() for t in tensors]
            up[index][position] += step
            down[index][position] -= step
            numeric = (loss(*up) - loss(*down)) / (2 * step)
            np.testing.assert_allclose(
                grad[position].item(), numeric.item(), atol=3e-3
            )


@pytest.mark.skipif(BACKEND != "jax", reason="JAX's blocks")
@pytest.mark.parametrize("causal,window", [(True, None), (True, 64)])
def test_jax_backward_memory_grows_linearly(causal, window):
    # A backward pass that kept every block pair's residuals would grow
    # 4x from n to 2n; the blockwise one keeps O(n) (about 2x).
    import jax

    def temp_bytes(n):
        x = jax.ShapeDtypeStruct((1, n, 2, 16), "float32")

        def loss(q, k, v):
            out = scaled_dot_product_attention(
                q,
                k,
                v,
                causal=causal,
                window=window,
                implementation="chunked",
                chunk_size=64,
            )
            return out.sum()

        grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
        compiled = grad.lower(x, x, x).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    small, large = temp_bytes(1024), temp_bytes(4096)
    assert large < 5 * small  # quadratic would be 16x
