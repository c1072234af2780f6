"""Test set-up: the backend, a fixed seed, and TensorFlow-only tests.

`KERAS_BACKEND` picks the backend (TensorFlow by default); `make test` runs
the whole suite on TensorFlow, then every test not marked `tf_only` on JAX
and on PyTorch, as KerasHub's CI does. Tests of the TensorFlow-only half of
the package (data, text, serving, recipes, training utilities) are marked
`tf_only` by their location; a TensorFlow-specific test elsewhere carries
the mark itself.

On JAX, `fit`, `evaluate` and `predict` of a model compiled with the
default `jit_compile="auto"` run op by op, as Keras runs them on PyTorch:
XLA-compiling the train step of each tiny test model costs seconds, running
it eagerly milliseconds. A test that passes `jit_compile=True` (the
cross-backend round trip, the all-layers model) or calls `jax.jit` itself
still compiles, so tracing every layer under XLA stays tested.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

# Test paths (relative to tests/) that exercise TensorFlow-only code.
_TF_ONLY_PATHS = (
    "data/",
    "text/",
    "recipes/",
    "serving/",
    "test_benchmark_helpers.py",
    "test_bleu.py",
    "test_cli.py",
    "test_import_cycles.py",
    "test_readme.py",
    "test_training.py",
    "test_viz.py",
)
_TESTS_DIR = os.path.dirname(__file__)


def pytest_collection_modifyitems(config, items):
    tensorflow = keras.backend.backend() == "tensorflow"
    skip = pytest.mark.skip(reason="needs the TensorFlow backend")
    for item in items:
        path = os.path.relpath(str(item.fspath), _TESTS_DIR)
        if path.replace(os.sep, "/").startswith(_TF_ONLY_PATHS):
            item.add_marker(pytest.mark.tf_only)
        if not tensorflow and item.get_closest_marker("tf_only"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts from the same seed and the float32 policy."""
    keras.utils.set_random_seed(1337)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


if keras.backend.backend() == "jax":
    # `jit_compile="auto"` resolves here; Keras resolves it to `False` on
    # PyTorch the same way.
    keras.Model._resolve_auto_jit_compile = lambda model: False

if keras.backend.backend() == "torch":
    import torch

    _tensor_to_array = torch.Tensor.__array__

    def _detached_array(self, *args, **kwargs):
        # NumPy conversions in the tests (`np.testing.assert_allclose(
        # layer(x), ...)`) read values; a layer output that requires grad
        # would refuse. Reading never feeds a gradient, so detach first.
        return _tensor_to_array(self.detach().cpu(), *args, **kwargs)

    torch.Tensor.__array__ = _detached_array
