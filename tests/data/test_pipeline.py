"""The shared `tf.data` pipeline, with toy encoders (no tokenizer)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data.pipeline import batch_examples
from keras_attention.data.pipeline import check_batch_size
from keras_attention.data.pipeline import count_batches_and_examples
from keras_attention.data.pipeline import geometric_boundaries


def _ragged_ids(lengths):
    """`(ids, lengths)` examples: row `i` holds `lengths[i]` ones."""
    return tf.data.Dataset.from_tensor_slices(
        (tf.constant(lengths, tf.int32), tf.constant(lengths, tf.int32))
    )


def _encode(lengths, labels):
    ids = tf.RaggedTensor.from_row_lengths(
        tf.ones([tf.reduce_sum(lengths)], tf.int32), lengths
    )  # (chunk, None)
    return ids, labels


def _length(ids, label):
    return tf.shape(ids)[0]


def test_geometric_boundaries():
    assert geometric_boundaries(40) == [8, 16, 32]
    assert geometric_boundaries() == [8, 16, 32, 64, 128, 256]
    assert geometric_boundaries(5) == [5]
    assert geometric_boundaries(100, smallest=10, growth=3) == [10, 30, 90]


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, None])
def test_check_batch_size(batch_size):
    with pytest.raises(ValueError, match="positive integer. Received: batch_s"):
        check_batch_size(batch_size)


def test_padded_batches_in_order_with_a_known_count():
    lengths = [3, 1, 2, 4, 1]
    dataset = batch_examples(
        _ragged_ids(lengths), _encode, batch_size=2, num_examples=5
    )
    assert int(dataset.cardinality()) == 3
    batches = [(ids.numpy(), labels.numpy()) for ids, labels in dataset]
    assert [ids.shape for ids, _ in batches] == [(2, 3), (2, 4), (1, 1)]
    assert [labels.tolist() for _, labels in batches] == [[3, 1], [2, 4], [1]]
    np.testing.assert_array_equal(batches[0][0], [[1, 1, 1], [1, 0, 0]])


def test_fixed_shapes_and_drop_remainder():
    dataset = batch_examples(
        _ragged_ids([1, 2, 3]),
        _encode,
        batch_size=2,
        padded_shapes=([5], []),
        drop_remainder=True,
        num_examples=3,
    )
    assert dataset.element_spec[0].shape.as_list() == [2, 5]
    assert int(dataset.cardinality()) == 1 == len(list(dataset))


def test_buckets_keep_and_finish():
    lengths = [1, 5, 2, 6, 1, 7, 9, 2]
    dataset = batch_examples(
        _ragged_ids(lengths),
        _encode,
        batch_size=3,
        keep=lambda ids, label: label < 9,
        length=_length,
        bucket_boundaries=[4],
        finish=lambda ids, labels: ({"ids": ids}, labels),
        count_batches=True,
    )
    batches = [sorted(labels.numpy().tolist()) for inputs, labels in dataset]
    # Short rows [1, 2, 1, 2] and long ones [5, 6, 7]; 9 left out.
    assert sorted(batches) == [[1, 1, 2], [2], [5, 6, 7]]
    assert int(dataset.cardinality()) == 3
    assert count_batches_and_examples(dataset) == (3, 7)


def test_check_counts_sees_the_kept_examples():
    seen = []
    batch_examples(
        _ragged_ids([1, 2, 3, 4]),
        _encode,
        batch_size=3,
        keep=lambda ids, label: label % 2 == 0,
        count_batches=True,
        check_counts=lambda batches, kept: seen.append((batches, kept)),
    )
    assert seen == [(1, 2)]


def test_seeded_shuffle_reshuffles_and_caches_to_files(tmp_path):
    def order(seed, cache=True):
        dataset = batch_examples(
            _ragged_ids(list(range(1, 41))),
            _encode,
            batch_size=40,
            shuffle=True,
            seed=seed,
            cache=cache,
        )
        return [labels.numpy().tolist() for _, labels in dataset][0]

    first = order(1)
    assert sorted(first) == list(range(1, 41)) and first != sorted(first)
    assert order(1, cache=tmp_path / "cache") == first
    assert any(p.name.startswith("cache") for p in tmp_path.iterdir())
    assert order(2) != first
