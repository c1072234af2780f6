"""`Seq2SeqTranslator` screens each item as its SavedModel export does."""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.serving import export_seq2seq
from tests.serving.tiny_models import seq2seq_parts
from tests.serving.tiny_models import seq2seq_translator

pytestmark = [
    pytest.mark.tf_only,
    pytest.mark.xdist_group("test_seq2seq_translator_status"),
]

MAX_SOURCE_LENGTH = 8
MAX_OUTPUT_LENGTH = 5
# One item of each status, and two answerable ones around them.
BATCH = [
    "Aug 19",
    "",
    " \t\u200b",
    "1234567890",
    b"\xff19",
    "a\ud800b",
    "2/10/93",
]
STATUSES = [
    "ok",
    "empty",
    "empty",
    "too_long",
    "invalid_utf8",
    "invalid_utf8",
    "ok",
]


@pytest.fixture(scope="module")
def parts():
    return seq2seq_parts()


def make_translator(parts, truncate=False):
    return seq2seq_translator(
        parts, MAX_SOURCE_LENGTH, MAX_OUTPUT_LENGTH, truncate=truncate
    )


def test_each_item_gets_its_status_and_bad_items_empty_answers(parts):
    translator = make_translator(parts)
    strings, tokens, weights, statuses = translator.translate(
        BATCH, return_attention=True, return_status=True
    )
    assert statuses == STATUSES
    for index, status in enumerate(statuses):
        if status != "ok":
            assert strings[index] == ""
            assert not tokens[index].any()
            assert not weights[index].any()
    assert np.isfinite(weights).all()


def test_good_items_answered_as_when_sent_alone(parts):
    translator = make_translator(parts)
    strings, tokens, weights = translator.translate(
        BATCH, return_attention=True
    )
    for index in (0, 6):
        alone, alone_tokens, alone_weights = translator.translate(
            [BATCH[index]], return_attention=True
        )
        assert strings[index] == alone[0]
        np.testing.assert_array_equal(tokens[index], alone_tokens[0])
        width = alone_weights.shape[-1]
        np.testing.assert_allclose(
            weights[index, :, :width], alone_weights[0], atol=1e-6
        )
        assert not weights[index, :, width:].any()


def test_truncate_answers_the_first_max_source_length_characters(parts):
    translator = make_translator(parts, truncate=True)
    strings, statuses = translator.translate(
        ["1234567890", "12345678"], return_status=True
    )
    assert statuses == ["truncated", "ok"]
    assert strings[0] == strings[1]


def test_statuses_and_answers_equal_the_exported_signature(parts, tmp_path):
    model, source, target = parts
    path = export_seq2seq(
        tmp_path / "dates",
        model,
        source,
        target,
        max_source_length=MAX_SOURCE_LENGTH,
        max_output_length=MAX_OUTPUT_LENGTH,
    )
    serving = tf.saved_model.load(path).signatures["serving_default"]
    as_bytes = [
        text
        if isinstance(text, bytes)
        else text.encode("utf-8", "surrogatepass")
        for text in BATCH
    ]
    outputs = serving(tf.constant(as_bytes))
    strings, statuses = make_translator(parts).translate(
        BATCH, return_status=True
    )
    assert [s.decode() for s in outputs["status"].numpy()] == statuses
    assert [s.decode() for s in outputs["outputs"].numpy()] == strings


def test_empty_batch_and_wrong_item_type(parts):
    translator = make_translator(parts)
    assert translator.translate([]) == []
    assert translator.translate([], return_status=True) == ([], [])
    with pytest.raises(ValueError, match="`str` or `bytes`.*12"):
        translator.translate(["Aug 19", 12])
