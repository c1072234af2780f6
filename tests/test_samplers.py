"""Token samplers, one body on every backend, checked against NumPy.

The statistical tests draw once for a batch of many copies of two logit
rows (fixed seeds, so they are deterministic) and compare the frequencies
with the renormalized distribution the sampler should draw from.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_attention import samplers

BACKEND = keras.backend.backend()
# Two rows over a vocabulary of 8, the likeliest tokens not contiguous.
LOGITS = np.array(
    [
        [0.5, 2.0, -1.0, 1.5, 0.0, 1.0, -3.0, -0.5],
        [1.0, -2.0, 0.2, 0.1, 2.5, -1.0, 2.4, 0.0],
    ],
    "float32",
)
DRAWS = 2000  # per row
# The standard normal quantile of a one-sided 1e-4 chi-square test.
Z_CRITICAL = 3.72


def _softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def _top_k_distribution(logits, k):
    kept = np.argsort(-logits, axis=-1)[:, :k]
    masked = np.full_like(logits, -np.inf)
    np.put_along_axis(masked, kept, np.take_along_axis(logits, kept, -1), -1)
    return _softmax(masked)


def _nucleus_distribution(logits, p):
    probs = _softmax(logits)
    order = np.argsort(-probs, axis=-1)
    sorted_probs = np.take_along_axis(probs, order, -1)
    mass_before = np.cumsum(sorted_probs, -1) - sorted_probs
    keep = np.zeros_like(probs, bool)
    np.put_along_axis(keep, order, mass_before < p, -1)
    kept = np.where(keep, probs, 0.0)
    return kept / kept.sum(-1, keepdims=True)


def _draw(sampler, seed=(3, 7), logits=LOGITS):
    """`(rows, DRAWS)` ids: one call over `DRAWS` copies of each row."""
    batch = np.repeat(logits, DRAWS, axis=0)
    ids = sampler(batch, seed=np.array(seed, "int32"))
    return np.asarray(ids).reshape(len(logits), DRAWS)


def _check_frequencies(ids, expected):
    """No id outside the support and a chi-square fit, row by row."""
    for row, probs in zip(ids, expected):
        support = probs > 0
        assert support[row].all(), f"drew outside the support: {row}"
        counts = np.bincount(row, minlength=len(probs))[support]
        expected_counts = DRAWS * probs[support]
        chi2 = ((counts - expected_counts) ** 2 / expected_counts).sum()
        df = support.sum() - 1
        if df == 0:
            continue
        # Wilson-Hilferty's approximation of the chi-square quantile.
        h = 2.0 / (9.0 * df)
        critical = df * (1.0 - h + Z_CRITICAL * np.sqrt(h)) ** 3
        assert chi2 < critical, (chi2, critical, counts, expected_counts)


def _assert_greedy(ids):
    """Every id in row `i` of `(rows, n)` ids is the argmax of row `i`."""
    expected = np.broadcast_to(LOGITS.argmax(-1)[:, None], ids.shape)
    np.testing.assert_array_equal(ids, expected)


def _compile(fn):
    """`fn` compiled by XLA on TensorFlow and JAX, eager on PyTorch."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


def test_greedy_is_argmax():
    logits = np.random.default_rng(0).normal(size=(16, 50)).astype("float32")
    ids = samplers.GreedySampler()(logits)
    assert keras.backend.standardize_dtype(ids.dtype) == "int32"
    assert tuple(ids.shape) == (16,)
    np.testing.assert_array_equal(ids, logits.argmax(-1))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_top_k_draws_from_renormalized_top_k(k):
    ids = _draw(samplers.TopKSampler(k=k))
    _check_frequencies(ids, _top_k_distribution(LOGITS, k))


def test_top_k_larger_than_vocabulary_draws_from_everything():
    ids = _draw(samplers.TopKSampler(k=100))
    _check_frequencies(ids, _softmax(LOGITS))


@pytest.mark.parametrize("p", [0.3, 0.75, 0.95, 1.0])
def test_top_p_draws_from_renormalized_nucleus(p):
    ids = _draw(samplers.TopPSampler(p=p))
    _check_frequencies(ids, _nucleus_distribution(LOGITS, p))


def test_top_p_with_k_draws_from_nucleus_within_top_k():
    ids = _draw(samplers.TopPSampler(p=0.95, k=2))
    support = (_nucleus_distribution(LOGITS, 0.95) > 0) & (
        _top_k_distribution(LOGITS, 2) > 0
    )
    expected = np.where(support, _softmax(LOGITS), 0.0)
    _check_frequencies(ids, expected / expected.sum(-1, keepdims=True))


def test_top_p_always_keeps_the_top_token():
    ids = _draw(samplers.TopPSampler(p=1e-6))
    _assert_greedy(ids)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_scales_logits(temperature):
    ids = _draw(samplers.RandomSampler(temperature=temperature))
    _check_frequencies(ids, _softmax(LOGITS / temperature))


@pytest.mark.parametrize(
    "sampler",
    [
        samplers.RandomSampler(temperature=1e-6),
        samplers.TopKSampler(k=4, temperature=1e-6),
        samplers.TopPSampler(p=0.99, temperature=1e-6),
    ],
    ids=["random", "top_k", "top_p"],
)
def test_near_zero_temperature_is_greedy(sampler):
    ids = _draw(sampler)
    _assert_greedy(ids)


def test_masked_tokens_are_never_drawn():
    # Ruled-out logits (`-1e9`, `-inf`) and tiny ones get no probability.
    logits = np.array([[0.0, -1e9, 0.0, -np.inf, -30.0]], "float32")
    ids = _draw(samplers.RandomSampler(), logits=logits)
    assert set(np.unique(ids)) <= {0, 2, 4}
    assert set(np.unique(ids)) >= {0, 2}


@pytest.mark.parametrize("name", ["random", "top_k", "top_p"])
def test_seeds_are_reproducible(name):
    sampler = samplers.get(name)
    first = _draw(sampler, seed=(1, 2))
    np.testing.assert_array_equal(first, _draw(sampler, seed=(1, 2)))
    assert (first != _draw(sampler, seed=(5, 9))).any()
    batch = np.repeat(LOGITS, DRAWS, axis=0)
    generated = sampler(batch, seed=keras.random.SeedGenerator(42))
    again = sampler(batch, seed=keras.random.SeedGenerator(42))
    np.testing.assert_array_equal(generated, again)


def test_seed_generator_advances():
    sampler = samplers.TopKSampler(k=5)
    batch = np.repeat(LOGITS, DRAWS, axis=0)
    seed = keras.random.SeedGenerator(42)
    first = np.asarray(sampler(batch, seed=seed))
    assert (first != np.asarray(sampler(batch, seed=seed))).any()


@pytest.mark.parametrize("name", ["greedy", "random", "top_k", "top_p"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_low_precision_logits(name, dtype):
    sampler = samplers.get(name)
    logits = ops.cast(np.repeat(LOGITS, 50, axis=0), dtype)
    ids = sampler(logits, seed=np.array([4, 2]))
    assert keras.backend.standardize_dtype(ids.dtype) == "int32"
    ids = np.asarray(ids).reshape(len(LOGITS), 50)
    if name == "greedy":
        _assert_greedy(ids)
    if name == "top_k":
        support = _top_k_distribution(LOGITS, 5) > 0
        assert np.take_along_axis(support, ids, -1).all()


@pytest.mark.parametrize("name", ["greedy", "random", "top_k", "top_p"])
def test_decode_loop_compiled_with_stateless_seeds(name):
    # A new seed each step from the loop index. Compiled draws are
    # reproducible but need not equal eager ones (TensorFlow's XLA kernels
    # draw other numbers than its eager kernels).
    sampler = samplers.get(name)
    steps, copies = 4, 50
    logits = ops.convert_to_tensor(np.repeat(LOGITS, copies, axis=0))

    def decode(logits, seed):
        def body(index, ids):
            step_seed = ops.add(seed, ops.stack([0, index]))
            token = sampler(logits, seed=step_seed)  # (rows,)
            ids = ops.slice_update(ids, [0, index], token[:, None])
            return index + 1, ids

        ids = ops.zeros((ops.shape(logits)[0], steps), "int32")
        _, ids = ops.while_loop(
            lambda index, ids: index < steps,
            body,
            (ops.convert_to_tensor(0, "int32"), ids),
        )
        return ids  # (rows, steps)

    compiled = _compile(decode)
    seed = ops.convert_to_tensor([11, 13], "int32")
    ids = np.asarray(compiled(logits, seed))
    assert ids.shape == (len(LOGITS) * copies, steps)
    np.testing.assert_array_equal(ids, compiled(logits, seed))
    by_row = ids.reshape(len(LOGITS), copies * steps)
    if name == "greedy":
        _assert_greedy(by_row)
        return
    other_seed = ops.convert_to_tensor([12, 13], "int32")
    assert (ids != np.asarray(compiled(logits, other_seed))).any()
    assert (ids[:, :1] != ids[:, 1:]).any(), "every step drew the same ids"
    if name == "top_k":
        support = _top_k_distribution(LOGITS, 5) > 0
        assert np.take_along_axis(support, by_row, -1).all()


@pytest.mark.parametrize(
    "sampler",
    [
        samplers.Sampler(temperature=0.7),
        samplers.GreedySampler(),
        samplers.RandomSampler(temperature=0.5),
        samplers.TopKSampler(k=3, temperature=2.0),
        samplers.TopPSampler(p=0.8, temperature=0.9, k=40),
    ],
    ids=lambda sampler: type(sampler).__name__,
)
def test_config_round_trip(sampler):
    config = sampler.get_config()
    revived = type(sampler).from_config(config)
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(sampler)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is type(sampler)
    assert deserialized.get_config() == config
    got = samplers.get(serialized)
    assert type(got) is type(sampler) and got.get_config() == config


def test_get():
    for name, cls in [
        ("greedy", samplers.GreedySampler),
        ("random", samplers.RandomSampler),
        ("top_k", samplers.TopKSampler),
        ("top_p", samplers.TopPSampler),
    ]:
        assert type(samplers.get(name)) is cls
    sampler = samplers.TopKSampler(k=2)
    assert samplers.get(sampler) is sampler
    from_dict = samplers.get({"class_name": "top_p", "config": {"p": 0.5}})
    assert type(from_dict) is samplers.TopPSampler and from_dict.p == 0.5
    from_class_name = samplers.get(
        {"class_name": "TopKSampler", "config": {"k": 7}}
    )
    assert from_class_name.k == 7
    for bad in ["beam", None, 3, {"class_name": "Dense", "config": {}}]:
        with pytest.raises(ValueError, match="Received: identifier="):
            samplers.get(bad)


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (samplers.TopKSampler, {"k": 0}, "`k` must be a positive .*k=0"),
        (samplers.TopKSampler, {"k": 2.5}, "Received: k=2.5"),
        (samplers.TopKSampler, {"k": True}, "Received: k=True"),
        (samplers.TopPSampler, {"k": -1}, "Received: k=-1"),
        (samplers.TopPSampler, {"p": 0.0}, r"`p` must be in .*p=0.0"),
        (samplers.TopPSampler, {"p": 1.5}, "Received: p=1.5"),
        (samplers.RandomSampler, {"temperature": 0}, "temperature=0"),
        (samplers.TopKSampler, {"temperature": -1.0}, "temperature=-1.0"),
        (samplers.TopPSampler, {"temperature": 0.0}, "temperature=0.0"),
    ],
)
def test_bad_arguments_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)
