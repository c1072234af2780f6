"""Tests of TensorFlow's dropout kernel: 16 random bits per element.

The contract every backend shares is tested in `test_backend_ops.py`.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.ops.dropout import dropout
from keras_attention.ops.dropout.tensorflow_kernels import RATE_RESOLUTION
from keras_attention.ops.dropout.tensorflow_kernels import dropout_multiplier
from keras_attention.ops.dropout.tensorflow_kernels import seed_tensor

pytestmark = pytest.mark.tf_only

SIZE = 200_000
# Five standard deviations of a dropped fraction over SIZE draws.
TOLERANCE = 5 * np.sqrt(0.25 / SIZE)


def rounded_keep(rate):
    threshold = round(rate * RATE_RESOLUTION)
    return (RATE_RESOLUTION - threshold) / RATE_RESOLUTION


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(SIZE,), (99, 41, 49)])  # even and odd
def test_drops_the_rate_and_keeps_the_expectation(rate, shape):
    x = np.ones(shape, dtype="float32")
    y = dropout(x, rate, seed=3).numpy()
    scale = 1.0 / rounded_keep(rate)
    assert y.shape == shape
    # Every element is either dropped or scaled by 1 / keep exactly.
    np.testing.assert_array_equal(np.unique(y), [0.0, np.float32(scale)])
    dropped = np.mean(y == 0)
    assert abs(dropped - rate) < TOLERANCE
    assert abs(y.mean() - 1.0) < TOLERANCE * scale


def test_neighbours_are_independent():
    # The two halves of one random word decide neighbouring elements.
    kept = dropout(np.ones(SIZE, "float32"), 0.5, seed=5).numpy() > 0
    both = np.mean(kept[0::2] & kept[1::2])
    assert abs(both - 0.25) < 2 * TOLERANCE
    agree = np.mean(kept[:-1] == kept[1:])
    assert abs(agree - 0.5) < TOLERANCE


def test_seeds():
    x = np.ones((64, 64), "float32")
    same = [dropout(x, 0.5, seed=7).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(same[0], dropout(x, 0.5, seed=8).numpy())
    # A generator gives a new mask at every call, reproducibly.
    masks = []
    for _ in range(2):
        generator = keras.random.SeedGenerator(11)
        masks.append([dropout(x, 0.5, seed=generator).numpy() for _ in "ab"])
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0][0], masks[0][1])
    # Any int: numpy ints, negative and over 32 bits.
    for seed in (np.int64(7), -5, 2**40 + 3):
        np.testing.assert_array_equal(
            dropout(x, 0.5, seed=seed).numpy(),
            dropout(x, 0.5, seed=seed).numpy(),
        )
    assert not np.array_equal(
        dropout(x, 0.5, seed=3).numpy(), dropout(x, 0.5, seed=2**40 + 3).numpy()
    )
    # No seed: fresh masks.
    assert not np.array_equal(dropout(x, 0.5).numpy(), dropout(x, 0.5).numpy())


def test_noise_shape_broadcasts_one_mask():
    x = np.ones((4, 10, 32), "float32")
    y = dropout(x, 0.5, noise_shape=(None, 1, 32), seed=2).numpy()
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))
    assert 0 < np.mean(y == 0) < 1


def test_gradient_is_the_mask():
    x = tf.constant(np.random.default_rng(0).normal(size=(8, 33)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = dropout(x, 0.25, seed=4)
    gradient = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(gradient * x.numpy(), y.numpy(), rtol=1e-6)
    assert set(np.unique(gradient)) == {0.0, np.float32(1 / rounded_keep(0.25))}


@pytest.mark.parametrize("jit_compile", [False, True])
def test_dynamic_shapes_and_xla(jit_compile):
    generator = keras.random.SeedGenerator(1)

    @tf.function(
        jit_compile=jit_compile,
        input_signature=[tf.TensorSpec((None, None), tf.float32)],
    )
    def drop(x):
        return dropout(x, 0.4, seed=generator)

    for shape in [(3, 7), (128, 257)]:
        y = drop(tf.ones(shape)).numpy()
        assert y.shape == shape
        assert set(np.unique(y)) <= {0.0, np.float32(1 / rounded_keep(0.4))}
    assert abs(np.mean(y == 0) - 0.4) < 0.02


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_keeps_dtype(dtype):
    y = dropout(tf.ones((16, 16), dtype), 0.5, seed=1)
    assert y.dtype == dtype
    assert set(np.unique(y.numpy().astype("float32"))) == {0.0, 2.0}


def test_edge_rates():
    x = np.arange(1, 11, dtype="float32")
    np.testing.assert_array_equal(dropout(x, 0.0, seed=1).numpy(), x)
    # Below half a step of 1/65536 nothing is dropped.
    np.testing.assert_array_equal(dropout(x, 1e-6, seed=1).numpy(), x)
    np.testing.assert_array_equal(dropout(x, 1.0, seed=1).numpy(), 0 * x)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dropout(np.ones(3), 1.5), "rate"),
        (lambda: dropout(np.ones(3), -0.1), "rate"),
        (lambda: dropout(np.ones((2, 3)), 0.5, noise_shape=(2,)), "noise_"),
        (lambda: dropout(np.ones(3), 0.5, seed=1.5), "seed"),
        (lambda: dropout_multiplier((3,), 1.0, seed_tensor(1)), "below 1"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=f"(?s){match}.*Received"):
        call()


def test_empty_and_unknown_rank_inputs():
    assert dropout(np.ones((0, 5), "float32"), 0.5, seed=1).shape == (0, 5)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def drop(x):
        return dropout(x, 0.3, seed=2)

    y = drop(tf.ones((3, 5, 7))).numpy()
    assert y.shape == (3, 5, 7)
    assert set(np.unique(y)) == {0.0, np.float32(1 / rounded_keep(0.3))}
