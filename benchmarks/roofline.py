"""Attention FLOP/s as a fraction of the machine's best float32 matmul.

The roof is the median GFLOP/s of a large square `tf.matmul`. Attention
counts `4 * batch * heads * n^2 * d_head` FLOPs forward (QK^T and PV) and
`12 * batch * heads * n^2 * d_head` forward+backward (the four backward
matmuls); recomputation in the chunked backward is not counted as useful.
Keras's own `keras.ops.dot_product_attention` is measured beside ours.

    python benchmarks/roofline.py
    python benchmarks/roofline.py --lengths 2048 4096 --repeats 5
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _common import median_time  # noqa: E402
from _common import print_table  # noqa: E402
from _common import write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_attention.ops import scaled_dot_product_attention  # noqa: E402

MATMUL_SIZE = 2048


def matmul_gflops(repeats):
    a = tf.random.normal((MATMUL_SIZE, MATMUL_SIZE))
    b = tf.random.normal((MATMUL_SIZE, MATMUL_SIZE))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    seconds = median_time(lambda: float(matmul()), repeats)
    return 2 * MATMUL_SIZE**3 / seconds / 1e9


def attention_fn(name):
    if name == "keras":
        return lambda q, k, v: keras.ops.dot_product_attention(q, k, v)
    return lambda q, k, v: scaled_dot_product_attention(
        q, k, v, implementation=name
    )


def measure(name, length, heads, depth, batch, backward, repeats):
    attend = attention_fn(name)
    q, k, v = (
        tf.random.normal((batch, length, heads, depth)) for _ in range(3)
    )

    @tf.function
    def forward():
        return tf.reduce_sum(attend(q, k, v))

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            loss = tf.reduce_sum(attend(q, k, v))
        return [tf.reduce_sum(g) for g in tape.gradient(loss, [q, k, v])]

    fn = forward_backward if backward else forward
    seconds = median_time(
        lambda: [float(x) for x in tf.nest.flatten(fn())], repeats
    )
    flops = (12 if backward else 4) * batch * heads * length**2 * depth
    return seconds, flops / seconds / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[1024, 2048, 4096]
    )
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    roof = matmul_gflops(args.repeats * 2)
    print(
        f"float32 matmul roof: {roof:.1f} GFLOP/s ({MATMUL_SIZE}x{MATMUL_SIZE})"
    )
    rows = []
    for length in args.lengths:
        for backward in (False, True):
            for name in ("keras", "dense", "chunked"):
                seconds, gflops = measure(
                    name,
                    length,
                    args.heads,
                    args.depth,
                    args.batch,
                    backward,
                    args.repeats,
                )
                rows.append(
                    {
                        "impl": name,
                        "n": length,
                        "pass": "fwd+bwd" if backward else "fwd",
                        "seconds": seconds,
                        "gflops": gflops,
                        "fraction_of_roof": gflops / roof,
                    }
                )
                print_table(
                    rows[-1:],
                    [
                        "impl",
                        "n",
                        "pass",
                        "seconds",
                        "gflops",
                        "fraction_of_roof",
                    ],
                )
    print()
    print_table(
        rows, ["impl", "n", "pass", "seconds", "gflops", "fraction_of_roof"]
    )
    write_json(
        "roofline",
        {
            "matmul_roof_gflops": roof,
            "config": vars(args),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
