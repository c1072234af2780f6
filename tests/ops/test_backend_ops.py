"""The ops' contracts on whichever backend runs the suite.

`make test` runs this file on TensorFlow, JAX and PyTorch. It checks what
must hold on every backend (the dispatch rules, dropout's contract, layer
normalization against NumPy and its gradient finite) and that the same
inputs give the same attention on every backend: the expected values are
NumPy's, so agreeing with them on each backend is agreeing across them.
"""

import keras
import numpy as np
import pytest

from keras_attention.ops import dropout
from keras_attention.ops import layer_normalization
from keras_attention.ops import scaled_dot_product_attention
from keras_attention.ops.attention import reference_attention
from keras_attention.ops.attention.dispatch import Strategy
from keras_attention.ops.attention.dispatch import choose_strategy
from tests.ops.test_attention import numpy_attention
from tests.ops.test_attention import random_inputs
from tests.ops.test_attention import random_mask
from tests.testing import value_and_gradients

SHORT = (2, 64, 4, 16)
LONG = (1, 32768, 8, 64)  # float32 scores of 32 GiB: "auto" chunks them


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize(
    "backend, kwargs, expected",
    [
        ("tensorflow", dict(), Strategy("dense", None, True)),
        ("tensorflow", dict(shapes=LONG), Strategy("tiled", None, False)),
        (
            "tensorflow",
            dict(chunk_size=8, training=False),
            Strategy("tiled", 8, False),
        ),
        (
            "tensorflow",
            dict(dense_tile_min_bytes=64 * 64 * 4),
            Strategy("tiled", None, True),
        ),
        (
            "tensorflow",
            dict(dense_tile_min_bytes=None, shapes=(1, 2048, 1, 8)),
            Strategy("dense", None, True),
        ),
        ("jax", dict(), Strategy("dense", None, True)),
        ("jax", dict(shapes=LONG), Strategy("blockwise", None, False)),
        (
            "jax",
            dict(shapes=LONG, return_weights=True),
            Strategy("dense", None, True),
        ),
        ("torch", dict(shapes=LONG), Strategy("fused", None, False)),
        ("torch", dict(), Strategy("fused", None, False)),
        (
            "torch",
            dict(implementation="dense", return_weights=True),
            Strategy("dense", None, True),
        ),
        (
            "torch",
            dict(implementation="dense", dropout=True),
            Strategy("dense", None, True),
        ),
        (
            "torch",
            dict(implementation="chunked", dropout=True, chunk_size=4),
            Strategy("blockwise", 4, False),
        ),
        (
            "numpy",
            dict(implementation="chunked"),
            Strategy("dense", None, True),
        ),
    ],
)
def test_dispatch_rules(backend, kwargs, expected):
    shapes = kwargs.pop("shapes", SHORT)
    implementation = kwargs.pop("implementation", "auto")
    got = choose_strategy(backend, implementation, shapes, shapes, **kwargs)
    assert got == expected


def test_reference_matches_numpy_with_masks_and_causal():
    q, k, v = random_inputs(q_len=6, k_len=9)
    mask = random_mask(2, 6, 9)
    expected, expected_weights = numpy_attention(q, k, v, mask, causal=True)
    out, weights = reference_attention(q, k, v, mask=mask, causal=True)
    np.testing.assert_allclose(to_numpy(out), expected, atol=1e-5)
    np.testing.assert_allclose(to_numpy(weights), expected_weights, atol=1e-6)


@pytest.mark.parametrize("implementation", ["dense", "chunked"])
def test_dropout_in_attention_keeps_the_expectation(implementation):
    # Many draws of a dropped-out output average to the plain output.
    q, k, v = random_inputs(1, 4, 6, heads=1, depth=4, v_depth=4)
    plain = to_numpy(scaled_dot_product_attention(q, k, v))
    generator = keras.random.SeedGenerator(0)
    draws = [
        to_numpy(
            scaled_dot_product_attention(
                q,
                k,
                v,
                dropout_rate=0.3,
                training=True,
                seed=generator,
                implementation=implementation,
                chunk_size=2,
            )
        )
        for _ in range(150)
    ]
    assert not np.allclose(draws[0], draws[1])
    np.testing.assert_allclose(np.mean(draws, axis=0), plain, atol=0.1)


def test_dropout_contract():
    x = np.ones((400, 500), "float32")
    y = to_numpy(dropout(x, 0.25, seed=3))
    assert abs(np.mean(y == 0) - 0.25) < 0.01
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.75], rtol=1e-4)
    np.testing.assert_array_equal(y, to_numpy(dropout(x, 0.25, seed=3)))
    assert not np.array_equal(y, to_numpy(dropout(x, 0.25, seed=4)))
    np.testing.assert_array_equal(to_numpy(dropout(x, 0.0)), x)
    assert not to_numpy(dropout(x, 1.0)).any()
    shared = to_numpy(
        dropout(np.ones((4, 10, 8), "float32"), 0.5, (None, 1, 8))
    )
    np.testing.assert_array_equal(
        shared, np.broadcast_to(shared[:, :1], shared.shape)
    )
    with pytest.raises(ValueError, match="rate"):
        dropout(x, 1.5)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_layer_normalization_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 5, 8)) * 3 + 1).astype("float32")
    gamma = rng.normal(size=8).astype("float32")
    beta = rng.normal(size=8).astype("float32")
    mean = x.mean(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    expected = expected * gamma + beta
    y = layer_normalization(keras.ops.cast(x, dtype), gamma, beta, 1e-5)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    tolerance = 1e-5 if dtype == "float32" else 0.1
    np.testing.assert_allclose(
        to_numpy(keras.ops.cast(y, "float32")), expected, atol=tolerance
    )

    def normalize(x, gamma, beta):
        y = layer_normalization(x, gamma, beta, 1e-5)
        return y, keras.ops.sum(keras.ops.sin(y))

    _, dx, d_gamma, d_beta = value_and_gradients(normalize, x, gamma, beta)
    # d/d_beta of sum(sin(y)) is sum(cos(y)) over the batch axes.
    np.testing.assert_allclose(
        d_beta, np.cos(expected).sum((0, 1)), rtol=1e-4, atol=1e-4
    )
    assert np.isfinite(dx).all() and np.isfinite(d_gamma).all()
    # Normalization is invariant to a shift of x: dx sums to 0 per row.
    np.testing.assert_allclose(dx.sum(-1), 0.0, atol=1e-4)
