"""TF Serving's layout: `<base>/<version>/`, written all or nothing."""

import os

import pytest
import tensorflow as tf

from keras_attention.serving import load_saved_model
from keras_attention.serving import next_version
from keras_attention.serving import saved_model_path
from keras_attention.serving.model_versions import write_version


class _Doubler(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def double(self, x):
        return 2 * x


def _write(base, version=None):
    return write_version(
        base, lambda d: tf.saved_model.save(_Doubler(), d), version
    )


def test_versions_count_up_and_the_newest_is_loaded(tmp_path):
    base = tmp_path / "model"
    assert next_version(base) == 1
    assert _write(base) == os.path.join(base, "1")
    assert _write(base, version=7) == os.path.join(base, "7")
    assert _write(base) == os.path.join(base, "8")
    os.makedirs(base / "9")  # no SavedModel (yet): skipped
    (base / "notes").write_text("not a version")
    assert saved_model_path(base) == os.path.join(base, "8")
    assert saved_model_path(base / "1") == os.path.join(base, "1")
    loaded = load_saved_model(base)
    assert loaded.double(tf.constant([1.5])).numpy().tolist() == [3.0]
    assert sorted(os.listdir(base)) == ["1", "7", "8", "9", "notes"]


def test_bad_versions_and_missing_models_are_errors(tmp_path):
    base = tmp_path / "model"
    _write(base, version=2)
    with pytest.raises(ValueError, match="exists already.*version=2"):
        _write(base, version=2)
    for version in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="Received: version="):
            _write(base, version=version)
    with pytest.raises(FileNotFoundError, match="version subdirectory"):
        saved_model_path(tmp_path / "empty")


def test_a_failed_write_leaves_no_version(tmp_path):
    base = tmp_path / "model"

    def fail(directory):
        os.makedirs(directory)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_version(base, fail)
    assert os.listdir(base) == []
    assert next_version(base) == 1
