"""Tests of `SinusoidalPositionalEncoding`."""

import keras
import numpy as np
import pytest

from keras_attention.layers.sinusoidal_positional_encoding import (
    SinusoidalPositionalEncoding,
)
from tests.testing import run_layer_test


def frequencies(depth, max_wavelength):
    """The frequency of features 2i and 2i + 1: max_wavelength^(-2i/d)."""
    return 1.0 / max_wavelength ** (2 * (np.arange(depth) // 2) / depth)


def reference(length, depth, max_wavelength=10000, start_index=0):
    """PE(pos, 2i) = sin(pos * w_i), PE(pos, 2i + 1) = cos(pos * w_i)."""
    positions = np.arange(start_index, start_index + length)[:, None]
    angles = positions * frequencies(depth, max_wavelength)[None, :]
    encoding = np.cos(angles)
    encoding[:, 0::2] = np.sin(angles[:, 0::2])
    return encoding


@pytest.mark.parametrize("depth", [8, 7])
@pytest.mark.parametrize("max_wavelength", [10000, 100])
def test_matches_numpy_reference(depth, max_wavelength):
    inputs = np.zeros((2, 20, depth), "float32")
    encoding = SinusoidalPositionalEncoding(max_wavelength)(inputs)
    assert encoding.shape == (2, 20, depth)
    expected = reference(20, depth, max_wavelength)
    np.testing.assert_allclose(encoding[0], expected, atol=1e-5)
    np.testing.assert_allclose(encoding[1], expected, atol=1e-5)


@pytest.mark.parametrize("depth", [6, 5])
def test_position_zero_alternates_zero_and_one(depth):
    encoding = SinusoidalPositionalEncoding()(np.zeros((1, 3, depth)))
    expected = [0.0, 1.0] * (depth // 2) + [0.0] * (depth % 2)
    np.testing.assert_array_equal(encoding[0, 0], expected)


@pytest.mark.parametrize("shift", [1, 3, 10])
def test_shift_is_a_fixed_block_rotation(shift):
    """PE(pos + k) = R_k PE(pos) for every pos, one rotation per pair."""
    depth, max_wavelength, length = 8, 100, 40
    encoding = keras.ops.convert_to_numpy(
        SinusoidalPositionalEncoding(max_wavelength)(
            np.zeros((1, length, depth))
        )
    )[0]
    rotation = np.zeros((depth, depth))
    for i, w in enumerate(frequencies(depth, max_wavelength)[::2]):
        c, s = np.cos(w * shift), np.sin(w * shift)
        # sin(a + b) = sin a cos b + cos a sin b
        # cos(a + b) = cos a cos b - sin a sin b
        rotation[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, s], [-s, c]]
    shifted = encoding[:-shift] @ rotation.T  # (length - shift, depth)
    np.testing.assert_allclose(shifted, encoding[shift:], atol=1e-5)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_start_index_equals_slicing(as_tensor):
    layer = SinusoidalPositionalEncoding()
    full = layer(np.zeros((2, 12, 6)))
    start = keras.ops.convert_to_tensor(5) if as_tensor else 5
    part = layer(np.zeros((2, 4, 6)), start_index=start)
    np.testing.assert_allclose(part, full[:, 5:9], atol=1e-6)
    # One token at a time, as in cached decoding.
    for t in range(12):
        step = layer(np.zeros((2, 1, 6)), start_index=t)
        np.testing.assert_allclose(step, full[:, t : t + 1], atol=1e-6)


def test_any_sequence_length_in_a_model():
    inputs = keras.Input((None, 6))
    model = keras.Model(inputs, SinusoidalPositionalEncoding()(inputs))
    for length in (1, 3, 50):
        encoding = model.predict(np.zeros((2, length, 6)), verbose=0)
        np.testing.assert_allclose(encoding[1], reference(length, 6), atol=1e-5)


@pytest.mark.parametrize("shape", [(9, 4), (2, 3, 9, 4)])
def test_other_ranks(shape):
    encoding = SinusoidalPositionalEncoding()(np.zeros(shape, "float32"))
    assert encoding.shape == shape
    expected = np.broadcast_to(reference(9, 4), shape)
    np.testing.assert_allclose(encoding, expected, atol=1e-5)


def test_mixed_precision_keeps_far_positions_exact():
    """Angles are computed in float32: float16 positions past 2048 are not."""
    layer = SinusoidalPositionalEncoding(dtype="mixed_float16")
    encoding = layer(np.zeros((1, 4, 8), "float32"), start_index=3001)
    assert keras.backend.standardize_dtype(encoding.dtype) == "float16"
    expected = reference(4, 8, start_index=3001)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoding)[0].astype("float32"),
        expected,
        atol=2e-3,
    )


def test_passes_the_mask_on():
    tokens = keras.Input((None,), dtype="int32")
    embeddings = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    encoding = SinusoidalPositionalEncoding()(embeddings)
    assert encoding._keras_mask is not None


def test_errors():
    with pytest.raises(ValueError, match="`max_wavelength` must be.*Received"):
        SinusoidalPositionalEncoding(max_wavelength=0)
    with pytest.raises(ValueError, match="rank >= 2.*Received"):
        SinusoidalPositionalEncoding()(np.zeros((5,), "float32"))


@pytest.mark.parametrize(
    "init_kwargs, shape",
    [(dict(), (2, 5, 8)), (dict(max_wavelength=100), (2, 5, 7))],
)
def test_layer(init_kwargs, shape):
    run_layer_test(
        SinusoidalPositionalEncoding,
        init_kwargs=init_kwargs,
        input_data=np.random.default_rng(0)
        .normal(size=shape)
        .astype("float32"),
        expected_output_shape=shape,
        expected_num_trainable_weights=0,
    )
