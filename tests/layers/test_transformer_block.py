import keras
import numpy as np
import pytest

from keras_attention.layers.transformer_block import TransformerBlock
from tests.testing import run_layer_test

BATCH, SEQ, D_MODEL, HEADS, FF = 2, 5, 8, 2, 16


def _inputs(seed=0, shape=(BATCH, SEQ, D_MODEL)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _randomize_weights(layer, seed=1):
    """Non-trivial values everywhere, layer-norm gammas and betas included."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            rng.normal(scale=0.5, size=w.shape).astype("float32")
            for w in layer.get_weights()
        ]
    )


def _weights_by_path(layer):
    """`{"self_attention/query_key_value/kernel": array, ...}`."""
    return {w.path.split("/", 1)[1]: w.numpy() for w in layer.weights}


# NumPy reference of the encoder block, written from the paper's formulas.
def np_layer_norm(x, gamma, beta, epsilon=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def np_attention(q, k, v, mask=None):
    """`softmax(q k^T / sqrt(d)) v` on `(batch, len, heads, depth)` arrays."""
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask[:, None], scores, -np.inf)
    scores = scores - scores.max(-1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", weights, v), weights


def np_encoder_block(x, w, norm_first, mask=None):
    def self_attention(h):
        qkv = (
            np.einsum(
                "btd,dhk->bthk", h, w["self_attention/query_key_value/kernel"]
            )
            + w["self_attention/query_key_value/bias"]
        )
        q, k, v = np.split(qkv, 3, axis=-1)
        heads, _ = np_attention(q, k, v, mask)
        return (
            np.einsum(
                "bthk,hko->bto",
                heads,
                w["self_attention/attention_output/kernel"],
            )
            + w["self_attention/attention_output/bias"]
        )

    def feed_forward(h):
        hidden = np.maximum(
            h @ w["feed_forward_intermediate_dense/kernel"]
            + w["feed_forward_intermediate_dense/bias"],
            0.0,
        )
        return (
            hidden @ w["feed_forward_output_dense/kernel"]
            + w["feed_forward_output_dense/bias"]
        )

    for sublayer, norm in (
        (self_attention, "self_attention_layer_norm"),
        (feed_forward, "feed_forward_layer_norm"),
    ):
        gamma, beta = w[f"{norm}/gamma"], w[f"{norm}/beta"]
        if norm_first:
            x = x + sublayer(np_layer_norm(x, gamma, beta))
        else:
            x = np_layer_norm(x + sublayer(x), gamma, beta)
    return x


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_matches_numpy_reference(norm_first):
    x = _inputs()
    block = TransformerBlock(HEADS, FF, norm_first=norm_first)
    block.build(x.shape)
    _randomize_weights(block)
    expected = np_encoder_block(x, _weights_by_path(block), norm_first)
    np.testing.assert_allclose(block(x), expected, rtol=1e-5, atol=1e-5)


def test_matches_numpy_reference_with_causal_mask():
    x = _inputs()
    block = TransformerBlock(HEADS, FF)
    block.build(x.shape)
    _randomize_weights(block)
    causal = np.tril(np.ones((SEQ, SEQ), bool))[None]
    expected = np_encoder_block(x, _weights_by_path(block), False, causal)
    np.testing.assert_allclose(
        block(x, use_causal_mask=True), expected, rtol=1e-5, atol=1e-5
    )


def _copy_to_keras_hub(block, hub_block):
    """Copy our weights into `keras_hub.layers.TransformerEncoder`.

    KerasHub uses `keras.layers.MultiHeadAttention` with separate query, key
    and value kernels `(d_model, heads, key_dim)`; ours is the fused
    `(d_model, heads, 3 * key_dim)` kernel holding query, key and value in
    this order along the last axis. KerasHub also creates its feed-forward
    layer norm before the feed-forward dense layers, so map by name.
    """
    ours = _weights_by_path(block)
    qkv_kernel = np.split(ours["self_attention/query_key_value/kernel"], 3, -1)
    qkv_bias = np.split(ours["self_attention/query_key_value/bias"], 3, -1)
    mapped = {
        "self_attention_layer_norm": "self_attention_layer_norm",
        "feedforward_layer_norm": "feed_forward_layer_norm",
        "feedforward_intermediate_dense": "feed_forward_intermediate_dense",
        "feedforward_output_dense": "feed_forward_output_dense",
        "self_attention_layer/attention_output": (
            "self_attention/attention_output"
        ),
    }
    for i, projection in enumerate(("query", "key", "value")):
        ours[f"{projection}/kernel"] = qkv_kernel[i]
        ours[f"{projection}/bias"] = qkv_bias[i]
        mapped[f"self_attention_layer/{projection}"] = projection
    values = []
    for weight in hub_block.weights:
        path = weight.path.split("/", 1)[1]
        sublayer, variable = path.rsplit("/", 1)
        values.append(ours[f"{mapped[sublayer]}/{variable}"])
    hub_block.set_weights(values)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_matches_keras_hub_transformer_encoder(norm_first):
    keras_hub = pytest.importorskip("keras_hub")
    x = _inputs()
    block = TransformerBlock(HEADS, FF, norm_first=norm_first)
    block.build(x.shape)
    _randomize_weights(block)
    hub_block = keras_hub.layers.TransformerEncoder(
        intermediate_dim=FF, num_heads=HEADS, normalize_first=norm_first
    )
    hub_block.build(x.shape)
    _copy_to_keras_hub(block, hub_block)
    np.testing.assert_allclose(block(x), hub_block(x), rtol=1e-5, atol=1e-5)

    # KerasHub masks padded keys only; we also mask padded queries (as
    # `keras.layers.MultiHeadAttention` does), so only real tokens compare.
    padding = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    ours = keras.ops.convert_to_numpy(block(x, padding_mask=padding))
    theirs = keras.ops.convert_to_numpy(hub_block(x, padding_mask=padding))
    np.testing.assert_allclose(
        ours[padding], theirs[padding], rtol=1e-5, atol=1e-5
    )


def test_padded_tokens_do_not_change_real_outputs():
    x = _inputs()
    padding = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], bool)
    block = TransformerBlock(HEADS, FF)
    output, scores = block(
        x, padding_mask=padding, return_attention_scores=True
    )
    changed = x.copy()
    changed[~padding] = 100.0
    changed_output = block(changed, padding_mask=padding)
    output = keras.ops.convert_to_numpy(output)
    changed_output = keras.ops.convert_to_numpy(changed_output)
    np.testing.assert_allclose(
        output[padding], changed_output[padding], atol=1e-6
    )
    scores = keras.ops.convert_to_numpy(scores)  # (batch, heads, q, k)
    key_is_padded = ~padding[:, None, None, :]
    np.testing.assert_array_equal(
        np.where(key_is_padded, scores, 0.0), np.zeros_like(scores)
    )


def test_implicit_mask_equals_explicit_padding_mask():
    token_ids = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 0]])
    embedding = keras.layers.Embedding(10, D_MODEL, mask_zero=True)
    block = TransformerBlock(HEADS, FF)
    embedded = embedding(token_ids)  # carries the implicit mask
    implicit = block(embedded)
    unmasked = keras.ops.convert_to_tensor(keras.ops.convert_to_numpy(embedded))
    explicit = block(unmasked, padding_mask=token_ids != 0)
    np.testing.assert_allclose(implicit, explicit, atol=1e-6)
    # Without any mask the outputs of real tokens differ: the mask matters.
    assert not np.allclose(block(unmasked)[0, :3], implicit[0, :3], atol=1e-4)
    # The output keeps the input mask.
    np.testing.assert_array_equal(implicit._keras_mask, token_ids != 0)

    # Implicit and explicit masks together are merged with a logical AND.
    extra = np.ones_like(token_ids, bool)
    extra[:, 1] = False
    both = block(embedded, padding_mask=extra)
    expected = block(unmasked, padding_mask=(token_ids != 0) & extra)
    np.testing.assert_allclose(both, expected, atol=1e-6)


def test_implicit_mask_in_functional_model():
    token_ids = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 0]])
    ids = keras.Input(shape=(None,), dtype="int32")
    embedding = keras.layers.Embedding(10, D_MODEL, mask_zero=True)
    block = TransformerBlock(HEADS, FF)
    model = keras.Model(ids, block(embedding(ids)))
    explicit = block(
        keras.ops.convert_to_numpy(embedding(token_ids)),
        padding_mask=token_ids != 0,
    )
    np.testing.assert_allclose(model(token_ids), explicit, atol=1e-6)


def test_causal_mask_ignores_future_tokens():
    x = _inputs()
    block = TransformerBlock(HEADS, FF, norm_first=True)
    changed = x.copy()
    changed[:, 3:] = -7.0
    output = keras.ops.convert_to_numpy(block(x, use_causal_mask=True))
    changed_output = keras.ops.convert_to_numpy(
        block(changed, use_causal_mask=True)
    )
    np.testing.assert_allclose(output[:, :3], changed_output[:, :3], atol=1e-6)
    assert not np.allclose(output[:, 3:], changed_output[:, 3:])


def test_attention_mask_matches_causal_mask():
    x = _inputs()
    block = TransformerBlock(HEADS, FF)
    causal = np.broadcast_to(
        np.tril(np.ones((SEQ, SEQ), bool)), (BATCH, SEQ, SEQ)
    )
    np.testing.assert_allclose(
        block(x, attention_mask=causal),
        block(x, use_causal_mask=True),
        atol=1e-6,
    )


@pytest.mark.parametrize("dtype", ["float32", "mixed_float16"])
def test_fully_padded_rows_are_finite(dtype):
    x = _inputs()
    padding = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 0, 0]], bool)
    block = TransformerBlock(HEADS, FF, dtype=dtype)
    output, scores = block(
        x, padding_mask=padding, return_attention_scores=True
    )
    assert np.isfinite(keras.ops.convert_to_numpy(output)).all()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(scores)[0], 0.0)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
@pytest.mark.parametrize("scores", [False, True], ids=["output", "scores"])
def test_layer(norm_first, scores):
    output_shape = (BATCH, SEQ, D_MODEL)
    if scores:
        output_shape = (output_shape, (BATCH, HEADS, SEQ, SEQ))
    run_layer_test(
        TransformerBlock,
        init_kwargs={
            "num_heads": HEADS,
            "feed_forward_dim": FF,
            "dropout": 0.1,
            "norm_first": norm_first,
            "activation": "gelu",
        },
        input_data=_inputs(),
        call_kwargs={"return_attention_scores": scores},
        expected_output_shape=output_shape,
        expected_num_trainable_weights=12,
    )


def test_layer_with_padding_mask_input():
    run_layer_test(
        TransformerBlock,
        init_kwargs={
            "num_heads": HEADS,
            "feed_forward_dim": FF,
            "key_dim": 3,
            "value_dim": 5,
            "attention_dropout": 0.2,
        },
        input_data={
            "inputs": _inputs(),
            "padding_mask": np.array([[1, 1, 1, 0, 0], [1] * 5], bool),
        },
        expected_output_shape=(BATCH, SEQ, D_MODEL),
        expected_num_trainable_weights=12,
        run_saving_check=False,
    )


def test_key_dim_defaults_to_d_model_over_heads():
    block = TransformerBlock(num_heads=4, feed_forward_dim=FF)
    block.build((None, None, 12))
    kernel = _weights_by_path(block)["self_attention/query_key_value/kernel"]
    assert kernel.shape == (12, 4, 3 * 3)
    assert block.get_config()["key_dim"] is None


def test_dropout_is_active_only_in_training():
    x = _inputs()
    block = TransformerBlock(HEADS, FF, dropout=0.5)
    np.testing.assert_allclose(block(x), block(x, training=False))
    assert not np.allclose(block(x), block(x, training=True))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_heads": 0, "feed_forward_dim": FF}, "num_heads"),
        ({"num_heads": HEADS, "feed_forward_dim": 0}, "feed_forward_dim"),
        ({"num_heads": HEADS, "feed_forward_dim": -4}, "feed_forward_dim"),
        ({"num_heads": HEADS, "feed_forward_dim": FF, "key_dim": 0}, "key_dim"),
        (
            {"num_heads": HEADS, "feed_forward_dim": FF, "dropout": 1.0},
            "dropout",
        ),
        (
            {
                "num_heads": HEADS,
                "feed_forward_dim": FF,
                "attention_dropout": -0.1,
            },
            "attention_dropout",
        ),
        (
            {
                "num_heads": HEADS,
                "feed_forward_dim": FF,
                "layer_norm_epsilon": 0.0,
            },
            "layer_norm_epsilon",
        ),
        (
            {
                "num_heads": HEADS,
                "feed_forward_dim": FF,
                "attention_implementation": "flash",
            },
            "attention_implementation",
        ),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"{match}.*Received"):
        TransformerBlock(**kwargs)


def test_d_model_not_divisible_by_num_heads():
    block = TransformerBlock(num_heads=3, feed_forward_dim=FF)
    with pytest.raises(ValueError, match="d_model=8.*num_heads=3.*Received"):
        block(_inputs())
    # An explicit key_dim lifts the restriction.
    block = TransformerBlock(num_heads=3, feed_forward_dim=FF, key_dim=4)
    assert block(_inputs()).shape == (BATCH, SEQ, D_MODEL)


def test_wrong_rank():
    block = TransformerBlock(HEADS, FF)
    with pytest.raises(ValueError, match="rank-3.*Received: inputs.shape"):
        block(np.zeros((BATCH, D_MODEL), "float32"))
    block(_inputs())
    with pytest.raises(ValueError, match="rank-3.*Received: inputs.shape"):
        block(np.zeros((BATCH, 1, SEQ, D_MODEL), "float32"))


def test_mismatched_padding_mask():
    block = TransformerBlock(HEADS, FF)
    with pytest.raises(ValueError, match="padding_mask.*Received"):
        block(_inputs(), padding_mask=np.ones((BATCH + 1, SEQ), bool))
    with pytest.raises(ValueError, match="padding_mask.*Received"):
        block(_inputs(), padding_mask=np.ones((BATCH, SEQ, 1), bool))
