"""Each item of a batch stands alone: its status, and answers for the others.

Every export screens its `(batch,)` strings the same way, in the graph, and
returns each item's status (`"status"` output):

- `"invalid_utf8"`: the bytes are not valid UTF-8;
- `"empty"`: nothing to answer: only blanks (whitespace, control and
  format characters), or no token besides the start and end ids;
- `"too_long"`: longer than the export's limit, and rejected (the default
  policy);
- `"truncated"`: longer than the limit, cut to it and answered (the policy
  asked for with `truncate=True` at export time);
- `"ok"`.

Only `"ok"` and `"truncated"` items reach the model. Every other item gets
the empty answer (`""` strings, zero numbers, `-1` class ids), so an item
never fails, nor changes, the answers of the others in its batch.
"""

import tensorflow as tf

from keras_attention.serving.constants import SERVING_STATUS
from keras_attention.serving.constants import STATUS_EMPTY
from keras_attention.serving.constants import STATUS_INVALID_UTF8
from keras_attention.serving.constants import STATUS_OK
from keras_attention.serving.constants import STATUS_TOO_LONG
from keras_attention.serving.constants import STATUS_TRUNCATED

__all__ = [
    "answer_items",
    "answer_texts",
    "is_answered",
    "item_status",
    "screen_utf8",
]

# Whitespace, separators, control and format characters (zero-width
# spaces, byte order marks): a text made only of them is blank.
_BLANK_PATTERN = r"[\s\p{Z}\p{Cc}\p{Cf}]*"


def screen_utf8(texts):
    """Which texts are valid UTF-8, and the texts with `""` for the others.

    Args:
        texts: `(batch,)` strings.

    Returns:
        `(valid, safe_texts)`: `(batch,)` bool, and `texts` where an
        invalid item is replaced by `""` (so no tokenizer sees it).

    Example:

    >>> valid, _ = screen_utf8(tf.constant([b"caf\\xc3\\xa9", b"\\xff"]))
    >>> valid.numpy().tolist()
    [True, False]
    """
    repaired = tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace"
    )  # (batch,), invalid sequences replaced by U+FFFD
    valid = tf.equal(repaired, texts)  # (batch,)
    return valid, tf.where(valid, texts, "")


def item_status(
    texts, valid, lengths, max_length=None, truncate=False, num_special=0
):
    """The status string of each item (see the module docstring).

    Args:
        texts: `(batch,)` strings, valid UTF-8 (from `screen_utf8`).
        valid: `(batch,)` bool, whether the original item was valid UTF-8.
        lengths: `(batch,)` integers, each item's length in the unit of the
            limit (characters or ids).
        max_length: optional int, the longest item answered as it is.
            Defaults to `None` (no limit).
        truncate: bool, whether a longer item is `"truncated"` (answered)
            rather than `"too_long"` (rejected). Defaults to `False`.
        num_special: int, the ids of every item that are not its text (a
            start and an end id); an item with no other is `"empty"`.
            Defaults to `0`.

    Returns:
        `(batch,)` tf.string statuses.

    Example:

    >>> texts = tf.constant(["ab", " ", "abcd"])
    >>> status = item_status(texts, tf.constant([True] * 3),
    ...                      tf.constant([2, 1, 4]), max_length=3)
    >>> status.numpy().tolist()
    [b'ok', b'empty', b'too_long']
    """
    status = tf.fill(tf.shape(texts), STATUS_OK)  # (batch,)
    if max_length is not None:
        over = STATUS_TRUNCATED if truncate else STATUS_TOO_LONG
        too_long = lengths > tf.cast(max_length, lengths.dtype)
        status = tf.where(too_long, over, status)
    blank = tf.strings.regex_full_match(texts, _BLANK_PATTERN)
    no_token = lengths <= tf.cast(num_special, lengths.dtype)  # (batch,)
    status = tf.where(blank | no_token, STATUS_EMPTY, status)
    return tf.where(valid, status, STATUS_INVALID_UTF8)


def is_answered(status):
    """`(batch,)` bool: whether each item reaches the model."""
    return tf.equal(status, STATUS_OK) | tf.equal(status, STATUS_TRUNCATED)


def answer_items(answered, inputs, answer, fill_values=None):
    """Answers only the `answered` rows of `inputs`, in batch order.

    Args:
        answered: `(batch,)` bool.
        inputs: `(batch, ...)` tensor or `tf.RaggedTensor`.
        answer: a function of the answered rows, `(num_answered, ...)`,
            returning a dict of `(num_answered, ...)` tensors.
        fill_values: optional dict, the value of an output for the other
            rows (e.g. `{"class_ids": -1}`); the others get `""` or zero.
            Defaults to `None`.

    Returns:
        The dict of `answer`, each tensor `(batch, ...)`.

    Example:

    >>> outputs = answer_items(tf.constant([True, False, True]),
    ...                        tf.constant([1, 2, 3]),
    ...                        lambda x: {"double": 2 * x})
    >>> outputs["double"].numpy().tolist()
    [2, 0, 6]
    """
    fill_values = fill_values or {}
    rows = tf.where(answered)[:, 0]  # (num_answered,)
    outputs = answer(tf.gather(inputs, rows))
    num_answered = tf.shape(rows, out_type=tf.int32)[0]
    # Row `i` of the batch reads its answer, or the fill row after them.
    order = tf.cumsum(tf.cast(answered, tf.int32)) - 1  # (batch,)
    order = tf.where(answered, order, num_answered)  # (batch,)
    batch_outputs = {}
    for key, value in outputs.items():
        fill_shape = tf.concat([[1], tf.shape(value)[1:]], axis=0)
        if key in fill_values:
            fill = tf.fill(fill_shape, tf.cast(fill_values[key], value.dtype))
        else:
            fill = tf.zeros(fill_shape, value.dtype)  # "" for strings
        batch_outputs[key] = tf.gather(
            tf.concat([value, fill], axis=0), order
        )  # (batch, ...)
    return batch_outputs


def answer_texts(
    texts,
    tokenize,
    answer,
    max_length=None,
    truncate=False,
    num_special=0,
    cut=None,
    fill_values=None,
):
    """Screens, tokenizes and answers a batch of texts, item by item.

    The steps every export's signature takes: `screen_utf8`, `tokenize`,
    `item_status` on the id counts, the ids cut to `max_length`, and
    `answer_items` on the answerable items.

    Args:
        texts: `(batch,)` strings.
        tokenize: a function of `(batch,)` valid strings returning
            `(batch, None)` ragged ids.
        answer: a function of the ragged ids of the answerable items
            returning a dict of outputs (see `answer_items`).
        max_length: optional int, the most ids answered as they are.
            Defaults to `None` (no limit).
        truncate: bool, the policy for longer items (see `item_status`).
            Defaults to `False`.
        num_special: int, see `item_status`. Defaults to `0`.
        cut: optional function cutting ragged ids to `max_length`.
            Defaults to `None` (keep the first `max_length` ids).
        fill_values: optional dict, see `answer_items`. Defaults to
            `None`.

    Returns:
        The dict of `answer` with `"status"` added, each `(batch, ...)`.

    Example:

    >>> outputs = answer_texts(
    ...     tf.constant(["abc", ""]),
    ...     lambda t: tf.strings.unicode_decode(t, "UTF-8"),
    ...     lambda ids: {"sum": tf.reduce_sum(ids, axis=1)})
    >>> outputs["status"].numpy().tolist()
    [b'ok', b'empty']
    """
    valid, texts = screen_utf8(texts)  # (batch,), (batch,)
    ids = tokenize(texts)  # (batch, None) ragged
    status = item_status(
        texts, valid, ids.row_lengths(), max_length, truncate, num_special
    )  # (batch,)
    if max_length is not None:
        ids = cut(ids) if cut else ids[:, :max_length]  # (batch, None)
    outputs = answer_items(is_answered(status), ids, answer, fill_values)
    outputs[SERVING_STATUS] = status
    return outputs
