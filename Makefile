# Two commands do all the set-up: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
# The tests other backends run: the modelling half of the package (tests of
# data, text, serving and recipes are marked `tf_only`, slow end-to-end ones
# `large`). On JAX the tests run `fit`/`predict` op by op (tests/conftest.py)
# but every op and `jax.jit` still compiles once per new shape, a second or
# more a test on 2 CPUs; the TensorFlow run alone takes most of `make
# test`'s 10-minute budget, so JAX runs the ops and the cross-backend round
# trip there; `make test-backends` runs the whole backend-neutral suite on
# both.
BACKEND_TESTS := tests/ops tests/layers tests/models tests/test_decoding.py
TORCH_TESTS := $(BACKEND_TESTS)
JAX_TESTS := tests/ops tests/models/test_cross_backend.py
# Tests compile many small XLA programs: optimizing them costs more than
# running them.
JAX_TEST_FLAGS := --xla_backend_optimization_level=0 \
	--xla_llvm_disable_expensive_passes=true
# Tests and demo must never reach the network for data.
export TFDS_DATA_DIR ?= $(CURDIR)/.venv/tensorflow_datasets

.PHONY: install test test-tensorflow test-jax test-torch test-backends test-fast demo bench lint clean \
	check-serving-release

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP)

# pytest-xdist workers of each backend's run.
XDIST ?= -n 2 --dist loadgroup

# One compute thread a test process: the suite's models are tiny, so a
# second thread gains nothing, and an idle one spins (PyTorch's OpenMP
# pool, TensorFlow's Eigen pool) on the core another run needs. Measured
# on 2 AMD EPYC CPUs: PyTorch's decoding + attention tests 28.4 -> 17.9 s
# of CPU in the same wall time; TensorFlow's 48 -> 42 s. Subprocesses the
# tests start inherit it.
TEST_THREADS := OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1

# The whole suite on TensorFlow (two workers) and, beside it, the
# backend-neutral tests on JAX and on PyTorch (one process each), as
# KerasHub's CI runs them. The three runs share the 2 CPUs, so that no core
# idles while one run finishes its last, longest tests; each run's output
# is printed whole when it ends (`--output-sync`).
test: $(STAMP)
	$(MAKE) --no-print-directory -j3 --output-sync=target \
		test-tensorflow test-jax test-torch XDIST_OTHERS=

test-tensorflow: $(STAMP)
	$(TEST_THREADS) KERAS_BACKEND=tensorflow $(PY) -m pytest $(XDIST) --durations=15 \
		--doctest-modules keras_attention tests

XDIST_OTHERS ?= $(XDIST)

test-jax: $(STAMP)
	KERAS_BACKEND=jax XLA_FLAGS="$(JAX_TEST_FLAGS)" $(PY) -m pytest $(XDIST_OTHERS) \
		--durations=5 -m "not tf_only and not large" $(JAX_TESTS)

test-torch: $(STAMP)
	$(TEST_THREADS) KERAS_BACKEND=torch $(PY) -m pytest $(XDIST_OTHERS) --durations=5 \
		-m "not tf_only and not large" $(TORCH_TESTS)

test-backends:
	$(MAKE) --no-print-directory test-jax test-torch \
		JAX_TESTS="$(BACKEND_TESTS)" TORCH_TESTS="$(BACKEND_TESTS)"

test-fast: $(STAMP)
	$(TEST_THREADS) KERAS_BACKEND=tensorflow $(PY) -m pytest -n 2 --dist loadgroup -m "not large" \
		--doctest-modules keras_attention tests

demo: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) recipes/date_conversion.py \
		--output-dir outputs/date_conversion

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# Our exports on the release TF Serving 2.20 links (TensorFlow 2.20,
# tensorflow-text 2.20): the op check against that registry and the same
# answers (scripts/check_serving_release.py). Downloads about 600 MB into
# its own environment, so it is not part of `make test`.
RELEASE_VENV ?= .venv-serving-release
RELEASE_PACKAGES := tensorflow==2.20.0 tensorflow-text==2.20.1 \
	tensorflow-serving-api==2.20.0 sentencepiece sacrebleu
check-serving-release: $(STAMP)
	test -x $(RELEASE_VENV)/bin/python || $(PYTHON) -m venv $(RELEASE_VENV)
	$(RELEASE_VENV)/bin/python -m pip install $(RELEASE_PACKAGES)
	rm -rf build/serving-release
	KERAS_BACKEND=tensorflow $(PY) scripts/check_serving_release.py export build/serving-release
	KERAS_BACKEND=tensorflow PYTHONPATH=$(CURDIR) $(RELEASE_VENV)/bin/python \
		scripts/check_serving_release.py verify build/serving-release

lint: $(STAMP)
	$(PY) -m ruff check conftest.py keras_attention recipes benchmarks scripts tests
	$(PY) -m ruff format --check conftest.py keras_attention recipes benchmarks scripts tests

clean:
	rm -rf $(VENV) outputs build *.egg-info .pytest_cache
