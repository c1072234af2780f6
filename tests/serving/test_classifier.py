"""`export_text_classifier`: argument order and the caller's objects.

The SavedModel's answers (reload equality, truncation, empty texts, a fresh
process) are tested in `tests/models/test_transformer_classifier.py`.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.models.transformer_classifier import (
    build_transformer_classifier,
)
from keras_attention.serving import export_text_classifier
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from tests.serving.snapshots import state_of

VOCABULARY = ["[PAD]", "[UNK]", "[START]", "[END]", "the", "cat", "sat"]
CLASS_NAMES = ["negative", "positive"]
MAX_SEQUENCE_LENGTH = 4
TEXTS = ["the cat sat", "sat sat sat sat sat the"]


@pytest.fixture(scope="module")
def parts():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    model = build_transformer_classifier(
        len(VOCABULARY),
        len(CLASS_NAMES),
        num_layers=1,
        num_heads=2,
        embedding_dim=8,
        feed_forward_dim=16,
    )
    return model, tokenizer


def served(path):
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    return serve(texts=tf.constant(TEXTS))


def expected_probabilities(model, tokenizer):
    ids = tokenizer(TEXTS)[:, :MAX_SEQUENCE_LENGTH].to_tensor()
    return np.asarray(model(ids, training=False))


def test_path_comes_first_and_the_arguments_are_unchanged(parts, tmp_path):
    model, tokenizer = parts
    before = state_of(model, tokenizer)
    path = export_text_classifier(
        tmp_path / "classifier",
        model,
        tokenizer,
        CLASS_NAMES,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
    )
    assert path == tmp_path / "classifier"
    assert state_of(model, tokenizer) == before
    outputs = served(path)
    np.testing.assert_allclose(
        outputs["probabilities"].numpy(),
        expected_probabilities(model, tokenizer),
        atol=1e-6,
    )


def test_the_old_order_warns_and_still_exports(parts, tmp_path):
    model, tokenizer = parts
    with pytest.warns(DeprecationWarning, match="path, model, tokenizer"):
        export_text_classifier(
            model,
            tokenizer,
            tmp_path / "classifier",
            CLASS_NAMES,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
        )
    outputs = served(tmp_path / "classifier")
    assert outputs["class_ids"].shape == (len(TEXTS),)


def test_bad_arguments_name_the_argument(parts, tmp_path):
    model, tokenizer = parts
    with pytest.raises(ValueError, match="2 classes.*Received"):
        export_text_classifier(tmp_path, model, tokenizer, ["a"])
    with pytest.raises(ValueError, match="`tokenizer`.*tokenize.*Received"):
        export_text_classifier(tmp_path, model, object(), CLASS_NAMES)
    with pytest.raises(ValueError, match="max_sequence_length.*Received"):
        export_text_classifier(
            tmp_path, model, tokenizer, CLASS_NAMES, max_sequence_length=0
        )
