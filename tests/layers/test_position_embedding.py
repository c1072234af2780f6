"""Tests of `PositionEmbedding`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.layers.position_embedding import PositionEmbedding
from tests.testing import run_layer_test

TABLE_LENGTH, DEPTH = 8, 4
# The error message names the input length and the table length.
# At run time the numbers come as the assertion's data: `seq_len=] [10]`.
TOO_LONG = r"(?s)does not fit.*seq_len=\W*{}\b.*sequence_length=8"


def inputs(length, batch=2):
    return (
        np.random.default_rng(0)
        .normal(size=(batch, length, DEPTH))
        .astype("float32")
    )


def built_layer():
    layer = PositionEmbedding(TABLE_LENGTH)
    layer.build((None, None, DEPTH))
    return layer


@pytest.mark.parametrize("length", [1, 5, TABLE_LENGTH])
def test_values_are_table_rows(length):
    layer = built_layer()
    table = keras.ops.convert_to_numpy(layer.embeddings)
    assert table.shape == (TABLE_LENGTH, DEPTH)
    outputs = layer(inputs(length))
    assert outputs.shape == (2, length, DEPTH)
    np.testing.assert_array_equal(outputs[0], table[:length])
    np.testing.assert_array_equal(outputs[1], table[:length])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_start_index(as_tensor):
    layer = built_layer()
    table = keras.ops.convert_to_numpy(layer.embeddings)
    start = keras.ops.convert_to_tensor(3) if as_tensor else 3
    outputs = layer(inputs(4), start_index=start)
    np.testing.assert_array_equal(outputs[1], table[3:7])
    # One token at a time, as in cached decoding.
    for t in range(TABLE_LENGTH):
        step = layer(inputs(1), start_index=t)
        np.testing.assert_array_equal(step[0, 0], table[t])


@pytest.mark.tf_only
def test_gradient_reaches_only_the_used_rows():
    layer = built_layer()
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(layer(inputs(3), start_index=2))
    gradient = keras.ops.convert_to_numpy(
        tape.gradient(loss, layer.embeddings.value)
    )
    np.testing.assert_array_equal(gradient[2:5], 2.0)  # two batch rows
    np.testing.assert_array_equal(gradient[:2], 0.0)
    np.testing.assert_array_equal(gradient[5:], 0.0)


@pytest.mark.parametrize(
    "length, start_index", [(TABLE_LENGTH + 1, 0), (5, 4), (2, -1)]
)
def test_too_long_static_length_raises_at_trace_time(length, start_index):
    with pytest.raises(ValueError, match=TOO_LONG.format(length)):
        built_layer()(inputs(length), start_index=start_index)


@pytest.mark.tf_only
def test_too_long_dynamic_length_raises_at_run_time():
    layer = built_layer()
    call = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None, DEPTH))]
    )
    np.testing.assert_array_equal(
        call(inputs(TABLE_LENGTH)), layer(inputs(TABLE_LENGTH))
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=TOO_LONG.format(TABLE_LENGTH + 1),
    ):
        call(inputs(TABLE_LENGTH + 1))


@pytest.mark.tf_only
def test_too_long_in_a_model_raises_at_run_time():
    sequence = keras.Input((None, DEPTH))
    model = keras.Model(sequence, PositionEmbedding(TABLE_LENGTH)(sequence))
    assert model.predict(inputs(5), verbose=0).shape == (2, 5, DEPTH)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=TOO_LONG.format(10)
    ):
        model.predict(inputs(10), verbose=0)


def test_tensor_start_index_past_the_table_raises():
    # Eagerly, a tensor's value is known: the same `ValueError` as an int.
    with pytest.raises(ValueError, match=TOO_LONG.format(2)):
        built_layer()(inputs(2), start_index=keras.ops.convert_to_tensor(7))


def test_config_keeps_the_initializer():
    layer = PositionEmbedding(5, initializer="ones", name="positions")
    config = layer.get_config()
    assert config["sequence_length"] == 5
    revived = PositionEmbedding.from_config(config)
    assert revived.name == "positions"
    np.testing.assert_array_equal(revived(inputs(3)), np.ones((2, 3, DEPTH)))


def test_passes_the_mask_on():
    tokens = keras.Input((None,), dtype="int32")
    embeddings = keras.layers.Embedding(10, DEPTH, mask_zero=True)(tokens)
    positions = PositionEmbedding(TABLE_LENGTH)(embeddings)
    assert positions._keras_mask is not None


@pytest.mark.parametrize("sequence_length", [0, -3, None, 2.5])
def test_constructor_errors(sequence_length):
    with pytest.raises(ValueError, match="`sequence_length` must.*Received"):
        PositionEmbedding(sequence_length)


def test_input_rank_error():
    with pytest.raises(ValueError, match="rank >= 2.*Received"):
        PositionEmbedding(TABLE_LENGTH)(np.zeros((DEPTH,), "float32"))


@pytest.mark.parametrize(
    "init_kwargs, shape",
    [
        (dict(sequence_length=TABLE_LENGTH), (2, 5, DEPTH)),
        (
            dict(sequence_length=TABLE_LENGTH, initializer="random_normal"),
            (2, TABLE_LENGTH, DEPTH),
        ),
    ],
)
def test_layer(init_kwargs, shape):
    run_layer_test(
        PositionEmbedding,
        init_kwargs=init_kwargs,
        input_data=np.random.default_rng(0)
        .normal(size=shape)
        .astype("float32"),
        expected_output_shape=shape,
        expected_num_trainable_weights=1,
    )


@pytest.mark.tf_only
def test_dynamic_length_check_compiles_under_xla():
    layer = PositionEmbedding(sequence_length=TABLE_LENGTH)
    spec = tf.TensorSpec((None, None, 4), tf.float32)
    expected = layer(np.zeros((2, 5, 4), "float32"))

    @tf.function(
        input_signature=[spec, tf.TensorSpec((), tf.int32)], jit_compile=True
    )
    def embed(x, start):
        return layer(x, start_index=start)

    got = embed(tf.zeros((2, 3, 4)), tf.constant(2))
    np.testing.assert_allclose(got, expected[:, 2:5], atol=1e-6)
