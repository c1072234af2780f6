"""Train a decoder-only language model on a text file or a TFDS dataset.

The text is a UTF-8 file (`--text-file`, by default the nursery rhymes in
`recipes/data/`, so the recipe runs offline) or a TFDS text feature
(`--tfds-name`, `--text-key`), cut into characters or WordPiece subwords
(`--tokenizer`), each document followed by the end id; the last 10% of the
tokens are held out, and both parts are cut into `--sequence-length`
windows. It trains `keras_attention.models.build_causal_lm`, prints the
held-out loss and perplexity (per token) every epoch and sampled
continuations at the end, and writes to `--output-dir` `attention.png`
(every head over a held-out prompt), `training_curves.png`, `model.keras`,
the vocabulary (reloaded on resume), the runner's files (see
`keras_attention.cli`; an interrupted run resumes when the same command
runs again) and `saved_model/<version>/`: `serving_default` continues
prompt strings greedily, `generate` also takes per-prompt `max_new_tokens`,
`temperature`, `top_k` and `seed` (see
`keras_attention.serving.language_model`); it is checked in a fresh
process that never imports `keras_attention`.

    python recipes/language_model.py --output-dir outputs/rhymes
    python recipes/language_model.py --tfds-name tiny_shakespeare \\
        --tokenizer wordpiece --preset small
"""

import dataclasses
import functools
import math
import os

from keras_attention import cli
from keras_attention.data import TOKENIZER_FILES
from keras_attention.data import continue_texts
from keras_attention.data import learn_or_load_tokenizer
from keras_attention.data import load_documents
from keras_attention.data import make_language_model_dataset
from keras_attention.data import token_streams
from keras_attention.data import window_prompts
from keras_attention.models import CausalLMGenerator
from keras_attention.models import build_causal_lm
from keras_attention.models.causal_lm import POSITION_ENCODINGS
from keras_attention.samplers import TopKSampler
from keras_attention.serving.language_model import export_causal_lm
from keras_attention.training import PerplexityPrinter
from keras_attention.training import language_model_compile_arguments
from keras_attention.viz import plot_causal_lm_attention
from keras_attention.viz import plot_training_curves

DEFAULT_TEXT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "data", "nursery_rhymes.txt"
)
NUM_PROMPTS = 3
PROMPT_TOKENS = 12
HEATMAP_TOKENS = 24
# `load_documents`'s arguments, and `build_causal_lm`'s, in `args`.
DATA_OPTIONS = (
    "text_file tfds_name text_key train_split data_dir max_train_examples"
).split()
MODEL_OPTIONS = (
    "num_layers d_model num_heads feed_forward_dim num_key_value_heads "
    "dropout position_encoding sliding_window normalization activation"
).split()


@dataclasses.dataclass(frozen=True)
class Sizes:
    num_layers: int
    d_model: int
    num_heads: int
    feed_forward_dim: int
    epochs: int
    batch_size: int
    learning_rate: float


PRESETS = {
    "tiny": Sizes(1, 64, 4, 128, 6, 16, 5e-3),  # seconds on a CPU
    "small": Sizes(4, 256, 8, 768, 20, 32, 1e-3),
}


def build_parser():
    """The command-line parser (every option has a help text)."""
    parser = cli.make_parser(__doc__)
    data = parser.add_argument_group("data")
    data.add_argument(
        "--text-file", default=DEFAULT_TEXT, help="a UTF-8 text to learn"
    )
    data.add_argument(
        "--tfds-name", help="a TFDS text dataset instead of --text-file"
    )
    cli.add_argument(data, "text_key", default="text", help="its text feature")
    cli.add_arguments(data, "train_split", "data_dir", "max_train_examples")
    text = parser.add_argument_group("tokenizer")
    text.add_argument(
        "--tokenizer",
        choices=sorted(TOKENIZER_FILES),
        default="character",
        help="token unit",
    )
    cli.add_arguments(text, "case_sensitive", vocabulary_size=2000)
    text.add_argument(
        "--sequence-length",
        type=int,
        default=64,
        help="tokens per training window, and the model's context",
    )
    cli.add_preset_group(parser, PRESETS, "tiny", "model and training sizes")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--position-encoding", choices=POSITION_ENCODINGS, default="rotary"
    )
    model.add_argument(
        "--num-key-value-heads",
        type=int,
        help="grouped-query attention's key/value heads (1: multi-query; "
        "default: --num-heads)",
    )
    model.add_argument(
        "--sliding-window", type=int, help="local attention span in tokens"
    )
    model.add_argument(
        "--normalization", choices=("rms", "layer"), default="rms"
    )
    model.add_argument(
        "--activation",
        default="swiglu",
        help="feed-forward activation: swiglu, geglu or a Keras activation",
    )
    cli.add_arguments(model, dropout=0.0)
    cli.add_sampling_arguments(
        parser, max_new_tokens=40, temperature=0.8, top_k=10
    )
    cli.add_training_arguments(parser)
    cli.add_output_arguments(parser, "language_model")
    return parser


def parse_args(argv=None):
    return cli.parse_arguments(
        build_parser(), argv, positive=("sequence_length",), presets=PRESETS
    )


def main(argv=None, callbacks=()):
    """Runs the recipe; returns a summary dict (also `summary.json`).

    Args:
        argv: command-line arguments (default: `sys.argv[1:]`).
        callbacks: extra Keras callbacks for `model.fit`.
    """
    args = parse_args(argv)
    run = cli.Run(args)
    documents = load_documents(  # bad input stops here, before cleanup
        *(getattr(args, name) for name in DATA_OPTIONS)
    )
    run.start()
    tokenizer = learn_or_load_tokenizer(
        args.tokenizer,
        documents,
        run.output_dir,
        args.vocabulary_size,
        reuse=run.resuming,
        lowercase=not args.case_sensitive,
    )
    length = args.sequence_length
    train_ids, held_out_ids = token_streams(tokenizer, documents, length)
    print(
        f"Data: {len(documents)} documents, {len(train_ids)} training and "
        f"{len(held_out_ids)} held-out tokens, vocabulary of "
        f"{tokenizer.vocabulary_size} {args.tokenizer} tokens"
    )
    train, held_out = (
        make_language_model_dataset(ids, length, args.batch_size, shuffle, seed)
        for ids, shuffle, seed in (
            (train_ids, True, args.seed),
            (held_out_ids, False, 0),
        )
    )
    model = run.build_and_compile(
        lambda: build_causal_lm(
            tokenizer.vocabulary_size,
            max_length=length,
            **{name: getattr(args, name) for name in MODEL_OPTIONS},
        ),
        functools.partial(language_model_compile_arguments, args.learning_rate),
    )
    history = run.fit(
        model,
        train,
        [PerplexityPrinter(), *callbacks],
        validation_data=held_out,
    )
    loss = model.evaluate(held_out, verbose=0)
    generator = CausalLMGenerator(model, length, end_id=tokenizer.end_id)
    prompts = args.prompt or window_prompts(
        tokenizer, held_out_ids, length, NUM_PROMPTS, PROMPT_TOKENS
    )
    new_tokens = min(args.max_new_tokens, length - 1)
    sampler = TopKSampler(k=args.top_k, temperature=args.temperature)
    samples = continue_texts(
        generator, tokenizer, prompts, new_tokens, sampler=sampler, seed=0
    )
    print(f"Held-out loss {loss:.4f}, perplexity {math.exp(loss):.2f}")
    for sample in samples:
        print(f"  {sample!r}")
    plot_causal_lm_attention(
        generator,
        tokenizer,
        held_out_ids[: min(HEATMAP_TOKENS, length)],
        run.path("attention.png"),
        title="self-attention over a held-out prompt",
    )
    plot_training_curves(
        history, run.path("training_curves.png"), ("loss", "val_loss")
    )
    run.save_model(model)
    summary = {
        "held_out_loss": loss,
        "held_out_perplexity": math.exp(loss),
        "num_train_tokens": len(train_ids),
        "num_held_out_tokens": len(held_out_ids),
        "vocabulary_size": tokenizer.vocabulary_size,
        "samples": samples,
        "training_and_evaluation_seconds": run.elapsed(),
    }
    run.export_to_summary(
        summary,
        functools.partial(
            export_causal_lm,
            model=model,
            tokenizer=tokenizer,
            max_length=length,
            end_id=tokenizer.end_id,
            max_new_tokens=new_tokens,
            truncate=True,
        ),
        prompts,
        lambda texts: continue_texts(generator, tokenizer, texts, new_tokens),
        noun="greedy continuations",
    )
    return run.finish(summary)


if __name__ == "__main__":
    cli.run_recipe(main)
