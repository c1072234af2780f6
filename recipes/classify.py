"""Train a Transformer text classifier on a TFDS dataset or a local file.

It learns a WordPiece vocabulary (tensorflow-text) from the training texts,
trains `keras_attention.models.build_transformer_classifier` with
`model.fit`, prints the accuracy on the test split and writes to
`--output-dir`:

- `attention_heads.png`: the attention weights of every head of every
  layer for one (short) test example;
- `training_curves.png`: loss and accuracy per epoch (train and test);
- `model.keras`, `vocabulary.txt` and `classes.json` (the class names, in
  label-id order);
- `history.csv`, `checkpoints/` (weights after every epoch) and `logs/`
  (TensorBoard); an interrupted run resumes from `backup/` when the same
  command runs again (`--restart` starts over);
- `saved_model/`: a SavedModel whose `serving_default` signature maps a
  batch of raw strings to class probabilities (`probabilities`), class ids
  (`class_ids`) and class names (`outputs`); it is reloaded in a fresh
  Python process that never imports `keras_attention` and checked against
  the in-process predictions;
- `summary.json`.

The default dataset is TFDS `imdb_reviews` (downloaded on first use). Any
TFDS dataset with a text feature and a class label works through
`--dataset`, `--text-key` and `--label-key`; offline, pass a local file
with one `text<TAB>label` line per example (`--data`), with or without
`--test-data`.

    python recipes/classify.py --output-dir outputs/imdb
    python recipes/classify.py --dataset ag_news_subset --text-key description
    python recipes/classify.py --data reviews.tsv --epochs 5
"""

import argparse
import os
import shutil
import time

import keras
import numpy as np

from keras_attention.cli import HelpFormatter
from keras_attention.cli import add_restart_argument
from keras_attention.cli import run_recipe
from keras_attention.cli import write_summary
from keras_attention.data.text_classification import label_counts
from keras_attention.data.text_classification import (
    load_tfds_text_classification,
)
from keras_attention.data.text_classification import (
    load_tsv_text_classification,
)
from keras_attention.data.text_classification import (
    make_text_classification_dataset,
)
from keras_attention.data.text_classification import save_class_names
from keras_attention.models.transformer_classifier import CLS_TOKEN
from keras_attention.models.transformer_classifier import POOLINGS
from keras_attention.models.transformer_classifier import POSITIONAL_ENCODINGS
from keras_attention.models.transformer_classifier import (
    build_attention_inspector,
)
from keras_attention.models.transformer_classifier import (
    build_transformer_classifier,
)
from keras_attention.serving import export_text_classifier
from keras_attention.serving import run_saved_model_in_fresh_process
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary
from keras_attention.text.wordpiece_vocabulary import save_vocabulary
from keras_attention.training import HISTORY_FILE
from keras_attention.training import read_history
from keras_attention.training import start_run
from keras_attention.training import training_callbacks
from keras_attention.viz import plot_attention_heads
from keras_attention.viz import plot_training_curves

DEFAULT_DATASET = "imdb_reviews"
HELD_OUT_FRACTION = 0.1
# The heatmap example: the shortest of the first few test texts, cut to at
# most this many tokens so that its labels stay readable.
HEATMAP_CANDIDATES = 64
HEATMAP_MAX_TOKENS = 32
NUM_EXPORT_CHECKS = 100
# A served class may differ from the in-process one only on a near tie.
TIE_MARGIN = 1e-3
CURVES = ("loss", "val_loss", "accuracy", "val_accuracy")


def build_parser():
    """The command-line parser (every option has a help text)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help="TFDS dataset with a text feature and a ClassLabel feature "
        "(ignored with --data)",
    )
    data.add_argument(
        "--text-key",
        help="the TFDS text feature (default: the dataset's supervised "
        "input when it is text, else 'text')",
    )
    data.add_argument(
        "--label-key",
        help="the TFDS ClassLabel feature (default: the supervised label "
        "when it is a ClassLabel, else 'label')",
    )
    data.add_argument(
        "--train-split", default="train", help="TFDS training split"
    )
    data.add_argument(
        "--test-split",
        default="test",
        help="TFDS test split, sliced or not; with 'test' on a dataset "
        f"without one, the last {HELD_OUT_FRACTION:.0%}% of --train-split "
        "is held out (an unlabelled split, as GLUE's test splits, is an "
        "error: use validation)",
    )
    data.add_argument(
        "--data-dir",
        help="TFDS data directory (default: $TFDS_DATA_DIR or "
        "~/tensorflow_datasets)",
    )
    data.add_argument(
        "--data",
        metavar="PATH",
        help="local training file instead of --dataset: one "
        "`text<TAB>label` per line; the labels (any strings) become the "
        "classes",
    )
    data.add_argument(
        "--test-data",
        metavar="PATH",
        help="local test file in the same format (default: hold out "
        f"{HELD_OUT_FRACTION:.0%}% of --data)",
    )
    data.add_argument(
        "--max-train-examples",
        type=int,
        help="use only the first N training examples (default: all)",
    )
    text = parser.add_argument_group("tokenizer")
    text.add_argument(
        "--vocabulary-size",
        type=int,
        default=8000,
        help="the largest WordPiece vocabulary, learned from the training "
        "texts",
    )
    text.add_argument(
        "--max-sequence-length",
        type=int,
        default=256,
        help="the most subword tokens kept per text (the rest is cut, in "
        "training and in the exported model alike)",
    )
    text.add_argument(
        "--case-sensitive",
        action="store_true",
        help="keep the case of the texts (by default they are lowercased)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--num-layers", type=int, default=2, help="Transformer blocks"
    )
    model.add_argument(
        "--num-heads", type=int, default=4, help="attention heads per block"
    )
    model.add_argument(
        "--embedding-dim",
        type=int,
        default=64,
        help="model width (divisible by --num-heads)",
    )
    model.add_argument(
        "--feed-forward-dim",
        type=int,
        default=128,
        help="hidden width of each block's feed-forward network",
    )
    model.add_argument(
        "--dropout", type=float, default=0.1, help="dropout rate"
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
    model.add_argument(
        "--norm-first",
        action="store_true",
        help="pre-LN blocks instead of post-LN",
    )
    training = parser.add_argument_group("training")
    training.add_argument(
        "--epochs", type=int, default=3, help="training epochs"
    )
    training.add_argument(
        "--batch-size", type=int, default=32, help="examples per batch"
    )
    training.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam step size"
    )
    training.add_argument("--seed", type=int, default=0, help="random seed")
    add_restart_argument(training)
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output-dir",
        default=os.path.join("outputs", "classify"),
        help="where to write the model, plots and summary",
    )
    output.add_argument(
        "--no-export",
        action="store_true",
        help="skip the SavedModel export and its fresh-process check",
    )
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in (
        "epochs",
        "batch_size",
        "vocabulary_size",
        "max_sequence_length",
        "num_layers",
        "num_heads",
        "embedding_dim",
        "feed_forward_dim",
        "max_train_examples",
    ):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.embedding_dim % args.num_heads:
        parser.error("--embedding-dim must be divisible by --num-heads")
    if not 0.0 <= args.dropout < 1.0:
        parser.error("--dropout must be in [0, 1)")
    if args.test_data and not args.data:
        parser.error("--test-data needs --data")
    return args


def load_data(args):
    """The `TextClassificationData` the arguments name."""
    if args.data:
        data = load_tsv_text_classification(
            args.data,
            test_path=args.test_data,
            test_fraction=HELD_OUT_FRACTION,
            seed=args.seed,
        )
    else:
        data = load_tfds_text_classification(
            args.dataset,
            text_key=args.text_key,
            label_key=args.label_key,
            train_split=args.train_split,
            test_split=args.test_split,
            data_dir=args.data_dir,
            test_fraction=HELD_OUT_FRACTION,
        )
    if args.max_train_examples:
        data.train = data.train.take(args.max_train_examples)
    return data


def _texts(dataset, count=None):
    if count is not None:
        dataset = dataset.take(count)
    return [text.decode("utf-8") for text, _ in dataset.as_numpy_iterator()]


def _ids_only(ids, labels):
    return ids


def _text_only(text, label):
    return text


def _predict_in_order(model, tokenizer, texts, args):
    """In-process probabilities of `texts`, in order (no length buckets)."""
    dataset = make_text_classification_dataset(
        (texts, [0] * len(texts)),
        tokenizer,
        args.batch_size,
        max_sequence_length=args.max_sequence_length,
        bucket_boundaries=(),
        cache=False,
    )
    return model.predict(dataset.map(_ids_only), verbose=0)


def plot_heatmap_example(model, tokenizer, texts, class_names, args, path):
    """Plots every head's attention for the shortest candidate text."""
    lengths = [int(n) for n in tokenizer(texts).row_lengths().numpy()]
    candidates = [i for i, n in enumerate(lengths) if n > 0] or [0]
    index = min(candidates, key=lambda i: lengths[i])
    ids = tokenizer([texts[index]])[:, :HEATMAP_MAX_TOKENS].to_tensor()
    tokens = [tokenizer.id_to_token(int(i)) for i in ids.numpy()[0]]
    if args.pooling == "cls":
        tokens = [CLS_TOKEN] + tokens
    scores = build_attention_inspector(model).predict(ids, verbose=0)
    scores = np.stack([scores[name][0] for name in sorted(scores)])
    probabilities = model.predict(ids, verbose=0)[0]
    predicted = class_names[int(np.argmax(probabilities))]
    title = f"{texts[index][:70]!r} -> {predicted} ({probabilities.max():.2f})"
    plot_attention_heads(tokens, scores, path, title=title)
    return texts[index]


def check_export(model, tokenizer, data, args, export_dir):
    """Exports, reloads in a fresh process, compares with `model`."""
    shutil.rmtree(export_dir, ignore_errors=True)
    export_text_classifier(
        export_dir,
        model,
        tokenizer,
        data.class_names,
        max_sequence_length=args.max_sequence_length,
    )
    texts = _texts(data.test, NUM_EXPORT_CHECKS)
    probabilities = _predict_in_order(model, tokenizer, texts, args)
    expected = [data.class_names[i] for i in probabilities.argmax(-1)]
    served = run_saved_model_in_fresh_process(export_dir, texts)
    top_two = np.sort(probabilities, axis=-1)[:, -2:]
    near_tie = (top_two[:, 1] - top_two[:, 0]) < TIE_MARGIN
    disagree = [
        i
        for i, (a, b) in enumerate(zip(served, expected))
        if a != b and not near_tie[i]
    ]
    if disagree:
        raise RuntimeError(
            f"The reloaded SavedModel disagrees with the in-process model on "
            f"{len(disagree)} of {len(texts)} texts, e.g. "
            f"{texts[disagree[0]]!r}: {served[disagree[0]]!r} != "
            f"{expected[disagree[0]]!r}"
        )
    agree = sum(a == b for a, b in zip(served, expected))
    print(
        "SavedModel reloaded in a fresh process (without keras_attention): "
        f"{agree}/{len(texts)} predicted classes agree, e.g. "
        f"{texts[0][:50]!r} -> {served[0]!r}"
    )
    return agree / len(texts)


def main(argv=None, callbacks=()):
    """Runs the recipe; returns a summary dict (also `summary.json`).

    Args:
        argv: command-line arguments (default: `sys.argv[1:]`).
        callbacks: extra Keras callbacks for `model.fit`.
    """
    args = parse_args(argv)
    started = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    data = load_data(args)  # bad input stops here, before any cleanup
    start_run(args.output_dir, restart=args.restart)
    history_path = os.path.join(args.output_dir, HISTORY_FILE)
    save_class_names(
        data.class_names, os.path.join(args.output_dir, "classes.json")
    )
    vocabulary = learn_wordpiece_vocabulary(
        data.train.map(_text_only),
        args.vocabulary_size,
        lowercase=not args.case_sensitive,
    )
    save_vocabulary(vocabulary, os.path.join(args.output_dir, "vocabulary.txt"))
    tokenizer = WordPieceTokenizer(
        vocabulary, lowercase=not args.case_sensitive
    )

    train = make_text_classification_dataset(
        data.train,
        tokenizer,
        args.batch_size,
        max_sequence_length=args.max_sequence_length,
        shuffle=True,
        seed=args.seed,
        count_batches=True,
    )
    test = make_text_classification_dataset(
        data.test,
        tokenizer,
        args.batch_size,
        max_sequence_length=args.max_sequence_length,
        count_batches=True,
    )
    counts = label_counts(data.test, data.num_classes)
    num_test = sum(counts)
    print(
        f"Data: {data.num_classes} classes {data.class_names[:10]}, "
        f"{num_test} test examples, vocabulary of {len(vocabulary)} subwords"
    )

    model = build_transformer_classifier(
        tokenizer.vocabulary_size,
        data.num_classes,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        embedding_dim=args.embedding_dim,
        feed_forward_dim=args.feed_forward_dim,
        dropout=args.dropout,
        max_sequence_length=args.max_sequence_length,
        positional_encoding=args.positional_encoding,
        pooling=args.pooling,
        norm_first=args.norm_first,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
        # Length buckets give many shapes: XLA would compile each one.
        jit_compile=False,
    )
    model.fit(
        train,
        validation_data=test,
        epochs=args.epochs,
        shuffle=False,  # `train` reshuffles itself every epoch.
        callbacks=[
            *callbacks,
            keras.callbacks.CSVLogger(history_path, append=True),
            *training_callbacks(args.output_dir),
        ],
        verbose=2 if os.environ.get("CI") else "auto",
    )
    # The whole run's epochs, also when this call resumed an interrupted one.
    history = read_history(history_path)
    _, accuracy = model.evaluate(test, verbose=0)
    majority = max(counts) / max(num_test, 1)
    print(
        f"Test accuracy: {accuracy:.4f} (majority class: {majority:.4f}, "
        f"{num_test} examples)"
    )

    example = plot_heatmap_example(
        model,
        tokenizer,
        _texts(data.test, HEATMAP_CANDIDATES),
        data.class_names,
        args,
        os.path.join(args.output_dir, "attention_heads.png"),
    )
    plot_training_curves(
        history,
        os.path.join(args.output_dir, "training_curves.png"),
        metrics=CURVES,
    )
    model.save(os.path.join(args.output_dir, "model.keras"))
    summary = {
        "test_accuracy": accuracy,
        "majority_class_accuracy": majority,
        "num_test": num_test,
        "class_names": data.class_names,
        "vocabulary_size": len(vocabulary),
        "epochs": len(history.get("loss", [])),
        "history": history,
        "heatmap_example": example,
        "training_and_evaluation_seconds": time.perf_counter() - started,
    }
    if not args.no_export:
        summary["export_agreement"] = check_export(
            model,
            tokenizer,
            data,
            args,
            os.path.join(args.output_dir, "saved_model"),
        )
    write_summary(args.output_dir, summary, started)
    seconds = summary["total_seconds"]
    print(f"Wrote results to {args.output_dir} in {seconds:.0f} s")
    return summary


if __name__ == "__main__":
    run_recipe(main)
