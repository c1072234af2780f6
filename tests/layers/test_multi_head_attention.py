import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.layers.multi_head_attention import MultiHeadAttention
from tests.testing import run_layer_test
from tests.testing import value_and_gradients

BATCH, Q_LEN, K_LEN = 2, 5, 7
Q_DIM, V_DIM, K_DIM = 8, 6, 4
NUM_HEADS, KEY_DIM = 2, 4


def _normal(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype("float32")


def _numpy_mha(weights, query, value, key=None, mask=None):
    """Vaswani et al. multi-head attention, written out in NumPy."""
    wq, bq, wk, bk, wv, bv, wo, bo = weights
    key = value if key is None else key
    q = np.einsum("btd,dhk->bhtk", query, wq) + bq[:, None]  # (b, h, t, k)
    k = np.einsum("bsd,dhk->bhsk", key, wk) + bk[:, None]  # (b, h, s, k)
    v = np.einsum("bsd,dhv->bhsv", value, wv) + bv[:, None]  # (b, h, s, v)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask[:, None], scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)  # (b, h, t, s)
    heads = probs @ v  # (b, h, t, v)
    return np.einsum("bhtv,hvo->bto", heads, wo) + bo, probs


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


# Inputs and masks of the comparisons with `keras.layers.MultiHeadAttention`.
# No query row is fully masked except padded queries, which are compared
# only where the query is real (Keras gives them uniform weights, we give
# zeros).
def _comparison_case(cross, masking):
    k_len = Q_LEN if (masking == "causal" or not cross) else K_LEN
    query = _normal(BATCH, Q_LEN, Q_DIM, seed=1)
    inputs = {"query": query, "value": query}
    if cross:
        inputs["value"] = _normal(BATCH, k_len, V_DIM, seed=2)
        inputs["key"] = _normal(BATCH, k_len, K_DIM, seed=3)
    kwargs = {}
    valid_queries = np.ones((BATCH, Q_LEN), bool)
    value_mask = np.ones((BATCH, k_len), bool)
    value_mask[0, -2:] = False
    if masking == "value_mask":
        kwargs["value_mask"] = value_mask
    elif masking == "query_and_value_mask":
        valid_queries[1, -1] = False
        kwargs["query_mask"] = valid_queries
        kwargs["value_mask"] = value_mask
    elif masking == "attention_mask":
        rng = np.random.default_rng(4)
        attention_mask = rng.random((BATCH, Q_LEN, k_len)) < 0.5
        attention_mask[:, np.arange(Q_LEN), np.arange(Q_LEN)] = True
        kwargs["attention_mask"] = attention_mask
    elif masking == "causal":
        kwargs["use_causal_mask"] = True
    return inputs, kwargs, valid_queries


@pytest.mark.parametrize("return_attention_scores", [False, True])
@pytest.mark.parametrize(
    "masking",
    ["none", "value_mask", "query_and_value_mask", "attention_mask", "causal"],
)
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_matches_keras_multi_head_attention(
    cross, masking, return_attention_scores
):
    inputs, kwargs, valid = _comparison_case(cross, masking)
    reference = keras.layers.MultiHeadAttention(NUM_HEADS, KEY_DIM)
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    expected = reference(
        **inputs, **kwargs, return_attention_scores=return_attention_scores
    )
    layer(**inputs)
    layer.set_weights(reference.get_weights())
    got = layer(
        **inputs, **kwargs, return_attention_scores=return_attention_scores
    )
    if not return_attention_scores:
        got, expected = (got,), (expected,)
    np.testing.assert_allclose(
        _numpy(got[0])[valid], _numpy(expected[0])[valid], atol=1e-5
    )
    if return_attention_scores:
        np.testing.assert_allclose(
            _numpy(got[1]).transpose(0, 2, 1, 3)[valid],
            _numpy(expected[1]).transpose(0, 2, 1, 3)[valid],
            atol=1e-6,
        )


@pytest.mark.parametrize("use_bias", [True, False])
def test_matches_numpy_reference(use_bias):
    query = _normal(BATCH, Q_LEN, Q_DIM, seed=1)
    value = _normal(BATCH, K_LEN, V_DIM, seed=2)
    key = _normal(BATCH, K_LEN, K_DIM, seed=3)
    mask = np.ones((BATCH, Q_LEN, K_LEN), bool)
    mask[0, :, 3:] = False
    layer = MultiHeadAttention(
        num_heads=3,
        key_dim=4,
        value_dim=2,
        output_dim=5,
        use_bias=use_bias,
        bias_initializer="random_normal",
    )
    output, scores = layer(
        query, value, key, attention_mask=mask, return_attention_scores=True
    )
    weights = [_numpy(w) for w in layer.weights]
    if not use_bias:
        assert len(weights) == 4
        wq, wk, wv, wo = weights
        weights = [
            wq, np.zeros((3, 4)), wk, np.zeros((3, 4)),
            wv, np.zeros((3, 2)), wo, np.zeros(5),
        ]  # fmt: skip
    expected, expected_scores = _numpy_mha(weights, query, value, key, mask)
    assert output.shape == (BATCH, Q_LEN, 5)
    np.testing.assert_allclose(_numpy(output), expected, atol=1e-5)
    np.testing.assert_allclose(_numpy(scores), expected_scores, atol=1e-6)


def test_padded_keys_get_zero_weight_and_do_not_matter():
    query = _normal(BATCH, Q_LEN, Q_DIM, seed=1)
    value = _normal(BATCH, K_LEN, V_DIM, seed=2)
    value_mask = np.ones((BATCH, K_LEN), bool)
    value_mask[0, 4:] = False
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    output, scores = layer(
        query, value, value_mask=value_mask, return_attention_scores=True
    )
    scores = _numpy(scores)
    assert np.all(scores[0, :, :, 4:] == 0.0)
    assert np.all(scores[1] > 0.0)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-6)
    changed = value.copy()
    changed[0, 4:] = 100.0
    np.testing.assert_allclose(
        _numpy(layer(query, changed, value_mask=value_mask)),
        _numpy(output),
        atol=1e-6,
    )


def test_causal_future_tokens_do_not_change_earlier_outputs():
    x = _normal(BATCH, 6, Q_DIM)
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    output = _numpy(layer(x, x, use_causal_mask=True))
    changed = x.copy()
    changed[:, 4:] = _normal(BATCH, 2, Q_DIM, seed=9)
    changed_output = _numpy(layer(changed, changed, use_causal_mask=True))
    np.testing.assert_allclose(changed_output[:, :4], output[:, :4], atol=1e-6)
    assert not np.allclose(changed_output[:, 4:], output[:, 4:])


def test_implicit_mask_matches_explicit_masks():
    ids = np.array([[3, 1, 4, 1, 0], [5, 9, 2, 0, 0]])
    source_ids = np.array([[2, 7, 1, 8, 2, 8, 0], [1, 8, 0, 0, 0, 0, 0]])
    embedding = keras.layers.Embedding(10, Q_DIM, mask_zero=True)
    query, value = embedding(ids), embedding(source_ids)
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    with warnings.catch_warnings():
        # The projections must not warn about the masks the layer handles.
        warnings.simplefilter("error")
        implicit = layer(query, value)
    np.testing.assert_array_equal(_numpy(implicit._keras_mask), ids != 0)
    query_mask, value_mask = ids != 0, source_ids != 0
    explicit = layer(
        keras.ops.convert_to_tensor(_numpy(query)),
        keras.ops.convert_to_tensor(_numpy(value)),
        attention_mask=query_mask[:, :, None] & value_mask[:, None, :],
    )
    unmasked = layer(
        keras.ops.convert_to_tensor(_numpy(query)),
        keras.ops.convert_to_tensor(_numpy(value)),
    )
    np.testing.assert_allclose(_numpy(implicit), _numpy(explicit), atol=1e-6)
    assert not np.allclose(_numpy(implicit), _numpy(unmasked), atol=1e-3)


def test_implicit_mask_in_functional_model():
    ids = np.array([[3, 1, 4, 1, 0], [5, 9, 2, 0, 0]])
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, Q_DIM, mask_zero=True)(inputs)
    outputs = MultiHeadAttention(NUM_HEADS, KEY_DIM)(x, x)
    model = keras.Model(inputs, outputs)
    changed = ids.copy()
    changed[0, 4] = 7  # a padded position becomes a real token
    first = model.predict(ids, verbose=0)
    second = model.predict(changed, verbose=0)
    np.testing.assert_allclose(first[1], second[1], atol=1e-6)
    assert not np.allclose(first[0, :4], second[0, :4])


def test_fully_masked_rows_are_finite_and_zero_before_projection():
    query = _normal(BATCH, Q_LEN, Q_DIM, seed=1)
    value = _normal(BATCH, K_LEN, V_DIM, seed=2)
    mask = np.ones((BATCH, Q_LEN, K_LEN), bool)
    mask[0, 2] = False
    layer = MultiHeadAttention(
        NUM_HEADS, KEY_DIM, bias_initializer="random_normal"
    )

    def attend(query):
        output = layer(query, value, attention_mask=mask)
        return output, keras.ops.sum(output)

    output, gradient = value_and_gradients(attend, query)
    assert np.isfinite(output).all() and np.isfinite(gradient).all()
    # The heads of the masked row are zero, so only the output bias is left.
    output_bias = _numpy(layer.output_dense.bias)
    np.testing.assert_allclose(output[0, 2], output_bias, atol=1e-6)


@pytest.mark.parametrize("use_causal_mask", [False, True])
def test_chunked_matches_dense(use_causal_mask):
    query = _normal(BATCH, 6, Q_DIM, seed=1)
    value = _normal(BATCH, 8, V_DIM, seed=2)
    value_mask = np.ones((BATCH, 8), bool)
    value_mask[1, 6:] = False
    outputs, gradients, weights = [], [], None
    for implementation in ("dense", "chunked"):
        layer = MultiHeadAttention(
            NUM_HEADS,
            KEY_DIM,
            attention_implementation=implementation,
            chunk_size=3,
        )
        layer.build(query.shape, value.shape)
        if weights is None:
            weights = layer.get_weights()
        layer.set_weights(weights)

        def attend(query, layer=layer):
            output = layer(
                query,
                value,
                value_mask=value_mask,
                use_causal_mask=use_causal_mask,
            )
            return output, keras.ops.sum(output**2)

        output, gradient = value_and_gradients(attend, query)
        outputs.append(output)
        gradients.append(gradient)
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)
    np.testing.assert_allclose(gradients[0], gradients[1], atol=1e-4)


def test_dropout_only_in_training_and_seeded():
    x = _normal(BATCH, Q_LEN, Q_DIM)
    layers = [
        MultiHeadAttention(NUM_HEADS, KEY_DIM, dropout=0.5, seed=7)
        for _ in range(2)
    ]
    plain = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    plain(x, x)
    for layer in layers:
        layer(x, x)
        layer.set_weights(plain.get_weights())
    inference = _numpy(layers[0](x, x, training=False))
    np.testing.assert_allclose(inference, _numpy(plain(x, x)), atol=1e-6)
    trained = [_numpy(layer(x, x, training=True)) for layer in layers]
    assert not np.allclose(trained[0], inference, atol=1e-3)
    np.testing.assert_allclose(trained[0], trained[1], atol=1e-6)


def _decode_step_by_step(layer, x, steps, call=None):
    """Feeds `x` through a self-attention cache, `steps` tokens at a time."""
    call = call or layer
    batch, length, _ = x.shape
    cache = keras.ops.zeros((batch, 2, length, NUM_HEADS, KEY_DIM))
    outputs, start = [], 0
    for size in steps:
        tokens = x[:, start : start + size]
        output, cache = call(tokens, cache, start)
        outputs.append(_numpy(output))
        start += size
    return np.concatenate(outputs, axis=1), cache


@pytest.mark.parametrize(
    "steps", [(1,) * 6, (3, 1, 1, 1)], ids=["one_token", "prefill"]
)
def test_cached_self_attention_decoding_matches_full_causal_call(steps):
    x = _normal(BATCH, 6, Q_DIM)
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    full = _numpy(layer(x, x, use_causal_mask=True))

    def call(tokens, cache, index):
        return layer(
            tokens,
            tokens,
            cache=cache,
            cache_update_index=index,
            use_causal_mask=True,
        )

    decoded, cache = _decode_step_by_step(layer, x, steps, call)
    np.testing.assert_allclose(decoded, full, atol=1e-5)
    np.testing.assert_allclose(
        _numpy(cache), _numpy(layer.compute_cache(x)), atol=1e-6
    )


@pytest.mark.tf_only
@pytest.mark.parametrize("jit_compile", [False, True])
def test_cached_decoding_inside_tf_function(jit_compile):
    x = _normal(BATCH, 6, Q_DIM)
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    full = _numpy(layer(x, x, use_causal_mask=True))

    @tf.function(jit_compile=jit_compile)
    def step(tokens, cache, index):
        return layer(
            tokens,
            tokens,
            cache=cache,
            cache_update_index=index,
            use_causal_mask=True,
        )

    def call(tokens, cache, index):
        return step(tokens, cache, tf.constant(index))

    decoded, _ = _decode_step_by_step(layer, x, (1,) * 6, call)
    np.testing.assert_allclose(decoded, full, atol=1e-5)
    assert step.experimental_get_tracing_count() == 1


def test_cache_with_explicit_mask_and_scores():
    x = _normal(BATCH, 4, Q_DIM)
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    full = _numpy(layer(x, x, use_causal_mask=True))
    cache = layer.compute_cache(x[:, :2])
    cache = keras.ops.pad(cache, [[0, 0], [0, 0], [0, 2], [0, 0], [0, 0]])
    # The third token sees cache positions 0, 1 and 2 only.
    attention_mask = np.array([True, True, True, False])[None, None]
    output, scores, new_cache = layer(
        x[:, 2:3],
        x[:, 2:3],
        attention_mask=attention_mask,
        cache=cache,
        cache_update_index=2,
        return_attention_scores=True,
    )
    assert scores.shape == (BATCH, NUM_HEADS, 1, 4)
    assert new_cache.shape == (BATCH, 2, 4, NUM_HEADS, KEY_DIM)
    assert np.all(_numpy(scores)[..., 3] == 0.0)
    np.testing.assert_allclose(_numpy(output)[:, 0], full[:, 2], atol=1e-5)


@pytest.mark.tf_only
@pytest.mark.parametrize("index, new_len", [(4, 1), (3, 2), (-1, 1)])
def test_cache_update_out_of_range_raises(index, new_len):
    # `slice_update` alone would clamp the index and overwrite the last slot.
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    tokens = _normal(BATCH, new_len, Q_DIM)
    cache = np.zeros((BATCH, 2, 4, NUM_HEADS, KEY_DIM), "float32")
    with pytest.raises(ValueError, match="do not fit in the cache"):
        layer(tokens, tokens, cache=cache, cache_update_index=index)

    @tf.function
    def step(tokens, cache, index):
        return layer(tokens, tokens, cache=cache, cache_update_index=index)

    with pytest.raises(tf.errors.InvalidArgumentError, match="do not fit"):
        step(tokens, cache, tf.constant(index))
    # The last slots that do fit are accepted, in both paths.
    fits = 4 - new_len
    _, eager_cache = layer(tokens, tokens, cache=cache, cache_update_index=fits)
    _, graph_cache = step(tokens, cache, tf.constant(fits))
    for new_cache in (eager_cache, graph_cache):
        assert np.all(_numpy(new_cache)[:, :, fits:] != 0.0)
        assert np.all(_numpy(new_cache)[:, :, :fits] == 0.0)


def test_cache_update_ignores_masks_of_new_tokens():
    x = _normal(BATCH, 3, Q_DIM)
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    full = _numpy(layer(x, x, use_causal_mask=True))
    cache = keras.ops.pad(
        layer.compute_cache(x[:, :2]),
        [[0, 0], [0, 0], [0, 1], [0, 0], [0, 0]],
    )
    # A `(batch, 1)` mask of the new token does not describe the cache.
    output, _ = layer(
        x[:, 2:],
        x[:, 2:],
        value_mask=np.zeros((BATCH, 1), bool),
        cache=cache,
        cache_update_index=2,
        use_causal_mask=True,
    )
    np.testing.assert_allclose(_numpy(output)[:, 0], full[:, 2], atol=1e-5)


@pytest.mark.parametrize("with_mask", [False, True])
def test_precomputed_cross_attention_cache(with_mask):
    query = _normal(BATCH, Q_LEN, Q_DIM, seed=1)
    value = _normal(BATCH, K_LEN, V_DIM, seed=2)
    key = _normal(BATCH, K_LEN, K_DIM, seed=3)
    kwargs = {}
    if with_mask:
        value_mask = np.ones((BATCH, K_LEN), bool)
        value_mask[0, 3:] = False
        kwargs["value_mask"] = value_mask
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM)
    expected = layer(query, value, key, **kwargs)
    cache = layer.compute_cache(value, key)
    assert cache.shape == (BATCH, 2, K_LEN, NUM_HEADS, KEY_DIM)
    output, same_cache = layer(query, value, key, cache=cache, **kwargs)
    np.testing.assert_allclose(_numpy(output), _numpy(expected), atol=1e-5)
    np.testing.assert_array_equal(_numpy(same_cache), _numpy(cache))
    # The cache is used as it is: `value` and `key` are not read again.
    output, _ = layer(query, value * 0, key * 0, cache=cache, **kwargs)
    np.testing.assert_allclose(_numpy(output), _numpy(expected), atol=1e-5)


def test_cache_in_functional_model_and_mixed_precision():
    layer = MultiHeadAttention(NUM_HEADS, KEY_DIM, dtype="mixed_float16")
    tokens = keras.Input((1, Q_DIM))
    cache = keras.Input((2, 6, NUM_HEADS, KEY_DIM))
    output, new_cache = layer(
        tokens, tokens, cache=cache, cache_update_index=0, use_causal_mask=True
    )
    assert tuple(output.shape) == (None, 1, Q_DIM)
    assert tuple(new_cache.shape) == (None, 2, 6, NUM_HEADS, KEY_DIM)
    model = keras.Model([tokens, cache], [output, new_cache])
    output, new_cache = model.predict(
        [_normal(BATCH, 1, Q_DIM), np.zeros((BATCH, 2, 6, NUM_HEADS, KEY_DIM))],
        verbose=0,
    )
    assert output.dtype == np.float16 and new_cache.dtype == np.float16
    assert np.isfinite(output).all()
    assert np.all(new_cache[:, :, 1:] == 0.0)


LAYER_TEST_CASES = {
    "self": (
        {"num_heads": 2, "key_dim": 4},
        {"query": (2, 5, 8), "value": (2, 5, 8)},
        {},
        (2, 5, 8),
    ),
    "cross_with_key": (
        {"num_heads": 2, "key_dim": 4, "dropout": 0.1, "seed": 3},
        {"query": (2, 5, 8), "value": (2, 7, 6), "key": (2, 7, 4)},
        {},
        (2, 5, 8),
    ),
    "causal_chunked": (
        {
            "num_heads": 2,
            "key_dim": 4,
            "attention_implementation": "chunked",
            "chunk_size": 2,
        },
        {"query": (2, 5, 8), "value": (2, 5, 8)},
        {"use_causal_mask": True},
        (2, 5, 8),
    ),
    "value_dim_output_dim": (
        {"num_heads": 3, "key_dim": 4, "value_dim": 2, "output_dim": 5},
        {"query": (2, 5, 8), "value": (2, 7, 6)},
        {},
        (2, 5, 5),
    ),
    "scores": (
        {"num_heads": 2, "key_dim": 4, "use_bias": False},
        {"query": (2, 5, 8), "value": (2, 7, 6)},
        {"return_attention_scores": True},
        ((2, 5, 8), (2, 2, 5, 7)),
    ),
}


@pytest.mark.parametrize("case", sorted(LAYER_TEST_CASES))
def test_layer_contract(case):
    init_kwargs, shapes, call_kwargs, expected_shape = LAYER_TEST_CASES[case]
    inputs = {
        name: _normal(*shape, seed=i)
        for i, (name, shape) in enumerate(shapes.items())
    }
    num_weights = 8 if init_kwargs.get("use_bias", True) else 4
    run_layer_test(
        MultiHeadAttention,
        init_kwargs,
        inputs,
        call_kwargs=call_kwargs,
        expected_output_shape=expected_shape,
        expected_num_trainable_weights=num_weights,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"key_dim": -1}, "key_dim"),
        ({"value_dim": 0}, "value_dim"),
        ({"output_dim": 2.5}, "output_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"attention_implementation": "flash"}, "attention_implementation"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_invalid_arguments(kwargs, message):
    kwargs = {"num_heads": 2, "key_dim": 4, **kwargs}
    with pytest.raises(ValueError, match=f"{message}.*Received"):
        MultiHeadAttention(**kwargs)


def test_invalid_inputs():
    query = _normal(BATCH, Q_LEN, Q_DIM, seed=1)
    value = _normal(BATCH, K_LEN, V_DIM, seed=2)
    with pytest.raises(ValueError, match="`query` must be a rank-3.*Received"):
        MultiHeadAttention(2, 4)(query[0], value)
    with pytest.raises(ValueError, match="`value` must be a rank-3.*Received"):
        MultiHeadAttention(2, 4)(query, value[..., None])
    layer = MultiHeadAttention(2, 4)
    layer(query, value)
    with pytest.raises(ValueError, match="`value` must have 6 features"):
        layer(query, query)
    with pytest.raises(ValueError, match="attention_mask.*Received"):
        layer(query, value, attention_mask=np.ones((BATCH, Q_LEN, 3), bool))
    with pytest.raises(ValueError, match="cache_update_index.*Received"):
        layer(query, value, cache_update_index=0)
    with pytest.raises(ValueError, match="`cache` must have shape.*Received"):
        layer(query, value, cache=np.zeros((BATCH, 2, K_LEN, 3, 4), "float32"))


def test_cache_errors():
    query = _normal(BATCH, Q_LEN, Q_DIM, seed=1)
    layer = MultiHeadAttention(2, 4, value_dim=3)
    layer(query, query)
    with pytest.raises(ValueError, match="value_dim == key_dim.*Received"):
        layer.compute_cache(query)
    cache = np.zeros((BATCH, 2, Q_LEN, 2, 4), "float32")
    with pytest.raises(ValueError, match="value_dim == key_dim.*Received"):
        layer(query, query, cache=cache)
    with pytest.raises(ValueError, match="build the layer first.*Received"):
        MultiHeadAttention(2, 4).compute_cache(query)
