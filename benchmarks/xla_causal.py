"""Causal attention under XLA: tiles that stop at the diagonal vs masked ones.

Under `jit_compile=True`, TensorFlow's tiled kernels (the dense
implementation's tiles on long sequences and the chunked implementation)
stop each causal row tile at the diagonal when the lengths are static, by
unrolling the row tiles (`MAX_UNROLLED_ROW_TILES`); with the unrolling
turned off they multiply every key and mask those past the diagonal, as
they do with dynamic lengths. Both programs are built in the same process
and timed in alternating rounds, forward+backward, beside Keras's
`keras.ops.dot_product_attention(is_causal=True)` under XLA. `first_s` is
the first call (compilation included).

    python benchmarks/xla_causal.py
    python benchmarks/xla_causal.py --lengths 2048 --repeats 5
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _common import add_attention_shape_arguments  # noqa: E402
from _common import interleaved_median_times  # noqa: E402
from _common import print_table  # noqa: E402
from _common import write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_attention.ops import scaled_dot_product_attention  # noqa: E402
from keras_attention.ops.attention import tensorflow_kernels  # noqa: E402

COLUMNS = ["impl", "n", "tiles", "ms", "first_s", "vs_masked"]


def compiled_step(attend, q, k, v):
    """A compiled forward+backward step, traced and run once now."""

    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            loss = tf.reduce_sum(attend(q, k, v))
        grads = tape.gradient(loss, [q, k, v])
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    started = time.perf_counter()
    float(step())
    return (lambda: float(step())), time.perf_counter() - started


def ours(implementation):
    return lambda q, k, v: scaled_dot_product_attention(
        q, k, v, causal=True, implementation=implementation
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_attention_shape_arguments(parser)
    args = parser.parse_args(argv)
    unrolled_limit = tensorflow_kernels.MAX_UNROLLED_ROW_TILES
    rows = []
    for length in args.lengths:
        q, k, v = (
            tf.random.normal((args.batch, length, args.heads, args.depth))
            for _ in range(3)
        )
        steps, first = {}, {}
        steps["keras", "-"], first["keras", "-"] = compiled_step(
            lambda q, k, v: keras.ops.dot_product_attention(
                q, k, v, is_causal=True
            ),
            q,
            k,
            v,
        )
        for implementation in ("dense", "chunked"):
            for tiles, limit in (("diagonal", unrolled_limit), ("masked", 0)):
                tensorflow_kernels.MAX_UNROLLED_ROW_TILES = limit
                try:
                    name = implementation, tiles
                    steps[name], first[name] = compiled_step(
                        ours(implementation), q, k, v
                    )
                finally:
                    tensorflow_kernels.MAX_UNROLLED_ROW_TILES = unrolled_limit
        times = interleaved_median_times(steps, args.repeats)
        for (name, tiles), seconds in times.items():
            masked = times.get((name, "masked"))
            rows.append(
                {
                    "impl": name,
                    "n": length,
                    "tiles": tiles,
                    "ms": 1000 * seconds,
                    "first_s": first[name, tiles],
                    "vs_masked": seconds / masked if masked else None,
                }
            )
        print_table(rows[-len(times) :], COLUMNS)
    print()
    print_table(rows, COLUMNS)
    write_json("xla_causal", {"config": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
