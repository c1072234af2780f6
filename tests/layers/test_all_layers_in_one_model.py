"""Every layer in one Functional model: `.keras` round trip and SavedModel."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_attention
from keras_attention import layers

VOCAB = 20
WIDTH = 16


def build_model_with_every_layer():
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    target = keras.Input(shape=(None,), dtype="int32", name="target")
    source_emb = keras.layers.Embedding(VOCAB, WIDTH, mask_zero=True)(source)
    target_emb = keras.layers.Embedding(VOCAB, WIDTH, mask_zero=True)(target)
    source_x = keras.layers.Add()(
        [source_emb, layers.SinusoidalPositionalEncoding()(source_emb)]
    )
    source_x = layers.RotaryEmbedding()(source_x)
    target_x = keras.layers.Add()(
        [target_emb, layers.PositionEmbedding(sequence_length=32)(target_emb)]
    )
    encoded = layers.TransformerBlock(num_heads=2, feed_forward_dim=32)(
        source_x
    )
    encoded = layers.MultiHeadSelfAttention(num_heads=2, key_dim=8)(encoded)
    decoded = layers.TransformerDecoderBlock(num_heads=2, feed_forward_dim=32)(
        target_x, encoded
    )
    cross = layers.MultiHeadAttention(num_heads=2, key_dim=8)(decoded, encoded)
    additive = layers.AdditiveAttention(units=8)(cross, encoded)
    dot = layers.DotProductAttention(score_mode="general")(cross, encoded)
    merged = keras.layers.Concatenate()([cross, additive, dot])
    merged = layers.RMSNormalization()(merged)
    logits = keras.layers.Dense(VOCAB, name="logits")(merged)
    return keras.Model({"source": source, "target": target}, logits)


def example_batch():
    rng = np.random.default_rng(0)
    source = rng.integers(1, VOCAB, size=(3, 7)).astype("int32")
    target = rng.integers(1, VOCAB, size=(3, 5)).astype("int32")
    source[0, 5:] = 0  # padding
    target[1, 3:] = 0
    return {"source": source, "target": target}


def test_public_api_lists_every_layer():
    expected = {
        "AdditiveAttention",
        "DotProductAttention",
        "MultiHeadAttention",
        "MultiHeadSelfAttention",
        "SinusoidalPositionalEncoding",
        "PositionEmbedding",
        "RMSNormalization",
        "RotaryEmbedding",
        "TransformerBlock",
        "TransformerDecoderBlock",
    }
    assert expected <= set(layers.__all__)
    for name in expected:
        assert getattr(keras_attention, name) is getattr(layers, name)


def test_keras_file_round_trip(tmp_path):
    model = build_model_with_every_layer()
    batch = example_batch()
    expected = model.predict(batch, verbose=0)
    assert np.isfinite(expected).all()
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(batch, verbose=0), expected, atol=1e-5
    )


# TensorFlow's `fit` in the other tests already traces every layer (in a
# `tf.function`); PyTorch runs eagerly by default.
@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the suite's other tests run JAX's fit op by op",
)
def test_every_layer_trains_and_predicts_under_xla_on_jax():
    model = build_model_with_every_layer()
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    batch = example_batch()
    eager = keras.ops.convert_to_numpy(model(batch))
    target = np.random.default_rng(1).normal(size=eager.shape)
    compiled = model.predict(batch, verbose=0)
    np.testing.assert_allclose(compiled, eager, atol=1e-5)
    history = model.fit(batch, target, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[1] < losses[0]


@pytest.mark.tf_only
@pytest.mark.large
def test_saved_model_export_reloads_without_the_package(tmp_path):
    model = build_model_with_every_layer()
    batch = example_batch()
    expected = model.predict(batch, verbose=0)
    export_dir = str(tmp_path / "exported")
    model.export(export_dir, verbose=False)
    np.savez(tmp_path / "batch.npz", **batch)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({export_dir!r})
        batch = dict(np.load({str(tmp_path / "batch.npz")!r}))
        out = loaded.serve(batch).numpy()
        np.save({str(tmp_path / "out.npy")!r}, out)
        assert "keras_attention" not in sys.modules
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), expected, atol=1e-5
    )
