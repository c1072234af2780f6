"""Tests of `ops.layer_normalization` on TensorFlow: its hand-written gradient.

The formula on every backend is tested in `test_backend_ops.py`.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.ops.layer_norm import layer_normalization

pytestmark = pytest.mark.tf_only


def numpy_layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def random_case(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 3 + 1).astype("float32")
    gamma = rng.normal(size=shape[-1:]).astype("float32")
    beta = rng.normal(size=shape[-1:]).astype("float32")
    return x, gamma, beta


@pytest.mark.parametrize("shape", [(7, 16), (2, 5, 8), (2, 3, 4, 6)])
def test_matches_numpy(shape):
    x, gamma, beta = random_case(shape)
    got = layer_normalization(x, gamma, beta, epsilon=1e-5).numpy()
    expected = numpy_layer_norm(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def autodiff_layer_norm(x, gamma, beta, epsilon):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta


@pytest.mark.parametrize("shape", [(7, 16), (2, 5, 8), (2, 3, 4, 6)])
def test_gradient_matches_autodiff(shape):
    x, gamma, beta = (tf.constant(v) for v in random_case(shape))
    upstream = tf.constant(random_case(shape, seed=1)[0])

    def gradients(fn):
        with tf.GradientTape() as tape:
            tape.watch([x, gamma, beta])
            loss = tf.reduce_sum(fn(x, gamma, beta, 1e-3) * upstream)
        return tape.gradient(loss, [x, gamma, beta])

    ours = gradients(layer_normalization)
    reference = gradients(autodiff_layer_norm)
    for got, expected in zip(ours, reference):
        np.testing.assert_allclose(
            got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4
        )


def test_xla_with_dynamic_shapes():
    x, gamma, beta = random_case((3, 9, 8))
    upstream = random_case((3, 9, 8), seed=2)[0]

    def outputs_and_gradient(fn, jit_compile):
        @tf.function(
            jit_compile=jit_compile,
            input_signature=[tf.TensorSpec((None, None, 8), tf.float32)],
        )
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x, gamma, beta, 1e-3)
                loss = tf.reduce_sum(y * upstream)
            return y, tape.gradient(loss, x)

        return run(x)

    y, dx = outputs_and_gradient(layer_normalization, jit_compile=True)
    y_ref, dx_ref = outputs_and_gradient(autodiff_layer_norm, False)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(dx.numpy(), dx_ref.numpy(), atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_is_normalized_in_float32(dtype):
    x, gamma, beta = random_case((4, 32))
    x = x * 1000  # squares overflow float16
    got = layer_normalization(tf.constant(x, dtype), gamma, beta)
    assert got.dtype == dtype
    expected = numpy_layer_norm(
        tf.cast(tf.constant(x, dtype), "float32").numpy(), gamma, beta, 1e-3
    )
    np.testing.assert_allclose(
        got.numpy().astype("float32"), expected, rtol=2e-2, atol=2e-2
    )


def test_constant_rows_stay_finite():
    x = np.full((2, 8), 5.0, "float32")
    gamma, beta = np.ones(8, "float32"), np.full(8, 0.5, "float32")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer_normalization(xt, gamma, beta)
    np.testing.assert_allclose(y.numpy(), 0.5)
    assert np.isfinite(tape.gradient(y, xt).numpy()).all()
