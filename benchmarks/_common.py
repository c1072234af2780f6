"""Shared helpers for the benchmark scripts: timing, tables, JSON, workers."""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")


def machine_description():
    """A short description of the machine the numbers come from."""
    import tensorflow as tf

    from keras_attention.ops.attention.tensorflow_kernels import _onednn_enabled

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "avx512": "avx512f" in _cpu_flags(),
        # TensorFlow's CPU kernels: oneDNN (on by default on CPUs with
        # AVX-512) or its stock Eigen ones; the speed of short matmuls,
        # and so several crossovers, differ between them.
        "onednn": _onednn_enabled(),
        "tensorflow": tf.__version__,
        "gpus": [gpu.name for gpu in gpus],
    }


def _cpuinfo_field(name):
    """The first `name : value` of /proc/cpuinfo ('' where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ""


def _cpu_model():
    return _cpuinfo_field("model name") or platform.processor()


def _cpu_flags():
    return set(_cpuinfo_field("flags").split())


def add_attention_shape_arguments(parser):
    """`--lengths --heads --depth --batch --repeats` of an attention run."""
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[1024, 2048, 4096]
    )
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)


def interleaved_times(steps, repeats, warmup=1):
    """Wall times of each of `steps` (a dict of callables), round by round.

    The steps run in turn, round after round, so that a slow spell of a
    shared machine hits all of them alike: the i-th times of two steps were
    taken side by side, and their ratio is fair even when the machine's
    speed drifts between rounds.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def interleaved_median_times(steps, repeats, warmup=1):
    """Median wall time of each of `steps`, timed by `interleaved_times`."""
    times = interleaved_times(steps, repeats, warmup)
    return {name: statistics.median(t) for name, t in times.items()}


def round_ratio_quartiles(numerators, denominators):
    """25th and 75th percentiles of the per-round ratios of two time lists.

    How much a ratio of medians can be trusted: the spread of the ratios of
    times taken side by side, round by round.
    """
    ratios = [a / b for a, b in zip(numerators, denominators)]
    if len(ratios) < 2:
        return ratios[0], ratios[0]
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return q1, q3


def print_table(rows, columns):
    """Print `rows` (a list of dicts) as an aligned text table."""
    cells = [[_format(row.get(col)) for col in columns] for row in rows]
    widths = [
        max(len(col), *(len(r[i]) for r in cells)) if cells else len(col)
        for i, col in enumerate(columns)
    ]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def _format(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_json(name, payload):
    """Write `payload` plus the machine description to results/NAME.json."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    payload = dict(payload, machine=machine_description())
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"wrote {path}")
    return path


# A worker process prints its result on one line that starts with this.
_RESULT_PREFIX = "RESULT "


def print_worker_result(result):
    """Hands `result` (JSON-serialisable) to the parent `run_worker`."""
    print(_RESULT_PREFIX + json.dumps(result))


def run_worker(script, backend, worker_args):
    """Runs `script --worker ARGS` with `KERAS_BACKEND=backend`.

    Each measurement runs in its own process, so that its peak memory and
    its backend are its own.

    Returns:
        The dict the worker printed with `print_worker_result`, or
        `{"error": "exit N: <the last stderr line that is not a
        TensorFlow/XLA log line>"}` when it printed none (killed, crashed).
    """
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.run(
        [sys.executable, script, "--worker"] + [str(a) for a in worker_args],
        env=env,
        capture_output=True,
        text=True,
    )
    for line in process.stdout.splitlines():
        if line.startswith(_RESULT_PREFIX):
            return json.loads(line[len(_RESULT_PREFIX) :])
    lines = [
        line
        for line in (process.stderr or "").strip().splitlines()
        if line[:1] not in "IWE" or not line[1:5].isdigit()
    ]
    tail = f": {lines[-1][:160]}" if lines else ""
    return {"error": f"exit {process.returncode}{tail}"}
