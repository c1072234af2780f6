import math
import os
import tempfile

import keras
import numpy as np
import pytest

from keras_attention.layers.token_embedding import TokenEmbedding
from keras_attention.models.transformer import TransformerParts
from keras_attention.models.transformer import build_transformer
from tests.testing import run_layer_test

SOURCE_VOCABULARY = 17
TARGET_VOCABULARY = 19
START = 1
TINY = dict(num_layers=2, d_model=16, num_heads=2, feed_forward_dim=32)

VARIANTS = {
    "post_ln_sinusoidal": dict(),
    "pre_ln_learned": dict(
        norm_first=True, positional_encoding="learned", max_length=12
    ),
    "tied_output": dict(tie_output_embedding=True),
    "padding_id_3": dict(padding_id=3),
}


def _tiny(share=False, **kwargs):
    config = dict(TINY, dropout=0.0)
    config.update(kwargs)
    vocabulary = SOURCE_VOCABULARY if share else TARGET_VOCABULARY
    return build_transformer(
        SOURCE_VOCABULARY, vocabulary, share_embeddings=share, **config
    )


def _inputs(padding_id=0, batch=3, source_length=7, target_length=5, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.integers(4, SOURCE_VOCABULARY, (batch, source_length))
    source[0, -3:] = padding_id  # row 0 has 4 real tokens
    target = rng.integers(4, TARGET_VOCABULARY, (batch, target_length))
    target[:, 0] = START
    target[1, -2:] = padding_id  # row 1 has 3 real target tokens
    return {
        "source_ids": source.astype("int32"),
        "target_ids": target.astype("int32"),
    }


def _sinusoids(length, depth):
    """`PE(pos, 2i) = sin(pos / 10000^(2i/d))`, `PE(pos, 2i+1) = cos(...)`."""
    positions = np.arange(length)[:, None]
    exponents = 2 * (np.arange(depth) // 2) / depth
    angles = positions / 10000.0**exponents
    return np.where(np.arange(depth) % 2 == 0, np.sin(angles), np.cos(angles))


# The forward call does not use the output bias, so it gets no gradient.
@pytest.mark.filterwarnings("ignore:Gradients do not exist")
@pytest.mark.parametrize("use_output_bias", [False, True])
def test_token_embedding_layer(use_output_bias):
    ids = np.array([[1, 2, 0, 5], [4, 4, 3, 0]], "int32")
    run_layer_test(
        TokenEmbedding,
        dict(
            vocabulary_size=6,
            embedding_dim=4,
            use_output_bias=use_output_bias,
        ),
        ids,
        expected_output_shape=(2, 4, 4),
        expected_num_trainable_weights=1 + use_output_bias,
    )


def test_token_embedding_numerics_and_reverse():
    layer = TokenEmbedding(7, 4, padding_id=2, use_output_bias=True)
    ids = np.array([[1, 2, 6]], "int32")
    vectors = keras.ops.convert_to_numpy(layer(ids))
    table = keras.ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_allclose(vectors, table[ids] * 2.0, rtol=1e-6)
    layer.output_bias.assign(np.arange(7, dtype="float32"))
    hidden = np.random.default_rng(0).normal(size=(1, 3, 4)).astype("float32")
    logits = layer(hidden, reverse=True)
    expected = hidden @ table.T + np.arange(7)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.padding_mask(ids), [[1, 0, 1]])
    with pytest.raises(ValueError, match="Received: inputs.shape"):
        layer(np.zeros((1, 3, 5), "float32"), reverse=True)


def test_token_embedding_reverse_is_float32_under_mixed_precision():
    layer = TokenEmbedding(7, 4, dtype="mixed_float16")
    vectors = layer(np.array([[1, 2, 3]], "int32"))
    assert keras.backend.standardize_dtype(vectors.dtype) == "float16"
    logits = layer(vectors, reverse=True)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vocabulary_size=0, embedding_dim=4), "vocabulary_size"),
        (dict(vocabulary_size=5, embedding_dim=-1), "embedding_dim"),
        (dict(vocabulary_size=5, embedding_dim=4, padding_id=5), "padding"),
    ],
)
def test_token_embedding_errors(kwargs, match):
    with pytest.raises(ValueError, match=f"(?s){match}.*Received"):
        TokenEmbedding(**kwargs)


@pytest.mark.parametrize("bad_id", [7, 100, -1])
def test_token_embedding_refuses_ids_outside_the_table_eagerly(bad_id):
    layer = TokenEmbedding(7, 4)
    ids = np.array([[1, bad_id, 3]], "int32")
    low, high = min(1, bad_id), max(3, bad_id)
    with pytest.raises(
        ValueError, match=rf"must be in \[0, 7\).*ids from {low} to {high}"
    ):
        layer(ids)


@pytest.mark.tf_only
def test_token_embedding_refuses_ids_outside_the_table_in_a_graph():
    import tensorflow as tf

    layer = TokenEmbedding(7, 4)
    call = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None), "int32")]
    )
    assert tuple(call(np.array([[0, 6]], "int32")).shape) == (1, 2, 4)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"must be in \[0, 7\)"
    ):
        call(np.array([[0, 7]], "int32"))


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="PyTorch runs eagerly: ValueError",
)
def test_token_embedding_compiled_gives_nan_for_ids_outside_the_table():
    # Compiled code cannot raise (XLA drops the check): a bad id must not
    # wrap to the last row or clamp to a real one, and gives NaN.
    ids = keras.Input((None,), dtype="int32")
    layer = TokenEmbedding(7, 2)
    model = keras.Model(ids, layer(ids))
    model.compile(jit_compile=True)
    vectors = model.predict(np.array([[1, 7, -1, 6]], "int32"), verbose=0)
    table = keras.ops.convert_to_numpy(layer.embeddings)
    assert np.isnan(vectors[0, 1:3]).all()
    np.testing.assert_allclose(
        vectors[0, [0, 3]], table[[1, 6]] * np.sqrt(2.0), rtol=1e-6
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_output_shape_dtype_and_layer_names(variant):
    model = _tiny(**VARIANTS[variant])
    logits = model(_inputs(VARIANTS[variant].get("padding_id", 0)))
    assert tuple(logits.shape) == (3, 5, TARGET_VOCABULARY)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    names = {layer.name for layer in model.layers}
    expected = {
        "source_ids",
        "target_ids",
        "source_embedding",
        "target_embedding",
        "source_positions",
        "target_positions",
        "encoder_block_0",
        "encoder_block_1",
        "decoder_block_0",
        "decoder_block_1",
    }
    assert expected <= names
    assert ("logits" in names) != VARIANTS[variant].get(
        "tie_output_embedding", False
    )
    norm_first = VARIANTS[variant].get("norm_first", False)
    assert ("decoder_final_norm" in names) == norm_first
    assert ("encoder_final_norm" in names) == norm_first
    assert "encoder_block_2" not in names


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_padding_and_causality(variant):
    padding_id = VARIANTS[variant].get("padding_id", 0)
    model = _tiny(**VARIANTS[variant])
    inputs = _inputs(padding_id)
    logits = keras.ops.convert_to_numpy(model(inputs))
    # More padding after the source leaves every logit unchanged.
    padded = dict(inputs)
    padded["source_ids"] = np.pad(
        inputs["source_ids"], [(0, 0), (0, 3)], constant_values=padding_id
    )
    np.testing.assert_allclose(model(padded), logits, atol=1e-5)
    # Changing a source token changes the logits (the decoder does look).
    changed = dict(inputs)
    changed["source_ids"] = inputs["source_ids"].copy()
    changed["source_ids"][2, 1] = 4 if inputs["source_ids"][2, 1] != 4 else 5
    assert np.abs(model(changed)[2] - logits[2]).max() > 1e-4
    # Changing target token 3 leaves logits 0..2 unchanged (causal).
    future = dict(inputs)
    future["target_ids"] = inputs["target_ids"].copy()
    future["target_ids"][:, 3] = 4 if inputs["target_ids"][0, 3] != 4 else 5
    future_logits = keras.ops.convert_to_numpy(model(future))
    np.testing.assert_allclose(future_logits[:, :3], logits[:, :3], atol=1e-5)
    assert np.abs(future_logits[0, 3:] - logits[0, 3:]).max() > 1e-4


def test_embeddings_are_scaled_plus_sinusoids():
    model = _tiny()
    parts = TransformerParts.from_model(model)
    ids = np.array([[1, 5, 9, 0]], "int32")
    table = keras.ops.convert_to_numpy(parts.target_embedding.embeddings)
    expected = table[ids] * math.sqrt(16) + _sinusoids(4, 16)[None]
    np.testing.assert_allclose(
        parts.embed_target(ids, training=False), expected, rtol=1e-5, atol=1e-5
    )


def test_shared_and_tied_embeddings():
    untied = _tiny(share=True)
    tied = _tiny(share=True, tie_output_embedding=True)
    parts = TransformerParts.from_model(tied)
    assert parts.source_embedding is parts.target_embedding
    assert parts.output_projection is None
    assert {layer.name for layer in tied.layers} >= {"shared_embedding"}
    assert "source_embedding" not in {layer.name for layer in tied.layers}
    # Tying removes the output kernel (d_model x vocab), keeps one bias.
    assert untied.count_params() - tied.count_params() == 16 * 17
    separate = _tiny()
    assert separate.count_params() - untied.count_params() == 17 * 16 + (
        TARGET_VOCABULARY - SOURCE_VOCABULARY
    ) * (16 + 16 + 1)
    # logits = h @ E^T + b with the shared table.
    embedding = parts.target_embedding
    embedding.output_bias.assign(np.linspace(-1, 1, 17).astype("float32"))
    inputs = _inputs()
    inputs["target_ids"] = np.minimum(inputs["target_ids"], 16)
    encoder_output, source_mask = parts.encode(inputs["source_ids"])
    hidden = parts.decoder_hidden(
        inputs["target_ids"], encoder_output, source_mask
    )
    table = keras.ops.convert_to_numpy(embedding.embeddings)
    expected = keras.ops.convert_to_numpy(hidden) @ table.T + np.linspace(
        -1, 1, 17
    )
    np.testing.assert_allclose(tied(inputs), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "variant", ["post_ln_sinusoidal", "pre_ln_learned", "shared_tied"]
)
def test_keras_round_trip(variant):
    if variant == "shared_tied":
        model = _tiny(share=True, tie_output_embedding=True)
    else:
        model = _tiny(**VARIANTS[variant])
    inputs = _inputs()
    if variant == "shared_tied":
        inputs["target_ids"] = np.minimum(inputs["target_ids"], 16)
    expected = keras.ops.convert_to_numpy(model(inputs))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "transformer.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(inputs), expected, rtol=1e-5, atol=1e-5)
    parts = TransformerParts.from_model(reloaded)
    assert len(parts.decoder_blocks) == 2
    assert (parts.source_embedding is parts.target_embedding) == (
        variant == "shared_tied"
    )


def test_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    model = _tiny(norm_first=True)
    logits = model(_inputs())
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.isfinite(keras.ops.convert_to_numpy(logits)).all()
    block = model.get_layer("decoder_block_0")
    assert block.compute_dtype == "float16"


def test_learned_positions_reject_too_long_sequences():
    model = _tiny(positional_encoding="learned", max_length=6)
    inputs = _inputs(source_length=7)
    with pytest.raises(ValueError, match="position table.*Received"):
        model(inputs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(source_vocabulary_size=0), "source_vocabulary_size"),
        (dict(target_vocabulary_size="10"), "target_vocabulary_size"),
        (dict(share_embeddings=True), "vocabulary sizes must be equal"),
        (dict(d_model=18, num_heads=4), "divisible"),
        (dict(positional_encoding="rotary"), "positional_encoding"),
        (dict(padding_id=17), "padding_id"),
        (dict(dropout=1.0), "dropout"),
        (dict(num_layers=0), "num_layers"),
    ],
)
def test_builder_errors(kwargs, match):
    config = dict(
        source_vocabulary_size=SOURCE_VOCABULARY,
        target_vocabulary_size=TARGET_VOCABULARY,
    )
    config.update(kwargs)
    with pytest.raises(ValueError, match=f"(?s){match}.*Received"):
        build_transformer(**config)


def test_parts_need_a_transformer():
    inputs = keras.Input((3,))
    other = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="build_transformer.*Received"):
        TransformerParts.from_model(other)
