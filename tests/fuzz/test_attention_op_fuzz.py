"""Property-based fuzzing of `keras_attention.ops.scaled_dot_product_attention`.

Each drawn case (shapes, lengths 0 and 1, GQA heads that divide or not,
masks and biases of broadcastable and non-broadcastable shapes, `causal`,
`window`, `soft_cap`, float16/bfloat16/float32 and integer dtypes, both
implementations) either raises a `ValueError` naming the offending argument
or returns a finite output equal to a float64 NumPy reference written here.

NaN and Inf inputs: the op does not check values (it cannot inside a
traced function without a cost on every call), and NaN propagates, as in
`keras.ops.dot_product_attention`: a NaN or Inf in a query, or in a key the
query may attend to, makes that query's output NaN; a key masked out (by
`mask`, `causal` or `window`) never reaches it, on every backend (PyTorch's
fused kernel would let it through: `torch_kernels` screens such keys); a
NaN in a value reaches every query, even one that masks that
position (its weight is zero, and `0 * NaN` is NaN in `W V`), so padding
must hold finite numbers. Scores past the float32 range (|q.k| > 3.4e38,
inputs near 1e19) are inf, and give NaN as in Keras's op. An
`attention_bias` of `-inf` masks like the boolean mask (clamped to a
large finite negative), so it never produces NaN. `test_non_finite_inputs`
pins these behaviours.
"""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_attention.ops import scaled_dot_product_attention
from tests.fuzz._settings import fuzz_settings

FLOAT_DTYPES = ("float32", "float16", "bfloat16")
# Absolute tolerance per dtype, relative to the largest |value|: the output
# is rounded to the dtype, and the weights are cast to it before `W V`.
ATOL = {"float32": 2e-5, "float16": 4e-3, "bfloat16": 3e-2}


def _dim(draw, target):
    """A mask dimension: broadcast (1), equal, or one that cannot fit."""
    choice = draw(st.sampled_from(["one", "equal", "equal", "other"]))
    if choice == "one":
        return 1
    if choice == "equal":
        return target
    return draw(st.sampled_from([s for s in range(7) if s not in (1, target)]))


@st.composite
def broadcast_shape(draw, target):
    """A shape for a mask or bias of `target` (b, h, q, k): fits or not."""
    rank = draw(st.integers(0, 5))
    # Rank 5 never fits; its leading axis is arbitrary.
    padded = (1,) * (rank - len(target)) + tuple(target)
    return tuple(_dim(draw, size) for size in padded[len(padded) - rank :])


def _fits(shape, target):
    return len(shape) <= 4 and all(
        m in (1, t) for m, t in zip(reversed(shape), reversed(target))
    )


@st.composite
def attention_case(draw):
    batch = draw(st.integers(1, 2))
    q_len = draw(st.sampled_from([0, 1, 1, 2, 3, 5]))
    k_len = draw(st.sampled_from([0, 1, 1, 2, 4, 6]))
    heads = draw(st.integers(1, 4))
    kv_heads = draw(st.sampled_from([heads, 1, draw(st.integers(1, 4))]))
    depth = draw(st.integers(1, 6))
    value_depth = draw(st.integers(1, 6))
    target = (batch, heads, q_len, k_len)
    mask_shape = draw(st.none() | broadcast_shape(target))
    bias_shape = draw(st.none() | broadcast_shape(target))
    return dict(
        shapes=dict(
            query=(batch, q_len, heads, depth),
            key=(batch, k_len, kv_heads, depth),
            value=(batch, k_len, kv_heads, value_depth),
        ),
        target=target,
        dtype=draw(st.sampled_from(FLOAT_DTYPES + ("int32",))),
        implementation=draw(st.sampled_from(["dense", "chunked"])),
        causal=draw(st.booleans()),
        window=draw(st.none() | st.integers(1, 6)),
        soft_cap=draw(st.none() | st.floats(0.5, 30.0)),
        mask_shape=mask_shape,
        mask_dtype=draw(st.sampled_from(["bool", "int32"])),
        bias_shape=bias_shape,
        chunk_size=draw(st.none() | st.integers(1, 4)),
        seed=draw(st.integers(0, 2**16)),
    )


def expected_error(case):
    """The argument a `ValueError` must name, or `None` for a valid case."""
    heads, kv_heads = case["shapes"]["query"][2], case["shapes"]["key"][2]
    if case["dtype"].startswith("int"):
        return "query"
    if heads % kv_heads:
        return "key"
    if case["mask_shape"] is not None:
        if not _fits(case["mask_shape"], case["target"]):
            return "mask"
    if case["bias_shape"] is not None:
        if not _fits(case["bias_shape"], case["target"]):
            return "attention_bias"
    return None


def numpy_attention(q, k, v, mask, causal, window, soft_cap, bias):
    """float64 `softmax(Q K^T / sqrt(d)) V` with the op's conventions."""
    batch, q_len, heads, depth = q.shape
    k_len, kv_heads = k.shape[1], k.shape[2]
    k = np.repeat(k, heads // kv_heads, axis=2)
    v = np.repeat(v, heads // kv_heads, axis=2)
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(depth)
    if soft_cap is not None:
        scores = soft_cap * np.tanh(scores / soft_cap)
    if bias is not None:
        scores = scores + bias
    allowed = np.ones((batch, heads, q_len, k_len), bool)
    if mask is not None:
        allowed &= np.broadcast_to(mask != 0, allowed.shape)
    # Query i stands at key position i + k_len - q_len (bottom-right).
    position = np.arange(q_len)[:, None] + k_len - q_len
    offset = np.arange(k_len)[None, :] - position  # key - query position
    if causal:
        allowed &= offset <= 0
    if window is not None:
        near = -offset < window if causal else np.abs(offset) < window
        allowed &= near
    scores = np.where(allowed, scores, -np.inf)
    row_max = scores.max(axis=-1, keepdims=True, initial=-np.inf)
    exp = np.where(
        allowed,
        np.exp(scores - np.where(np.isfinite(row_max), row_max, 0.0)),
        0.0,
    )
    total = exp.sum(axis=-1, keepdims=True)
    weights = np.divide(exp, total, out=np.zeros_like(exp), where=total > 0)
    return np.einsum("bhqk,bkhd->bqhd", weights, v)


def _tensor(array, dtype):
    return keras.ops.convert_to_tensor(array, dtype=dtype)


def _as_float64(tensor):
    return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32")).astype(
        "float64"
    )


@fuzz_settings(weight=3.0)
@given(case=attention_case())
def test_op_raises_named_error_or_matches_numpy(case):
    rng = np.random.default_rng(case["seed"])
    dtype = case["dtype"]
    arrays = {
        name: rng.normal(size=shape) * (3 if dtype.startswith("int") else 1)
        for name, shape in case["shapes"].items()
    }
    tensors = {name: _tensor(a, dtype) for name, a in arrays.items()}
    mask = bias = None
    if case["mask_shape"] is not None:
        mask = rng.random(case["mask_shape"]) < 0.7
        mask = mask.astype(case["mask_dtype"])
    if case["bias_shape"] is not None:
        bias = rng.normal(size=case["bias_shape"]).astype("float32")
    kwargs = dict(
        mask=mask,
        causal=case["causal"],
        window=case["window"],
        soft_cap=case["soft_cap"],
        attention_bias=bias,
        implementation=case["implementation"],
        chunk_size=case["chunk_size"],
    )
    argument = expected_error(case)
    if argument is not None:
        with pytest.raises(ValueError, match=f"`{argument}`"):
            scaled_dot_product_attention(**tensors, **kwargs)
        return
    output = scaled_dot_product_attention(**tensors, **kwargs)
    expected_shape = case["shapes"]["query"][:3] + (case["shapes"]["value"][3],)
    assert tuple(output.shape) == expected_shape
    assert keras.backend.standardize_dtype(output.dtype) == dtype
    result = _as_float64(output)
    assert np.isfinite(result).all(), "finite inputs gave a non-finite output"
    # The reference reads the inputs as the op received them (rounded).
    q, k, v = (_as_float64(tensors[n]) for n in ("query", "key", "value"))
    expected = numpy_attention(
        q, k, v, mask, case["causal"], case["window"], case["soft_cap"], bias
    )
    scale = max(1.0, float(np.abs(v).max(initial=0.0)))
    np.testing.assert_allclose(result, expected, atol=ATOL[dtype] * scale)


@fuzz_settings(weight=1.0)
@given(
    implementation=st.sampled_from(["dense", "chunked"]),
    dtype=st.sampled_from(FLOAT_DTYPES),
    extreme=st.sampled_from([1e4, 6e4, 1e15]),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_large_finite_inputs_never_give_nan(
    implementation, dtype, extreme, causal, seed
):
    """Large finite inputs stay finite while their scores fit in float32.

    Queries and keys whose products overflow float32 (|q.k| > 3.4e38, e.g.
    entries of 1e30) make the scores infinite and the output NaN: see
    `test_scores_past_float32_range_give_nan`.
    """
    rng = np.random.default_rng(seed)
    limit = float(np.finfo("float16").max) if dtype == "float16" else extreme
    shape = (1, 4, 2, 3)
    query, key = (
        np.clip(rng.normal(size=shape) * extreme, -limit, limit)
        for _ in range(2)
    )
    value = rng.normal(size=shape)
    mask = rng.random((1, 1, 4, 4)) < 0.5  # fully masked rows included
    output = scaled_dot_product_attention(
        _tensor(query, dtype),
        _tensor(key, dtype),
        _tensor(value, dtype),
        mask=mask,
        causal=causal,
        implementation=implementation,
    )
    assert np.isfinite(_as_float64(output)).all()


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_non_finite_inputs(implementation):
    """Pins the documented behaviour of NaN and Inf inputs (see the top)."""
    rng = np.random.default_rng(0)
    query = rng.normal(size=(1, 3, 1, 4)).astype("float32")
    key = rng.normal(size=(1, 3, 1, 4)).astype("float32")
    value = rng.normal(size=(1, 3, 1, 4)).astype("float32")
    key[0, 2] = np.nan  # the last key
    causal = scaled_dot_product_attention(
        query, key, value, causal=True, implementation=implementation
    )
    causal = keras.ops.convert_to_numpy(causal)
    # Query 2 sees key 2: NaN propagates.
    assert np.isnan(causal[0, 2]).all()
    # A NaN value reaches every query, masked or not: its weight is 0, and
    # 0 * NaN is NaN in `W V` (as in every matmul-based attention).
    nan_value = value.copy()
    nan_value[0, 2] = np.nan
    leaked = scaled_dot_product_attention(
        query,
        key.clip(-1, 1),
        nan_value,
        mask=np.array([True, True, False]),
        implementation=implementation,
    )
    assert np.isnan(keras.ops.convert_to_numpy(leaked)).all()
    bias = np.zeros((1, 1, 3, 3), "float32")
    bias[..., 1:] = -np.inf  # -inf bias masks, even a whole row
    bias[..., 0, :] = -np.inf
    biased = scaled_dot_product_attention(
        query,
        np.nan_to_num(key),
        value.clip(-1, 1),
        attention_bias=bias,
        implementation=implementation,
    )
    assert np.isfinite(keras.ops.convert_to_numpy(biased)).all()
    query[0, 0, 0, 0] = np.inf  # an infinite query: its row becomes NaN
    infinite = scaled_dot_product_attention(
        query,
        np.nan_to_num(key),
        value.clip(-1, 1),
        implementation=implementation,
    )
    infinite = keras.ops.convert_to_numpy(infinite)
    assert np.isfinite(infinite[0, 1:]).all()


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_nan_in_a_masked_key_never_reaches_the_output(implementation):
    # Every way a key can be masked (on PyTorch: `is_causal`, a causal or
    # window mask it is given, a padding mask, a per-query mask with a fully
    # masked row), with q_len == k_len and q_len < k_len: exactly the rows
    # that may see the NaN key are NaN, the others equal the reference.
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 4, 2, 4)).astype("float32")
    key, value = (
        rng.normal(size=(2, 5, 2, 4)).astype("float32") for _ in range(2)
    )
    key[0, 3, 1, 2] = np.nan  # batch 0, key 3, head 1
    padding = np.array([1, 1, 1, 0, 1], bool).reshape(1, 1, 1, 5)
    per_query = rng.random((2, 1, 4, 5)) < 0.6
    per_query[1, 0, 2] = False  # a fully masked row
    cases = [
        dict(causal=True),
        dict(window=2),
        dict(causal=True, window=2),
        dict(mask=padding),
        dict(mask=per_query),
    ]
    for kwargs in cases:
        for k_len in (4, 5):
            k, v = key[:, :k_len], value[:, :k_len]
            options = dict(kwargs)
            if "mask" in options:
                options["mask"] = options["mask"][..., :k_len]
            output = scaled_dot_product_attention(
                query, k, v, implementation=implementation, **options
            )
            output = keras.ops.convert_to_numpy(output)
            reference = dict(
                mask=options.get("mask"),
                causal=options.get("causal", False),
                window=options.get("window"),
                soft_cap=None,
                bias=None,
            )
            clean = np.nan_to_num(k)
            expected = numpy_attention(query, clean, v, **reference)
            # The weight each query gives the NaN key, > 0 where it sees it.
            indicator = np.isnan(k).any(-1, keepdims=True).astype("float64")
            weight = numpy_attention(query, clean, indicator, **reference)
            sees = np.broadcast_to(weight > 0, output.shape)
            # The padding mask hides key 3 from every query; the others
            # let some query see it.
            assert sees.any() != (
                options.get("mask") is not None
                and options["mask"].shape[2] == 1
            ), kwargs
            np.testing.assert_array_equal(
                np.isnan(output), sees, err_msg=f"{kwargs}, k_len={k_len}"
            )
            np.testing.assert_allclose(
                output[~sees], expected[~sees], atol=2e-5, err_msg=str(kwargs)
            )


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_scores_past_the_float32_range_as_keras(implementation):
    # Below float32's range (|q.k| = 2e36 here) the output is exact; past it
    # (2e60) a score is inf and the softmax of inf - inf is NaN: no float32
    # kernel can hold that score, Keras's own op gives NaN too, and so does
    # ours (loud, where clamping would return a silently wrong row).
    for magnitude, finite in ((1e18, True), (1e30, False)):
        query = key = value = np.full((1, 2, 1, 2), magnitude, "float32")
        output = keras.ops.convert_to_numpy(
            scaled_dot_product_attention(
                query, key, value, implementation=implementation
            )
        )
        keras_output = keras.ops.convert_to_numpy(
            keras.ops.dot_product_attention(query, key, value)
        )
        assert np.isfinite(output).all() == finite
        np.testing.assert_array_equal(np.isnan(output), np.isnan(keras_output))
        if finite:
            np.testing.assert_allclose(output, value, rtol=1e-6)
