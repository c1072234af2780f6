import gzip

import pytest
import tensorflow as tf

from keras_attention.data.parallel_text import load_parallel_text
from keras_attention.data.parallel_text import make_seq2seq_dataset
from keras_attention.data.parallel_text import split_pairs
from keras_attention.text.character_tokenizer import CharacterTokenizer


def _write(tmp_path, text, name="pairs.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_tsv(tmp_path):
    path = _write(tmp_path, "aug 19, 2003\t2003-08-19\n\n2/10/93\t1993-02-10\n")
    assert load_parallel_text(path) == [
        ("aug 19, 2003", "2003-08-19"),
        ("2/10/93", "1993-02-10"),
    ]


def test_tsv_fields_are_stripped_and_format_detected_by_majority(tmp_path):
    path = _write(
        tmp_path, "may 5, 2020 \t 2020-05-05 \r\n2/10/93\t1993-02-10\n"
    )
    assert load_parallel_text(path) == [
        ("may 5, 2020", "2020-05-05"),
        ("2/10/93", "1993-02-10"),
    ]
    # One line without its tab is that line's error, not another format.
    path = _write(tmp_path, "no tab\na\tb\nc\td\n")
    with pytest.raises(ValueError, match="line 1: expected `source<TAB>"):
        load_parallel_text(path)


def test_line_endings_crlf_bom_and_lone_cr(tmp_path):
    expected = [("a", "1"), ("b", "2")]
    for name, data in (
        ("crlf.tsv", b"\xef\xbb\xbfa\t1\r\nb\t2\r\n"),
        ("cr.tsv", b"a\t1\rb\t2\r"),
    ):
        (tmp_path / name).write_bytes(data)
        assert load_parallel_text(tmp_path / name) == expected, name


def test_load_underscore_format_strips_padding(tmp_path):
    path = _write(
        tmp_path,
        "september 27, 1994           _1994-09-27\n16+75  _91  \r\n",
    )
    assert load_parallel_text(path) == [
        ("september 27, 1994", "1994-09-27"),
        ("16+75", "91"),
    ]


def test_underscore_splits_at_first_underscore(tmp_path):
    path = _write(tmp_path, "a _b_c\n")
    assert load_parallel_text(path, file_format="underscore") == [("a", "b_c")]


@pytest.mark.parametrize(
    "text, file_format, line, match",
    [
        ("a\tb\nno tab here\n", "tsv", 2, "one tab"),
        ("a\tb\n\na\tb\tc\n", "tsv", 3, "found 2 tabs"),
        ("a\tb\n\tb\n", "tsv", 2, "source is empty"),
        ("x _1\ny 2\n", "underscore", 2, "no `_`"),
        ("x _1\n   _\n", "underscore", 2, "source is empty"),
        ("x _ \n", "underscore", 1, "target is empty"),
    ],
)
def test_bad_lines_name_the_line(tmp_path, text, file_format, line, match):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=f"line {line}: .*{match}"):
        load_parallel_text(path, file_format=file_format)


def test_missing_empty_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such data file"):
        load_parallel_text(tmp_path / "missing.tsv")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_parallel_text(tmp_path)
    gzipped = tmp_path / "pairs.tsv.gz"
    gzipped.write_bytes(gzip.compress(b"a\tb\n"))
    with pytest.raises(ValueError, match="gzip-compressed; decompress"):
        load_parallel_text(gzipped)
    with pytest.raises(ValueError, match="holds no"):
        load_parallel_text(_write(tmp_path, "\n  \n"))
    with pytest.raises(ValueError, match="Received: file_format='csv'"):
        load_parallel_text(_write(tmp_path, "a\tb\n"), file_format="csv")


def test_split_pairs_is_deterministic_and_disjoint():
    pairs = [(str(i), str(i)) for i in range(50)]
    train, test = split_pairs(pairs, 0.1, seed=3)
    assert (len(train), len(test)) == (45, 5)
    assert sorted(train + test) == sorted(pairs)
    assert split_pairs(pairs, 0.1, seed=3) == (train, test)
    assert split_pairs(pairs, 0.1, seed=4) != (train, test)
    with pytest.raises(ValueError, match="Received: test_fraction=1.5"):
        split_pairs(pairs, 1.5)
    with pytest.raises(ValueError, match="at least 2"):
        split_pairs(pairs[:1])


def _tokenizers():
    source = CharacterTokenizer(list("abc"))
    target = CharacterTokenizer(list("xyz"))
    return source, target


def test_make_seq2seq_dataset_shifts_targets():
    source, target = _tokenizers()
    pairs = [("abc", "xy"), ("a", "zzz")]
    dataset = make_seq2seq_dataset(pairs, source, target, batch_size=2)
    assert dataset.cardinality().numpy() == 1
    inputs, target_out = next(iter(dataset))
    assert inputs["source_ids"].numpy().tolist() == [[4, 5, 6], [4, 0, 0]]
    # [start] + target, and target + [end], padded with 0.
    assert inputs["target_in_ids"].numpy().tolist() == [
        [2, 4, 5, 0],
        [2, 6, 6, 6],
    ]
    assert target_out.numpy().tolist() == [[4, 5, 3, 0], [6, 6, 6, 3]]


def test_make_seq2seq_dataset_fixed_lengths_and_shuffle():
    source, target = _tokenizers()
    pairs = [("a" * (i % 3 + 1), "x") for i in range(10)]
    dataset = make_seq2seq_dataset(
        pairs,
        source,
        target,
        batch_size=4,
        shuffle=True,
        seed=1,
        source_length=5,
        target_length=3,
        drop_remainder=True,
    )
    batches = list(dataset)
    assert len(batches) == 2 == dataset.cardinality().numpy()
    for inputs, target_out in batches:
        assert inputs["source_ids"].shape == (4, 5)
        assert inputs["target_in_ids"].shape == (4, 3)
        assert target_out.shape == (4, 3)
    # A new order every epoch.
    first = [b[0]["source_ids"].numpy().tolist() for b in dataset]
    orders = [[b[0]["source_ids"].numpy().tolist() for b in dataset]]
    orders += [[b[0]["source_ids"].numpy().tolist() for b in dataset]]
    assert any(order != first for order in orders)


def test_make_seq2seq_dataset_rejects_too_long_examples():
    source, target = _tokenizers()
    dataset = make_seq2seq_dataset(
        [("abcabc", "x")], source, target, batch_size=1, source_length=4
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="longer than"):
        next(iter(dataset))


def test_make_seq2seq_dataset_accepts_tf_data():
    source, target = _tokenizers()
    pairs = tf.data.Dataset.from_tensor_slices((["ab", "c"], ["x", "yz"]))
    dataset = make_seq2seq_dataset(pairs, source, target, batch_size=8)
    inputs, _ = next(iter(dataset))
    assert inputs["source_ids"].numpy().tolist() == [[4, 5], [6, 0]]
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        make_seq2seq_dataset(pairs, source, target, batch_size=0)
