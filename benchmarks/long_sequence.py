"""Peak memory and time of dense vs chunked self-attention, forward+backward.

Each (implementation, length) runs in a fresh subprocess so that peak
memory readings do not mix; the time is that of the second call (the first
traces), at static shapes as in a model with a fixed sequence length.
Dense attention is skipped, and reported as out of memory, when the weights
it keeps would not fit in the memory limit.

    python benchmarks/long_sequence.py                 # n = 1k .. 32k
    python benchmarks/long_sequence.py --lengths 1024 2048
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _common import print_table  # noqa: E402
from _common import write_json  # noqa: E402

DEFAULT_LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768]
# Float32 (heads, n, n) tensors that dense forward+backward keeps alive:
# the weights of every tile, kept for the backward pass.
DENSE_LIVE_MATRICES = 1


def _total_memory_bytes():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def run_one(implementation, length, heads, depth, batch):
    """Runs in the child process: prints one JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from keras_attention.ops import scaled_dot_product_attention

    q, k, v = (
        tf.random.normal((batch, length, heads, depth)) for _ in range(3)
    )

    @tf.function
    def step(q, k, v):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = scaled_dot_product_attention(
                q, k, v, causal=False, implementation=implementation
            )
            loss = tf.reduce_sum(out)
        grads = tape.gradient(loss, [q, k, v])
        return loss, grads

    float(step(q, k, v)[0])  # trace and warm up at the measured shapes
    start = time.perf_counter()
    loss, grads = step(q, k, v)
    float(loss)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_gib": peak / 2**30,
                "finite": bool(
                    all(tf.reduce_all(tf.math.is_finite(g)) for g in grads)
                ),
            }
        )
    )


def measure(implementation, length, heads, depth, batch, memory_limit):
    dense_bytes = DENSE_LIVE_MATRICES * batch * heads * length**2 * 4
    row = {"impl": implementation, "n": length}
    if implementation == "dense" and dense_bytes > memory_limit:
        row["status"] = f"out of memory: needs >= {dense_bytes / 2**30:.0f} GiB"
        return row
    command = [
        sys.executable,
        __file__,
        "--child",
        implementation,
        str(length),
        str(heads),
        str(depth),
        str(batch),
    ]
    proc = subprocess.run(command, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        row["status"] = f"failed (exit {proc.returncode}): {tail}"
        return row
    result = json.loads(lines[-1])
    row.update(result, status="ok")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=DEFAULT_LENGTHS
    )
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument(
        "--memory-limit-gib",
        type=float,
        default=0.6 * _total_memory_bytes() / 2**30,
        help="Dense runs whose score matrices exceed this are skipped.",
    )
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        impl, length, heads, depth, batch = args.child
        run_one(impl, int(length), int(heads), int(depth), int(batch))
        return
    rows = []
    for length in args.lengths:
        for implementation in ("dense", "chunked"):
            row = measure(
                implementation,
                length,
                args.heads,
                args.depth,
                args.batch,
                args.memory_limit_gib * 2**30,
            )
            rows.append(row)
            print_table(
                [row], ["impl", "n", "seconds", "peak_rss_gib", "status"]
            )
    by_key = {(r["impl"], r["n"]): r for r in rows}
    for length in args.lengths:
        dense, chunked = by_key[("dense", length)], by_key[("chunked", length)]
        if "seconds" in dense and "seconds" in chunked:
            chunked["time_vs_dense"] = chunked["seconds"] / dense["seconds"]
    print()
    print_table(
        rows,
        ["impl", "n", "seconds", "peak_rss_gib", "time_vs_dense", "status"],
    )
    write_json(
        "long_sequence",
        {
            "config": {
                "heads": args.heads,
                "depth": args.depth,
                "batch": args.batch,
                "pass": "forward+backward",
            },
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
