"""SIGKILL a recipe at several points, rerun it, compare (issue 16).

Each recipe runs in a subprocess (tiny sizes, offline data) and is killed
with SIGKILL, which no handler can catch:

- mid-epoch: a callback kills the process after the first batch of an
  epoch;
- while writing a checkpoint: `KERAS_ATTENTION_KILL_BEFORE_RENAME` (see
  `keras_attention.files`) kills it after the temporary file of
  `checkpoints/epoch_NNN.weights.h5`, or of the backup's
  `training_metadata.json` (the commit point of an epoch), is written and
  before it is renamed;
- during the export: right after the SavedModel version is written to
  its staging directory, before it is renamed.

Then the same command runs again. After every kill, every file a later
run trusts is whole (each `.weights.h5` is HDF5, the backup names weights
that exist, `history.csv` has each finished epoch once, in order). After
the last rerun: no temporary file is left, `history.csv` has every epoch
once, and the final weights equal those of an uninterrupted run with the
same seed. Exactly equal, not merely close: a resumed run restores the
weights, the optimizer state and the epoch counter from the backup and
sees the data in the same order (`training.fit_run` replays the seeded
reshuffling), the models have no dropout, and the CPU kernels are
deterministic. A rerun after a kill during the export trains no batch
again: the backup outlives `fit` until the run's summary is written
(`cli.Run.finish`), so the rerun restores the last epoch's state and
goes on to the export.

The language model goes through all four kill points in one chain; the
classifier, the translator (its SentencePiece model learned by the killed
run, reloaded by the resumed one) and the date converter are killed once,
mid-epoch. About three minutes on 2 CPUs (fifteen TensorFlow processes):
`large`.
"""

import csv
import json
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

import keras_attention  # noqa: F401 (registers the layers for loading)
from keras_attention.files import KILL_BEFORE_RENAME_VARIABLE
from keras_attention.files import is_temporary
from keras_attention.training import backup_epoch
from tests.recipes.test_classify_recipe import write_order_task
from tests.recipes.test_translate_recipe import write_parallel_files
from tests.test_multi_worker import _environment as cpu_tensorflow_environment

pytestmark = [pytest.mark.tf_only, pytest.mark.large]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
RECIPES = os.path.join(REPO_ROOT, "recipes")
KILLED = -9  # the return code of a process ended by SIGKILL

# Imports the recipe and runs its `main` with the kill that argv[2] asks
# for: "mid_epoch:E" (after the first batch of 0-based epoch E),
# "any_batch" (after any training batch),
# "export" (after the SavedModel is staged, before the rename) or "none".
WRAPPER = """
import importlib.util, os, signal, sys
import keras

recipe_path, kill, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
spec = importlib.util.spec_from_file_location("recipe_under_test", recipe_path)
recipe = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = recipe
spec.loader.exec_module(recipe)


def die():
    os.kill(os.getpid(), signal.SIGKILL)


class KillMidEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.kill_epoch, self.epoch = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.kill_epoch in (None, self.epoch):
            die()


callbacks = []
if kill == "any_batch":
    callbacks.append(KillMidEpoch(None))
if kill.startswith("mid_epoch:"):
    callbacks.append(KillMidEpoch(int(kill.split(":")[1])))
if kill == "export":  # the SavedModel version is staged, not renamed
    rename = os.rename

    def rename_or_die(source, *args, **kwargs):
        if str(source).endswith(".partial"):
            die()
        return rename(source, *args, **kwargs)

    os.rename = rename_or_die
recipe.main(argv, callbacks=callbacks)
"""


def _environment(kill_before_rename=None):
    env = cpu_tensorflow_environment()
    env["CI"] = "1"  # one progress line per epoch
    env.pop(KILL_BEFORE_RENAME_VARIABLE, None)
    if kill_before_rename:
        env[KILL_BEFORE_RENAME_VARIABLE] = kill_before_rename
    return env


def run(wrapper, recipe, argv, kill="none", kill_before_rename=None):
    """Runs the recipe in a subprocess; returns its return code."""
    result = subprocess.run(
        [sys.executable, str(wrapper), os.path.join(RECIPES, recipe), kill]
        + list(argv),
        env=_environment(kill_before_rename),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode not in (0, KILLED):
        raise AssertionError(result.stdout[-3000:] + result.stderr[-3000:])
    return result.returncode


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory):
    path = tmp_path_factory.mktemp("wrapper") / "run_recipe.py"
    path.write_text(WRAPPER)
    return path


def history_epochs(out):
    path = out / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def assert_trusted_files_whole(out):
    """Every file a later run reads is complete; returns the temporaries."""
    epochs = history_epochs(out)
    assert epochs == list(range(len(epochs))), epochs  # once each, in order
    temporaries = []
    for root, dirs, files in os.walk(out):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # staging
        for name in files:
            path = os.path.join(root, name)
            if is_temporary(name):
                temporaries.append(path)
            elif name.endswith(".weights.h5"):
                assert h5py.is_hdf5(path), path
            elif name.endswith(".json"):
                with open(path) as file:
                    json.load(file)
    metadata = out / "backup" / "training_metadata.json"
    if metadata.exists():
        named = json.loads(metadata.read_text())["weights"]
        assert h5py.is_hdf5(out / "backup" / named)
    saved_model = out / "saved_model"
    if saved_model.exists():  # only whole versions have a number
        for name in os.listdir(saved_model):
            if name.isdigit():
                assert (saved_model / name / "saved_model.pb").is_file()
    return temporaries


def assert_same_final_weights(out, reference):
    got = keras.saving.load_model(
        out / "model.keras", compile=False
    ).get_weights()
    want = keras.saving.load_model(
        reference / "model.keras", compile=False
    ).get_weights()
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def assert_finished(out, epochs, reference):
    assert assert_trusted_files_whole(out) == []
    assert history_epochs(out) == list(range(epochs))
    assert not (out / "backup").exists()
    assert_same_final_weights(out, reference)


LANGUAGE_MODEL = [
    "--num-layers=1",
    "--d-model=16",
    "--num-heads=2",
    "--feed-forward-dim=32",
    "--sequence-length=32",
    "--batch-size=32",
    "--max-new-tokens=4",
    "--epochs=3",
    # A vocabulary the first run learns: reruns must reload it unchanged.
    "--tokenizer=wordpiece",
    "--vocabulary-size=200",
]


def test_language_model_survives_four_kills(wrapper, tmp_path):
    reference, out = tmp_path / "reference", tmp_path / "out"
    recipe = "language_model.py"
    # The reference's weights are all it is for: no export.
    reference_argv = [
        *LANGUAGE_MODEL,
        "--no-export",
        f"--output-dir={reference}",
    ]
    assert run(wrapper, recipe, reference_argv) == 0
    argv = [*LANGUAGE_MODEL, f"--output-dir={out}"]
    kills = [
        dict(kill="mid_epoch:1"),  # epoch 0 finished
        dict(kill_before_rename="training_metadata"),  # epoch 1's commit
        dict(kill_before_rename="epoch_003"),  # epoch 2's checkpoint
        dict(kill="export"),  # training finished
    ]
    # The epochs history.csv holds after each kill (the last row may be of
    # an epoch that the backup had not committed: the resumed run drops it
    # and logs the epoch again, once).
    logged = [[0], [0, 1], [0, 1, 2], [0, 1, 2]]
    for kill, epochs in zip(kills, logged):
        assert run(wrapper, recipe, argv, **kill) == KILLED, kill
        assert_trusted_files_whole(out)
        assert history_epochs(out) == epochs, kill
    # The export was cut short: its staging directory is no version, and
    # the backup of the finished training is kept for the rerun, which
    # trains no batch (it would be killed).
    assert not [n for n in os.listdir(out / "saved_model") if n.isdigit()]
    assert backup_epoch(out) == 3
    assert run(wrapper, recipe, argv, kill="any_batch") == 0
    assert_finished(out, 3, reference)
    vocabulary = (out / "vocabulary.txt").read_text()
    assert vocabulary == (reference / "vocabulary.txt").read_text()
    assert os.listdir(out / "saved_model") == ["1"]  # staging removed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["export_agreement"] == 1.0


@pytest.mark.parametrize(
    "recipe, argv, epochs",
    [
        (
            "classify.py",
            [
                "--num-layers=1",
                "--num-heads=2",
                "--embedding-dim=16",
                "--feed-forward-dim=32",
                "--vocabulary-size=60",
                "--max-length=16",
                "--batch-size=32",
                "--dropout=0",
                "--epochs=2",
                "--no-export",
            ],
            2,
        ),
        # SentencePiece is learned by the first run and reloaded by the
        # resumed one; the default stopping rule (patience 3) runs too.
        (
            "translate.py",
            [
                "--num-layers=1",
                "--d-model=16",
                "--num-heads=2",
                "--feed-forward-dim=32",
                "--vocabulary-size=28",
                "--max-length=12",
                "--batch-size=16",
                "--warmup-steps=10",
                "--held-out-fraction=0.1",
                "--beam-width=1",
                "--max-eval-examples=2",
                "--max-output-length=4",
                "--dropout=0",
                "--epochs=2",
                "--no-export",
            ],
            2,
        ),
        # The reference run generates the TFDS dataset, the others read
        # it: equal weights also show that generating it draws nothing
        # from the seeded generators the model is built with.
        (
            "date_conversion.py",
            [
                "--num-train=96",
                "--num-test=16",
                "--batch-size=32",
                "--units=8",
                "--embedding-dim=4",
                "--no-jit",
                "--epochs=2",
                "--no-export",
            ],
            2,
        ),
    ],
)
def test_killed_mid_epoch_resumes_to_the_same_weights(
    wrapper, tmp_path, recipe, argv, epochs
):
    if recipe == "classify.py":
        data = write_order_task(tmp_path / "train.tsv", 200)
        test = write_order_task(tmp_path / "test.tsv", 40, seed=1)
        argv = [*argv, f"--data={data}", f"--test-data={test}"]
    elif recipe == "translate.py":
        source, target = write_parallel_files(tmp_path)
        argv = [*argv, f"--source-file={source}", f"--target-file={target}"]
    else:
        argv = [*argv, f"--data-dir={tmp_path / 'tfds'}"]
    reference, out = tmp_path / "reference", tmp_path / "out"
    assert run(wrapper, recipe, [*argv, f"--output-dir={reference}"]) == 0
    argv = [*argv, f"--output-dir={out}"]
    assert run(wrapper, recipe, argv, kill="mid_epoch:1") == KILLED
    assert assert_trusted_files_whole(out) == []
    assert history_epochs(out) == [0]
    assert run(wrapper, recipe, argv) == 0
    assert_finished(out, epochs, reference)
