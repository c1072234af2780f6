"""Tests of the `Dropout` layer."""

import keras
import numpy as np

from keras_attention.layers.dropout import Dropout
from tests.testing import run_layer_test


def test_layer_contract():
    run_layer_test(
        Dropout,
        dict(rate=0.3, noise_shape=(None, 1, 6), seed=1),
        np.ones((2, 5, 6), "float32"),
        expected_output_shape=(2, 5, 6),
        expected_num_trainable_weights=0,
    )


def test_identity_in_inference_dropout_in_training():
    layer = Dropout(0.5, seed=0)
    x = np.ones((32, 64), "float32")
    np.testing.assert_array_equal(layer(x), x)
    first = keras.ops.convert_to_numpy(layer(x, training=True))
    second = keras.ops.convert_to_numpy(layer(x, training=True))
    assert set(np.unique(first)) == {0.0, 2.0}
    assert abs(np.mean(first == 0) - 0.5) < 0.05
    assert not np.array_equal(first, second)  # a new mask at every call


def test_config_is_keras_dropout_config():
    layer = Dropout(0.2, noise_shape=(None, 1), seed=3, name="drop")
    theirs = keras.layers.Dropout(0.2, noise_shape=(None, 1), seed=3)
    config = layer.get_config()
    assert {k: config[k] for k in ("rate", "noise_shape", "seed")} == {
        "rate": 0.2,
        "noise_shape": (None, 1),
        "seed": 3,
    }
    assert set(config) == set(theirs.get_config())
    assert isinstance(layer, keras.layers.Dropout)
