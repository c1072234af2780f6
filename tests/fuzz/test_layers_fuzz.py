"""Property-based fuzzing of every layer in `keras_attention.layers`.

For each layer a strategy draws constructor arguments, input shapes (ranks,
lengths 0 and 1), masks and one possible fault: a wrong rank, a mask of the
wrong length, an integer input where a float one is needed. A faulty case
must raise a `ValueError` naming the argument; a valid one must return a
finite output of the shape `compute_output_shape` announces, equal within
the dtype's tolerance to the float32 layer (same weights) under float16,
bfloat16 and the mixed policies.
"""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_attention import layers
from tests.fuzz._settings import fuzz_settings

POLICIES = ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16")
# (rtol, atol) against the float32 output; bfloat16 keeps 8 mantissa bits.
TOLERANCE = {"float16": (2e-2, 2e-2), "bfloat16": (8e-2, 8e-2)}


class Case:
    """One drawn layer call: how to make the layer, its inputs, its fault."""

    def __init__(self, make, args, kwargs=None, fault=None, shape=None):
        self.make = make  # dtype policy name -> layer
        self.args = args  # NumPy inputs
        self.kwargs = kwargs or {}  # call keyword arguments (masks, flags)
        self.fault = fault  # the argument a ValueError must name
        self.shape = shape  # expected output shape (None: ask the layer)

    def __repr__(self):
        shapes = [(a.shape, str(a.dtype)) for a in self.args]
        kwargs = {k: getattr(v, "shape", v) for k, v in self.kwargs.items()}
        layer = self.make("float32")
        return (
            f"Case({type(layer).__name__}({layer.get_config()}), "
            f"inputs={shapes}, kwargs={kwargs}, fault={self.fault!r})"
        )


def _normal(draw, shape):
    seed = draw(st.integers(0, 2**16))
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _padding(draw, batch, length):
    """A boolean (batch, length) mask with at least one True per row."""
    seed = draw(st.integers(0, 2**16))
    mask = np.random.default_rng(seed).random((batch, length)) < 0.7
    if length:
        mask[:, 0] = True
    return mask


def _sequence(draw, batch, length, features, fault, name):
    """A rank-3 input, or (for a rank fault) rank 2 or 4."""
    if fault == name:
        if draw(st.booleans()):
            return _normal(draw, (batch, features))  # rank 2
        return _normal(draw, (batch, length, features, 2))  # rank 4
    return _normal(draw, (batch, length, features))


def _lengths(draw):
    return draw(st.sampled_from([0, 1, 1, 2, 3, 5]))


@st.composite
def rnn_attention_case(draw, cls):
    batch, q_len, v_len = draw(st.integers(1, 3)), _lengths(draw), 0
    v_len = _lengths(draw)
    features = draw(st.integers(1, 6))
    fault = draw(st.sampled_from([None, None, "query", "value", "value_mask"]))
    query = _sequence(draw, batch, q_len, features, fault, "query")
    if fault == "query" and query.ndim == 2:
        fault = None  # rank 2 is one decoder step: valid
    value = _sequence(draw, batch, v_len, features, fault, "value")
    kwargs = {}
    if fault == "value_mask" or draw(st.booleans()):
        length = v_len + 1 if fault == "value_mask" else v_len
        kwargs["value_mask"] = _padding(draw, batch, length)
    if cls is layers.AdditiveAttention:
        units = draw(st.integers(1, 6))
        make = lambda dtype: cls(units, dtype=dtype)  # noqa: E731
    else:
        mode = draw(st.sampled_from(["dot", "general"]))
        use_scale = draw(st.booleans())
        make = lambda dtype: cls(  # noqa: E731
            score_mode=mode, use_scale=use_scale, dtype=dtype
        )
    return Case(make, (query, value), kwargs, fault)


def _attention_options(draw):
    heads = draw(st.integers(1, 4))
    return dict(
        num_heads=heads,
        key_dim=2 * draw(st.integers(1, 3)),
        num_key_value_heads=draw(st.sampled_from([None, 1, heads])),
        sliding_window=draw(st.none() | st.integers(1, 4)),
        soft_cap=draw(st.none() | st.floats(1.0, 20.0)),
        rotary=draw(st.booleans()),
        attention_implementation=draw(st.sampled_from(["dense", "chunked"])),
    )


def _attention_mask(draw, batch, q_len, k_len, fault):
    if fault == "attention_mask":
        # Two more queries than there are: cannot broadcast.
        return np.ones((batch, q_len + 2, k_len), bool)
    seed = draw(st.integers(0, 2**16))
    mask = np.random.default_rng(seed).random((batch, q_len, k_len)) < 0.7
    return mask


@st.composite
def multi_head_attention_case(draw):
    batch, q_len, v_len = draw(st.integers(1, 3)), _lengths(draw), 0
    v_len = _lengths(draw)
    features = draw(st.integers(1, 6))
    options = _attention_options(draw)
    fault = draw(
        st.sampled_from(
            [None, None, "query", "value", "value_mask", "attention_mask"]
        )
    )
    query = _sequence(draw, batch, q_len, features, fault, "query")
    value = _sequence(draw, batch, v_len, features, fault, "value")
    kwargs = {"use_causal_mask": draw(st.booleans())}
    if fault == "value_mask" or draw(st.booleans()):
        length = v_len + 1 if fault == "value_mask" else v_len
        kwargs["value_mask"] = _padding(draw, batch, length)
    if fault == "attention_mask" or draw(st.booleans()):
        kwargs["attention_mask"] = _attention_mask(
            draw, batch, q_len, v_len, fault
        )
    make = lambda dtype: layers.MultiHeadAttention(  # noqa: E731
        **options, dtype=dtype
    )
    return Case(make, (query, value), kwargs, fault)


@st.composite
def self_attention_case(draw, cls):
    batch, length = draw(st.integers(1, 3)), _lengths(draw)
    options = _attention_options(draw)
    mask_name = {
        layers.MultiHeadSelfAttention: None,
        layers.TransformerBlock: "padding_mask",
        layers.TransformerDecoderBlock: "decoder_padding_mask",
    }[cls]
    input_name = (
        "decoder_sequence"
        if cls is layers.TransformerDecoderBlock
        else "inputs"
    )
    faults = [None, None, input_name, "attention_mask"]
    if mask_name:
        faults.append(mask_name)
    fault = draw(st.sampled_from(faults))
    # A post-LN block normalizes `features` values: with 1 to 3 of them
    # nearly equal, the output's sign is ill-conditioned and bfloat16
    # rounding can flip it. Four or more keep the comparison meaningful.
    low = 1 if cls is layers.MultiHeadSelfAttention else 4
    features = draw(st.integers(low, 8))
    if cls is layers.MultiHeadSelfAttention:
        kwargs = {"use_causal_mask": draw(st.booleans())}
        make_options = options
    else:
        options.pop("attention_implementation")
        if cls is layers.TransformerDecoderBlock:
            for name in ("sliding_window", "soft_cap", "rotary"):
                options.pop(name)
        make_options = dict(
            options,
            feed_forward_dim=draw(st.integers(1, 8)),
            norm_first=draw(st.booleans()),
            normalization=draw(st.sampled_from(["layer", "rms"])),
        )
        kwargs = {"use_causal_mask": draw(st.booleans())}
    args = [_sequence(draw, batch, length, features, fault, input_name)]
    if cls is layers.TransformerDecoderBlock and draw(st.booleans()):
        args.append(_normal(draw, (batch, _lengths(draw), features)))
        if draw(st.booleans()):
            kwargs["encoder_padding_mask"] = _padding(
                draw, batch, args[1].shape[1]
            )
    if mask_name and (fault == mask_name or draw(st.booleans())):
        extra = 1 if fault == mask_name else 0
        kwargs[mask_name] = _padding(draw, batch, length + extra)
    if fault == "attention_mask" or draw(st.booleans()):
        name = (
            "decoder_attention_mask"
            if cls is layers.TransformerDecoderBlock
            else "attention_mask"
        )
        kwargs[name] = _attention_mask(draw, batch, length, length, fault)
        if fault == "attention_mask":
            fault = name
    # The blocks add their input to a float result: ids must be embedded.
    blocks = (layers.TransformerBlock, layers.TransformerDecoderBlock)
    if fault == input_name and cls in blocks and draw(st.booleans()):
        args[0] = _normal(draw, (batch, length, features)).astype("int32")
    make = lambda dtype: cls(**make_options, dtype=dtype)  # noqa: E731
    return Case(make, tuple(args), kwargs, fault)


def _any_rank(draw, min_rank=2, max_rank=4):
    rank = draw(st.integers(min_rank, max_rank))
    return tuple(draw(st.sampled_from([0, 1, 2, 3, 4])) for _ in range(rank))


@st.composite
def elementwise_case(draw, cls):
    """Layers of any rank: normalizations, positions, dropout."""
    shape = _any_rank(draw, 1, 4)
    shape = shape[:-1] + (draw(st.integers(1, 6)),)
    fault = None
    kwargs = {}
    if cls is layers.RMSNormalization or cls is layers.LayerNormalization:
        make = lambda dtype: cls(dtype=dtype)  # noqa: E731
    elif cls is layers.Dropout:
        rate = draw(st.floats(0.0, 0.9))
        kwargs["training"] = draw(st.booleans())
        make = lambda dtype: cls(rate, seed=1, dtype=dtype)  # noqa: E731
    elif cls is layers.SinusoidalPositionalEncoding:
        fault = "inputs" if len(shape) < 2 else None
        make = lambda dtype: cls(dtype=dtype)  # noqa: E731
    elif cls is layers.PositionEmbedding:
        sequence_length = draw(st.integers(1, 5))
        too_long = len(shape) >= 2 and shape[-2] > sequence_length
        fault = "inputs" if len(shape) < 2 else None
        if too_long:
            fault = "sequence_length"
        make = lambda dtype: cls(sequence_length, dtype=dtype)  # noqa: E731
    else:  # RotaryEmbedding: rank 3 or 4, even feature axis
        shape = shape[:-1] + (2 * draw(st.integers(1, 3)),)
        if draw(st.booleans()):
            shape = shape[:-1] + (shape[-1] + 1,)
            fault = "feature"
        if len(shape) < 3:
            fault = "sequence_axis"
        make = lambda dtype: cls(dtype=dtype)  # noqa: E731
    return Case(make, (_normal(draw, shape),), kwargs, fault)


@st.composite
def token_embedding_case(draw):
    vocabulary = draw(st.integers(1, 8))
    shape = _any_rank(draw, 1, 3)
    seed = draw(st.integers(0, 2**16))
    ids = np.random.default_rng(seed).integers(0, vocabulary, size=shape)
    fault = None
    if ids.size and draw(st.booleans()):  # one id outside the table
        ids.flat[draw(st.integers(0, ids.size - 1))] = draw(
            st.sampled_from([-1, vocabulary, vocabulary + 5])
        )
        fault = "token ids must be in"
    dim = draw(st.integers(1, 6))
    make = lambda dtype: layers.TokenEmbedding(  # noqa: E731
        vocabulary, dim, dtype=dtype
    )
    return Case(make, (ids.astype("int32"),), fault=fault, shape=shape + (dim,))


CASES = {
    "AdditiveAttention": rnn_attention_case(layers.AdditiveAttention),
    "DotProductAttention": rnn_attention_case(layers.DotProductAttention),
    "MultiHeadAttention": multi_head_attention_case(),
    "MultiHeadSelfAttention": self_attention_case(
        layers.MultiHeadSelfAttention
    ),
    "TransformerBlock": self_attention_case(layers.TransformerBlock),
    "TransformerDecoderBlock": self_attention_case(
        layers.TransformerDecoderBlock
    ),
    "Dropout": elementwise_case(layers.Dropout),
    "LayerNormalization": elementwise_case(layers.LayerNormalization),
    "RMSNormalization": elementwise_case(layers.RMSNormalization),
    "PositionEmbedding": elementwise_case(layers.PositionEmbedding),
    "RotaryEmbedding": elementwise_case(layers.RotaryEmbedding),
    "SinusoidalPositionalEncoding": elementwise_case(
        layers.SinusoidalPositionalEncoding
    ),
    "TokenEmbedding": token_embedding_case(),
}


def test_every_layer_is_fuzzed():
    assert sorted(CASES) == sorted(layers.__all__)


def _numpy(output):
    if isinstance(output, (tuple, list)):
        output = output[0]
    return keras.ops.convert_to_numpy(keras.ops.cast(output, "float32"))


def _copy_weights(source, target):
    for source_weight, target_weight in zip(source.weights, target.weights):
        target_weight.assign(
            keras.ops.cast(source_weight.value, target_weight.dtype)
        )


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_raises_named_error_or_matches_float32(name):
    @fuzz_settings(weight=0.25)
    @given(case=CASES[name], policy=st.sampled_from(POLICIES))
    def check(case, policy):
        keras.utils.set_random_seed(0)  # the same weights on a rerun
        if case.fault is not None:
            with pytest.raises(ValueError, match=case.fault):
                case.make("float32")(*case.args, **case.kwargs)
            return
        reference_layer = case.make("float32")
        reference = _numpy(reference_layer(*case.args, **case.kwargs))
        expected_shape = case.shape or tuple(
            reference_layer.compute_output_shape(*[a.shape for a in case.args])
        )
        assert reference.shape == tuple(expected_shape)
        assert np.isfinite(reference).all(), "finite inputs gave NaN/Inf"
        layer = case.make(policy)
        layer(*case.args, **case.kwargs)  # builds the weights
        _copy_weights(reference_layer, layer)
        output = _numpy(layer(*case.args, **case.kwargs))
        assert output.shape == reference.shape
        assert np.isfinite(output).all(), f"{policy} gave NaN/Inf"
        if isinstance(reference_layer, layers.Dropout):
            return  # the random draw differs with the dtype
        rtol, atol = TOLERANCE[policy.replace("mixed_", "")]
        np.testing.assert_allclose(output, reference, rtol=rtol, atol=atol)

    check()
