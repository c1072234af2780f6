"""Train a Transformer to translate, score it with sacreBLEU and export it.

Data: the TFDS dataset `--dataset` (default `ted_hrlr_translate/pt_to_en`),
two line-aligned files (`--source-file`, `--target-file`) or a TSV
(`--data`). One cased SentencePiece model per language (`--tokenizer
wordpiece`: lower-cased WordPieces), a Transformer, label smoothing, the
paper's learning-rate schedule; it stops early by default (--patience 3 on
the validation loss, best weights kept; at most 30 epochs). It prints
sacreBLEU (with its signature) of the held-out translations and writes to
`--output-dir`: `attention.png`, `model.keras`, the tokenizers' files
(`data.TOKENIZER_FILES`), the runner's files (`keras_attention.cli`; a
killed run resumes) and `saved_model/` (raw sentences in, natural text out;
checked without `keras_attention`).

    python recipes/translate.py                      # CPU-sized model
    python recipes/translate.py --preset base --strategy mirrored  # GPUs
    python recipes/translate.py --source-file train.pt --target-file \\
        train.en --epochs 10
"""

import functools

from keras_attention import cli
from keras_attention.data import load_text_pairs
from keras_attention.data import translation_tokenizers
from keras_attention.data.translation import DEFAULT_DATASET
from keras_attention.data.translation import DEFAULT_HELD_OUT_SPLIT
from keras_attention.data.translation import LENGTH_POLICIES
from keras_attention.data.translation import TOKENIZER_FILES
from keras_attention.data.translation import TOKENIZERS
from keras_attention.data.translation import make_translation_datasets
from keras_attention.data.translation import reference_normalizer
from keras_attention.metrics import evaluate_translations
from keras_attention.models import build_transformer
from keras_attention.serving import Translator
from keras_attention.serving import export_translator
from keras_attention.training import TRANSFORMER_PRESETS
from keras_attention.training import transformer_compile_arguments
from keras_attention.viz import plot_translator_attention

# `build_transformer`'s arguments in `args`.
MODEL_OPTIONS = "num_layers d_model num_heads feed_forward_dim dropout".split()
HELD_OUT_FRACTION = 0.05
NUM_PRINTED_EXAMPLES = 3
NUM_HEATMAPS = 3
NUM_EXPORT_CHECKS = 32
# A user's ~30k-pair file: early stopping, <= 30 epochs.
DEFAULT_EPOCHS = 30
DEFAULT_PATIENCE = 3


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    data = parser.add_argument_group("data")
    cli.add_argument(
        data,
        "dataset",
        default=DEFAULT_DATASET,
        help="TFDS translation dataset (name/config); ignored with "
        "--source-file or --data",
    )
    cli.add_arguments(data, "data_dir", "source_key", "target_key")
    cli.add_argument(data, "train_split")
    data.add_argument(
        "--eval-split",
        default=DEFAULT_HELD_OUT_SPLIT,
        help="TFDS split for validation loss and BLEU (a dataset without a "
        "validation split holds out --held-out-fraction of --train-split)",
    )
    cli.add_arguments(data, "source_file", "target_file")
    cli.add_argument(
        data, "data", help="local `source<TAB>target` file instead of --dataset"
    )
    cli.add_arguments(
        data,
        "max_train_examples",
        "max_eval_examples",
        held_out_fraction=HELD_OUT_FRACTION,
    )
    text = parser.add_argument_group("tokenizer")
    text.add_argument(
        "--tokenizer",
        choices=TOKENIZERS,
        default="sentencepiece",
        help="sentencepiece: cased, natural detokenized text (default); "
        "wordpiece: normalised words, with the two options below",
    )
    cli.add_arguments(text, "case_sensitive", "normalization")
    cli.add_preset_group(
        parser,
        TRANSFORMER_PRESETS,
        "cpu-small",
        "model and training sizes: cpu-small (2 layers, d_model 128) "
        "for a CPU, base (the paper's base model) for a GPU",
        num_layers="encoder and decoder blocks",
        vocabulary_size="subword vocabulary size per language",
        max_length="longest source or target in tokens",
        batch_tokens="token budget per batch; batches group sentences of "
        "similar length",
    )
    training = cli.add_training_arguments(
        parser,
        "steps_per_epoch",
        batch_size=dict(help="sentence pairs per batch instead"),
        label_smoothing=0.1,
    )
    parser.set_defaults(epochs=DEFAULT_EPOCHS)  # the stopping rule ends it
    training.add_argument(
        "--length-policy",
        choices=LENGTH_POLICIES,
        default="filter",
        help="drop or truncate training pairs longer than --max-length",
    )
    decoding = parser.add_argument_group("decoding")
    cli.add_arguments(
        decoding, "max_output_length", beam_width=4, length_penalty=0.6
    )
    cli.add_output_arguments(parser, "translate")
    args = cli.parse_arguments(parser, argv, presets=TRANSFORMER_PRESETS)
    if args.patience is None:
        args.patience = DEFAULT_PATIENCE
    return args


def load_data(args):
    """`(train, held_out)`: pairs or a TFDS dataset; a list of pairs."""
    pairs = load_text_pairs(
        **cli.data_source_arguments(args),
        file_format="tsv",
        max_held_out_examples=args.max_eval_examples,
        held_out_split=args.eval_split,
    )
    if pairs.keys:
        print(
            f"TFDS {args.dataset}: {' -> '.join(pairs.keys)}, training on "
            f"{args.train_split}, held out: {pairs.held_out_from}"
        )
    return pairs.train, pairs.held_out


def main(argv=None, callbacks=()):
    """Runs the recipe; returns a summary dict (also `summary.json`).

    Args:
        argv: command-line arguments (default: `sys.argv[1:]`).
        callbacks: extra Keras callbacks for `model.fit`.
    """
    args = parse_args(argv)
    run = cli.Run(args)
    train, held_out = load_data(args)  # bad input stops here
    resuming = run.start()
    source_tokenizer, target_tokenizer = translation_tokenizers(
        train,
        args.vocabulary_size,
        [run.path(name) for name in TOKENIZER_FILES[args.tokenizer]],
        reuse=resuming,
        lowercase=not args.case_sensitive,
        normalization=args.normalization,
        tokenizer=args.tokenizer,
        seed=args.seed,
    )
    print(
        f"Data: {len(held_out)} held-out pairs, e.g. {held_out[0][0]!r} -> "
        f"{held_out[0][1]!r}; {args.tokenizer} vocabularies of "
        f"{source_tokenizer.vocabulary_size} and "
        f"{target_tokenizer.vocabulary_size}"
    )
    train_data, validation_data = make_translation_datasets(
        train,
        held_out,
        source_tokenizer,
        target_tokenizer,
        length_policy=args.length_policy,
        seed=args.seed,
        batch_size=args.batch_size or 64,
        batch_tokens=args.batch_tokens,
        max_length=args.max_length,
    )
    model = run.build_and_compile(
        functools.partial(
            build_transformer,
            source_tokenizer.vocabulary_size,
            target_tokenizer.vocabulary_size,
            max_length=max(args.max_length, args.max_output_length),
            padding_id=source_tokenizer.padding_id,
            **{name: getattr(args, name) for name in MODEL_OPTIONS},
        ),
        lambda: transformer_compile_arguments(
            args.d_model, args.warmup_steps, args.label_smoothing
        ),
    )
    print(
        f"Model: {model.count_params():,} parameters, {args.num_layers} "
        f"layers, d_model {args.d_model}, on "
        f"{run.strategy.num_replicas_in_sync} replica(s)"
    )
    run.fit(
        model,
        train_data,
        callbacks,
        validation_data=validation_data,
        steps_per_epoch=args.steps_per_epoch,
    )
    training_seconds = run.elapsed()
    run.save_model(model)

    translator = Translator(
        model,
        source_tokenizer,
        target_tokenizer,
        max_output_length=args.max_output_length,
        beam_width=args.beam_width,
        length_penalty=args.length_penalty,
        max_source_length=args.max_length,
        # Longer held-out sources are cut as in training, not rejected.
        truncate=True,
    )
    evaluation = evaluate_translations(
        translator.translate,
        held_out,
        normalize=reference_normalizer(target_tokenizer),
    )
    search = "greedy" if args.beam_width == 1 else f"beam {args.beam_width}"
    print(f"Held-out {search} {evaluation.bleu} on {len(held_out)} sentences")
    print(evaluation.format_examples(NUM_PRINTED_EXAMPLES))
    sources = evaluation.sources
    plot_translator_attention(
        translator.greedy(), sources[:NUM_HEATMAPS], run.path("attention.png")
    )
    summary = {
        **evaluation.summary(),
        "decoding": search,
        "parameters": model.count_params(),
        "training_seconds": training_seconds,
    }
    check = sources[:NUM_EXPORT_CHECKS]
    run.export_to_summary(
        summary,
        functools.partial(export_translator, translator=translator),
        check,
        evaluation.hypotheses[: len(check)],
        noun="translations",
    )
    return run.finish(summary)


if __name__ == "__main__":
    cli.run_recipe(main)
