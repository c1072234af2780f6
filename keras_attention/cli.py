"""The recipes' shared runner: arguments, run directory, fit, export, summary.

Recipes stay thin: each keeps its task's arguments and wiring, and this
module holds what every one of them would otherwise write again:

- the common arguments, one name each (`COMMON_ARGUMENTS`: `--output-dir`,
  `--epochs`, `--batch-size`, `--seed`, `--restart`, `--vocabulary-size`,
  `--d-model`, `--num-layers`, `--num-heads`, `--dropout`, `--strategy`,
  `--no-export`, ...), added with `add_arguments` and checked with
  `check_arguments`. Old spellings (`DEPRECATED_FLAGS`) still work for one
  release and print `warning: --old is deprecated, use --new` on stderr;
- `Run`: the seed, the run directory (`training.start_run`: resume or start
  clean), `fit` with the standard callbacks (`training.fit_run`), export
  and a check of the SavedModel in a fresh Python process, and the
  `summary.json`;
- `HelpFormatter` and `run_recipe` (bad input exits with status 2).
"""

import argparse
import json
import os
import shutil
import sys
import time

import keras

from keras_attention.export import run_saved_model_in_fresh_process
from keras_attention.training import STRATEGIES
from keras_attention.training import fit_run
from keras_attention.training import start_run

__all__ = [
    "COMMON_ARGUMENTS",
    "DEPRECATED_FLAGS",
    "EXPORT_DIR",
    "HelpFormatter",
    "Run",
    "add_argument",
    "add_arguments",
    "add_restart_argument",
    "check_arguments",
    "make_parser",
    "run_recipe",
    "write_summary",
]

SUMMARY_FILE = "summary.json"
EXPORT_DIR = "saved_model"
# Exit status for bad input (a missing file, an unknown dataset, a malformed
# line), as `argparse` uses for bad arguments.
BAD_INPUT_EXIT_CODE = 2
# The arguments several recipes take: `add_argument` keywords, plus
# `positive` (checked by `check_arguments`). A recipe may override any of
# them (its defaults, a more precise help).
COMMON_ARGUMENTS = {
    "output_dir": dict(help="where to write the model, plots and logs"),
    "data_dir": dict(
        help="TFDS data directory (default: $TFDS_DATA_DIR or "
        "~/tensorflow_datasets)"
    ),
    "epochs": dict(type=int, positive=True, help="training epochs"),
    "batch_size": dict(type=int, positive=True, help="examples per batch"),
    "learning_rate": dict(type=float, help="Adam step size"),
    "seed": dict(type=int, default=0, help="random seed"),
    "restart": dict(
        action="store_true",
        help="discard the backup of an interrupted run and start over "
        "(by default an interrupted run resumes)",
    ),
    "max_train_examples": dict(
        type=int,
        positive=True,
        help="use at most this many training examples (default: all)",
    ),
    "vocabulary_size": dict(
        type=int,
        positive=True,
        help="the largest WordPiece vocabulary, learned from the training "
        "texts",
    ),
    "case_sensitive": dict(
        action="store_true",
        help="keep the case of the texts (by default they are lowercased, "
        "in training and in the exported model alike)",
    ),
    "num_layers": dict(type=int, positive=True, help="Transformer blocks"),
    "d_model": dict(
        type=int,
        positive=True,
        help="model width: the size of every token's vector (divisible by "
        "--num-heads)",
    ),
    "num_heads": dict(type=int, positive=True, help="attention heads"),
    "feed_forward_dim": dict(
        type=int,
        positive=True,
        help="hidden width of each block's feed-forward network",
    ),
    "dropout": dict(type=float, help="dropout rate, in [0, 1)"),
    "strategy": dict(
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy: mirrored = all local GPUs, "
        "multi_worker = the cluster in $TF_CONFIG",
    ),
    "no_export": dict(
        action="store_true",
        help="skip the SavedModel export and its fresh-process check",
    ),
}
# Old spellings of common arguments, kept for one release.
DEPRECATED_FLAGS = {
    "vocabulary_size": ("--vocab-size",),
    "d_model": ("--embedding-dim",),
    "max_train_examples": ("--max-examples",),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` that shows each default once, and only when it says something.

    `ArgumentDefaultsHelpFormatter` appends `(default: X)` to every option;
    this one leaves out options whose help already states its default in
    words (`"(default: all)"`) and options whose default is `None`.

    Example:

    >>> parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    """

    def _get_help_string(self, action):
        help_text = action.help or ""
        if "(default" in help_text or action.default is None:
            return help_text
        return super()._get_help_string(action)


class _DeprecatedFlag(argparse.Action):
    """An old spelling: warns on stderr, then stores under the new name."""

    def __init__(self, option_strings, dest, new_flag, **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stderr.write(
            f"warning: {option_string} is deprecated, use {self.new_flag}\n"
        )
        setattr(namespace, self.dest, values)


def _flag(name):
    return "--" + name.replace("_", "-")


def make_parser(doc):
    """An `ArgumentParser` described by the first paragraph of `doc`."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=HelpFormatter
    )


def add_argument(group, name, **overrides):
    """Add the common argument `name` (with its old spellings) to `group`.

    Args:
        group: an `argparse` parser or argument group.
        name: a key of `COMMON_ARGUMENTS`, e.g. `"vocabulary_size"`
            (`--vocabulary-size`).
        **overrides: `add_argument` keywords that replace the common ones
            (`default=`, `help=`, ...).

    Example:

    >>> parser = make_parser("A recipe.")
    >>> add_argument(parser, "vocabulary_size", default=8000)
    >>> parser.parse_args(["--vocab-size", "60"]).vocabulary_size
    60
    """
    spec = dict(COMMON_ARGUMENTS[name])
    spec.pop("positive", None)
    spec.update(overrides)
    group.add_argument(_flag(name), **spec)
    for old in DEPRECATED_FLAGS.get(name, ()):
        group.add_argument(
            old,
            dest=name,
            type=spec.get("type"),
            action=_DeprecatedFlag,
            new_flag=_flag(name),
            default=argparse.SUPPRESS,
            metavar=name.upper(),
            help=f"deprecated spelling of {_flag(name)}",
        )


def add_arguments(group, *names, **defaults):
    """Add several common arguments to `group`, with these defaults.

    Example:

    >>> parser = make_parser("A recipe.")
    >>> add_arguments(parser, "epochs", "batch_size", epochs=3, batch_size=8)
    >>> parser.parse_args([]).batch_size
    8
    """
    for name in names:
        if name in defaults:
            add_argument(group, name, default=defaults[name])
        else:
            add_argument(group, name)


def add_restart_argument(group):
    """Add the recipes' `--restart` flag (see `training.start_run`)."""
    add_argument(group, "restart")


def check_arguments(parser, args, positive=()):
    """Exit with a usage error for bad values of the common arguments.

    Every common argument marked `positive` that `args` holds (and is not
    `None`) must be positive, as must the names in `positive`; `--dropout`
    must be in `[0, 1)` and `--d-model` divisible by `--num-heads`.

    Args:
        parser: the recipe's parser (for `parser.error`).
        args: the parsed `argparse.Namespace`.
        positive: further argument names that must be positive. Defaults to
            `()`.
    """
    names = [n for n, spec in COMMON_ARGUMENTS.items() if spec.get("positive")]
    for name in [*names, *positive]:
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            parser.error(f"{_flag(name)} must be positive")
    dropout = getattr(args, "dropout", None)
    if dropout is not None and not 0.0 <= dropout < 1.0:
        parser.error("--dropout must be in [0, 1)")
    d_model, num_heads = (
        getattr(args, n, None) for n in ("d_model", "num_heads")
    )
    if d_model and num_heads and d_model % num_heads:
        parser.error("--d-model must be divisible by --num-heads")


class Run:
    """One run of a recipe: its clock, seed, directory, fit, export, summary.

    Create it right after parsing (it sets the seed and starts the clock),
    load the data (bad input stops there, before the directory is touched),
    then call `start`.

    Args:
        args: the parsed arguments; `output_dir`, `seed`, `restart` and
            `epochs` are used.

    Example:

    >>> import tempfile
    >>> args = argparse.Namespace(output_dir=tempfile.mkdtemp(), seed=0,
    ...                           restart=False, epochs=1)
    >>> run = Run(args)
    >>> run.start()  # nothing to resume
    False
    """

    def __init__(self, args):
        self.args = args
        self.output_dir = args.output_dir
        self.started = time.perf_counter()
        self.resuming = False
        keras.utils.set_random_seed(args.seed)

    def start(self):
        """Prepare the output directory; return whether the run resumes."""
        self.resuming = start_run(self.output_dir, restart=self.args.restart)
        return self.resuming

    def path(self, name):
        """The path of `name` in the output directory."""
        return os.path.join(self.output_dir, name)

    def fit(self, model, data, callbacks=(), **fit_kwargs):
        """`training.fit_run` for `--epochs`; returns the whole history."""
        return fit_run(
            model,
            data,
            self.output_dir,
            self.args.epochs,
            callbacks,
            **fit_kwargs,
        )

    def export_and_verify(
        self, export, texts, expected=None, compare=None, noun="answers"
    ):
        """Export, reload in a fresh process, check the served answers.

        The SavedModel goes to `<output_dir>/saved_model` (replacing an
        earlier one) and answers `texts` in a Python process that never
        imports `keras_attention`.

        Args:
            export: a function of the export directory that writes the
                SavedModel.
            texts: the inputs to check, a list of str.
            expected: the in-process answers to `texts`; any difference
                raises a `RuntimeError`. Defaults to `None`.
            compare: instead of `expected`, a function of the served
                answers returning how many agree (and raising on a real
                disagreement). Defaults to `None`.
            noun: what the answers are, for the printed line. Defaults to
                `"answers"`.

        Returns:
            The fraction of `texts` whose answers agree.
        """
        export_dir = self.path(EXPORT_DIR)
        shutil.rmtree(export_dir, ignore_errors=True)
        export(export_dir)
        served = run_saved_model_in_fresh_process(
            export_dir, texts, None if compare else expected
        )
        agree = len(texts) if compare is None else compare(served)
        count = (
            f"all {len(texts)}"
            if agree == len(texts)
            else f"{agree}/{len(texts)}"
        )
        print(
            "SavedModel reloaded in a fresh process (without "
            f"keras_attention): {count} {noun} agree, e.g. "
            f"{texts[0][:50]!r} -> {served[0]!r}"
        )
        return agree / len(texts)

    def finish(self, summary):
        """Write `summary.json` (with the elapsed time); return `summary`."""
        write_summary(self.output_dir, summary, self.started)
        print(
            f"Wrote results to {self.output_dir} in "
            f"{summary['total_seconds']:.0f} s"
        )
        return summary


def write_summary(output_dir, summary, started):
    """Add the elapsed time to `summary` and write it as JSON.

    Args:
        output_dir: the recipe's output directory.
        summary: a JSON-serialisable dict of results; `"total_seconds"` is
            added to it.
        started: the `time.perf_counter()` value taken at the start.

    Returns:
        The path of the written `summary.json`.

    Example:

    >>> write_summary("/tmp", {"accuracy": 0.9}, time.perf_counter())
    '/tmp/summary.json'
    """
    summary["total_seconds"] = time.perf_counter() - started
    path = os.path.join(output_dir, SUMMARY_FILE)
    with open(path, "w") as file:
        json.dump(summary, file, indent=1)
    return path


def run_recipe(main, argv=None):
    """Run a recipe's `main(argv)`, turning bad input into a clean exit.

    A `ValueError` (the package's error for bad input) or an `OSError` (a
    missing file, an output directory that is a file, no permission)
    prints `prog: error: message` on stderr and exits with status 2, like
    `argparse`, instead of a traceback. Other errors propagate.

    Args:
        main: the recipe's `main(argv)` function.
        argv: command-line arguments. Defaults to `sys.argv[1:]`.

    Returns:
        What `main` returns.
    """
    try:
        return main(argv)
    except (ValueError, OSError) as error:
        prog = os.path.basename(sys.argv[0])
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(BAD_INPUT_EXIT_CODE)
