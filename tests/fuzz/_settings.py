"""Hypothesis settings shared by the fuzz suite.

The default run is small and deterministic (`derandomize=True`: the same
examples every run, so a failure reproduces and CI never flakes). Raise the
count for a longer search with the `KERAS_ATTENTION_FUZZ_EXAMPLES`
environment variable, e.g. `KERAS_ATTENTION_FUZZ_EXAMPLES=2000`; each test
then runs that many examples (scaled by its `weight`).
"""

import os

import keras
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import settings

EXAMPLES_VARIABLE = "KERAS_ATTENTION_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 40
# JAX and PyTorch compile or trace each new shape: the default run there
# is this many times smaller (the whole default run took 230 s on JAX with
# 2 CPUs, against 15 s on TensorFlow).
OTHER_BACKEND_DIVISOR = 10

settings.register_profile(
    "keras_attention_fuzz",
    deadline=None,
    derandomize=True,
    print_blob=True,
    # No "explain" phase: it reruns a failure hundreds of times.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def example_count(weight=1.0):
    """Examples per test: the environment's count (or the default) x weight."""
    raw = os.environ.get(EXAMPLES_VARIABLE, "")
    if raw.strip():
        count = int(raw)
    elif keras.backend.backend() == "tensorflow":
        count = DEFAULT_EXAMPLES
    else:
        count = DEFAULT_EXAMPLES // OTHER_BACKEND_DIVISOR
    return max(1, int(count * weight))


def fuzz_settings(weight=1.0):
    """`hypothesis.settings` of one fuzz test."""
    return settings(
        settings.get_profile("keras_attention_fuzz"),
        max_examples=example_count(weight),
    )
