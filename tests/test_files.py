"""`keras_attention.files`: atomic writes leave the old file or the new."""

import os
import subprocess
import sys

import pytest

from keras_attention.files import KILL_BEFORE_RENAME_VARIABLE
from keras_attention.files import atomic_path
from keras_attention.files import atomic_write_text
from keras_attention.files import is_temporary
from keras_attention.files import remove_temporaries

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "vocabulary.txt"
    atomic_write_text(path, "a\nb\n")
    atomic_write_text(path, "c\r\n")
    assert path.read_bytes() == b"c\r\n"  # no newline translation
    assert os.listdir(tmp_path) == ["vocabulary.txt"]


def test_a_failure_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "epoch_001.weights.h5"
    path.write_text("old, whole")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(path) as temporary:
            # The temporary keeps the suffix that writers check.
            assert temporary.endswith("-epoch_001.weights.h5")
            assert os.path.dirname(temporary) == str(tmp_path)
            with open(temporary, "w") as file:
                file.write("new, half")
            raise RuntimeError("disk on fire")
    assert path.read_text() == "old, whole"
    assert os.listdir(tmp_path) == ["epoch_001.weights.h5"]


def test_a_block_that_writes_nothing_fails_and_leaves_no_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing was written"):
        with atomic_path(tmp_path / "summary.json"):
            pass
    assert os.listdir(tmp_path) == []


def test_a_kill_before_the_rename_leaves_the_old_file_and_a_temporary(
    tmp_path,
):
    path = tmp_path / "summary.json"
    path.write_text("old")
    script = (
        "import sys; from keras_attention.files import atomic_write_text; "
        "atomic_write_text(sys.argv[1], 'new')"
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    env[KILL_BEFORE_RENAME_VARIABLE] = "summary"
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], env=env, timeout=60
    )
    assert result.returncode == -9  # SIGKILL
    assert path.read_text() == "old"
    (left,) = [name for name in os.listdir(tmp_path) if is_temporary(name)]
    assert (tmp_path / left).read_text() == "new"
    # A new run deletes it; the user's files stay.
    (tmp_path / "notes.txt").write_text("mine")
    assert remove_temporaries(tmp_path) == [str(tmp_path / left)]
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "summary.json"]
    assert remove_temporaries(tmp_path / "missing") == []


def test_bad_paths_are_named_before_anything_is_written(tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        atomic_write_text(tmp_path, "x")
    with pytest.raises(FileNotFoundError, match="No such directory.*nope"):
        atomic_write_text(tmp_path / "nope" / "file.txt", "x")
    assert os.listdir(tmp_path) == []
