import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.layers.transformer_decoder_block import (
    TransformerDecoderBlock,
)
from tests.testing import run_layer_test

BATCH, TGT, SRC, D_MODEL, HEADS, FF = 2, 4, 6, 8, 2, 16
KEY_DIM = D_MODEL // HEADS

with_encoder = pytest.mark.parametrize(
    "use_encoder", [True, False], ids=["encoder_decoder", "decoder_only"]
)
norm_variants = pytest.mark.parametrize(
    "norm_first", [False, True], ids=["post_ln", "pre_ln"]
)


def _normal(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _target(seed=0):
    return _normal((BATCH, TGT, D_MODEL), seed)


def _source(seed=1):
    return _normal((BATCH, SRC, D_MODEL), seed)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _block(use_encoder=True, seed=2, **kwargs):
    """A built block with non-trivial weights (layer norms included)."""
    block = TransformerDecoderBlock(HEADS, FF, **kwargs)
    block.build(
        (BATCH, TGT, D_MODEL), (BATCH, SRC, D_MODEL) if use_encoder else None
    )
    rng = np.random.default_rng(seed)
    block.set_weights(
        [
            rng.normal(scale=0.5, size=w.shape).astype("float32")
            for w in block.get_weights()
        ]
    )
    return block


def _call(block, target, source, **kwargs):
    return (
        block(target, source, **kwargs)
        if source is not None
        else block(target, **kwargs)
    )


@norm_variants
@with_encoder
def test_matches_keras_hub_transformer_decoder(norm_first, use_encoder):
    """Same architecture as KerasHub: its weights map one-to-one by name."""
    keras_hub = pytest.importorskip("keras_hub")
    target = _target()
    source = _source() if use_encoder else None
    block = _block(use_encoder, norm_first=norm_first)
    hub_block = keras_hub.layers.TransformerDecoder(
        intermediate_dim=FF, num_heads=HEADS, normalize_first=norm_first
    )
    hub_block.build(target.shape, source.shape if use_encoder else None)
    ours = {w.path.split("/", 1)[1]: w.numpy() for w in block.weights}
    hub_block.set_weights(
        [
            ours[w.path.split("/", 1)[1].replace("feedforward", "feed_forward")]
            for w in hub_block.weights
        ]
    )
    np.testing.assert_allclose(
        _call(block, target, source),
        _call(hub_block, target, source),
        rtol=1e-5,
        atol=1e-5,
    )

    # KerasHub masks padded keys only; we also mask padded queries, so only
    # the real target tokens compare.
    decoder_padding = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    masks = {"decoder_padding_mask": decoder_padding}
    if use_encoder:
        masks["encoder_padding_mask"] = np.array(
            [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool
        )
    np.testing.assert_allclose(
        _numpy(_call(block, target, source, **masks))[decoder_padding],
        _numpy(_call(hub_block, target, source, **masks))[decoder_padding],
        rtol=1e-5,
        atol=1e-5,
    )


@with_encoder
def test_causal_mask_ignores_future_target_tokens(use_encoder):
    target, source = _target(), _source() if use_encoder else None
    block = _block(use_encoder)
    changed = target.copy()
    changed[:, 2:] = 5.0
    output = _numpy(_call(block, target, source))
    changed_output = _numpy(_call(block, changed, source))
    np.testing.assert_allclose(output[:, :2], changed_output[:, :2], atol=1e-6)
    assert not np.allclose(output[:, 2:], changed_output[:, 2:])
    # Without the causal mask the earlier tokens see the change.
    output = _numpy(_call(block, target, source, use_causal_mask=False))
    changed_output = _numpy(
        _call(block, changed, source, use_causal_mask=False)
    )
    assert not np.allclose(output[:, :2], changed_output[:, :2])


def test_encoder_padding_mask_in_cross_attention():
    target, source = _target(), _source()
    encoder_padding = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]], bool)
    block = _block()
    output, _, cross_scores = block(
        target,
        source,
        encoder_padding_mask=encoder_padding,
        return_attention_scores=True,
    )
    changed = source.copy()
    changed[~encoder_padding] = 9.0
    np.testing.assert_allclose(
        output,
        block(target, changed, encoder_padding_mask=encoder_padding),
        atol=1e-6,
    )
    assert not np.allclose(output, block(target, changed), atol=1e-4)
    cross_scores = _numpy(cross_scores)  # (batch, heads, tgt, src)
    assert cross_scores.shape == (BATCH, HEADS, TGT, SRC)
    padded_keys = np.broadcast_to(
        ~encoder_padding[:, None, None, :], cross_scores.shape
    )
    np.testing.assert_array_equal(cross_scores[padded_keys], 0.0)
    np.testing.assert_allclose(cross_scores.sum(-1), 1.0, rtol=1e-5)


def test_decoder_padding_mask():
    target, source = _target(), _source()
    decoder_padding = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    block = _block()
    output, self_scores, _ = block(
        target,
        source,
        decoder_padding_mask=decoder_padding,
        use_causal_mask=False,
        return_attention_scores=True,
    )
    changed = target.copy()
    changed[~decoder_padding] = -3.0
    changed_output = block(
        changed,
        source,
        decoder_padding_mask=decoder_padding,
        use_causal_mask=False,
    )
    np.testing.assert_allclose(
        _numpy(output)[decoder_padding],
        _numpy(changed_output)[decoder_padding],
        atol=1e-6,
    )
    padded_keys = np.broadcast_to(
        ~decoder_padding[:, None, None, :], self_scores.shape
    )
    np.testing.assert_array_equal(_numpy(self_scores)[padded_keys], 0.0)


@with_encoder
def test_implicit_masks_equal_explicit_padding_masks(use_encoder):
    # Left padding: under the causal mask real tokens would see these pads.
    target_ids = np.array([[0, 5, 2, 9], [0, 0, 1, 3]])
    source_ids = np.array([[4, 4, 2, 7, 0, 0], [8, 1, 6, 2, 5, 0]])
    embedding = keras.layers.Embedding(10, D_MODEL, mask_zero=True)
    block = TransformerDecoderBlock(HEADS, FF)
    target = embedding(target_ids)  # carries the implicit mask
    source = embedding(source_ids) if use_encoder else None
    implicit = _call(block, target, source)
    explicit_masks = {"decoder_padding_mask": target_ids != 0}
    if use_encoder:
        explicit_masks["encoder_padding_mask"] = source_ids != 0
    explicit = _call(
        block,
        keras.ops.convert_to_numpy(target),  # NumPy copies carry no mask
        keras.ops.convert_to_numpy(source) if use_encoder else None,
        **explicit_masks,
    )
    np.testing.assert_allclose(implicit, explicit, atol=1e-6)
    unmasked = _call(
        block,
        keras.ops.convert_to_numpy(target),
        keras.ops.convert_to_numpy(source) if use_encoder else None,
    )
    real = target_ids != 0
    assert not np.allclose(_numpy(unmasked)[real], _numpy(implicit)[real])
    np.testing.assert_array_equal(implicit._keras_mask, target_ids != 0)


def test_implicit_masks_in_functional_model():
    target_ids = np.array([[5, 2, 9, 0], [1, 3, 0, 0]])
    source_ids = np.array([[4, 4, 2, 7, 0, 0], [8, 1, 6, 2, 5, 0]])
    embedding = keras.layers.Embedding(10, D_MODEL, mask_zero=True)
    block = TransformerDecoderBlock(HEADS, FF)
    target_in = keras.Input((None,), dtype="int32")
    source_in = keras.Input((None,), dtype="int32")
    model = keras.Model(
        [target_in, source_in],
        block(embedding(target_in), embedding(source_in)),
    )
    explicit = block(
        keras.ops.convert_to_numpy(embedding(target_ids)),
        keras.ops.convert_to_numpy(embedding(source_ids)),
        decoder_padding_mask=target_ids != 0,
        encoder_padding_mask=source_ids != 0,
    )
    np.testing.assert_allclose(
        model([target_ids, source_ids]), explicit, atol=1e-6
    )


@pytest.mark.parametrize("dtype", ["float32", "mixed_float16"])
def test_fully_padded_rows_are_finite(dtype):
    block = TransformerDecoderBlock(HEADS, FF, dtype=dtype)
    output, self_scores, cross_scores = block(
        _target(),
        _source(),
        decoder_padding_mask=np.array([[0, 0, 0, 0], [1, 1, 0, 0]], bool),
        encoder_padding_mask=np.array([[1] * 6, [0] * 6], bool),
        return_attention_scores=True,
    )
    for tensor in (output, self_scores, cross_scores):
        assert np.isfinite(_numpy(tensor).astype("float32")).all()
    np.testing.assert_array_equal(_numpy(cross_scores)[1], 0.0)
    np.testing.assert_array_equal(_numpy(self_scores)[0], 0.0)


@pytest.mark.tf_only
@norm_variants
@with_encoder
def test_cached_decoding_matches_full_sequence(norm_first, use_encoder):
    target = _target()
    source = _source() if use_encoder else None
    block = _block(use_encoder, norm_first=norm_first)
    full = _call(block, target, source, return_attention_scores=True)
    full_output, full_self_scores = _numpy(full[0]), _numpy(full[1])

    @tf.function
    def decode(target, source):
        cache = block.empty_self_attention_cache(BATCH, TGT)
        kwargs = {}
        if use_encoder:
            kwargs["cross_attention_cache"] = (
                block.compute_cross_attention_cache(source)
            )
        outputs = tf.TensorArray(tf.float32, size=TGT)
        scores = tf.TensorArray(tf.float32, size=TGT)
        for t in tf.range(TGT):
            token = keras.ops.slice(target, [0, t, 0], [BATCH, 1, D_MODEL])
            step = _call(
                block,
                token,
                source,
                self_attention_cache=cache,
                self_attention_cache_update_index=t,
                return_attention_scores=True,
                **kwargs,
            )
            if use_encoder:
                output, self_scores, _, cache, _ = step
            else:
                output, self_scores, cache = step
            outputs = outputs.write(t, output[:, 0])
            scores = scores.write(t, self_scores[:, :, 0])
        return (
            tf.transpose(outputs.stack(), [1, 0, 2]),
            tf.transpose(scores.stack(), [1, 2, 0, 3]),
        )

    outputs, scores = decode(target, source)
    np.testing.assert_allclose(outputs, full_output, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, full_self_scores, rtol=1e-5, atol=1e-5)


def test_cached_decoding_with_a_prompt():
    """Seed the cache with two tokens at once, then decode one at a time."""
    target, source = _target(), _source()
    block = _block(norm_first=True)
    full = _numpy(block(target, source))
    cache = block.empty_self_attention_cache(BATCH, TGT)
    cross_cache = block.compute_cross_attention_cache(source)
    prompt_output, cache, returned_cross_cache = block(
        target[:, :2],
        source,
        self_attention_cache=cache,
        self_attention_cache_update_index=0,
        cross_attention_cache=cross_cache,
    )
    np.testing.assert_allclose(prompt_output, full[:, :2], atol=1e-5)
    np.testing.assert_array_equal(returned_cross_cache, cross_cache)
    for t in range(2, TGT):
        output, cache, _ = block(
            target[:, t : t + 1],
            source,
            self_attention_cache=cache,
            self_attention_cache_update_index=t,
            cross_attention_cache=cross_cache,
        )
        np.testing.assert_allclose(output, full[:, t : t + 1], atol=1e-5)


def test_cache_helpers():
    block = _block()
    cache = block.empty_self_attention_cache(3, 7)
    assert tuple(cache.shape) == (3, 2, 7, HEADS, KEY_DIM)
    np.testing.assert_array_equal(cache, 0.0)
    cross_cache = block.compute_cross_attention_cache(_source())
    assert tuple(cross_cache.shape) == (BATCH, 2, SRC, HEADS, KEY_DIM)
    # A precomputed cross cache gives the same output as the encoder output.
    np.testing.assert_allclose(
        block(_target(), _source(), cross_attention_cache=cross_cache),
        block(_target(), _source()),
        atol=1e-6,
    )


# Every pair of (norm_first, use_encoder, scores) values is covered.
@pytest.mark.parametrize(
    "norm_first, use_encoder, scores",
    [
        (False, True, False),
        (True, True, True),
        (False, False, True),
        (True, False, False),
    ],
    ids=[
        "post_ln-encoder_decoder",
        "pre_ln-encoder_decoder-scores",
        "post_ln-decoder_only-scores",
        "pre_ln-decoder_only",
    ],
)
def test_layer(norm_first, use_encoder, scores):
    input_data = {"decoder_sequence": _target()}
    output_shape = (BATCH, TGT, D_MODEL)
    num_weights = 16
    if use_encoder:
        input_data["encoder_sequence"] = _normal((BATCH, SRC, 6), 1)
        num_weights = 26
    if scores:
        output_shape = (output_shape, (BATCH, HEADS, TGT, TGT))
        if use_encoder:
            output_shape += ((BATCH, HEADS, TGT, SRC),)
    run_layer_test(
        TransformerDecoderBlock,
        init_kwargs={
            "num_heads": HEADS,
            "feed_forward_dim": FF,
            "dropout": 0.1,
            "norm_first": norm_first,
        },
        input_data=input_data,
        call_kwargs={"return_attention_scores": scores},
        expected_output_shape=output_shape,
        expected_num_trainable_weights=num_weights,
    )


def test_layer_with_caches():
    input_data = {
        "decoder_sequence": _normal((BATCH, 1, D_MODEL), 0),
        "encoder_sequence": _source(),
        "self_attention_cache": np.zeros((BATCH, 2, TGT, HEADS, 3), "float32"),
        "cross_attention_cache": _normal((BATCH, 2, SRC, HEADS, 3), 3),
    }
    run_layer_test(
        TransformerDecoderBlock,
        init_kwargs={"num_heads": HEADS, "feed_forward_dim": FF, "key_dim": 3},
        input_data=input_data,
        call_kwargs={"self_attention_cache_update_index": 1},
        expected_output_shape=(
            (BATCH, 1, D_MODEL),
            (BATCH, 2, TGT, HEADS, 3),
            (BATCH, 2, SRC, HEADS, 3),
        ),
        expected_num_trainable_weights=26,
        # Writing into the cache (`ops.slice_update`, XlaDynamicUpdateSlice
        # on TensorFlow) has no gradient outside XLA; caches are for
        # inference only, so no fit step here.
        run_training_check=False,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_heads": 0, "feed_forward_dim": FF}, "num_heads"),
        ({"num_heads": HEADS, "feed_forward_dim": 0}, "feed_forward_dim"),
        ({"num_heads": HEADS, "feed_forward_dim": 2.5}, "feed_forward_dim"),
        (
            {"num_heads": HEADS, "feed_forward_dim": FF, "value_dim": -1},
            "value_dim",
        ),
        (
            {"num_heads": HEADS, "feed_forward_dim": FF, "dropout": -0.5},
            "dropout",
        ),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"{match}.*Received"):
        TransformerDecoderBlock(**kwargs)


def test_d_model_not_divisible_by_num_heads():
    block = TransformerDecoderBlock(num_heads=3, feed_forward_dim=FF)
    with pytest.raises(ValueError, match="d_model=8.*num_heads=3.*Received"):
        block(_target(), _source())


def test_wrong_rank():
    block = TransformerDecoderBlock(HEADS, FF)
    with pytest.raises(ValueError, match="rank-3.*decoder_sequence.shape"):
        block(np.zeros((BATCH, D_MODEL), "float32"))
    with pytest.raises(ValueError, match="rank-3.*encoder_sequence.shape"):
        block(_target(), np.zeros((BATCH, D_MODEL), "float32"))


def test_mismatched_batch():
    block = TransformerDecoderBlock(HEADS, FF)
    with pytest.raises(ValueError, match="same batch size.*Received"):
        block(_target(), _normal((BATCH + 1, SRC, D_MODEL), 1))
    block(_target(), _source())
    with pytest.raises(ValueError, match="same batch size.*Received"):
        block(_target(), _normal((BATCH + 1, SRC, D_MODEL), 1))
    with pytest.raises(ValueError, match="encoder_padding_mask.*Received"):
        block(
            _target(),
            _source(),
            encoder_padding_mask=np.ones((BATCH + 1, SRC), bool),
        )


def test_call_arguments_must_not_change():
    decoder_only = _block(use_encoder=False)
    with pytest.raises(ValueError, match="without cross-attention"):
        decoder_only(_target(), _source())
    with pytest.raises(ValueError, match="cross-attention.*Received"):
        decoder_only.compute_cross_attention_cache(_source())
    encoder_decoder = _block()
    with pytest.raises(ValueError, match="with cross-attention"):
        encoder_decoder(_target())


def test_cache_argument_errors():
    block = _block()
    cache = block.empty_self_attention_cache(BATCH, TGT)
    cross_cache = block.compute_cross_attention_cache(_source())
    with pytest.raises(ValueError, match="self_attention_cache_update_index"):
        block(
            _target(),
            _source(),
            self_attention_cache=cache,
            cross_attention_cache=cross_cache,
        )
    with pytest.raises(ValueError, match="cross_attention_cache=None"):
        block(
            _target(),
            _source(),
            self_attention_cache=cache,
            self_attention_cache_update_index=0,
        )
    with pytest.raises(ValueError, match="built"):
        TransformerDecoderBlock(HEADS, FF).empty_self_attention_cache(1, 2)
