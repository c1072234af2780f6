"""Grouped-query, rotary, sliding-window and soft-capped attention layers.

One body per test serves TensorFlow, JAX and PyTorch. References: Keras's
own `GroupQueryAttention` and `MultiHeadAttention` with copied weights, and
a NumPy formula of the rotary embedding; cached decoding against the full
causal call.
"""

import keras
import numpy as np
import pytest

from keras_attention.layers import MultiHeadAttention
from keras_attention.layers import MultiHeadSelfAttention
from keras_attention.ops import sliding_window_mask
from tests.testing import decode_self_attention
from tests.testing import run_layer_test

BATCH, LENGTH, FEATURES = 2, 6, 8


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _rotate(x, start=0, max_wavelength=10000):
    """NumPy rotary embedding of `(batch, length, heads, depth)` heads."""
    half = x.shape[-1] // 2
    positions = np.arange(start, start + x.shape[1], dtype="float64")
    inverse = max_wavelength ** (-np.arange(half) / half)
    angles = positions[:, None] * inverse[None, :]  # (length, half)
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    first, second = x[..., :half], x[..., half:]
    return np.concatenate(
        [first * cos - second * sin, second * cos + first * sin], -1
    )


def _numpy_attention(weights, x, heads, kv_heads, rotary, causal, window):
    """Self-attention of `x` with the MultiHeadAttention weight layout."""
    wq, bq, wk, bk, wv, bv, wo, bo = weights
    q = np.einsum("btd,dhk->bthk", x, wq) + bq
    k = np.einsum("btd,dhk->bthk", x, wk) + bk
    v = np.einsum("btd,dhk->bthk", x, wv) + bv
    if rotary:
        q, k = _rotate(q), _rotate(k)
    group = heads // kv_heads
    k, v = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
    scores = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
    distance = np.arange(x.shape[1])[:, None] - np.arange(x.shape[1])
    allowed = np.ones(distance.shape, bool)
    if causal:
        allowed &= distance >= 0
    if window:
        allowed &= np.abs(distance) < window
    scores = np.where(allowed, scores, -np.inf)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    heads_out = np.einsum("bhqs,bshk->bqhk", scores, v)
    return np.einsum("bqhk,hko->bqo", heads_out, wo) + bo


def test_grouped_query_attention_matches_keras_with_copied_weights():
    x, y = _normal(BATCH, LENGTH, FEATURES), _normal(BATCH, 9, FEATURES, seed=1)
    theirs = keras.layers.GroupQueryAttention(
        head_dim=4, num_query_heads=4, num_key_value_heads=2
    )
    ours = MultiHeadAttention(num_heads=4, key_dim=4, num_key_value_heads=2)
    theirs(x, y)
    ours(x, y)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(
        _numpy(ours(x, y)), _numpy(theirs(x, y)), atol=1e-5
    )
    # Causal self-attention (Keras aligns a causal mask top-left, we align
    # it bottom-right: the two agree when the lengths do).
    np.testing.assert_allclose(
        _numpy(ours(x, x, use_causal_mask=True)),
        _numpy(theirs(x, x, use_causal_mask=True)),
        atol=1e-5,
    )


def test_as_many_key_value_heads_as_heads_is_plain_multi_head_attention():
    x = _normal(BATCH, LENGTH, FEATURES)
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ours = MultiHeadAttention(num_heads=2, key_dim=4, num_key_value_heads=2)
    theirs(x, x)
    ours(x, x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(
        _numpy(ours(x, x, use_causal_mask=True)),
        _numpy(theirs(x, x, use_causal_mask=True)),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_key_value_heads=1),
        dict(num_key_value_heads=2, rotary=True),
        dict(rotary=True, sliding_window=2),
        dict(num_key_value_heads=2, sliding_window=3, causal=False),
    ],
)
def test_self_attention_variants_match_numpy(kwargs):
    kwargs = dict(kwargs)
    causal = kwargs.pop("causal", True)
    x = _normal(BATCH, LENGTH, FEATURES)
    layer = MultiHeadAttention(num_heads=4, key_dim=4, **kwargs)
    layer(x, x)
    weights = [_numpy(w) for w in layer.get_weights()]
    expected = _numpy_attention(
        weights,
        x,
        4,
        kwargs.get("num_key_value_heads", 4),
        kwargs.get("rotary", False),
        causal,
        kwargs.get("sliding_window"),
    )
    for implementation in ("dense", "chunked"):
        layer.attention_implementation = implementation
        got = layer(x, x, use_causal_mask=causal)
        np.testing.assert_allclose(_numpy(got), expected, atol=1e-5)


def test_fused_self_attention_with_grouped_heads_equals_separate_projections():
    # The fused kernel holds, per key/value head, its group of query heads,
    # then its key and its value.
    x = _normal(BATCH, LENGTH, FEATURES)
    options = dict(num_heads=4, key_dim=4, num_key_value_heads=2, rotary=True)
    fused = MultiHeadSelfAttention(**options)
    separate = MultiHeadAttention(**options)
    fused(x)
    separate(x, x)
    kernel, bias, out_kernel, out_bias = fused.get_weights()
    group, depth = 2, 4

    def split(w):  # (..., kv, group * k + k + v) -> q, k, v
        q = w[..., : group * depth]
        q = q.reshape(q.shape[:-2] + (q.shape[-2] * group, depth))
        return q, w[..., group * depth : -depth], w[..., -depth:]

    (wq, wk, wv), (bq, bk, bv) = split(_numpy(kernel)), split(_numpy(bias))
    separate.set_weights(
        [wq, bq, wk, bk, wv, bv, _numpy(out_kernel), _numpy(out_bias)]
    )
    np.testing.assert_allclose(
        _numpy(fused(x, use_causal_mask=True)),
        _numpy(separate(x, x, use_causal_mask=True)),
        atol=1e-5,
    )


def test_rotary_scores_depend_only_on_the_offset():
    # Writing the same tokens at cache positions 3.. instead of 0.. (the
    # positions before them masked out) leaves every output unchanged.
    x = _normal(1, LENGTH, FEATURES)
    layer = MultiHeadAttention(num_heads=2, key_dim=4, rotary=True)
    layer(x, x)
    outputs = []
    for start in (0, 3):
        cache = keras.ops.zeros((1, 2, start + LENGTH, 2, 4))
        keep = np.arange(start + LENGTH) >= start
        mask = np.broadcast_to(keep, (1, LENGTH, start + LENGTH))
        out, _ = layer(
            x,
            x,
            cache=cache,
            cache_update_index=start,
            attention_mask=mask,
            use_causal_mask=True,
        )
        outputs.append(_numpy(out))
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-5)
    # Without rotation positions do not matter either; with it, they do
    # matter in absolute terms: the rotated keys in the caches differ.
    assert not np.allclose(
        _numpy(layer.compute_cache(x)[:, 0]),
        _numpy(layer.key_dense(x)),
        atol=1e-3,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_key_value_heads=2),
        dict(num_key_value_heads=1, rotary=True, sliding_window=3),
        dict(rotary=True, soft_cap=2.0),
    ],
)
def test_cached_decoding_matches_the_full_causal_call(kwargs):
    x = _normal(BATCH, LENGTH, FEATURES)
    layer = MultiHeadAttention(num_heads=4, key_dim=4, **kwargs)
    full = _numpy(layer(x, x, use_causal_mask=True))
    kv_heads = kwargs.get("num_key_value_heads", 4)
    cache = keras.ops.zeros((BATCH, 2, LENGTH, kv_heads, 4))
    # A two-token prefill, then one token at a time.
    steps = [(0, 2)] + [(t, t + 1) for t in range(2, LENGTH)]
    outputs, _ = decode_self_attention(layer, x, cache, steps)
    np.testing.assert_allclose(outputs, full, atol=1e-5)


def test_sliding_window_equals_its_explicit_mask():
    x = _normal(BATCH, LENGTH, FEATURES)
    layer = MultiHeadSelfAttention(num_heads=2, key_dim=4, sliding_window=2)
    plain = MultiHeadSelfAttention(num_heads=2, key_dim=4)
    layer(x)
    plain(x)
    plain.set_weights(layer.get_weights())
    mask = sliding_window_mask(LENGTH, LENGTH, 2, causal=True)[None]
    np.testing.assert_allclose(
        _numpy(layer(x, use_causal_mask=True)),
        _numpy(plain(x, attention_mask=mask)),
        atol=1e-5,
    )


def test_soft_cap_bounds_the_scores():
    x = _normal(1, LENGTH, FEATURES) * 30.0  # scores far past the cap
    layer = MultiHeadSelfAttention(
        num_heads=1, key_dim=4, soft_cap=0.5, use_bias=False
    )
    _, scores = layer(x, return_attention_scores=True)
    scores = _numpy(scores)
    # Capped logits lie in [-0.5, 0.5]: weights at most e / (e + n - 1).
    assert scores.max() <= np.e / (np.e + LENGTH - 1) + 1e-6
    assert np.isfinite(scores).all()


@pytest.mark.parametrize(
    "layer_cls, inputs",
    [
        (MultiHeadAttention, {"query": 0, "value": 0}),
        (MultiHeadSelfAttention, {"inputs": 0}),
    ],
)
def test_layer_contract_with_every_option(layer_cls, inputs):
    x = _normal(BATCH, LENGTH, FEATURES)
    run_layer_test(
        layer_cls,
        dict(
            num_heads=4,
            key_dim=4,
            num_key_value_heads=2,
            sliding_window=3,
            soft_cap=5.0,
            rotary=True,
            rotary_max_wavelength=500,
            rotary_scaling_factor=2.0,
        ),
        {name: x for name in inputs} if len(inputs) == 2 else x,
        call_kwargs={"use_causal_mask": True},
        expected_output_shape=(BATCH, LENGTH, FEATURES),
        expected_num_trainable_weights=8 if len(inputs) == 2 else 4,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_key_value_heads=3), "divide"),
        (dict(num_key_value_heads=0), "num_key_value_heads"),
        (dict(sliding_window=0), "sliding_window"),
        (dict(soft_cap=-1.0), "soft_cap"),
        (dict(rotary="yes"), "rotary"),
        (dict(rotary=True, key_dim=3), "even"),
    ],
)
def test_invalid_options(kwargs, message):
    options = dict(num_heads=4, key_dim=4)
    options.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(**options)


def test_cache_must_hold_the_key_value_heads():
    layer = MultiHeadAttention(num_heads=4, key_dim=4, num_key_value_heads=2)
    x = _normal(1, 1, FEATURES)
    layer(x, x)
    with pytest.raises(ValueError, match="num_key_value_heads"):
        layer(
            x, x, cache=keras.ops.zeros((1, 2, 3, 4, 4)), cache_update_index=0
        )
