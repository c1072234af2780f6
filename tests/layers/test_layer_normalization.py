"""Tests of the `LayerNormalization` layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.layers.layer_normalization import LayerNormalization
from tests.testing import run_layer_test


def test_layer_contract():
    run_layer_test(
        LayerNormalization,
        dict(epsilon=1e-5),
        np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32"),
        expected_output_shape=(2, 5, 8),
        expected_num_trainable_weights=2,
    )


@pytest.mark.tf_only
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(epsilon=1e-6),
        dict(axis=1),  # Keras's code path
        dict(center=False),  # Keras's code path
        pytest.param(  # Keras's code path
            dict(rms_scaling=True),
            marks=pytest.mark.filterwarnings("ignore:You passed `rms_scaling"),
        ),
    ],
)
def test_matches_keras_layer_norm_with_the_same_weights(kwargs):
    x = tf.constant(
        np.random.default_rng(1).normal(size=(3, 6, 16)).astype("float32") * 4
    )
    ours = LayerNormalization(**kwargs)
    theirs = keras.layers.LayerNormalization(**kwargs)
    ours.build(x.shape)
    theirs.build(x.shape)
    rng = np.random.default_rng(2)
    for weight in ours.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    theirs.set_weights(ours.get_weights())

    def outputs_and_gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.sin(y))
        return [y] + tape.gradient(loss, [x] + layer.trainable_weights)

    for got, expected in zip(
        outputs_and_gradients(ours), outputs_and_gradients(theirs)
    ):
        np.testing.assert_allclose(
            got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4
        )


def test_mixed_precision_output_dtype():
    layer = LayerNormalization(dtype="mixed_float16")
    y = layer(np.ones((2, 3, 4), "float32") * np.arange(4, dtype="float32"))
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert layer.gamma.dtype == "float32"
    assert np.isfinite(keras.ops.convert_to_numpy(y)).all()


def test_config_is_keras_layer_norm_config():
    ours = LayerNormalization(epsilon=1e-6, name="norm")
    theirs = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")
    assert ours.get_config() == theirs.get_config()
