"""Small TFDS builders with the split layouts of real datasets.

`tfds.testing.mock_data` serves any split name, so it cannot show how the
loaders treat a dataset's real splits; these builders are generated offline
(`prepare(data_dir)`) with the layouts of real ones: GLUE's unlabelled test
split, a train-only dataset, one with train and validation only, and
translation datasets with and without a validation split. They register
under their snake_case names (`ka_test_glue_like`, ...).
"""

import tensorflow_datasets as tfds
from etils import epath

_FEATURES = dict(
    text=tfds.features.Text(),
    label=tfds.features.ClassLabel(names=["no", "yes"]),
)


class _Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
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


class KaTestSupervised(tfds.core.GeneratorBasedBuilder):
    """A title and a body, classified by topic; supervised (body, topic)."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = epath.Path(__file__)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "title": tfds.features.Text(),
                    "body": tfds.features.Text(),
                    "topic": tfds.features.ClassLabel(names=["a", "b"]),
                }
            ),
            supervised_keys=("body", "topic"),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(20),
            "test": self._generate_examples(4),
        }

    def _generate_examples(self, size):
        for i in range(size):
            yield (
                i,
                {"title": f"title {i}", "body": f"body {i}", "topic": i % 2},
            )


class _TranslationBuilder(
    tfds.core.GeneratorBasedBuilder, skip_registration=True
):
    """`de` sentences `'satz <i>'`, `en` ones `'sentence <i>'`."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = epath.Path(__file__)
    SPLITS = {}  # name -> size

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.Translation(languages=["de", "en"]),
            supervised_keys=("de", "en"),
        )

    def _split_generators(self, dl_manager):
        return {
            name: self._generate_examples(name, size)
            for name, size in self.SPLITS.items()
        }

    def _generate_examples(self, name, size):
        for i in range(size):
            yield i, {"de": f"satz {name} {i}", "en": f"sentence {name} {i}"}


class KaTestWmtLike(_TranslationBuilder):
    SPLITS = {"train": 40, "validation": 6, "test": 6}


class KaTestParaLike(_TranslationBuilder):
    SPLITS = {"train": 40}


BUILDERS = (
    KaTestGlueLike,
    KaTestTrainOnly,
    KaTestNoTest,
    KaTestSupervised,
    KaTestWmtLike,
    KaTestParaLike,
)


def prepare(data_dir):
    """Generates every builder's data under `data_dir`; returns it."""
    for builder in BUILDERS:
        builder(data_dir=data_dir).download_and_prepare()
    return str(data_dir)
