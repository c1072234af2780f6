import itertools
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_attention.decoding import beam_search
from keras_attention.decoding import greedy_search
from keras_attention.decoding import length_penalty_factor
from keras_attention.models.transformer import build_transformer
from keras_attention.models.transformer_decoding import TransformerDecoder

# The uncached reference path grows the prefix at every step, a dynamic
# shape that `lax.while_loop` cannot carry (documented as eager/graph only).
needs_dynamic_shapes = pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="the uncached path needs dynamic shapes in the loop",
)

PAD, START, END = 0, 1, 2

# The uncached path's first step attends over a single key (Keras warns).
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using a softmax"),
    # The module-scoped toy translator is trained once, on one worker.
    pytest.mark.xdist_group("test_decoding"),
]

# ---------------------------------------------------------------------------
# The generic searches, on a Markov chain whose next-token logits depend on
# the previous token and the step: `logits = TABLE[previous] + STEP[index]`.
# ---------------------------------------------------------------------------


def _markov_chain(vocabulary_size, max_length, seed):
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocabulary_size, vocabulary_size)) * 2.0
    steps = rng.normal(size=(max_length, vocabulary_size))
    return table.astype("float32"), steps.astype("float32")


def _markov_step_fn(table, steps, counter=False):
    """A step function; the state counts the steps run when `counter`."""

    def step_fn(sequences, index, state):
        previous = ops.take(sequences, index, axis=1)  # (rows,)
        logits = ops.take(table, previous, axis=0) + ops.take(
            steps, index, axis=0
        )
        return logits, (state + 1 if counter else state)

    return step_fn


def _log_softmax(logits):
    logits = np.where(np.arange(logits.shape[-1]) == PAD, -1e9, logits)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _numpy_greedy(table, steps, start_ids, max_length):
    ids = np.full((len(start_ids), max_length), PAD)
    for row, previous in enumerate(start_ids):
        for t in range(max_length):
            previous = int(np.argmax(_log_softmax(table[previous] + steps[t])))
            ids[row, t] = previous
            if previous == END:
                break
    return ids


def _exhaustive_search(table, steps, max_length, alpha):
    """Every hypothesis and its GNMT score, best first."""
    vocabulary = [i for i in range(table.shape[0]) if i != PAD]
    scored = []
    for length in range(1, max_length + 1):
        for ids in itertools.product(vocabulary, repeat=length):
            if END in ids[:-1] or (length < max_length and ids[-1] != END):
                continue
            previous, log_prob = START, 0.0
            for t, token in enumerate(ids):
                log_prob += _log_softmax(table[previous] + steps[t])[token]
                previous = token
            penalty = ((5.0 + length) / 6.0) ** alpha
            padded = list(ids) + [PAD] * (max_length - length)
            scored.append((log_prob / penalty, padded))
    scored.sort(key=lambda item: -item[0])
    return scored


def test_greedy_search_matches_numpy_and_stops_at_the_end_id():
    table, steps = _markov_chain(6, 8, seed=3)
    table[:, PAD] += 10.0  # padding is the likeliest, yet never emitted
    # One row per start id, so rows end at different steps.
    start_ids = np.arange(1, 6)
    step_fn = _markov_step_fn(table, steps)

    def start_dependent_step(sequences, index, state):
        # Column 0 holds the start id; give each row its own via the state.
        sequences = ops.where(
            ops.arange(9)[None, :] == 0, state[:, None], sequences
        )
        logits, _ = step_fn(sequences, index, ())
        return logits, state

    ids, log_probs, _ = greedy_search(
        start_dependent_step,
        ops.convert_to_tensor(start_ids, "int32"),
        5,
        8,
        start_id=START,
        end_id=END,
    )
    expected = _numpy_greedy(table, steps, start_ids, 8)
    np.testing.assert_array_equal(ids, expected)
    assert (expected == END).any(axis=1).all()
    assert not (np.asarray(ids)[:, :1] == PAD).any()
    # Only padding after the end id, and exactly one end id per row.
    for row in np.asarray(ids):
        end = list(row).index(END)
        assert (row[end + 1 :] == PAD).all() and PAD not in row[:end]
    assert np.isfinite(log_probs).all() and (np.asarray(log_probs) < 0).all()


def test_searches_stop_early_once_every_sequence_is_finished():
    table = np.full((4, 4), -5.0, "float32")
    table[START, 3] = table[3, END] = 5.0  # START -> 3 -> END
    steps = np.zeros((10, 4), "float32")
    step_fn = _markov_step_fn(table, steps, counter=True)
    ids, _, calls = greedy_search(
        step_fn, ops.zeros((2,), "int32"), 2, 10, START, END
    )
    np.testing.assert_array_equal(ids, [[3, END] + [PAD] * 8] * 2)
    np.testing.assert_array_equal(calls, [2, 2])  # not 10
    # Without an end id every step runs.
    _, _, calls = greedy_search(
        step_fn, ops.zeros((2,), "int32"), 2, 10, START, end_id=None
    )
    np.testing.assert_array_equal(calls, [10, 10])


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_search_matches_exhaustive_search(alpha):
    # 4 non-padding ids and 4 steps: 40 candidates at most before the last
    # step, so 64 beams prune nothing and the search is exact.
    table, steps = _markov_chain(5, 4, seed=7)
    ids, scores = beam_search(
        _markov_step_fn(table, steps),
        (),
        1,
        4,
        START,
        END,
        beam_width=64,
        length_penalty=alpha,
        return_all_beams=True,
    )
    expected = _exhaustive_search(table, steps, 4, alpha)
    np.testing.assert_allclose(
        scores[0, :10], [s for s, _ in expected[:10]], rtol=1e-5
    )
    np.testing.assert_array_equal(ids[0, 0], expected[0][1])
    # The best-only result is the first beam.
    best_ids, best_score = beam_search(
        _markov_step_fn(table, steps),
        (),
        1,
        4,
        START,
        END,
        beam_width=64,
        length_penalty=alpha,
    )
    np.testing.assert_array_equal(best_ids[0], expected[0][1])
    np.testing.assert_allclose(best_score[0], expected[0][0], rtol=1e-5)


def test_length_penalty_favours_longer_hypotheses():
    np.testing.assert_allclose(
        length_penalty_factor(np.array([1, 7]), 0.6), [1.0, 2.0**0.6]
    )
    table, steps = _markov_chain(5, 6, seed=11)
    lengths = []
    for alpha in (0.0, 3.0):
        ids, _ = beam_search(
            _markov_step_fn(table, steps),
            (),
            1,
            6,
            START,
            END,
            beam_width=8,
            length_penalty=alpha,
        )
        lengths.append(int((np.asarray(ids) != PAD).sum()))
    assert lengths[1] >= lengths[0]


def test_beam_width_one_is_greedy_search():
    table, steps = _markov_chain(9, 12, seed=5)
    step_fn = _markov_step_fn(table, steps)
    greedy_ids, greedy_log_probs, _ = greedy_search(
        step_fn, (), 3, 12, START, END
    )
    beam_ids, beam_scores = beam_search(
        step_fn, (), 3, 12, START, END, beam_width=1, length_penalty=0.0
    )
    np.testing.assert_array_equal(beam_ids, greedy_ids)
    np.testing.assert_allclose(beam_scores, greedy_log_probs, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(beam_width=0), "beam_width"),
        (dict(length_penalty=-1.0), "length_penalty"),
        (dict(max_length=0), "max_length"),
        (dict(start_id=-1), "start_id"),
        (dict(end_id=4, padding_id=4), "end_id.*padding id"),
    ],
)
def test_search_argument_errors(kwargs, match):
    table, steps = _markov_chain(5, 4, seed=0)
    config = dict(max_length=4, start_id=START, end_id=END)
    config.update(kwargs)
    with pytest.raises(ValueError, match=f"{match}.*Received"):
        beam_search(_markov_step_fn(table, steps), (), 1, **config)


# ---------------------------------------------------------------------------
# The Transformer decoder.
# ---------------------------------------------------------------------------

TINY = dict(num_layers=2, d_model=16, num_heads=2, feed_forward_dim=32)
SOURCE = np.array(
    [[5, 6, 7, 8, 0, 0], [9, 3, 4, 5, 6, 7], [4, 4, 0, 0, 0, 0]], "int32"
)
MODEL_VARIANTS = {
    "post_ln_sinusoidal": dict(),
    "pre_ln_learned": dict(
        norm_first=True, positional_encoding="learned", max_length=10
    ),
    "shared_tied": dict(share_embeddings=True, tie_output_embedding=True),
}


def _random_model(**kwargs):
    config = dict(TINY, dropout=0.0)
    config.update(kwargs)
    return build_transformer(12, 12, **config)


@needs_dynamic_shapes
@pytest.mark.parametrize("variant", list(MODEL_VARIANTS))
def test_cached_and_uncached_greedy_decoding_agree(variant):
    model = _random_model(**MODEL_VARIANTS[variant])
    decoder = TransformerDecoder(model, START, END, max_length=6)
    ids, attention = decoder.greedy(SOURCE, return_attention_scores=True)
    reference_ids, reference_attention = decoder.greedy(
        SOURCE, return_attention_scores=True, use_cache=False
    )
    np.testing.assert_array_equal(ids, reference_ids)
    np.testing.assert_allclose(
        attention, reference_attention, rtol=1e-4, atol=1e-5
    )
    assert tuple(ids.shape) == (3, 6)


@needs_dynamic_shapes
def test_cached_and_uncached_beam_search_agree():
    model = _random_model(norm_first=True)
    decoder = TransformerDecoder(model, START, END, max_length=6)
    beam_ids, beam_scores = decoder.beam(
        SOURCE, beam_width=3, return_all_beams=True
    )
    reference_beam_ids, reference_scores = decoder.beam(
        SOURCE, beam_width=3, return_all_beams=True, use_cache=False
    )
    np.testing.assert_array_equal(beam_ids, reference_beam_ids)
    np.testing.assert_allclose(beam_scores, reference_scores, rtol=1e-4)
    assert tuple(beam_ids.shape) == (3, 3, 6)
    # Beams are sorted best first, and beam width 1 is greedy search.
    assert (np.diff(np.asarray(beam_scores), axis=1) <= 1e-6).all()
    narrow_ids, _ = decoder.beam(SOURCE, beam_width=1)
    np.testing.assert_array_equal(narrow_ids, decoder.greedy(SOURCE))


def test_attention_weights_are_distributions_over_the_real_source():
    model = _random_model()
    decoder = TransformerDecoder(model, START, END, max_length=6)
    ids, attention = decoder.greedy(SOURCE, return_attention_scores=True)
    ids, attention = np.asarray(ids), np.asarray(attention)
    assert attention.shape == (3, 6, 2, 2, 6)  # (batch, step, layer, head, src)
    generated = ids != PAD
    totals = attention.sum(-1)  # (batch, step, layer, head)
    np.testing.assert_allclose(totals[generated], 1.0, rtol=1e-5)
    assert (totals[~generated] == 0).all()
    source_padding = SOURCE == PAD  # (batch, src)
    assert (attention.transpose(0, 4, 1, 2, 3)[source_padding] == 0).all()


def _toy_task(rng, count, max_source_length=5, symbols=6):
    """Map every token through a fixed permutation and reverse the order."""
    first = END + 1
    permutation = np.random.default_rng(0).permutation(symbols) + first
    source = np.zeros((count, max_source_length), "int32")
    target_in = np.zeros((count, max_source_length + 1), "int32")
    target_out = np.zeros_like(target_in)
    for row in range(count):
        length = rng.integers(2, max_source_length + 1)
        tokens = rng.integers(first, first + symbols, length)
        translated = permutation[tokens[::-1] - first]
        source[row, :length] = tokens
        target_in[row, 0] = START
        target_in[row, 1 : length + 1] = translated
        target_out[row, :length] = translated
        target_out[row, length] = END
    return source, target_in, target_out


@pytest.fixture(scope="module")
def toy_translator():
    """A tiny Transformer trained on the toy task (a few seconds)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    source, target_in, target_out = _toy_task(rng, 2400)
    model = build_transformer(
        9,
        9,
        num_layers=1,
        d_model=32,
        num_heads=2,
        feed_forward_dim=64,
        dropout=0.0,
        max_length=8,
        positional_encoding="learned",
    )
    epochs, batch_size = 6, 64
    total_steps = epochs * len(source) // batch_size
    learning_rate = keras.optimizers.schedules.CosineDecay(
        0.0, total_steps - 30, warmup_target=1e-2, warmup_steps=30
    )

    def masked_loss(labels, logits):
        losses = keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True
        )
        weights = ops.cast(ops.not_equal(labels, PAD), losses.dtype)
        return ops.sum(losses * weights) / ops.sum(weights)

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=masked_loss,
        jit_compile=False,
    )
    model.fit(
        {"source_ids": source, "target_ids": target_in},
        target_out,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
    )
    held_out = _toy_task(np.random.default_rng(2), 64)
    return model, held_out


def test_a_tiny_transformer_learns_a_toy_translation(toy_translator):
    model, (source, _, target_out) = toy_translator
    decoder = TransformerDecoder(model, START, END, max_length=6)
    greedy_ids = np.asarray(decoder.greedy(source))
    beam_ids, _ = decoder.beam(source, beam_width=3)
    greedy_accuracy = (greedy_ids == target_out).all(axis=1).mean()
    beam_accuracy = (np.asarray(beam_ids) == target_out).all(axis=1).mean()
    assert greedy_accuracy >= 0.95, greedy_accuracy
    assert beam_accuracy >= 0.95, beam_accuracy
    # The trained model's outputs end with the end id, then padding.
    for row in greedy_ids:
        assert END in row
        end = list(row).index(END)
        assert (row[end + 1 :] == PAD).all()


@pytest.mark.tf_only
def test_decoding_in_tf_function_and_xla(toy_translator):
    model, (source, _, _) = toy_translator
    decoder = TransformerDecoder(model, START, END, max_length=6)
    eager_ids = np.asarray(decoder.greedy(source[:5]))
    eager_beam, _ = decoder.beam(source[:5], beam_width=2)
    # Dynamic batch size and source length without retracing.
    graph_greedy = tf.function(
        decoder.greedy,
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )
    np.testing.assert_array_equal(graph_greedy(source[:5]), eager_ids)
    np.testing.assert_array_equal(
        graph_greedy(source[:3, :4]), decoder.greedy(source[:3, :4])
    )
    xla_greedy = tf.function(decoder.greedy, jit_compile=True)
    xla_beam = tf.function(decoder.beam, jit_compile=True)
    np.testing.assert_array_equal(xla_greedy(source[:5]), eager_ids)
    np.testing.assert_array_equal(
        xla_beam(source[:5], beam_width=2)[0], eager_beam
    )


def test_decoding_a_reloaded_model(toy_translator):
    model, (source, _, _) = toy_translator
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "toy.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path, compile=False)
    expected = TransformerDecoder(model, START, END, 6).greedy(source[:8])
    ids = TransformerDecoder(reloaded, START, END, 6).greedy(source[:8])
    np.testing.assert_array_equal(ids, expected)


def test_decoding_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    model = _random_model(norm_first=True)
    decoder = TransformerDecoder(model, START, END, max_length=5)
    ids, attention = decoder.greedy(SOURCE, return_attention_scores=True)
    assert tuple(ids.shape) == (3, 5)
    assert np.isfinite(attention).all()
    _, scores = decoder.beam(SOURCE, beam_width=2)
    assert np.isfinite(scores).all()


def test_decoder_errors():
    model = _random_model(positional_encoding="learned", max_length=6)
    with pytest.raises(ValueError, match="max_length.*Received"):
        TransformerDecoder(model, START, END, max_length=7)
    with pytest.raises(ValueError, match="start_id.*Received"):
        TransformerDecoder(model, 12, END, max_length=6)
    with pytest.raises(ValueError, match="end_id.*Received"):
        TransformerDecoder(model, START, -1, max_length=6)
    # The padding id (0) can neither start nor end an output.
    with pytest.raises(ValueError, match="start_id.*padding id.*Received"):
        TransformerDecoder(model, 0, END, max_length=6)
    with pytest.raises(ValueError, match="end_id.*padding id.*Received"):
        TransformerDecoder(model, START, 0, max_length=6)
    decoder = TransformerDecoder(model, START, END, max_length=6)
    with pytest.raises(ValueError, match="beam_width.*Received"):
        decoder.beam(SOURCE, beam_width=0)
    with pytest.raises(ValueError, match="source_ids.*Received"):
        decoder.greedy(SOURCE[0])
    # A source longer than the learned position table.
    with pytest.raises(ValueError, match="position table.*Received"):
        decoder.greedy(np.ones((1, 7), "int32"))
    inputs = keras.Input((3,))
    with pytest.raises(ValueError, match="build_transformer.*Received"):
        TransformerDecoder(
            keras.Model(inputs, keras.layers.Dense(2)(inputs)), START, END
        )
