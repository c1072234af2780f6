"""Tests of `AdditiveAttention`.

The `check_*` helpers test what every RNN attention layer shares (single
steps, masks, dropout, input errors); `test_dot_product_attention.py` runs
them on `DotProductAttention` too.
"""

import keras
import numpy as np
import pytest

from keras_attention.layers.additive_attention import AdditiveAttention
from tests.testing import run_layer_test

BATCH, Q_LEN, K_LEN = 2, 3, 5


def random(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def numpy_softmax(scores, mask=None):
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


def additive_reference(layer, query, value, key=None, value_mask=None):
    """Bahdanau attention in NumPy: softmax(v^T tanh(W_q q + W_k k + b))."""
    key = value if key is None else key
    w_q = keras.ops.convert_to_numpy(layer.query_kernel)
    w_k = keras.ops.convert_to_numpy(layer.key_kernel)
    v = keras.ops.convert_to_numpy(layer.score_vector)
    b = 0.0 if layer.bias is None else keras.ops.convert_to_numpy(layer.bias)
    hidden = np.tanh(
        (query @ w_q)[:, :, None, :] + (key @ w_k + b)[:, None, :, :]
    )  # (batch, q_len, k_len, units)
    mask = None if value_mask is None else value_mask[:, None, :]
    weights = numpy_softmax(hidden @ v, mask)  # (batch, q_len, k_len)
    return weights @ value, weights


# Checks shared by every RNN attention layer. `make_layer` returns a fresh
# layer; unless a check says otherwise the key is the value, of size
# `value_dim`.


def sample_inputs(query_dim, value_dim):
    """A `(batch, q_len, query_dim)` query and a `(batch, k_len, ...)` value."""
    return random(BATCH, Q_LEN, query_dim), random(
        BATCH, K_LEN, value_dim, seed=1
    )


def attend(layer, query, value, **kwargs):
    """The context and the weights of `layer`, as NumPy arrays."""
    outputs = layer(query, value, return_attention_scores=True, **kwargs)
    return tuple(keras.ops.convert_to_numpy(x) for x in outputs)


def check_matches_reference(
    layer, reference, query_dim, value_dim, key_dim, single_step
):
    """Compare `layer` with `reference(layer, query, value, key, mask)`.

    The key has `key_dim` features, or is the value when `key_dim` is None.
    """
    query, value = sample_inputs(query_dim, value_dim)
    key = None if key_dim is None else random(BATCH, K_LEN, key_dim, seed=2)
    value_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], bool)
    context, weights = attend(
        layer,
        query[:, 0] if single_step else query,
        value,
        key=key,
        value_mask=value_mask,
    )
    expected_context, expected_weights = reference(
        layer, query, value, key, value_mask
    )
    if single_step:
        expected_context = expected_context[:, 0]
        expected_weights = expected_weights[:, 0]
    np.testing.assert_allclose(weights, expected_weights, atol=1e-5)
    np.testing.assert_allclose(context, expected_context, atol=1e-5)


def check_single_step_matches_sequence(make_layer, query_dim, value_dim):
    layer = make_layer()
    query, value = sample_inputs(query_dim, value_dim)
    value_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    context, weights = attend(layer, query, value, value_mask=value_mask)
    for t in range(Q_LEN):
        step_context, step_weights = attend(
            layer, query[:, t], value, value_mask=value_mask
        )
        assert step_context.shape == (BATCH, value_dim)
        assert step_weights.shape == (BATCH, K_LEN)
        np.testing.assert_allclose(step_context, context[:, t], atol=1e-6)
        np.testing.assert_allclose(step_weights, weights[:, t], atol=1e-6)


def check_padded_keys(make_layer, query_dim, value_dim):
    layer = make_layer()
    query, value = sample_inputs(query_dim, value_dim)
    value_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    context, weights = attend(layer, query, value, value_mask=value_mask)
    np.testing.assert_array_equal(weights[1, :, 2:], 0.0)
    assert (weights[1, :, :2] > 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    # Whatever the padded values (and keys) are, nothing changes.
    changed = value.copy()
    changed[1, 2:] = random(K_LEN - 2, value_dim, seed=3) * 100.0
    new_context, new_weights = attend(
        layer, query, changed, value_mask=value_mask
    )
    np.testing.assert_allclose(new_context, context, atol=1e-6)
    np.testing.assert_allclose(new_weights, weights, atol=1e-6)


def check_implicit_mask(make_layer, query_dim):
    """A mask from `Embedding(mask_zero=True)` == an explicit `value_mask`."""
    tokens = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 0, 0]], "int32")
    query = random(BATCH, Q_LEN, query_dim)
    query_input = keras.Input((None, query_dim))
    token_input = keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(10, query_dim, mask_zero=True)
    layer = make_layer()
    outputs = layer(
        query_input, embedding(token_input), return_attention_scores=True
    )
    model = keras.Model([query_input, token_input], outputs)
    context, weights = model.predict([query, tokens], verbose=0)
    np.testing.assert_array_equal(weights[1, :, 3:], 0.0)
    explicit_context, explicit_weights = attend(
        layer, query, embedding(tokens), value_mask=tokens != 0
    )
    np.testing.assert_allclose(context, explicit_context, atol=1e-6)
    np.testing.assert_allclose(weights, explicit_weights, atol=1e-6)
    # In eager mode too.
    eager_context = layer(query, embedding(tokens))
    np.testing.assert_allclose(eager_context, explicit_context, atol=1e-6)


def check_fully_masked_rows(make_layer, query_dim, value_dim):
    query, value = sample_inputs(query_dim, value_dim)
    value_mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)
    attention_mask = np.ones((BATCH, Q_LEN, K_LEN), bool)
    attention_mask[0, 1] = False
    query_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    context, weights = attend(
        make_layer(),
        query,
        value,
        query_mask=query_mask,
        value_mask=value_mask,
        attention_mask=attention_mask,
    )
    assert np.isfinite(context).all() and np.isfinite(weights).all()
    for b, t in ((0, 1), (0, 2), (1, 0), (1, 1), (1, 2)):
        np.testing.assert_array_equal(weights[b, t], 0.0)
        np.testing.assert_array_equal(context[b, t], 0.0)
    np.testing.assert_allclose(weights[0, 0].sum(), 1.0, atol=1e-6)
    np.testing.assert_array_equal(weights[0, 0, 3:], 0.0)


def check_attention_mask(make_layer, query_dim, value_dim):
    layer = make_layer()
    query, value = sample_inputs(query_dim, value_dim)
    attention_mask = np.random.default_rng(2).random((BATCH, Q_LEN, K_LEN))
    attention_mask = attention_mask > 0.4
    attention_mask[..., 0] = True
    context, weights = attend(
        layer, query, value, attention_mask=attention_mask
    )
    np.testing.assert_array_equal(weights[~attention_mask], 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    # A rank-2 query takes a (batch, k_len) attention mask.
    step_context, step_weights = attend(
        layer, query[:, 1], value, attention_mask=attention_mask[:, 1]
    )
    np.testing.assert_allclose(step_context, context[:, 1], atol=1e-6)
    np.testing.assert_allclose(step_weights, weights[:, 1], atol=1e-6)


def check_dropout(make_layer, query_dim, value_dim):
    layer = make_layer()
    query, value = sample_inputs(query_dim, value_dim)
    inference = layer(query, value, training=False)
    np.testing.assert_allclose(
        layer(query, value, training=False), inference, atol=1e-6
    )
    dropped, weights = attend(layer, query, value, training=True)
    assert not np.allclose(dropped, inference, atol=1e-4)
    # The returned weights are the weights before dropout.
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def check_input_errors(make_layer, query_dim, value_dim):
    query, value = sample_inputs(query_dim, value_dim)
    cases = (
        ((random(BATCH, 1, Q_LEN, query_dim), value), {}, "`query` must"),
        ((random(query_dim), value), {}, "`query` must"),
        ((query, random(BATCH, value_dim)), {}, "`value` must"),
        ((query, value), {"key": random(BATCH, value_dim)}, "`key` must"),
        (
            (query, value),
            {"key": random(BATCH, K_LEN + 1, value_dim)},
            "same length",
        ),
        (
            (random(BATCH + 1, Q_LEN, query_dim), value),
            {},
            "same batch size",
        ),
    )
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=f"(?s){message}.*Received"):
            make_layer()(*args, **kwargs)


SHARED_CHECKS = [
    check_single_step_matches_sequence,
    check_padded_keys,
    check_fully_masked_rows,
    check_attention_mask,
    check_input_errors,
]


# AdditiveAttention.

VARIANTS = {
    "bias": dict(units=4, bias_initializer="random_normal"),
    "no_bias": dict(units=4, use_bias=False),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("key_dim", [None, 7])
@pytest.mark.parametrize("single_step", [False, True])
def test_matches_numpy_reference(variant, key_dim, single_step):
    check_matches_reference(
        AdditiveAttention(**VARIANTS[variant]),
        additive_reference,
        query_dim=6,
        value_dim=3,
        key_dim=key_dim,
        single_step=single_step,
    )


def test_weights_shapes_and_names():
    layer = AdditiveAttention(units=4)
    layer(
        random(BATCH, Q_LEN, 6),
        random(BATCH, K_LEN, 3),
        key=random(BATCH, K_LEN, 7),
    )
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in layer.weights}
    assert shapes == {
        "query_kernel": (6, 4),
        "key_kernel": (7, 4),
        "bias": (4,),
        "score_vector": (4,),
    }
    # Cloned initializers: the two kernels of the same shape differ.
    square = AdditiveAttention(units=4)
    square(random(BATCH, Q_LEN, 3), random(BATCH, K_LEN, 3))
    assert not np.allclose(square.query_kernel, square.key_kernel)


@pytest.mark.parametrize("check", SHARED_CHECKS)
def test_shared_behaviour(check):
    check(lambda: AdditiveAttention(units=4), query_dim=6, value_dim=3)


def test_implicit_mask():
    check_implicit_mask(lambda: AdditiveAttention(units=4), query_dim=6)


def test_dropout():
    check_dropout(
        lambda: AdditiveAttention(units=4, dropout=0.5),
        query_dim=6,
        value_dim=3,
    )


def test_passes_query_mask_on():
    query_input = keras.Input((None,), dtype="int32")
    value = keras.Input((None, 3))
    query = keras.layers.Embedding(10, 6, mask_zero=True)(query_input)
    context = AdditiveAttention(units=4)(query, value)
    assert context._keras_mask is not None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(units=0), "`units` must be a positive integer"),
        (dict(units=4, dropout=1.0), "`dropout` must be a float in"),
        (dict(units=4, dropout=-0.1), "`dropout` must be a float in"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"{message}.*Received"):
        AdditiveAttention(**kwargs)


@pytest.mark.parametrize(
    "case",
    [
        dict(
            init_kwargs=dict(units=4),
            input_data={
                "query": random(BATCH, Q_LEN, 6),
                "value": random(BATCH, K_LEN, 3),
            },
            expected_output_shape=(BATCH, Q_LEN, 3),
            expected_num_trainable_weights=4,
        ),
        dict(
            init_kwargs=dict(units=4, use_bias=False, dropout=0.1),
            input_data={
                "query": random(BATCH, Q_LEN, 6),
                "value": random(BATCH, K_LEN, 3),
                "key": random(BATCH, K_LEN, 5),
            },
            call_kwargs={"return_attention_scores": True},
            expected_output_shape=((BATCH, Q_LEN, 3), (BATCH, Q_LEN, K_LEN)),
            expected_num_trainable_weights=3,
        ),
        dict(
            init_kwargs=dict(units=4),
            input_data={
                "query": random(BATCH, 6),
                "value": random(BATCH, K_LEN, 3),
            },
            expected_output_shape=(BATCH, 3),
            expected_num_trainable_weights=4,
        ),
        dict(
            init_kwargs=dict(units=4),
            input_data={
                "query": random(BATCH, 6),
                "value": random(BATCH, K_LEN, 3),
            },
            call_kwargs={"return_attention_scores": True},
            expected_output_shape=((BATCH, 3), (BATCH, K_LEN)),
            expected_num_trainable_weights=4,
        ),
    ],
    ids=["sequence", "sequence_key_scores", "step", "step_scores"],
)
def test_layer(case):
    # A rank-2 (single step) query keeps its static shape.
    run_layer_test(AdditiveAttention, dynamic_axes=(1,), **case)
