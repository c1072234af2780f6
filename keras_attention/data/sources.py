"""A task's data from local files or from a TFDS dataset named by the user.

Every recipe takes either local files (`data=` with an optional
`test_data=`, or line-aligned `source_file=` and `target_file=`) or the
name of a TFDS dataset; the functions here pick the source, hold part of
the training data out when nothing else is held out, and return the same
thing whichever source it was:

- `load_text_classification`: a `TextClassificationData`, from a
  `text<TAB>label` file or a TFDS dataset with a text and a class label;
- `load_text_pairs`: a `TextPairs` of `(source, target)` strings, from a
  parallel text file, two line-aligned files or a TFDS translation
  dataset; `pair_texts` takes one side of them.

The loaders they call name the file in every error (missing, empty, a
line that does not parse) and raise a `ValueError` for an unknown TFDS
name or split.
"""

import dataclasses
import os

import tensorflow as tf

from keras_attention.data.parallel_text import load_parallel_text
from keras_attention.data.parallel_text import split_pairs
from keras_attention.data.text_classification import (
    load_tfds_text_classification,
)
from keras_attention.data.text_classification import (
    load_tsv_text_classification,
)
from keras_attention.data.tfds import HELD_OUT_FRACTION
from keras_attention.data.translation import load_parallel_files
from keras_attention.data.translation import load_tfds_translation_data
from keras_attention.data.translation import text_pairs

__all__ = [
    "TextPairs",
    "load_text_classification",
    "load_text_pairs",
    "pair_texts",
]


def _check_source(dataset, data, test_data, source_file=None, target_file=None):
    """Raises a `ValueError` unless exactly one source is named."""
    if bool(source_file) != bool(target_file):
        raise ValueError(
            "`source_file` and `target_file` go together. Received: "
            f"source_file={source_file!r}, target_file={target_file!r}"
        )
    if data and source_file:
        raise ValueError(
            "Pass either `data` or `source_file` and `target_file`. "
            f"Received: data={data!r}, source_file={source_file!r}"
        )
    if test_data and not data:
        raise ValueError(
            f"`test_data` needs `data`. Received: test_data={test_data!r}"
        )
    if not (data or source_file or dataset):
        raise ValueError(
            "Name a TFDS dataset or a local data file. Received: "
            "dataset=None, data=None"
        )


def load_text_classification(
    dataset=None,
    data=None,
    test_data=None,
    held_out_fraction=HELD_OUT_FRACTION,
    seed=0,
    max_train_examples=None,
    **tfds_kwargs,
):
    """Text classification examples from a local file or a TFDS dataset.

    Args:
        dataset: a TFDS name (`"imdb_reviews"`), used when `data` is
            `None`. Defaults to `None`.
        data: a local `text<TAB>label` file (`load_tsv_text_classification`).
            Defaults to `None`.
        test_data: a local held-out file in the same format. Defaults to
            `None`: `held_out_fraction` of `data` is held out.
        held_out_fraction: float in `(0, 1)`, the part of the training data
            held out when nothing else is. Defaults to `0.1`.
        seed: int, the local hold-out's shuffling seed. Defaults to `0`.
        max_train_examples: optional int, the most training examples kept.
            Defaults to `None` (all).
        **tfds_kwargs: `load_tfds_text_classification` arguments
            (`text_key`, `label_key`, `train_split`, `test_split`,
            `data_dir`), for a TFDS dataset.

    Returns:
        A `TextClassificationData`.

    Example:

    >>> data = load_text_classification(data="reviews.tsv")  # doctest: +SKIP
    >>> data.class_names  # doctest: +SKIP
    ['neg', 'pos']
    """
    _check_source(dataset, data, test_data)
    if data:
        loaded = load_tsv_text_classification(
            data,
            test_path=test_data,
            test_fraction=held_out_fraction,
            seed=seed,
        )
    else:
        loaded = load_tfds_text_classification(
            dataset, test_fraction=held_out_fraction, **tfds_kwargs
        )
    if max_train_examples:
        loaded.train = loaded.train.take(max_train_examples)
    return loaded


@dataclasses.dataclass
class TextPairs:
    """Training and held-out `(source, target)` pairs.

    Attributes:
        train: the training pairs: a list of `(str, str)` from local files,
            a `tf.data.Dataset` of scalar string pairs from TFDS (it may be
            large).
        held_out: the held-out pairs, a list of `(str, str)`.
        held_out_from: str, where `held_out` comes from: a file, a split, or
            the part of the training data held out.
        keys: `(source_key, target_key)`, the TFDS features read, or `None`
            for local files.
    """

    train: object
    held_out: list
    held_out_from: str
    keys: tuple = None

    def train_pairs(self):
        """`train` as a list of `(str, str)`, whatever its source."""
        if isinstance(self.train, tf.data.Dataset):
            return text_pairs(self.train)
        return self.train


def pair_texts(pairs, index):
    """The sources (`index=0`) or the targets (`index=1`) of `pairs`.

    Args:
        pairs: a list of `(source, target)` strings, or a `tf.data.Dataset`
            of scalar string pairs.
        index: `0` for the sources, `1` for the targets.

    Returns:
        A list of `str` for a list, a `tf.data.Dataset` of scalar strings
        for a dataset.

    Example:

    >>> pair_texts([("olá", "hello"), ("obrigado", "thanks")], 1)
    ['hello', 'thanks']
    """
    if index not in (0, 1):
        raise ValueError(f"`index` must be 0 or 1. Received: index={index!r}")
    if isinstance(pairs, tf.data.Dataset):
        return pairs.map(lambda *pair: pair[index])
    return [pair[index] for pair in pairs]


def _local_pairs(data, test_data, source_file, target_file, file_format):
    """`(pairs, held_out_or_None, description)` from local files."""
    if source_file:
        pairs = load_parallel_files(source_file, target_file)
        return pairs, None, os.fspath(source_file)
    pairs = load_parallel_text(data, file_format=file_format)
    if test_data:
        held_out = load_parallel_text(test_data, file_format=file_format)
        return pairs, held_out, os.fspath(test_data)
    return pairs, None, os.fspath(data)


def load_text_pairs(
    dataset=None,
    data=None,
    test_data=None,
    source_file=None,
    target_file=None,
    file_format=None,
    held_out_fraction=HELD_OUT_FRACTION,
    seed=0,
    max_train_examples=None,
    max_held_out_examples=None,
    **tfds_kwargs,
):
    """`(source, target)` pairs from local files or a TFDS dataset.

    Local pairs come from `data` (`load_parallel_text`) or from the
    line-aligned `source_file` and `target_file` (`load_parallel_files`);
    unless `test_data` is given, a shuffled `held_out_fraction` of them is
    held out. A TFDS dataset is read by `load_tfds_translation_data`, which
    holds out part of the training split when the dataset has no held-out
    split.

    Args:
        dataset: a TFDS name with its config, used without local files.
            Defaults to `None`.
        data: a local parallel text file. Defaults to `None`.
        test_data: a local held-out file in the format of `data`. Defaults
            to `None`.
        source_file: local source sentences, one per line. Defaults to
            `None`.
        target_file: local target sentences, line-aligned with
            `source_file`. Defaults to `None`.
        file_format: the format of `data` and `test_data`: `"tsv"`,
            `"underscore"` or `None` (detected). Defaults to `None`.
        held_out_fraction: float in `(0, 1)`, the part held out of the
            pairs that train when nothing else is held out. Defaults to
            `0.1`.
        seed: int, the local hold-out's shuffling seed. Defaults to `0`.
        max_train_examples: optional int, the most training pairs kept.
            Defaults to `None` (all).
        max_held_out_examples: optional int, the most held-out pairs kept.
            Defaults to `None` (all).
        **tfds_kwargs: `load_tfds_translation_data` arguments
            (`train_split`, `held_out_split`, `data_dir`, `source_key`,
            `target_key`, `builder_kwargs`), for a TFDS dataset.

    Returns:
        A `TextPairs`.

    Raises:
        FileNotFoundError: for a missing file (the message gives its path).
        ValueError: for an empty or malformed file, an unknown TFDS
            dataset or split, an empty held-out split, or a bad
            combination of sources.

    Example:

    >>> pairs = load_text_pairs(data="pairs.tsv")  # doctest: +SKIP
    >>> pairs.held_out[:1]  # doctest: +SKIP
    [('olá', 'hello')]
    """
    _check_source(dataset, data, test_data, source_file, target_file)
    if data or source_file:
        train, held_out, origin = _local_pairs(
            data, test_data, source_file, target_file, file_format
        )
        if held_out is None:
            train, held_out = split_pairs(train, held_out_fraction, seed=seed)
            origin = f"{len(held_out)} pairs of {origin}"
        if max_train_examples:
            train = train[:max_train_examples]
        return TextPairs(train, held_out[:max_held_out_examples], origin)
    loaded = load_tfds_translation_data(
        dataset,
        held_out_fraction=held_out_fraction,
        max_train_examples=max_train_examples,
        **tfds_kwargs,
    )
    held_out = loaded.held_out
    if max_held_out_examples:
        held_out = held_out.take(max_held_out_examples)
    held_out = text_pairs(held_out)
    if not held_out:
        raise ValueError(
            f"The held-out pairs of {dataset!r} are empty. Received: "
            f"held-out split {loaded.held_out_split!r}"
        )
    return TextPairs(loaded.train, held_out, loaded.held_out_split, loaded.keys)
