"""TFDS split handling of the loaders, on small builders prepared offline.

`tfds.testing.mock_data` serves any split name, so it cannot show how the
loaders treat a dataset's real splits; these builders have the layouts of
real ones (GLUE's unlabelled test split, a train-only dataset, a dataset
with train and validation only) and are generated in a temporary directory.
"""

import pytest
import tensorflow_datasets as tfds
from etils import epath

from keras_attention.data.text_classification import (
    load_tfds_text_classification,
)

_FEATURES = dict(
    text=tfds.features.Text(),
    label=tfds.features.ClassLabel(names=["no", "yes"]),
)


class _Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    # Subclasses register under their snake_case names ("ka_test_...").
    """Examples `'<split><i>'`, labels `i % 2` (or -1 when unlabelled)."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = epath.Path(__file__)
    SPLITS = {}  # name -> (size, labelled)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(_FEATURES)
        )

    def _split_generators(self, dl_manager):
        return {
            name: self._generate_examples(name, size, labelled)
            for name, (size, labelled) in self.SPLITS.items()
        }

    def _generate_examples(self, name, size, labelled):
        for i in range(size):
            label = i % 2 if labelled else -1
            if labelled == "some" and i % 5 == 4:
                label = -1  # as SNLI's few unlabelled examples
            yield i, {"text": f"{name}{i}", "label": label}


class KaTestGlueLike(_Builder):
    SPLITS = {
        "train": (40, True),
        "validation": (10, True),
        "test": (10, False),
    }


class KaTestTrainOnly(_Builder):
    SPLITS = {"train": (50, True)}


class KaTestNoTest(_Builder):
    SPLITS = {"train": (30, True), "validation": (20, "some")}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    for builder in (KaTestGlueLike, KaTestTrainOnly, KaTestNoTest):
        builder(data_dir=path).download_and_prepare()
    return str(path)


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
