import keras
import numpy as np
import pytest

from keras_attention.layers.multi_head_attention import MultiHeadAttention
from keras_attention.layers.multi_head_self_attention import (
    MultiHeadSelfAttention,
)
from tests.testing import run_layer_test

BATCH, LENGTH, DIM = 2, 6, 8
NUM_HEADS, KEY_DIM = 2, 4


def _normal(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype("float32")


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _fused_pair(value_dim=None, use_bias=True, **kwargs):
    """A `MultiHeadAttention` and a `MultiHeadSelfAttention` with the same
    weights: the fused kernel is the three kernels side by side."""
    x = _normal(BATCH, LENGTH, DIM)
    separate = MultiHeadAttention(
        NUM_HEADS,
        KEY_DIM,
        value_dim=value_dim,
        use_bias=use_bias,
        bias_initializer="random_normal",
        **kwargs,
    )
    separate(x, x)
    fused = MultiHeadSelfAttention(
        NUM_HEADS, KEY_DIM, value_dim=value_dim, use_bias=use_bias, **kwargs
    )
    fused(x)
    weights = separate.get_weights()
    if use_bias:
        wq, bq, wk, bk, wv, bv, wo, bo = weights
        fused.set_weights(
            [
                np.concatenate([wq, wk, wv], axis=-1),
                np.concatenate([bq, bk, bv], axis=-1),
                wo,
                bo,
            ]
        )
    else:
        wq, wk, wv, wo = weights
        fused.set_weights([np.concatenate([wq, wk, wv], axis=-1), wo])
    return separate, fused


@pytest.mark.parametrize(
    "masking", ["none", "padding", "attention_mask", "causal"]
)
@pytest.mark.parametrize("value_dim, use_bias", [(None, True), (3, False)])
def test_equals_multi_head_attention_with_assembled_kernel(
    value_dim, use_bias, masking
):
    separate, fused = _fused_pair(value_dim, use_bias)
    assert fused.query_key_value_dense.kernel.shape == (
        DIM,
        NUM_HEADS,
        2 * KEY_DIM + (value_dim or KEY_DIM),
    )
    x = _normal(BATCH, LENGTH, DIM, seed=1)
    fused_kwargs, separate_kwargs = {}, {}
    if masking == "padding":
        padding = np.ones((BATCH, LENGTH), bool)
        padding[0, 4:] = False
        fused_kwargs = {"mask": padding}
        separate_kwargs = {"query_mask": padding, "value_mask": padding}
    elif masking == "attention_mask":
        rng = np.random.default_rng(2)
        attention_mask = rng.random((BATCH, LENGTH, LENGTH)) < 0.5
        attention_mask[:, np.arange(LENGTH), np.arange(LENGTH)] = True
        fused_kwargs = separate_kwargs = {"attention_mask": attention_mask}
    elif masking == "causal":
        fused_kwargs = separate_kwargs = {"use_causal_mask": True}
    output, scores = fused(x, return_attention_scores=True, **fused_kwargs)
    expected, expected_scores = separate(
        x, x, return_attention_scores=True, **separate_kwargs
    )
    np.testing.assert_allclose(_numpy(output), _numpy(expected), atol=1e-5)
    np.testing.assert_allclose(
        _numpy(scores), _numpy(expected_scores), atol=1e-6
    )


def test_padded_keys_get_zero_weight_and_do_not_matter():
    x = _normal(BATCH, LENGTH, DIM)
    padding = np.ones((BATCH, LENGTH), bool)
    padding[0, 4:] = False
    layer = MultiHeadSelfAttention(NUM_HEADS, KEY_DIM)
    output, scores = layer(x, mask=padding, return_attention_scores=True)
    scores = _numpy(scores)
    assert np.all(scores[0, :, :, 4:] == 0.0)
    # Padded queries have no output heads, real queries sum to one.
    np.testing.assert_allclose(scores[0, :, :4].sum(-1), 1.0, atol=1e-6)
    assert np.all(scores[0, :, 4:] == 0.0)
    changed = x.copy()
    changed[0, 4:] = 100.0
    changed_output = _numpy(layer(changed, mask=padding))
    np.testing.assert_allclose(
        changed_output[0, :4], _numpy(output)[0, :4], atol=1e-5
    )
    assert np.isfinite(changed_output).all()


def test_causal_future_tokens_do_not_change_earlier_outputs():
    x = _normal(BATCH, LENGTH, DIM)
    layer = MultiHeadSelfAttention(NUM_HEADS, KEY_DIM)
    output = _numpy(layer(x, use_causal_mask=True))
    changed = x.copy()
    changed[:, 3:] = _normal(BATCH, 3, DIM, seed=5)
    changed_output = _numpy(layer(changed, use_causal_mask=True))
    np.testing.assert_allclose(changed_output[:, :3], output[:, :3], atol=1e-6)
    assert not np.allclose(changed_output[:, 3:], output[:, 3:])


def test_implicit_mask_matches_explicit_mask():
    ids = np.array([[3, 1, 4, 1, 0, 0], [5, 9, 2, 6, 5, 0]])
    embedded = keras.layers.Embedding(10, DIM, mask_zero=True)(ids)
    layer = MultiHeadSelfAttention(NUM_HEADS, KEY_DIM)
    implicit = layer(embedded, use_causal_mask=True)
    np.testing.assert_array_equal(_numpy(implicit._keras_mask), ids != 0)
    plain = keras.ops.convert_to_tensor(_numpy(embedded))
    explicit = layer(plain, mask=ids != 0, use_causal_mask=True)
    unmasked = layer(plain, use_causal_mask=True)
    np.testing.assert_allclose(_numpy(implicit), _numpy(explicit), atol=1e-6)
    assert not np.allclose(_numpy(implicit), _numpy(unmasked), atol=1e-3)


def test_implicit_mask_is_kept_when_an_attention_mask_is_passed():
    # With a second tensor argument Keras no longer fills `mask` in.
    ids = np.array([[3, 1, 4, 0, 0], [5, 9, 2, 6, 0]])
    everywhere = np.ones((2, 5, 5), bool)
    embedding = keras.layers.Embedding(10, DIM, mask_zero=True)
    layer = MultiHeadSelfAttention(NUM_HEADS, KEY_DIM)
    _, scores = layer(
        embedding(ids), attention_mask=everywhere, return_attention_scores=True
    )
    scores = _numpy(scores)
    assert np.all(scores[0, :, :, 3:] == 0.0)
    assert np.all(scores[1, :, :, 4:] == 0.0)
    np.testing.assert_allclose(scores[0, :, :3].sum(-1), 1.0, atol=1e-6)
    # The same in a Functional model: padding more does not change outputs.
    tokens = keras.Input((None,), dtype="int32")
    attention = keras.Input((None, None), dtype="bool")
    outputs = layer(embedding(tokens), attention_mask=attention)
    model = keras.Model([tokens, attention], outputs)
    short = model.predict([ids[:, :4], everywhere[:, :4, :4]], verbose=0)
    padded = model.predict([ids, everywhere], verbose=0)
    np.testing.assert_allclose(padded[0, :3], short[0, :3], atol=1e-5)
    np.testing.assert_allclose(padded[1, :4], short[1, :4], atol=1e-5)


def test_fully_masked_rows_are_finite():
    x = _normal(BATCH, LENGTH, DIM)
    padding = np.zeros((BATCH, LENGTH), bool)
    padding[1, :2] = True
    layer = MultiHeadSelfAttention(
        NUM_HEADS, KEY_DIM, bias_initializer="random_normal"
    )
    output = _numpy(layer(x, mask=padding))
    assert np.isfinite(output).all()
    # Every key of sample 0 is masked: only the output bias is left.
    output_bias = _numpy(layer.output_dense.bias)
    np.testing.assert_allclose(
        output[0], np.broadcast_to(output_bias, (LENGTH, DIM)), atol=1e-6
    )


@pytest.mark.parametrize("use_causal_mask", [False, True])
def test_chunked_matches_dense(use_causal_mask):
    x = _normal(BATCH, 7, DIM)
    padding = np.ones((BATCH, 7), bool)
    padding[1, 5:] = False
    dense = MultiHeadSelfAttention(
        NUM_HEADS, KEY_DIM, attention_implementation="dense"
    )
    chunked = MultiHeadSelfAttention(
        NUM_HEADS, KEY_DIM, attention_implementation="chunked", chunk_size=3
    )
    expected = dense(x, mask=padding, use_causal_mask=use_causal_mask)
    chunked(x)
    chunked.set_weights(dense.get_weights())
    output = chunked(x, mask=padding, use_causal_mask=use_causal_mask)
    np.testing.assert_allclose(_numpy(output), _numpy(expected), atol=1e-5)


LAYER_TEST_CASES = {
    "plain": ({"num_heads": 2, "key_dim": 4}, {}, (2, 5, 8)),
    "causal_dropout": (
        {"num_heads": 2, "key_dim": 4, "dropout": 0.1, "seed": 1},
        {"use_causal_mask": True},
        (2, 5, 8),
    ),
    "value_dim_output_dim": (
        {"num_heads": 3, "key_dim": 4, "value_dim": 2, "output_dim": 5},
        {},
        (2, 5, 5),
    ),
    "scores": (
        {"num_heads": 2, "key_dim": 4, "use_bias": False},
        {"return_attention_scores": True},
        ((2, 5, 8), (2, 2, 5, 5)),
    ),
}


@pytest.mark.parametrize("case", sorted(LAYER_TEST_CASES))
def test_layer_contract(case):
    init_kwargs, call_kwargs, expected_shape = LAYER_TEST_CASES[case]
    run_layer_test(
        MultiHeadSelfAttention,
        init_kwargs,
        _normal(2, 5, 8),
        call_kwargs=call_kwargs,
        expected_output_shape=expected_shape,
        expected_num_trainable_weights=(
            4 if init_kwargs.get("use_bias", True) else 2
        ),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"key_dim": 0}, "key_dim"),
        ({"dropout": 1.5}, "dropout"),
        ({"attention_implementation": "sparse"}, "attention_implementation"),
    ],
)
def test_invalid_arguments(kwargs, message):
    kwargs = {"num_heads": 2, "key_dim": 4, **kwargs}
    with pytest.raises(ValueError, match=f"{message}.*Received"):
        MultiHeadSelfAttention(**kwargs)


def test_invalid_inputs():
    x = _normal(BATCH, LENGTH, DIM)
    with pytest.raises(ValueError, match="`inputs` must be a rank-3.*Received"):
        MultiHeadSelfAttention(2, 4)(x[0])
    layer = MultiHeadSelfAttention(2, 4)
    layer(x)
    with pytest.raises(ValueError, match="`inputs` must have 8 features"):
        layer(x[..., :4])
    with pytest.raises(ValueError, match="attention_mask.*Received"):
        layer(x, attention_mask=np.ones((BATCH, 3, LENGTH), bool))
