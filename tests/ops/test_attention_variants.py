"""Sliding windows, soft-capped logits and additive biases in the core op.

One body per test serves TensorFlow, JAX and PyTorch. Each variant is
checked against a NumPy formula written here, on the dense and on the
memory-efficient path, and the two paths' gradients (the bias's included)
against each other. The grid is kept small: every new shape is one more
XLA compilation on JAX.
"""

import keras
import numpy as np
import pytest

from keras_attention.ops import sliding_window_mask
from keras_attention.ops.attention import dispatch
from keras_attention.ops.attention import scaled_dot_product_attention
from tests.ops.test_attention import random_inputs
from tests.ops.test_attention import random_mask
from tests.testing import value_and_gradients


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def numpy_variant(q, k, v, mask, causal, window, soft_cap, bias):
    """The op's formula with every option, in NumPy.

    Scores are `q k^T / sqrt(d)`, capped to `soft_cap * tanh(s / soft_cap)`,
    plus `bias`; query `i` (at key position `p = i + k_len - q_len`) sees
    key `j` when the mask allows it, `j <= p` with `causal`, and
    `0 <= p - j < window` (causal) or `|p - j| < window` with `window`.
    A query that sees no key gets zero weights.
    """
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    if soft_cap is not None:
        scores = soft_cap * np.tanh(scores / soft_cap)
    if bias is not None:
        scores = scores + bias
    q_len, k_len = scores.shape[-2:]
    distance = (np.arange(q_len)[:, None] + k_len - q_len) - np.arange(k_len)
    allowed = np.ones(scores.shape, bool)
    if mask is not None:
        allowed &= np.broadcast_to(mask, scores.shape)
    if causal:
        allowed &= distance >= 0
    if window is not None:
        allowed &= (
            (distance >= 0) & (distance < window)
            if causal
            else np.abs(distance) < window
        )
    scores = np.where(allowed, scores, -np.inf)
    top = np.max(scores, -1, keepdims=True)
    weights = np.exp(scores - np.where(np.isfinite(top), top, 0.0))
    total = weights.sum(-1, keepdims=True)
    weights = np.where(total > 0, weights / np.where(total > 0, total, 1), 0)
    return np.einsum("bhqk,bkhd->bqhd", weights, v), weights


CASES = {
    "causal window": dict(causal=True, window=3),
    "two-sided window": dict(window=2),
    "soft cap": dict(soft_cap=1.5),
    "per-head bias": dict(bias_shape=(1, 3, 6, 9)),
    "per-key bias": dict(bias_shape=(2, 1, 1, 9), mask=True),
    "everything": dict(
        causal=True, window=4, soft_cap=2.0, bias_shape=(1, 3, 6, 9), mask=True
    ),
}


def case_inputs(case):
    q, k, v = random_inputs(batch=2, q_len=6, k_len=9, heads=3)
    q, k = q * 2.0, k * 2.0  # scores past the soft cap
    bias = None
    if "bias_shape" in case:
        rng = np.random.default_rng(5)
        bias = rng.normal(size=case["bias_shape"]).astype("float32")
    mask = random_mask(2, 6, 9) if case.get("mask") else None
    return q, k, v, mask, bias


def attend_with(case, mask, **kwargs):
    options = dict(
        causal=case.get("causal", False),
        window=case.get("window"),
        soft_cap=case.get("soft_cap"),
    )

    def attend(q, k, v, *bias):
        out = scaled_dot_product_attention(
            q,
            k,
            v,
            mask=mask,
            attention_bias=bias[0] if bias else None,
            **options,
            **kwargs,
        )
        return out, keras.ops.sum(keras.ops.sin(out) * out)

    return attend


@pytest.mark.parametrize("name", list(CASES))
def test_variants_match_numpy_and_paths_agree_on_gradients(name):
    case = CASES[name]
    q, k, v, mask, bias = case_inputs(case)
    expected, expected_weights = numpy_variant(
        q,
        k,
        v,
        mask,
        case.get("causal", False),
        case.get("window"),
        case.get("soft_cap"),
        bias,
    )
    arrays = (q, k, v) if bias is None else (q, k, v, bias)
    results = {}
    for implementation in ("dense", "chunked"):
        # chunk_size=2 cuts queries and keys into blocks that the window
        # and the causal mask partly or wholly exclude.
        attend = attend_with(
            case, mask, implementation=implementation, chunk_size=2
        )
        results[implementation] = value_and_gradients(attend, *arrays)
        np.testing.assert_allclose(
            results[implementation][0], expected, atol=2e-5
        )
    for dense, chunked in zip(results["dense"][1:], results["chunked"][1:]):
        assert np.isfinite(chunked).all()
        np.testing.assert_allclose(chunked, dense, atol=5e-5)
    _, weights = scaled_dot_product_attention(
        q,
        k,
        v,
        mask=mask,
        causal=case.get("causal", False),
        window=case.get("window"),
        soft_cap=case.get("soft_cap"),
        attention_bias=bias,
        return_attention_scores=True,
    )
    np.testing.assert_allclose(to_numpy(weights), expected_weights, atol=1e-6)


def test_bias_gradient_is_the_score_gradient():
    # d loss / d bias sums d loss / d scores over the broadcast axes, so a
    # per-key bias's gradient is a finite difference of the loss.
    q, k, v = random_inputs(batch=1, q_len=4, k_len=5, heads=2)
    bias = np.zeros((1, 1, 1, 5), "float32")
    attend = attend_with({}, None, implementation="chunked", chunk_size=2)
    _, _, _, _, d_bias = value_and_gradients(attend, q, k, v, bias)
    step = 1e-2
    for j in range(5):
        up, down = bias.copy(), bias.copy()
        up[..., j] += step
        down[..., j] -= step
        numeric = (
            to_numpy(attend(q, k, v, up)[1])
            - to_numpy(attend(q, k, v, down)[1])
        ) / (2 * step)
        np.testing.assert_allclose(d_bias[..., j], numeric, atol=2e-3)


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_minus_infinity_bias_masks_like_the_mask(implementation):
    q, k, v = random_inputs(batch=2, q_len=4, k_len=6, heads=1)
    mask = random_mask(2, 4, 6)
    mask[0, 0, 0, :] = True  # every row keeps some key
    bias = np.where(mask, 0.0, -np.inf).astype("float32")
    by_bias = scaled_dot_product_attention(
        q, k, v, attention_bias=bias, implementation=implementation
    )
    by_mask = scaled_dot_product_attention(
        q, k, v, mask=mask, implementation=implementation
    )
    assert np.isfinite(to_numpy(by_bias)).all()
    np.testing.assert_allclose(to_numpy(by_bias), to_numpy(by_mask), atol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_window_as_wide_as_the_keys_is_plain_attention(causal):
    q, k, v = random_inputs(batch=1, q_len=5, k_len=5, heads=2)
    windowed = scaled_dot_product_attention(
        q, k, v, causal=causal, window=5, implementation="chunked"
    )
    plain = scaled_dot_product_attention(q, k, v, causal=causal)
    np.testing.assert_allclose(to_numpy(windowed), to_numpy(plain), atol=1e-5)


def test_sliding_window_mask_matches_its_definition():
    for q_len, k_len, window, causal in [
        (4, 4, 2, True),
        (3, 7, 3, True),
        (7, 3, 2, False),
        (5, 5, 1, False),
    ]:
        p = np.arange(q_len)[:, None] + k_len - q_len
        j = np.arange(k_len)[None, :]
        expected = (
            (p - j >= 0) & (p - j < window)
            if causal
            else np.abs(p - j) < window
        )
        got = to_numpy(sliding_window_mask(q_len, k_len, window, causal))
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(window=0), "window"),
        (dict(window=2.5), "window"),
        (dict(window=True), "window"),
        (dict(soft_cap=0.0), "soft_cap"),
        (dict(soft_cap=-1.0), "soft_cap"),
        (dict(soft_cap=float("inf")), "soft_cap"),
        (dict(attention_bias=np.zeros((1, 1, 5, 5), "int32")), "floating"),
        (dict(attention_bias=np.zeros((1, 2, 5, 5), "float32")), "broadcast"),
        (dict(attention_bias=np.zeros((3, 1, 1, 5), "float32")), "broadcast"),
        (dict(attention_bias=np.zeros((1, 1, 4, 5), "float32")), "broadcast"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs, match):
    q = k = v = np.zeros((2, 5, 1, 4), "float32")
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(q, k, v, **kwargs)


def test_auto_takes_the_chunked_path_for_a_long_narrow_window():
    shapes = (1, 4096, 2, 64)  # 128 MiB of scores: dense without a window
    backend = keras.backend.backend()
    plain = dispatch.choose_strategy(backend, "auto", shapes, shapes)
    windowed = dispatch.choose_strategy(
        backend, "auto", shapes, shapes, window=256
    )
    wide = dispatch.choose_strategy(
        backend, "auto", shapes, shapes, window=2048
    )
    chunked = {"tensorflow": "tiled", "jax": "blockwise", "torch": "blockwise"}
    assert windowed.kernel == chunked[backend]
    assert plain.kernel == wide.kernel != windowed.kernel


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_grouped_key_value_heads_serve_their_query_heads(implementation):
    # Query head i attends with key/value head i // group (4 query heads,
    # 2 key/value heads): the same as repeating each key/value head.
    q, _, _ = random_inputs(batch=2, q_len=5, k_len=7, heads=4)
    _, k, v = random_inputs(batch=2, q_len=5, k_len=7, heads=2, seed=3)
    mask = random_mask(2, 5, 7)
    expected, _ = numpy_variant(
        q,
        np.repeat(k, 2, axis=2),
        np.repeat(v, 2, axis=2),
        mask,
        True,
        None,
        None,
        None,
    )
    out = scaled_dot_product_attention(
        q, k, v, mask=mask, causal=True, implementation=implementation
    )
    np.testing.assert_allclose(to_numpy(out), expected, atol=2e-5)
