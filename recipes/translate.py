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
  `source_vocabulary.txt` and `target_vocabulary.txt`, `history.csv`,
  `summary.json`, TensorBoard logs under `logs/` (when the `tensorboard`
  package is installed), per-epoch weights under `checkpoints/`;
- exports `saved_model/`, whose `serving_default` signature maps a batch of
  raw source sentences to translated strings (tokenizer, encoder and cached
  decoder inside), reloads it in a fresh Python process that never imports
  `keras_attention` and checks its answers against the in-process ones.

A killed run resumes: run the same command again and training continues
after the last finished epoch (`keras.callbacks.BackupAndRestore` keeps its
state under `<output-dir>/backup` until training completes; `--restart`
discards it).

    python recipes/translate.py                      # CPU-sized model
    python recipes/translate.py --preset base --strategy mirrored  # GPUs
    python recipes/translate.py --source-file train.pt --target-file \\
        train.en --epochs 10
"""

import os
import time

from keras_attention.cli import Run
from keras_attention.cli import add_argument
from keras_attention.cli import add_arguments
from keras_attention.cli import check_arguments
from keras_attention.cli import make_parser
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
from keras_attention.serving import SERVING_ATTENTION
from keras_attention.serving import Translator
from keras_attention.serving import export_translator
from keras_attention.text.wordpiece_vocabulary import NORMALIZATIONS
from keras_attention.training import make_distribution_strategy
from keras_attention.training import transformer_adam
from keras_attention.viz import plot_attention

# Model and training sizes; explicit options override them.
PRESETS = {
    # Trains in well under an hour per epoch on a 2-core CPU.
    "cpu-small": dict(
        num_layers=2,
        d_model=128,
        num_heads=4,
        feed_forward_dim=512,
        dropout=0.1,
        vocabulary_size=4000,
        max_length=64,
        batch_tokens=4096,
        warmup_steps=1000,
        epochs=5,
    ),
    # The paper's base model (Vaswani et al., 2017), for a GPU.
    "base": dict(
        num_layers=6,
        d_model=512,
        num_heads=8,
        feed_forward_dim=2048,
        dropout=0.1,
        vocabulary_size=8000,
        max_length=128,
        batch_tokens=16384,
        warmup_steps=4000,
        epochs=20,
    ),
}
HELD_OUT_FRACTION = 0.05


def _by_preset(name):
    """`(default: 5 with base, ...)`: an option's value in each preset."""
    values = ", ".join(
        f"{PRESETS[preset][name]} with {preset}" for preset in sorted(PRESETS)
    )
    return f"(default: {values})"


NUM_PRINTED_EXAMPLES = 3
NUM_HEATMAPS = 3
NUM_EXPORT_CHECKS = 32
SOURCE_VOCABULARY = "source_vocabulary.txt"
TARGET_VOCABULARY = "target_vocabulary.txt"


def parse_args(argv=None):
    parser = make_parser(__doc__)
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
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
    data.add_argument(
        "--train-split", default="train", help="TFDS split to train on"
    )
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
    data.add_argument(
        "--data",
        metavar="PATH",
        help="local `source<TAB>target` file instead of --source-file",
    )
    data.add_argument(
        "--held-out-fraction",
        type=float,
        default=HELD_OUT_FRACTION,
        help="fraction of local pairs (or of a TFDS training split when "
        "the dataset has no validation split) held out for validation and "
        "BLEU",
    )
    add_argument(data, "max_train_examples")
    data.add_argument(
        "--max-eval-examples",
        type=int,
        help="use at most this many held-out pairs for validation loss and "
        "BLEU (default: all)",
    )
    text = parser.add_argument_group("tokenizer")
    add_argument(
        text,
        "vocabulary_size",
        help="WordPiece vocabulary size per language "
        f"{_by_preset('vocabulary_size')}",
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
    for name, meaning in (
        ("num_layers", "encoder and decoder blocks"),
        ("d_model", "model width"),
        ("num_heads", "attention heads"),
        ("feed_forward_dim", "feed-forward width"),
        ("dropout", "dropout rate"),
    ):
        add_argument(model, name, help=f"{meaning} {_by_preset(name)}")
    training = parser.add_argument_group("training")
    add_argument(
        training, "epochs", help=f"training epochs {_by_preset('epochs')}"
    )
    training.add_argument(
        "--batch-tokens",
        type=int,
        help=f"token budget per batch {_by_preset('batch_tokens')}; "
        "batches group sentences of similar length",
    )
    add_argument(
        training,
        "batch_size",
        help="sentence pairs per batch instead of --batch-tokens",
    )
    training.add_argument(
        "--max-length",
        type=int,
        help=f"longest source or target in tokens {_by_preset('max_length')}",
    )
    training.add_argument(
        "--length-policy",
        choices=LENGTH_POLICIES,
        default="filter",
        help="drop or truncate training pairs longer than --max-length",
    )
    training.add_argument(
        "--warmup-steps",
        type=int,
        help=f"learning-rate warm-up updates {_by_preset('warmup_steps')}",
    )
    training.add_argument(
        "--label-smoothing", type=float, default=0.1, help="label smoothing"
    )
    training.add_argument(
        "--steps-per-epoch",
        type=int,
        help="updates per epoch (default: one pass over the data)",
    )
    add_arguments(training, "strategy", "restart", "seed")
    decoding = parser.add_argument_group("decoding")
    decoding.add_argument(
        "--beam-width",
        type=int,
        default=4,
        help="beam search width for BLEU and the export; 1 = greedy",
    )
    decoding.add_argument(
        "--length-penalty",
        type=float,
        default=0.6,
        help="GNMT length penalty alpha of beam search",
    )
    decoding.add_argument(
        "--max-output-length",
        type=int,
        help="most target tokens generated (default: --max-length)",
    )
    output = parser.add_argument_group("output")
    add_argument(
        output, "output_dir", default=os.path.join("outputs", "translate")
    )
    add_argument(output, "no_export")
    args = parser.parse_args(argv)
    for name, value in PRESETS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.batch_size is not None:
        args.batch_tokens = None
    args.max_output_length = args.max_output_length or args.max_length
    args.normalization = (
        None if args.normalization == "None" else args.normalization
    )
    check_arguments(
        parser,
        args,
        positive=(
            "max_length",
            "warmup_steps",
            "beam_width",
            "max_output_length",
            "batch_tokens",
            "steps_per_epoch",
            "max_eval_examples",
        ),
    )
    if bool(args.source_file) != bool(args.target_file):
        parser.error("--source-file and --target-file go together")
    if args.source_file and args.data:
        parser.error("use either --source-file/--target-file or --data")
    if not 0.0 < args.held_out_fraction < 1.0:
        parser.error("--held-out-fraction must be in (0, 1)")
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


def _heatmaps(translator, sources, path):
    """Cross-attention heatmaps (last decoder block, mean over heads)."""
    outputs = translator(sources)
    source_ids = translator.encode(sources).numpy()
    output_ids = outputs["output_ids"].numpy()
    weights = outputs[SERVING_ATTENTION].numpy()
    source_tokenizer = translator.source_tokenizer
    target_tokenizer = translator.target_tokenizer
    examples = []
    for row in range(len(sources)):
        inputs = [
            source_tokenizer.id_to_token(int(i))
            for i in source_ids[row]
            if i != source_tokenizer.padding_id
        ]
        generated = [int(i) for i in output_ids[row]]
        if target_tokenizer.end_id in generated:
            generated = generated[
                : generated.index(target_tokenizer.end_id) + 1
            ]
        outputs_tokens = [target_tokenizer.id_to_token(i) for i in generated]
        examples.append((inputs, outputs_tokens, weights[row]))
    return plot_attention(examples, path)


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
    if args.steps_per_epoch:
        train_data = train_data.repeat()
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
    history = run.fit(
        model,
        train_data,
        callbacks,
        validation_data=validation_data,
        steps_per_epoch=args.steps_per_epoch,
    )
    training_done = time.perf_counter()
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

    greedy = translator
    if args.beam_width != 1:
        greedy = Translator(
            model,
            source_tokenizer,
            target_tokenizer,
            max_output_length=args.max_output_length,
            max_source_length=args.max_length,
        )
    _heatmaps(
        greedy,
        sources[:NUM_HEATMAPS],
        run.path("attention.png"),
    )

    summary = {
        "bleu": bleu.score,
        "bleu_signature": str(bleu),
        "decoding": search,
        "epochs": len(history.get("loss", [])),
        "history": history,
        "num_held_out": len(held_out),
        "parameters": model.count_params(),
        "training_seconds": training_done - run.started,
    }

    def export(export_dir):
        export_translator(export_dir, translator)

    if not args.no_export:
        check = sources[:NUM_EXPORT_CHECKS]
        summary["export_agreement"] = run.export_and_verify(
            export, check, hypotheses[: len(check)], noun="translations"
        )
    return run.finish(summary)


if __name__ == "__main__":
    run_recipe(main)
