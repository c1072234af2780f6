# Two commands do all the set-up: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND := tensorflow
# Tests and demo must never reach the network for data.
export TFDS_DATA_DIR ?= $(CURDIR)/.venv/tensorflow_datasets

.PHONY: install test test-fast demo bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15 --doctest-modules keras_attention tests

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not large" --doctest-modules keras_attention tests

demo: $(STAMP)
	$(PY) recipes/date_conversion.py --output-dir outputs/date_conversion

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(PY) -m ruff check conftest.py keras_attention recipes benchmarks tests
	$(PY) -m ruff format --check conftest.py keras_attention recipes benchmarks tests

clean:
	rm -rf $(VENV) outputs build *.egg-info .pytest_cache
