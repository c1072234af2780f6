"""Tests of the `RotaryEmbedding` layer.

The convention matched is KerasHub's (`keras_hub.layers.RotaryEmbedding`,
the "rotate-half" layout of GPT-NeoX and Llama): feature `i` of the first
half of the feature axis is rotated with feature `i + d/2` of the second
half, by the angle `(position / scaling_factor) / max_wavelength^(2i/d)`.
The reference is that formula written here in NumPy, pair by pair; where
`keras_hub` is installed (an optional, benchmark-only package) the layer is
also compared with KerasHub's given the same inputs.
"""

import keras
import numpy as np
import pytest

from keras_attention.layers.rotary_embedding import RotaryEmbedding
from tests.testing import run_layer_test


def numpy_rope(x, positions, max_wavelength=10000, scaling_factor=1.0):
    """RoPE of `x` `(batch, seq, ..., d)` at `positions` `(batch, seq)`."""
    x = x.astype("float64")
    d = x.shape[-1]
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        for s in range(x.shape[1]):
            p = positions[b, s] / scaling_factor
            for i in range(d // 2):
                theta = p / max_wavelength ** (2 * i / d)
                a, c = x[b, s, ..., i], x[b, s, ..., i + d // 2]
                out[b, s, ..., i] = a * np.cos(theta) - c * np.sin(theta)
                out[b, s, ..., i + d // 2] = a * np.sin(theta) + c * np.cos(
                    theta
                )
    return out


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))


def test_layer_contract():
    run_layer_test(
        RotaryEmbedding,
        dict(max_wavelength=500, scaling_factor=2.0),
        random((2, 5, 3, 8)),
        expected_output_shape=(2, 5, 3, 8),
        expected_num_trainable_weights=0,
    )


def test_layer_contract_rank_3():
    run_layer_test(
        RotaryEmbedding,
        dict(),
        random((2, 5, 8)),
        call_kwargs=dict(start_index=3),
        expected_output_shape=(2, 5, 8),
        expected_num_trainable_weights=0,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(max_wavelength=100),
        dict(scaling_factor=4.0),
        dict(max_wavelength=1000, scaling_factor=0.5),
    ],
)
@pytest.mark.parametrize("start_index", [0, 7])
def test_matches_numpy_formula(kwargs, start_index):
    x = random((2, 6, 3, 8))
    positions = np.broadcast_to(np.arange(6) + start_index, (2, 6))
    y = RotaryEmbedding(**kwargs)(x, start_index=start_index)
    np.testing.assert_allclose(
        y, numpy_rope(x, positions, **kwargs), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, canonical_shape, to_canonical",
    [
        # (batch, heads, seq, dim)
        (dict(sequence_axis=2), (2, 5, 3, 8), (0, 2, 1, 3)),
        # (batch, dim, seq)
        (dict(sequence_axis=-1, feature_axis=1), (2, 5, 8), (0, 2, 1)),
        # (batch, seq, dim, heads)
        (dict(feature_axis=2), (2, 5, 3, 8), (0, 1, 3, 2)),
    ],
)
def test_other_axes_match_numpy_formula(kwargs, canonical_shape, to_canonical):
    # `canonical` is (batch, seq, ..., dim); each permutation here is its
    # own inverse.
    canonical = random(canonical_shape)
    x = np.transpose(canonical, to_canonical)
    y = RotaryEmbedding(**kwargs)(x)
    positions = np.broadcast_to(np.arange(5), (2, 5))
    expected = np.transpose(numpy_rope(canonical, positions), to_canonical)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_position_zero_is_the_identity_and_norms_are_kept():
    x = random((2, 6, 3, 8))
    y = numpy(RotaryEmbedding()(x))
    np.testing.assert_allclose(y[:, 0], x[:, 0], rtol=1e-6, atol=1e-6)
    # Each pair (i, i + d/2) is rotated: its norm is unchanged.
    pair_norms = x[..., :4] ** 2 + x[..., 4:] ** 2
    np.testing.assert_allclose(
        y[..., :4] ** 2 + y[..., 4:] ** 2, pair_norms, rtol=1e-5, atol=1e-5
    )
    assert not np.allclose(y[:, 1:], x[:, 1:], atol=1e-3)


def test_matches_keras_hub():
    keras_hub = pytest.importorskip("keras_hub")
    x = random((2, 6, 3, 16))
    positions = np.array([[0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5]], "int32")
    for kwargs in (dict(), dict(max_wavelength=500, scaling_factor=2.0)):
        ours = RotaryEmbedding(**kwargs)
        theirs = keras_hub.layers.RotaryEmbedding(**kwargs)
        for call_kwargs in (
            dict(),
            dict(start_index=9),
            dict(positions=positions),
        ):
            np.testing.assert_allclose(
                ours(x, **call_kwargs),
                theirs(x, **call_kwargs),
                rtol=1e-5,
                atol=1e-5,
            )


@pytest.mark.parametrize("offset", [0, 3, -5])
def test_query_key_dot_product_depends_only_on_relative_position(offset):
    rng = np.random.default_rng(offset + 10)
    q = rng.normal(size=(1, 1, 16)).astype("float32")
    k = rng.normal(size=(1, 1, 16)).astype("float32")
    layer = RotaryEmbedding()

    def score(m, n):
        rotated_q = numpy(layer(q, start_index=m))
        rotated_k = numpy(layer(k, start_index=n))
        return float(np.sum(rotated_q * rotated_k))

    scores = [score(n + offset, n) for n in (5, 12, 40, 300, 1000)]
    np.testing.assert_allclose(scores, scores[0], rtol=1e-4, atol=1e-3)
    # And it does depend on the offset.
    assert abs(score(20 + offset + 2, 20) - scores[0]) > 1e-3


@pytest.mark.parametrize("as_tensor", [False, True])
def test_start_index_equals_slicing_the_full_sequence(as_tensor):
    x = random((2, 6, 3, 8))
    layer = RotaryEmbedding()
    full = numpy(layer(x))
    for t in range(6):
        start = keras.ops.convert_to_tensor(t, "int32") if as_tensor else t
        step = layer(x[:, t : t + 1], start_index=start)
        np.testing.assert_allclose(
            step, full[:, t : t + 1], rtol=1e-6, atol=1e-6
        )


def test_positions_equal_start_index():
    x = random((2, 4, 3, 8))
    layer = RotaryEmbedding()
    expected = numpy(layer(x, start_index=5))
    batched = np.broadcast_to(np.arange(5, 9), (2, 4)).astype("int32")
    np.testing.assert_allclose(layer(x, positions=batched), expected, atol=1e-6)
    unbatched = np.arange(5, 9).astype("int32")
    np.testing.assert_allclose(
        layer(x, positions=unbatched), expected, atol=1e-6
    )


def test_positions_of_a_left_padded_batch():
    # Row 1 has two padding tokens on the left: its real tokens are at
    # positions 0, 1, as row 0's first tokens are.
    x = random((2, 4, 3, 8))
    positions = np.array([[0, 1, 2, 3], [0, 0, 0, 1]], "int32")
    layer = RotaryEmbedding()
    y = numpy(layer(x, positions=positions))
    np.testing.assert_allclose(y[0], numpy(layer(x[:1]))[0], atol=1e-6)
    np.testing.assert_allclose(y[1, 2:], numpy(layer(x[1:, 2:]))[0], atol=1e-6)
    np.testing.assert_allclose(
        y, numpy_rope(x, positions), rtol=1e-5, atol=1e-5
    )


def test_positions_and_start_index_together_raise():
    x = random((2, 4, 3, 8))
    with pytest.raises(ValueError, match="not both.*Received: start_index=2"):
        RotaryEmbedding()(x, start_index=2, positions=np.arange(4))


class _DecodeStep(keras.Model):
    """Rotates `x` from the position in `start` (a tensor inside jit)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rope = RotaryEmbedding()

    def call(self, inputs):
        return self.rope(inputs["x"], start_index=inputs["start"][0])


def test_jit_compiled_with_a_none_sequence_length():
    # `jit_compile=True` means XLA on TensorFlow and JAX; on PyTorch it
    # would be `torch.compile`, which this CPU suite does not run.
    jit_compile = keras.backend.backend() != "torch"
    inputs = keras.Input(shape=(None, 3, 8))
    outputs = RotaryEmbedding()(inputs)
    assert tuple(outputs.shape) == (None, None, 3, 8)
    model = keras.Model(inputs, outputs)
    model.compile(jit_compile=jit_compile)
    for length in (4, 7):
        x = random((2, length, 3, 8), seed=length)
        positions = np.broadcast_to(np.arange(length), (2, length))
        np.testing.assert_allclose(
            model.predict(x, verbose=0),
            numpy_rope(x, positions),
            rtol=1e-5,
            atol=1e-5,
        )

    step = _DecodeStep(name="decode_step")
    step.compile(jit_compile=jit_compile)
    x = random((2, 6, 3, 8))
    full = numpy(RotaryEmbedding()(x))
    for t in (0, 3, 5):
        batch = {"x": x[:, t : t + 1], "start": np.full((2,), t, "int32")}
        np.testing.assert_allclose(
            step.predict(batch, verbose=0), full[:, t : t + 1], atol=1e-6
        )


def test_mixed_precision_computes_angles_in_float32():
    x = random((2, 4, 3, 8))
    layer = RotaryEmbedding(dtype="mixed_float16")
    y = layer(x, start_index=5000)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    # float16 cannot hold the positions 5001..5003 exactly; the angles are
    # float32, so only the output rounding remains.
    rounded = numpy(keras.ops.cast(x, "float16"))
    positions = np.broadcast_to(np.arange(5000, 5004), (2, 4))
    np.testing.assert_allclose(
        numpy(y), numpy_rope(rounded, positions), rtol=2e-3, atol=5e-3
    )


def test_mask_passes_through():
    ids = np.array([[3, 5, 2, 0, 0], [4, 1, 6, 7, 2]], "int32")
    inputs = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 8, mask_zero=True)(inputs)
    rotated = RotaryEmbedding()(embedded)
    pooled = keras.layers.GlobalAveragePooling1D()(rotated)  # reads the mask
    model = keras.Model(inputs, [rotated, pooled])
    sequence, mean = model.predict(ids, verbose=0)
    mask = (ids != 0)[..., None]
    expected = (sequence * mask).sum(axis=1) / mask.sum(axis=1)
    np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-6)


def test_config():
    layer = RotaryEmbedding(
        max_wavelength=np.int64(500),
        scaling_factor=2,
        sequence_axis=2,
        feature_axis=-1,
        name="rope",
    )
    config = layer.get_config()
    assert {
        key: config[key]
        for key in (
            "max_wavelength",
            "scaling_factor",
            "sequence_axis",
            "feature_axis",
        )
    } == dict(
        max_wavelength=500, scaling_factor=2.0, sequence_axis=2, feature_axis=-1
    )
    assert type(config["max_wavelength"]) is int
    revived = RotaryEmbedding.from_config(config)
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "keras_attention>RotaryEmbedding"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(max_wavelength=0), "Received: max_wavelength=0"),
        (dict(max_wavelength=-10), "Received: max_wavelength=-10"),
        (dict(scaling_factor=0.0), "Received: scaling_factor=0.0"),
        (dict(scaling_factor=-1), "Received: scaling_factor=-1"),
        (dict(scaling_factor=True), "Received: scaling_factor=True"),
        (dict(sequence_axis=1.0), "Received: sequence_axis=1.0"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RotaryEmbedding(**kwargs)


@pytest.mark.parametrize(
    "kwargs, shape, match",
    [
        (
            dict(),
            (2, 4, 3, 7),
            r"needs an even feature dimension\. Received: feature dimension 7",
        ),
        (dict(sequence_axis=3), (2, 4, 8), "Received: sequence_axis=3"),
        (dict(sequence_axis=0), (2, 4, 8), "Received: sequence_axis=0"),
        (dict(sequence_axis=-1), (2, 4, 8), "must differ. Received"),
    ],
)
def test_bad_inputs_raise(kwargs, shape, match):
    layer = RotaryEmbedding(**kwargs)
    with pytest.raises(ValueError, match=match):
        layer(random(shape))
    with pytest.raises(ValueError, match=match):
        layer.compute_output_shape(shape)
