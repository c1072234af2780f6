"""Training set-up shared by the recipes: optimizer, strategy, callbacks.

The loss, metric and schedule live in `keras_attention.losses`,
`keras_attention.metrics` and `keras_attention.schedules`; this module puts
them to use: `transformer_adam` is the paper's optimizer,
`transformer_compile_arguments` its whole `compile` set-up and
`TRANSFORMER_PRESETS` its model and training sizes, `cosine_decay_adam`
the recipes' other optimizer, `make_distribution_strategy` picks a
`tf.distribute` strategy by name, `build_and_compile` builds and compiles
a model under it,
`training_callbacks` makes a run resumable (checkpoints, backup and
TensorBoard logs under one output directory), `start_run` and
`read_history` prepare that directory and read its per-epoch log, and
`fit_run` is the recipes' one `model.fit` with all of them.

Multi-worker training (`"multi_worker"`): every worker runs the same
program with its own `TF_CONFIG` (`tf_config` builds it, `local_cluster`
picks free ports on one machine, `launch_workers` starts one process per
worker); `is_chief` says which worker writes the checkpoints and the
export, and `worker_output_dir` sends the other workers' copies, which
`model.fit`'s callbacks must still write (the saves are collective), to a
scratch directory removed at the end (`remove_worker_output_dir`).
`fit_distributed` is the training loop that runs under it: Keras 3's
`model.fit` does not (keras-team/keras#20585).
"""

import csv
import dataclasses
import glob
import importlib.util
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import time

import keras
import tensorflow as tf

from keras_attention.files import atomic_path
from keras_attention.files import atomic_write_text
from keras_attention.files import is_temporary
from keras_attention.files import remove_temporaries
from keras_attention.losses import MaskedSparseCategoricalCrossentropy
from keras_attention.metrics import MaskedTokenAccuracy
from keras_attention.schedules import TransformerSchedule

__all__ = [
    "BACKUP_DIR",
    "BEST_WEIGHTS_FILE",
    "CHECKPOINT_DIR",
    "EpochCheckpoint",
    "HISTORY_FILE",
    "HistoryLogger",
    "STOPPING_FILE",
    "StoppingRule",
    "backup_epoch",
    "STRATEGIES",
    "TENSORBOARD_DIR",
    "TRANSFORMER_PRESETS",
    "TransformerPreset",
    "WORKERS_DIR",
    "build_and_compile",
    "classifier_compile_arguments",
    "NonFiniteLossError",
    "PerplexityPrinter",
    "StopOnNonFiniteLoss",
    "cosine_decay_adam",
    "distributed_checkpoint_dir",
    "distributed_evaluator",
    "fit_distributed",
    "fit_distributed_run",
    "fit_run",
    "is_chief",
    "language_model_compile_arguments",
    "launch_workers",
    "local_cluster",
    "remove_worker_output_dir",
    "tf_config",
    "worker_output_dir",
    "make_distribution_strategy",
    "read_history",
    "read_stopping_state",
    "start_run",
    "tensorboard_available",
    "training_callbacks",
    "seq2seq_compile_arguments",
    "transformer_adam",
    "transformer_compile_arguments",
]

STRATEGIES = ("default", "mirrored", "multi_worker")
BACKUP_DIR = "backup"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "logs"
HISTORY_FILE = "history.csv"  # one row per epoch, see `HistoryLogger`
# The stopping rule's per-epoch records and the best epoch's weights.
STOPPING_FILE = "stopping.json"
BEST_WEIGHTS_FILE = "best.weights.h5"
# `BackupAndRestore`'s record of the last finished epoch, in `BACKUP_DIR`.
BACKUP_METADATA_FILE = "training_metadata.json"
STOPPING_MODES = ("min", "max")
SECONDS_PER_MINUTE = 60
# `fit_distributed_run`'s `tf.train.CheckpointManager`, in `CHECKPOINT_DIR`.
DISTRIBUTED_CHECKPOINT_DIR = "distributed"
# Iterators of the training `tf.data.Dataset` that `model.fit` creates per
# epoch (Keras 3.x, TensorFlow backend): each draws a reshuffled order.
FIT_ITERATORS_PER_EPOCH = 2
# Non-chief workers' scratch copies of the run directory, under it.
WORKERS_DIR = ".workers"
# Adam's moment decay rates and epsilon in Vaswani et al. (section 5.3).
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.98
ADAM_EPSILON = 1e-9

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TransformerPreset:
    """Sizes of a Transformer translator and of its training.

    The defaults are `cpu-small`'s: it trains in well under an hour per
    epoch on a 2-core CPU. The field names are the recipes' option names
    (see `keras_attention.cli.add_preset_group`).
    """

    num_layers: int = 2
    d_model: int = 128
    num_heads: int = 4
    feed_forward_dim: int = 512
    dropout: float = 0.1
    vocabulary_size: int = 4000
    max_length: int = 64
    batch_tokens: int = 4096
    warmup_steps: int = 1000
    epochs: int = 5


TRANSFORMER_PRESETS = {
    "cpu-small": TransformerPreset(),
    # The paper's base model (Vaswani et al., 2017), for a GPU.
    "base": TransformerPreset(
        num_layers=6,
        d_model=512,
        num_heads=8,
        feed_forward_dim=2048,
        vocabulary_size=8000,
        max_length=128,
        batch_tokens=16384,
        warmup_steps=4000,
        epochs=20,
    ),
}


def start_run(output_dir, restart=False):
    """Prepare a run's directory; return whether it resumes an earlier run.

    A run resumes when `<output_dir>/backup` holds the `BackupAndRestore`
    state of an interrupted `fit` (see `training_callbacks`), or
    `<output_dir>/checkpoints/distributed` the checkpoint of an interrupted
    `fit_distributed_run`. Otherwise it
    starts afresh, and the per-epoch files an earlier run left behind (the
    history CSV, the stopping rule's `stopping.json` and
    `best.weights.h5`, `checkpoints/epoch_*.weights.h5` and the
    TensorBoard logs `logs/train` and `logs/validation`) are removed, so
    that they never mix with this run's; nothing else in the directory is
    touched. Either way, the temporary files of a writer that was killed
    (see `keras_attention.files`) are deleted.

    Args:
        output_dir: the run's directory (created if needed).
        restart: bool, whether to discard an interrupted run's backup (or
            distributed checkpoint) and start afresh. Defaults to `False`.

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
    # What a killed writer left half-written is never read: delete it.
    for directory in (output_dir, backup_dir, CHECKPOINT_DIR):
        remove_temporaries(os.path.join(output_dir, directory))
    distributed_dir = distributed_checkpoint_dir(output_dir)
    if restart:
        shutil.rmtree(backup_dir, ignore_errors=True)
        shutil.rmtree(distributed_dir, ignore_errors=True)
    if os.path.isdir(backup_dir) or tf.train.latest_checkpoint(distributed_dir):
        return True
    # Only the files `training_callbacks` and the recipes write: an output
    # directory may hold other things (`--output-dir .`).
    stale = [
        os.path.join(output_dir, name)
        for name in (HISTORY_FILE, STOPPING_FILE, BEST_WEIGHTS_FILE)
    ]
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


def _history_rows(path):
    """The rows of a history CSV, their `"epoch"` an int, in file order."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        row["epoch"] = int(row["epoch"])
    return rows


class HistoryLogger(keras.callbacks.Callback):
    """Writes the per-epoch logs to a CSV file, one row per epoch.

    Like `keras.callbacks.CSVLogger(append=True)` (an `epoch` column, then
    the metrics in sorted order, `NA` where an epoch lacks one), but the
    whole file is rewritten atomically at every epoch end (see
    `keras_attention.files`), and the rows of epochs at or after the first
    epoch this `fit` trains are dropped: an epoch that a killed run
    logged but never backed up, and that a resumed run trains again,
    appears once.

    Args:
        path: the CSV file.
        start_epoch: optional int, the first epoch of this `fit`, when
            known before it starts (the rows from it on are dropped even
            if it trains no epoch). Defaults to `None`: the first epoch
            it sees.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "history.csv")
    >>> logger = HistoryLogger(path)
    >>> logger.on_epoch_begin(0)
    >>> logger.on_epoch_end(0, {"loss": 0.5})
    >>> open(path).read().splitlines()
    ['epoch,loss', '0,0.5']
    """

    def __init__(self, path, start_epoch=None):
        super().__init__()
        self.path = os.fspath(path)
        self.start_epoch = start_epoch
        self._rows = None

    def _keep_rows_before(self, epoch):
        rows = _history_rows(self.path)
        self._rows = [row for row in rows if row["epoch"] < epoch]
        if len(self._rows) < len(rows):
            self._write()

    def on_train_begin(self, logs=None):
        if self.start_epoch is not None:
            self._keep_rows_before(self.start_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        if self._rows is None:  # the first epoch of this `fit`
            self._keep_rows_before(epoch)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        for name, value in (logs or {}).items():
            row[name] = repr(float(keras.ops.convert_to_numpy(value)))
        self._rows.append(row)
        self._write()

    def _write(self):
        names = sorted({name for row in self._rows for name in row} - {"epoch"})
        lines = [",".join(["epoch", *names])]
        for row in self._rows:
            values = [str(row["epoch"])]
            values += [row.get(name, "NA") for name in names]
            lines.append(",".join(values))
        atomic_write_text(self.path, "\n".join(lines) + "\n")


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
    rows = {row["epoch"]: row for row in _history_rows(path)}
    history = {}
    for epoch in sorted(rows):
        for name, value in rows[epoch].items():
            # `CSVLogger` writes "NA" for the `val_` columns of a fit
            # without validation data.
            if name != "epoch" and value not in ("", "NA", None):
                history.setdefault(name, []).append(float(value))
    return history


def distributed_checkpoint_dir(output_dir):
    """Where `fit_distributed_run` keeps a run's checkpoints."""
    return os.path.join(
        os.fspath(output_dir), CHECKPOINT_DIR, DISTRIBUTED_CHECKPOINT_DIR
    )


def backup_epoch(output_dir):
    """The epoch an interrupted run resumes at: its backup's, else 0.

    Args:
        output_dir: the run's directory.

    Returns:
        The number of epochs the backup in `<output_dir>/backup` finished.
    """
    path = os.path.join(os.fspath(output_dir), BACKUP_DIR, BACKUP_METADATA_FILE)
    if not os.path.isfile(path):
        return 0
    with open(path) as file:
        return int(json.load(file)["epoch"])


class _BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose backup is never half-written.

    Keras's writes `latest.weights.h5` in place, then the epoch in
    `training_metadata.json`: a kill in between leaves weights of one
    epoch labelled with the previous one. Here each epoch's weights go to
    a new `epoch_NNN.weights.h5` (atomically), then the metadata, naming
    that file, replaces the old one atomically (the commit point), then
    the older weights are deleted: the backup is the old one or the new
    one, whole. It also says why a backup cannot be restored.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch_{self._current_epoch:03d}.weights.h5"
        with atomic_path(os.path.join(self.backup_dir, name)) as temporary:
            self.model.save_weights(temporary)
        metadata = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "weights": name,
        }
        atomic_write_text(self._training_metadata_path, json.dumps(metadata))
        for old in os.listdir(self.backup_dir):
            if old.endswith(".weights.h5") and old != name:
                os.remove(os.path.join(self.backup_dir, old))

    def _load_model(self):
        if not os.path.isfile(self._training_metadata_path):
            return super()._load_model()  # no backup yet: nothing happens
        with open(self._training_metadata_path) as file:
            metadata = json.load(file)
        if "weights" not in metadata:  # written by Keras's own callback
            return super()._load_model()
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(
            os.path.join(self.backup_dir, metadata["weights"])
        )
        self.model._initial_epoch = metadata["epoch"]

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


def transformer_compile_arguments(
    d_model, warmup_steps=4000, label_smoothing=0.1
):
    """`model.compile` arguments of the paper's Transformer training.

    Call it under the strategy's scope (as `build_and_compile` does): the
    optimizer it makes creates variables.

    Args:
        d_model: int, the model width.
        warmup_steps: int, the learning-rate warm-up updates. Defaults to
            `4000`.
        label_smoothing: float, of the loss. Defaults to `0.1`.

    Returns:
        A dict: `optimizer` (`transformer_adam`), `loss` (a
        `MaskedSparseCategoricalCrossentropy` with `label_smoothing`) and
        `metrics` (`[MaskedTokenAccuracy()]`).
    """
    return {
        "optimizer": transformer_adam(d_model, warmup_steps),
        "loss": MaskedSparseCategoricalCrossentropy(
            label_smoothing=label_smoothing
        ),
        "metrics": [MaskedTokenAccuracy()],
    }


def cosine_decay_adam(learning_rate, decay_steps, final_fraction=0.05):
    """Adam whose learning rate decays along a cosine over `decay_steps`.

    Args:
        learning_rate: float, the initial learning rate.
        decay_steps: int (or a scalar tensor, such as a dataset's
            `cardinality()` times the epochs), the updates of the decay.
        final_fraction: float, the learning rate after `decay_steps` as a
            fraction of `learning_rate`. Defaults to `0.05`.

    Returns:
        A `keras.optimizers.Adam` with a
        `keras.optimizers.schedules.CosineDecay` learning rate.

    Example:

    >>> optimizer = cosine_decay_adam(1e-2, decay_steps=100)
    >>> round(float(optimizer.learning_rate), 6)  # before any update
    0.01
    """
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=decay_steps, alpha=final_fraction
    )
    return keras.optimizers.Adam(schedule)


def classifier_compile_arguments(learning_rate, jit_compile=False):
    """`model.compile` arguments of a classifier that outputs probabilities.

    Args:
        learning_rate: float, Adam's learning rate.
        jit_compile: bool. Defaults to `False`: batches of length buckets
            have many shapes, and XLA would compile each one.

    Returns:
        A dict: `optimizer` (`keras.optimizers.Adam`), `loss` (a
        `keras.losses.SparseCategoricalCrossentropy` of probabilities),
        `metrics` (`["accuracy"]`) and `jit_compile`.

    Example:

    >>> classifier_compile_arguments(1e-3)["metrics"]
    ['accuracy']
    """
    return {
        "optimizer": keras.optimizers.Adam(learning_rate),
        "loss": keras.losses.SparseCategoricalCrossentropy(),
        "metrics": ["accuracy"],
        "jit_compile": jit_compile,
    }


def language_model_compile_arguments(learning_rate):
    """`model.compile` arguments of a language model that outputs logits.

    Args:
        learning_rate: float, Adam's learning rate.

    Returns:
        A dict: `optimizer` (`keras.optimizers.Adam`) and `loss` (a
        `keras.losses.SparseCategoricalCrossentropy` of logits).

    Example:

    >>> language_model_compile_arguments(1e-3)["loss"].from_logits
    True
    """
    return {
        "optimizer": keras.optimizers.Adam(learning_rate),
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    }


def seq2seq_compile_arguments(
    learning_rate, decay_steps, final_fraction=0.05, jit_compile="auto"
):
    """`model.compile` arguments of an RNN seq2seq model with padding id 0.

    Args:
        learning_rate: float, the initial learning rate.
        decay_steps: int or scalar tensor, the updates of the cosine decay
            (see `cosine_decay_adam`).
        final_fraction: float, the final learning rate as a fraction of
            `learning_rate`. Defaults to `0.05`.
        jit_compile: `model.compile`'s. Defaults to `"auto"`.

    Returns:
        A dict: `optimizer` (`cosine_decay_adam`), `loss` (a
        `keras.losses.SparseCategoricalCrossentropy` of logits that
        ignores the padding id `0`) and `jit_compile`.

    Example:

    >>> arguments = seq2seq_compile_arguments(1e-2, decay_steps=100)
    >>> arguments["loss"].ignore_class
    0
    """
    return {
        "optimizer": cosine_decay_adam(
            learning_rate, decay_steps, final_fraction
        ),
        "loss": keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=0
        ),
        "jit_compile": jit_compile,
    }


def build_and_compile(build, compile_arguments, strategy=None):
    """Build a model and compile it, both under `strategy.scope()`.

    Everything that creates variables (the model's weights, the
    optimizer's, the metrics') must be created under the scope of the
    strategy that trains them, so the optimizer, loss and metrics come
    from a function called there too.

    Args:
        build: a function of no arguments returning a `keras.Model`.
        compile_arguments: a function of no arguments returning the
            keyword arguments of `model.compile` (e.g.
            `transformer_compile_arguments` with its arguments bound).
        strategy: a `tf.distribute.Strategy`. Defaults to the current one.

    Returns:
        The compiled model.

    Example:

    >>> def build():
    ...     return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model = build_and_compile(
    ...     build, lambda: {"optimizer": "sgd", "loss": "mse"}
    ... )
    >>> model.loss
    'mse'
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build()
        model.compile(**compile_arguments())
    return model


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


class PerplexityPrinter(keras.callbacks.Callback):
    """Prints the held-out loss and perplexity after every epoch.

    The perplexity is `exp(val_loss)`: per token when the loss is a mean
    cross-entropy over tokens, as a language model's is.

    Example:

    >>> PerplexityPrinter().on_epoch_end(0, {"val_loss": 0.0})
    epoch 1: held-out loss 0.0000, perplexity 1.00 per token
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {})["val_loss"]
        print(
            f"epoch {epoch + 1}: held-out loss {loss:.4f}, perplexity "
            f"{math.exp(loss):.2f} per token"
        )


class NonFiniteLossError(ValueError):
    """Training stopped: the loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` at the first step whose loss is NaN or infinite.

    It raises `NonFiniteLossError` naming the epoch, the step in the epoch
    and the optimizer step, and, when `checkpoint_dir` is given, the last
    good checkpoint there. The epoch that diverged is never saved: the
    checkpoints and the `BackupAndRestore` backup keep the weights of the
    last finished epoch. (Keras's `TerminateOnNaN` stops quietly.) A
    `ValueError`, so the recipes print it as `error: ...` and exit 2.

    Args:
        checkpoint_dir: optional directory of the run's epoch checkpoints.

    Example:

    >>> callback = StopOnNonFiniteLoss()
    >>> callback.on_epoch_begin(0)
    >>> try:
    ...     callback.on_train_batch_end(3, {"loss": float("nan")})
    ... except NonFiniteLossError as error:
    ...     print(str(error).split(" of the epoch")[0])
    The training loss became nan at epoch 1, step 4
    """

    def __init__(self, checkpoint_dir=None):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(keras.ops.convert_to_numpy(loss))
        if math.isfinite(loss):
            return
        iterations = None
        if self.model is not None and getattr(self.model, "optimizer", None):
            iterations = int(
                keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            )
        where = f"epoch {self._epoch + 1}, step {batch + 1} of the epoch"
        if iterations is not None:
            where += f" (optimizer step {iterations})"
        raise NonFiniteLossError(
            f"The training loss became {loss} at {where}; training stopped "
            f"before saving this epoch. {self._last_good()}Lower the "
            "learning rate, check the data for bad values, or use a "
            "mixed-precision loss scale."
        )

    def _last_good(self):
        if not self.checkpoint_dir or not os.path.isdir(self.checkpoint_dir):
            return ""
        saved = sorted(
            name
            for name in os.listdir(self.checkpoint_dir)
            if name.endswith(".weights.h5")
        )
        saved = [name for name in saved if not is_temporary(name)]
        if not saved:
            return "No epoch had finished. "
        last = os.path.join(self.checkpoint_dir, saved[-1])
        return f"The last good weights are in {last}. "


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the weights after every epoch, atomically.

    `<directory>/epoch_{epoch:03d}.weights.h5` (1-based, as
    `keras.callbacks.ModelCheckpoint` numbers them), written under a
    temporary name and renamed (see `keras_attention.files`), so that a
    killed run leaves no half-written checkpoint.

    Args:
        directory: the checkpoint directory (created if needed).
        monitor: the quantity of `save_best_only`. Defaults to
            `"val_loss"`.
        save_best_only: bool, whether to save only the epochs whose
            `monitor` is the lowest so far. Defaults to `False`.
    """

    def __init__(self, directory, monitor="val_loss", save_best_only=False):
        super().__init__()
        self.directory = os.fspath(directory)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self._best = math.inf

    def path(self, epoch):
        """The checkpoint file of the 0-based `epoch`."""
        return os.path.join(self.directory, f"epoch_{epoch + 1:03d}.weights.h5")

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            value = (logs or {}).get(self.monitor)
            if value is None or not float(value) < self._best:
                return
            self._best = float(value)
        os.makedirs(self.directory, exist_ok=True)
        with atomic_path(self.path(epoch)) as temporary:
            self.model.save_weights(temporary)


def read_stopping_state(output_dir):
    """The stopping rule's `stopping.json` in `output_dir`, or `None`."""
    path = os.path.join(os.fspath(output_dir), STOPPING_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        return json.load(file)


class StoppingRule(keras.callbacks.Callback):
    """Early stopping and a time budget whose state survives a resume.

    After every epoch it records the epoch's `monitor` value and seconds
    in `<output_dir>/stopping.json` (atomically), and stops training
    (`model.stop_training`) once `patience` epochs in a row did not
    improve on the best value, or once the training time of the whole
    run (every resume counted) exceeds `time_budget` minutes. With
    `patience`, the best epoch's weights are written to
    `<output_dir>/best.weights.h5` and, when training ends, loaded into
    the model from that epoch's checkpoint (so that they are what gets
    saved and exported).

    A resumed run keeps the records of the epochs before `start_epoch`
    (the backup's) and drops the others: an epoch that a killed run
    recorded but did not back up is trained and recorded again. The time
    an epoch cut short by a kill took is not counted.

    Args:
        output_dir: the run's directory (its `checkpoints/` hold the
            weights of every epoch, see `EpochCheckpoint`).
        patience: optional int, epochs without improvement before
            stopping. Defaults to `None` (no early stopping).
        time_budget: optional float, minutes of training. Defaults to
            `None` (no limit).
        monitor: the log key to improve. Defaults to `"val_loss"`.
        mode: `"min"` or `"max"`, whether a lower or a higher `monitor`
            is better. Defaults to `"min"`.
        start_epoch: int, the first epoch this `fit` trains. Defaults
            to `0`.
        state_dir: where `record` writes `stopping.json`. Defaults to
            `output_dir`; a multi-worker run's
            other workers read the chief's records and write their own
            copy to their scratch directory.

    Example:

    >>> import tempfile
    >>> rule = StoppingRule(tempfile.mkdtemp(), patience=2)
    >>> for epoch, value in enumerate([3.0, 2.0, 2.5, 2.1]):
    ...     rule.record(epoch, value, seconds=1.0)
    >>> rule.best_epoch, rule.wait, rule.stop_reason()
    (1, 2, 'no improvement of val_loss for 2 epochs')
    """

    def __init__(
        self,
        output_dir,
        patience=None,
        time_budget=None,
        monitor="val_loss",
        mode="min",
        start_epoch=0,
        state_dir=None,
    ):
        super().__init__()
        for name, value in (
            ("patience", patience),
            ("time_budget", time_budget),
        ):
            if value is not None and not value > 0:
                raise ValueError(
                    f"`{name}` must be positive or None. "
                    f"Received: {name}={value!r}"
                )
        if mode not in STOPPING_MODES:
            raise ValueError(
                f"`mode` must be one of {STOPPING_MODES}. "
                f"Received: mode={mode!r}"
            )
        self.output_dir = os.fspath(output_dir)
        self.state_dir = os.fspath(state_dir or output_dir)
        self.patience = patience
        self.time_budget = time_budget
        self.monitor = monitor
        self.mode = mode
        self.records = [
            record
            for record in self._saved_records()
            if record["epoch"] < start_epoch
        ]
        self._clock = None

    @property
    def state_path(self):
        return os.path.join(self.state_dir, STOPPING_FILE)

    def _saved_records(self):
        state = read_stopping_state(self.output_dir)
        return state["records"] if state else []

    def _better(self, value, best):
        return value < best if self.mode == "min" else value > best

    @property
    def best_epoch(self):
        """The 0-based epoch of the best `monitor` value, or `None`."""
        best = None
        for record in self.records:
            value = record["value"]
            if value is not None and (
                best is None or self._better(value, best["value"])
            ):
                best = record
        return None if best is None else best["epoch"]

    @property
    def wait(self):
        """Epochs recorded since the best one."""
        best = self.best_epoch
        if best is None:
            return len(self.records)
        return sum(record["epoch"] > best for record in self.records)

    @property
    def elapsed_seconds(self):
        """The recorded training seconds of the whole run."""
        return sum(record["seconds"] for record in self.records)

    def stop_reason(self):
        """Why training should stop after the recorded epochs, or `None`."""
        if self.patience is not None and self.wait >= self.patience:
            return f"no improvement of {self.monitor} for {self.wait} epochs"
        budget = self.time_budget
        if budget is not None and self.elapsed_seconds > budget * 60:
            return (
                f"the time budget of {budget:g} minutes is spent "
                f"({self.elapsed_seconds / SECONDS_PER_MINUTE:.1f} minutes)"
            )
        return None

    def record(self, epoch, value, seconds):
        """Record an epoch's `monitor` value and duration; save them all.

        The records of `epoch` and later epochs (of a run that was cut
        short) are replaced.
        """
        self.records = [r for r in self.records if r["epoch"] < epoch]
        self.records.append(
            {"epoch": epoch, "value": value, "seconds": seconds}
        )
        state = {
            "monitor": self.monitor,
            "mode": self.mode,
            "patience": self.patience,
            "time_budget_minutes": self.time_budget,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "elapsed_seconds": self.elapsed_seconds,
            "stop_reason": self.stop_reason(),
            "records": self.records,
        }
        os.makedirs(self.state_dir, exist_ok=True)
        atomic_write_text(self.state_path, json.dumps(state, indent=1))

    def on_train_begin(self, logs=None):
        self._clock = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None and self.patience is not None:
            raise ValueError(
                f"Early stopping watches {self.monitor!r}, which the epoch's "
                f"logs lack. Received: logs with {sorted(logs)}"
            )
        now = time.monotonic()
        seconds, self._clock = now - self._clock, now
        self.record(epoch, None if value is None else float(value), seconds)
        if self.patience is not None and self.best_epoch == epoch:
            with atomic_path(
                os.path.join(self.output_dir, BEST_WEIGHTS_FILE)
            ) as temporary:
                self.model.save_weights(temporary)
        reason = self.stop_reason()
        if reason:
            print(f"Stopping after epoch {epoch + 1}: {reason}.")
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        best = self.best_epoch
        if self.patience is None or best is None:
            return
        checkpoint = EpochCheckpoint(
            os.path.join(self.output_dir, CHECKPOINT_DIR)
        ).path(best)
        self.model.load_weights(checkpoint)
        with atomic_path(
            os.path.join(self.output_dir, BEST_WEIGHTS_FILE)
        ) as temporary:
            self.model.save_weights(temporary)
        (value,) = [r["value"] for r in self.records if r["epoch"] == best]
        print(
            f"Kept the weights of epoch {best + 1}, the best "
            f"({self.monitor} {value:.4f})."
        )


def training_callbacks(
    output_dir,
    monitor="val_loss",
    tensorboard=None,
    save_best_only=False,
    keep_backup=False,
):
    """Callbacks that make a `fit` resumable and logged.

    - `EpochCheckpoint` writing
      `<output_dir>/checkpoints/epoch_{epoch:03d}.weights.h5` after every
      epoch (or only when `monitor` improves, with `save_best_only`).
    - `StopOnNonFiniteLoss`: a NaN or infinite loss stops the run with an
      error naming the step and the last good checkpoint.
    - `keras.callbacks.TensorBoard` logs under `<output_dir>/logs`
      (`tensorboard --logdir <output_dir>/logs`). They need the
      `tensorboard` package, which TensorFlow 2.21 does not install.
    - Last, `keras.callbacks.BackupAndRestore` under `<output_dir>/backup`:
      if a run is killed, calling `fit` again with the same callbacks
      restores the weights, the optimizer state and the epoch counter, and
      training continues after the last finished epoch. The backup is
      deleted when `fit` completes, unless `keep_backup` (then a `fit`
      called again trains no epoch twice; delete it when the run's work
      after training is done, as `cli.Run.finish` does). It comes last
      because its backup is the commit point of an epoch: whatever the
      callbacks before it wrote for that epoch (checkpoint, history) is
      complete when the backup says the epoch is done. Every file is
      written atomically (see `keras_attention.files`).

    Args:
        output_dir: the run's directory (created if needed).
        monitor: the quantity of `save_best_only`. Defaults to
            `"val_loss"`.
        tensorboard: bool, whether to write TensorBoard logs; `True` fails
            without the `tensorboard` package. Defaults to `None`: write
            them when `tensorboard` is installed, else log a warning.
        save_best_only: bool, passed to `EpochCheckpoint`. Defaults to
            `False`.
        keep_backup: bool, whether the backup outlives a completed `fit`.
            Defaults to `False`.

    Returns:
        A list of callbacks; `BackupAndRestore` comes last.
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
        EpochCheckpoint(checkpoint_dir, monitor, save_best_only),
        StopOnNonFiniteLoss(checkpoint_dir),
    ]
    if tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                os.path.join(output_dir, TENSORBOARD_DIR)
            )
        )
    callbacks.append(
        _BackupAndRestore(
            os.path.join(output_dir, BACKUP_DIR),
            delete_checkpoint=not keep_backup,
        )
    )
    return callbacks


def _replay_shuffles(data, epochs):
    """Advance a `tf.data.Dataset`'s reshuffling by `epochs` epochs.

    A seeded `shuffle(..., reshuffle_each_iteration=True)` draws the next
    order each time an iterator is created: a resumed process would train
    its first epoch in the order of epoch 0. Creating (and dropping) the
    iterators of the finished epochs restores the order an uninterrupted run
    would see, so that a resumed run repeats it exactly. Keras 3.x's `fit`
    creates `FIT_ITERATORS_PER_EPOCH` iterators of the training data per
    epoch (measured; `tests/test_training.py` checks the result).
    """
    if isinstance(data, tf.data.Dataset):
        for _ in range(epochs * FIT_ITERATORS_PER_EPOCH):
            iterator = iter(data)
            del iterator


def fit_run(
    model,
    data,
    output_dir,
    epochs,
    callbacks=(),
    patience=None,
    time_budget=None,
    monitor="val_loss",
    mode="min",
    keep_backup=False,
    **fit_kwargs,
):
    """`model.fit` in a run directory; returns the whole run's history.

    The callbacks are `callbacks` (first, so that metrics they add reach
    the log), a `HistoryLogger` of `<output_dir>/history.csv`, the
    stopping rule (`StoppingRule`, with `patience` or `time_budget`), then
    `training_callbacks(output_dir)`: an interrupted run resumes when
    called again, with the data in the order an uninterrupted run would
    see (a seeded `tf.data` reshuffling is replayed up to the resumed
    epoch; not with `steps_per_epoch`, whose repeated data restart from
    the beginning). A resumed run whose stopping rule had already stopped
    it (killed before it ended) trains no further epoch. Progress is
    printed once per epoch when the `CI` environment variable is set.

    Args:
        model: a compiled `keras.Model`.
        data: the training data, e.g. a `tf.data.Dataset` that reshuffles
            itself every epoch (`fit` does not shuffle it again).
        output_dir: the run's directory (see `start_run`).
        epochs: int, the number of epochs of the whole run.
        callbacks: extra Keras callbacks. Defaults to `()`.
        patience: optional int, early stopping's patience (see
            `StoppingRule`): the best epoch's weights end in the model.
            Defaults to `None`.
        time_budget: optional float, minutes of training of the whole run.
            Defaults to `None`.
        monitor: what early stopping improves, a key of the epoch logs.
            Defaults to `"val_loss"`.
        mode: `"min"` or `"max"`. Defaults to `"min"`.
        keep_backup: bool, whether the backup outlives the completed
            `fit` (see `training_callbacks`): a run killed after training
            (while exporting, say) then trains no epoch again when called
            again. Defaults to `False`.
        **fit_kwargs: further `model.fit` arguments (`validation_data`,
            `steps_per_epoch`, ...).

    Returns:
        A dict of metric name to its per-epoch values (see
        `read_history`), including the epochs of an interrupted run that
        this call resumed.
    """
    output_dir = os.fspath(output_dir)
    history_path = os.path.join(output_dir, HISTORY_FILE)
    fit_kwargs.setdefault("verbose", 2 if os.environ.get("CI") else "auto")
    start = backup_epoch(output_dir)
    if start and fit_kwargs.get("steps_per_epoch") is None:
        _replay_shuffles(data, start)
    run_callbacks = [*callbacks, HistoryLogger(history_path, start)]
    if patience is not None or time_budget is not None:
        rule = StoppingRule(
            output_dir, patience, time_budget, monitor, mode, start
        )
        if rule.stop_reason():  # killed after it stopped, before the end
            epochs = min(epochs, start)
        run_callbacks.append(rule)
    model.fit(
        data,
        epochs=epochs,
        shuffle=False,
        callbacks=[
            *run_callbacks,
            *training_callbacks(output_dir, keep_backup=keep_backup),
        ],
        **fit_kwargs,
    )
    return read_history(history_path)


def tf_config(workers, index, task_type="worker"):
    """The `TF_CONFIG` JSON string of one worker of a cluster.

    Args:
        workers: list of `"host:port"` addresses, one per worker, the same
            list (same order) on every worker.
        index: int, this worker's position in `workers`; worker 0 is the
            chief (it writes checkpoints and exports).
        task_type: `"worker"`. Defaults to `"worker"`.

    Returns:
        The JSON to put in the `TF_CONFIG` environment variable before
        `tf.distribute.MultiWorkerMirroredStrategy()` is created.

    Example:

    >>> config = tf_config(["10.0.0.1:12345", "10.0.0.2:12345"], 1)
    >>> json.loads(config)["task"]
    {'type': 'worker', 'index': 1}
    """
    workers = list(workers)
    if not workers or not all(isinstance(a, str) and ":" in a for a in workers):
        raise ValueError(
            "`workers` must be a non-empty list of 'host:port' strings. "
            f"Received: workers={workers!r}"
        )
    if not isinstance(index, int) or not 0 <= index < len(workers):
        raise ValueError(
            f"`index` must be an int in [0, {len(workers)}). "
            f"Received: index={index!r}"
        )
    return json.dumps(
        {
            "cluster": {task_type: workers},
            "task": {"type": task_type, "index": index},
        }
    )


def local_cluster(num_workers, host="127.0.0.1"):
    """`num_workers` addresses on this machine, each on a free port.

    The ports are free when chosen; a process may take one before the
    workers bind it (rare; rerun). For tests and trying things out.
    """
    sockets = []
    try:
        for _ in range(num_workers):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [f"{host}:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _task(config=None):
    config = config if config is not None else os.environ.get("TF_CONFIG")
    if not config:
        return None, None, {}
    config = json.loads(config) if isinstance(config, str) else config
    task = config.get("task", {})
    return task.get("type"), task.get("index", 0), config.get("cluster", {})


def is_chief(config=None):
    """Whether this process is the chief of its `TF_CONFIG` cluster.

    The chief is the `"chief"` task when the cluster has one, else worker
    0; a process without `TF_CONFIG` (one machine) is its own chief.

    Args:
        config: a `TF_CONFIG` string or dict. Defaults to the
            environment's.
    """
    task_type, index, cluster = _task(config)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and "chief" not in cluster


def worker_output_dir(output_dir, config=None):
    """Where this worker writes: `output_dir` for the chief, else scratch.

    Every worker must run the same saving code (an export traces the
    model's functions, which may read distributed variables), but only
    the chief's copy is kept: the others write under
    `<output_dir>/.workers/<type>_<index>`, which they remove with
    `remove_worker_output_dir` when done.
    """
    output_dir = os.fspath(output_dir)
    if is_chief(config):
        return output_dir
    task_type, index, _ = _task(config)
    return os.path.join(output_dir, WORKERS_DIR, f"{task_type}_{index}")


def remove_worker_output_dir(output_dir, config=None):
    """Delete a non-chief worker's scratch directory (no-op on the chief)."""
    if not is_chief(config):
        scratch = worker_output_dir(output_dir, config)
        shutil.rmtree(scratch, ignore_errors=True)
        try:  # `.workers` itself, once the last worker's copy is gone
            os.rmdir(os.path.dirname(scratch))
        except OSError:
            pass


def launch_workers(command, workers, env=None, timeout=None):
    """Run `command` once per worker, each with its `TF_CONFIG`; wait.

    For one machine (tests, a quick try): on a real cluster start the
    same command on each host with that host's `TF_CONFIG` instead.

    Args:
        command: list of program arguments (e.g. `[sys.executable, "-m",
            "my_trainer"]`), the same for every worker.
        workers: the `"host:port"` addresses (see `local_cluster`).
        env: optional base environment. Defaults to `os.environ`.
        timeout: optional seconds to wait for every worker.

    Returns:
        A list of `subprocess.CompletedProcess`-like tuples
        `(returncode, output)`, one per worker, in order.
    """
    processes = []
    for index in range(len(workers)):
        worker_env = dict(os.environ if env is None else env)
        worker_env["TF_CONFIG"] = tf_config(workers, index)
        processes.append(
            subprocess.Popen(
                list(command),
                env=worker_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    results = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=timeout)
            results.append((process.returncode, output))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def fit_distributed(
    model, data, epochs, strategy=None, initial_epoch=0, on_epoch_end=None
):
    """Train `model` on `data` with a `tf.distribute` loop; return losses.

    Keras 3's `model.fit` cannot run under `MultiWorkerMirroredStrategy`
    (keras-team/keras#20585: the distributed batches reach it as
    `PerReplica` values it cannot convert). This loop does what `fit` would:
    each replica computes the mean loss of its part of the batch divided
    by the number of replicas (a reduced `keras.losses.Loss` divides by
    itself, with its own masks; a loss without reduction is averaged
    here), and the gradients are
    all-reduced (summed) by the optimizer, so every worker applies the
    global-batch mean gradient (exactly when the replicas' parts have the
    same size).

    Args:
        model: a `keras.Model` built and compiled (optimizer and loss)
            under `strategy.scope()`.
        data: a `tf.data.Dataset` of `(inputs, labels)` batches of the
            global batch size; its sharding policy is the dataset's.
        epochs: int, the epochs of the whole run.
        strategy: the strategy. Defaults to the current one.
        initial_epoch: int, the first epoch to train (a resumed run's).
            Defaults to `0`.
        on_epoch_end: optional function of `(epoch, mean_loss)` called
            after every epoch, on every worker (saving a checkpoint there
            is collective); a true result stops training, and must be the
            same on every worker. Defaults to `None`.

    Returns:
        The list of the trained epochs' mean training losses (the same on
        every worker).
    """
    strategy = strategy or tf.distribute.get_strategy()
    distributed = strategy.experimental_distribute_dataset(data)

    def replica_step(inputs, labels):
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            loss = _replica_loss(model.loss, labels, predictions, strategy)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(
            zip(gradients, model.trainable_variables)
        )
        return loss

    @tf.function
    def step(batch):
        losses = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    history = []
    for epoch in range(initial_epoch, epochs):
        history.append(_mean_over_batches(step, distributed))
        if on_epoch_end is not None and on_epoch_end(epoch, history[-1]):
            break
    return history


def _mean_over_batches(step, batches):
    """The mean of `float(step(batch))` over `batches` (0.0 if none)."""
    total, steps = 0.0, 0
    for batch in batches:
        total += float(step(batch))
        steps += 1
    return total / max(steps, 1)


def _replica_loss(loss_fn, labels, predictions, strategy):
    """This replica's share of the global-batch mean loss."""
    value = loss_fn(labels, predictions)
    if value.shape.rank:  # unreduced: (local batch, ...)
        value = tf.reduce_mean(value) / strategy.num_replicas_in_sync
    # A reduced Keras loss is scaled by 1 / replicas already
    # (`keras.losses.Loss` does it under `tf.distribute`).
    return value


def distributed_evaluator(model, strategy=None):
    """A function of a dataset: `model`'s mean loss on it, on every worker.

    The distributed counterpart of `model.evaluate(...)`'s loss: each
    replica computes its share of every global batch, the shares are
    summed across workers, and the batches' losses averaged, so every
    worker gets the same number (what a stopping rule needs, for all
    workers to stop together). Every global batch weighs the same, where
    `model.evaluate` weighs a batch by its size: batch the validation data
    with `drop_remainder=True` (or into equal batches) for the two to
    agree.

    Args:
        model: a compiled `keras.Model` (its `loss`), built under
            `strategy.scope()`.
        strategy: the strategy. Defaults to the current one.
    """
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(inputs, labels):
        predictions = model(inputs, training=False)
        return _replica_loss(model.loss, labels, predictions, strategy)

    @tf.function
    def step(batch):
        losses = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def evaluate(data):
        distributed = strategy.experimental_distribute_dataset(data)
        return _mean_over_batches(step, distributed)

    return evaluate


def _largest_over_workers(strategy):
    """A function of a float: its largest value over every worker."""

    @tf.function
    def largest(value):
        # ReduceOp has no MAX: gather every worker's value, take the max.
        values = strategy.run(lambda v: v[None], args=(value,))
        return tf.reduce_max(strategy.gather(values, axis=0))

    return lambda value: float(largest(tf.constant(value, tf.float32)))


def fit_distributed_run(
    model,
    data,
    output_dir,
    epochs,
    strategy=None,
    validation_data=None,
    patience=None,
    time_budget=None,
):
    """`fit_distributed` in a run directory: resumable, chief-only files.

    Every worker saves a `tf.train.CheckpointManager` checkpoint (the
    weights, the optimizer and the epoch) after every epoch, the chief
    under `<output_dir>/checkpoints/distributed`, the others in their
    scratch directory (`worker_output_dir`: the save is collective). A
    killed run resumes from the chief's latest checkpoint, read by every
    worker (on a real cluster `output_dir` must be on storage that every
    host reads). The chief writes `history.csv` (the training loss, and
    `val_loss` with `validation_data`; the loop runs no Keras callbacks).

    The stopping rule is `StoppingRule`'s (`stopping.json`, the best
    weights kept), on `val_loss` with `validation_data`, else `loss`.
    Every worker must stop after the same epoch, or the next collective
    would hang: the validation loss is reduced over the workers
    (`distributed_evaluator`), and each epoch's seconds are the slowest
    worker's, so every worker records the same values and decides alike.

    Args:
        model: a `keras.Model` built and compiled under `strategy.scope()`.
        data: the training `tf.data.Dataset` (see `fit_distributed`).
        output_dir: the run's directory (the chief's).
        epochs: int, the epochs of the whole run.
        strategy: the strategy. Defaults to the current one.
        validation_data: optional `tf.data.Dataset` of `(inputs, labels)`
            global batches, evaluated after every epoch. Defaults to
            `None`.
        patience: optional int, early stopping's patience: the best
            epoch's weights end in the model. Defaults to `None`.
        time_budget: optional float, minutes of training of the whole run
            (every resume counted). Defaults to `None`.

    Returns:
        A dict of metric name to its per-epoch values: on the chief the
        whole run's (`read_history`), elsewhere this call's losses.
    """
    strategy = strategy or tf.distribute.get_strategy()
    output_dir = os.fspath(output_dir)
    largest = _largest_over_workers(strategy)
    best_weights = []
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        if patience is not None:
            best_weights = [
                tf.Variable(tf.zeros(w.shape, w.dtype), trainable=False)
                for w in model.weights
            ]
    # The best epoch's weights are saved with the epoch they belong to.
    best = {"best": best_weights} if best_weights else {}
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=model.optimizer, epoch=epoch, **best
    )
    manager = tf.train.CheckpointManager(
        checkpoint,
        distributed_checkpoint_dir(worker_output_dir(output_dir)),
        max_to_keep=2,
    )
    latest = tf.train.latest_checkpoint(distributed_checkpoint_dir(output_dir))
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    start = int(epoch.numpy())
    earliest, latest_start = -largest(-start), largest(start)
    if earliest != latest_start:
        raise ValueError(
            f"The workers resume {output_dir!r} at different epochs (from "
            f"{earliest:g} to {latest_start:g}): every worker "
            "must read the chief's checkpoints (shared storage), and a "
            "restart must delete them before any worker starts."
        )
    logger = HistoryLogger(os.path.join(output_dir, HISTORY_FILE), start)
    if is_chief():
        os.makedirs(output_dir, exist_ok=True)
        logger.on_train_begin()
    evaluate = None
    if validation_data is not None:
        evaluate = distributed_evaluator(model, strategy)
    stopping = None
    if patience is not None or time_budget is not None:
        monitor = "val_loss" if validation_data is not None else "loss"
        rule = StoppingRule(
            output_dir,
            patience,
            time_budget,
            monitor,
            start_epoch=start,
            state_dir=worker_output_dir(output_dir),
        )
        stopping = _DistributedStopping(model, rule, best_weights, largest)
        if stopping.together(rule.stop_reason()):
            epochs = min(epochs, start)  # killed after it stopped

    def end_epoch(index, loss):
        logs = {"loss": loss}
        if evaluate is not None:
            logs["val_loss"] = evaluate(validation_data)
        if is_chief():
            logger.on_epoch_begin(index)
            logger.on_epoch_end(index, logs)
        stop = stopping is not None and stopping.after_epoch(index, logs)
        epoch.assign(index + 1)
        manager.save()  # the epoch's commit point, after its records
        shown = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
        print(f"epoch {index + 1}/{epochs}: {shown}")
        return stop

    losses = fit_distributed(model, data, epochs, strategy, start, end_epoch)
    if stopping is not None:
        stopping.restore_best()
    if is_chief():
        return read_history(logger.path)
    return {"loss": losses}


class _DistributedStopping:
    """`StoppingRule`'s records and decisions inside `fit_distributed_run`.

    Every decision is taken together (any worker's stop stops all), and the
    best epoch's weights live in variables saved in the run's checkpoint,
    so that they are committed with their epoch: a run killed between an
    epoch's records and its checkpoint resumes with the best weights of
    the epochs it kept.

    Args:
        model: the model being trained.
        rule: its `StoppingRule`, holding the records of the epochs
            before this call.
        best_weights: variables of `model.weights`' shapes (with
            patience), saved in the run's checkpoint; else `[]`.
        largest: `_largest_over_workers(strategy)`.
    """

    def __init__(self, model, rule, best_weights, largest):
        self.model, self.rule = model, rule
        self.best_weights, self.largest = best_weights, largest
        self.clock = time.monotonic()

    def together(self, flag):
        """Whether `flag` holds on any worker (every worker gets the same)."""
        return self.largest(float(bool(flag))) > 0

    def after_epoch(self, index, logs):
        """Record the epoch; whether every worker stops now."""
        now = time.monotonic()
        seconds, self.clock = self.largest(now - self.clock), now
        self.rule.record(index, logs[self.rule.monitor], seconds)
        if self.best_weights and self.rule.best_epoch == index:
            for best, weight in zip(self.best_weights, self.model.weights):
                best.assign(weight.value)
        reason = self.rule.stop_reason()
        if self.together(reason):
            reason = reason or "another worker stopped"
            print(f"Stopping after epoch {index + 1}: {reason}.")
            return True
        return False

    def restore_best(self):
        """Load the best epoch's weights (early stopping only); the chief
        saves them as `best.weights.h5`."""
        rule = self.rule
        if not self.best_weights or rule.best_epoch is None:
            return
        for weight, best in zip(self.model.weights, self.best_weights):
            weight.assign(best.value())
        if is_chief():
            path = os.path.join(rule.output_dir, BEST_WEIGHTS_FILE)
            with atomic_path(path) as temporary:
                self.model.save_weights(temporary)
        print(f"Kept the weights of epoch {rule.best_epoch + 1}, the best.")
