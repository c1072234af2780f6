"""Tests of `scaled_dot_product_attention` on the backend under test.

One body per test serves TensorFlow, JAX and PyTorch; the tests of
TensorFlow's own kernels (tiles, XLA, thresholds) are marked `tf_only`.
"""

import keras
import numpy as np
import pytest

from keras_attention.ops.attention import dispatch
from keras_attention.ops.attention import scaled_dot_product_attention
from tests.testing import value_and_gradients


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def tf_kernels():
    from keras_attention.ops.attention import tensorflow_kernels

    return tensorflow_kernels


def numpy_attention(q, k, v, mask=None, causal=False, scale=None):
    """softmax(Q K^T * scale) V in NumPy; fully masked rows give zeros."""
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) * scale
    allowed = np.ones(scores.shape, dtype=bool)
    if mask is not None:
        allowed = allowed & np.broadcast_to(mask, scores.shape)
    if causal:
        q_len, k_len = scores.shape[-2:]
        allowed = allowed & np.tri(q_len, k_len, k_len - q_len, dtype=bool)
    scores = np.where(allowed, scores, -np.inf)
    row_max = np.max(scores, axis=-1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    weights = np.exp(scores - row_max)
    total = weights.sum(-1, keepdims=True)
    weights = np.where(total > 0, weights / np.where(total > 0, total, 1), 0)
    return np.einsum("bhqk,bkhd->bqhd", weights, v), weights


def random_inputs(
    batch=2, q_len=5, k_len=7, heads=3, depth=4, v_depth=6, seed=0
):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(batch, q_len, heads, depth)).astype("float32")
    k = rng.normal(size=(batch, k_len, heads, depth)).astype("float32")
    v = rng.normal(size=(batch, k_len, heads, v_depth)).astype("float32")
    return q, k, v


def random_mask(batch, q_len, k_len, seed=1):
    mask = np.random.default_rng(seed).random((batch, 1, q_len, k_len)) > 0.3
    mask[0, 0, 0, :] = False  # one fully masked row
    return mask


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
def test_matches_numpy_reference(implementation, causal, use_mask):
    q, k, v = random_inputs(q_len=5, k_len=7)
    mask = random_mask(2, 5, 7) if use_mask else None
    expected, _ = numpy_attention(q, k, v, mask=mask, causal=causal)
    output = scaled_dot_product_attention(
        q,
        k,
        v,
        mask=mask,
        causal=causal,
        implementation=implementation,
        chunk_size=3,
    )
    np.testing.assert_allclose(to_numpy(output), expected, atol=1e-5)


def test_custom_scale_and_returned_weights():
    q, k, v = random_inputs()
    mask = random_mask(2, 5, 7)
    expected, expected_weights = numpy_attention(q, k, v, mask, scale=0.3)
    output, weights = scaled_dot_product_attention(
        q, k, v, mask=mask, scale=0.3, return_attention_scores=True
    )
    np.testing.assert_allclose(to_numpy(output), expected, atol=1e-5)
    np.testing.assert_allclose(to_numpy(weights), expected_weights, atol=1e-6)
    row_sums = to_numpy(weights).sum(-1)
    has_keys = mask.any(-1)
    np.testing.assert_allclose(
        row_sums[np.broadcast_to(has_keys, row_sums.shape)], 1.0, atol=1e-6
    )


def test_padded_keys_get_zero_weight_and_do_not_matter():
    q, k, v = random_inputs(k_len=6)
    key_mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    mask = key_mask[:, None, None, :]
    out, weights = scaled_dot_product_attention(
        q, k, v, mask=mask, return_attention_scores=True
    )
    assert np.all(to_numpy(weights)[0, :, :, 4:] == 0.0)
    k2, v2 = k.copy(), v.copy()
    k2[0, 4:] = 100.0
    v2[0, 4:] = -100.0
    for implementation in ("dense", "chunked"):
        out2 = scaled_dot_product_attention(
            q, k2, v2, mask=mask, implementation=implementation, chunk_size=4
        )
        np.testing.assert_allclose(to_numpy(out2), to_numpy(out), atol=1e-5)


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_causal_future_keys_do_not_change_earlier_outputs(implementation):
    q, k, v = random_inputs(q_len=6, k_len=6)
    out = scaled_dot_product_attention(
        q, k, v, causal=True, implementation=implementation, chunk_size=4
    )
    k2, v2 = k.copy(), v.copy()
    k2[:, 3:] += 5.0
    v2[:, 3:] -= 5.0
    out2 = scaled_dot_product_attention(
        q, k2, v2, causal=True, implementation=implementation, chunk_size=4
    )
    np.testing.assert_allclose(out2[:, :3], out[:, :3], atol=1e-6)
    assert not np.allclose(out2[:, 3:], out[:, 3:])


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_fully_masked_rows_are_zero_not_nan(implementation):
    q, k, v = random_inputs()
    mask = np.zeros((2, 1, 5, 7), bool)
    mask[1] = True

    def attend(qt, kt, vt):
        out = scaled_dot_product_attention(
            qt, kt, vt, mask=mask, implementation=implementation, chunk_size=3
        )
        return out, keras.ops.sum(out)

    out, *grads = value_and_gradients(attend, q, k, v)
    assert np.all(to_numpy(out)[0] == 0.0)
    assert np.isfinite(to_numpy(out)).all()
    for grad in grads:
        assert np.isfinite(to_numpy(grad)).all()


def outputs_and_gradients(q, k, v, **kwargs):
    """The output and the gradients of a non-linear loss of it."""

    def attend(qt, kt, vt):
        out = scaled_dot_product_attention(qt, kt, vt, **kwargs)
        return out, keras.ops.sum(keras.ops.sin(out) * out)

    return value_and_gradients(attend, q, k, v)


@pytest.mark.parametrize(
    "q_len,k_len,chunk_size",
    [(9, 9, 4), (7, 13, 5), (16, 16, 16), (3, 40, 7), (33, 33, 8)],
)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_tiles_match_one_batched_matmul_outputs_and_gradients(
    q_len, k_len, chunk_size, causal, implementation
):
    # `chunk_size` makes both implementations run tile by tile (a last tile
    # shorter than the others included); `chunk_size=None` at these sizes is
    # the untiled dense path, the reference.
    q, k, v = random_inputs(q_len=q_len, k_len=k_len, seed=q_len + k_len)
    mask = random_mask(2, q_len, k_len, seed=k_len)
    reference = outputs_and_gradients(q, k, v, mask=mask, causal=causal)
    tiled = outputs_and_gradients(
        q,
        k,
        v,
        mask=mask,
        causal=causal,
        implementation=implementation,
        chunk_size=chunk_size,
    )
    for expected, got in zip(reference, tiled):
        np.testing.assert_allclose(to_numpy(got), to_numpy(expected), atol=1e-5)


@pytest.mark.parametrize(
    "mask_shape", [(2, 3, 6, 9), (2, 1, 1, 9), (1, 3, 6, 1), (6, 9), (9,)]
)
@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_tiles_pick_the_right_slice_of_every_mask_layout(
    mask_shape, implementation
):
    q, k, v = random_inputs(q_len=6, k_len=9, heads=3)
    mask = np.random.default_rng(4).random(mask_shape) > 0.4
    expected, _ = numpy_attention(q, k, v, mask=mask)
    got = scaled_dot_product_attention(
        q, k, v, mask=mask, implementation=implementation, chunk_size=4
    )
    np.testing.assert_allclose(to_numpy(got), expected, atol=1e-5)


@pytest.mark.tf_only
def test_dense_tiles_long_sequences_by_itself(monkeypatch):
    attention = tf_kernels()

    q, k, v = random_inputs(q_len=40, k_len=40)
    mask = random_mask(2, 40, 40)
    reference = outputs_and_gradients(q, k, v, mask=mask, causal=True)
    rows = []
    original = attention._tiled_attention

    def spy(*args, **kwargs):
        rows.append(args[7])
        return original(*args, **kwargs)

    monkeypatch.setattr(attention, "_tiled_attention", spy)
    monkeypatch.setattr(
        attention,
        "DENSE_TILE_MIN_BYTES",
        dict.fromkeys(attention.DENSE_TILE_MIN_BYTES, 40 * 40 * 4),
    )
    monkeypatch.setattr(attention, "TILE_BUDGET_BYTES", 40 * 4 * 16)
    tiled = outputs_and_gradients(q, k, v, mask=mask, causal=True)
    assert rows == [16]  # three tiles of 16, 16 and 8 query rows
    for expected, got in zip(reference, tiled):
        np.testing.assert_allclose(to_numpy(got), to_numpy(expected), atol=1e-5)
    # With a GPU visible, dense keeps the single batched matmul.
    monkeypatch.setattr(attention, "_gpu_visible", lambda: True)
    outputs_and_gradients(q, k, v, mask=mask, causal=True)
    assert rows == [16]


@pytest.mark.tf_only
def test_tile_threshold_follows_the_kernels_being_traced_for(monkeypatch):
    attention = tf_kernels()
    import tensorflow as tf

    seen = []

    @tf.function
    def graph():
        seen.append(attention._cpu_kernels())
        return tf.constant(0)

    @tf.function(jit_compile=True)
    def compiled():
        seen.append(attention._cpu_kernels())
        return tf.constant(0)

    graph()
    compiled()
    assert seen[1] == "xla"
    assert seen[0] == ("onednn" if attention._onednn_enabled() else "eigen")
    # Each kernel family has its own threshold, and the choice uses it.
    q, k, v = random_inputs(q_len=40, k_len=40)
    calls = []
    original = attention._tiled_attention

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(attention, "_tiled_attention", spy)
    monkeypatch.setattr(
        attention,
        "DENSE_TILE_MIN_BYTES",
        {"eigen": 40 * 40 * 4, "onednn": 40 * 40 * 4, "xla": 40 * 40 * 8},
    )
    graph_call = tf.function(scaled_dot_product_attention)
    xla_call = tf.function(scaled_dot_product_attention, jit_compile=True)
    np.testing.assert_allclose(
        graph_call(q, k, v).numpy(), xla_call(q, k, v).numpy(), atol=1e-5
    )
    assert calls == [1]  # graph mode tiled, XLA kept one batched matmul


@pytest.mark.tf_only
@pytest.mark.parametrize("implementation", ["dense", "chunked"])
@pytest.mark.parametrize("q_len,k_len", [(10, 10), (7, 12), (11, 6)])
def test_causal_tiles_stop_at_the_diagonal_under_xla(
    implementation, q_len, k_len
):
    # With static lengths XLA gets the row tiles unrolled, each multiplying
    # only its keys up to the diagonal: the program holds a (4, span) score
    # matmul per span, and outputs and gradients are those of one batched
    # matmul (graph mode, itself tested against NumPy above).
    import tensorflow as tf

    # (Depths of 16: no other matmul of the program is (4, span).)
    q, k, v = random_inputs(2, q_len, k_len, heads=2, depth=16, v_depth=16)
    mask = random_mask(2, q_len, k_len)
    cotangent = np.random.default_rng(3).normal(size=(2, q_len, 2, 16))

    def attend(q, k, v, implementation, chunk_size):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = scaled_dot_product_attention(
                q,
                k,
                v,
                mask=mask,
                causal=True,
                implementation=implementation,
                chunk_size=chunk_size,
            )
            loss = tf.reduce_sum(out * cotangent)
        return [out, *tape.gradient(loss, [q, k, v])]

    compiled = tf.function(
        lambda q, k, v: attend(q, k, v, implementation, 4), jit_compile=True
    )
    reference = tf.function(lambda q, k, v: attend(q, k, v, "dense", None))
    q, k, v = (tf.constant(x) for x in (q, k, v))
    for got, want in zip(compiled(q, k, v), reference(q, k, v)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
    hlo = compiled.experimental_get_compiler_ir(q, k, v)(stage="hlo")
    offset = k_len - q_len
    spans = {min(max(row + 4 + offset, 0), k_len) for row in range(0, q_len, 4)}
    for span in spans - {0}:
        assert f"f32[4,{span}]" in hlo, span
    assert len(spans - {0, k_len}) >= 1  # some tile stops short


@pytest.mark.tf_only
def test_dense_tiles_keep_no_weights_in_inference(monkeypatch):
    attention = tf_kernels()

    kept = []
    original = attention._tiled_attention

    def spy(*args, keep_weights, **kwargs):
        kept.append(keep_weights)
        return original(*args, keep_weights=keep_weights, **kwargs)

    monkeypatch.setattr(attention, "_tiled_attention", spy)
    q, k, v = random_inputs(q_len=10, k_len=12)
    mask = random_mask(2, 10, 12)
    reference = outputs_and_gradients(q, k, v, mask=mask, chunk_size=4)
    # A gradient asked of an inference call recomputes the weights.
    inference = outputs_and_gradients(
        q, k, v, mask=mask, chunk_size=4, training=False
    )
    assert kept == [True, False]
    for expected, got in zip(reference, inference):
        np.testing.assert_allclose(to_numpy(got), to_numpy(expected), atol=1e-5)


@pytest.mark.tf_only
@pytest.mark.parametrize("implementation", ["dense", "chunked"])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_tf_function_with_dynamic_lengths(implementation, jit_compile):
    import tensorflow as tf

    spec = tf.TensorSpec((None, None, 2, 4), tf.float32)

    @tf.function(input_signature=[spec, spec, spec], jit_compile=jit_compile)
    def attend(q, k, v):
        with tf.GradientTape() as tape:
            tape.watch(q)
            out = scaled_dot_product_attention(
                q,
                k,
                v,
                causal=True,
                implementation=implementation,
                chunk_size=4,
            )
            loss = tf.reduce_sum(out)
        return out, tape.gradient(loss, q)

    for q_len, k_len in ((5, 5), (3, 11)):
        q, k, v = random_inputs(1, q_len, k_len, heads=2, depth=4, v_depth=4)
        expected, _ = numpy_attention(q, k, v, causal=True)
        out, grad = attend(q, k, v)
        np.testing.assert_allclose(to_numpy(out), expected, atol=1e-5)
        assert np.isfinite(to_numpy(grad)).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_half_precision_is_finite_and_close(dtype, implementation):
    q, k, v = random_inputs(q_len=6, k_len=9)
    q = q * 30.0  # large scores: an overflow in float16 would show up
    mask = random_mask(2, 6, 9)
    expected, _ = numpy_attention(q, k, v, mask=mask)
    out = scaled_dot_product_attention(
        keras.ops.cast(q, dtype),
        keras.ops.cast(k, dtype),
        keras.ops.cast(v, dtype),
        mask=mask,
        implementation=implementation,
        chunk_size=4,
    )
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    out = to_numpy(keras.ops.cast(out, "float32"))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, atol=0.1)


@pytest.mark.parametrize(
    "implementation, chunk_size",
    [("dense", None), ("dense", 2), ("chunked", 2)],
    ids=["batched", "tiled", "chunked"],
)
def test_float16_scores_past_its_range_stay_finite(implementation, chunk_size):
    # q.k / sqrt(16) = 32.5 * 130 * 16 = 67600 > 65504, float16's largest.
    rng = np.random.default_rng(0)
    q = np.full((1, 3, 1, 16), 130.0, "float32")
    k = q * rng.choice([-1.0, 1.0], size=(1, 3, 1, 1)).astype("float32")
    v = rng.normal(size=(1, 3, 1, 4)).astype("float32")
    expected, _ = numpy_attention(q, k, v)

    def attend(*half):
        out = scaled_dot_product_attention(
            *half, implementation=implementation, chunk_size=chunk_size
        )
        assert keras.backend.standardize_dtype(out.dtype) == "float16"
        weights = keras.ops.cast(v[..., :1], out.dtype)
        return out, keras.ops.sum(out * weights)

    out, *grads = value_and_gradients(
        attend, *(x.astype("float16") for x in (q, k, v))
    )
    np.testing.assert_allclose(out.astype("float32"), expected, atol=1e-2)
    for grad in grads:
        assert np.isfinite(grad.astype("float32")).all()


def test_dropout_only_in_training_and_seeded():
    q, k, v = random_inputs()
    plain = scaled_dot_product_attention(q, k, v)
    not_training = scaled_dot_product_attention(
        q, k, v, dropout_rate=0.5, training=False
    )
    np.testing.assert_allclose(not_training, plain)
    for implementation in ("dense", "chunked"):
        first = scaled_dot_product_attention(
            q,
            k,
            v,
            dropout_rate=0.5,
            training=True,
            seed=3,
            implementation=implementation,
            chunk_size=3,
        )
        second = scaled_dot_product_attention(
            q,
            k,
            v,
            dropout_rate=0.5,
            training=True,
            seed=3,
            implementation=implementation,
            chunk_size=3,
        )
        np.testing.assert_allclose(first, second)
        assert not np.allclose(first, plain)


@pytest.mark.tf_only
@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_tiled_dropout_gradient_matches_finite_differences(implementation):
    import tensorflow as tf

    q, k, v = (
        x.astype("float64")
        for x in random_inputs(1, 3, 5, heads=1, depth=2, v_depth=2)
    )

    def attend(q, k, v):
        return scaled_dot_product_attention(
            q,
            k,
            v,
            dropout_rate=0.3,
            training=True,
            seed=7,
            implementation=implementation,
            chunk_size=2,
        )

    theoretical, numerical = tf.test.compute_gradient(
        attend, [tf.constant(q), tf.constant(k), tf.constant(v)]
    )
    # Softmax statistics run in float32, so finite differences are only
    # float32-accurate; a wrong dropout mask would be off by ~0.1.
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, atol=2e-4)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(q=(2, 5, 4), k=(2, 5, 1, 4), v=(2, 5, 1, 4)), "rank-4"),
        (dict(q=(2, 5, 1, 4), k=(2, 5, 1, 3), v=(2, 5, 1, 4)), "same depth"),
        (dict(q=(2, 5, 1, 4), k=(2, 5, 1, 4), v=(2, 6, 1, 4)), "same length"),
        (dict(q=(2, 5, 3, 4), k=(2, 5, 2, 4), v=(2, 5, 2, 4)), "heads"),
        (dict(q=(2, 5, 4, 4), k=(2, 5, 2, 4), v=(2, 5, 1, 4)), "heads"),
        (dict(q=(2, 5, 1, 4), k=(3, 5, 1, 4), v=(3, 5, 1, 4)), "batch"),
        (dict(mask=(2, 1, 5, 4)), "mask"),
        (dict(implementation="flash"), "implementation"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(chunk_size=2.5), "chunk_size"),
        (dict(dropout_rate=1.0), "dropout_rate"),
        (dict(dtype="int32"), "floating-point"),
        (
            dict(implementation="chunked", return_attention_scores=True),
            "chunked",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, match):
    shapes = {"q": (2, 5, 1, 4), "k": (2, 5, 1, 4), "v": (2, 5, 1, 4)}
    for name in ("q", "k", "v"):
        shapes[name] = kwargs.pop(name, shapes[name])
    dtype = kwargs.pop("dtype", "float32")
    tensors = [np.zeros(shapes[name], dtype) for name in ("q", "k", "v")]
    if "mask" in kwargs:
        kwargs["mask"] = np.ones(kwargs["mask"], bool)
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(*tensors, **kwargs)


@pytest.mark.parametrize(
    "q_shape,k_len", [((0, 5, 2, 4), 5), ((2, 0, 2, 4), 5), ((2, 3, 2, 4), 0)]
)
@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_empty_batch_queries_or_keys_give_zeros_not_nan(
    q_shape, k_len, implementation
):
    q = np.ones(q_shape, "float32")
    k = v = np.ones((q_shape[0], k_len, 2, 4), "float32")
    out, d_q, d_k, d_v = outputs_and_gradients(
        q, k, v, implementation=implementation, chunk_size=2
    )
    assert out.shape == q_shape
    assert d_q.shape == q_shape
    assert d_k.shape == d_v.shape == k.shape
    for tensor in (out, d_q, d_k, d_v):
        assert not to_numpy(tensor).any()  # all zeros, in particular no NaN


@pytest.mark.tf_only
def test_default_tile_rows_come_from_the_memory_budget():
    attention = tf_kernels()
    import tensorflow as tf

    # 140,000 keys: a 16 MiB tile holds 29 query rows, so 50 queries take
    # two tiles, the second one partial.
    q, k, v = random_inputs(1, 50, 140_000, heads=1, depth=4, v_depth=4)
    assert attention._tile_rows(tf.constant(k)) == 29
    # Few keys: the row cap, not the budget, sets the tile height.
    few_keys = tf.zeros((1, 100, 1, 4))
    assert attention._tile_rows(few_keys) == attention.MAX_TILE_ROWS
    expected, _ = numpy_attention(q, k, v, causal=True)
    for implementation in ("dense", "chunked"):
        got = scaled_dot_product_attention(
            q, k, v, causal=True, implementation=implementation
        )
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.tf_only
@pytest.mark.parametrize(
    "budget_bytes, return_scores, expected",
    [(10**12, False, "dense"), (1, False, "chunked"), (1, True, "dense")],
)
def test_auto_picks_chunked_by_score_memory(
    monkeypatch, budget_bytes, return_scores, expected
):
    attention = tf_kernels()

    calls = []
    original_dense = attention._dense_attention
    original_tiled = attention._tiled_attention

    def dense_spy(*args, **kwargs):
        calls.append("dense")
        return original_dense(*args, **kwargs)

    def tiled_spy(*args, keep_weights, **kwargs):
        calls.append("dense, tiled" if keep_weights else "chunked")
        return original_tiled(*args, keep_weights=keep_weights, **kwargs)

    monkeypatch.setattr(attention, "_dense_attention", dense_spy)
    monkeypatch.setattr(attention, "_tiled_attention", tiled_spy)
    monkeypatch.setattr(dispatch, "AUTO_CHUNKED_MIN_SCORE_BYTES", budget_bytes)
    q, k, v = random_inputs()
    scaled_dot_product_attention(q, k, v, return_attention_scores=return_scores)
    assert calls == [expected]
