"""Sliding-window vs full causal chunked attention, forward+backward.

`scaled_dot_product_attention(q, k, v, causal=True, window=w,
implementation="chunked")` against the same call without `window` (full
causal attention, also chunked), batch 1, 8 heads of 64. The chunked
kernels skip the keys outside the window, so the windowed cost grows as
`n * w` where the full one grows as `n^2`: for causal attention about
`n / (2 w)` times less work, when the full kernel skips the keys above the
diagonal too.

For each backend (its own process, `KERAS_BACKEND` set) and length:

- time: one process compiles both steps (`tf.function`, `jax.jit`; PyTorch
  runs eagerly) and times them alternately, round by round
  (`interleaved_times`), so `speedup` (full / windowed, the median of
  each) is fair on a noisy shared machine; `speedup_q1`/`speedup_q3` are
  the quartiles of the per-round ratios.
- memory: each (backend, variant, length) in a fresh process: the growth
  of its peak resident memory (`VmHWM`, reset after compiling) over the
  resident memory just before one forward+backward step, and that step's
  time.

From 16k on a full causal step takes minutes on a small shared CPU: by
default (`--long-repeats 0`) those lengths skip the interleaved rounds and
report the single timed step of each memory process (the two run one after
the other); the JSON's `repeats` says which.

    python benchmarks/sliding_window.py            # n = 8k, 32k (~30 min)
    python benchmarks/sliding_window.py --quick    # n = 2k, 4k
    python benchmarks/sliding_window.py --backends tensorflow --lengths 8192

`--variants bidirectional full window` adds full attention without the
causal mask (`causal_speedup` = bidirectional / full: how much of the
work above the diagonal the causal kernel skips, ideally 2), and
`--tree DIR` runs the workers on another checkout of the package (say the
commit before a kernel change, `git worktree add DIR REV`) for a
before/after comparison in one session.
"""

import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _common import interleaved_times  # noqa: E402
from _common import print_table  # noqa: E402
from _common import print_worker_result  # noqa: E402
from _common import round_ratio_quartiles  # noqa: E402
from _common import run_worker  # noqa: E402
from _common import write_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")
BATCH = 1
HEADS = 8
HEAD_DIM = 64
WINDOW = 512
LENGTHS = [8192, 32768]
QUICK_LENGTHS = [2048, 4096]
# From this length on a full causal step takes minutes on a small CPU:
# `--long-repeats` rounds (0: the memory processes' single steps), no
# warm-up round (the steps are compiled before timing all the same).
LONG_LENGTH = 16384
VARIANTS = ("full", "window")
# Each variant's (causal, uses the window).
VARIANT_OPTIONS = {
    "bidirectional": (False, False),
    "full": (True, False),
    "window": (True, True),
}
MIB = 2**20


# -- in the worker process ------------------------------------------------


def _status_kib(field):
    """A `field: N kB` line of /proc/self/status, in KiB (or `None`)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Resets `VmHWM` to the current RSS; False where Linux does not allow."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _inputs(length):
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (BATCH, length, HEADS, HEAD_DIM)
    return [rng.normal(size=shape).astype("float32") for _ in range(3)]


def _compiled_step(length, window, causal=True):
    """A compiled forward+backward step of the attention, ready to call.

    Returns a callable that runs one step and waits for its result.
    """
    import keras

    from keras_attention.ops import scaled_dot_product_attention

    def attend(q, k, v):
        return scaled_dot_product_attention(
            q, k, v, causal=causal, window=window, implementation="chunked"
        )

    arrays = _inputs(length)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        q, k, v = (tf.constant(a) for a in arrays)

        @tf.function
        def step(q, k, v):
            with tf.GradientTape() as tape:
                tape.watch([q, k, v])
                loss = tf.reduce_sum(attend(q, k, v))
            return tape.gradient(loss, [q, k, v])

        concrete = step.get_concrete_function(q, k, v)
        return lambda: [g.numpy() for g in concrete(q, k, v)][:1]
    if backend == "jax":
        import jax

        q, k, v = (jax.numpy.asarray(a) for a in arrays)
        grad = jax.jit(
            jax.grad(lambda q, k, v: attend(q, k, v).sum(), argnums=(0, 1, 2))
        )
        compiled = grad.lower(q, k, v).compile()
        return lambda: jax.block_until_ready(compiled(q, k, v))
    import torch

    q, k, v = (torch.tensor(a, requires_grad=True) for a in arrays)

    def step():
        loss = attend(q, k, v).sum()
        return torch.autograd.grad(loss, [q, k, v])

    return step


def _step_of(variant, length, window):
    causal, windowed = VARIANT_OPTIONS[variant]
    return _compiled_step(length, window if windowed else None, causal)


def _ratios(row, times=None):
    """`speedup` (full / window) and `causal_speedup` (bidirectional /
    full) of a row's median times, with quartiles from per-round times."""
    for name, (slow, fast) in {
        "speedup": ("full", "window"),
        "causal_speedup": ("bidirectional", "full"),
    }.items():
        if f"{slow}_s" not in row or f"{fast}_s" not in row:
            continue
        row[name] = row[f"{slow}_s"] / row[f"{fast}_s"]
        if times is not None:
            q1, q3 = round_ratio_quartiles(times[slow], times[fast])
            row[f"{name}_q1"], row[f"{name}_q3"] = q1, q3


def measure_times(length, window, repeats, warmup, variants=VARIANTS):
    """Interleaved forward+backward times of the variants' steps."""
    steps = {variant: _step_of(variant, length, window) for variant in variants}
    times = interleaved_times(steps, repeats, warmup)
    result = {f"{v}_s": statistics.median(times[v]) for v in variants}
    _ratios(result, times)
    result["times"] = times
    return result


def measure_memory(length, window, variant):
    """Peak RSS growth of one compiled step, in a process of its own."""
    step = _step_of(variant, length, window)
    reset = _reset_peak_rss()
    before_kib = _status_kib("VmRSS")
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    if reset:
        peak_kib, method = _status_kib("VmHWM"), "VmHWM after compiling"
    else:
        # ru_maxrss cannot be reset: the growth then includes compiling.
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        method = "ru_maxrss (includes compiling)"
    return {
        "peak_growth_mib": (peak_kib - before_kib) / 1024,
        "rss_before_mib": before_kib / 1024,
        "seconds": seconds,
        "method": method,
    }


def _worker(args):
    sys.path.insert(0, args.tree or ROOT)
    if args.task == "time":
        result = measure_times(
            args.length,
            args.window,
            args.repeats,
            args.warmup,
            tuple(args.variants),
        )
    else:
        result = measure_memory(args.length, args.window, args.variant)
    print_worker_result(result)


# -- in the parent process ------------------------------------------------


def measure_row(
    backend, length, window, repeats, warmup, variants=VARIANTS, tree=None
):
    """One (backend, length) row: times, their ratios, the memories."""

    def _run_worker(*worker_args):
        common = ["--variants", *variants]
        if tree:
            common += ["--tree", tree]
        return run_worker(__file__, backend, list(worker_args) + common)

    row = {
        "tree": tree or "this checkout",
        "backend": backend,
        "n": length,
        "window": window,
        # Full causal does ~n^2/2 query-key products, windowed ~n*w.
        "ideal_speedup": length / (2 * window),
        "repeats": repeats,
        "warmup": warmup,
    }
    start = time.perf_counter()
    if repeats > 0:
        timed = _run_worker(
            "--task", "time", "--length", length,
            "--window", window, "--repeats", repeats, "--warmup", warmup,
        )  # fmt: skip
        row.update(timed)
    for variant in variants:
        memory = _run_worker(
            "--task", "memory", "--length", length,
            "--window", window, "--variant", variant,
        )  # fmt: skip
        if "error" in memory:
            row[f"{variant}_error"] = memory["error"]
            row["error"] = f"{variant} failed"
            continue
        row[f"{variant}_mib"] = memory["peak_growth_mib"]
        row[f"{variant}_memory_step_s"] = memory["seconds"]
        row["memory_method"] = memory["method"]
        if repeats == 0:
            row[f"{variant}_s"] = memory["seconds"]
    if repeats == 0:
        _ratios(row)
        row["timing"] = "one step each, in the memory processes"
    row["wall_s"] = time.perf_counter() - start
    return row


COLUMNS = [
    "tree", "backend", "n", "window", "bidirectional_s", "full_s",
    "window_s", "causal_speedup", "speedup", "speedup_q1", "speedup_q3",
    "ideal_speedup", "bidirectional_mib", "full_mib", "window_mib",
    "repeats", "error",
]  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--lengths", nargs="+", type=int, default=None)
    parser.add_argument("--window", type=int, default=WINDOW)
    parser.add_argument(
        "--quick", action="store_true", help="n = 2048, 4096 only"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed rounds below 16k"
    )
    parser.add_argument(
        "--long-repeats",
        type=int,
        default=0,
        help="timed rounds from 16k (0: the memory runs' single steps)",
    )
    parser.add_argument(
        "--output", default="sliding_window", help="results/NAME.json"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANT_OPTIONS),
        help="steps to compare (default: full window)",
    )
    parser.add_argument(
        "--trees",
        nargs="+",
        default=[None],
        help="package checkouts to run, side by side (default: this one)",
    )
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    lengths = args.lengths or (QUICK_LENGTHS if args.quick else LENGTHS)

    rows = []
    for backend in args.backends:
        for length in lengths:
            long = length >= LONG_LENGTH
            for tree in args.trees:
                row = measure_row(
                    backend,
                    length,
                    args.window,
                    args.long_repeats if long else args.repeats,
                    0 if long else 1,
                    tuple(args.variants),
                    tree,
                )
                rows.append(row)
                print_table([row], COLUMNS)
                print(flush=True)
    print_table(rows, COLUMNS)
    write_json(
        args.output,
        {
            "config": {
                "batch": BATCH,
                "heads": HEADS,
                "head_dim": HEAD_DIM,
                "window": args.window,
                "pass": "forward+backward",
                "implementation": "chunked",
                "variants": {
                    v: {"causal": c, "window": w}
                    for v, (c, w) in VARIANT_OPTIONS.items()
                    if v in args.variants
                },
                "timing": (
                    "compiled steps timed alternately round by round, "
                    f"{args.repeats} rounds after 1 warm-up round, below "
                    f"n={LONG_LENGTH}; from it "
                    + (
                        f"{args.long_repeats} rounds, no warm-up"
                        if args.long_repeats
                        else "one step of each variant (repeats=0), the "
                        "memory processes' own, run one after the other: "
                        "a full causal step takes minutes there"
                    )
                ),
                "memory": (
                    "peak RSS growth (MiB) of one step in a fresh process, "
                    "over the RSS just before it, peak reset after compiling"
                ),
            },
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
