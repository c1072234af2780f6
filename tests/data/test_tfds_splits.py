"""TFDS splits and features in the loaders, on builders prepared offline.

See `tests/tfds_fakes.py`: `tfds.testing.mock_data` serves any split name,
so only prepared builders show how the loaders treat a dataset's splits.
"""

import pytest
import tensorflow as tf

from keras_attention.data.text_classification import (
    load_tfds_text_classification,
)
from keras_attention.data.tfds import choose_held_out_split
from keras_attention.data.tfds import hold_out
from keras_attention.data.translation import load_tfds_translation
from keras_attention.data.translation import load_tfds_translation_data
from keras_attention.data.translation import text_pairs
from tests.tfds_fakes import KaTestGlueLike
from tests.tfds_fakes import KaTestNoTest
from tests.tfds_fakes import KaTestParaLike
from tests.tfds_fakes import KaTestSupervised
from tests.tfds_fakes import KaTestTrainOnly
from tests.tfds_fakes import KaTestWmtLike
from tests.tfds_fakes import prepare


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return prepare(tmp_path_factory.mktemp("tfds"))


def _load(builder, data_dir, **kwargs):
    return load_tfds_text_classification(
        builder.name, data_dir=data_dir, **kwargs
    )


def _texts(dataset):
    return [text.decode() for text, _ in dataset.as_numpy_iterator()]


def test_hold_out_is_the_end_of_a_joined_or_sliced_train_split(data_dir):
    data = _load(KaTestNoTest, data_dir, train_split="train+validation")
    train, test = _texts(data.train), _texts(data.test)
    # The last 5 (10% of 50) held out, then the 4 unlabelled left out.
    assert len(train) + len(test) == 46 and 1 <= len(test) <= 5
    labels = [label for _, label in data.train.concatenate(data.test)]
    assert min(labels) >= 0
    assert not set(train) & set(test)
    data = _load(KaTestTrainOnly, data_dir, train_split="train[:40%]")
    train, test = _texts(data.train), _texts(data.test)
    assert (len(train), len(test)) == (18, 2)
    assert not set(train) & set(test)


def test_a_named_test_split_is_never_replaced(data_dir):
    data = _load(KaTestGlueLike, data_dir, test_split="validation[:4]")
    assert len(_texts(data.test)) == 4
    assert all(text.startswith("validation") for text in _texts(data.test))
    with pytest.raises(ValueError, match="no split 'valdation'.*validation"):
        _load(KaTestGlueLike, data_dir, test_split="valdation")
    with pytest.raises(ValueError, match="no split 'test'.*train_split"):
        _load(KaTestNoTest, data_dir, train_split="train+test")


def test_unlabelled_splits_are_rejected(data_dir):
    with pytest.raises(ValueError, match="'test' of .* is unlabelled.*valid"):
        _load(KaTestGlueLike, data_dir)
    # A few unlabelled examples in a labelled split are left out.
    data = _load(KaTestNoTest, data_dir, test_split="validation")
    assert len(_texts(data.test)) == 16  # 20 less every fifth
    data = _load(KaTestGlueLike, data_dir, test_split="validation")
    pairs = list(data.test.as_numpy_iterator())
    assert len(pairs) == 10
    for text, label in pairs:  # "validation<i>" has label i % 2
        assert label == int(text.decode()[len("validation") :]) % 2


def test_classification_keys_default_to_the_supervised_keys(data_dir):
    data = _load(KaTestSupervised, data_dir)
    assert all(text.startswith("body ") for text in _texts(data.train))
    data = _load(KaTestSupervised, data_dir, text_key="title")
    assert all(text.startswith("title ") for text in _texts(data.train))
    # Without usable supervised keys: "text" and "label".
    data = _load(KaTestNoTest, data_dir)
    assert data.class_names == ["no", "yes"]


def test_translation_keys_one_named_picks_the_other(data_dir):
    def first_pair(**kwargs):
        dataset, keys = load_tfds_translation(
            KaTestWmtLike.name, data_dir=data_dir, **kwargs
        )
        source, target = next(dataset.as_numpy_iterator())
        return keys, source.decode().split()[0], target.decode().split()[0]

    assert first_pair() == (("de", "en"), "satz", "sentence")
    assert first_pair(source_key="en") == (("en", "de"), "sentence", "satz")
    assert first_pair(target_key="de") == (("en", "de"), "sentence", "satz")
    with pytest.raises(ValueError, match="must differ.*'en' for both"):
        first_pair(source_key="en", target_key="en")


def test_translation_rejects_non_text_features_and_unknown_splits(data_dir):
    with pytest.raises(
        ValueError,
        match="`target_key` must name a text.*target_key='label'",
    ):
        load_tfds_translation(
            KaTestGlueLike.name,
            data_dir=data_dir,
            source_key="text",
            target_key="label",
        )
    # Joined and sliced splits are checked part by part.
    dataset, _ = load_tfds_translation(
        KaTestWmtLike.name, split="train+validation[:2]", data_dir=data_dir
    )
    assert len(list(dataset)) == 42
    with pytest.raises(ValueError, match="no split 'valid'.*'validation'"):
        load_tfds_translation(
            KaTestWmtLike.name, split="train+valid", data_dir=data_dir
        )


# The hold-out policy itself (`keras_attention.data.tfds`).


def test_choose_held_out_split(data_dir):
    builder = KaTestParaLike(data_dir=data_dir)
    name = KaTestParaLike.name
    assert choose_held_out_split(name, builder, "validation", "validation") is (
        None
    )
    assert choose_held_out_split(name, builder, "train[:5]", "validation") == (
        "train[:5]"
    )
    with pytest.raises(ValueError, match="no split 'test'.*Received: eval="):
        choose_held_out_split(name, builder, "test", "validation", "eval")


@pytest.mark.parametrize(
    "position, num_train, expected",
    [("end", None, [8, 9]), ("start", None, [0, 1]), ("start", 5, [0])],
)
def test_hold_out_positions(position, num_train, expected):
    train, held_out, count = hold_out(
        tf.data.Dataset.range(10),
        0.2,
        num_train=num_train,
        position=position,
    )
    assert [int(i) for i in held_out] == expected and count == len(expected)
    assert sorted(int(i) for i in train.concatenate(held_out)) == list(
        range(10)
    )


def test_hold_out_errors():
    with pytest.raises(ValueError, match="too few examples.*Received: 1 ex"):
        hold_out(tf.data.Dataset.range(1), 0.5, name="tiny")
    with pytest.raises(ValueError, match="Received: position='middle'"):
        hold_out(tf.data.Dataset.range(4), 0.5, position="middle")
    with pytest.raises(ValueError, match="fraction must be in"):
        hold_out(tf.data.Dataset.range(4), 1.0)


def test_translation_data_holds_out_without_a_validation_split(data_dir):
    data = load_tfds_translation_data(
        KaTestParaLike.name, data_dir=data_dir, max_train_examples=20
    )
    train = text_pairs(data.train)
    held_out = text_pairs(data.held_out)
    assert (len(train), len(held_out)) == (20, 2)  # 10% of what trains
    assert data.held_out_split == "the first 2 pairs of train"
    assert data.keys == ("de", "en")
    assert not set(train) & set(held_out)
    data = load_tfds_translation_data(KaTestWmtLike.name, data_dir=data_dir)
    assert data.held_out_split == "validation"
    assert len(text_pairs(data.held_out)) == 6
    with pytest.raises(ValueError, match="no split 'validation'.*held_out_"):
        load_tfds_translation_data(
            KaTestParaLike.name,
            held_out_split="validation[:2]",
            data_dir=data_dir,
        )
