"""`build_causal_lm` and `CausalLMGenerator` on the backend under test."""

import os

import keras
import numpy as np
import pytest

from keras_attention import samplers
from keras_attention.models import CausalLMGenerator
from keras_attention.models import build_causal_lm

VOCAB = 24
SMALL = dict(num_layers=2, d_model=16, num_heads=4, feed_forward_dim=32)
PROMPTS = np.array([[5, 6, 7, 0], [9, 0, 0, 0], [3, 4, 5, 6]], "int32")


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _model(**kwargs):
    options = dict(SMALL, num_key_value_heads=2)
    options.update(kwargs)
    return build_causal_lm(VOCAB, **options)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(
            position_encoding="learned",
            normalization="layer",
            activation="gelu",
            tie_embeddings=False,
            max_length=16,
        ),
        dict(position_encoding="sinusoidal", sliding_window=2),
    ],
)
def test_logits_are_causal_and_ignore_right_padding(kwargs):
    model = _model(**kwargs)
    ids = np.array([[5, 6, 7, 8, 9, 0, 0]], "int32")
    logits = _numpy(model(ids))
    assert logits.shape == (1, 7, VOCAB) and logits.dtype == np.float32
    changed = ids.copy()
    changed[0, 3:5] = [1, 2]  # later tokens
    np.testing.assert_allclose(
        _numpy(model(changed))[:, :3], logits[:, :3], atol=1e-5
    )
    np.testing.assert_allclose(
        _numpy(model(ids[:, :5]))[0], logits[0, :5], atol=1e-5
    )


def test_saves_and_reloads_with_the_same_logits_and_generations(tmp_path):
    model = _model()
    path = os.path.join(tmp_path, "lm.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    ids = PROMPTS
    np.testing.assert_allclose(
        _numpy(reloaded(ids)), _numpy(model(ids)), atol=1e-6
    )
    np.testing.assert_array_equal(
        CausalLMGenerator(reloaded, 8).generate(ids),
        CausalLMGenerator(model, 8).generate(ids),
    )


def test_mixed_precision_logits_are_float32():
    keras.config.set_dtype_policy("mixed_float16")
    model = _model()
    logits = model(PROMPTS)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.isfinite(_numpy(logits)).all()


@pytest.mark.parametrize(
    "sampler",
    [
        "greedy",
        samplers.RandomSampler(temperature=0.8),
        samplers.TopKSampler(k=4),
        samplers.TopPSampler(p=0.7),
    ],
)
def test_cached_generation_equals_recomputation(sampler):
    generator = CausalLMGenerator(_model(sliding_window=3), 10, end_id=2)
    cached = generator.generate(PROMPTS, sampler=sampler, seed=7)
    uncached = generator.generate(
        PROMPTS, sampler=sampler, seed=7, use_cache=False
    )
    np.testing.assert_array_equal(cached, uncached)
    # Each prompt is kept, and the padding id never generated before the
    # end (only after it).
    for row, prompt in zip(cached, PROMPTS):
        length = int((prompt != 0).sum())
        np.testing.assert_array_equal(row[:length], prompt[:length])
        tail = list(row[length:])
        if 0 in tail:
            assert 2 in tail[: tail.index(0)]
            assert set(tail[tail.index(0) :]) == {0}


def test_beam_search_cached_equals_recomputation_and_scores_log_probs():
    model = _model()
    generator = CausalLMGenerator(model, 9)
    ids, scores = generator.beam(PROMPTS, beam_width=3, length_penalty=0.0)
    again, again_scores = generator.beam(
        PROMPTS, beam_width=3, length_penalty=0.0, use_cache=False
    )
    np.testing.assert_array_equal(ids, again)
    np.testing.assert_allclose(scores, again_scores, atol=1e-5)
    greedy = generator.generate(PROMPTS)

    def log_prob(rows):
        logits = _numpy(model(rows)).astype("float64")
        logits[..., 0] = -np.inf  # the padding id is never generated
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        total = []
        for row, prompt, lp in zip(rows, PROMPTS, log_probs):
            start = int((prompt != 0).sum())
            total.append(sum(lp[t - 1, row[t]] for t in range(start, len(row))))
        return np.array(total)

    # Beam's score is its log probability; one beam is greedy decoding.
    np.testing.assert_allclose(scores, log_prob(ids), atol=1e-4)
    single, _ = generator.beam(PROMPTS, beam_width=1, length_penalty=0.0)
    np.testing.assert_array_equal(single, greedy)


def test_seeds_reproduce_and_differ():
    generator = CausalLMGenerator(_model(), 12)
    first = generator.generate(PROMPTS, sampler="random", seed=1)
    np.testing.assert_array_equal(
        first, generator.generate(PROMPTS, sampler="random", seed=1)
    )
    assert not np.array_equal(
        first, generator.generate(PROMPTS, sampler="random", seed=2)
    )
    # Top-1 sampling is greedy decoding.
    np.testing.assert_array_equal(
        generator.generate(PROMPTS, sampler=samplers.TopKSampler(k=1), seed=5),
        generator.generate(PROMPTS),
    )


def test_left_and_right_padded_prompts_generate_the_same():
    generator = CausalLMGenerator(_model(), 8)
    right = np.array([[5, 6, 0], [9, 0, 0]], "int32")
    left = np.array([[0, 5, 6], [0, 0, 9]], "int32")
    np.testing.assert_array_equal(
        generator.generate(left, sampler="top_p", seed=3),
        generator.generate(right, sampler="top_p", seed=3),
    )
    # Alone or in a batch, a prompt gets the same continuation.
    np.testing.assert_array_equal(
        generator.generate(right[1:, :1])[0], generator.generate(right)[1]
    )


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="PyTorch runs eagerly"
)
def test_new_prompt_lengths_and_seeds_reuse_one_compiled_program():
    generator = CausalLMGenerator(_model(), 10, end_id=2)
    for length in range(1, 6):
        prompts = np.arange(1, length + 1, dtype="int32")[None] + 2
        generator.generate(np.repeat(prompts, 2, 0), "top_k", seed=length)
    assert generator.traces == 1
    for length in (2, 4):
        generator.beam(np.full((2, length), 5, "int32"), beam_width=2)
    assert generator.traces == 2


def test_training_learns_a_pattern_that_generation_continues():
    keras.utils.set_random_seed(0)
    model = _model(num_layers=1)
    pattern = np.tile(np.array([3, 4, 5, 6, 7], "int32"), 8)
    windows = np.stack([pattern[i : i + 12] for i in range(20)])
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        windows[:, :-1], windows[:, 1:], epochs=30, batch_size=10, verbose=0
    )
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    ids = CausalLMGenerator(model, 10).generate(np.array([[5, 6]], "int32"))
    np.testing.assert_array_equal(ids[0], [5, 6, 7, 3, 4, 5, 6, 7, 3, 4])


# Rows of different lengths, padded on the right then on the left, two of
# them longer than the window of 3.
LONG_PROMPTS = np.array(
    [[5, 6, 7, 8, 9, 10, 0], [9, 0, 0, 0, 0, 0, 0], [3, 4, 5, 6, 0, 0, 0]],
    "int32",
)


def _left_padded(prompts):
    return np.stack([np.roll(row, int((row == 0).sum())) for row in prompts])


@pytest.mark.parametrize(
    "kwargs, beam",
    [
        (dict(num_key_value_heads=2), True),  # GQA, rotary
        (dict(num_key_value_heads=1, position_encoding="learned"), False),
    ],
)
def test_rolling_cache_generates_the_ids_of_the_full_cache(kwargs, beam):
    # (Rolling == uncached for every sampler: the windowed model of
    # test_cached_generation_equals_recomputation rolls by default; the
    # sampler does not touch the caches.)
    model = _model(num_layers=1, sliding_window=3, max_length=16, **kwargs)
    rolling = CausalLMGenerator(model, 14)
    full = CausalLMGenerator(model, 14, rolling_cache=False)
    assert rolling.cache_lengths == (3,) and full.cache_lengths == (14,)
    for prompts in (LONG_PROMPTS, _left_padded(LONG_PROMPTS)):
        np.testing.assert_array_equal(
            rolling.generate(prompts), full.generate(prompts)
        )
    if beam:
        ids, scores = rolling.beam(LONG_PROMPTS, beam_width=2)
        full_ids, full_scores = full.beam(LONG_PROMPTS, beam_width=2)
        np.testing.assert_array_equal(ids, full_ids)
        np.testing.assert_allclose(scores, full_scores, atol=1e-5)


def test_blocks_of_different_windows_roll_each_their_own_cache(tmp_path):
    # Local and global blocks interleaved (Gemma 2 style) with windows of
    # different lengths: each block's cache is its window or the buffer,
    # and rolling caches == recomputation, padded either side.
    model = _model(num_layers=3, sliding_window=[3, None, 2], max_length=16)
    windows = [
        model.get_layer(f"decoder_block_{i}").sliding_window for i in range(3)
    ]
    assert windows == [3, None, 2]
    rolling = CausalLMGenerator(model, 14)
    full = CausalLMGenerator(model, 14, rolling_cache=False)
    assert rolling.cache_lengths == (3, 14, 2)
    assert full.cache_lengths == (14, 14, 14)
    assert [tuple(c.shape)[2] for c in rolling.empty_caches(1)] == [3, 14, 2]
    # (Full caches == recomputation: the tests above, for any window.)
    for prompts in (LONG_PROMPTS, _left_padded(LONG_PROMPTS)):
        np.testing.assert_array_equal(
            rolling.generate(prompts, "top_k", seed=3),
            rolling.generate(prompts, "top_k", seed=3, use_cache=False),
        )
    # The windows are what the logits see: a block's window changes them.
    uniform = _model(num_layers=3, sliding_window=3, max_length=16)
    uniform.set_weights(model.get_weights())
    assert not np.allclose(
        _numpy(model(LONG_PROMPTS)), _numpy(uniform(LONG_PROMPTS))
    )
    path = os.path.join(tmp_path, "windows.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        _numpy(reloaded(LONG_PROMPTS)), _numpy(model(LONG_PROMPTS)), atol=1e-5
    )


@pytest.mark.parametrize(
    "sliding_window, match",
    [
        ([3], "one entry per block"),
        ([3, None, 4], "one entry per block"),
        ([3, 0], "window"),
    ],
)
def test_bad_per_block_windows_raise(sliding_window, match):
    with pytest.raises(ValueError, match=match):
        _model(sliding_window=sliding_window)


def test_rolling_caches_hold_the_window_while_decoding(monkeypatch):
    model = _model(sliding_window=3)
    generator = CausalLMGenerator(model, 12)
    assert [tuple(c.shape) for c in generator.empty_caches(3)] == [
        (3, 2, 3, 2, 4)
    ] * 2
    seen = []
    next_logits = CausalLMGenerator._next_logits

    def recording(self, buffer, index, caches, table):
        # Traced, the batch axis may be unknown.
        seen.append([tuple(c.shape)[1:] for c in caches])
        return next_logits(self, buffer, index, caches, table)

    monkeypatch.setattr(CausalLMGenerator, "_next_logits", recording)
    generator.generate(LONG_PROMPTS)
    assert seen and all(s == [(2, 3, 2, 4)] * 2 for s in seen)
    # A window as long as the buffer gains nothing: a full cache.
    assert CausalLMGenerator(model, 3).cache_lengths == (3, 3)
    assert CausalLMGenerator(_model(), 12).cache_lengths == (12, 12)


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="PyTorch runs eagerly"
)
def test_rolling_cache_generator_compiles_once_for_every_prompt_length():
    generator = CausalLMGenerator(_model(sliding_window=2), 10)
    for length in range(1, 8):
        prompts = np.arange(1, length + 1, dtype="int32")[None] + 2
        generator.generate(np.repeat(prompts, 2, 0), "top_k", seed=length)
    assert generator.traces == 1


def test_bad_rolling_cache_setting_raises():
    with pytest.raises(ValueError, match="rolling_cache"):
        CausalLMGenerator(_model(sliding_window=2), 8, rolling_cache="yes")


@pytest.mark.parametrize(
    "prompts, message",
    [
        (np.array([[0, 0]], "int32"), "at least one token"),
        (np.array([[5, 0, 6]], "int32"), "not in between"),
        (np.ones((1, 8), "int32"), "shorter than `max_length`"),
        (np.array([[5, VOCAB]], "int32"), r"\[0, 24\)"),
        (np.array([5, 6], "int32"), "batch, prompt_length"),
        (np.array([[0.5]], "float32"), "integer"),
    ],
)
def test_bad_prompts_raise_clear_errors(prompts, message):
    generator = CausalLMGenerator(_model(), 8)
    with pytest.raises(ValueError, match=message):
        generator.generate(prompts)


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="position table"):
        CausalLMGenerator(_model(position_encoding="learned", max_length=6), 8)
    with pytest.raises(ValueError, match="end_id"):
        CausalLMGenerator(_model(), 8, end_id=0)
    with pytest.raises(ValueError, match="position_encoding"):
        _model(position_encoding="alibi")
    with pytest.raises(ValueError, match="divide"):
        _model(num_key_value_heads=3)
    with pytest.raises(ValueError, match="beam_width"):
        CausalLMGenerator(_model(), 8).beam(PROMPTS, beam_width=0)
