"""Multi-worker training on two real processes (issue 16).

Two worker processes on 127.0.0.1 (free ports, CPU only, one `TF_CONFIG`
each) train a tiny Transformer classifier with
`MultiWorkerMirroredStrategy` and `keras_attention.training.fit_distributed`
(Keras 3's `model.fit` cannot run under that strategy,
keras-team/keras#20585); one process trains the same model on the
same global batches without a strategy. Both workers must finish, their
final loss must match the single-process one, and only the chief may leave
a checkpoint and an export in the run directory (the other worker writes
its copies to a scratch directory it removes).

The tolerance: both runs start from the same seeded weights and take the
same SGD steps on the same global batches (the strategy averages the two
workers' half-batch gradients, which equals the full-batch gradient), so
they differ only by float32 rounding in the order of the all-reduce sums:
about 1e-7 relative per step, a few steps here. `rtol=1e-4` leaves ample
room for that and fails for any real difference (a batch seen twice or
not at all, unsynchronised weights: 1e-2 or more).
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_attention.training import launch_workers
from keras_attention.training import local_cluster

# One xdist worker runs these one after the other: each starts three
# TensorFlow processes and a cluster on free ports, which two at once on
# 2 CPUs would contend for.
pytestmark = pytest.mark.xdist_group("multi_worker")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLOBAL_BATCH = 8
NUM_WORKERS = 2

WORKER = """
import json, os, sys
import numpy as np
import keras
import tensorflow as tf
from keras_attention.models import build_transformer_classifier
from keras_attention.training import fit_distributed
from keras_attention.training import fit_distributed_run
from keras_attention.training import is_chief
from keras_attention.training import make_distribution_strategy
from keras_attention.training import remove_worker_output_dir
from keras_attention.training import worker_output_dir

run_dir, results_dir, global_batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
multi = "TF_CONFIG" in os.environ
strategy = make_distribution_strategy("multi_worker" if multi else "default")
rng = np.random.default_rng(0)
tokens = rng.integers(1, 20, size=(32, 6)).astype("int32")
labels = (tokens[:, 0] > 10).astype("int32")
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = (
    tf.data.experimental.AutoShardPolicy.DATA
)


def dataset(labels):
    return (
        tf.data.Dataset.from_tensor_slices((tokens, labels))
        .batch(global_batch)
        .with_options(options)
    )


def seeded_model(learning_rate):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_transformer_classifier(
            vocabulary_size=20, num_classes=2, num_layers=1, num_heads=2,
            embedding_dim=8, feed_forward_dim=16, dropout=0.0,
        )
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(reduction=None),
        )
    return model


data = dataset(labels)
model = seeded_model(0.1)
out = worker_output_dir(run_dir)
history = fit_distributed(model, data, epochs=2, strategy=strategy)
os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)
model.save_weights(os.path.join(out, "checkpoints", "final.weights.h5"))
model.export(os.path.join(out, "export"), verbose=False)
probabilities = model.predict(tokens, verbose=0)
cross_entropy = keras.losses.SparseCategoricalCrossentropy()
loss = float(cross_entropy(labels, probabilities))
remove_worker_output_dir(run_dir)

# The stopping rule: validation labels that contradict the training ones
# make the validation loss rise once the model learns, so patience 1 stops
# the run before its fifth epoch; every worker must stop after the same
# epoch (or the next all-reduce would hang) and keep the best epoch's
# weights.
stopping_dir = run_dir + "_stopping"
validation = dataset(1 - labels)
model = seeded_model(1.0)
stopped = fit_distributed_run(
    model, data, stopping_dir, epochs=5, strategy=strategy,
    validation_data=validation, patience=1, time_budget=60,
)
kept = float(cross_entropy(1 - labels, model.predict(tokens, verbose=0)))
remove_worker_output_dir(stopping_dir)
task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
name = "worker_%d" % task["index"] if task else "single"
with open(os.path.join(results_dir, name + ".json"), "w") as file:
    json.dump(
        {
            "loss": loss,
            "history": history,
            "chief": is_chief(),
            "val_loss": [float(v) for v in stopped.get("val_loss", [])],
            "epochs": len(stopped["loss"]),
            "kept_val_loss": kept,
        },
        file,
    )
"""


def _environment():
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="tensorflow",
        CUDA_VISIBLE_DEVICES="",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=REPO_ROOT + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("TF_CONFIG", None)
    return env


# About 25 s on 2 CPUs (three TensorFlow processes start): not `large`.
@pytest.mark.tf_only
def test_two_workers_match_one_process_and_only_the_chief_writes(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    results = tmp_path / "results"
    results.mkdir()
    multi_dir, single_dir = tmp_path / "multi", tmp_path / "single"
    command = [sys.executable, str(script)]
    outcomes = launch_workers(
        command + [str(multi_dir), str(results), str(GLOBAL_BATCH)],
        local_cluster(NUM_WORKERS),
        env=_environment(),
        timeout=240,
    )
    for index, (returncode, output) in enumerate(outcomes):
        assert returncode == 0, f"worker {index} failed:\n{output[-3000:]}"
    single = subprocess.run(
        command + [str(single_dir), str(results), str(GLOBAL_BATCH)],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-3000:]
    losses = {}
    for name in ("worker_0", "worker_1", "single"):
        with open(results / f"{name}.json") as file:
            losses[name] = json.load(file)
    assert losses["worker_0"]["chief"] and not losses["worker_1"]["chief"]
    single_loss = losses["single"]["loss"]
    for name in ("worker_0", "worker_1"):
        difference = abs(losses[name]["loss"] - single_loss)
        print(
            f"{name}: loss {losses[name]['loss']:.7f}, single "
            f"{single_loss:.7f}, difference {difference:.2e}"
        )
        np.testing.assert_allclose(
            losses[name]["history"], losses["single"]["history"], rtol=1e-4
        )
        np.testing.assert_allclose(losses[name]["loss"], single_loss, rtol=1e-4)
    # Only the chief's files are left: its checkpoint and its export.
    assert sorted(os.listdir(multi_dir)) == ["checkpoints", "export"]
    assert os.listdir(multi_dir / "checkpoints") == ["final.weights.h5"]
    assert (multi_dir / "export" / "saved_model.pb").is_file()
    # The stopping rule: the chief alone wrote its records (the chief's
    # history.csv has the validation loss), every worker stopped after the
    # same epoch as one process, early, and kept the best epoch's weights.
    chief = losses["worker_0"]
    val = chief["val_loss"]
    print(f"val_loss per epoch: {val}")
    worse = [e for e in range(1, len(val)) if val[e] >= min(val[:e])]
    assert worse and chief["epochs"] == worse[0] + 1 < 5, chief
    for name in ("worker_1", "single"):
        assert losses[name]["epochs"] == chief["epochs"], name
    np.testing.assert_allclose(val, losses["single"]["val_loss"], rtol=1e-4)
    for name in ("worker_0", "worker_1", "single"):
        np.testing.assert_allclose(
            losses[name]["kept_val_loss"], min(val), rtol=1e-4
        )
    stopping_dir = tmp_path / "multi_stopping"
    assert sorted(os.listdir(stopping_dir)) == [
        "best.weights.h5",
        "checkpoints",
        "history.csv",
        "stopping.json",
    ]
    state = json.loads((stopping_dir / "stopping.json").read_text())
    assert state["stop_reason"].startswith("no improvement of val_loss")
    assert state["best_epoch"] == int(np.argmin(val))


DATE_RECIPE = os.path.join(REPO_ROOT, "recipes", "date_conversion.py")
DATE_ARGS = [
    "--num-train=128",
    "--num-test=16",
    "--batch-size=32",
    "--units=8",
    "--embedding-dim=4",
    "--epochs=2",
    "--no-jit",
    "--no-export",
]


def _history_losses(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as file:
        rows = list(csv.DictReader(file))
    return [float(row["loss"]) for row in rows]


# About 75 s on 2 CPUs (three recipe processes): `large`.
@pytest.mark.tf_only
@pytest.mark.large
def test_recipe_with_strategy_multi_worker_matches_one_process(tmp_path):
    """`recipes/date_conversion.py --strategy multi_worker` on 2 workers.

    The date converter's batches have one shape and its targets one
    length (ISO dates), so each worker's half of a batch has as many
    target tokens as the other: the mean of the two halves' mean losses
    is the batch's mean loss. The runs still differ a little: the
    distributed dataset reshuffles once per epoch where `model.fit`
    draws two orders (`training.FIT_ITERATORS_PER_EPOCH`), so the
    examples meet the weights in another order. Measured: 0.8% on the
    first epoch's mean loss, 2.5% on the second; 5% bounds it, and a
    batch seen twice or a replica left out (a loss off by a factor 2, as
    a double 1/replicas scaling gave) fails.
    """
    multi_dir, single_dir = tmp_path / "multi", tmp_path / "single"
    common = [*DATE_ARGS, f"--data-dir={tmp_path / 'tfds'}"]
    # The TFDS dataset is generated once, by the single-process run, so
    # that the workers do not race to write it.
    single = subprocess.run(
        [sys.executable, DATE_RECIPE, *common, f"--output-dir={single_dir}"],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-3000:]
    outcomes = launch_workers(
        [
            sys.executable,
            DATE_RECIPE,
            *common,
            "--strategy=multi_worker",
            f"--output-dir={multi_dir}",
        ],
        local_cluster(NUM_WORKERS),
        env=_environment(),
        timeout=600,
    )
    for index, (returncode, output) in enumerate(outcomes):
        assert returncode == 0, f"worker {index} failed:\n{output[-3000:]}"
    multi, one = _history_losses(multi_dir), _history_losses(single_dir)
    print(f"two workers {multi}, one process {one}")
    assert len(multi) == 2
    np.testing.assert_allclose(multi, one, rtol=5e-2)
    # Only the chief's files are left.
    assert not (multi_dir / ".workers").exists()
    for name in ("history.csv", "model.keras", "summary.json"):
        assert (multi_dir / name).is_file(), name
    # The resume state went when the run finished (as a backup does): a
    # rerun starts afresh.
    assert not (multi_dir / "checkpoints" / "distributed").exists()
    summary = json.loads((multi_dir / "summary.json").read_text())
    assert summary["epochs"] == 2 and 0.0 <= summary["exact_match"] <= 1.0
