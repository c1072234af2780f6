"""Generation speed: KV-cached vs uncached, and grouped-query KV caches.

A `build_causal_lm` model (4 layers, d_model 256, 8 heads, rotary
positions, untrained) generates greedily with `CausalLMGenerator` into a
buffer of `max_length` 512: a prompt of `512 - new_tokens` ids, then
`new_tokens` new ones. For `num_key_value_heads` = 8 (plain multi-head),
2 (grouped-query) and 1 (multi-query), each backend in its own process:

- `cache_mib`: the KV cache of all blocks, from the cache shapes
  `(batch, 2, max_length, kv_heads, key_dim)` x 4 bytes x layers.
- `tok_per_s`: generated tokens per second of a whole `generate` call,
  cached (the prompt pass fills the caches, then one token per step) and
  uncached (`use_cache=False`: the model re-runs over the whole buffer at
  every step).
- `decode_tok_per_s`: the per-token speed of the decoding steps alone. For
  the cached runs, `(new_tokens - 1)` tokens over the time of the call
  minus that of a call generating one token (the prompt pass and one
  step); an uncached run has no prompt pass, so it equals `tok_per_s`.
- `traces`: how many times the generator traced its programs (`programs`:
  one cached, one uncached) over all its calls (`calls`), prompts of two
  lengths included: one per program where it compiles once (TensorFlow,
  JAX); PyTorch runs eagerly, one per call.

All the calls of a backend are timed alternately, round by round
(`interleaved_times`), so ratios between rows (`vs_uncached`, the cached
speed over the uncached one of the same model) are fair on a noisy shared
machine.

    python benchmarks/generation.py                  # ~10 min on 2 CPUs
    python benchmarks/generation.py --quick          # max_length 128
    python benchmarks/generation.py --backends tensorflow --batch 4
"""

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _common import interleaved_times  # noqa: E402
from _common import print_table  # noqa: E402
from _common import print_worker_result  # noqa: E402
from _common import run_worker  # noqa: E402
from _common import write_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")
VOCABULARY_SIZE = 1024
NUM_LAYERS = 4
D_MODEL = 256
NUM_HEADS = 8
FEED_FORWARD_DIM = 1024
MAX_LENGTH = 512
QUICK_MAX_LENGTH = 128
KV_HEADS = [8, 2, 1]
SEED = 0
PADDING_ID = 0


# -- in the worker process ------------------------------------------------


def cache_bytes(cache_shape, itemsize, num_layers):
    """Bytes of the KV caches of `num_layers` blocks of `cache_shape`."""
    return math.prod(cache_shape) * itemsize * num_layers


def _prompts(batch, length, rng):
    return rng.integers(
        PADDING_ID + 1, VOCABULARY_SIZE, (batch, length), dtype="int32"
    )


def _model_steps(kv_heads, args, rng):
    """The generator of one model and its timed calls."""
    import keras

    from keras_attention.models import CausalLMGenerator
    from keras_attention.models import build_causal_lm

    keras.utils.set_random_seed(SEED)
    model = build_causal_lm(
        VOCABULARY_SIZE,
        num_layers=NUM_LAYERS,
        d_model=D_MODEL,
        num_heads=NUM_HEADS,
        feed_forward_dim=FEED_FORWARD_DIM,
        num_key_value_heads=kv_heads,
        max_length=args.max_length,
        padding_id=PADDING_ID,
    )
    generator = CausalLMGenerator(model, max_length=args.max_length)
    block = model.get_layer("decoder_block_0")
    cache = block.empty_self_attention_cache(args.batch, args.max_length)
    prompt = _prompts(args.batch, args.max_length - args.new_tokens, rng)
    # One new token: the prompt pass and a single decoding step.
    long_prompt = _prompts(args.batch, args.max_length - 1, rng)

    def call(prompt_ids, use_cache):
        return lambda: generator.generate(prompt_ids, use_cache=use_cache)

    steps = {
        "cached": call(prompt, True),
        "cached_one_token": call(long_prompt, True),
    }
    if kv_heads in args.uncached_kv_heads:
        steps["uncached"] = call(prompt, False)
    info = {
        "cache_shape": list(keras.ops.shape(cache)),
        "cache_dtype": str(keras.backend.standardize_dtype(cache.dtype)),
        "cache_bytes": cache_bytes(
            keras.ops.shape(cache),
            int(keras.ops.convert_to_numpy(cache).dtype.itemsize),
            NUM_LAYERS,
        ),
        "parameters": model.count_params(),
    }
    return generator, steps, info


def measure(args):
    """Every model's calls, timed round by round: a list of row dicts."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    generators, steps, infos = {}, {}, {}
    for kv_heads in args.kv_heads:
        generator, model_steps, info = _model_steps(kv_heads, args, rng)
        generators[kv_heads], infos[kv_heads] = generator, info
        for name, step in model_steps.items():
            steps[(kv_heads, name)] = step
    compile_start = time.perf_counter()
    for step in steps.values():  # compile (and check) every program
        step()
    compile_s = time.perf_counter() - compile_start
    times = interleaved_times(steps, args.repeats, warmup=0)
    seconds = {key: statistics.median(t) for key, t in times.items()}
    new = args.batch * args.new_tokens
    rows = []
    for kv_heads in args.kv_heads:
        cached = seconds[(kv_heads, "cached")]
        one = seconds[(kv_heads, "cached_one_token")]
        decode_s = cached - one
        base = dict(
            kv_heads=kv_heads,
            cache_mib=infos[kv_heads]["cache_bytes"] / 2**20,
            **infos[kv_heads],
            traces=generators[kv_heads].traces,
            # One compiled program per use_cache value.
            programs=1 + ((kv_heads, "uncached") in steps),
            calls=(args.repeats + 1) * sum(k[0] == kv_heads for k in steps),
        )
        rows.append(
            dict(
                base,
                mode="cached",
                seconds=cached,
                prompt_pass_s=one,
                tok_per_s=new / cached,
                decode_tok_per_s=(
                    args.batch * (args.new_tokens - 1) / decode_s
                    if decode_s > 0
                    else None
                ),
                times=times[(kv_heads, "cached")],
                one_token_times=times[(kv_heads, "cached_one_token")],
            )
        )
        if (kv_heads, "uncached") in seconds:
            uncached = seconds[(kv_heads, "uncached")]
            rows.append(
                dict(
                    base,
                    mode="uncached",
                    seconds=uncached,
                    tok_per_s=new / uncached,
                    decode_tok_per_s=new / uncached,
                    times=times[(kv_heads, "uncached")],
                )
            )
            rows[-2]["vs_uncached"] = uncached / cached
    return {"rows": rows, "compile_s": compile_s}


def _worker(args):
    sys.path.insert(0, ROOT)
    print_worker_result(measure(args))


# -- in the parent process ------------------------------------------------


def _worker_args(args):
    return [
        "--max-length", args.max_length, "--new-tokens", args.new_tokens,
        "--batch", args.batch, "--repeats", args.repeats,
        "--kv-heads", *args.kv_heads,
        "--uncached-kv-heads", *args.uncached_kv_heads,
    ]  # fmt: skip


def _run_worker(backend, args):
    result = run_worker(__file__, backend, _worker_args(args))
    return {"rows": [result]} if "error" in result else result


COLUMNS = [
    "backend", "kv_heads", "mode", "cache_mib", "seconds", "tok_per_s",
    "decode_tok_per_s", "vs_uncached", "programs", "traces", "calls",
    "error",
]  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument(
        "--new-tokens", type=int, default=32, help="generated per prompt"
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kv-heads", nargs="+", type=int, default=KV_HEADS)
    parser.add_argument(
        "--uncached-kv-heads",
        nargs="*",
        type=int,
        default=[NUM_HEADS],
        help="the models also timed with use_cache=False (the uncached "
        "cost hardly depends on the KV heads)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"max_length {QUICK_MAX_LENGTH}"
    )
    parser.add_argument(
        "--output", default="generation", help="results/NAME.json"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.max_length is None:
        args.max_length = QUICK_MAX_LENGTH if args.quick else MAX_LENGTH
    if args.worker:
        return _worker(args)
    if not 2 <= args.new_tokens < args.max_length:
        parser.error(
            "--new-tokens must be in [2, max_length). Received: "
            f"{args.new_tokens}"
        )

    rows, compile_s = [], {}
    for backend in args.backends:
        start = time.perf_counter()
        result = _run_worker(backend, args)
        compile_s[backend] = result.get("compile_s")
        backend_rows = [dict(r, backend=backend) for r in result["rows"]]
        print(f"{backend}: {time.perf_counter() - start:.0f} s")
        print_table(backend_rows, COLUMNS)
        print(flush=True)
        rows += backend_rows
    print_table(rows, COLUMNS)
    write_json(
        args.output,
        {
            "config": {
                "vocabulary_size": VOCABULARY_SIZE,
                "num_layers": NUM_LAYERS,
                "d_model": D_MODEL,
                "num_heads": NUM_HEADS,
                "feed_forward_dim": FEED_FORWARD_DIM,
                "max_length": args.max_length,
                "prompt_length": args.max_length - args.new_tokens,
                "new_tokens": args.new_tokens,
                "batch": args.batch,
                "sampler": "greedy",
                "repeats": args.repeats,
                "timing": (
                    "every call of a backend timed alternately, round by "
                    f"round, {args.repeats} rounds after one compiling "
                    "call each; medians"
                ),
                "cache_bytes": (
                    "batch x 2 x max_length x kv_heads x key_dim x 4 bytes "
                    "x layers, from the cache shapes"
                ),
            },
            "compile_s": compile_s,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
