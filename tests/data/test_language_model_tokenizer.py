"""`learn_or_load_tokenizer`: a language-model run's saved tokenizer."""

import pytest

from keras_attention.data import TOKENIZER_FILES
from keras_attention.data import learn_or_load_tokenizer
from keras_attention.text import CharacterTokenizer

DOCUMENTS = ["the cat sat on the mat", "The dog ran under the tree"] * 5


def vocabulary(tokenizer):
    if isinstance(tokenizer, CharacterTokenizer):
        return tokenizer.vocabulary
    return tokenizer.get_vocabulary()


@pytest.mark.parametrize("kind", sorted(TOKENIZER_FILES))
def test_learns_saves_and_reloads_on_resume(kind, tmp_path):
    learned = learn_or_load_tokenizer(
        kind, DOCUMENTS, tmp_path, vocabulary_size=60
    )
    path = tmp_path / TOKENIZER_FILES[kind]
    assert path.is_file()
    saved = path.read_bytes()
    # Resuming reloads the file and ignores the documents.
    reloaded = learn_or_load_tokenizer(
        kind, ["xyz"], tmp_path, vocabulary_size=60, reuse=True
    )
    assert vocabulary(reloaded) == vocabulary(learned)
    assert path.read_bytes() == saved
    # Not resuming learns from the documents again.
    fresh = learn_or_load_tokenizer(kind, ["xyz"], tmp_path, vocabulary_size=60)
    assert vocabulary(fresh) != vocabulary(learned)


def test_character_options_and_lowercase(tmp_path):
    tokenizer = learn_or_load_tokenizer(
        "character", DOCUMENTS, tmp_path, lowercase=False
    )
    assert isinstance(tokenizer, CharacterTokenizer)
    assert "T" in tokenizer.vocabulary
    lowered = learn_or_load_tokenizer("character", DOCUMENTS, tmp_path)
    assert "T" not in lowered.vocabulary


def test_unknown_kind_names_the_value(tmp_path):
    with pytest.raises(ValueError, match="Received: kind='bpe'"):
        learn_or_load_tokenizer("bpe", DOCUMENTS, tmp_path)
