"""Tests of `learn_or_load_wordpiece_tokenizer`: learned once, reloaded."""

import pytest

from keras_attention.text import learn_or_load_wordpiece_tokenizer
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary
from keras_attention.text.wordpiece_vocabulary import load_vocabulary
from keras_attention.text.wordpiece_vocabulary import save_vocabulary

CORPUS = ["the cat sat on the mat", "the dog ran", "a cat ran"] * 10


def test_learns_and_saves_the_vocabulary(tmp_path):
    path = tmp_path / "vocabulary.txt"
    tokenizer = learn_or_load_wordpiece_tokenizer(CORPUS, 50, path)
    expected = learn_wordpiece_vocabulary(CORPUS, 50)
    assert tokenizer.get_vocabulary() == expected == load_vocabulary(path)
    assert not tokenizer.add_start_end


def test_reuse_reloads_the_file_and_reads_no_text(tmp_path):
    path = tmp_path / "vocabulary.txt"
    save_vocabulary(["[PAD]", "[UNK]", "[START]", "[END]", "a", "##a"], path)
    tokenizer = learn_or_load_wordpiece_tokenizer(
        iter(()), 50, path, reuse=True, add_start_end=True
    )
    assert tokenizer.get_vocabulary()[4:] == ["a", "##a"]
    assert tokenizer.add_start_end
    # Without `reuse` the file is learned again and overwritten.
    learn_or_load_wordpiece_tokenizer(CORPUS, 50, path)
    assert "cat" in load_vocabulary(path)


def test_reuse_without_a_file_learns(tmp_path):
    path = tmp_path / "vocabulary.txt"
    tokenizer = learn_or_load_wordpiece_tokenizer(
        CORPUS, 50, path, reuse=True, lowercase=False, normalization=None
    )
    assert path.is_file() and not tokenizer.lowercase
    assert tokenizer.normalization is None


def test_errors_name_the_problem(tmp_path):
    missing_dir = tmp_path / "no_such_dir" / "vocabulary.txt"
    with pytest.raises(FileNotFoundError, match="directory does not exist"):
        learn_or_load_wordpiece_tokenizer(CORPUS, 50, missing_dir)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        learn_or_load_wordpiece_tokenizer(CORPUS, 50, tmp_path)
    with pytest.raises(ValueError, match="no words"):
        learn_or_load_wordpiece_tokenizer([], 50, tmp_path / "v.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="vocabulary file is empty"):
        learn_or_load_wordpiece_tokenizer(CORPUS, 50, empty, reuse=True)
