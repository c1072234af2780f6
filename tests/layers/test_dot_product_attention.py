"""Tests of `DotProductAttention`."""

import keras
import numpy as np
import pytest

from keras_attention.layers.dot_product_attention import DotProductAttention
from tests.layers.test_additive_attention import BATCH
from tests.layers.test_additive_attention import K_LEN
from tests.layers.test_additive_attention import Q_LEN
from tests.layers.test_additive_attention import SHARED_CHECKS
from tests.layers.test_additive_attention import check_dropout
from tests.layers.test_additive_attention import check_implicit_mask
from tests.layers.test_additive_attention import check_matches_reference
from tests.layers.test_additive_attention import numpy_softmax
from tests.layers.test_additive_attention import random
from tests.testing import run_layer_test


def luong_reference(layer, query, value, key=None, value_mask=None):
    """Luong attention in NumPy: softmax(q . k) or softmax(q^T W k)."""
    key = value if key is None else key
    if layer.score_mode == "general":
        query = query @ keras.ops.convert_to_numpy(layer.kernel)
    scores = np.einsum("bqd,bkd->bqk", query, key)
    if layer.use_scale:
        scores = scores / np.sqrt(key.shape[-1])
    mask = None if value_mask is None else value_mask[:, None, :]
    weights = numpy_softmax(scores, mask)  # (batch, q_len, k_len)
    return weights @ value, weights


# (init kwargs, query_dim, key_dim): "dot" needs query_dim == key_dim.
VARIANTS = {
    "dot": (dict(), 4, 4),
    "dot_scaled": (dict(use_scale=True), 4, 4),
    "general": (dict(score_mode="general"), 6, 4),
    "general_scaled": (dict(score_mode="general", use_scale=True), 6, 4),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("with_key", [False, True])
@pytest.mark.parametrize("single_step", [False, True])
def test_matches_numpy_reference(variant, with_key, single_step):
    init_kwargs, query_dim, key_dim = VARIANTS[variant]
    check_matches_reference(
        DotProductAttention(**init_kwargs),
        luong_reference,
        query_dim=query_dim,
        # Without a key the value is the key.
        value_dim=3 if with_key else key_dim,
        key_dim=key_dim if with_key else None,
        single_step=single_step,
    )


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("check", SHARED_CHECKS)
def test_shared_behaviour(variant, check):
    init_kwargs, query_dim, key_dim = VARIANTS[variant]
    check(
        lambda: DotProductAttention(**init_kwargs),
        query_dim=query_dim,
        value_dim=key_dim,
    )


@pytest.mark.parametrize("variant", ["dot", "general"])
def test_implicit_mask(variant):
    init_kwargs, query_dim, _ = VARIANTS[variant]
    check_implicit_mask(
        lambda: DotProductAttention(**init_kwargs), query_dim=query_dim
    )


def test_dropout():
    check_dropout(
        lambda: DotProductAttention(score_mode="general", dropout=0.5),
        query_dim=6,
        value_dim=4,
    )


def test_large_scores_do_not_overflow_in_float16():
    layer = DotProductAttention(dtype="mixed_float16")
    # q . k = 8 * 300 * 300 = 720000, far above the float16 maximum.
    query = np.full((BATCH, Q_LEN, 8), 300.0, "float32")
    value = np.full((BATCH, K_LEN, 8), 300.0, "float32")
    value[:, 0] = -300.0
    context, weights = layer(query, value, return_attention_scores=True)
    assert keras.backend.standardize_dtype(context.dtype) == "float16"
    weights = keras.ops.convert_to_numpy(weights).astype("float32")
    np.testing.assert_allclose(weights[..., 0], 0.0)
    np.testing.assert_allclose(weights[..., 1:], 0.25, atol=1e-3)
    np.testing.assert_allclose(context, 300.0)


def test_kernel_only_in_general_mode():
    query, value = random(BATCH, Q_LEN, 6), random(BATCH, K_LEN, 4)
    general = DotProductAttention(score_mode="general")
    general(query, value)
    assert [tuple(w.shape) for w in general.weights] == [(6, 4)]
    dot = DotProductAttention()
    dot(value, value)
    assert dot.weights == []


def test_dot_mode_needs_equal_sizes():
    with pytest.raises(
        ValueError, match="(?s)same size.*query_dim=6, key_dim=4"
    ):
        DotProductAttention()(random(BATCH, Q_LEN, 6), random(BATCH, K_LEN, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(score_mode="concat"), "`score_mode` must be one of"),
        (dict(dropout=1.5), "`dropout` must be a float in"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"{message}.*Received"):
        DotProductAttention(**kwargs)


@pytest.mark.parametrize(
    "case",
    [
        dict(
            init_kwargs=dict(),
            input_data={
                "query": random(BATCH, Q_LEN, 4),
                "value": random(BATCH, K_LEN, 4),
            },
            call_kwargs={"return_attention_scores": True},
            expected_output_shape=((BATCH, Q_LEN, 4), (BATCH, Q_LEN, K_LEN)),
            expected_num_trainable_weights=0,
        ),
        dict(
            init_kwargs=dict(score_mode="general", use_scale=True, dropout=0.1),
            input_data={
                "query": random(BATCH, Q_LEN, 6),
                "value": random(BATCH, K_LEN, 3),
                "key": random(BATCH, K_LEN, 4),
            },
            expected_output_shape=(BATCH, Q_LEN, 3),
            expected_num_trainable_weights=1,
        ),
        dict(
            init_kwargs=dict(score_mode="general"),
            input_data={
                "query": random(BATCH, 6),
                "value": random(BATCH, K_LEN, 3),
            },
            call_kwargs={"return_attention_scores": True},
            expected_output_shape=((BATCH, 3), (BATCH, K_LEN)),
            expected_num_trainable_weights=1,
        ),
        dict(
            init_kwargs=dict(use_scale=True),
            input_data={
                "query": random(BATCH, 4),
                "value": random(BATCH, K_LEN, 4),
            },
            expected_output_shape=(BATCH, 4),
            expected_num_trainable_weights=0,
        ),
    ],
    ids=["dot_scores", "general_key", "general_step_scores", "dot_step"],
)
def test_layer(case):
    # A rank-2 (single step) query keeps its static shape.
    run_layer_test(DotProductAttention, dynamic_axes=(1,), **case)
