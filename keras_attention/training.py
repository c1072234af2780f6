"""Training set-up shared by the recipes: optimizer, strategy, callbacks.

The loss, metric and schedule live in `keras_attention.losses`,
`keras_attention.metrics` and `keras_attention.schedules`; this module puts
them to use: `transformer_adam` is the paper's optimizer,
`make_distribution_strategy` picks a `tf.distribute` strategy by name,
`training_callbacks` makes a run resumable (checkpoints, backup and
TensorBoard logs under one output directory), `start_run` and
`read_history` prepare that directory and read its per-epoch log, and
`fit_run` is the recipes' one `model.fit` with all of them.
"""

import csv
import glob
import importlib.util
import logging
import os
import shutil

import keras
import tensorflow as tf

from keras_attention.schedules import TransformerSchedule

__all__ = [
    "BACKUP_DIR",
    "CHECKPOINT_DIR",
    "HISTORY_FILE",
    "STRATEGIES",
    "TENSORBOARD_DIR",
    "fit_run",
    "make_distribution_strategy",
    "read_history",
    "start_run",
    "tensorboard_available",
    "training_callbacks",
    "transformer_adam",
]

STRATEGIES = ("default", "mirrored", "multi_worker")
BACKUP_DIR = "backup"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "logs"
HISTORY_FILE = "history.csv"  # a `keras.callbacks.CSVLogger(append=True)`
# Adam's moment decay rates and epsilon in Vaswani et al. (section 5.3).
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.98
ADAM_EPSILON = 1e-9

_logger = logging.getLogger(__name__)


def start_run(output_dir, restart=False):
    """Prepare a run's directory; return whether it resumes an earlier run.

    A run resumes when `<output_dir>/backup` holds the `BackupAndRestore`
    state of an interrupted `fit` (see `training_callbacks`). Otherwise it
    starts afresh, and the per-epoch files an earlier run left behind (the
    history CSV, `checkpoints/epoch_*.weights.h5` and the TensorBoard logs
    `logs/train` and `logs/validation`) are removed, so that they never mix
    with this run's; nothing else in the directory is touched.

    Args:
        output_dir: the run's directory (created if needed).
        restart: bool, whether to discard an interrupted run's backup and
            start afresh. Defaults to `False`.

    Returns:
        `True` when training will resume from the backup.

    Example:

    >>> import tempfile
    >>> run_dir = tempfile.mkdtemp()
    >>> start_run(run_dir)  # nothing to resume
    False
    """
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    backup_dir = os.path.join(output_dir, BACKUP_DIR)
    if restart:
        shutil.rmtree(backup_dir, ignore_errors=True)
    if os.path.isdir(backup_dir):
        return True
    # Only the files `training_callbacks` and the recipes write: an output
    # directory may hold other things (`--output-dir .`).
    stale = [os.path.join(output_dir, HISTORY_FILE)]
    stale += glob.glob(
        os.path.join(output_dir, CHECKPOINT_DIR, "epoch_*.weights.h5")
    )
    for path in stale:
        if os.path.isfile(path):
            os.remove(path)
    for subdir in ("train", "validation"):  # TensorBoard's event files
        shutil.rmtree(
            os.path.join(output_dir, TENSORBOARD_DIR, subdir),
            ignore_errors=True,
        )
    return False


def read_history(path):
    """Per-epoch metrics from a `CSVLogger` file, `{}` if there is none.

    A resumed run appends to the file and may repeat an epoch that was cut
    short; the last row of each epoch wins. Missing values (`"NA"`) are left
    out.

    Args:
        path: the CSV file.

    Returns:
        A dict of metric name to the list of its per-epoch values.
    """
    if not os.path.exists(path):
        return {}
    rows = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            rows[int(row["epoch"])] = row
    history = {}
    for epoch in sorted(rows):
        for name, value in rows[epoch].items():
            # `CSVLogger` writes "NA" for the `val_` columns of a fit
            # without validation data.
            if name != "epoch" and value not in ("", "NA", None):
                history.setdefault(name, []).append(float(value))
    return history


class _BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that says why a backup cannot be restored."""

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except (ValueError, OSError) as error:
            detail = " ".join(str(error).strip().splitlines()[:3])[:500]
            raise ValueError(
                f"The backup in {self.backup_dir!r} is from an interrupted "
                "run whose model differs from this one (other settings or "
                "data?). Delete that directory to start afresh (the recipes: "
                f"--restart). Restoring failed with: {detail}"
            ) from error


def tensorboard_available():
    """Whether the `tensorboard` package (TensorBoard summaries) is present.

    TensorFlow 2.21 no longer installs it: `pip install tensorboard`.
    """
    return importlib.util.find_spec("tensorboard") is not None


def transformer_adam(d_model, warmup_steps=4000, scale=1.0, **kwargs):
    """Adam with the Transformer schedule and the paper's hyper-parameters.

    Args:
        d_model: int, the model width (it sets the learning-rate scale).
        warmup_steps: int, the number of warm-up updates. Defaults to
            `4000`.
        scale: float, a factor on the learning rate. Defaults to `1.0`.
        **kwargs: further arguments of `keras.optimizers.Adam` (e.g.
            `clipnorm`); `beta_1`, `beta_2` and `epsilon` may be overridden.

    Returns:
        A `keras.optimizers.Adam` with `beta_1=0.9`, `beta_2=0.98`,
        `epsilon=1e-9` and a `TransformerSchedule` learning rate.

    Example:

    >>> optimizer = transformer_adam(d_model=128, warmup_steps=100)
    >>> optimizer.beta_2, optimizer.epsilon
    (0.98, 1e-09)
    """
    kwargs.setdefault("beta_1", ADAM_BETA_1)
    kwargs.setdefault("beta_2", ADAM_BETA_2)
    kwargs.setdefault("epsilon", ADAM_EPSILON)
    schedule = TransformerSchedule(d_model, warmup_steps, scale=scale)
    return keras.optimizers.Adam(learning_rate=schedule, **kwargs)


def make_distribution_strategy(name="default", devices=None):
    """A `tf.distribute` strategy by name.

    Args:
        name: `"default"` (the current strategy: one device, or the one of
            an enclosing scope), `"mirrored"` (`MirroredStrategy`: all
            local GPUs, or the CPU) or `"multi_worker"`
            (`MultiWorkerMirroredStrategy`; the cluster comes from the
            `TF_CONFIG` environment variable of every worker). Defaults to
            `"default"`.
        devices: optional list of device names for `"mirrored"` (e.g.
            `["/gpu:0", "/gpu:1"]`, or logical CPUs in tests). Defaults to
            `None` (all local GPUs, else the CPU).

    Returns:
        A `tf.distribute.Strategy`; build and compile the model under its
        `scope()`.
    """
    if devices is not None and name != "mirrored":
        raise ValueError(
            "`devices` is only used by the 'mirrored' strategy. "
            f"Received: name={name!r}, devices={devices}"
        )
    if name not in STRATEGIES:
        raise ValueError(
            f"`name` must be one of {STRATEGIES}. Received: name={name!r}"
        )
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def training_callbacks(
    output_dir, monitor="val_loss", tensorboard=None, save_best_only=False
):
    """Callbacks that make a `fit` resumable and logged.

    - `keras.callbacks.BackupAndRestore` under `<output_dir>/backup`: if a
      run is killed, calling `fit` again with the same callbacks restores
      the weights, the optimizer state and the epoch counter, and training
      continues after the last finished epoch. The backup is deleted when
      `fit` completes.
    - `keras.callbacks.ModelCheckpoint` writing
      `<output_dir>/checkpoints/epoch_{epoch:03d}.weights.h5` after every
      epoch (or only when `monitor` improves, with `save_best_only`).
    - `keras.callbacks.TensorBoard` logs under `<output_dir>/logs`
      (`tensorboard --logdir <output_dir>/logs`). They need the
      `tensorboard` package, which TensorFlow 2.21 does not install.

    Args:
        output_dir: the run's directory (created if needed).
        monitor: the quantity of `save_best_only`. Defaults to
            `"val_loss"`.
        tensorboard: bool, whether to write TensorBoard logs; `True` fails
            without the `tensorboard` package. Defaults to `None`: write
            them when `tensorboard` is installed, else log a warning.
        save_best_only: bool, passed to `ModelCheckpoint`. Defaults to
            `False`.

    Returns:
        A list of callbacks; `BackupAndRestore` comes first.
    """
    if tensorboard is None:
        tensorboard = tensorboard_available()
        if not tensorboard:
            _logger.warning(
                "No TensorBoard logs: the `tensorboard` package is not "
                "installed (`pip install tensorboard`)."
            )
    elif tensorboard and not tensorboard_available():
        raise ValueError(
            "TensorBoard logs need the `tensorboard` package "
            "(`pip install tensorboard`). Received: tensorboard=True"
        )
    output_dir = os.fspath(output_dir)
    checkpoint_dir = os.path.join(output_dir, CHECKPOINT_DIR)
    os.makedirs(checkpoint_dir, exist_ok=True)
    callbacks = [
        _BackupAndRestore(os.path.join(output_dir, BACKUP_DIR)),
        keras.callbacks.ModelCheckpoint(
            os.path.join(checkpoint_dir, "epoch_{epoch:03d}.weights.h5"),
            monitor=monitor,
            save_best_only=save_best_only,
            save_weights_only=True,
        ),
    ]
    if tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                os.path.join(output_dir, TENSORBOARD_DIR)
            )
        )
    return callbacks


def fit_run(model, data, output_dir, epochs, callbacks=(), **fit_kwargs):
    """`model.fit` in a run directory; returns the whole run's history.

    The callbacks are `callbacks` (first, so that metrics they add reach
    the log), a `keras.callbacks.CSVLogger` appending to
    `<output_dir>/history.csv`, then `training_callbacks(output_dir)`: an
    interrupted run resumes when called again. Progress is printed once per
    epoch when the `CI` environment variable is set.

    Args:
        model: a compiled `keras.Model`.
        data: the training data, e.g. a `tf.data.Dataset` that reshuffles
            itself every epoch (`fit` does not shuffle it again).
        output_dir: the run's directory (see `start_run`).
        epochs: int, the number of epochs of the whole run.
        callbacks: extra Keras callbacks. Defaults to `()`.
        **fit_kwargs: further `model.fit` arguments (`validation_data`,
            `steps_per_epoch`, ...).

    Returns:
        A dict of metric name to its per-epoch values (see
        `read_history`), including the epochs of an interrupted run that
        this call resumed.
    """
    history_path = os.path.join(os.fspath(output_dir), HISTORY_FILE)
    fit_kwargs.setdefault("verbose", 2 if os.environ.get("CI") else "auto")
    model.fit(
        data,
        epochs=epochs,
        shuffle=False,
        callbacks=[
            *callbacks,
            keras.callbacks.CSVLogger(history_path, append=True),
            *training_callbacks(output_dir),
        ],
        **fit_kwargs,
    )
    return read_history(history_path)
