import pytest
import tensorflow as tf

from keras_attention.data import translation_tokenizers
from keras_attention.data.translation import learn_translation_tokenizers
from keras_attention.text import load_vocabulary

PAIRS = [
    ("o gato sentou no tapete", "the cat sat on the mat"),
    ("o cão correu no parque", "the dog ran in the park"),
] * 10
OTHER_PAIRS = [("uma casa azul", "a blue house")] * 20


def _paths(tmp_path):
    return [str(tmp_path / "source.txt"), str(tmp_path / "target.txt")]


def test_learns_as_learn_translation_tokenizers_and_saves(tmp_path):
    paths = _paths(tmp_path)
    tokenizers = translation_tokenizers(PAIRS, 60, paths)
    expected = learn_translation_tokenizers(PAIRS, 60)
    for tokenizer, reference, path in zip(tokenizers, expected, paths):
        assert tokenizer.get_vocabulary() == reference.get_vocabulary()
        assert load_vocabulary(path) == tokenizer.get_vocabulary()
        assert tokenizer.add_start_end
    source, target = tokenizers
    assert "gato" in source.get_vocabulary()
    assert "cat" in target.get_vocabulary()


def test_a_dataset_of_pairs_learns_the_same(tmp_path):
    sources, targets = zip(*PAIRS)
    dataset = tf.data.Dataset.from_tensor_slices((list(sources), list(targets)))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    from_list = translation_tokenizers(PAIRS, 60, _paths(tmp_path / "a"))
    from_dataset = translation_tokenizers(dataset, 60, _paths(tmp_path / "b"))
    for left, right in zip(from_list, from_dataset):
        assert left.get_vocabulary() == right.get_vocabulary()


def test_reuse_reloads_both_files_without_reading_the_data(tmp_path):
    paths = _paths(tmp_path)
    learned = translation_tokenizers(PAIRS, 60, paths)
    reloaded = translation_tokenizers(
        OTHER_PAIRS, 60, paths, reuse=True, lowercase=False
    )
    for first, second in zip(learned, reloaded):
        assert second.get_vocabulary() == first.get_vocabulary()
        assert not second.lowercase and second.add_start_end
    # Empty data is never read when both files are there.
    translation_tokenizers([], 60, paths, reuse=True)


def test_without_reuse_or_with_a_file_missing_both_are_learned(tmp_path):
    paths = _paths(tmp_path)
    translation_tokenizers(PAIRS, 60, paths)
    relearned = translation_tokenizers(OTHER_PAIRS, 60, paths)
    assert "casa" in load_vocabulary(paths[0])
    assert "house" in relearned[1].get_vocabulary()
    (tmp_path / "target.txt").unlink()
    source, target = translation_tokenizers(PAIRS, 60, paths, reuse=True)
    assert "gato" in source.get_vocabulary()  # not the saved "casa" one
    assert "cat" in load_vocabulary(paths[1])


def test_bad_paths():
    with pytest.raises(ValueError, match="Received: vocabulary_paths"):
        translation_tokenizers(PAIRS, 60, ["only_one.txt"])
