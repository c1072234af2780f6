"""Text classification data: TFDS datasets, local TSV files, pipelines.

Two sources give the same thing, a `TextClassificationData` holding train
and test `tf.data.Dataset`s of `(text, label_id)` scalar pairs and the class
names (the index is the label id):

- `load_tfds_text_classification`: any TFDS dataset with a text feature and
  a `ClassLabel` feature, chosen by name (`imdb_reviews`, `ag_news_subset`,
  ...).
- `load_tsv_text_classification`: a local UTF-8 file with one
  `text<TAB>label` pair per line, for offline use. The labels are strings;
  the sorted distinct labels of the training file are the classes (numeric
  labels are sorted as numbers). A line that does not parse raises a
  `ValueError` naming the file and the line number.

`make_text_classification_dataset` tokenizes the texts in the TensorFlow
graph and batches them, grouping examples of similar length (the pipeline
of `keras_attention.data.pipeline`). The TFDS splits and the hold-out
follow `keras_attention.data.tfds`.
"""

import collections
import dataclasses
import json
import logging
import os
import random

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_attention._checks import check_positive_int
from keras_attention.data.pipeline import DEFAULT_SHUFFLE_BUFFER
from keras_attention.data.pipeline import PADDING_ID
from keras_attention.data.pipeline import batch_examples
from keras_attention.data.pipeline import check_batch_size
from keras_attention.data.tfds import HELD_OUT_FRACTION
from keras_attention.data.tfds import check_feature
from keras_attention.data.tfds import check_split
from keras_attention.data.tfds import choose_held_out_split
from keras_attention.data.tfds import hold_out
from keras_attention.data.tfds import supervised_pair
from keras_attention.data.tfds import tfds_builder
from keras_attention.files import read_json_file
from keras_attention.files import read_text_lines

__all__ = [
    "TextClassificationData",
    "dataset_texts",
    "label_counts",
    "load_class_names",
    "load_tfds_text_classification",
    "load_tsv_text_classification",
    "make_text_classification_dataset",
    "predict_in_order",
    "read_labeled_tsv",
    "save_class_names",
]

DEFAULT_TEST_FRACTION = HELD_OUT_FRACTION
# More distinct labels than this means the label column holds no classes
# (for example, the text and label columns are swapped).
DEFAULT_MAX_CLASSES = 1000
DEFAULT_TEST_SPLIT = "test"
# Past this many classes, a label column where most labels are distinct is
# taken for a text column (swapped columns).
_MIN_CLASSES_TO_CHECK = 20
DEFAULT_BUCKET_BOUNDARIES = (16, 32, 64, 128, 256, 512, 1024)

_logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TextClassificationData:
    """Train and test examples of a text classification task.

    Attributes:
        train: a `tf.data.Dataset` of `(text, label)` pairs: a scalar
            `tf.string` and a scalar `tf.int32` class id.
        test: the held-out examples, in the same format.
        class_names: list of str, the name of each class id.
    """

    train: tf.data.Dataset
    test: tf.data.Dataset
    class_names: list

    @property
    def num_classes(self):
        return len(self.class_names)


def load_tfds_text_classification(
    name,
    text_key=None,
    label_key=None,
    train_split="train",
    test_split=DEFAULT_TEST_SPLIT,
    data_dir=None,
    test_fraction=DEFAULT_TEST_FRACTION,
    download=True,
):
    """Loads a TFDS text classification dataset by name.

    The dataset must have a text feature (`tfds.features.Text`) and a label
    feature (`tfds.features.ClassLabel`, whose names become the class
    names). When the dataset has no `"test"` split and `test_split` is left
    at `"test"`, the last `test_fraction` of `train_split` (whatever its
    slicing or `+` parts) is held out instead. Examples labelled `-1`
    (TFDS's "unlabelled", e.g. in SNLI) are left out; a split whose first
    100 examples are all unlabelled (GLUE's test splits) is an error.

    Args:
        name: the TFDS name, e.g. `"imdb_reviews"` or `"ag_news_subset"`
            (optionally with a config and version, `"name/config:1.0.0"`).
        text_key: the name of the text feature. Defaults to `None`: the
            first supervised key when the dataset's supervised keys are a
            text and a class label (`"description"` for `ag_news_subset`),
            else `"text"`.
        label_key: the name of the label feature. Defaults to `None`: the
            second supervised key in that case, else `"label"`.
        train_split: the training split (TFDS slicing works:
            `"train[:10%]"`, `"train+validation"`). Defaults to `"train"`.
        test_split: the held-out split, sliced or not. Defaults to
            `"test"`.
        data_dir: the TFDS data directory. Defaults to `None` (TFDS's
            default, `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        test_fraction: float in `(0, 1)`, the part of `train_split` held
            out when there is no `test_split`. Defaults to `0.1`.
        download: bool, whether to download and prepare the dataset when it
            is not in `data_dir` yet. Defaults to `True`.

    Returns:
        A `TextClassificationData`.

    Raises:
        ValueError: for an unknown dataset or split, a missing or wrongly
            typed `text_key` or `label_key` (the message lists the dataset's
            features), an unlabelled split, or a bad `test_fraction`.

    Example:

    >>> data = load_tfds_text_classification("imdb_reviews")  # doctest: +SKIP
    >>> data.class_names  # doctest: +SKIP
    ['neg', 'pos']
    """
    _check_fraction(test_fraction)
    builder = tfds_builder(name, data_dir=data_dir)
    features = builder.info.features
    text_key, label_key = _default_keys(builder, text_key, label_key)
    check_feature(
        name, features, "text_key", text_key, tfds.features.Text, "a text"
    )
    check_feature(
        name,
        features,
        "label_key",
        label_key,
        tfds.features.ClassLabel,
        "a class label (ClassLabel)",
    )
    label_feature = features[label_key]
    if download:
        builder.download_and_prepare()
    check_split(name, builder, train_split, "train_split")
    split = choose_held_out_split(
        name, builder, test_split, DEFAULT_TEST_SPLIT, "test_split"
    )

    def read(split):
        examples = builder.as_dataset(split=split, shuffle_files=False)
        return examples.map(
            lambda example: (
                example[text_key],
                tf.cast(example[label_key], tf.int32),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    train = read(train_split)
    if split is None:
        # The end of the training examples, however the split was sliced or
        # joined ("train+validation[90%:]" would slice only "validation").
        train, test, _ = hold_out(
            train, test_fraction, name=name, split=train_split, position="end"
        )
    else:
        test = read(test_split)
    for argument, description, examples in (
        ("train_split", train_split, train),
        (
            "test_split",
            test_split if split else f"the held-out end of {train_split!r}",
            test,
        ),
    ):
        _check_labelled(name, argument, description, examples)

    def labelled(text, label):
        return label >= 0

    return TextClassificationData(
        train=train.filter(labelled),
        test=test.filter(labelled),
        class_names=list(label_feature.names),
    )


def _default_keys(builder, text_key, label_key):
    """The text and label keys, missing ones from the supervised keys."""
    features = builder.info.features
    supervised = supervised_pair(builder)
    if (
        supervised is not None
        and all(key in features for key in supervised)
        and isinstance(features[supervised[0]], tfds.features.Text)
        and isinstance(features[supervised[1]], tfds.features.ClassLabel)
    ):
        defaults = tuple(supervised)
    else:
        defaults = ("text", "label")
    return (
        defaults[0] if text_key is None else text_key,
        defaults[1] if label_key is None else label_key,
    )


def _check_labelled(name, argument, split, examples, sample=100):
    """Raise if none of the split's first `sample` examples is labelled.

    TFDS marks an unlabelled example with label -1; GLUE's test splits are
    all unlabelled, while SNLI's splits have a few (left out elsewhere).
    """
    labels = [int(label) for _, label in examples.take(sample)]
    if labels and max(labels) < 0:
        hint = "" if split.startswith("validation") else " such as validation"
        raise ValueError(
            f"The split {split!r} of {name!r} is unlabelled (label -1, as in "
            f"GLUE's test splits): pass a labelled split{hint}. Received: "
            f"{argument}={split!r}"
        )


def _check_fraction(test_fraction):
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            "`test_fraction` must be in (0, 1). "
            f"Received: test_fraction={test_fraction}"
        )


def read_labeled_tsv(path):
    """Reads `(text, label)` string pairs from a `text<TAB>label` file.

    Blank lines are skipped. Every other line must hold exactly one tab
    with a non-empty text before it and a non-empty label after it
    (surrounding whitespace is stripped from both).

    Args:
        path: a UTF-8 text file.

    Returns:
        A list of `(text, label, line_number)` tuples.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for a line that does not parse (the message gives the
            file and the line number) or a file with no examples.
    """
    path = os.fspath(path)
    lines = read_text_lines(path)
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        problem = None
        if len(fields) != 2:
            problem = (
                f"expected `text<TAB>label` (one tab), found "
                f"{len(fields) - 1} tabs"
            )
        elif not fields[0].strip():
            problem = "the text is empty"
        elif not fields[1].strip():
            problem = "the label is empty"
        if problem:
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise ValueError(
                f"{path}, line {number}: {problem}. Received: {shown!r}"
            )
        examples.append((fields[0].strip(), fields[1].strip(), number))
    if not examples:
        raise ValueError(
            f"{path}: the file holds no `text<TAB>label` lines. "
            "Received: an empty file"
        )
    return examples


def _sorted_labels(labels):
    """Distinct labels, numerically sorted when all are numbers."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def _class_ids(examples, class_names, path):
    index = {name: i for i, name in enumerate(class_names)}
    ids = []
    for _, label, number in examples:
        if label not in index:
            raise ValueError(
                f"{path}, line {number}: the label is not one of the "
                f"classes {class_names}. Received: label={label!r}"
            )
        ids.append(index[label])
    return ids


def _check_label_column(path, rows, class_names):
    """Reject a label column of mostly distinct values; warn on singletons.

    Args:
        path: the file, for messages.
        rows: `(text, label, line_number)` tuples.
        class_names: the distinct labels.
    """
    if len(class_names) >= _MIN_CLASSES_TO_CHECK and (
        2 * len(class_names) > len(rows)
    ):
        raise ValueError(
            f"{path}: {len(class_names)} distinct labels among {len(rows)} "
            "examples, most of them used once: the columns may be swapped "
            "(expected `text<TAB>label`). Received: labels such as "
            f"{class_names[:3]}"
        )
    counts = collections.Counter(label for _, label, _ in rows)
    single = [(line, label) for _, label, line in rows if counts[label] == 1]
    if single and len(rows) >= 10 * len(single):
        line, label = single[0]
        _logger.warning(
            "%s: %d class(es) with a single example, e.g. %r on line %d (a "
            "header row?).",
            path,
            len(single),
            label,
            line,
        )


def load_tsv_text_classification(
    path,
    test_path=None,
    class_names=None,
    test_fraction=DEFAULT_TEST_FRACTION,
    seed=0,
    max_classes=DEFAULT_MAX_CLASSES,
):
    """Loads a local `text<TAB>label` file (see `read_labeled_tsv`).

    The class names are `class_names` when given, else the distinct labels
    of the training file, sorted (as numbers when they all are numbers, so
    `"2"` comes before `"10"`). Save them with `save_class_names` to map
    predictions back to labels later.

    Args:
        path: the training file.
        test_path: optional held-out file in the same format. When `None`,
            a shuffled `test_fraction` of `path` is held out. Defaults to
            `None`.
        class_names: optional list of the label strings; any other label is
            an error. Defaults to `None` (the labels of `path`).
        test_fraction: float in `(0, 1)`, the part held out when there is no
            `test_path`. Defaults to `0.1`.
        seed: int, the hold-out shuffling seed. Defaults to `0`.
        max_classes: int, the most distinct labels accepted. Defaults to
            `1000`.

    Returns:
        A `TextClassificationData`.

    Raises:
        FileNotFoundError: if a file does not exist.
        ValueError: for a line that does not parse, a label that is not one
            of the classes (with its line number), fewer than two classes or
            more than `max_classes`.

    Example:

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".tsv") as file:
    ...     _ = file.write("great film\\tpos\\nawful\\tneg\\nfine\\tpos\\n")
    ...     file.flush()
    ...     data = load_tsv_text_classification(file.name, test_fraction=0.4)
    >>> data.class_names
    ['neg', 'pos']
    """
    _check_fraction(test_fraction)
    path = os.fspath(path)
    train = read_labeled_tsv(path)
    if class_names is None:
        class_names = _sorted_labels(label for _, label, _ in train)
        if len(class_names) < 2:
            raise ValueError(
                f"{path}: the labels must name at least 2 classes. "
                f"Received: only {class_names}"
            )
        if len(class_names) > max_classes:
            raise ValueError(
                f"{path}: the label column has {len(class_names)} distinct "
                f"values, more than max_classes={max_classes}; it does not "
                "look like a class label (are the columns `text<TAB>label`?). "
                f"Received: labels such as {class_names[:5]}"
            )
        _check_label_column(path, train, class_names)
    else:
        class_names = [str(name) for name in class_names]
    train_ids = _class_ids(train, class_names, path)
    train_pairs = [(text, i) for (text, _, _), i in zip(train, train_ids)]
    if test_path is not None:
        test_path = os.fspath(test_path)
        test = read_labeled_tsv(test_path)
        test_ids = _class_ids(test, class_names, test_path)
        test_pairs = [(text, i) for (text, _, _), i in zip(test, test_ids)]
    else:
        if len(train_pairs) < 2:
            raise ValueError(
                f"{path}: need at least 2 examples to hold some out. "
                f"Received: {len(train_pairs)} example"
            )
        random.Random(seed).shuffle(train_pairs)
        num_test = min(
            len(train_pairs) - 1,
            max(1, round(len(train_pairs) * test_fraction)),
        )
        test_pairs = train_pairs[:num_test]
        train_pairs = train_pairs[num_test:]
    return TextClassificationData(
        train=_pairs_dataset(train_pairs),
        test=_pairs_dataset(test_pairs),
        class_names=class_names,
    )


def _pairs_dataset(pairs):
    texts = tf.constant([text for text, _ in pairs], tf.string)
    labels = tf.constant([label for _, label in pairs], tf.int32)
    return tf.data.Dataset.from_tensor_slices((texts, labels))


def save_class_names(class_names, path):
    """Writes the class names (index = label id) as a JSON list."""
    class_names = [str(name) for name in class_names]
    if not class_names:
        raise ValueError("`class_names` must not be empty. Received: []")
    with open(path, "w", encoding="utf-8") as file:
        json.dump(class_names, file, ensure_ascii=False, indent=1)
    return path


def load_class_names(path):
    """Reads the class names written by `save_class_names`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No class names file. Received: {path!r}")
    class_names = read_json_file(path, "a class names file")
    if (
        not isinstance(class_names, list)
        or not class_names
        or not all(isinstance(name, str) for name in class_names)
    ):
        raise ValueError(
            f"{path}: expected a non-empty JSON list of strings. "
            f"Received: {class_names!r}"
        )
    return class_names


def make_text_classification_dataset(
    data,
    tokenizer,
    batch_size,
    max_sequence_length=None,
    shuffle=False,
    seed=None,
    bucket_boundaries=DEFAULT_BUCKET_BOUNDARIES,
    cache=True,
    count_batches=False,
):
    """Batches of `(token_ids, labels)` for `model.fit` and evaluation.

    The texts are tokenized in the graph in large chunks, truncated to
    `max_sequence_length` ids, cached (in memory), optionally reshuffled
    every epoch, grouped by length into buckets (so a batch of short texts
    is not padded to the longest text of the dataset), padded with id `0`
    to the longest sequence of each batch, and prefetched.

    Args:
        data: a `tf.data.Dataset` of `(text, label)` scalar pairs (e.g.
            `TextClassificationData.train`), or a `(texts, labels)` tuple
            of sequences.
        tokenizer: a tokenizer layer mapping a `(batch,)` string tensor to
            ids, ragged or `0`-padded, e.g.
            `keras_attention.text.wordpiece_tokenizer.WordPieceTokenizer`.
        batch_size: int, the batch size.
        max_sequence_length: optional int, the most ids kept per text (the
            rest is cut). Defaults to `None` (keep all).
        shuffle: bool, whether to reshuffle the examples every epoch.
            Defaults to `False`.
        seed: optional int, the shuffling seed. Defaults to `None`.
        bucket_boundaries: increasing sequence lengths that split the
            examples into length buckets; `()` or `None` batches in order.
            Defaults to `(16, 32, 64, 128, 256, 512, 1024)` (those below
            `max_sequence_length`).
        cache: bool, whether to cache the tokenized examples in memory.
            Defaults to `True`.
        count_batches: bool, whether to count the batches with one pass
            over the data (which also fills the cache) and declare the
            count as the dataset's cardinality, so that Keras shows
            progress from the first epoch and does not warn that the data
            ran out. Shuffling does not change the count: each length
            bucket always holds the same examples. Defaults to `False`.

    Returns:
        A `tf.data.Dataset` of `(token_ids (batch, length) int32,
        labels (batch,) int32)`.

    Example:

    >>> tokenizer = WordPieceTokenizer(vocabulary)  # doctest: +SKIP
    >>> dataset = make_text_classification_dataset(
    ...     (["a good film", "bad"], [1, 0]), tokenizer, batch_size=2
    ... )  # doctest: +SKIP
    """
    check_batch_size(batch_size)
    max_sequence_length = check_positive_int(
        "max_sequence_length", max_sequence_length, allow_none=True
    )
    shuffle_buffer = DEFAULT_SHUFFLE_BUFFER
    if not isinstance(data, tf.data.Dataset):
        try:
            texts, labels = data
        except (TypeError, ValueError) as error:
            raise ValueError(
                "`data` must be a `tf.data.Dataset` of (text, label) pairs "
                f"or a (texts, labels) tuple. Received: {type(data).__name__}"
            ) from error
        texts, labels = list(texts), list(labels)
        if len(texts) != len(labels) or not texts:
            raise ValueError(
                "`texts` and `labels` must be non-empty and equally long. "
                f"Received: {len(texts)} texts, {len(labels)} labels"
            )
        shuffle_buffer = len(texts)
        data = tf.data.Dataset.from_tensor_slices(
            (tf.constant(texts, tf.string), tf.constant(labels, tf.int32))
        )
    spec = data.element_spec
    if not (
        isinstance(spec, tuple)
        and len(spec) == 2
        and isinstance(spec[0], tf.TensorSpec)
        and spec[0].dtype == tf.string
    ):
        raise ValueError(
            "`data` must yield `(text, label)` pairs with a string text. "
            f"Received: element_spec={spec}"
        )

    def encode(texts, labels):
        ids = tokenizer(texts)  # (chunk, None), ragged or padded
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=PADDING_ID)
        if max_sequence_length is not None:
            ids = ids[:, :max_sequence_length]  # (chunk, None)
        return tf.cast(ids, tf.int32), tf.cast(labels, tf.int32)

    def length(ids, label):
        return tf.shape(ids)[0]

    return batch_examples(
        data,
        encode,
        batch_size,
        length=length,
        bucket_boundaries=[
            boundary
            for boundary in (bucket_boundaries or ())
            if max_sequence_length is None or boundary < max_sequence_length
        ],
        padding_values=(PADDING_ID, 0),
        cache=cache,
        shuffle=shuffle,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        count_batches=count_batches,
    )


def dataset_texts(dataset, count=None):
    """The texts of a `(text, label)` dataset, decoded, in order.

    Args:
        dataset: a `tf.data.Dataset` of `(text, label)` string examples.
        count: optional int, the most texts read. Defaults to `None` (all).

    Returns:
        A list of str.
    """
    if count is not None:
        dataset = dataset.take(count)
    return [text.decode("utf-8") for text, _ in dataset.as_numpy_iterator()]


def predict_in_order(model, tokenizer, texts, batch_size, max_sequence_length):
    """A classifier's predictions for `texts`, in their order.

    The texts are batched as `make_text_classification_dataset` batches
    them (tokenized, longer ones cut to `max_sequence_length`) but without
    length buckets, which would reorder them.

    Args:
        model: a classifier taking `(batch, length)` token ids.
        tokenizer: the tokenizer it was trained with.
        texts: a list of str.
        batch_size: int, texts per batch.
        max_sequence_length: int, the most tokens kept per text.

    Returns:
        `model.predict`'s output, one row per text.
    """
    dataset = make_text_classification_dataset(
        (texts, [0] * len(texts)),
        tokenizer,
        batch_size,
        max_sequence_length=max_sequence_length,
        bucket_boundaries=(),
        cache=False,
    )
    return model.predict(dataset.map(lambda ids, labels: ids), verbose=0)


def label_counts(dataset, num_classes):
    """How many examples of each class a `(text, label)` dataset holds."""
    counts = collections.Counter(
        int(label) for _, label in dataset.as_numpy_iterator()
    )
    return [counts.get(i, 0) for i in range(num_classes)]
