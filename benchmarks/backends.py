"""Every backend side by side: layer speed and long-sequence memory.

For each Keras backend (TensorFlow, JAX, PyTorch) a fresh process measures:

- `layers`: forward+backward of our `MultiHeadAttention` (self-attention)
  beside `keras.layers.MultiHeadAttention` with the same sizes on the same
  backend, timed alternately round by round (`ratio` = ours / Keras, below
  1.0 means ours is faster; `ratio_q1`/`ratio_q3` are the quartiles of the
  per-round ratios). Compiled where the backend compiles: `tf.function`
  on TensorFlow, `jax.jit` on JAX, eager on PyTorch.
- `memory`: the peak resident memory of one forward+backward of
  `scaled_dot_product_attention` (causal, 8 heads of 64, batch 1), each
  (backend, implementation, length) in its own process, so a peak is its
  own; the dense path's float32 scores alone take `4 * 8 * n^2` bytes.

    python benchmarks/backends.py
    python benchmarks/backends.py --lengths 128 512 --long-lengths 32768
"""

import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _common import print_table  # noqa: E402
from _common import print_worker_result  # noqa: E402
from _common import round_ratio_quartiles  # noqa: E402
from _common import run_worker  # noqa: E402
from _common import write_json  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
HEADS = 8
HEAD_DIM = 64
TOKENS_PER_BATCH = 4096


def _train_step(layer, x):
    """A callable running forward+backward of `layer(x, x)` once."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(layer(x, x)))
            return tape.gradient(loss, layer.trainable_variables)

        return lambda: [g.numpy() for g in step()][:1]
    if backend == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        other = [v.value for v in layer.non_trainable_variables]

        def loss_fn(trainable):
            out, _ = layer.stateless_call(trainable, other, x, x)
            return (out**2).sum()

        grad = jax.jit(jax.grad(loss_fn))
        return lambda: jax.block_until_ready(grad(trainable))

    def step():
        layer.zero_grad()
        loss = (layer(x, x) ** 2).sum()
        loss.backward()

    return step


def measure_layers(lengths, d_model, repeats):
    import keras
    import numpy as np

    import keras_attention as ka

    rows = []
    key_dim = d_model // HEADS
    for length in lengths:
        batch = max(1, TOKENS_PER_BATCH // length)
        x = keras.ops.convert_to_tensor(
            np.random.default_rng(0).normal(size=(batch, length, d_model)),
            "float32",
        )
        steps = {}
        for name, layer in (
            ("ours", ka.MultiHeadAttention(HEADS, key_dim)),
            ("keras", keras.layers.MultiHeadAttention(HEADS, key_dim)),
        ):
            layer(x, x)
            steps[name] = _train_step(layer, x)
            steps[name]()  # compile
        times = {name: [] for name in steps}
        for _ in range(repeats):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
        q1, q3 = round_ratio_quartiles(times["ours"], times["keras"])
        ours, theirs = (statistics.median(times[n]) for n in ("ours", "keras"))
        rows.append(
            {
                "length": length,
                "batch": batch,
                "ours_ms": 1000 * ours,
                "keras_ms": 1000 * theirs,
                "ratio": ours / theirs,
                "ratio_q1": q1,
                "ratio_q3": q3,
            }
        )
    return rows


def measure_memory(length, implementation):
    import keras
    import numpy as np

    from keras_attention.ops import scaled_dot_product_attention
    from tests.testing import value_and_gradients

    shape = (1, length, HEADS, HEAD_DIM)
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=shape).astype("float32") for _ in range(3))

    def attend(q, k, v):
        out = scaled_dot_product_attention(
            q, k, v, causal=True, implementation=implementation
        )
        return out, keras.ops.sum(out)

    if keras.backend.backend() == "jax":
        import jax

        value_and_gradients_ = jax.jit(
            lambda q, k, v: jax.grad(lambda *a: attend(*a)[1], (0, 1, 2))(
                q, k, v
            )
        )
        start = time.perf_counter()
        jax.block_until_ready(value_and_gradients_(q, k, v))
    else:
        start = time.perf_counter()
        value_and_gradients(attend, q, k, v)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_gib": peak_kib / 2**20}


def _worker(args):
    os.environ["KERAS_BACKEND"] = args.backend
    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
    if args.task == "layers":
        result = measure_layers(args.lengths, args.d_model, args.repeats)
    else:
        result = measure_memory(args.length, args.implementation)
    print_worker_result(result)


def _run_worker(backend, *worker_args):
    return run_worker(__file__, backend, ["--backend", backend, *worker_args])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--long-lengths", nargs="+", type=int, default=[4096, 32768]
    )
    parser.add_argument(
        "--dense-lengths", nargs="+", type=int, default=[2048, 4096]
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--task", default="layers", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--implementation", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)

    layer_rows, memory_rows = [], []
    for backend in args.backends:
        rows = _run_worker(
            backend,
            "--task", "layers", "--repeats", args.repeats,
            "--d-model", args.d_model, "--lengths", *args.lengths,
        )  # fmt: skip
        if isinstance(rows, dict):
            rows = [dict(rows, length="-")]
        layer_rows += [dict(row, backend=backend) for row in rows]
        for implementation, lengths in (
            ("chunked", args.long_lengths),
            ("dense", args.dense_lengths),
        ):
            for length in lengths:
                row = _run_worker(
                    backend,
                    "--task", "memory", "--length", length,
                    "--implementation", implementation,
                )  # fmt: skip
                memory_rows.append(
                    dict(
                        row,
                        backend=backend,
                        implementation=implementation,
                        length=length,
                        dense_scores_gib=4 * HEADS * length**2 / 2**30,
                    )
                )
    print_table(
        layer_rows,
        ["backend", "length", "batch", "ours_ms", "keras_ms", "ratio",
         "ratio_q1", "ratio_q3", "error"],
    )  # fmt: skip
    print()
    print_table(
        memory_rows,
        ["backend", "implementation", "length", "seconds", "peak_gib",
         "dense_scores_gib", "error"],
    )  # fmt: skip
    write_json(
        "backends",
        {"d_model": args.d_model, "layers": layer_rows, "memory": memory_rows},
    )


if __name__ == "__main__":
    main()
