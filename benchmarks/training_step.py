"""Tokens/second of a Transformer encoder-decoder training step, side by side.

Ours is `keras_attention.models.build_transformer`; theirs is the same
architecture (embedding scaled by sqrt(d_model) + sinusoidal positions, post-LN
blocks, same widths, id 0 masked as padding, causal decoder) built from
KerasHub's `TransformerEncoder` / `TransformerDecoder`, which use
`keras.layers.MultiHeadAttention`. Both train
with Adam on the same batches, in graph mode and with XLA
(`jit_compile=True`), alternating, median of repeats.

    python benchmarks/training_step.py
    python benchmarks/training_step.py --batch 16 --length 128 --repeats 10
"""

import argparse
import math
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
import numpy as np  # noqa: E402

import keras_attention as ka  # noqa: E402


def build_theirs(vocabulary, layers, d_model, heads, ff, dropout):
    import keras_hub

    def embed(ids, name):
        x = keras.layers.Embedding(vocabulary, d_model, name=name)(ids)
        x = keras.layers.Rescaling(math.sqrt(d_model))(x)
        x = x + keras_hub.layers.SinePositionEncoding()(x)
        return keras.layers.Dropout(dropout)(x)

    source = keras.Input((None,), dtype="int32", name="source_ids")
    target = keras.Input((None,), dtype="int32", name="target_ids")
    # Id 0 is padding, masked as ours masks it: keys in every attention,
    # and queries, whose padded rows ours sets to zero.
    source_mask = keras.ops.not_equal(source, 0)
    target_mask = keras.ops.not_equal(target, 0)
    encoded = embed(source, "source_embedding")
    for _ in range(layers):
        encoded = keras_hub.layers.TransformerEncoder(
            ff, heads, dropout=dropout
        )(encoded, padding_mask=source_mask)
    decoded = embed(target, "target_embedding")
    for _ in range(layers):
        decoded = keras_hub.layers.TransformerDecoder(
            ff, heads, dropout=dropout
        )(
            decoded,
            encoded,
            decoder_padding_mask=target_mask,
            encoder_padding_mask=source_mask,
        )
    logits = keras.layers.Dense(vocabulary, name="logits")(decoded)
    return keras.Model({"source_ids": source, "target_ids": target}, logits)


def compiled(model, jit_compile):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--vocabulary", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--feed-forward", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    shape = (args.batch, args.length)
    x = {
        "source_ids": rng.integers(1, args.vocabulary, shape, dtype="int32"),
        "target_ids": rng.integers(1, args.vocabulary, shape, dtype="int32"),
    }
    y = rng.integers(1, args.vocabulary, shape, dtype="int32")
    tokens = 2 * args.batch * args.length
    sizes = (args.layers, args.d_model, args.heads, args.feed_forward, 0.1)
    rows = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)
        models = {
            "ours": compiled(
                ka.models.build_transformer(
                    args.vocabulary,
                    args.vocabulary,
                    num_layers=args.layers,
                    d_model=args.d_model,
                    num_heads=args.heads,
                    feed_forward_dim=args.feed_forward,
                    dropout=0.1,
                ),
                jit_compile,
            ),
            "theirs": compiled(
                build_theirs(args.vocabulary, *sizes), jit_compile
            ),
        }
        steps = {
            name: (lambda model=model: model.train_on_batch(x, y))
            for name, model in models.items()
        }
        # Two warm-up rounds: trace/compile, then one warm step.
        times = interleaved_times(steps, args.repeats, warmup=2)
        ours = statistics.median(times["ours"])
        theirs = statistics.median(times["theirs"])
        q1, q3 = round_ratio_quartiles(times["theirs"], times["ours"])
        rows.append(
            {
                "xla": jit_compile,
                "ours_tokens_per_s": tokens / ours,
                "theirs_tokens_per_s": tokens / theirs,
                "speedup": theirs / ours,
                "speedup_q1": q1,
                "speedup_q3": q3,
                "ours_params": models["ours"].count_params(),
                "theirs_params": models["theirs"].count_params(),
            }
        )
        print_table(rows[-1:], list(rows[-1]))
    print()
    print_table(rows, list(rows[0]))
    write_json("training_step", {"config": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
