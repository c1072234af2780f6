"""Tests of the text classification loaders and the tf.data pipeline."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_attention.data.text_classification import TextClassificationData
from keras_attention.data.text_classification import label_counts
from keras_attention.data.text_classification import load_class_names
from keras_attention.data.text_classification import (
    load_tfds_text_classification,
)
from keras_attention.data.text_classification import (
    load_tsv_text_classification,
)
from keras_attention.data.text_classification import (
    make_text_classification_dataset,
)
from keras_attention.data.text_classification import read_labeled_tsv
from keras_attention.data.text_classification import save_class_names
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary

VOCABULARY = ["[PAD]", "[UNK]", "[START]", "[END]", "a", "b", "c", "d"]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def as_lists(dataset):
    texts, labels = [], []
    for text, label in dataset.as_numpy_iterator():
        texts.append(text.decode("utf-8"))
        labels.append(int(label))
    return texts, labels


# Local TSV files.


def test_read_labeled_tsv_skips_blank_lines_and_strips(tmp_path):
    path = write(tmp_path / "d.tsv", "good film \tpos\n\n  \nbad\t neg\n")
    assert read_labeled_tsv(path) == [
        ("good film", "pos", 1),
        ("bad", "neg", 4),
    ]


@pytest.mark.parametrize(
    "line,problem",
    [
        ("no tab here", "found 0 tabs"),
        ("one\ttwo\tthree", "found 2 tabs"),
        ("\tpos", "the text is empty"),
        ("text\t  ", "the label is empty"),
    ],
)
def test_read_labeled_tsv_names_the_bad_line(tmp_path, line, problem):
    path = write(tmp_path / "d.tsv", f"fine\tpos\n\nalso fine\tneg\n{line}\n")
    with pytest.raises(ValueError, match=f"d.tsv, line 4: .*{problem}"):
        read_labeled_tsv(path)


def test_read_labeled_tsv_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_labeled_tsv(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="no `text<TAB>label` lines"):
        read_labeled_tsv(write(tmp_path / "empty.tsv", "\n \n"))
    binary = tmp_path / "latin1.tsv"
    binary.write_bytes("caf\xe9\tpos\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        read_labeled_tsv(binary)


def test_load_tsv_maps_string_labels_to_sorted_ids(tmp_path):
    train = write(
        tmp_path / "train.tsv", "x\tpos\ny\tneg\nz\tneutral\nw\tpos\n"
    )
    test = write(tmp_path / "test.tsv", "v\tneutral\nu\tneg\n")
    data = load_tsv_text_classification(train, test_path=test)
    assert isinstance(data, TextClassificationData)
    assert data.class_names == ["neg", "neutral", "pos"]
    assert data.num_classes == 3
    assert as_lists(data.train) == (["x", "y", "z", "w"], [2, 0, 1, 2])
    assert as_lists(data.test) == (["v", "u"], [1, 0])
    assert label_counts(data.train, 3) == [1, 1, 2]


def test_load_tsv_sorts_numeric_labels_as_numbers(tmp_path):
    path = write(tmp_path / "d.tsv", "a\t10\nb\t2\nc\t1\nd\t2\n")
    data = load_tsv_text_classification(path, test_path=path)
    assert data.class_names == ["1", "2", "10"]
    assert as_lists(data.train)[1] == [2, 1, 0, 1]


def test_load_tsv_rejects_swapped_columns(tmp_path):
    lines = [
        f"{label}\tsome review number {i}\n"
        for i, label in enumerate(["pos", "neg"] * 20)
    ]
    path = write(tmp_path / "swapped.tsv", "".join(lines))
    with pytest.raises(ValueError, match="40 distinct labels among 40.*swap"):
        load_tsv_text_classification(path)
    # Many classes with several examples each are fine.
    lines = [f"text {i}\tclass{i % 25}\n" for i in range(75)]
    path = write(tmp_path / "many.tsv", "".join(lines))
    assert load_tsv_text_classification(path).num_classes == 25


def test_load_tsv_warns_about_a_header_row(tmp_path, caplog):
    lines = ["text\tlabel\n"] + [
        f"review {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(30)
    ]
    path = write(tmp_path / "header.tsv", "".join(lines))
    with caplog.at_level("WARNING"):
        data = load_tsv_text_classification(path)
    assert data.class_names == ["label", "neg", "pos"]  # still loaded
    assert "single example, e.g. 'label' on line 1 (a header row?)" in (
        caplog.text
    )


def test_load_tsv_rejects_a_test_label_that_is_not_a_class(tmp_path):
    train = write(tmp_path / "train.tsv", "x\tpos\ny\tneg\n")
    test = write(tmp_path / "test.tsv", "v\tneg\n\nu\tmaybe\n")
    with pytest.raises(ValueError, match="test.tsv, line 3: .*'maybe'"):
        load_tsv_text_classification(train, test_path=test)
    with pytest.raises(ValueError, match="train.tsv, line 1: .*'pos'"):
        load_tsv_text_classification(train, class_names=["neg", "other"])


def test_load_tsv_rejects_label_columns_that_are_not_classes(tmp_path):
    one_class = write(tmp_path / "one.tsv", "x\tpos\ny\tpos\n")
    with pytest.raises(ValueError, match="at least 2 classes"):
        load_tsv_text_classification(one_class)
    # Swapped columns: every "label" is a different text.
    lines = "".join(f"pos\tthe review number {i}\n" for i in range(20))
    swapped = write(tmp_path / "swapped.tsv", lines)
    with pytest.raises(ValueError, match="20 distinct values.*Received"):
        load_tsv_text_classification(swapped, max_classes=10)


def test_load_tsv_holds_out_a_deterministic_fraction(tmp_path):
    lines = "".join(f"text {i}\t{'ab'[i % 2]}\n" for i in range(50))
    path = write(tmp_path / "d.tsv", lines)
    data = load_tsv_text_classification(path, test_fraction=0.2, seed=3)
    train_texts, _ = as_lists(data.train)
    test_texts, test_labels = as_lists(data.test)
    assert len(test_texts) == 10 and len(train_texts) == 40
    assert sorted(train_texts + test_texts) == sorted(
        f"text {i}" for i in range(50)
    )
    for text, label in zip(test_texts, test_labels):
        assert label == int(text.split()[1]) % 2
    again = load_tsv_text_classification(path, test_fraction=0.2, seed=3)
    assert as_lists(again.test)[0] == test_texts
    with pytest.raises(ValueError, match="test_fraction"):
        load_tsv_text_classification(path, test_fraction=1.0)


def test_class_names_round_trip(tmp_path):
    path = tmp_path / "classes.json"
    save_class_names(["négatif", "positive"], path)
    assert load_class_names(path) == ["négatif", "positive"]
    with pytest.raises(FileNotFoundError):
        load_class_names(tmp_path / "none.json")
    write(tmp_path / "bad.json", '{"a": 1}')
    with pytest.raises(ValueError, match="list of strings"):
        load_class_names(tmp_path / "bad.json")


# TFDS, mocked: nothing is downloaded.


def mock_tfds(num_examples=12):
    return tfds.testing.mock_data(
        num_examples=num_examples, policy=tfds.testing.MockPolicy.USE_CODE
    )


def test_load_tfds_by_name():
    with mock_tfds():
        data = load_tfds_text_classification("imdb_reviews")
        assert data.class_names == ["neg", "pos"]
        assert data.train.element_spec == (
            tf.TensorSpec((), tf.string),
            tf.TensorSpec((), tf.int32),
        )
        texts, labels = as_lists(data.test)
    assert len(texts) == 12
    assert set(labels) <= {0, 1}


def test_load_tfds_other_keys():
    with mock_tfds():
        data = load_tfds_text_classification(
            "ag_news_subset", text_key="description"
        )
        assert data.num_classes == 4
        assert len(as_lists(data.train)[0]) == 12


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(text_key="review"), "`text_key` is not a feature.*'label'"),
        (dict(label_key="stars"), "`label_key` is not a feature.*'text'"),
        (dict(label_key="text"), "class label.*Received: label_key='text'"),
        (dict(text_key="label"), "text feature.*Received: text_key='label'"),
    ],
)
def test_load_tfds_bad_keys_list_the_features(kwargs, match):
    with mock_tfds():
        with pytest.raises(ValueError, match=match):
            load_tfds_text_classification("imdb_reviews", **kwargs)


def test_load_tfds_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown TFDS dataset.*no_such_set"):
        load_tfds_text_classification("no_such_set")


def test_mock_tfds_pipeline():
    with mock_tfds(num_examples=40):
        data = load_tfds_text_classification("imdb_reviews")
        vocabulary = learn_wordpiece_vocabulary(
            data.train.map(lambda text, label: text), vocabulary_size=60
        )
        tokenizer = WordPieceTokenizer(vocabulary)
        dataset = make_text_classification_dataset(
            data.train,
            tokenizer,
            batch_size=8,
            max_sequence_length=10,
            shuffle=True,
            seed=0,
            bucket_boundaries=(4, 8),
        )
        texts, labels = as_lists(data.train)
    expected = {
        (tuple(ids[:10]), label)
        for ids, label in zip(tokenizer(texts).to_list(), labels)
    }
    seen = set()
    for ids, batch_labels in dataset.as_numpy_iterator():
        assert ids.dtype == np.int32 and batch_labels.dtype == np.int32
        assert ids.shape[1] <= 10 and len(ids) <= 8
        lengths = (ids != 0).sum(axis=1)
        assert lengths.max() == ids.shape[1]  # padded to the batch's longest
        for row, length, label in zip(ids, lengths, batch_labels):
            assert (row[length:] == 0).all()
            seen.add((tuple(row[:length]), int(label)))
    assert seen == expected


# The pipeline on in-memory text.


def test_pipeline_tokenizes_pads_and_keeps_order_without_buckets():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    texts = ["a b c d a b", "c", "", "d d"]
    dataset = make_text_classification_dataset(
        (texts, [1, 0, 1, 0]),
        tokenizer,
        batch_size=3,
        max_sequence_length=4,
        bucket_boundaries=(),
    )
    batches = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(
        batches[0][0], [[4, 5, 6, 7], [6, 0, 0, 0], [0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(batches[0][1], [1, 0, 1])
    np.testing.assert_array_equal(batches[1][0], [[7, 7]])
    np.testing.assert_array_equal(batches[1][1], [0])


def test_pipeline_buckets_by_length():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    texts = ["a"] * 5 + ["a b c d a b c d"] * 5
    dataset = make_text_classification_dataset(
        (texts, [0] * 5 + [1] * 5),
        tokenizer,
        batch_size=5,
        bucket_boundaries=(4,),
    )
    batches = sorted(
        (ids.shape[1], labels.tolist())
        for ids, labels in dataset.as_numpy_iterator()
    )
    assert batches == [(1, [0] * 5), (8, [1] * 5)]


@pytest.mark.parametrize("bucket_boundaries", [(), (2, 4)])
def test_counted_batches_set_the_cardinality(bucket_boundaries):
    rng = np.random.default_rng(0)
    words = ["a", "b", "c", "d"]
    texts = [
        " ".join(rng.choice(words, size=rng.integers(1, 8))) for _ in range(37)
    ]
    dataset = make_text_classification_dataset(
        (texts, [0] * 37),
        WordPieceTokenizer(VOCABULARY),
        batch_size=4,
        shuffle=True,
        seed=1,
        bucket_boundaries=bucket_boundaries,
        count_batches=True,
    )
    cardinality = int(dataset.cardinality())
    assert cardinality >= 10  # ceil(37 / 4), more with buckets
    # Reshuffling changes the batches, not their number.
    for _ in range(2):
        assert len(list(dataset.as_numpy_iterator())) == cardinality


def test_pipeline_accepts_a_padded_tokenizer():
    tokenizer = WordPieceTokenizer(VOCABULARY, sequence_length=6)
    dataset = make_text_classification_dataset(
        (["a b", "c"], [0, 1]), tokenizer, batch_size=2, bucket_boundaries=()
    )
    ids, _ = next(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(ids, [[4, 5], [6, 0]])


@pytest.mark.parametrize(
    "data,kwargs,match",
    [
        ((["a"], [0]), dict(batch_size=0), "batch_size"),
        ((["a"], [0]), dict(max_sequence_length=0), "max_sequence_length"),
        ((["a", "b"], [0]), {}, "equally long"),
        ("abc", {}, "`data` must be"),
    ],
)
def test_pipeline_rejects_bad_input(data, kwargs, match):
    arguments = dict(batch_size=2)
    arguments.update(kwargs)
    tokenizer = WordPieceTokenizer(VOCABULARY)
    with pytest.raises(ValueError, match=match):
        make_text_classification_dataset(data, tokenizer, **arguments)


def test_pipeline_rejects_a_dataset_of_numbers():
    dataset = tf.data.Dataset.from_tensor_slices(([1, 2], [0, 1]))
    tokenizer = WordPieceTokenizer(VOCABULARY)
    with pytest.raises(ValueError, match="string text.*Received"):
        make_text_classification_dataset(dataset, tokenizer, batch_size=2)


def test_dataset_texts_and_predict_in_order():
    from keras_attention.data.text_classification import dataset_texts
    from keras_attention.data.text_classification import predict_in_order

    texts = ["a b c d a b", "c", "d a", "b"]
    dataset = tf.data.Dataset.from_tensor_slices((texts, [0, 1, 0, 1]))
    assert dataset_texts(dataset) == texts
    assert dataset_texts(dataset, 2) == texts[:2]

    class FirstIds:  # predicts the first token id of each text
        def predict(self, ids_dataset, verbose=0):
            return np.concatenate([ids[:, 0] for ids in ids_dataset])

    probabilities = predict_in_order(
        FirstIds(), WordPieceTokenizer(VOCABULARY), texts, 3, 4
    )
    np.testing.assert_array_equal(probabilities, [4, 6, 7, 5])
