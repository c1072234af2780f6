import pytest
import tensorflow as tf

from keras_attention.text.character_tokenizer import CharacterTokenizer


def test_vocabulary_has_reserved_tokens_first():
    tokenizer = CharacterTokenizer.from_texts(["ba", "ab-"])
    assert tokenizer.vocabulary == ["", "[UNK]", "[START]", "[END]"] + [
        "-",
        "a",
        "b",
    ]
    assert tokenizer.vocabulary_size == 7
    assert (tokenizer.padding_id, tokenizer.oov_id) == (0, 1)
    assert (tokenizer.start_id, tokenizer.end_id) == (2, 3)


def test_tokenize_and_detokenize_round_trip():
    tokenizer = CharacterTokenizer.from_texts(["1994-09-27", "é"])
    texts = ["1994-09-27", "27", "é9"]
    ids = tokenizer.tokenize(texts)
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32
    assert ids.row_lengths().numpy().tolist() == [10, 2, 2]
    # Every character maps to its index in the vocabulary.
    vocabulary = tokenizer.vocabulary
    assert ids.to_list()[1] == [vocabulary.index("2"), vocabulary.index("7")]
    decoded = tokenizer.detokenize(ids).numpy()
    assert [text.decode("utf-8") for text in decoded] == texts


def test_scalar_input_gives_dense_ids():
    tokenizer = CharacterTokenizer(list("abc"))
    ids = tokenizer("cab")
    assert not isinstance(ids, tf.RaggedTensor)
    assert ids.numpy().tolist() == [6, 4, 5]


def test_unknown_characters_map_to_oov():
    tokenizer = CharacterTokenizer(list("ab"))
    assert tokenizer.tokenize(["axb"]).to_list() == [[4, 1, 5]]
    assert tokenizer.detokenize([[4, 1, 5]]).numpy().tolist() == [b"a[UNK]b"]


def test_lowercase():
    tokenizer = CharacterTokenizer.from_texts(["Aug", "ÉTÉ"], lowercase=True)
    assert "A" not in tokenizer.vocabulary
    assert "é" in tokenizer.vocabulary
    upper = tokenizer.tokenize(["AUG ÉTÉ"]).to_list()
    lower = tokenizer.tokenize(["aug été"]).to_list()
    assert upper == lower
    assert 1 in upper[0]  # the space was not in the training texts


def test_detokenize_stops_at_end_and_drops_special_ids():
    tokenizer = CharacterTokenizer(list("xyz"))
    ids = [
        [2, 4, 5, 3, 6, 6],  # start x y end z z
        [4, 0, 6, 0, 0, 0],  # x pad z
        [3, 4, 4, 4, 4, 4],  # end first
    ]
    assert tokenizer.detokenize(ids).numpy().tolist() == [b"xy", b"xz", b""]


def test_works_in_tf_function_and_tf_data():
    tokenizer = CharacterTokenizer(list("0123456789-"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(texts):
        return tokenizer.detokenize(tokenizer.tokenize(texts))

    assert round_trip(tf.constant(["12-3"])).numpy().tolist() == [b"12-3"]
    dataset = tf.data.Dataset.from_tensor_slices(["1", "22"]).map(
        tokenizer.tokenize
    )
    assert [ids.numpy().tolist() for ids in dataset] == [[5], [6, 6]]


def test_save_and_load(tmp_path):
    tokenizer = CharacterTokenizer.from_texts(["héllo"], lowercase=True)
    path = tmp_path / "vocabulary.json"
    tokenizer.save(path)
    restored = CharacterTokenizer.load(path)
    assert restored.vocabulary == tokenizer.vocabulary
    assert restored.lowercase
    assert (
        restored.tokenize(["HÉLLO"]).to_list()
        == tokenizer.tokenize(["héllo"]).to_list()
    )


def test_load_rejects_other_files_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="No CharacterTokenizer file"):
        CharacterTokenizer.load(tmp_path / "missing.json")
    vocabulary = tmp_path / "vocab.txt"  # a WordPiece vocabulary
    vocabulary.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match="vocab.txt is not a CharacterTok"):
        CharacterTokenizer.load(vocabulary)
    other = tmp_path / "other.json"
    other.write_text('{"kind": "wordpiece"}')
    with pytest.raises(ValueError, match="expected the keys.*'kind'"):
        CharacterTokenizer.load(other)


def test_max_characters_keeps_most_frequent():
    tokenizer = CharacterTokenizer.from_texts(["aaab", "ac"], max_characters=2)
    assert tokenizer.vocabulary[4:] == ["a", "b"] or tokenizer.vocabulary[
        4:
    ] == ["a", "c"]
    assert tokenizer.vocabulary_size == 6


@pytest.mark.parametrize(
    "vocabulary, match",
    [(["ab"], "single character"), (["a", "a"], "repeat"), ([""], "single")],
)
def test_invalid_vocabulary(vocabulary, match):
    with pytest.raises(ValueError, match=match):
        CharacterTokenizer(vocabulary)
