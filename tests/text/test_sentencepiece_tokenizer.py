"""Tests of `SentencePieceTokenizer`, `learn_sentencepiece_model` and
`learn_or_load_sentencepiece_tokenizer`.

As for `WordPieceTokenizer`, `tests.testing.run_layer_test` does not fit a
string-to-id layer without weights; its checks that apply (config round
trip, Keras serialisation, assets) are written out below.
"""

import json
import os

import keras
import numpy as np
import pytest
import sentencepiece
import tensorflow as tf

from keras_attention.text import SentencePieceTokenizer
from keras_attention.text import learn_or_load_sentencepiece_tokenizer
from keras_attention.text import learn_sentencepiece_model
from keras_attention.text.sentencepiece_tokenizer import MODEL_ASSET

PAD, UNK, START, END = 0, 1, 2, 3
CORPUS = [
    "A man in an orange hat.",
    "Two dogs run in the park.",
    "Éva sees Bob, 42 times!",
    "The man sees two dogs.",
] * 10
VOCABULARY_SIZE = 36


@pytest.fixture(scope="module")
def model():
    return learn_sentencepiece_model(CORPUS, VOCABULARY_SIZE)


def strings(tensor):
    return [text.decode("utf-8") for text in tensor.numpy().tolist()]


def test_training_is_deterministic_and_gives_the_special_ids(model):
    assert learn_sentencepiece_model(CORPUS, VOCABULARY_SIZE) == model
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    assert processor.get_piece_size() == VOCABULARY_SIZE
    special = processor.pad_id(), processor.unk_id()
    assert special + (processor.bos_id(), processor.eos_id()) == (
        PAD,
        UNK,
        START,
        END,
    )
    tokenizer = SentencePieceTokenizer(model)
    assert (tokenizer.padding_id, tokenizer.oov_id) == (PAD, UNK)
    assert (tokenizer.start_id, tokenizer.end_id) == (START, END)
    assert tokenizer.vocabulary_size == VOCABULARY_SIZE
    assert tokenizer.get_vocabulary()[:4] == ["<pad>", "<unk>", "<s>", "</s>"]


def test_ids_are_sentencepiece_s_own_and_detokenize_to_cased_text(model):
    tokenizer = SentencePieceTokenizer(model)
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    texts = CORPUS[:4]
    ids = tokenizer(texts)
    assert ids.dtype == tf.int32
    assert ids.to_list() == [processor.encode(text) for text in texts]
    # Natural text back: case, accents and punctuation as written.
    assert strings(tokenizer.detokenize(ids)) == texts
    scalar = tokenizer(texts[0])
    assert scalar.shape.rank == 1
    assert tokenizer.detokenize(scalar).numpy().decode() == texts[0]
    column = tokenizer(np.array([[texts[1]]]))
    assert column.to_list() == [processor.encode(texts[1])]


def test_start_end_and_sequence_length_frame_the_ids(model):
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    text = "The man sees two dogs."
    pieces = processor.encode(text)
    framed = SentencePieceTokenizer(model, add_start_end=True)([text])
    assert framed.to_list() == [[START, *pieces, END]]
    padded = SentencePieceTokenizer(model, sequence_length=len(pieces) + 2)
    short = processor.encode("A")
    assert padded([text, "A"]).numpy().tolist() == [
        pieces + [PAD, PAD],
        short + [PAD] * (len(pieces) + 2 - len(short)),
    ]
    cut = SentencePieceTokenizer(model, sequence_length=4, add_start_end=True)
    assert cut([text]).numpy().tolist() == [[START, *pieces[:2], END]]


def test_detokenize_reads_up_to_the_end_id(model):
    tokenizer = SentencePieceTokenizer(model, add_start_end=True)
    ids = tokenizer(["Two dogs run in the park."]).to_list()[0]
    end = ids.index(END)
    after_end = ids[:end] + [END] + ids[1:end]  # more pieces after [END]
    padded = ids + [PAD, PAD]
    out_of_range = [START, VOCABULARY_SIZE + 5, END]
    texts = strings(
        tokenizer.detokenize(
            tf.ragged.constant([after_end, padded, out_of_range])
        )
    )
    assert texts[:2] == ["Two dogs run in the park."] * 2
    assert texts[2] == sentencepiece.SentencePieceProcessor(
        model_proto=model
    ).decode([UNK])
    dense = tokenizer.detokenize(np.array([padded, padded], np.int64))
    assert strings(dense) == ["Two dogs run in the park."] * 2


def test_runs_in_tf_function_and_tf_data(model):
    tokenizer = SentencePieceTokenizer(model, add_start_end=True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(texts):
        return tokenizer.detokenize(tokenizer.tokenize(texts))

    assert strings(round_trip(tf.constant(CORPUS[:2]))) == CORPUS[:2]
    dataset = tf.data.Dataset.from_tensor_slices(CORPUS[:4]).batch(2)
    lengths = [
        ids.row_lengths().numpy().tolist()
        for ids in dataset.map(tokenizer.tokenize)
    ]
    assert lengths == [
        tokenizer(CORPUS[:2]).row_lengths().numpy().tolist(),
        tokenizer(CORPUS[2:4]).row_lengths().numpy().tolist(),
    ]


def test_copies_survive_the_original_and_clear_session(model):
    # Regression: tensorflow-text's unnamed resource belongs to a cached
    # eager kernel shared by tokenizers of the same bytes, which
    # `clear_session` deletes.
    original = SentencePieceTokenizer(model)
    copy = SentencePieceTokenizer.from_config(original.get_config())
    expected = original(CORPUS[:2]).to_list()
    del original
    keras.backend.clear_session()
    assert copy(CORPUS[:2]).to_list() == expected
    assert strings(copy.detokenize(copy(CORPUS[:2]))) == CORPUS[:2]


def test_config_round_trip_and_serialization(model):
    tokenizer = SentencePieceTokenizer(
        model, sequence_length=8, add_start_end=True, dtype="int64"
    )
    config = tokenizer.get_config()
    json.dumps(config)  # JSON-serialisable: the model travels as base64
    revived = SentencePieceTokenizer.from_config(config)
    assert revived.model == model and revived.sequence_length == 8
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(tokenizer)
    deserialized = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(serialized))
    )
    assert type(deserialized) is SentencePieceTokenizer
    np.testing.assert_array_equal(
        deserialized(CORPUS[:2]), tokenizer(CORPUS[:2])
    )
    assert deserialized(CORPUS[:1]).dtype == tf.int64


def test_model_file_and_assets(model, tmp_path):
    tokenizer = SentencePieceTokenizer(model)
    path = tmp_path / "en.model"
    tokenizer.save_model_file(path)
    from_file = SentencePieceTokenizer(str(path))
    assert from_file.model == model
    # `sentencepiece` itself reads the file.
    processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
    assert processor.decode(processor.encode(CORPUS[0])) == CORPUS[0]
    tokenizer.save_assets(str(tmp_path))
    assert (tmp_path / MODEL_ASSET).read_bytes() == model
    tokenizer.load_assets(str(tmp_path))
    other = learn_sentencepiece_model(CORPUS, VOCABULARY_SIZE - 3)
    (tmp_path / MODEL_ASSET).write_bytes(other)
    with pytest.raises(ValueError, match="differs from the model"):
        tokenizer.load_assets(str(tmp_path))


def test_a_saved_model_reloads_and_answers_the_same(model, tmp_path):
    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = SentencePieceTokenizer(model, add_start_end=True)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, texts):
            ids = self.tokenizer.tokenize(texts)
            return {
                "ids": ids.to_tensor(),
                "texts": self.tokenizer.detokenize(ids),
            }

    module = Module()
    tf.saved_model.save(module, str(tmp_path / "saved"))
    del module
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    outputs = reloaded.serve(tf.constant(CORPUS[:3]))
    assert strings(outputs["texts"]) == CORPUS[:3]
    expected = SentencePieceTokenizer(model, add_start_end=True)(CORPUS[:3])
    np.testing.assert_array_equal(outputs["ids"], expected.to_tensor())


@pytest.mark.parametrize(
    "size, message",
    [
        (400, r"too large .* Pass vocabulary_size <= \d+ "),
        (10, r"too small .* pass vocabulary_size >= \d+"),
        (4, "must be an int > 4"),
    ],
)
def test_a_vocabulary_size_the_text_cannot_give(size, message):
    with pytest.raises(ValueError, match=message + ".*Received"):
        learn_sentencepiece_model(CORPUS, size)


def test_the_suggested_vocabulary_size_trains():
    with pytest.raises(ValueError, match="<= ") as error:
        learn_sentencepiece_model(CORPUS, 400)
    largest = int(str(error.value).split("<= ")[1].split()[0])
    assert len(learn_sentencepiece_model(CORPUS, largest)) > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model_type": "word"}, "model_type"),
        ({"character_coverage": 0.0}, "character_coverage"),
    ],
)
def test_bad_training_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        learn_sentencepiece_model(CORPUS, VOCABULARY_SIZE, **kwargs)


def test_empty_corpus_and_a_lone_string():
    with pytest.raises(ValueError, match="no text"):
        learn_sentencepiece_model(["", "  "], VOCABULARY_SIZE)
    with pytest.raises(ValueError, match="not one string"):
        learn_sentencepiece_model("A man.", VOCABULARY_SIZE)


def test_bad_models_and_arguments(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="No SentencePiece model"):
        SentencePieceTokenizer(str(tmp_path / "missing.model"))
    corrupt = tmp_path / "corrupt.model"
    corrupt.write_bytes(model[: len(model) // 3] + b"\xff" * 20)
    with pytest.raises(ValueError, match="corrupt.model is not a Sentence"):
        SentencePieceTokenizer(str(corrupt))
    with pytest.raises(ValueError, match="must be the serialized"):
        SentencePieceTokenizer(["<pad>", "<unk>"])
    with pytest.raises(ValueError, match="Received: sequence_length=1"):
        SentencePieceTokenizer(model, sequence_length=1, add_start_end=True)
    with pytest.raises(ValueError, match="Received: dtype='float32'"):
        SentencePieceTokenizer(model, dtype="float32")
    tokenizer = SentencePieceTokenizer(model)
    with pytest.raises(ValueError, match="must be strings"):
        tokenizer.tokenize([1, 2])
    with pytest.raises(ValueError, match="must be integers"):
        tokenizer.detokenize([[0.5]])
    with pytest.raises(ValueError, match=r"Received: id=36"):
        tokenizer.id_to_token(VOCABULARY_SIZE)


def test_a_model_without_padding_id_zero_is_refused(tmp_path):
    import io

    writer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=writer,
        vocab_size=VOCABULARY_SIZE,
        minloglevel=2,
    )  # sentencepiece's defaults: no padding piece, unknown id 0
    with pytest.raises(ValueError, match="padding id 0.*Received: special"):
        SentencePieceTokenizer(writer.getvalue())


def test_learn_or_load_saves_atomically_and_reloads(tmp_path):
    path = tmp_path / "en.model"
    learned = learn_or_load_sentencepiece_tokenizer(
        CORPUS, VOCABULARY_SIZE, path, add_start_end=True
    )
    assert path.read_bytes() == learned.model
    assert os.listdir(tmp_path) == ["en.model"]  # no temporary file left
    assert learned.add_start_end
    # Resumed: the file is read, the (here empty) text is not.
    reloaded = learn_or_load_sentencepiece_tokenizer(
        iter(()), VOCABULARY_SIZE, path, reuse=True
    )
    assert reloaded.model == learned.model and not reloaded.add_start_end
    # Not resumed: learned again from the new text and overwritten.
    other = ["Une phrase en français."] * 20
    learn_or_load_sentencepiece_tokenizer(other, 18, path)
    assert path.read_bytes() != learned.model
    dataset = tf.data.Dataset.from_tensor_slices(CORPUS)
    from_dataset = learn_or_load_sentencepiece_tokenizer(
        dataset, VOCABULARY_SIZE, tmp_path / "b.model"
    )
    assert from_dataset.model == learned.model


def test_learn_or_load_checks_the_path_before_learning(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory does not exist"):
        learn_or_load_sentencepiece_tokenizer(
            CORPUS, VOCABULARY_SIZE, tmp_path / "nope" / "en.model"
        )
    with pytest.raises(IsADirectoryError):
        learn_or_load_sentencepiece_tokenizer(CORPUS, VOCABULARY_SIZE, tmp_path)
    corrupt = tmp_path / "en.model"
    corrupt.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="--restart"):
        learn_or_load_sentencepiece_tokenizer(
            [], VOCABULARY_SIZE, corrupt, reuse=True
        )
