"""Tests of the `RMSNormalization` layer.

The reference is a NumPy formula written here, values and the closed-form
gradient, and `keras.layers.RMSNormalization` given the same weights (the
same plain `scale` parametrization).
"""

import os
import tempfile

import keras
import numpy as np
import pytest

from keras_attention.layers.rms_normalization import RMSNormalization
from tests.testing import run_layer_test
from tests.testing import value_and_gradients


def numpy_rms_norm(x, scale, axes, epsilon):
    x = x.astype("float64")
    rms = np.sqrt(np.mean(x**2, axis=axes, keepdims=True) + epsilon)
    return x / rms * scale


def numpy_rms_norm_input_gradient(x, scale, upstream, epsilon):
    """d sum(upstream * y) / dx, normalizing the last axis."""
    x = x.astype("float64")
    n = x.shape[-1]
    r = 1.0 / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + epsilon)
    weighted = upstream * scale  # dL/d(normalized x)
    return r * weighted - x * r**3 / n * np.sum(
        weighted * x, axis=-1, keepdims=True
    )


def random(shape, seed=0, magnitude=1.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * magnitude).astype("float32")


def built_layer(input_shape, seed=1, **kwargs):
    """A layer with a random (not all-ones) scale."""
    layer = RMSNormalization(**kwargs)
    layer.build(input_shape)
    layer.scale.assign(random(layer.scale.shape, seed) + 1.0)
    return layer


def test_layer_contract():
    run_layer_test(
        RMSNormalization,
        dict(axis=-1, epsilon=1e-5),
        random((2, 5, 8)),
        expected_output_shape=(2, 5, 8),
        expected_num_trainable_weights=1,
    )


@pytest.mark.parametrize(
    "axis, shape, axes",
    [
        (-1, (3, 6, 16), (2,)),
        (1, (3, 6, 16), (1,)),
        ([1, 2], (2, 4, 3, 8), (1, 2)),
        ([-1, -2], (2, 4, 3, 8), (2, 3)),
    ],
)
def test_matches_numpy_formula(axis, shape, axes):
    x = random(shape, magnitude=3.0)
    layer = built_layer(shape, axis=axis, epsilon=1e-5)
    scale = keras.ops.convert_to_numpy(layer.scale)
    scale_shape = [1] * len(shape)
    for a in axes:
        scale_shape[a] = shape[a]
    expected = numpy_rms_norm(x, scale.reshape(scale_shape), axes, 1e-5)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
    assert tuple(layer.scale.shape) == tuple(shape[a] for a in axes)


def test_gradients_match_numpy_formula():
    x = random((3, 5, 16), magnitude=2.0)
    upstream = random((3, 5, 16), seed=2)
    layer = built_layer(x.shape, epsilon=1e-6)
    scale = keras.ops.convert_to_numpy(layer.scale)

    def fn(inputs, scale_value):
        # `stateless_call` makes the scale an input, differentiable on every
        # backend.
        outputs, _ = layer.stateless_call([scale_value], [], inputs)
        return outputs, keras.ops.sum(keras.ops.multiply(outputs, upstream))

    outputs, x_grad, scale_grad = value_and_gradients(fn, x, scale)
    np.testing.assert_allclose(
        outputs, numpy_rms_norm(x, scale, -1, 1e-6), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        x_grad,
        numpy_rms_norm_input_gradient(x, scale, upstream, 1e-6),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        scale_grad,
        np.sum(upstream * numpy_rms_norm(x, 1.0, -1, 1e-6), axis=(0, 1)),
        rtol=1e-4,
        atol=1e-4,
    )


# Trailing axes only: Keras 3.15 multiplies by `scale` without reshaping
# it, which fails for other axes (ours reshapes it; see the NumPy test).
@pytest.mark.parametrize("axis", [-1, [2, 3]])
def test_matches_keras_rms_normalization_with_the_same_weights(axis):
    x = random((2, 4, 3, 8), magnitude=2.0)
    ours = built_layer(x.shape, axis=axis)
    theirs = keras.layers.RMSNormalization(axis=axis)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    assert ours.epsilon == theirs.epsilon
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_scale_initializer_and_weight_name():
    layer = RMSNormalization(scale_initializer="zeros")
    layer.build((2, 3, 4))
    assert layer.scale.path.endswith("scale")
    np.testing.assert_array_equal(layer.scale, np.zeros(4))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_large_values_stay_finite(policy):
    # 300^2 = 9e4 overflows float16 (max 65504): the statistic must be
    # computed in float32.
    x = random((2, 5, 16), magnitude=300.0)
    layer = RMSNormalization(dtype=policy)
    y = layer(x)
    half = policy.split("_")[1]
    assert keras.backend.standardize_dtype(y.dtype) == half
    assert layer.scale.dtype == "float32"
    y = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
    assert np.isfinite(y).all()
    # Compared with the input as rounded to the compute dtype.
    rounded = keras.ops.convert_to_numpy(
        keras.ops.cast(keras.ops.cast(x, half), "float32")
    )
    np.testing.assert_allclose(
        y, numpy_rms_norm(rounded, 1.0, -1, 1e-6), rtol=2e-2, atol=2e-2
    )


def test_mask_passes_through():
    ids = np.array([[3, 5, 2, 0, 0], [4, 1, 6, 7, 2]], "int32")
    inputs = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 8, mask_zero=True)(inputs)
    normalized = RMSNormalization()(embedded)
    # Average pooling reads the mask: padded positions are left out.
    pooled = keras.layers.GlobalAveragePooling1D()(normalized)
    model = keras.Model(inputs, [normalized, pooled])
    sequence, mean = model.predict(ids, verbose=0)
    mask = (ids != 0)[..., None]
    expected = (sequence * mask).sum(axis=1) / mask.sum(axis=1)
    np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-6)
    layer = RMSNormalization()
    explicit_mask = keras.ops.convert_to_tensor(ids != 0)
    assert layer.compute_mask(ids, explicit_mask) is explicit_mask


def test_config_round_trip():
    layer = RMSNormalization(
        axis=[1, 2],
        epsilon=1e-5,
        scale_initializer="zeros",
        scale_regularizer="l2",
        scale_constraint="non_neg",
        name="rms",
    )
    config = layer.get_config()
    assert config["axis"] == [1, 2]
    assert config["epsilon"] == 1e-5
    revived = RMSNormalization.from_config(config)
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "keras_attention>RMSNormalization"
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert deserialized.get_config() == config


def test_keras_file_save_and_load():
    x = random((2, 5, 8))
    inputs = keras.Input(shape=(None, 8))
    layer = RMSNormalization(name="rms")
    model = keras.Model(inputs, layer(inputs))
    layer.scale.assign(random((8,), seed=3))
    expected = model.predict(x, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.get_layer("rms"), RMSNormalization)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epsilon=0), "Received: epsilon=0"),
        (dict(epsilon=-1e-6), "Received: epsilon=-1e-06"),
        (dict(epsilon="small"), "Received: epsilon='small'"),
        (dict(axis=1.5), "Received: axis=1.5"),
        (dict(axis=[]), r"Received: axis=\[\]"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RMSNormalization(**kwargs)


@pytest.mark.parametrize(
    "axis, match",
    [
        (3, "`axis` is out of range.*Received: axis=3"),
        (-4, "`axis` is out of range.*Received: axis=-4"),
        ([2, -1], r"twice.*Received: axis=\[2, -1\]"),
    ],
)
def test_axis_out_of_range_raises(axis, match):
    layer = RMSNormalization(axis=axis)
    with pytest.raises(ValueError, match=match):
        layer(random((2, 5, 8)))
    with pytest.raises(ValueError, match=match):
        layer.compute_output_shape((2, 5, 8))


def test_unknown_normalized_axis_size_raises():
    with pytest.raises(ValueError, match="known sizes.*Received: axis=1"):
        RMSNormalization(axis=1)(keras.Input(shape=(None, 8)))
