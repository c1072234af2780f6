"""Train a Transformer to translate, score it with BLEU and export it.

By default it trains on the TFDS dataset `ted_hrlr_translate/pt_to_en`
(Portuguese to English TED talk transcripts; downloaded once, internet
needed) or, offline, on your own parallel text: two line-aligned files
(`--source-file`, `--target-file`) or a TSV (`--data`). It learns one
WordPiece vocabulary per language from the training pairs, trains a
Transformer encoder-decoder (`keras_attention.models.transformer`) with
label-smoothed cross-entropy and the paper's learning-rate schedule, and
then:

- prints the corpus BLEU (sacreBLEU's default: 13a tokenisation, 4-grams,
  exp smoothing) of greedy or beam-search translations of the held-out
  split, and a few example translations. The outputs are the tokenizer's
  normalised text (lower-cased and without accents unless
  `--case-sensitive`), so the references are normalised the same way
  before scoring;
- writes to `--output-dir`: `attention.png` (cross-attention heatmaps of
  a few held-out examples), `model.keras`, the vocabularies
  `source_vocabulary.txt` and `target_vocabulary.txt`, and the runner's
  files (see `keras_attention.cli`: `history.csv`, `checkpoints/`, `logs/`,
  `summary.json`; a killed run resumes when the same command runs again);
- exports `saved_model/`, whose `serving_default` signature maps a batch of
  raw source sentences to translated strings (tokenizer, encoder and cached
  decoder inside), reloads it in a fresh Python process that never imports
  `keras_attention` and checks its answers against the in-process ones.

    python recipes/translate.py                      # CPU-sized model
    python recipes/translate.py --preset base --strategy mirrored  # GPUs
    python recipes/translate.py --source-file train.pt --target-file \\
        train.en --epochs 10
"""

import dataclasses

from keras_attention.cli import Run
from keras_attention.cli import add_argument
from keras_attention.cli import add_arguments
from keras_attention.cli import add_output_arguments
from keras_attention.cli import add_preset_arguments
from keras_attention.cli import apply_preset
from keras_attention.cli import check_arguments
from keras_attention.cli import make_parser
from keras_attention.cli import preset_defaults
from keras_attention.cli import run_recipe
from keras_attention.data.parallel_text import load_parallel_text
from keras_attention.data.parallel_text import split_pairs
from keras_attention.data.translation import DEFAULT_DATASET
from keras_attention.data.translation import DEFAULT_HELD_OUT_SPLIT
from keras_attention.data.translation import LENGTH_POLICIES
from keras_attention.data.translation import load_parallel_files
from keras_attention.data.translation import load_tfds_translation_data
from keras_attention.data.translation import make_translation_dataset
from keras_attention.data.translation import normalized_references
from keras_attention.data.translation import text_pairs
from keras_attention.data.translation import translation_tokenizers
from keras_attention.losses import MaskedSparseCategoricalCrossentropy
from keras_attention.metrics import MaskedTokenAccuracy
from keras_attention.metrics import corpus_bleu
from keras_attention.models.transformer import build_transformer
from keras_attention.serving import Translator
from keras_attention.serving import export_translator
from keras_attention.text.wordpiece_vocabulary import NORMALIZATIONS
from keras_attention.training import make_distribution_strategy
from keras_attention.training import transformer_adam
from keras_attention.viz import plot_translator_attention


@dataclasses.dataclass(frozen=True)
class Preset:
    """Model and training sizes; explicit options override them.

    The defaults are `cpu-small`'s: it trains in well under an hour per
    epoch on a 2-core CPU.
    """

    num_layers: int = 2
    d_model: int = 128
    num_heads: int = 4
    feed_forward_dim: int = 512
    dropout: float = 0.1
    vocabulary_size: int = 4000
    max_length: int = 64
    batch_tokens: int = 4096
    warmup_steps: int = 1000
    epochs: int = 5


PRESETS = {
    "cpu-small": Preset(),
    # The paper's base model (Vaswani et al., 2017), for a GPU.
    "base": Preset(
        num_layers=6,
        d_model=512,
        num_heads=8,
        feed_forward_dim=2048,
        vocabulary_size=8000,
        max_length=128,
        batch_tokens=16384,
        warmup_steps=4000,
        epochs=20,
    ),
}
HELD_OUT_FRACTION = 0.05
NUM_PRINTED_EXAMPLES = 3
NUM_HEATMAPS = 3
NUM_EXPORT_CHECKS = 32
SOURCE_VOCABULARY = "source_vocabulary.txt"
TARGET_VOCABULARY = "target_vocabulary.txt"


def parse_args(argv=None):
    parser = make_parser(__doc__)
    data = parser.add_argument_group("data")
    add_argument(
        data,
        "dataset",
        default=DEFAULT_DATASET,
        help="TFDS translation dataset (name/config); ignored with "
        "--source-file or --data",
    )
    add_argument(data, "data_dir")
    data.add_argument(
        "--source-key",
        help="TFDS feature of the source language (default: the dataset's "
        "first supervised key)",
    )
    data.add_argument(
        "--target-key",
        help="TFDS feature of the target language (default: the second "
        "supervised key)",
    )
    add_argument(data, "train_split")
    data.add_argument(
        "--eval-split",
        default=DEFAULT_HELD_OUT_SPLIT,
        help="TFDS split for validation loss and BLEU (a dataset without a "
        "validation split holds out --held-out-fraction of --train-split)",
    )
    data.add_argument(
        "--source-file",
        metavar="PATH",
        help="local source sentences, one per line (with --target-file)",
    )
    data.add_argument(
        "--target-file",
        metavar="PATH",
        help="local target sentences, line-aligned with --source-file",
    )
    add_argument(
        data,
        "data",
        help="local `source<TAB>target` file instead of --source-file",
    )
    add_argument(
        data,
        "held_out_fraction",
        default=HELD_OUT_FRACTION,
        help="fraction of local pairs (or of a TFDS training split when "
        "the dataset has no validation split) held out for validation and "
        "BLEU",
    )
    add_argument(data, "max_train_examples")
    add_argument(
        data,
        "max_eval_examples",
        help="use at most this many held-out pairs for validation loss and "
        "BLEU (default: all)",
    )
    text = parser.add_argument_group("tokenizer")
    add_preset_arguments(
        text,
        PRESETS,
        "vocabulary_size",
        vocabulary_size="WordPiece vocabulary size per language",
    )
    add_argument(text, "case_sensitive")
    text.add_argument(
        "--normalization",
        choices=[str(n) for n in NORMALIZATIONS],
        default="nfd_strip_accents",
        help="Unicode normalisation before tokenisation",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="cpu-small",
        help="model and training sizes: cpu-small (2 layers, d_model 128) "
        "for a CPU, base (the paper's base model) for a GPU",
    )
    add_preset_arguments(
        model,
        PRESETS,
        "num_layers",
        "d_model",
        "num_heads",
        "feed_forward_dim",
        "dropout",
        num_layers="encoder and decoder blocks",
    )
    training = parser.add_argument_group("training")
    add_preset_arguments(training, PRESETS, "epochs")
    training.add_argument(
        "--batch-tokens",
        type=int,
        help="token budget per batch "
        f"{preset_defaults(PRESETS, 'batch_tokens')}; batches group "
        "sentences of similar length",
    )
    add_argument(
        training,
        "batch_size",
        help="sentence pairs per batch instead of --batch-tokens",
    )
    add_preset_arguments(
        training,
        PRESETS,
        "max_length",
        "warmup_steps",
        max_length="longest source or target in tokens",
    )
    training.add_argument(
        "--length-policy",
        choices=LENGTH_POLICIES,
        default="filter",
        help="drop or truncate training pairs longer than --max-length",
    )
    add_arguments(training, label_smoothing=0.1)
    add_arguments(training, "steps_per_epoch", "strategy", "restart", "seed")
    decoding = parser.add_argument_group("decoding")
    add_arguments(decoding, beam_width=4, length_penalty=0.6)
    add_argument(
        decoding,
        "max_output_length",
        help="the most target tokens generated (default: --max-length)",
    )
    add_output_arguments(parser, "translate")
    args = parser.parse_args(argv)
    apply_preset(args, PRESETS[args.preset])
    if args.batch_size is not None:
        args.batch_tokens = None
    args.max_output_length = args.max_output_length or args.max_length
    args.normalization = (
        None if args.normalization == "None" else args.normalization
    )
    check_arguments(parser, args, positive=("batch_tokens",))
    if bool(args.source_file) != bool(args.target_file):
        parser.error("--source-file and --target-file go together")
    if args.source_file and args.data:
        parser.error("use either --source-file/--target-file or --data")
    return args


def load_data(args):
    """`(train, held_out_pairs)`: training pairs or dataset, held-out list.

    TFDS training data stays a `tf.data.Dataset` (it may be large); the
    held-out pairs are Python strings, for BLEU.
    """
    if args.source_file or args.data:
        if args.data:
            pairs = load_parallel_text(args.data, file_format="tsv")
        else:
            pairs = load_parallel_files(args.source_file, args.target_file)
        train, held_out = split_pairs(
            pairs, args.held_out_fraction, seed=args.seed
        )
        if args.max_train_examples:
            train = train[: args.max_train_examples]
    else:
        data = load_tfds_translation_data(
            args.dataset,
            train_split=args.train_split,
            held_out_split=args.eval_split,
            data_dir=args.data_dir,
            source_key=args.source_key,
            target_key=args.target_key,
            held_out_fraction=args.held_out_fraction,
            max_train_examples=args.max_train_examples,
        )
        train, held_out_data = data.train, data.held_out
        if args.max_eval_examples:
            held_out_data = held_out_data.take(args.max_eval_examples)
        held_out = text_pairs(held_out_data)
        if not held_out:
            raise ValueError(f"The split {args.eval_split!r} is empty.")
        source_key, target_key = data.keys
        print(
            f"TFDS {args.dataset}: {source_key} -> {target_key}, training "
            f"on {args.train_split}, held out: {data.held_out_split}"
        )
    if args.max_eval_examples:
        held_out = held_out[: args.max_eval_examples]
    return train, held_out


def main(argv=None, callbacks=()):
    """Runs the recipe; returns a summary dict (also `summary.json`).

    Args:
        argv: command-line arguments (default: `sys.argv[1:]`).
        callbacks: extra Keras callbacks for `model.fit`.
    """
    args = parse_args(argv)
    run = Run(args)
    train, held_out = load_data(args)  # bad input stops here
    resuming = run.start()
    source_tokenizer, target_tokenizer = translation_tokenizers(
        train,
        args.vocabulary_size,
        [run.path(name) for name in (SOURCE_VOCABULARY, TARGET_VOCABULARY)],
        reuse=resuming,
        lowercase=not args.case_sensitive,
        normalization=args.normalization,
    )
    print(
        f"Data: {len(held_out)} held-out pairs, e.g. {held_out[0][0]!r} -> "
        f"{held_out[0][1]!r}; vocabularies of "
        f"{source_tokenizer.vocabulary_size} and "
        f"{target_tokenizer.vocabulary_size} WordPieces"
    )
    batching = dict(
        batch_size=args.batch_size or 64,
        batch_tokens=args.batch_tokens,
        max_length=args.max_length,
    )
    train_data = make_translation_dataset(
        train,
        source_tokenizer,
        target_tokenizer,
        length_policy=args.length_policy,
        shuffle=True,
        seed=args.seed,
        count_batches=True,
        **batching,
    )
    validation_data = make_translation_dataset(
        held_out,
        source_tokenizer,
        target_tokenizer,
        length_policy="truncate",
        count_batches=True,
        **batching,
    )

    strategy = make_distribution_strategy(args.strategy)
    with strategy.scope():
        model = build_transformer(
            source_tokenizer.vocabulary_size,
            target_tokenizer.vocabulary_size,
            num_layers=args.num_layers,
            d_model=args.d_model,
            num_heads=args.num_heads,
            feed_forward_dim=args.feed_forward_dim,
            dropout=args.dropout,
            max_length=max(args.max_length, args.max_output_length),
            padding_id=source_tokenizer.padding_id,
        )
        model.compile(
            optimizer=transformer_adam(args.d_model, args.warmup_steps),
            loss=MaskedSparseCategoricalCrossentropy(
                label_smoothing=args.label_smoothing
            ),
            metrics=[MaskedTokenAccuracy()],
        )
    print(
        f"Model: {model.count_params():,} parameters, {args.num_layers} "
        f"layers, d_model {args.d_model}, on {strategy.num_replicas_in_sync} "
        "replica(s)"
    )
    run.fit(
        model,
        train_data,
        callbacks,
        validation_data=validation_data,
        steps_per_epoch=args.steps_per_epoch,
    )
    training_seconds = run.elapsed()
    model.save(run.path("model.keras"))

    translator = Translator(
        model,
        source_tokenizer,
        target_tokenizer,
        max_output_length=args.max_output_length,
        beam_width=args.beam_width,
        length_penalty=args.length_penalty,
        max_source_length=args.max_length,
    )
    sources = [s for s, _ in held_out]
    hypotheses = translator.translate(sources)
    references = normalized_references(
        [t for _, t in held_out],
        lowercase=not args.case_sensitive,
        normalization=args.normalization,
    )
    bleu = corpus_bleu(hypotheses, references)
    search = "greedy" if args.beam_width == 1 else f"beam {args.beam_width}"
    print(f"Held-out {search} {bleu} on {len(held_out)} sentences")
    for source, reference, hypothesis in list(
        zip(sources, references, hypotheses)
    )[:NUM_PRINTED_EXAMPLES]:
        print(f"  source:     {source}")
        print(f"  reference:  {reference}")
        print(f"  translated: {hypothesis}")

    plot_translator_attention(
        translator.greedy(), sources[:NUM_HEATMAPS], run.path("attention.png")
    )

    summary = {
        "bleu": bleu.score,
        "bleu_signature": str(bleu),
        "decoding": search,
        "num_held_out": len(held_out),
        "parameters": model.count_params(),
        "training_seconds": training_seconds,
    }
    if not args.no_export:
        check = sources[:NUM_EXPORT_CHECKS]
        summary["export_agreement"] = run.export_and_verify(
            lambda path: export_translator(path, translator),
            check,
            hypotheses[: len(check)],
            noun="translations",
        )
    return run.finish(summary)


if __name__ == "__main__":
    run_recipe(main)
