"""Token samplers: pick a language model's next id from its logits.

A sampler turns `(batch, vocab)` logits of any float dtype into `(batch,)`
int32 ids. It computes in float32 with `keras.ops` and `keras.random` only,
so it runs on every backend, inside a `keras.ops.while_loop` decode loop,
under `tf.function(jit_compile=True)` and `jax.jit`.

Seeds: `seed` is either a `keras.random.SeedGenerator`, which advances on
every call (eagerly and in TensorFlow graphs; JAX cannot update its state
inside `jax.jit`), or a stateless seed, a `(2,)` integer tensor (or a
Python int), which works everywhere, traced or not. In a decode loop pass a
new stateless seed each step, e.g. `ops.add(seed, ops.stack([0, index]))`.
The same seed gives the same ids on a given backend; the three backends
draw from different generators, so they do not give the same ids as each
other (PyTorch seeds its generator with the sum of the two seed words).

Masked-out tokens get a large finite negative logit, never `-inf`, so
their probability is exactly zero in float32 and no row can turn NaN.
"""

import keras
from keras import ops

from keras_attention._checks import check_positive_int

__all__ = [
    "GreedySampler",
    "RandomSampler",
    "Sampler",
    "TopKSampler",
    "TopPSampler",
    "get",
]

# The logit of a ruled-out token: `exp` of it underflows to exactly 0 in
# float32, while `-inf` would make `-inf - -inf` NaN.
_MASKED_LOGIT = -1e9


def _check_temperature(temperature):
    if not temperature > 0:
        raise ValueError(
            "`temperature` must be positive. "
            f"Received: temperature={temperature}"
        )


class _StatelessSeed(keras.random.SeedGenerator):
    """Yields one fixed `(2,)` seed tensor and holds no state.

    `keras.random` takes a Python int or a `SeedGenerator` and reads a
    generator's seed with `next()`; this one returns a given, possibly
    traced, tensor and creates no variable, so it is safe under any trace.
    """

    def __init__(self, seed):  # Deliberately no state variable.
        # JAX takes uint32 key data; TensorFlow's XLA kernels want int32.
        dtype = "uint32" if keras.backend.backend() == "jax" else "int32"
        self._seed = ops.cast(seed, dtype)

    def next(self, ordered=True):
        return self._seed


def _as_seed(seed):
    """`seed` as `keras.random` takes it."""
    if seed is None or isinstance(seed, (int, keras.random.SeedGenerator)):
        return seed
    return _StatelessSeed(seed)


@keras.saving.register_keras_serializable(package="keras_attention")
class Sampler:
    """The base sampler: `(batch, vocab)` logits to `(batch,)` int32 ids.

    Subclasses implement `sample(logits, seed)` on float32 logits that are
    already divided by the temperature and shifted so that each row's
    largest logit is 0.

    Args:
        temperature: float, positive; logits are divided by it before
            sampling (below 1 sharpens the distribution, above 1 flattens
            it). Defaults to `1.0`.

    Call arguments:
        logits: `(batch, vocab)` float tensor, any float dtype.
        seed: a `keras.random.SeedGenerator`, a stateless `(2,)` integer
            seed tensor or a Python int. Defaults to `None`, Keras's global
            generator (eager only on JAX).

    Returns:
        `(batch,)` int32 token ids.
    """

    def __init__(self, temperature=1.0):
        _check_temperature(temperature)
        self.temperature = temperature

    def __call__(self, logits, seed=None):
        logits = ops.cast(ops.convert_to_tensor(logits), "float32")
        logits = logits - ops.max(logits, axis=-1, keepdims=True)
        logits = ops.maximum(logits / self.temperature, _MASKED_LOGIT)
        return ops.cast(self.sample(logits, _as_seed(seed)), "int32")

    def sample(self, logits, seed):
        raise NotImplementedError(
            f"{type(self).__name__} must implement `sample(logits, seed)`."
        )

    def get_config(self):
        return {"temperature": self.temperature}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _draw(logits, seed):
    """`(batch,)` ids drawn from `softmax(logits)`."""
    return keras.random.categorical(logits, 1, dtype="int32", seed=seed)[:, 0]


def _draw_among(logits, candidates, seed):
    """`(batch,)` ids drawn among `(batch, n)` candidate ids."""
    picked = _draw(logits, seed)[:, None]  # (batch, 1)
    return ops.take_along_axis(candidates, picked, axis=-1)[:, 0]


@keras.saving.register_keras_serializable(package="keras_attention")
class GreedySampler(Sampler):
    """Picks the most likely token (argmax); ignores the seed.

    Example:

    >>> sampler = ka.samplers.GreedySampler()
    >>> logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 1.0]], "float16")
    >>> np.asarray(sampler(logits)).tolist()
    [1, 0]
    """

    def __init__(self):
        super().__init__()

    def sample(self, logits, seed):
        return ops.argmax(logits, axis=-1)

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="keras_attention")
class RandomSampler(Sampler):
    """Draws from the whole `softmax(logits / temperature)` distribution.

    Args:
        temperature: float, positive. Defaults to `1.0`.

    Example:

    >>> sampler = ka.samplers.RandomSampler(temperature=0.5)
    >>> logits = np.array([[0.0, 1.0, -1e9]], "float32")
    >>> int(sampler(logits, seed=np.array([1, 2]))[0]) in (0, 1)
    True
    """

    def sample(self, logits, seed):
        return _draw(logits, seed)


@keras.saving.register_keras_serializable(package="keras_attention")
class TopKSampler(Sampler):
    """Draws among the `k` most likely tokens, renormalized.

    Args:
        k: int, positive, the number of candidates (all tokens when the
            vocabulary is smaller). Defaults to `5`.
        temperature: float, positive. Defaults to `1.0`.

    Example:

    >>> sampler = ka.samplers.TopKSampler(k=2)
    >>> logits = np.array([[0.0, 3.0, 2.5, 1.0]], "float32")
    >>> seed = keras.random.SeedGenerator(7)
    >>> int(sampler(logits, seed=seed)[0]) in (1, 2)
    True

    References:
        [Fan et al., 2018](https://arxiv.org/abs/1805.04833)
    """

    def __init__(self, k=5, temperature=1.0):
        k = check_positive_int("k", k)
        super().__init__(temperature=temperature)
        self.k = k

    def sample(self, logits, seed):
        k = min(self.k, logits.shape[-1] or self.k)
        values, candidates = ops.top_k(logits, k)  # (batch, k)
        return _draw_among(values, candidates, seed)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="keras_attention")
class TopPSampler(Sampler):
    """Nucleus sampling: draws among the smallest likeliest set of mass `p`.

    Keeps the most likely tokens, in order, until their probability (after
    the temperature) reaches `p`, always at least the most likely one, and
    draws from them renormalized. `k` caps the candidates: the nucleus is
    searched among the `k` most likely tokens only, which avoids sorting a
    large vocabulary.

    Args:
        p: float in `(0, 1]`, the probability mass to keep. Defaults to
            `0.9`.
        temperature: float, positive. Defaults to `1.0`.
        k: int, positive, or `None` (every token is a candidate). Defaults
            to `None`.

    Example:

    >>> sampler = ka.samplers.TopPSampler(p=0.5)
    >>> logits = np.log(np.array([[0.1, 0.6, 0.3]], "float32"))
    >>> np.asarray(sampler(logits, seed=np.array([0, 3]))).tolist()
    [1]

    References:
        [Holtzman et al., 2019](https://arxiv.org/abs/1904.09751)
    """

    def __init__(self, p=0.9, temperature=1.0, k=None):
        if not 0 < p <= 1:
            raise ValueError(f"`p` must be in (0, 1]. Received: p={p}")
        k = check_positive_int("k", k, allow_none=True)
        super().__init__(temperature=temperature)
        self.p = p
        self.k = k

    def sample(self, logits, seed):
        vocab = logits.shape[-1]
        if self.k is not None and vocab is not None:
            k = min(self.k, vocab)
        else:
            k = self.k or ops.shape(logits)[-1]
        probs = ops.softmax(logits, axis=-1)  # (batch, vocab)
        top_probs, candidates = ops.top_k(probs, k)  # (batch, k)
        mass_before = ops.cumsum(top_probs, axis=-1) - top_probs  # (batch, k)
        values = ops.take_along_axis(logits, candidates, axis=-1)  # (batch, k)
        values = ops.where(mass_before < self.p, values, _MASKED_LOGIT)
        return _draw_among(values, candidates, seed)

    def get_config(self):
        return {**super().get_config(), "p": self.p, "k": self.k}


_ALIASES = {
    "greedy": GreedySampler,
    "random": RandomSampler,
    "top_k": TopKSampler,
    "top_p": TopPSampler,
}


def get(identifier):
    """A sampler from a name, a config dict or a sampler instance.

    Args:
        identifier: a `Sampler`; one of `"greedy"`, `"random"`, `"top_k"`
            or `"top_p"` (default arguments); or a config dict such as
            `keras.saving.serialize_keras_object(sampler)` returns, or
            `{"class_name": "top_k", "config": {"k": 10}}`.

    Returns:
        A `Sampler`.

    Example:

    >>> ka.samplers.get("top_k").get_config()
    {'temperature': 1.0, 'k': 5}
    >>> ka.samplers.get({"class_name": "top_p", "config": {"p": 0.5}}).p
    0.5
    """
    if isinstance(identifier, Sampler):
        return identifier
    if isinstance(identifier, str) and identifier in _ALIASES:
        return _ALIASES[identifier]()
    if isinstance(identifier, dict):
        sampler = keras.saving.deserialize_keras_object(
            identifier,
            module_objects={
                **_ALIASES,
                **{cls.__name__: cls for cls in _ALIASES.values()},
            },
        )
        if isinstance(sampler, Sampler):
            return sampler
    raise ValueError(
        "`identifier` must be a `Sampler`, one of "
        f"{sorted(_ALIASES)} or a sampler config. Received: "
        f"identifier={identifier!r}"
    )
