"""The one `tf.data` pipeline behind every training dataset of the package.

A task (text classification, translation, seq2seq) says what its examples
are through hooks: how a chunk of raw examples is encoded into token ids,
which encoded examples to keep, the length that groups examples into
buckets, and the padding. This module owns the rest, in one order:

    examples -> batch(TOKENIZE_CHUNK) -> encode -> unbatch -> keep
             -> cache -> shuffle(seed) -> bucket or padded batch
             -> finish -> cardinality -> prefetch

Encoding runs in large vectorised chunks and once (the result is cached);
shuffling reshuffles every epoch; bucketing pads a batch only to its own
longest sequence. `make_text_classification_dataset`,
`make_translation_dataset` and `make_seq2seq_dataset` are its users.
"""

import os

import tensorflow as tf

from keras_attention._checks import check_positive_int

__all__ = [
    "BUCKET_GROWTH",
    "DEFAULT_LONGEST_BUCKET",
    "DEFAULT_SHUFFLE_BUFFER",
    "PADDING_ID",
    "SMALLEST_BUCKET",
    "TOKENIZE_CHUNK",
    "batch_examples",
    "check_batch_size",
    "count_batches_and_examples",
    "geometric_boundaries",
]

# Raw examples encoded per vectorised call of the tokenizers.
TOKENIZE_CHUNK = 1024
# Examples held by the shuffle buffer of a `tf.data.Dataset` input (an
# in-memory list is shuffled whole).
DEFAULT_SHUFFLE_BUFFER = 20_000
# The id that pads sequences (and that the models mask out).
PADDING_ID = 0
# Generated bucket boundaries: SMALLEST_BUCKET, times BUCKET_GROWTH, ...
# up to the longest sequence (or DEFAULT_LONGEST_BUCKET).
SMALLEST_BUCKET = 8
BUCKET_GROWTH = 2
DEFAULT_LONGEST_BUCKET = 256


def check_batch_size(batch_size, argument="batch_size"):
    """Raise a `ValueError` unless `batch_size` is a positive int."""
    return check_positive_int(argument, batch_size)


def geometric_boundaries(
    max_length=None, smallest=SMALLEST_BUCKET, growth=BUCKET_GROWTH
):
    """Bucket boundaries `smallest, smallest * growth, ...` to a length.

    Args:
        max_length: optional int, the largest boundary. Defaults to `None`
            (`DEFAULT_LONGEST_BUCKET`).
        smallest: int, the first boundary. Defaults to `8`.
        growth: int, the factor between boundaries. Defaults to `2`.

    Returns:
        A list of ints; `[max_length]` when it is below `smallest`.

    Example:

    >>> geometric_boundaries(40)
    [8, 16, 32]
    """
    limit = DEFAULT_LONGEST_BUCKET if max_length is None else max_length
    boundaries = []
    boundary = smallest
    while boundary <= limit:
        boundaries.append(boundary)
        boundary *= growth
    return boundaries or [limit]


def count_batches_and_examples(dataset):
    """`(batches, examples)` of a batched dataset, in one pass over it.

    The examples are counted along the first axis of the first tensor of
    each batch.
    """

    def count(totals, batch):
        first = tf.nest.flatten(batch)[0]
        return totals[0] + 1, totals[1] + tf.shape(first)[0]

    batches, examples = dataset.reduce((0, 0), count)
    return int(batches), int(examples)


def _dense_rows(*components):
    return tuple(tf.convert_to_tensor(c) for c in components)


def batch_examples(
    examples,
    encode,
    batch_size,
    keep=None,
    length=None,
    bucket_boundaries=(),
    bucket_batch_sizes=None,
    padded_shapes=None,
    padding_values=None,
    drop_remainder=False,
    cache=True,
    shuffle=False,
    seed=None,
    shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
    finish=None,
    num_examples=None,
    count_batches=False,
    check_counts=None,
):
    """Encodes, caches, shuffles, batches and prefetches examples.

    Args:
        examples: a `tf.data.Dataset` of raw examples (tuples of scalars).
        encode: the task's hook: a function of one chunk of raw examples
            (each component batched, `(chunk,)`) returning a tuple of
            per-example tensors batched along the first axis, ragged or
            dense (e.g. token ids `(chunk, None)` and labels `(chunk,)`).
        batch_size: int, the examples per batch (every bucket's, unless
            `bucket_batch_sizes` is given).
        keep: optional predicate of one encoded example; the others are
            left out before caching. Defaults to `None` (keep all).
        length: optional function of one encoded example giving the length
            it is bucketed by. Defaults to `None`: padded batches in order.
        bucket_boundaries: increasing lengths; bucket `i` holds the lengths
            in `[boundaries[i - 1], boundaries[i])`. Used with `length`.
            Defaults to `()`.
        bucket_batch_sizes: optional list of one batch size per bucket
            (`len(bucket_boundaries) + 1`). Defaults to `None`.
        padded_shapes: optional padded shape of each component of a padded
            batch (`None` entries pad to the batch's longest). Defaults to
            `None` (the batch's longest everywhere).
        padding_values: optional padding value of each component. Defaults
            to `None` (`PADDING_ID`, 0).
        drop_remainder: bool, whether to drop a last, smaller batch of the
            padded batching. Defaults to `False`.
        cache: `True` (in memory), a path prefix (cache files, for data too
            large for memory) or `False`. Defaults to `True`.
        shuffle: bool, whether to reshuffle the examples every epoch.
            Defaults to `False`.
        seed: optional int, the shuffling seed. Defaults to `None`.
        shuffle_buffer: int, the shuffle buffer size. Defaults to `20000`.
        finish: optional function mapping a batch (the encoded components,
            batched) to what the model takes, e.g. `(inputs_dict, labels)`.
            Defaults to `None`.
        num_examples: optional int, the number of examples when known up
            front; without `keep` or buckets the batch count follows and is
            declared as the cardinality. Defaults to `None`.
        count_batches: bool, whether to count the batches with one pass
            over the data (which also fills the cache) and declare the
            count as the cardinality, so that Keras shows progress from the
            first epoch. Each bucket always holds the same examples, so the
            count does not change with shuffling. Defaults to `False`.
        check_counts: optional function of `(num_batches, num_examples)`
            called after counting (to reject or report left-out
            examples). Defaults to `None`.

    Returns:
        The batched, prefetched `tf.data.Dataset`.

    Example:

    >>> data = tf.data.Dataset.from_tensor_slices([[1, 2], [3, 4], [5, 6]])
    >>> batches = batch_examples(data, lambda ids: (ids,), batch_size=2)
    >>> [batch.shape for batch, in batches]
    [TensorShape([2, 2]), TensorShape([1, 2])]
    """
    check_batch_size(batch_size)
    dataset = (
        examples.batch(TOKENIZE_CHUNK)
        .map(encode, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
    )
    if any(
        isinstance(spec, tf.RaggedTensorSpec)
        for spec in tf.nest.flatten(dataset.element_spec)
    ):
        # Unbatched ragged rows are ragged specs of rank 0, which batching
        # does not take; a map hands them over as the dense rows they are.
        dataset = dataset.map(_dense_rows, num_parallel_calls=tf.data.AUTOTUNE)
    if keep is not None:
        dataset = dataset.filter(keep)
    if cache:
        dataset = dataset.cache("" if cache is True else os.fspath(cache))
    if shuffle:
        dataset = dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
    if length is not None and bucket_boundaries:
        boundaries = list(bucket_boundaries)
        dataset = dataset.bucket_by_sequence_length(
            length,
            bucket_boundaries=boundaries,
            bucket_batch_sizes=bucket_batch_sizes
            or [batch_size] * (len(boundaries) + 1),
            padding_values=padding_values,
        )
        num_examples = None  # buckets hide the batch count
    else:
        dataset = dataset.padded_batch(
            batch_size,
            padded_shapes=padded_shapes,
            padding_values=padding_values,
            drop_remainder=drop_remainder,
        )
    if finish is not None:
        dataset = dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    num_batches = None
    if count_batches:
        num_batches, kept = count_batches_and_examples(dataset)
        if check_counts is not None:
            check_counts(num_batches, kept)
    elif num_examples is not None and keep is None:
        num_batches = num_examples // batch_size
        if not drop_remainder and num_examples % batch_size:
            num_batches += 1
    if num_batches is not None:
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(num_batches)
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
