import numpy as np
import pytest
import tensorflow as tf

from keras_attention.serving import export_seq2seq
from keras_attention.serving import export_text_to_text
from keras_attention.serving import run_saved_model_in_fresh_process
from tests.serving.snapshots import state_of
from tests.serving.tiny_models import seq2seq_parts
from tests.serving.tiny_models import seq2seq_translator

# The module-scoped exports are built once, on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_text_to_text")

MAX_SOURCE_LENGTH = 12
MAX_OUTPUT_LENGTH = 6
TEXTS = ["Aug 19, 03", "2/10/93", "x"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An untrained (random) model: the export must reproduce it exactly."""
    parts = seq2seq_parts()
    model, source, target = parts
    path = export_seq2seq(
        tmp_path_factory.mktemp("export") / "saved_model",
        model,
        source,
        target,
        max_source_length=MAX_SOURCE_LENGTH,
        max_output_length=MAX_OUTPUT_LENGTH,
    )
    translator = seq2seq_translator(parts, MAX_SOURCE_LENGTH, MAX_OUTPUT_LENGTH)
    return path, translator


def test_signature_takes_strings_and_matches_translator(exported):
    path, translator = exported
    serving = tf.saved_model.load(path).signatures["serving_default"]
    (spec,) = serving.structured_input_signature[1].values()
    assert spec.dtype == tf.string
    outputs = serving(tf.constant(TEXTS))
    predictions = [s.decode() for s in outputs["outputs"].numpy()]
    assert predictions == translator.translate(TEXTS)
    weights = outputs["attention_weights"].numpy()
    assert weights.shape[:2] == (len(TEXTS), MAX_OUTPUT_LENGTH + 1)
    # Each row's padding ("x" is 1 character of 10) gets zero weight.
    assert np.all(weights[2, :, 1:] == 0)


def test_fresh_process_without_keras_attention(exported):
    path, translator = exported
    expected = translator.translate(TEXTS)
    assert run_saved_model_in_fresh_process(path, TEXTS, expected) == expected
    wrong = ["not an answer"] + expected[1:]
    with pytest.raises(RuntimeError, match="disagrees.*1 of"):
        run_saved_model_in_fresh_process(path, TEXTS, wrong)


BAD_TEXTS = ["1" * 13, "", " \t", b"\xff2/10"]
BAD_STATUSES = [b"too_long", b"empty", b"empty", b"invalid_utf8"]


def test_bad_items_get_a_status_and_leave_the_others_alone(exported):
    path, translator = exported
    serving = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serving(tf.constant(TEXTS[:1] + BAD_TEXTS + TEXTS[1:]))
    statuses = outputs["status"].numpy().tolist()
    assert statuses == [b"ok"] + BAD_STATUSES + [b"ok", b"ok"]
    answers = [s.decode() for s in outputs["outputs"].numpy()]
    expected = translator.translate(TEXTS)
    assert answers == expected[:1] + [""] * len(BAD_TEXTS) + expected[1:]
    assert np.all(outputs["attention_weights"].numpy()[1:5] == 0)


def test_truncate_answers_long_inputs(tmp_path):
    model, source, target = seq2seq_parts()
    path = export_seq2seq(
        tmp_path / "saved_model", model, source, target, 4, 3, truncate=True
    )
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    outputs = serving(tf.constant(["2/10/93", "2/10"]))
    assert outputs["status"].numpy().tolist() == [b"truncated", b"ok"]
    assert outputs["outputs"].numpy()[0] == outputs["outputs"].numpy()[1]


def test_an_empty_batch_gives_empty_outputs(exported):
    path, _ = exported
    serving = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serving(tf.constant([], tf.string))
    assert outputs["outputs"].shape == (0,)
    assert outputs["attention_weights"].shape[0] == 0


def test_export_validates_arguments(exported, tmp_path):
    _, translator = exported
    model = translator.decoder.encoder
    with pytest.raises(ValueError, match="CharacterTokenizer"):
        export_seq2seq(tmp_path / "a", model, object(), None, 5, 5)


def test_export_leaves_the_model_and_tokenizers_unchanged(tmp_path):
    parts = seq2seq_parts()
    before = state_of(*parts)
    model, source, target = parts
    export_seq2seq(tmp_path / "saved_model", model, source, target, 12, 6)
    assert state_of(*parts) == before


def test_text_to_text_takes_the_decoder_after_the_path(exported, tmp_path):
    _, translator = exported
    source, target = translator.source_tokenizer, translator.target_tokenizer
    # The order of earlier versions (tokenizers, then the decoder).
    with pytest.raises(ValueError, match="`target_tokenizer`.*detokenize"):
        export_text_to_text(tmp_path, source, target, translator.decoder, 5)
