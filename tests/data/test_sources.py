"""Tests of `keras_attention.data.sources`: local files or a TFDS name."""

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_attention.data.sources import TextPairs
from keras_attention.data.sources import load_text_classification
from keras_attention.data.sources import load_text_pairs
from keras_attention.data.sources import pair_texts
from tests.tfds_fakes import KaTestParaLike
from tests.tfds_fakes import prepare

PAIRS = [(f"fonte {i}", f"source {i}") for i in range(20)]


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _tsv(path, pairs=PAIRS):
    return _write(path, [f"{s}\t{t}" for s, t in pairs])


def test_local_tsv_holds_out_a_seeded_fraction(tmp_path):
    pairs = load_text_pairs(
        data=_tsv(tmp_path / "pairs.tsv"), held_out_fraction=0.25, seed=3
    )
    assert (len(pairs.train), len(pairs.held_out)) == (15, 5)
    assert sorted(pairs.train + pairs.held_out) == sorted(PAIRS)
    assert pairs.keys is None and pairs.held_out_from.startswith("5 pairs")
    again = load_text_pairs(
        data=_tsv(tmp_path / "pairs.tsv"), held_out_fraction=0.25, seed=3
    )
    assert again.held_out == pairs.held_out


def test_local_test_file_and_limits(tmp_path):
    test = _tsv(tmp_path / "test.tsv", [("um", "one"), ("dois", "two")])
    pairs = load_text_pairs(
        data=_tsv(tmp_path / "pairs.tsv"),
        test_data=test,
        max_train_examples=4,
        max_held_out_examples=1,
    )
    assert pairs.train == PAIRS[:4] and pairs.held_out == [("um", "one")]
    assert pairs.held_out_from == str(test)


def test_line_aligned_files(tmp_path):
    source = _write(tmp_path / "train.pt", [s for s, _ in PAIRS])
    target = _write(tmp_path / "train.en", [t for _, t in PAIRS])
    pairs = load_text_pairs(source_file=source, target_file=target)
    assert sorted(pairs.train + pairs.held_out) == sorted(PAIRS)
    assert len(pairs.held_out) == 2  # the default 10%


def test_local_files_win_over_a_dataset_name(tmp_path):
    pairs = load_text_pairs("no_such_dataset", data=_tsv(tmp_path / "p.tsv"))
    assert len(pairs.train) == 18


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "Name a TFDS dataset or a local data file"),
        ({"source_file": "a.pt"}, "`source_file` and `target_file` go"),
        ({"target_file": "a.en"}, "`source_file` and `target_file` go"),
        (
            {"data": "p.tsv", "source_file": "a", "target_file": "b"},
            "either `data` or `source_file`",
        ),
        ({"test_data": "t.tsv"}, "`test_data` needs `data`"),
    ],
)
def test_bad_combinations_of_sources(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_text_pairs(**kwargs)


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.tsv"
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        load_text_pairs(data=missing)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        load_text_classification(data=missing)
    empty = _write(tmp_path / "empty.tsv", [])
    with pytest.raises(ValueError, match="empty.tsv: the file holds no"):
        load_text_pairs(data=empty)
    with pytest.raises(ValueError, match="empty.tsv: the file holds no"):
        load_text_classification(data=empty)
    with pytest.raises(ValueError, match="empty.pt: the file is empty"):
        load_text_pairs(
            source_file=_write(tmp_path / "empty.pt", [""]),
            target_file=_write(tmp_path / "t.en", ["x"]),
        )
    bad = _write(tmp_path / "bad.tsv", ["a\tb", "no tab"])
    with pytest.raises(ValueError, match="bad.tsv, line 2"):
        load_text_pairs(data=bad, file_format="tsv")


def test_unknown_tfds_names_fail_clearly():
    with pytest.raises(ValueError, match="Unknown TFDS dataset.*no_such_set"):
        load_text_pairs("no_such_set")
    with pytest.raises(ValueError, match="Unknown TFDS dataset.*no_such_set"):
        load_text_classification("no_such_set")


def test_tfds_pairs_hold_out_the_start_of_train(tmp_path):
    data_dir = prepare(tmp_path / "tfds")
    pairs = load_text_pairs(
        KaTestParaLike.name, data_dir=data_dir, max_held_out_examples=3
    )
    assert isinstance(pairs.train, tf.data.Dataset)
    assert len(pairs.held_out) == 3
    assert pairs.held_out_from == "the first 4 pairs of train"
    train = pairs.train_pairs()
    assert len(train) == 36 and all(isinstance(s, str) for s, _ in train)
    assert not {s for s, _ in train} & {s for s, _ in pairs.held_out}


def test_an_empty_held_out_split_is_an_error():
    with tfds.testing.mock_data(num_examples=0):
        with pytest.raises(ValueError, match="held-out pairs .* are empty"):
            load_text_pairs("ted_hrlr_translate/pt_to_en")


def test_text_classification_from_a_file_or_tfds(tmp_path):
    lines = [f"text {i}\t{'pos' if i % 2 else 'neg'}" for i in range(20)]
    data = load_text_classification(
        data=_write(tmp_path / "train.tsv", lines),
        held_out_fraction=0.2,
        max_train_examples=5,
    )
    assert data.class_names == ["neg", "pos"]
    assert len(list(data.train)) == 5 and len(list(data.test)) == 4
    with tfds.testing.mock_data(num_examples=6):
        data = load_text_classification("imdb_reviews", max_train_examples=2)
        assert data.class_names == ["neg", "pos"]
        assert len(list(data.train)) == 2


def test_pair_texts_of_lists_and_datasets():
    assert pair_texts(PAIRS[:2], 0) == ["fonte 0", "fonte 1"]
    sources, targets = zip(*PAIRS[:2])
    dataset = tf.data.Dataset.from_tensor_slices((list(sources), list(targets)))
    assert list(pair_texts(dataset, 1).as_numpy_iterator()) == [
        b"source 0",
        b"source 1",
    ]
    with pytest.raises(ValueError, match="Received: index=2"):
        pair_texts(PAIRS, 2)
    assert TextPairs(PAIRS, [], "x").train_pairs() is PAIRS
