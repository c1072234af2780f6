"""Names the docstring examples use without importing them (doctests).

`make test` runs every `>>>` example in `keras_attention/` as a doctest, so
an example that no longer works fails the build.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_attention as ka


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(np=np, keras=keras, tf=tf, ka=ka)
