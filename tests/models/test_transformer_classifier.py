"""Tests of the Transformer text classifier and its attention inspector.

Its SavedModel export is tested in `tests/serving/test_classifier.py`, its
attention plots in `tests/test_viz.py`.
"""

import keras
import numpy as np
import pytest

from keras_attention.models.transformer_classifier import (
    build_attention_inspector,
)
from keras_attention.models.transformer_classifier import (
    build_transformer_classifier,
)

# The order task: every sequence holds one FIRST and one SECOND token among
# filler tokens; the label says whether FIRST comes before SECOND. Both
# classes have the same bag of words, so only word order tells them apart.
FIRST, SECOND = 1, 2
NUM_FILLERS = 10
VOCABULARY_SIZE = 3 + NUM_FILLERS
MAX_LENGTH = 12
SMALL = dict(num_layers=1, num_heads=2, embedding_dim=8, feed_forward_dim=16)
VARIANTS = [
    ("mean", "sinusoidal"),
    ("mean", "learned"),
    ("cls", "sinusoidal"),
    ("cls", "learned"),
]


def order_task(num_examples, rng, min_length=6, max_length=MAX_LENGTH):
    """`(ids (n, max_length) 0-padded, labels (n,), swapped ids)`."""
    ids = np.zeros((num_examples, max_length), "int32")
    swapped = np.zeros_like(ids)
    labels = np.zeros(num_examples, "int32")
    for row in range(num_examples):
        length = rng.integers(min_length, max_length + 1)
        sequence = rng.integers(3, 3 + NUM_FILLERS, size=length)
        first, second = rng.choice(length, size=2, replace=False)
        sequence[first], sequence[second] = FIRST, SECOND
        ids[row, :length] = sequence
        sequence[first], sequence[second] = SECOND, FIRST
        swapped[row, :length] = sequence
        labels[row] = int(first < second)
    return ids, labels, swapped


def run(model, ids):
    """Eager inference (faster than `predict` for a few tiny batches)."""
    outputs = model(ids, training=False)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def small_classifier(num_classes=3, pooling="mean", positional="sinusoidal"):
    return build_transformer_classifier(
        VOCABULARY_SIZE,
        num_classes,
        dropout=0.1,
        max_sequence_length=MAX_LENGTH,
        positional_encoding=positional,
        pooling=pooling,
        **SMALL,
    )


@pytest.mark.large
def test_learns_word_order_task():
    rng = np.random.default_rng(0)
    train_ids, train_labels, _ = order_task(1500, rng)
    test_ids, test_labels, test_swapped = order_task(500, rng)
    model = build_transformer_classifier(
        VOCABULARY_SIZE,
        2,
        num_layers=1,
        num_heads=2,
        embedding_dim=32,
        feed_forward_dim=64,
        dropout=0.0,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(5e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(train_ids, train_labels, batch_size=64, epochs=8, verbose=0)
    _, accuracy = model.evaluate(test_ids, test_labels, verbose=0)
    # The same held-out bags of words with the two marked tokens swapped:
    # the opposite labels. A bag-of-words model scores 50% on the two sets
    # together; this one must get both right.
    _, swapped_accuracy = model.evaluate(
        test_swapped, 1 - test_labels, verbose=0
    )
    print(
        f"order task: accuracy {accuracy:.4f}, swapped {swapped_accuracy:.4f}"
    )
    assert accuracy > 0.95
    assert swapped_accuracy > 0.95


@pytest.mark.parametrize("num_classes", [2, 5])
@pytest.mark.parametrize("pooling,positional", VARIANTS)
def test_outputs_are_probabilities(num_classes, pooling, positional):
    model = small_classifier(num_classes, pooling, positional)
    ids, _, _ = order_task(4, np.random.default_rng(1))
    probabilities = run(model, ids)
    assert probabilities.shape == (4, num_classes)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    assert model.input.name == "token_ids"


@pytest.mark.parametrize("pooling,positional", VARIANTS)
def test_padding_does_not_change_predictions(pooling, positional):
    model = small_classifier(3, pooling, positional)
    inspector = build_attention_inspector(model)
    tokens = np.array([[4, 5, FIRST, 6, SECOND]], "int32")
    offset = int(pooling == "cls")  # the class token comes first
    real = tokens.shape[1] + offset
    expected = run(model, tokens)
    expected_scores = run(inspector, tokens)
    for length in (7, MAX_LENGTH):
        padded = np.pad(tokens, [[0, 0], [0, length - tokens.shape[1]]])
        np.testing.assert_allclose(run(model, padded), expected, atol=1e-6)
        scores = run(inspector, padded)
        for name, block_scores in scores.items():
            # Padded keys get no weight, real ones the same as unpadded.
            np.testing.assert_array_equal(block_scores[..., real:], 0.0)
            np.testing.assert_allclose(
                block_scores[..., :real, :real],
                expected_scores[name],
                atol=1e-6,
            )
    # A batch of texts of different lengths: each as if alone.
    other = np.array([[7, 8, 9, SECOND, 10, FIRST, 11, 12]], "int32")
    batch = np.concatenate([np.pad(tokens, [[0, 0], [0, 3]]), other])
    np.testing.assert_allclose(
        run(model, batch),
        np.concatenate([expected, run(model, other)]),
        atol=1e-6,
    )


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_attention_inspector(pooling):
    model = build_transformer_classifier(
        VOCABULARY_SIZE,
        2,
        num_layers=3,
        num_heads=2,
        embedding_dim=8,
        feed_forward_dim=16,
        pooling=pooling,
    )
    inspector = build_attention_inspector(model)
    ids = np.array([[4, 5, 6, 0, 0], [4, 5, 6, 7, 8]], "int32")
    scores = run(inspector, ids)
    assert sorted(scores) == [f"transformer_block_{i}" for i in range(3)]
    length = 5 + (pooling == "cls")
    real = 3 + (pooling == "cls")
    for block_scores in scores.values():
        assert block_scores.shape == (2, 2, length, length)
        # Real queries of the padded row spread their weight over real keys.
        np.testing.assert_allclose(
            block_scores[0, :, :real].sum(-1), 1.0, atol=1e-5
        )
        np.testing.assert_array_equal(block_scores[0, :, :, real:], 0.0)
        np.testing.assert_allclose(block_scores[1].sum(-1), 1.0, atol=1e-5)
    # The inspector shares the classifier's weights.
    assert {id(w) for w in inspector.weights} <= {id(w) for w in model.weights}


def test_inspector_rejects_models_without_scores():
    chunked = build_transformer_classifier(
        VOCABULARY_SIZE, 2, attention_implementation="chunked", **SMALL
    )
    with pytest.raises(ValueError, match="return_attention_scores"):
        build_attention_inspector(chunked)
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="no `TransformerBlock`"):
        build_attention_inspector(plain)


def test_keras_file_round_trip(tmp_path):
    model = build_transformer_classifier(
        VOCABULARY_SIZE,
        3,
        num_layers=2,
        num_heads=2,
        embedding_dim=8,
        feed_forward_dim=16,
        max_sequence_length=MAX_LENGTH,
        positional_encoding="learned",
        pooling="cls",
        norm_first=True,
    )
    # Move every weight off its initial value, so that a reload that
    # re-initialised any of them would be caught.
    rng = np.random.default_rng(2)
    model.set_weights(
        [w + rng.normal(0, 0.1, w.shape) for w in model.get_weights()]
    )
    ids, _, _ = order_task(8, rng)
    path = tmp_path / "classifier.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(run(reloaded, ids), run(model, ids), atol=1e-6)
    expected = run(build_attention_inspector(model), ids)
    actual = run(build_attention_inspector(reloaded), ids)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], atol=1e-6)


def test_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    model = small_classifier(3, "cls", "learned")
    ids, _, _ = order_task(4, np.random.default_rng(3))
    probabilities = run(model, ids)
    assert probabilities.dtype == np.float32
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_classes=1), "num_classes"),
        (dict(vocabulary_size=0), "vocabulary_size"),
        (dict(num_layers=0), "num_layers"),
        (dict(embedding_dim=10, num_heads=4), "divisible"),
        (dict(dropout=1.0), "dropout"),
        (dict(pooling="max"), "pooling"),
        (dict(positional_encoding="rotary"), "positional_encoding"),
        (dict(positional_encoding="learned"), "max_sequence_length"),
        (dict(attention_implementation="flash"), "attention_implementation"),
    ],
)
def test_invalid_arguments(kwargs, match):
    arguments = dict(vocabulary_size=10, num_classes=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=f"(?s){match}.*Received"):
        build_transformer_classifier(**arguments)
