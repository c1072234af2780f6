"""Parallel text (source -> target string pairs): local files and pipelines.

Two file formats are read:

- `"tsv"`: one `source<TAB>target` pair per line; whitespace around each
  field is stripped.
- `"underscore"`: the target starts at the first `_` of each line,
  `question _answer`, as in many teaching datasets (`16+75  _91`,
  `september 27, 1994  _1994-09-27`). Surrounding whitespace (often used to
  pad every line to one width) is stripped from both sides.

Lines that hold only whitespace are ignored. Any other line that does not
parse raises a `ValueError` naming the file and the line number.

`make_seq2seq_dataset` turns string pairs into the batches that a
teacher-forced encoder-decoder trains on (the pipeline of
`keras_attention.data.pipeline`).
"""

import os
import random

import tensorflow as tf

from keras_attention.data.pipeline import DEFAULT_SHUFFLE_BUFFER
from keras_attention.data.pipeline import batch_examples
from keras_attention.data.pipeline import check_batch_size
from keras_attention.files import read_text_lines

__all__ = [
    "FILE_FORMATS",
    "load_parallel_text",
    "make_seq2seq_dataset",
    "split_pairs",
]

FILE_FORMATS = ("tsv", "underscore")


def _detect_format(lines):
    """`"tsv"` when most non-blank lines hold a tab, else `"underscore"`.

    A majority, not the first line: one malformed line should be reported
    as such (with its number), not turn the whole file into another format.
    """
    lines = [line for line in lines if line.strip()]
    with_tab = sum("\t" in line for line in lines)
    return "tsv" if 2 * with_tab >= len(lines) else "underscore"


def _parse_line(line, file_format):
    """`(source, target)` or an error message for one non-blank line."""
    if file_format == "tsv":
        fields = line.split("\t")
        if len(fields) != 2:
            return (
                "expected `source<TAB>target` (one tab), found "
                f"{len(fields) - 1} tabs"
            )
        source, target = fields[0].strip(), fields[1].strip()
    else:
        if "_" not in line:
            return "expected `source _target`, found no `_`"
        source, target = line.split("_", 1)
        source, target = source.strip(), target.strip()
    if not source:
        return "the source is empty"
    if not target:
        return "the target is empty"
    return source, target


def load_parallel_text(path, file_format=None):
    """Reads `(source, target)` string pairs from a local text file.

    Args:
        path: path of a UTF-8 text file.
        file_format: `"tsv"`, `"underscore"` or `None` to detect it: `"tsv"`
            when most non-blank lines hold a tab. Defaults to `None`.

    Returns:
        A list of `(source, target)` tuples of `str`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: on an unknown format, a line that does not parse (the
            message names the line number) or a file with no pairs.

    Example:

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
    ...     _ = file.write("16+75  _91\\n2+3    _5\\n")
    ...     file.flush()
    ...     load_parallel_text(file.name)
    [('16+75', '91'), ('2+3', '5')]
    """
    if file_format is not None and file_format not in FILE_FORMATS:
        raise ValueError(
            f"`file_format` must be one of {FILE_FORMATS} or None. "
            f"Received: file_format={file_format!r}"
        )
    path = os.fspath(path)
    lines = read_text_lines(path)
    if file_format is None:
        file_format = _detect_format(lines)
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parsed = _parse_line(line, file_format)
        if isinstance(parsed, str):
            raise ValueError(
                f"{path}, line {number}: {parsed} ({file_format} format). "
                f"Received: {line!r}"
            )
        pairs.append(parsed)
    if not pairs:
        raise ValueError(f"{path}: the file holds no `source -> target` pairs.")
    return pairs


def split_pairs(pairs, test_fraction=0.1, seed=0):
    """Shuffles pairs deterministically and holds out a test fraction.

    Args:
        pairs: a list of `(source, target)` pairs.
        test_fraction: float in `(0, 1)`, the held-out fraction (at least
            one pair). Defaults to `0.1`.
        seed: shuffling seed. Defaults to `0`.

    Returns:
        `(train_pairs, test_pairs)`.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            "`test_fraction` must be in (0, 1). "
            f"Received: test_fraction={test_fraction}"
        )
    if len(pairs) < 2:
        raise ValueError(
            "Need at least 2 pairs to hold some out. "
            f"Received: {len(pairs)} pair(s)"
        )
    pairs = list(pairs)
    random.Random(seed).shuffle(pairs)
    num_test = min(len(pairs) - 1, max(1, round(len(pairs) * test_fraction)))
    return pairs[num_test:], pairs[:num_test]


def _check_length(ids, length, what):
    """Fails when a row of ragged `(batch, None)` ids exceeds `length`."""
    if length is None:
        return
    longest = tf.reduce_max(ids.row_lengths())
    tf.debugging.assert_less_equal(
        longest,
        tf.cast(length, longest.dtype),
        message=f"A {what} is longer than its fixed length {length}.",
    )


def make_seq2seq_dataset(
    pairs,
    source_tokenizer,
    target_tokenizer,
    batch_size,
    shuffle=False,
    seed=None,
    source_length=None,
    target_length=None,
    drop_remainder=False,
):
    """Batches of `(source, target)` pairs for teacher-forced training.

    The strings are tokenized once, cached (in memory), optionally
    reshuffled every epoch, padded (with id `0`) and prefetched (see
    `keras_attention.data.pipeline.batch_examples`).

    Args:
        pairs: a list of `(source, target)` string pairs or a `tf.data`
            dataset of them.
        source_tokenizer: a tokenizer with `tokenize`, e.g.
            `keras_attention.text.CharacterTokenizer`.
        target_tokenizer: a tokenizer with `tokenize`, `start_id` and
            `end_id`.
        batch_size: int, the batch size.
        shuffle: bool, whether to reshuffle the examples every epoch.
            Defaults to `False`.
        seed: optional int, the shuffling seed. Defaults to `None`.
        source_length: optional int; pad every source to exactly this many
            ids (fixed shapes compile once under XLA). A longer source fails
            with an error. Defaults to `None` (pad to the longest in the
            batch).
        target_length: optional int, the same for the targets, counting the
            start (or end) id. Defaults to `None`.
        drop_remainder: bool, whether to drop the last, smaller batch.
            Defaults to `False`.

    Returns:
        A `tf.data.Dataset` of
        `({"source_ids": (batch, src_len), "target_in_ids": (batch,
        tgt_len)}, target_out_ids (batch, tgt_len))`, where `target_in_ids`
        is `[start] + target` and `target_out_ids` is `target + [end]`.
    """
    check_batch_size(batch_size)
    shuffle_buffer = DEFAULT_SHUFFLE_BUFFER
    num_examples = None
    if isinstance(pairs, tf.data.Dataset):
        dataset = pairs
    else:
        pairs = list(pairs)
        if not pairs:
            raise ValueError("`pairs` is empty.")
        num_examples = shuffle_buffer = len(pairs)
        sources, targets = zip(*pairs)
        dataset = tf.data.Dataset.from_tensor_slices(
            (list(sources), list(targets))
        )

    def encode(sources, targets):
        source_ids = source_tokenizer.tokenize(sources)  # (chunk, None)
        target_ids = target_tokenizer.tokenize(targets)  # (chunk, None)
        chunk = tf.shape(target_ids.row_lengths())[0]
        start = tf.fill(
            [chunk, 1], tf.cast(target_tokenizer.start_id, tf.int32)
        )
        end = tf.fill([chunk, 1], tf.cast(target_tokenizer.end_id, tf.int32))
        target_in = tf.concat([start, target_ids], axis=1)  # (chunk, None)
        target_out = tf.concat([target_ids, end], axis=1)  # (chunk, None)
        _check_length(source_ids, source_length, "source")
        _check_length(target_in, target_length, "target")
        return source_ids, target_in, target_out

    def as_inputs(source_ids, target_in, target_out):
        inputs = {"source_ids": source_ids, "target_in_ids": target_in}
        return inputs, target_out

    return batch_examples(
        dataset,
        encode,
        batch_size,
        padded_shapes=([source_length], [target_length], [target_length]),
        drop_remainder=drop_remainder,
        shuffle=shuffle,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        finish=as_inputs,
        num_examples=num_examples,
    )
