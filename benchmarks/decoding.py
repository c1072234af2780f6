"""Greedy decoding with the key/value cache vs re-running the decoder.

One `build_transformer` model (random weights; speed does not depend on
them) decodes the same batch of sources greedily for `--max-length` tokens
(no end id, so every run does all the steps):

- `uncached`: every step re-runs the decoder over the whole prefix
  (`TransformerDecoder.greedy(..., use_cache=False)`), in a `tf.function`;
- `cached`: every step feeds only the newest token through the decoder
  blocks, with a self-attention cache per block and the cross-attention
  keys/values projected once, in a `tf.function`;
- `cached_xla`: the same, compiled with `jit_compile=True`.

For each batch size the modes are checked to produce identical tokens,
warmed up once (tracing and compiling), then timed alternately; the table
shows the median seconds per run, milliseconds per generated token (per
step of the whole batch) and the speed-up over `uncached`.

    python benchmarks/decoding.py
    python benchmarks/decoding.py --batch-sizes 8 --max-length 64 --no-xla
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _common import interleaved_median_times  # noqa: E402
from _common import print_table  # noqa: E402
from _common import write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_attention.models import transformer  # noqa: E402
from keras_attention.models import transformer_decoding  # noqa: E402

START_ID = 1


def make_modes(decoder, xla):
    """`{name: tf.function}` of the decoding modes to compare."""
    modes = {
        "uncached": tf.function(
            lambda source: decoder.greedy(source, use_cache=False)
        ),
        "cached": tf.function(lambda source: decoder.greedy(source)),
    }
    if xla:
        modes["cached_xla"] = tf.function(
            lambda source: decoder.greedy(source), jit_compile=True
        )
    return modes


def time_modes(modes, source, repeats):
    """Median seconds per mode, timed alternately after one warm-up each."""
    reference = None
    for name, fn in modes.items():
        tokens = fn(source).numpy()  # traces (and compiles)
        if reference is None:
            reference = tokens
        elif not np.array_equal(tokens, reference):
            raise RuntimeError(f"{name} decoded different tokens")
    steps = {
        name: (lambda fn=fn: fn(source).numpy()) for name, fn in modes.items()
    }
    return interleaved_median_times(steps, repeats, warmup=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[1, 8, 32]
    )
    parser.add_argument("--source-length", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--vocabulary-size", type=int, default=1000)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--feed-forward-dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--no-xla", action="store_true", help="Skip the cached_xla row."
    )
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    model = transformer.build_transformer(
        args.vocabulary_size,
        args.vocabulary_size,
        num_layers=args.num_layers,
        d_model=args.d_model,
        num_heads=args.num_heads,
        feed_forward_dim=args.feed_forward_dim,
    )
    decoder = transformer_decoding.TransformerDecoder(
        model, start_id=START_ID, end_id=None, max_length=args.max_length
    )
    columns = ["batch", "mode", "median_s", "ms_per_token", "speedup"]
    rows = []
    for batch_size in args.batch_sizes:
        source = tf.constant(
            np.random.default_rng(0).integers(
                2, args.vocabulary_size, (batch_size, args.source_length)
            ),
            dtype=tf.int32,
        )
        modes = make_modes(decoder, not args.no_xla)
        times = time_modes(modes, source, args.repeats)
        for name, seconds in times.items():
            rows.append(
                {
                    "batch": batch_size,
                    "mode": name,
                    "median_s": seconds,
                    "ms_per_token": 1000 * seconds / args.max_length,
                    "speedup": times["uncached"] / seconds,
                }
            )
        print_table(rows[-len(times) :], columns)
    print()
    print_table(rows, columns)
    write_json("decoding", {"config": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
