"""Each item of a batch stands alone, in every export (`item_status`).

The helpers on hand-made batches, then a fuzz test: random batches of
random inputs (several scripts, blanks, control characters, invalid UTF-8,
from empty to ten times the limit, 0 to 256 items) through each exported
signature never raise nor give NaN, and answer every item as when it is
sent alone.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.serving import ITEM_STATUSES
from keras_attention.serving import Translator
from keras_attention.serving import export_seq2seq
from keras_attention.serving import export_text_classifier
from keras_attention.serving import export_translator
from keras_attention.serving.item_status import answer_items
from keras_attention.serving.item_status import is_answered
from keras_attention.serving.item_status import item_status
from keras_attention.serving.item_status import screen_utf8
from tests.serving.fuzz_texts import batch_sizes
from tests.serving.fuzz_texts import random_texts
from tests.serving.tiny_models import classifier_parts
from tests.serving.tiny_models import seq2seq_parts
from tests.serving.tiny_models import translator_parts

# Distinct random inputs per export, each also answered alone, and the
# batches drawn from them (about 130 items a batch).
NUM_TEXTS = 120
NUM_BATCHES = 16
SEED = 15
# The limit of each export (characters for seq2seq, ids for the others).
LIMIT = 12


def test_screen_utf8_blanks_invalid_items():
    texts = tf.constant([b"caf\xc3\xa9", b"\xff", b"a\xed\xa0\x80", b""])
    valid, safe = screen_utf8(texts)
    assert valid.numpy().tolist() == [True, False, False, True]
    assert safe.numpy().tolist() == [b"caf\xc3\xa9", b"", b"", b""]


@pytest.mark.parametrize(
    "truncate, over", [(False, b"too_long"), (True, b"truncated")]
)
def test_item_status(truncate, over):
    texts = tf.constant(["abc", "abcdef", " \u3000\u200b", "", "ab", "x"])
    valid = tf.constant([True, True, True, True, True, False])
    lengths = tf.constant([5, 8, 5, 2, 2, 0])  # start and end ids included
    status = item_status(texts, valid, lengths, 6, truncate, num_special=2)
    assert status.numpy().tolist() == [
        b"ok",
        over,
        b"empty",
        b"empty",
        b"empty",  # no token besides the start and end ids
        b"invalid_utf8",
    ]
    assert is_answered(status).numpy().tolist() == [
        True,
        truncate,
        False,
        False,
        False,
        False,
    ]


def test_answer_items_fills_the_rows_not_answered():
    answered = tf.constant([False, True, False, True])
    ids = tf.ragged.constant([[1], [2, 3], [], [4]])

    def answer(rows):
        dense = rows.to_tensor()  # (num, len)
        total = tf.reduce_sum(dense, axis=1)  # (num,)
        return {"sum": total, "text": tf.strings.as_string(total), "ids": dense}

    outputs = answer_items(answered, ids, answer, fill_values={"sum": -1})
    assert outputs["sum"].numpy().tolist() == [-1, 5, -1, 4]
    assert outputs["text"].numpy().tolist() == [b"", b"5", b"", b"4"]
    assert outputs["ids"].numpy().tolist() == [[0, 0], [2, 3], [0, 0], [4, 0]]
    nothing = answer_items(tf.constant([False]), ids[:1], answer)
    assert nothing["text"].numpy().tolist() == [b""]


def _load(path):
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def _seq2seq(directory):
    model, source, target = seq2seq_parts()
    path = export_seq2seq(directory, model, source, target, LIMIT, 6)
    return _load(path), list("aug 19, 2003/")


def _translator(directory):
    model, source_tokenizer, target_tokenizer = translator_parts()
    translator = Translator(
        model,
        source_tokenizer,
        target_tokenizer,
        max_output_length=5,
        max_source_length=LIMIT,
    )
    path = export_translator(directory, translator)
    return _load(path), ["um", "dois", "3", "11", "."]


def _classifier(directory):
    model, tokenizer = classifier_parts(max_sequence_length=LIMIT)
    path = export_text_classifier(
        directory,
        model,
        tokenizer,
        ["a", "b", "c"],
        max_sequence_length=LIMIT,
        truncate=True,
    )
    return _load(path), ["the", "cat", "dog"]


def _check_like_alone(item, alone, status):
    """One item of a batch against its answer alone, output by output."""
    for key, value in item.items():
        value, expected = np.asarray(value), np.asarray(alone[key][0])
        if value.dtype.kind != "f":
            assert value.tolist() == expected.tolist(), key
            continue
        assert np.isfinite(value).all(), key
        # Attention may be wider in a batch: the rest is zero padding.
        window = tuple(slice(0, n) for n in expected.shape)
        np.testing.assert_allclose(value[window], expected, atol=1e-5)
        rest = value.copy()
        rest[window] = 0
        assert np.all(rest == 0), key
        if status not in (b"ok", b"truncated"):
            assert np.all(value == 0), key
    if status not in (b"ok", b"truncated"):
        assert item["outputs"] == b""


@pytest.mark.parametrize("export", [_seq2seq, _translator, _classifier])
def test_fuzz_every_item_is_answered_as_when_alone(export, tmp_path):
    rng = np.random.default_rng(SEED)
    serve, words = export(tmp_path / "model")
    texts = random_texts(rng, NUM_TEXTS, LIMIT, words)
    alone = [
        {k: v.numpy() for k, v in serve(tf.constant([text])).items()}
        for text in texts
    ]
    statuses = {a["status"][0] for a in alone}
    assert b"ok" in statuses and len(statuses) >= 3, statuses
    for size in batch_sizes(rng, NUM_BATCHES):
        rows = rng.integers(0, NUM_TEXTS, size)
        batch = tf.constant([texts[i] for i in rows], tf.string)
        outputs = {k: v.numpy() for k, v in serve(batch).items()}
        assert set(outputs["status"].tolist()) <= {
            s.encode() for s in ITEM_STATUSES
        }
        for position, row in enumerate(rows):
            status = outputs["status"][position]
            assert status == alone[row]["status"][0]
            item = {k: v[position] for k, v in outputs.items()}
            _check_like_alone(item, alone[row], status)
