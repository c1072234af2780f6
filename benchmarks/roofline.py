"""Attention FLOP/s as a fraction of the machine's best float32 matmul.

The roof is the GFLOP/s of a large square `tf.matmul`, timed in the same
rounds as the attention it is compared with (a shared machine's speed drifts
from minute to minute). Attention counts `4 * batch * heads * n^2 * d_head`
FLOPs forward (QK^T and PV; an inference call, `training=False`) and
`12 * batch * heads * n^2 * d_head` forward+backward (the four backward
matmuls); the chunked backward's recomputation is not counted as useful.
Keras's own `keras.ops.dot_product_attention` is measured beside ours, in
graph mode and under XLA (`jit_compile=True`).

    python benchmarks/roofline.py
    python benchmarks/roofline.py --lengths 2048 4096 --repeats 7
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _common import add_attention_shape_arguments  # noqa: E402
from _common import interleaved_median_times  # noqa: E402
from _common import print_table  # noqa: E402
from _common import write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_attention.ops import scaled_dot_product_attention  # noqa: E402

MATMUL_SIZE = 2048
IMPLEMENTATIONS = ("keras", "dense", "chunked")
COLUMNS = ["impl", "xla", "n", "pass", "ms", "gflops", "fraction_of_roof"]


def make_roof():
    a = tf.random.normal((MATMUL_SIZE, MATMUL_SIZE))
    b = tf.random.normal((MATMUL_SIZE, MATMUL_SIZE))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    return lambda: float(matmul())


def attention_fn(name, training):
    if name == "keras":
        return lambda q, k, v: keras.ops.dot_product_attention(q, k, v)
    return lambda q, k, v: scaled_dot_product_attention(
        q, k, v, implementation=name, training=training
    )


def make_step(name, q, k, v, backward, jit_compile):
    # A forward pass alone is an inference call (training=False): the dense
    # path then keeps no weights for a backward pass.
    attend = attention_fn(name, training=None if backward else False)

    @tf.function(jit_compile=jit_compile)
    def forward():
        return tf.reduce_sum(attend(q, k, v))

    @tf.function(jit_compile=jit_compile)
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            loss = tf.reduce_sum(attend(q, k, v))
        grads = tape.gradient(loss, [q, k, v])
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    step = forward_backward if backward else forward
    return lambda: float(step())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_attention_shape_arguments(parser)
    parser.add_argument(
        "--no-xla", action="store_true", help="Skip the jit_compile=True rows."
    )
    args = parser.parse_args(argv)
    roof_step = make_roof()
    rows = []
    for length in args.lengths:
        q, k, v = (
            tf.random.normal((args.batch, length, args.heads, args.depth))
            for _ in range(3)
        )
        for backward in (False, True):
            steps = {"roof": roof_step}
            for xla in (False,) if args.no_xla else (False, True):
                for name in IMPLEMENTATIONS:
                    steps[name, xla] = make_step(name, q, k, v, backward, xla)
            times = interleaved_median_times(steps, args.repeats)
            roof = 2 * MATMUL_SIZE**3 / times.pop("roof") / 1e9
            flops = 4 * args.batch * args.heads * length**2 * args.depth
            flops *= 3 if backward else 1
            for (name, xla), seconds in times.items():
                rows.append(
                    {
                        "impl": name,
                        "xla": xla,
                        "n": length,
                        "pass": "fwd+bwd" if backward else "fwd",
                        "ms": 1000 * seconds,
                        "gflops": flops / seconds / 1e9,
                        "roof_gflops": roof,
                        "fraction_of_roof": flops / seconds / 1e9 / roof,
                    }
                )
            print(f"roof in these rounds: {roof:.1f} GFLOP/s")
            print_table(rows[-len(times) :], COLUMNS)
    print()
    print_table(rows, COLUMNS)
    write_json("roofline", {"config": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
