import os

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.serving import Translator
from keras_attention.serving import export_translator
from keras_attention.serving import run_saved_model_in_fresh_process
from keras_attention.text.wordpiece_vocabulary import load_vocabulary
from tests.serving import tiny_sentencepiece
from tests.serving.snapshots import state_of
from tests.serving.tiny_models import translator_parts

# The module-scoped exports are built once, on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_translator")

MAX_OUTPUT_LENGTH = 5


@pytest.fixture(scope="module")
def parts():
    return translator_parts()


def make_greedy_translator(parts, **options):
    model, source_tokenizer, target_tokenizer = parts
    return Translator(
        model,
        source_tokenizer,
        target_tokenizer,
        max_output_length=MAX_OUTPUT_LENGTH,
        **options,
    )


@pytest.fixture(scope="module")
def greedy_translator(parts):
    """One greedy `Translator` (traced once) for several tests."""
    return make_greedy_translator(parts)


def test_encode_truncates_long_sources_keeping_the_end_id(parts):
    model, source_tokenizer, target_tokenizer = parts
    translator = Translator(
        model, source_tokenizer, target_tokenizer, max_source_length=4
    )
    texts = ["um dois 1 2 3 4", "um"]
    ids = translator.encode(tf.constant(texts)).numpy()
    full = source_tokenizer(texts).to_list()
    assert ids.shape == (2, 4)
    assert ids[0].tolist() == full[0][:3] + [source_tokenizer.end_id]
    assert ids[1].tolist() == full[1] + [0]  # padded, not truncated


def test_greedy_outputs_match_the_decoder(parts, greedy_translator):
    _, _, target_tokenizer = parts
    translator = greedy_translator
    texts = ["um dois 3", "dois"]
    outputs = translator(texts)
    assert sorted(outputs) == [
        "attention_weights",
        "output_ids",
        "outputs",
        "status",
    ]
    source_ids = translator.encode(tf.constant(texts))
    ids, attention = translator.decoder.greedy(
        source_ids, return_attention_scores=True
    )
    np.testing.assert_array_equal(outputs["output_ids"], ids)
    expected = np.asarray(attention)[:, :, -1].mean(axis=2)
    np.testing.assert_allclose(
        outputs["attention_weights"], expected, atol=1e-6
    )
    assert outputs["attention_weights"].shape == (2, MAX_OUTPUT_LENGTH, 5)
    detokenized = target_tokenizer.detokenize(ids).numpy().tolist()
    assert outputs["outputs"].numpy().tolist() == detokenized
    assert translator.translate(texts, batch_size=1) == [
        t.decode() for t in detokenized
    ]


def test_beam_outputs(parts):
    model, source_tokenizer, target_tokenizer = parts
    translator = Translator(
        model,
        source_tokenizer,
        target_tokenizer,
        max_output_length=MAX_OUTPUT_LENGTH,
        beam_width=3,
    )
    outputs = translator(["um dois 3", "dois"])
    assert sorted(outputs) == ["output_ids", "outputs", "scores", "status"]
    ids, scores = translator.decoder.beam(
        translator.encode(tf.constant(["um dois 3", "dois"])), beam_width=3
    )
    np.testing.assert_array_equal(outputs["output_ids"], ids)
    np.testing.assert_allclose(outputs["scores"], scores, rtol=1e-5)


def test_export_loads_and_answers_like_the_translator(
    parts, greedy_translator, tmp_path
):
    _, source_tokenizer, target_tokenizer = parts
    translator = greedy_translator
    path = export_translator(tmp_path / "translator", translator)
    assert path == os.path.join(tmp_path, "translator", "1")
    assets = tmp_path / "translator" / "1" / "assets"
    assert load_vocabulary(assets / "source_vocabulary.txt") == (
        source_tokenizer.get_vocabulary()
    )
    assert load_vocabulary(assets / "target_vocabulary.txt") == (
        target_tokenizer.get_vocabulary()
    )
    serving = tf.saved_model.load(os.fspath(path)).signatures["serving_default"]
    texts = tf.constant(["um dois 3", "", "palavra desconhecida"])
    served = serving(texts=texts)
    expected = translator(texts)
    assert served["outputs"].dtype == tf.string
    for key in expected:
        np.testing.assert_array_equal(served[key], expected[key])
    assert serving(texts=tf.constant([], tf.string))["outputs"].shape == (0,)
    # A blank source translates to nothing.
    # (U+3000 and U+200B are blanks Python's strip keeps or normalises away.)
    blank = serving(texts=tf.constant(["", "   ", "\u3000\u200b", "um dois 3"]))
    assert list(blank["outputs"].numpy()[:3]) == [b"", b"", b""]
    assert np.all(blank["output_ids"].numpy()[:3] == 0)
    assert np.all(blank["attention_weights"].numpy()[:3] == 0)
    assert blank["outputs"].numpy()[3] == served["outputs"].numpy()[0]
    assert blank["status"].numpy().tolist() == [b"empty"] * 3 + [b"ok"]


def serve_in_tf1_session(path, texts):
    """`serving_default`'s outputs for `texts`, as TF Serving runs it.

    The SavedModel is loaded in a TF1 session (its initializer and restore
    op run, as in the model server and `saved_model_cli run`) and the
    signature's tensors are fetched by name.
    """
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(
            session, ["serve"], path
        )
        signature = meta_graph.signature_def["serving_default"]
        return session.run(
            {key: info.name for key, info in signature.outputs.items()},
            feed_dict={signature.inputs["texts"].name: texts},
        )


def test_export_restores_through_the_graph_like_a_model_server(
    greedy_translator, tmp_path
):
    # TF Serving and `saved_model_cli run` run the graph's restore op and
    # then the signature's tensors, in a TF1 session: the variables the
    # signature reads must be the ones the checkpoint fills.
    translator = greedy_translator
    path = export_translator(tmp_path / "translator", translator)
    texts = ["um dois 3", "", "palavra desconhecida"]
    served = serve_in_tf1_session(path, texts)
    expected = translator(tf.constant(texts))
    assert set(served) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(served[key], expected[key])
    # Each variable is saved once, under the handle the signature reads.
    checkpoint = os.path.join(path, "variables", "variables")
    saved = [
        name
        for name, _ in tf.train.list_variables(checkpoint)
        if name.endswith("VARIABLE_VALUE")
    ]
    assert len(saved) == len(translator.serving_function().variables)


@pytest.mark.parametrize(
    "truncate, status", [(False, b"too_long"), (True, b"truncated")]
)
def test_long_sources_are_rejected_or_truncated(parts, truncate, status):
    translator = make_greedy_translator(
        parts, max_source_length=4, truncate=truncate
    )
    texts = ["um dois 1 2 3 4", "um", b"\xc3("]
    outputs = translator(tf.constant(texts))
    assert outputs["status"].numpy().tolist() == [
        status,
        b"ok",
        b"invalid_utf8",
    ]
    alone = translator(["um dois 1 2 3 4"])["outputs"].numpy()[0]
    assert outputs["outputs"].numpy()[0] == alone
    assert (alone == b"") != truncate
    assert outputs["outputs"].numpy()[2] == b""


def test_bad_arguments(parts):
    model, source_tokenizer, target_tokenizer = parts
    with pytest.raises(ValueError, match="beam_width"):
        Translator(model, source_tokenizer, target_tokenizer, beam_width=0)
    with pytest.raises(ValueError, match="max_source_length"):
        Translator(
            model, source_tokenizer, target_tokenizer, max_source_length=1
        )
    with pytest.raises(ValueError, match="SentencePieceTokenizer` or a"):
        Translator(model, object(), target_tokenizer)
    translator = Translator(model, source_tokenizer, target_tokenizer)
    with pytest.raises(ValueError, match=r"\(batch,\) batch of strings"):
        translator([["a"]])
    with pytest.raises(ValueError, match="must be a `Translator`"):
        export_translator("/tmp/unused", model)


def test_export_leaves_the_translator_and_its_parts_unchanged(parts, tmp_path):
    translator = make_greedy_translator(parts)  # a fresh one, never exported
    objects = (translator, *parts)
    before = state_of(*objects)
    export_translator(tmp_path / "translator", translator)
    assert state_of(*objects) == before


def test_greedy_is_itself_or_a_greedy_copy(parts, greedy_translator):
    assert greedy_translator.greedy() is greedy_translator
    model, source_tokenizer, target_tokenizer = parts
    beam = Translator(
        model,
        source_tokenizer,
        target_tokenizer,
        max_output_length=MAX_OUTPUT_LENGTH,
        beam_width=3,
        length_penalty=0.2,
        max_source_length=4,
    )
    greedy = beam.greedy()
    assert greedy.beam_width == 1 and greedy.model is model
    assert (greedy.max_output_length, greedy.max_source_length) == (
        MAX_OUTPUT_LENGTH,
        4,
    )
    assert greedy.length_penalty == 0.2
    assert "attention_weights" in greedy(["um dois 3"])
    assert beam.beam_width == 3  # unchanged


@pytest.fixture(scope="module")
def sentencepiece_translator(tmp_path_factory):
    """A greedy `Translator` of an untrained model, SentencePiece both sides."""
    return tiny_sentencepiece.sentencepiece_translator(
        tmp_path_factory.mktemp("sentencepiece"),
        max_output_length=MAX_OUTPUT_LENGTH,
        max_source_length=40,
    )


def test_sentencepiece_outputs_are_the_detokenized_ids(
    sentencepiece_translator,
):
    translator = sentencepiece_translator
    texts = [source for source, _ in tiny_sentencepiece.CASED_PAIRS[:3]]
    outputs = translator(texts)
    detokenized = translator.target_tokenizer.detokenize(outputs["output_ids"])
    np.testing.assert_array_equal(outputs["outputs"], detokenized)
    # The target side reads back as written: cased, with punctuation.
    target = translator.target_tokenizer
    reference = tiny_sentencepiece.CASED_PAIRS[5][1]
    assert target.detokenize(target([reference])).numpy()[0] == (
        reference.encode()
    )
    ids = translator.encode(tf.constant(texts)).numpy()
    source_ids = translator.source_tokenizer(texts).to_list()
    assert ids[:, 0].tolist() == [translator.source_tokenizer.start_id] * 3
    assert [
        row[: len(full)] for row, full in zip(ids.tolist(), source_ids)
    ] == (source_ids)


def test_sentencepiece_export_serves_like_the_translator(
    sentencepiece_translator, tmp_path
):
    translator = sentencepiece_translator
    path = export_translator(tmp_path / "translator", translator)
    assets = tmp_path / "translator" / "1" / "assets"
    assert (assets / "source_sentencepiece.model").read_bytes() == (
        translator.source_tokenizer.model
    )
    assert (assets / "target_sentencepiece.model").read_bytes() == (
        translator.target_tokenizer.model
    )
    texts = [
        tiny_sentencepiece.CASED_PAIRS[0][0],
        "",
        "Olá, Mundo!",
        "\u3000",
        tiny_sentencepiece.CASED_PAIRS[9][0],
    ]
    expected = translator.translate(texts)
    # A process that never imports keras_attention answers the same.
    assert run_saved_model_in_fresh_process(path, texts, expected) == expected
    # So does a TF1 session that runs the graph's initializer and restore
    # op, as TF Serving and `saved_model_cli run` do: the SentencePiece
    # resources are created by the initializer.
    inputs = texts + [b"\xc3("]
    served = serve_in_tf1_session(path, inputs)
    assert [t.decode() for t in served["outputs"][:5]] == expected
    assert served["status"].tolist() == [
        b"ok",
        b"empty",
        b"ok",
        b"empty",
        b"ok",
        b"invalid_utf8",
    ]
