"""Generation speed: KV-cached vs uncached, grouped-query and rolling caches.

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

The `window` section (`section` column) generates long with a windowed
model of the same size (`sliding_window` 64, 2 KV heads, `max_length`
1024: a prompt of 512 ids, then 512 new ones), once with full-length caches
(`cache="full"`, `CausalLMGenerator(rolling_cache=False)`) and once with
rolling caches of the window (`cache="rolling"`, the default): `cache_mib`
from the caches decoding holds (`empty_caches`), `decode_tok_per_s` as
above, `vs_full` the rolling decode speed over the full-cache one, and
`same_ids` whether both generated the same ids.

All the calls of a backend are timed alternately, round by round
(`interleaved_times`), so ratios between rows (`vs_uncached`, the cached
speed over the uncached one of the same model) are fair on a noisy shared
machine.

    python benchmarks/generation.py                  # ~15 min on 2 CPUs
    python benchmarks/generation.py --quick          # max_length 128
    python benchmarks/generation.py --backends tensorflow --batch 4
    python benchmarks/generation.py --sections window \
        --output generation_rolling_cache             # the window rows
"""

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

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
SECTIONS = ("kv_heads", "window")
WINDOW = 64
WINDOW_KV_HEADS = 2
WINDOW_MAX_LENGTH = 1024
WINDOW_NEW_TOKENS = 512
CACHE_KINDS = ("full", "rolling")
SEED = 0
PADDING_ID = 0


# -- in the worker process ------------------------------------------------


def cache_info(generator, batch):
    """Shape (of the first block's), dtype and bytes of the decoding caches."""
    import keras

    caches = generator.empty_caches(batch)
    itemsize = keras.ops.convert_to_numpy(caches[0]).dtype.itemsize
    return {
        "cache_shape": list(keras.ops.shape(caches[0])),
        "cache_dtype": str(keras.backend.standardize_dtype(caches[0].dtype)),
        "cache_bytes": sum(
            math.prod(keras.ops.shape(c)) * int(itemsize) for c in caches
        ),
    }


def _prompts(batch, length, rng):
    return rng.integers(
        PADDING_ID + 1, VOCABULARY_SIZE, (batch, length), dtype="int32"
    )


def _model(kv_heads, max_length, sliding_window=None):
    import keras

    from keras_attention.models import build_causal_lm

    keras.utils.set_random_seed(SEED)
    return build_causal_lm(
        VOCABULARY_SIZE,
        num_layers=NUM_LAYERS,
        d_model=D_MODEL,
        num_heads=NUM_HEADS,
        feed_forward_dim=FEED_FORWARD_DIM,
        num_key_value_heads=kv_heads,
        max_length=max_length,
        sliding_window=sliding_window,
        padding_id=PADDING_ID,
    )


def _generator_steps(model, max_length, new_tokens, batch, rng, **options):
    """`(generator, steps, info)`: one generator and its timed calls.

    `steps["cached"]` generates `new_tokens` ids after a prompt;
    `steps["cached_one_token"]` one id (the prompt pass and one step);
    with `uncached=True` also `steps["uncached"]`.
    """
    from keras_attention.models import CausalLMGenerator

    uncached = options.pop("uncached", False)
    generator = CausalLMGenerator(model, max_length=max_length, **options)
    prompt = _prompts(batch, max_length - new_tokens, rng)
    # One new token: the prompt pass and a single decoding step.
    long_prompt = _prompts(batch, max_length - 1, rng)

    def call(prompt_ids, use_cache):
        return lambda: generator.generate(prompt_ids, use_cache=use_cache)

    steps = {
        "cached": call(prompt, True),
        "cached_one_token": call(long_prompt, True),
    }
    if uncached:
        steps["uncached"] = call(prompt, False)
    info = dict(cache_info(generator, batch), parameters=model.count_params())
    return generator, steps, info


def _cached_row(name, seconds, times, batch, new_tokens):
    """The timing columns of a cached row from its two calls' times."""
    cached = seconds[(name, "cached")]
    one = seconds[(name, "cached_one_token")]
    decode_s = cached - one
    return dict(
        mode="cached",
        seconds=cached,
        prompt_pass_s=one,
        tok_per_s=batch * new_tokens / cached,
        decode_tok_per_s=(
            batch * (new_tokens - 1) / decode_s if decode_s > 0 else None
        ),
        times=times[(name, "cached")],
        one_token_times=times[(name, "cached_one_token")],
    )


def _kv_heads_setups(args, rng):
    """The grouped-query section: name -> (generator, steps, row base)."""
    setups = {}
    for kv_heads in args.kv_heads:
        generator, steps, info = _generator_steps(
            _model(kv_heads, args.max_length),
            args.max_length,
            args.new_tokens,
            args.batch,
            rng,
            uncached=kv_heads in args.uncached_kv_heads,
        )
        base = dict(section="kv_heads", kv_heads=kv_heads, **info)
        setups[("kv_heads", kv_heads)] = (generator, steps, base)
    return setups


def _window_setups(args, rng):
    """The rolling-cache section: one windowed model, full vs rolling."""
    model = _model(
        WINDOW_KV_HEADS, args.window_max_length, sliding_window=args.window
    )
    setups = {}
    for kind in CACHE_KINDS:
        generator, steps, info = _generator_steps(
            model,
            args.window_max_length,
            args.window_new_tokens,
            args.batch,
            # The same prompts for both kinds of cache.
            np.random.default_rng(SEED + 1),
            rolling_cache=kind == "rolling",
        )
        base = dict(
            section="window",
            kv_heads=WINDOW_KV_HEADS,
            window=args.window,
            cache=kind,
            max_length=args.window_max_length,
            new_tokens=args.window_new_tokens,
            **info,
        )
        setups[("window", kind)] = (generator, steps, base)
    return setups


def measure(args):
    """Every model's calls, timed round by round: a list of row dicts."""
    rng = np.random.default_rng(SEED)
    setups = {}
    if "kv_heads" in args.sections:
        setups.update(_kv_heads_setups(args, rng))
    if "window" in args.sections:
        setups.update(_window_setups(args, rng))
    steps = {
        (name, step_name): step
        for name, (_, named_steps, _) in setups.items()
        for step_name, step in named_steps.items()
    }
    compile_start = time.perf_counter()
    first_ids = {key: step() for key, step in steps.items()}  # compile
    compile_s = time.perf_counter() - compile_start
    times = interleaved_times(steps, args.repeats, warmup=0)
    seconds = {key: statistics.median(t) for key, t in times.items()}
    rows = []
    for name, (generator, named_steps, base) in setups.items():
        base = dict(
            base,
            cache_mib=base["cache_bytes"] / 2**20,
            traces=generator.traces,
            # One compiled program per use_cache value.
            programs=1 + ("uncached" in named_steps),
            calls=(args.repeats + 1) * len(named_steps),
        )
        new_tokens = base.pop("new_tokens", args.new_tokens)
        rows.append(
            dict(
                base,
                **_cached_row(name, seconds, times, args.batch, new_tokens),
            )
        )
        if "uncached" in named_steps:
            uncached = seconds[(name, "uncached")]
            new = args.batch * new_tokens
            rows.append(
                dict(
                    base,
                    mode="uncached",
                    seconds=uncached,
                    tok_per_s=new / uncached,
                    decode_tok_per_s=new / uncached,
                    times=times[(name, "uncached")],
                )
            )
            rows[-2]["vs_uncached"] = uncached / rows[-2]["seconds"]
    if "window" in args.sections:
        full, rolling = (
            next(r for r in rows if r.get("cache") == kind)
            for kind in CACHE_KINDS
        )
        rolling["vs_full"] = (
            rolling["decode_tok_per_s"] / full["decode_tok_per_s"]
            if rolling["decode_tok_per_s"] and full["decode_tok_per_s"]
            else None
        )
        rolling["same_ids"] = bool(
            np.array_equal(
                first_ids[(("window", "rolling"), "cached")],
                first_ids[(("window", "full"), "cached")],
            )
        )
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
        "--sections", *args.sections, "--window", args.window,
        "--window-max-length", args.window_max_length,
        "--window-new-tokens", args.window_new_tokens,
    ]  # fmt: skip


def _run_worker(backend, args):
    result = run_worker(__file__, backend, _worker_args(args))
    return {"rows": [result]} if "error" in result else result


COLUMNS = [
    "backend", "section", "kv_heads", "window", "cache", "mode",
    "cache_mib", "seconds", "tok_per_s", "decode_tok_per_s", "vs_uncached",
    "vs_full", "same_ids", "programs", "traces", "calls", "error",
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
        "--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS)
    )
    parser.add_argument(
        "--window", type=int, default=WINDOW, help="of the window section"
    )
    parser.add_argument(
        "--window-max-length", type=int, default=WINDOW_MAX_LENGTH
    )
    parser.add_argument(
        "--window-new-tokens", type=int, default=WINDOW_NEW_TOKENS
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
    if not 2 <= args.window_new_tokens < args.window_max_length:
        parser.error(
            "--window-new-tokens must be in [2, --window-max-length). "
            f"Received: {args.window_new_tokens}"
        )
    if not 1 <= args.window < args.window_max_length:
        parser.error(
            "--window must be in [1, --window-max-length) for the rolling "
            f"cache to be shorter. Received: {args.window}"
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
                    "batch x 2 x cache_length x kv_heads x key_dim x 4 "
                    "bytes x layers, from the shapes of the caches "
                    "decoding holds (cache_length: max_length, or the "
                    "window of a rolling cache)"
                ),
                "sections": args.sections,
                "window": {
                    "sliding_window": args.window,
                    "kv_heads": WINDOW_KV_HEADS,
                    "max_length": args.window_max_length,
                    "prompt_length": (
                        args.window_max_length - args.window_new_tokens
                    ),
                    "new_tokens": args.window_new_tokens,
                },
            },
            "compile_s": compile_s,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
