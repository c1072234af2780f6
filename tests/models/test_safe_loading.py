"""`.keras` files load in Keras's safe mode: ours do, a crafted one does not.

`keras.saving.load_model` refuses to deserialize Python code (`Lambda`
layers' bytecode) unless `safe_mode=False`; nothing in keras_attention
needs that, so every model of the package loads with `safe_mode=True`.
"""

import os

import keras
import numpy as np
import pytest

from keras_attention import models

TINY = dict(num_layers=1, num_heads=2)


def _builders():
    return {
        "seq2seq": lambda: models.build_attention_seq2seq(12, 10, units=8),
        "transformer": lambda: models.build_transformer(
            12, 10, d_model=8, feed_forward_dim=16, **TINY
        ),
        "classifier": lambda: models.build_transformer_classifier(
            12, 3, embedding_dim=8, feed_forward_dim=16, **TINY
        ),
        "causal_lm": lambda: models.build_causal_lm(
            12, d_model=8, feed_forward_dim=16, **TINY
        ),
    }


@pytest.mark.parametrize("name", list(_builders()))
def test_our_models_load_in_safe_mode(name, tmp_path):
    model = _builders()[name]()
    path = os.path.join(tmp_path, f"{name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    for mine, theirs in zip(model.weights, reloaded.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs)
        )


def test_a_crafted_lambda_model_is_refused(tmp_path):
    inputs = keras.Input((3,))
    # Code that would run at load time if the file were trusted.
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = os.path.join(tmp_path, "crafted.keras")
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        keras.saving.load_model(path, safe_mode=True)
