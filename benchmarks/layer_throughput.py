"""Forward+backward time of our layers beside Keras's and KerasHub's.

For each size, the pairs below are built with the same shapes and timed in
one process, alternating, several repeats; the table shows the median time
and the ratio ours/theirs (below 1.0 means ours is faster), with the
quartiles of the per-round ratios (`ratio_q1`, `ratio_q3`) as its spread:

- `MultiHeadAttention` (ours, self-attention call) vs
  `keras.layers.MultiHeadAttention`;
- `MultiHeadSelfAttention` (ours, fused QKV) vs
  `keras.layers.MultiHeadAttention`;
- `TransformerBlock` (ours) vs `keras_hub.layers.TransformerEncoder`.

Each is measured in graph mode (`tf.function`) and with XLA
(`jit_compile=True`).

    python benchmarks/layer_throughput.py
    python benchmarks/layer_throughput.py --d-model 256 --lengths 128
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _common import interleaved_times  # noqa: E402
from _common import print_table  # noqa: E402
from _common import round_ratio_quartiles  # noqa: E402
from _common import write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_attention as ka  # noqa: E402

HEADS = 8
TOKENS_PER_BATCH = 4096  # batch = TOKENS_PER_BATCH // length (at least 1)


def make_pairs(d_model):
    """(name, ours, theirs) factories with equal sizes."""
    key_dim = d_model // HEADS
    pairs = [
        (
            "MultiHeadAttention",
            lambda: ka.MultiHeadAttention(HEADS, key_dim),
            lambda: keras.layers.MultiHeadAttention(HEADS, key_dim),
        ),
        (
            "MultiHeadSelfAttention",
            lambda: ka.MultiHeadSelfAttention(HEADS, key_dim),
            lambda: keras.layers.MultiHeadAttention(HEADS, key_dim),
        ),
    ]
    try:
        import keras_hub
    except ImportError:  # the `bench` extra is not installed
        print("keras_hub not installed: skipping TransformerBlock rows")
        return pairs
    pairs.append(
        (
            "TransformerBlock",
            lambda: ka.TransformerBlock(HEADS, feed_forward_dim=4 * d_model),
            lambda: keras_hub.layers.TransformerEncoder(
                intermediate_dim=4 * d_model, num_heads=HEADS
            ),
        )
    )
    return pairs


def call_layer(layer, x):
    if isinstance(
        layer, (ka.MultiHeadAttention, keras.layers.MultiHeadAttention)
    ):
        return layer(x, x)
    return layer(x)


def make_step(layer, x, jit_compile):
    call_layer(layer, x)  # build

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(call_layer(layer, x)))
        grads = tape.gradient(loss, layer.trainable_variables)
        return loss + tf.add_n([tf.reduce_sum(g) for g in grads])

    return lambda: float(step())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, nargs="+", default=[256, 512])
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[128, 512, 2048]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--no-xla", action="store_true", help="Skip the jit_compile=True rows."
    )
    args = parser.parse_args(argv)
    columns = [
        "layer",
        "d_model",
        "n",
        "batch",
        "xla",
        "ours_ms",
        "theirs_ms",
        "ratio",
        "ratio_q1",
        "ratio_q3",
    ]
    rows = []
    for d_model in args.d_model:
        for length in args.lengths:
            batch = max(1, TOKENS_PER_BATCH // length)
            x = tf.random.normal((batch, length, d_model))
            for name, make_ours, make_theirs in make_pairs(d_model):
                for xla in (False,) if args.no_xla else (False, True):
                    keras.utils.set_random_seed(0)
                    times = interleaved_times(
                        {
                            "ours": make_step(make_ours(), x, xla),
                            "theirs": make_step(make_theirs(), x, xla),
                        },
                        args.repeats,
                    )
                    ours = statistics.median(times["ours"])
                    theirs = statistics.median(times["theirs"])
                    q1, q3 = round_ratio_quartiles(
                        times["ours"], times["theirs"]
                    )
                    rows.append(
                        {
                            "layer": name,
                            "d_model": d_model,
                            "n": length,
                            "batch": batch,
                            "xla": xla,
                            "ours_ms": 1000 * ours,
                            "theirs_ms": 1000 * theirs,
                            "ratio": ours / theirs,
                            "ratio_q1": q1,
                            "ratio_q3": q3,
                        }
                    )
                    print_table(rows[-1:], columns)
    print()
    print_table(rows, columns)
    write_json("layer_throughput", {"config": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
