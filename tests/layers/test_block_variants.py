"""The Transformer blocks with RMSNorm, gated feed-forward networks,
grouped-query, rotary and sliding-window self-attention.

One body per test serves TensorFlow, JAX and PyTorch.
"""

import keras
import numpy as np
import pytest

from keras_attention.layers import RMSNormalization
from keras_attention.layers import TransformerBlock
from keras_attention.layers import TransformerDecoderBlock
from tests.testing import run_layer_test

BATCH, LENGTH, D_MODEL, HEADS, FF = 2, 5, 8, 4, 12
MODERN = dict(
    normalization="rms",
    activation="swiglu",
    num_key_value_heads=2,
    rotary=True,
    sliding_window=3,
    norm_first=True,
)


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _silu(x):
    return x / (1.0 + np.exp(-x))


def _gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


@pytest.mark.parametrize(
    "activation, gate", [("swiglu", _silu), ("geglu", _gelu)]
)
def test_gated_feed_forward_matches_numpy(activation, gate):
    x = _normal(BATCH, LENGTH, D_MODEL)
    block = TransformerBlock(HEADS, FF, activation=activation)
    block(x)
    w_gate, b_gate = (_numpy(w) for w in block._feed_forward_gate.weights)
    w_in, b_in = (_numpy(w) for w in block._feed_forward_intermediate.weights)
    w_out, b_out = (_numpy(w) for w in block._feed_forward_output.weights)
    expected = (gate(x @ w_gate + b_gate) * (x @ w_in + b_in)) @ w_out + b_out
    (got,) = block._feed_forward(keras.ops.convert_to_tensor(x))
    np.testing.assert_allclose(_numpy(got), expected, atol=1e-5)


def test_rms_blocks_normalize_with_rms_normalization():
    block = TransformerDecoderBlock(HEADS, FF, normalization="rms")
    block(_normal(BATCH, LENGTH, D_MODEL))
    norms = [
        layer
        for layer in block._flatten_layers()
        if "norm" in layer.name and layer is not block
    ]
    assert len(norms) == 2
    assert all(isinstance(norm, RMSNormalization) for norm in norms)


def test_grouped_rotary_windowed_block_options_reach_self_attention():
    block = TransformerDecoderBlock(HEADS, FF, **MODERN)
    block(_normal(BATCH, LENGTH, D_MODEL), _normal(BATCH, 3, D_MODEL))
    self_attention = block._self_attention
    assert self_attention.num_key_value_heads == 2
    assert self_attention.rotary and self_attention.sliding_window == 3
    # Cross-attention has no positions to rotate or window.
    cross_attention = block._cross_attention
    assert cross_attention.num_key_value_heads == 2
    assert not cross_attention.rotary
    assert cross_attention.sliding_window is None


def test_sliding_window_block_ignores_keys_outside_the_window():
    x = _normal(1, LENGTH, D_MODEL)
    block = TransformerBlock(HEADS, FF, **MODERN)
    reference = _numpy(block(x, use_causal_mask=True))
    changed = x.copy()
    changed[:, 0] += 10.0  # outside the window of positions 3 and 4
    got = _numpy(block(changed, use_causal_mask=True))
    np.testing.assert_allclose(got[:, 3:], reference[:, 3:], atol=1e-5)
    assert not np.allclose(got[:, :3], reference[:, :3], atol=1e-3)


def test_modern_decoder_cached_decoding_matches_the_full_call():
    x = _normal(BATCH, LENGTH, D_MODEL)
    block = TransformerDecoderBlock(HEADS, FF, **MODERN)
    full = _numpy(block(x))
    cache = block.empty_self_attention_cache(BATCH, LENGTH)
    assert tuple(cache.shape) == (BATCH, 2, LENGTH, 2, D_MODEL // HEADS)
    outputs = []
    for start, stop in [(0, 2)] + [(t, t + 1) for t in range(2, LENGTH)]:
        out, cache = block(
            x[:, start:stop],
            self_attention_cache=cache,
            self_attention_cache_update_index=start,
        )
        outputs.append(_numpy(out))
    np.testing.assert_allclose(np.concatenate(outputs, 1), full, atol=1e-5)


@pytest.mark.parametrize(
    "block_cls", [TransformerBlock, TransformerDecoderBlock]
)
def test_layer_contract_with_modern_options(block_cls):
    name = "inputs" if block_cls is TransformerBlock else "decoder_sequence"
    run_layer_test(
        block_cls,
        dict(num_heads=HEADS, feed_forward_dim=FF, soft_cap=20.0, **MODERN),
        {name: _normal(BATCH, LENGTH, D_MODEL)},
        expected_output_shape=(BATCH, LENGTH, D_MODEL),
        # Self-attention 8 (4 with the fused projection of the encoder
        # block), feed-forward 6 (gate, in, out), 2 RMS scales.
        expected_num_trainable_weights=12 if name == "inputs" else 16,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(normalization="batch"), "normalization"),
        (dict(num_key_value_heads=3), "divide"),
        (dict(sliding_window=0), "sliding_window"),
        (dict(soft_cap=0.0), "soft_cap"),
        (dict(activation="swishglu"), "swishglu"),
    ],
)
def test_invalid_block_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerDecoderBlock(HEADS, FF, **kwargs)
