"""A model trained on one backend reloads on TensorFlow with equal outputs.

On the backend under test, a tiny Transformer and a tiny classifier train
for one step on a `tf.data` pipeline (Keras 3 feeds `tf.data` to every
backend) and are saved to `.keras`; a fresh process on TensorFlow reloads
them (no `safe_mode=False`) and must give the same outputs to 1e-5. Run by
`make test` on JAX and PyTorch, so every backend's files are checked
against TensorFlow, the backend the exports run on. On those backends the
exports must also refuse with a clear error.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_attention as ka

_RELOAD = """
import json, sys
import numpy as np
import keras
import keras_attention  # registers the layers
outputs = []
for path, inputs in json.loads(sys.argv[1]):
    model = keras.saving.load_model(path)
    inputs = {k: np.array(v, "int32") for k, v in inputs.items()}
    features = inputs if len(inputs) > 1 else next(iter(inputs.values()))
    outputs.append(np.asarray(model.predict(features, verbose=0)).tolist())
print(json.dumps(outputs))
"""


def _translation_case():
    model = ka.models.build_transformer(
        20,
        22,
        num_layers=1,
        d_model=16,
        num_heads=2,
        feed_forward_dim=32,
        dropout=0.0,
        max_length=16,
    )
    rng = np.random.default_rng(0)
    source = rng.integers(1, 20, size=(8, 7)).astype("int32")
    target = rng.integers(1, 22, size=(8, 6)).astype("int32")
    source[:, 5:] = 0
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    inputs = dict(zip(names, (source, target)))
    labels = rng.integers(1, 22, size=(8, 6)).astype("int32")
    loss = "sparse_categorical_crossentropy"
    return model, inputs, labels, loss


def _classifier_case():
    model = ka.models.build_transformer_classifier(
        30,
        3,
        num_layers=1,
        num_heads=2,
        embedding_dim=16,
        feed_forward_dim=32,
        dropout=0.0,
    )
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 30, size=(8, 9)).astype("int32")
    ids[:3, 6:] = 0
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    labels = rng.integers(0, 3, size=(8,)).astype("int32")
    return model, {names[0]: ids}, labels, "sparse_categorical_crossentropy"


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="TensorFlow's own reload is tested with each builder",
)
def test_trained_models_reload_on_tensorflow(tmp_path):
    requests, expected = [], []
    for index, case in enumerate((_translation_case, _classifier_case)):
        model, inputs, labels, loss = case()
        # XLA on JAX, as a user's `fit` runs there (the suite's other
        # tests run JAX op by op, tests/conftest.py).
        model.compile(
            optimizer="adam",
            loss=loss,
            jit_compile=keras.backend.backend() == "jax",
        )
        features = inputs if len(inputs) > 1 else next(iter(inputs.values()))
        dataset = tf.data.Dataset.from_tensor_slices((features, labels))
        history = model.fit(dataset.batch(4), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        expected.append(
            keras.ops.convert_to_numpy(model.predict(features, verbose=0))
        )
        path = os.path.join(tmp_path, f"model_{index}.keras")
        model.save(path)
        requests.append((path, {k: v.tolist() for k, v in inputs.items()}))
    # One TensorFlow process reloads both (no `safe_mode=False`).
    result = subprocess.run(
        [sys.executable, "-c", _RELOAD, json.dumps(requests)],
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    for got, want in zip(reloaded, expected):
        np.testing.assert_allclose(np.array(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="exports run on TensorFlow",
)
def test_exports_say_they_need_tensorflow(tmp_path):
    model, *_ = _classifier_case()
    with pytest.raises(ValueError, match="need the TensorFlow backend"):
        ka.serving.export_text_classifier(
            str(tmp_path / "export"), model, None, ["a", "b", "c"]
        )
