"""`export_text_classifier` and `compare_served_classes`.

The export: its argument order, the caller's objects left unchanged, and
the SavedModel's answers (reload equality, truncation, empty texts, a fresh
process that never imports `keras_attention`).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from keras_attention.models.transformer_classifier import (
    build_transformer_classifier,
)
from keras_attention.serving import answer_classification_request
from keras_attention.serving import classification_request
from keras_attention.serving import compare_served_classes
from keras_attention.serving import export_text_classifier
from keras_attention.serving import load_saved_model
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from tests.serving.snapshots import state_of

# The module-scoped exports are built once, on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_classifier")

VOCABULARY = ["[PAD]", "[UNK]", "[START]", "[END]", "the", "cat", "sat"]
CLASS_NAMES = ["negative", "positive"]
MAX_SEQUENCE_LENGTH = 4
TEXTS = ["the cat sat", "sat sat sat sat sat the"]
SMALL = dict(num_layers=1, num_heads=2, embedding_dim=8, feed_forward_dim=16)

# The reload tests: three classes, subwords, and texts that are empty,
# unknown or longer than the model's positions.
WORDPIECES = [
    "[PAD]",
    "[UNK]",
    "[START]",
    "[END]",
    "alice",
    "bob",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "##s",
    ".",
]
EDGE_TEXTS = [
    "Alice sat on the mat.",
    "the cats sat on Bob",
    "",
    "zebra",
    "bob " * 20,
]
THREE_CLASSES = ["negative", "neutral", "positive"]
EMPTY_INDEX = EDGE_TEXTS.index("")
EDGE_STATUSES = [b"ok", b"ok", b"empty", b"ok", b"truncated"]

# Runs in a fresh interpreter: only TensorFlow and tensorflow-text.
_FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    outputs = serve(tf.constant(json.loads(sys.argv[2])))
    if "keras_attention" in sys.modules:
        raise SystemExit("keras_attention was imported")
    print(json.dumps({
        "probabilities": outputs["probabilities"].numpy().tolist(),
        "outputs": [s.decode() for s in outputs["outputs"].numpy()],
    }))
    """
)


@pytest.fixture(scope="module")
def parts():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    model = build_transformer_classifier(
        len(VOCABULARY), len(CLASS_NAMES), **SMALL
    )
    return model, tokenizer


def served(path):
    serve = load_saved_model(path).signatures["serving_default"]
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
        truncate=True,
    )
    assert path == os.path.join(tmp_path, "classifier", "1")
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


@pytest.mark.parametrize(
    "vocabulary, class_names, too_few",
    [(VOCABULARY, CLASS_NAMES, ["a"]), (WORDPIECES, THREE_CLASSES, ["a", "b"])],
)
def test_bad_arguments_name_the_argument(
    tmp_path, vocabulary, class_names, too_few
):
    model = build_transformer_classifier(
        len(vocabulary), len(class_names), **SMALL
    )
    tokenizer = WordPieceTokenizer(vocabulary)
    with pytest.raises(
        ValueError, match=f"{len(class_names)} classes.*Received"
    ):
        export_text_classifier(tmp_path, model, tokenizer, too_few)
    with pytest.raises(ValueError, match="`tokenizer`.*tokenize.*Received"):
        export_text_classifier(tmp_path, model, object(), class_names)
    with pytest.raises(ValueError, match="max_sequence_length.*Received"):
        export_text_classifier(
            tmp_path, model, tokenizer, class_names, max_sequence_length=0
        )


def test_long_texts_are_rejected_by_default(parts, tmp_path):
    path = tmp_path / "classifier"
    export_text_classifier(path, *parts, CLASS_NAMES, MAX_SEQUENCE_LENGTH)
    outputs = served(path)
    assert outputs["status"].numpy().tolist() == [b"ok", b"too_long"]
    assert outputs["class_ids"].numpy()[1] == -1
    assert outputs["outputs"].numpy()[1] == b""


def exported_classifier(tmp_path, max_sequence_length=8):
    tokenizer = WordPieceTokenizer(WORDPIECES)
    model = build_transformer_classifier(
        len(WORDPIECES),
        len(THREE_CLASSES),
        max_sequence_length=max_sequence_length,
        positional_encoding="learned",
        **SMALL,
    )
    path = export_text_classifier(
        tmp_path / "saved_model",
        model,
        tokenizer,
        THREE_CLASSES,
        max_sequence_length=max_sequence_length,
        truncate=True,
    )
    return model, tokenizer, path


def in_process_probabilities(model, tokenizer, texts, max_length):
    ids = tokenizer(texts)[:, :max_length].to_tensor(shape=[None, max_length])
    return np.array(model(ids, training=False))


def test_export_reload_equality(tmp_path):
    model, tokenizer, path = exported_classifier(tmp_path)
    expected = in_process_probabilities(model, tokenizer, EDGE_TEXTS, 8)
    # The empty text is not answered: zero probabilities, class id -1.
    expected[EMPTY_INDEX] = 0.0
    class_ids = expected.argmax(-1)
    class_ids[EMPTY_INDEX] = -1
    class_names = [THREE_CLASSES[i] if i >= 0 else "" for i in class_ids]
    serve = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serve(texts=tf.constant(EDGE_TEXTS))
    # The long text is truncated like in training.
    np.testing.assert_allclose(
        outputs["probabilities"].numpy(), expected, atol=1e-6
    )
    np.testing.assert_array_equal(outputs["class_ids"].numpy(), class_ids)
    assert [s.decode() for s in outputs["outputs"].numpy()] == class_names
    assert outputs["status"].numpy().tolist() == EDGE_STATUSES
    # A batch of only empty texts runs too.
    empty = serve(texts=tf.constant(["", ""]))["probabilities"].numpy()
    assert empty.shape == (2, 3) and np.all(empty == 0)

    # In a fresh process that imports only TensorFlow and tensorflow-text.
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, path, json.dumps(EDGE_TEXTS)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-6)
    assert served["outputs"] == class_names


PROBABILITIES = [[0.1, 0.9], [0.7, 0.3], [0.5, 0.5 + 1e-4]]
COMPARED_TEXTS = ["good", "bad", "meh"]


def test_compare_served_classes_counts_agreement_and_allows_near_ties():
    exact = ["positive", "negative", "positive"]
    assert (
        compare_served_classes(
            COMPARED_TEXTS, exact, PROBABILITIES, CLASS_NAMES
        )
        == 3
    )
    # The third text is a near tie: either class is accepted.
    tie = ["positive", "negative", "negative"]
    assert (
        compare_served_classes(COMPARED_TEXTS, tie, PROBABILITIES, CLASS_NAMES)
        == 2
    )


def test_compare_served_classes_rejects_real_disagreements():
    wrong = ["negative", "negative", "positive"]
    with pytest.raises(RuntimeError, match="on 1 of 3 texts.*'good'"):
        compare_served_classes(
            COMPARED_TEXTS, wrong, PROBABILITIES, CLASS_NAMES
        )
    # Not a near tie once the margin is smaller than the gap.
    tie = ["positive", "negative", "negative"]
    with pytest.raises(RuntimeError, match="'meh'"):
        compare_served_classes(
            COMPARED_TEXTS, tie, PROBABILITIES, CLASS_NAMES, tie_margin=1e-5
        )
    with pytest.raises(RuntimeError, match="2 served answers"):
        compare_served_classes(
            COMPARED_TEXTS, wrong[:2], PROBABILITIES, CLASS_NAMES
        )


def test_classification_signature_answers_classify_requests(parts, tmp_path):
    path = export_text_classifier(
        tmp_path / "classifier", *parts, CLASS_NAMES, MAX_SEQUENCE_LENGTH
    )
    saved_model = saved_model_pb2.SavedModel.FromString(
        open(os.path.join(path, "saved_model.pb"), "rb").read()
    )
    signature_def = saved_model.meta_graphs[0].signature_def["classification"]
    assert signature_def.method_name == "tensorflow/serving/classify"
    assert sorted(signature_def.outputs) == ["classes", "scores"]
    loaded = load_saved_model(path)
    texts = TEXTS + [""]
    request = classification_request(texts, model_name="reviews")
    response = answer_classification_request(
        loaded.signatures["classification"], request
    )
    expected = loaded.signatures["serving_default"](texts=tf.constant(texts))
    rows = response.result.classifications
    assert len(rows) == len(texts)
    for row, probabilities in zip(rows, expected["probabilities"].numpy()):
        assert [c.label for c in row.classes] == CLASS_NAMES
        np.testing.assert_allclose(
            [c.score for c in row.classes], probabilities, atol=1e-6
        )
    # The long and the empty texts are not answered: zero scores.
    assert [c.score for c in rows[1].classes] == [0.0, 0.0]
    assert [c.score for c in rows[2].classes] == [0.0, 0.0]
