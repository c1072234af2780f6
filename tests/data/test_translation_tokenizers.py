import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data import translation_tokenizers
from keras_attention.data.translation import TOKENIZER_FILES
from keras_attention.data.translation import learn_translation_tokenizers
from keras_attention.data.translation import make_translation_dataset
from keras_attention.data.translation import make_translation_datasets
from keras_attention.data.translation import reference_normalizer
from keras_attention.text import SentencePieceTokenizer
from keras_attention.text import load_vocabulary
from tests.serving.tiny_sentencepiece import CASED_PAIRS

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


def test_sentencepiece_tokenizers_are_cased_saved_and_reloaded(tmp_path):
    paths = [tmp_path / name for name in TOKENIZER_FILES["sentencepiece"]]
    source, target = translation_tokenizers(
        CASED_PAIRS, 38, paths, tokenizer="sentencepiece"
    )
    assert isinstance(target, SentencePieceTokenizer)
    assert source.add_start_end and target.add_start_end
    assert [path.read_bytes() for path in paths] == [source.model, target.model]
    reference = CASED_PAIRS[3][1]
    assert target.detokenize(target([reference])).numpy()[0].decode() == (
        reference
    )
    reloaded = translation_tokenizers(
        [], 38, paths, reuse=True, tokenizer="sentencepiece"
    )
    assert [t.model for t in reloaded] == [source.model, target.model]
    # Natural text is compared as written; WordPiece's normalised.
    assert reference_normalizer(target) is None
    wordpiece = translation_tokenizers(PAIRS, 60, _paths(tmp_path))[1]
    assert reference_normalizer(wordpiece)(["Olá, Mundo!"]) == ["ola , mundo !"]


def test_unknown_tokenizer_kind(tmp_path):
    with pytest.raises(ValueError, match="Received: tokenizer='bpe'"):
        translation_tokenizers(PAIRS, 60, _paths(tmp_path), tokenizer="bpe")


def test_make_translation_datasets_shuffles_training_only(tmp_path):
    source, target = translation_tokenizers(
        CASED_PAIRS,
        38,
        [tmp_path / name for name in TOKENIZER_FILES["sentencepiece"]],
        tokenizer="sentencepiece",
    )
    train, validation = make_translation_datasets(
        CASED_PAIRS, CASED_PAIRS[:5], source, target, seed=1, batch_size=4
    )
    held_out = make_translation_dataset(
        CASED_PAIRS[:5], source, target, batch_size=4, length_policy="truncate"
    )
    for (inputs, labels), (expected_inputs, expected_labels) in zip(
        validation, held_out
    ):
        np.testing.assert_array_equal(labels, expected_labels)
        np.testing.assert_array_equal(
            inputs["source_ids"], expected_inputs["source_ids"]
        )
    assert validation.cardinality().numpy() == 2
    first, second = (
        [ids.numpy().tolist() for ids, _ in train.map(lambda x, y: (y, y))]
        for _ in range(2)
    )
    assert first != second  # reshuffled every epoch
    assert sum(len(batch) for batch in first) == len(CASED_PAIRS)
