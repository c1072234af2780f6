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

import keras
import tensorflow as tf

from keras_attention.losses import MaskedSparseCategoricalCrossentropy
from keras_attention.metrics import MaskedTokenAccuracy
from keras_attention.schedules import TransformerSchedule

__all__ = [
    "BACKUP_DIR",
    "CHECKPOINT_DIR",
    "HISTORY_FILE",
    "STRATEGIES",
    "TENSORBOARD_DIR",
    "TRANSFORMER_PRESETS",
    "TransformerPreset",
    "WORKERS_DIR",
    "build_and_compile",
    "NonFiniteLossError",
    "StopOnNonFiniteLoss",
    "cosine_decay_adam",
    "fit_distributed",
    "fit_run",
    "is_chief",
    "launch_workers",
    "local_cluster",
    "remove_worker_output_dir",
    "tf_config",
    "worker_output_dir",
    "make_distribution_strategy",
    "read_history",
    "start_run",
    "tensorboard_available",
    "training_callbacks",
    "transformer_adam",
    "transformer_compile_arguments",
]

STRATEGIES = ("default", "mirrored", "multi_worker")
BACKUP_DIR = "backup"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "logs"
HISTORY_FILE = "history.csv"  # a `keras.callbacks.CSVLogger(append=True)`
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
        if not saved:
            return "No epoch had finished. "
        last = os.path.join(self.checkpoint_dir, saved[-1])
        return f"The last good weights are in {last}. "


def training_callbacks(
    output_dir, monitor="val_loss", tensorboard=None, save_best_only=False
):
    """Callbacks that make a `fit` resumable and logged.

    - `keras.callbacks.BackupAndRestore` under `<output_dir>/backup`: if a
      run is killed, calling `fit` again with the same callbacks restores
      the weights, the optimizer state and the epoch counter, and training
      continues after the last finished epoch. The backup is deleted when
      `fit` completes.
    - `StopOnNonFiniteLoss`: a NaN or infinite loss stops the run with an
      error naming the step and the last good checkpoint.
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
        StopOnNonFiniteLoss(checkpoint_dir),
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


def fit_distributed(model, data, epochs, strategy=None):
    """Train `model` on `data` with a `tf.distribute` loop; return losses.

    Keras 3's `model.fit` cannot run under `MultiWorkerMirroredStrategy`
    (keras-team/keras#20585: the distributed batches reach it as
    `PerReplica` values it cannot convert). This loop does what `fit` would:
    each replica computes its batch's loss summed over examples and divided
    by the global batch size, the gradients are all-reduced (summed) by the
    optimizer, so every worker applies the global-batch mean gradient.

    Args:
        model: a `keras.Model` built and compiled (optimizer and loss)
            under `strategy.scope()`.
        data: a `tf.data.Dataset` of `(inputs, labels)` batches of the
            global batch size; its sharding policy is the dataset's.
        epochs: int, the passes over `data`.
        strategy: the strategy. Defaults to the current one.

    Returns:
        The list of per-epoch mean training losses (the same on every
        worker).
    """
    strategy = strategy or tf.distribute.get_strategy()
    distributed = strategy.experimental_distribute_dataset(data)
    loss_fn = model.loss

    def replica_step(inputs, labels):
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            per_example = loss_fn(labels, predictions)  # (local batch,)
            global_batch = tf.cast(
                tf.shape(labels)[0] * strategy.num_replicas_in_sync,
                per_example.dtype,
            )
            loss = tf.reduce_sum(per_example) / global_batch
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
    for _ in range(epochs):
        total, steps = 0.0, 0
        for batch in distributed:
            total += float(step(batch))
            steps += 1
        history.append(total / max(steps, 1))
    return history
