"""Tests of WordPiece normalisation, vocabulary learning and vocabulary files.

`reference_words` is an independent pure-Python statement of what
"normalised" means (`unicodedata` instead of the tensorflow-text ops).
"""

import collections
import random
import string
import unicodedata

import pytest
import tensorflow as tf

from keras_attention.text.wordpiece_vocabulary import RESERVED_TOKENS
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary
from keras_attention.text.wordpiece_vocabulary import load_vocabulary
from keras_attention.text.wordpiece_vocabulary import normalize_text
from keras_attention.text.wordpiece_vocabulary import save_vocabulary
from keras_attention.text.wordpiece_vocabulary import split_words

WORDS = (
    "play playing played player replay the a cat cats dog dogs café naïve "
    "Élan résumé ÜBER Straße ﬁne quick brown fox jumps over lazy"
).split()
PUNCTUATION = [",", ".", "!", "?", "'", "«", "»", "—"]


def make_corpus(num_sentences=120, seed=0):
    """Sentences of `WORDS` with punctuation glued on or spaced out."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(num_sentences):
        words = rng.choices(WORDS, k=rng.randint(3, 8))
        text = " ".join(words)
        text += rng.choice(PUNCTUATION) + rng.choice(["", " ", "\t"])
        sentences.append(text.replace(" ", rng.choice([" ", "  "]), 1))
    return sentences


def _is_punctuation(char):
    return char in string.punctuation or unicodedata.category(char).startswith(
        "P"
    )


def reference_words(text, lowercase=True, normalization="nfd_strip_accents"):
    """Normalises and splits like BERT's basic tokenizer, in pure Python."""
    if normalization == "nfd_strip_accents":
        text = unicodedata.normalize("NFD", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    elif normalization == "nfkc":
        text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.lower()
    words = []
    for chunk in text.split():
        word = ""
        for char in chunk:
            if _is_punctuation(char):
                words += [word, char] if word else [char]
                word = ""
            else:
                word += char
        if word:
            words.append(word)
    return words


def decode(tensor):
    return [word.decode("utf-8") for word in tensor.numpy().tolist()]


@pytest.mark.parametrize(
    "lowercase,normalization",
    [(True, "nfd_strip_accents"), (True, "nfkc"), (False, None)],
)
def test_split_words_matches_python_reference(lowercase, normalization):
    texts = make_corpus(20, seed=1) + ["Héllo,wörld!!  ﬁne\u00a0«ok»", ""]
    words = split_words(tf.constant(texts), lowercase, normalization)
    assert isinstance(words, tf.RaggedTensor)
    for text, row in zip(texts, words):
        assert decode(row) == reference_words(text, lowercase, normalization)


def test_normalize_text_options():
    text = tf.constant("Ｃafé ﬁne")
    assert normalize_text(text).numpy().decode() == "ｃafe ﬁne"
    assert normalize_text(text, normalization="nfkc").numpy().decode() == (
        "café fine"
    )
    assert normalize_text(text, False, None).numpy().decode() == "Ｃafé ﬁne"
    # The scalar path keeps the shape.
    assert split_words(text).shape == (2,)


def test_learned_vocabulary_layout():
    vocabulary = learn_wordpiece_vocabulary(make_corpus(), vocabulary_size=120)
    assert vocabulary[:4] == list(RESERVED_TOKENS)
    assert len(vocabulary) <= 120
    assert len(set(vocabulary)) == len(vocabulary)
    # Frequent words are whole tokens.
    assert {"the", "play", "playing", "cafe", "straße"} <= set(vocabulary)


@pytest.mark.parametrize("vocabulary_size", [60, 80])
def test_small_vocabulary_keeps_suffix_forms_of_its_alphabet(vocabulary_size):
    corpus = make_corpus()
    vocabulary = learn_wordpiece_vocabulary(corpus, vocabulary_size)
    assert len(vocabulary) <= vocabulary_size
    alphabet = {token for token in vocabulary if len(token) == 1}
    assert all("##" + char in vocabulary for char in alphabet)
    words = [word for text in corpus for word in reference_words(text)]
    characters = collections.Counter("".join(words))
    # (size - 4 reserved) // 2 characters fit; the most frequent ones stay
    # (the learner also drops those seen only in words with a dropped one).
    fitting = (vocabulary_size - len(RESERVED_TOKENS)) // 2
    if fitting >= len(characters):
        assert alphabet == set(characters)
    else:
        ranked = sorted(characters, key=lambda c: (-characters[c], c))
        assert alphabet <= set(ranked[:fitting])  # Ties: alphabetical.
        assert len(alphabet) >= fitting - 4


def test_learning_normalises_like_tokenizing():
    corpus = make_corpus()
    vocabulary = learn_wordpiece_vocabulary(corpus, vocabulary_size=200)
    alphabet = {token for token in vocabulary if len(token) == 1}
    assert "é" not in alphabet and "E" not in alphabet and "e" in alphabet
    assert "ß" in alphabet  # Not a combining mark, kept.
    cased = learn_wordpiece_vocabulary(
        corpus, vocabulary_size=200, lowercase=False, normalization=None
    )
    cased_alphabet = {token for token in cased if len(token) == 1}
    assert {"É", "é", "Ü", "ﬁ"} <= cased_alphabet
    nfkc = learn_wordpiece_vocabulary(
        corpus, vocabulary_size=200, normalization="nfkc"
    )
    nfkc_alphabet = {token for token in nfkc if len(token) == 1}
    assert "é" in nfkc_alphabet and "ﬁ" not in nfkc_alphabet


def test_dataset_and_list_give_the_same_vocabulary():
    corpus = make_corpus()
    from_list = learn_wordpiece_vocabulary(corpus, vocabulary_size=60)
    dataset = tf.data.Dataset.from_tensor_slices(corpus)
    from_dataset = learn_wordpiece_vocabulary(
        dataset, vocabulary_size=60, batch_size=7
    )
    assert from_list == from_dataset


def test_extra_reserved_tokens_and_small_size_with_large_alphabet():
    letters = [chr(code) for code in range(0x3B1, 0x3C9)]  # 24 Greek letters
    corpus = ["".join(random.Random(i).sample(letters, 5)) for i in range(50)]
    reserved = list(RESERVED_TOKENS) + ["[MASK]"]
    vocabulary = learn_wordpiece_vocabulary(
        corpus, vocabulary_size=30, reserved_tokens=reserved
    )
    assert vocabulary[:5] == reserved
    assert len(vocabulary) <= 30


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"data": [], "vocabulary_size": 50}, "no words"),
        ({"data": ["  ", "\t"], "vocabulary_size": 50}, "no words"),
        ({"data": "one string", "vocabulary_size": 50}, "single string"),
        ({"data": ["ok", 3], "vocabulary_size": 50}, "must hold strings"),
        (
            {"data": tf.data.Dataset.range(3), "vocabulary_size": 50},
            "dataset of string",
        ),
        ({"data": ["ok"], "vocabulary_size": 5}, "vocabulary_size"),
        (
            {"data": ["ok"], "vocabulary_size": 50, "normalization": "nfc"},
            "normalization",
        ),
        (
            {"data": ["ok"], "vocabulary_size": 50, "reserved_tokens": []},
            "reserved_tokens",
        ),
        (
            {
                "data": ["ok"],
                "vocabulary_size": 50,
                "reserved_tokens": ["[PAD]", "[PAD]"],
            },
            "repeat",
        ),
        ({"data": ["ok"], "vocabulary_size": 50, "batch_size": 0}, "batch"),
    ],
)
def test_learning_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        learn_wordpiece_vocabulary(**kwargs)


def test_vocabulary_file_round_trip(tmp_path):
    vocabulary = list(RESERVED_TOKENS) + ["straße", "##é", "日", "\u2028x"]
    path = tmp_path / "vocab.txt"
    save_vocabulary(vocabulary, path)
    assert path.read_text(encoding="utf-8").count("\n") == len(vocabulary)
    assert load_vocabulary(path) == vocabulary
    assert load_vocabulary(str(path)) == vocabulary


def test_vocabulary_file_with_windows_line_endings(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\r\n[UNK]\r\nthe")
    assert load_vocabulary(path) == ["[PAD]", "[UNK]", "the"]


def test_vocabulary_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_vocabulary(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_vocabulary(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("[PAD]\n\nthe\n")
    with pytest.raises(ValueError, match="Line 2"):
        load_vocabulary(blank)
    with pytest.raises(ValueError, match="line break"):
        save_vocabulary(["[PAD]", "a\nb"], tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="empty"):
        save_vocabulary([], tmp_path / "bad.txt")
