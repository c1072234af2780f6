"""Train a Transformer text classifier on a TFDS dataset or a local file.

The data is TFDS `imdb_reviews` by default (downloaded on first use), any
TFDS dataset with a text feature and a class label (`--dataset`,
`--text-key`, `--label-key`), or offline a file of `text<TAB>label` lines
(`--data`, with or without `--test-data`). It learns a WordPiece
vocabulary from the training texts, trains
`keras_attention.models.build_transformer_classifier`, prints the test
accuracy and writes to `--output-dir`:

- `attention_heads.png` (every head of every layer on one short test
  example), `training_curves.png` (loss and accuracy per epoch);
- `model.keras`, `vocabulary.txt` (reloaded when a run resumes) and
  `classes.json` (the class names, in label-id order);
- `saved_model/`, whose `serving_default` signature maps raw strings to
  `probabilities`, `class_ids` and class names (`outputs`); it is checked
  in a fresh Python process that never imports `keras_attention`;
- the runner's files (see `keras_attention.cli`: `history.csv`,
  `checkpoints/`, `logs/`, `summary.json`; an interrupted run resumes when
  the same command runs again, `--restart` starts over).

    python recipes/classify.py --output-dir outputs/imdb
    python recipes/classify.py --dataset ag_news_subset --text-key description
    python recipes/classify.py --data reviews.tsv --epochs 5
"""

import functools

from keras_attention import cli
from keras_attention.data import label_counts
from keras_attention.data import load_text_classification
from keras_attention.data import make_text_classification_dataset
from keras_attention.data import save_class_names
from keras_attention.data.text_classification import dataset_texts
from keras_attention.data.text_classification import predict_in_order
from keras_attention.models import build_transformer_classifier
from keras_attention.models.transformer_classifier import POOLINGS
from keras_attention.models.transformer_classifier import POSITIONAL_ENCODINGS
from keras_attention.serving import compare_served_classes
from keras_attention.serving import export_text_classifier
from keras_attention.text import learn_or_load_wordpiece_tokenizer
from keras_attention.training import classifier_compile_arguments
from keras_attention.viz import plot_classifier_attention
from keras_attention.viz import plot_training_curves

DEFAULT_DATASET = "imdb_reviews"
HELD_OUT_FRACTION = 0.1
# The heatmap example: the shortest of the first few test texts, cut to at
# most this many tokens so that its labels stay readable.
HEATMAP_CANDIDATES = 64
HEATMAP_MAX_TOKENS = 32
NUM_EXPORT_CHECKS = 100
CURVES = ("loss", "val_loss", "accuracy", "val_accuracy")
# `build_transformer_classifier`'s arguments of the same name in `args`.
MODEL_OPTIONS = (
    "num_layers num_heads feed_forward_dim dropout positional_encoding "
    "pooling norm_first"
).split()


def build_parser():
    """The command-line parser (every option has a help text)."""
    parser = cli.make_parser(__doc__)
    data = parser.add_argument_group("data")
    cli.add_argument(
        data,
        "dataset",
        default=DEFAULT_DATASET,
        help="TFDS dataset with a text feature and a ClassLabel feature "
        "(ignored with --data)",
    )
    cli.add_arguments(data, "text_key", "label_key", "train_split")
    data.add_argument(
        "--test-split",
        default="test",
        help="TFDS test split, sliced or not; with 'test' on a dataset "
        f"without one, the last {HELD_OUT_FRACTION:.0%}% of --train-split "
        "is held out (an unlabelled split, as GLUE's test splits, is an "
        "error: use validation)",
    )
    cli.add_argument(
        data,
        "data",
        help="local training file instead of --dataset: one "
        "`text<TAB>label` per line; the labels (any strings) become the "
        "classes",
    )
    cli.add_arguments(data, "test_data", "data_dir", "max_train_examples")
    text = parser.add_argument_group("tokenizer")
    cli.add_argument(text, "vocabulary_size", default=8000)
    cli.add_argument(
        text,
        "max_length",
        default=256,
        help="the most subword tokens kept per text (the rest is cut, in "
        "training and in the exported model alike)",
    )
    cli.add_argument(text, "case_sensitive")
    model = parser.add_argument_group("model")
    cli.add_arguments(
        model,
        num_layers=2,
        num_heads=4,
        d_model=64,
        feed_forward_dim=128,
        dropout=0.1,
    )
    model.add_argument(
        "--positional-encoding",
        choices=POSITIONAL_ENCODINGS,
        default="sinusoidal",
        help="fixed sinusoids or a learned position table",
    )
    model.add_argument(
        "--pooling",
        choices=POOLINGS,
        default="mean",
        help="average the non-padding tokens, or classify a class token",
    )
    cli.add_argument(model, "norm_first")
    cli.add_training_arguments(
        parser, epochs=3, batch_size=32, learning_rate=1e-3
    )
    cli.add_output_arguments(parser, "classify")
    return parser


def parse_args(argv=None):
    return cli.parse_arguments(build_parser(), argv)


def load_data(args):
    """The `TextClassificationData` the arguments name."""
    return load_text_classification(
        **cli.data_source_arguments(args),
        test_split=args.test_split,
        held_out_fraction=HELD_OUT_FRACTION,
    )


def check_export(run, summary, model, tokenizer, data, args):
    """Exports, reloads in a fresh process, compares with `model`."""
    texts = dataset_texts(data.test, NUM_EXPORT_CHECKS)
    probabilities = predict_in_order(
        model, tokenizer, texts, args.batch_size, args.max_length
    )
    run.export_to_summary(
        summary,
        functools.partial(
            export_text_classifier,
            model=model,
            tokenizer=tokenizer,
            class_names=data.class_names,
            max_sequence_length=args.max_length,
            # As `predict_in_order` (and training) read long texts.
            truncate=True,
        ),
        texts,
        compare=lambda served: compare_served_classes(
            texts, served, probabilities, data.class_names
        ),
        noun="predicted classes",
    )


def main(argv=None, callbacks=()):
    """Runs the recipe; returns a summary dict (also `summary.json`).

    Args:
        argv: command-line arguments (default: `sys.argv[1:]`).
        callbacks: extra Keras callbacks for `model.fit`.
    """
    args = parse_args(argv)
    run = cli.Run(args)
    data = load_data(args)  # bad input stops here, before any cleanup
    resuming = run.start()
    save_class_names(data.class_names, run.path("classes.json"))
    tokenizer = learn_or_load_wordpiece_tokenizer(
        data.train.map(lambda text, label: text),
        args.vocabulary_size,
        run.path("vocabulary.txt"),
        reuse=resuming,
        lowercase=not args.case_sensitive,
    )
    train, test = (
        make_text_classification_dataset(
            examples,
            tokenizer,
            args.batch_size,
            max_sequence_length=args.max_length,
            shuffle=shuffle,
            seed=args.seed,
            count_batches=True,
        )
        for examples, shuffle in ((data.train, True), (data.test, False))
    )
    counts = label_counts(data.test, data.num_classes)
    num_test = sum(counts)
    print(
        f"Data: {data.num_classes} classes {data.class_names[:10]}, "
        f"{num_test} test examples, vocabulary of "
        f"{tokenizer.vocabulary_size} subwords"
    )
    model = run.build_and_compile(
        lambda: build_transformer_classifier(
            tokenizer.vocabulary_size,
            data.num_classes,
            embedding_dim=args.d_model,
            max_sequence_length=args.max_length,
            **{name: getattr(args, name) for name in MODEL_OPTIONS},
        ),
        functools.partial(classifier_compile_arguments, args.learning_rate),
    )
    history = run.fit(model, train, callbacks, validation_data=test)
    _, accuracy = model.evaluate(test, verbose=0)
    majority = max(counts) / max(num_test, 1)
    print(
        f"Test accuracy: {accuracy:.4f} (majority class: {majority:.4f}, "
        f"{num_test} examples)"
    )
    example = plot_classifier_attention(
        model,
        tokenizer,
        dataset_texts(data.test, HEATMAP_CANDIDATES),
        run.path("attention_heads.png"),
        class_names=data.class_names,
        max_tokens=HEATMAP_MAX_TOKENS,
    )
    plot_training_curves(
        history, run.path("training_curves.png"), metrics=CURVES
    )
    run.save_model(model)
    summary = {
        "test_accuracy": accuracy,
        "majority_class_accuracy": majority,
        "num_test": num_test,
        "class_names": data.class_names,
        "vocabulary_size": tokenizer.vocabulary_size,
        "heatmap_example": example,
        "training_and_evaluation_seconds": run.elapsed(),
    }
    if not args.no_export:  # predicting the check texts takes time
        check_export(run, summary, model, tokenizer, data, args)
    return run.finish(summary)


if __name__ == "__main__":
    cli.run_recipe(main)
