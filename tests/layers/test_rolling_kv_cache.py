"""The rolling key/value cache: a sliding window's cache holds the window.

One body per test serves TensorFlow, JAX and PyTorch. The reference is
the same layer called on the whole sequence (uncached, causal), and the
full-length cache fed the same chunks: the rolling cache must give the
same outputs at every step, and hold in slot `p % cache_len` the entry
that the full cache holds at position `p`.
"""

import keras
import numpy as np
import pytest

from keras_attention.layers import MultiHeadAttention
from keras_attention.layers import TransformerDecoderBlock
from keras_attention.layers.multi_head_attention import rolling_cache_positions
from tests.testing import decode_self_attention

BATCH, LENGTH, FEATURES, HEADS, KEY_DIM = 2, 11, 8, 4, 4
# Chunks fed one call each: a prompt longer than any window, single
# tokens (the cache wraps around), then a chunk that wraps in one call.
CHUNKS = [(0, 5), (5, 6), (6, 7), (7, 8), (8, 11)]


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize(
    "options, extra_slots",
    [
        (dict(num_key_value_heads=2, sliding_window=3), 0),  # GQA
        (dict(num_key_value_heads=1, sliding_window=4, rotary=True), 0),
        (dict(sliding_window=2, rotary=True, soft_cap=2.0), 3),
    ],
)
def test_rolling_cache_equals_full_cache_and_uncached_call(
    options, extra_slots
):
    x = _normal(BATCH, LENGTH, FEATURES)
    layer = MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM, **options)
    uncached = _numpy(layer(x, x, use_causal_mask=True))
    kv_heads = options.get("num_key_value_heads", HEADS)
    slots = options["sliding_window"] + extra_slots
    full, full_cache = decode_self_attention(
        layer, x, keras.ops.zeros((BATCH, 2, LENGTH, kv_heads, KEY_DIM)), CHUNKS
    )
    rolling, rolling_cache = decode_self_attention(
        layer,
        x,
        keras.ops.zeros((BATCH, 2, slots, kv_heads, KEY_DIM)),
        CHUNKS,
        rolling_cache=True,
    )
    np.testing.assert_allclose(full, uncached, atol=1e-5)
    np.testing.assert_allclose(rolling, uncached, atol=1e-5)
    # The cache stays window-sized and holds the last `slots` positions,
    # keys rotated at their absolute positions.
    assert rolling_cache.shape == (BATCH, 2, slots, kv_heads, KEY_DIM)
    last = np.arange(LENGTH - slots, LENGTH)
    np.testing.assert_allclose(
        rolling_cache[:, :, last % slots], full_cache[:, :, last], atol=1e-6
    )


@pytest.mark.parametrize("first_index", [6])
def test_any_cache_update_index_and_step_sizes(first_index):
    # Positions first_index.. of a longer sequence: a prompt chunk at the
    # first index, then steps of 1, 2 and 1 tokens.
    window, slots = 3, 4
    total = first_index + 7
    x = _normal(1, total, FEATURES, seed=1)
    layer = MultiHeadAttention(
        num_heads=2, key_dim=KEY_DIM, sliding_window=window, rotary=True
    )
    uncached = _numpy(layer(x, x, use_causal_mask=True))[:, first_index:]
    # The cache of the positions before `first_index`, as a full pass
    # leaves them, then the rolling calls from there.
    cache = keras.ops.zeros((1, 2, slots, 2, KEY_DIM))
    chunks = [(0, first_index)] if first_index else []
    start = first_index
    for size in (3, 1, 2, 1):
        chunks.append((start, start + size))
        start += size
    outputs, _ = decode_self_attention(
        layer, x, cache, chunks, rolling_cache=True
    )
    np.testing.assert_allclose(outputs[:, first_index:], uncached, atol=1e-5)


def test_padded_queries_and_scores_over_slots_then_new_tokens():
    x = _normal(BATCH, 6, FEATURES, seed=2)
    layer = MultiHeadAttention(num_heads=2, key_dim=KEY_DIM, sliding_window=2)
    query_mask = np.array([[True] * 6, [True] * 4 + [False] * 2])
    uncached = _numpy(layer(x, x, query_mask=query_mask, use_causal_mask=True))
    cache = keras.ops.zeros((BATCH, 2, 2, 2, KEY_DIM))
    out, scores, cache = layer(
        x,
        x,
        query_mask=query_mask,
        cache=cache,
        cache_update_index=0,
        use_causal_mask=True,
        return_attention_scores=True,
        rolling_cache=True,
    )
    np.testing.assert_allclose(_numpy(out), uncached, atol=1e-5)
    scores = _numpy(scores)
    # The 2 (empty) slots, then the 6 new tokens; each query weighs the
    # window of itself and the token before it, padded queries nothing.
    assert scores.shape == (BATCH, 2, 6, 2 + 6)
    np.testing.assert_allclose(scores[..., :2], 0.0)
    np.testing.assert_allclose(scores[1, :, 4:], 0.0)
    allowed = np.tril(np.ones((6, 6))) * np.triu(np.ones((6, 6)), -1)
    np.testing.assert_allclose(scores[0, :, :, 2:] * (1 - allowed), 0.0)
    np.testing.assert_allclose(scores[0].sum(-1), 1.0, atol=1e-5)


def test_rolling_cache_positions_match_the_slot_rule():
    for last, slots in [(-1, 3), (0, 3), (2, 3), (7, 3), (12, 5)]:
        held = _numpy(rolling_cache_positions(last, slots))
        expected = [
            max((p for p in range(-slots, last + 1) if p % slots == s))
            for s in range(slots)
        ]
        np.testing.assert_array_equal(held, expected)


def test_decoder_block_rolling_cache_equals_full_cache():
    x = _normal(BATCH, LENGTH, 16, seed=3)
    block = TransformerDecoderBlock(
        num_heads=4,
        feed_forward_dim=32,
        num_key_value_heads=2,
        sliding_window=3,
        rotary=True,
        norm_first=True,
    )
    uncached = _numpy(block(x))
    rolling = block.empty_self_attention_cache(BATCH, LENGTH, rolling=True)
    assert tuple(rolling.shape) == (BATCH, 2, 3, 2, 4)
    outputs = []
    for start, stop in CHUNKS:
        out, rolling = block(
            x[:, start:stop],
            self_attention_cache=rolling,
            self_attention_cache_update_index=start,
            rolling_cache=True,
        )
        outputs.append(_numpy(out))
    np.testing.assert_allclose(
        np.concatenate(outputs, axis=1), uncached, atol=1e-5
    )
    assert tuple(rolling.shape) == (BATCH, 2, 3, 2, 4)


def _built_layer(**options):
    layer = MultiHeadAttention(num_heads=2, key_dim=KEY_DIM, **options)
    x = _normal(1, 1, FEATURES)
    layer(x, x)
    return layer, x


@pytest.mark.parametrize(
    "options, call_kwargs, message",
    [
        (dict(sliding_window=3), dict(cache_length=2), "at least"),
        (dict(), dict(), "sliding_window"),
        (dict(sliding_window=3), dict(use_causal_mask=False), "causal"),
        (dict(sliding_window=3), dict(cache_update_index=None), "index"),
        (dict(sliding_window=3), dict(cache_update_index=-1), "negative"),
        (
            dict(sliding_window=3),
            dict(attention_mask=np.ones((1, 1, 4), bool)),
            "attention_mask",
        ),
    ],
)
def test_bad_rolling_cache_arguments_raise(options, call_kwargs, message):
    layer, x = _built_layer(**options)
    kwargs = dict(cache_update_index=0, use_causal_mask=True)
    kwargs.update(call_kwargs)
    length = kwargs.pop("cache_length", 3)
    cache = keras.ops.zeros((1, 2, length, 2, KEY_DIM))
    with pytest.raises(ValueError, match=message) as error:
        layer(x, x, cache=cache, rolling_cache=True, **kwargs)
    assert "Received:" in str(error.value)


def test_bad_block_rolling_arguments_raise():
    plain = TransformerDecoderBlock(num_heads=2, feed_forward_dim=8)
    windowed = TransformerDecoderBlock(
        num_heads=2, feed_forward_dim=8, sliding_window=2
    )
    x = _normal(1, 3, 8)
    plain(x)
    windowed(x)
    with pytest.raises(ValueError, match="sliding_window=None"):
        plain.empty_self_attention_cache(1, 4, rolling=True)
    with pytest.raises(ValueError, match="self_attention_cache=None"):
        windowed(x, rolling_cache=True)
