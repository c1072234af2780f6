import keras
import numpy as np
import pytest

from keras_attention.layers._matmul_einsum_dense import MatMulEinsumDense
from keras_attention.layers._matmul_einsum_dense import _contracted_axes


@pytest.mark.parametrize(
    "equation,expected",
    [
        ("btd,dhk->bthk", 1),
        ("bthk,hko->bto", 2),
        ("abc,cd->abd", 1),
        ("btd,hdk->bthk", 0),  # kernel does not start with the contraction
        ("bthk,kho->bto", 0),  # contracted axes in another order
        ("btd,dk->btk", 1),
        ("btd,dk->bkt", 0),  # output axes reordered
    ],
)
def test_contracted_axes_recognises_plain_matmuls(equation, expected):
    assert _contracted_axes(equation) == expected


@pytest.mark.tf_only
@pytest.mark.parametrize(
    "equation,output_shape,bias_axes,input_shape",
    [
        ("btd,dhk->bthk", (None, 3, 4), "hk", (2, 5, 6)),
        ("bthk,hko->bto", (None, 7), "o", (2, 5, 3, 4)),
        ("btd,dhk->bthk", (None, 3, 4), None, (2, 5, 6)),
        ("btd,dhk->bthk", (None, 3, 4), "k", (2, 5, 6)),  # partial bias
        ("btd,hdk->bthk", (None, 3, 4), "hk", (2, 5, 6)),  # not a matmul
    ],
)
def test_matches_einsum_dense_outputs_and_gradients(
    equation, output_shape, bias_axes, input_shape
):
    import tensorflow as tf

    kwargs = dict(
        equation=equation,
        output_shape=output_shape,
        bias_axes=bias_axes,
        bias_initializer="random_normal",
        activation="tanh",
    )
    ours = MatMulEinsumDense(**kwargs)
    reference = keras.layers.EinsumDense(**kwargs)
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    ours.build(x.shape)
    reference.build(x.shape)
    reference.set_weights(ours.get_weights())
    results = []
    for layer in (ours, reference):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
            loss = tf.reduce_sum(tf.sin(y))
        results.append([y] + tape.gradient(loss, [xt] + layer.weights))
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.tf_only
def test_dynamic_batch_and_length_and_config_round_trip():
    import tensorflow as tf

    layer = MatMulEinsumDense(
        "btd,dhk->bthk", output_shape=(None, 2, 4), bias_axes="hk"
    )
    layer.build((None, None, 6))
    spec = tf.TensorSpec((None, None, 6), tf.float32)
    project = tf.function(layer.call, input_signature=[spec])
    assert project(np.ones((3, 7, 6), "float32")).shape == (3, 7, 2, 4)
    clone = MatMulEinsumDense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_lora_is_applied():
    layer = MatMulEinsumDense("btd,dhk->bthk", output_shape=(None, 2, 4))
    x = np.random.default_rng(1).normal(size=(2, 3, 6)).astype("float32")
    layer.build(x.shape)
    before = layer(x)
    layer.enable_lora(2)
    layer.lora_kernel_b.assign(np.ones(layer.lora_kernel_b.shape))
    reference = keras.layers.EinsumDense(
        "btd,dhk->bthk", output_shape=(None, 2, 4)
    )
    reference.build(x.shape)
    reference.kernel.assign(layer.kernel)
    np.testing.assert_allclose(layer(x), reference(x), atol=1e-5)
    assert not np.allclose(layer(x), before)


@pytest.mark.tf_only
@pytest.mark.parametrize(
    "equation,bias_axes",
    [
        ("btd,dhk->bthk", "hk"),  # the matmul path
        ("btd,dhk->bthk", "k"),  # partial bias: EinsumDense's path, split
    ],
)
def test_sections_equal_the_split_projection(equation, bias_axes):
    import tensorflow as tf

    layer = MatMulEinsumDense(
        equation,
        output_shape=(None, 3, 9),
        bias_axes=bias_axes,
        bias_initializer="random_normal",
    )
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 5, 6)), "float32")
    layer.build(x.shape)
    results = []
    for sections in (None, [4, 4, 1]):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, sections=sections)
            parts = tf.split(y, [4, 4, 1], axis=-1) if sections is None else y
            loss = sum(
                tf.reduce_sum(tf.sin(p) * (i + 1)) for i, p in enumerate(parts)
            )
        results.append(list(parts) + tape.gradient(loss, [x] + layer.weights))
    assert [tuple(p.shape) for p in results[1][:3]] == [
        (2, 5, 3, 4),
        (2, 5, 3, 4),
        (2, 5, 3, 1),
    ]
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)
    inputs = keras.Input((5, 6))
    whole = tuple(layer(inputs).shape)
    symbolic = layer(inputs, sections=[4, 4, 1])
    assert [tuple(p.shape) for p in symbolic] == [
        whole[:-1] + (size,) for size in (4, 4, 1)
    ]
    with pytest.raises(ValueError, match="must add up to the last axis"):
        layer(x, sections=[4, 4])
