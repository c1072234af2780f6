"""The recipes' shared runner: arguments, run directory, fit, export, summary.

Recipes stay thin: each keeps its task's arguments and wiring, and this
module holds what every one of them would otherwise write again:

- the common arguments, one name each (`COMMON_ARGUMENTS`: `--dataset`,
  `--data`, `--test-data`, `--output-dir`, `--epochs`, `--batch-size`,
  `--seed`, `--restart`, `--vocabulary-size`, `--max-length`, `--d-model`,
  `--num-layers`, `--num-heads`, `--dropout`, `--strategy`, `--beam-width`,
  `--no-export`, ...), added with `add_arguments` (the output group with
  `add_output_arguments`), parsed and checked with `parse_arguments`
  (`check_arguments`). Old spellings (`DEPRECATED_FLAGS`) still work for
  one release and print `warning: --old is deprecated, use --new` on
  stderr;
- presets, named sets of defaults that explicit options override
  (`add_preset_group`: `--preset` and its sizes in one group;
  `add_preset_arguments`, `apply_preset`, `parse_arguments(...,
  presets=)`);
- `data_source_arguments`: the arguments that name the data (a local
  file or a TFDS dataset), as keywords of the `keras_attention.data`
  loaders;
- `Run`: the seed, the run directory (`training.start_run`: resume or start
  clean), `fit` with the standard callbacks (`training.fit_run`), export
  and a check of the SavedModel in a fresh Python process, and the
  `summary.json`;
- `HelpFormatter` and `run_recipe` (bad input exits with status 2).

Every run writes, besides the recipe's own files, `history.csv`,
`checkpoints/` (the weights after every epoch), `logs/` (TensorBoard, when
the `tensorboard` package is installed), `backup/` while training is
unfinished (an interrupted run resumes from it when the same command runs
again; `--restart` starts over), `saved_model/<version>/` (unless
`--no-export`; TF Serving's model base directory, one more version each
time the recipe exports) and `summary.json`.
"""

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time

import keras

from keras_attention.files import atomic_path
from keras_attention.files import atomic_write_text
from keras_attention.serving import run_saved_model_in_fresh_process
from keras_attention.text.wordpiece_vocabulary import NORMALIZATIONS
from keras_attention.training import BACKUP_DIR
from keras_attention.training import STRATEGIES
from keras_attention.training import build_and_compile
from keras_attention.training import distributed_checkpoint_dir
from keras_attention.training import fit_distributed_run
from keras_attention.training import fit_run
from keras_attention.training import is_chief
from keras_attention.training import make_distribution_strategy
from keras_attention.training import read_stopping_state
from keras_attention.training import remove_worker_output_dir
from keras_attention.training import start_run
from keras_attention.training import worker_output_dir

__all__ = [
    "COMMON_ARGUMENTS",
    "DATA_SOURCE_ARGUMENTS",
    "DEPRECATED_FLAGS",
    "EXPORT_DIR",
    "HelpFormatter",
    "MIN_FREE_BYTES",
    "NUM_WARMUP_TEXTS",
    "Run",
    "add_argument",
    "add_arguments",
    "add_output_arguments",
    "add_preset_arguments",
    "add_preset_group",
    "add_restart_argument",
    "add_sampling_arguments",
    "add_stopping_arguments",
    "add_training_arguments",
    "apply_preset",
    "check_arguments",
    "check_output_dir",
    "data_source_arguments",
    "make_parser",
    "parse_arguments",
    "preset_defaults",
    "run_recipe",
    "write_summary",
]

SUMMARY_FILE = "summary.json"
EXPORT_DIR = "saved_model"
# The least free space `--output-dir` must have before a run starts: enough
# for the checkpoints, vocabularies and export of the small presets (a big
# model needs more; a full disk mid-run still fails with a clear error).
MIN_FREE_BYTES = 64 * 2**20
# How many held-out inputs an export writes as TF Serving warmup requests.
NUM_WARMUP_TEXTS = 4
# Exit status for bad input (a missing file, an unknown dataset, a malformed
# line), as `argparse` uses for bad arguments.
BAD_INPUT_EXIT_CODE = 2
# The common arguments that name where the data comes from, under the names
# of the `keras_attention.data.sources` loaders' arguments.
DATA_SOURCE_ARGUMENTS = (
    "dataset",
    "data",
    "test_data",
    "source_file",
    "target_file",
    "data_dir",
    "train_split",
    "text_key",
    "label_key",
    "source_key",
    "target_key",
    "held_out_fraction",
    "max_train_examples",
    "seed",
)


def _normalization(value):
    """`--normalization`'s type: the string `"None"` stands for `None`."""
    return None if value == "None" else value


# The arguments recipes share, or that are not tied to one task (decoding,
# warm-up, ...), so that every recipe taking one spells it the same way:
# `add_argument` keywords, plus `positive` (checked by `check_arguments`). A
# recipe may override any of them (its defaults, a more precise help).
COMMON_ARGUMENTS = {
    "dataset": dict(
        help="TFDS dataset (name or name/config); ignored with --data"
    ),
    "data_dir": dict(
        help="TFDS data directory (default: $TFDS_DATA_DIR or "
        "~/tensorflow_datasets)"
    ),
    "train_split": dict(default="train", help="TFDS split to train on"),
    "text_key": dict(
        help="the TFDS text feature (default: the dataset's supervised "
        "input when it is text, else 'text')",
    ),
    "label_key": dict(
        help="the TFDS ClassLabel feature (default: the supervised label "
        "when it is a ClassLabel, else 'label')",
    ),
    "source_key": dict(
        help="TFDS feature of the source language (default: the dataset's "
        "first supervised key)",
    ),
    "target_key": dict(
        help="TFDS feature of the target language (default: the second "
        "supervised key)",
    ),
    "data": dict(metavar="PATH", help="local data file instead of --dataset"),
    "source_file": dict(
        metavar="PATH",
        help="local source sentences, one per line (with --target-file)",
    ),
    "target_file": dict(
        metavar="PATH",
        help="local target sentences, line-aligned with --source-file",
    ),
    "test_data": dict(
        metavar="PATH",
        help="local held-out file in the same format as --data (default: "
        "hold out part of --data)",
    ),
    "held_out_fraction": dict(
        type=float,
        help="fraction of the training data held out for evaluation, in (0, 1)",
    ),
    "output_dir": dict(help="where to write the model, plots and logs"),
    "epochs": dict(type=int, positive=True, help="training epochs"),
    "batch_size": dict(type=int, positive=True, help="examples per batch"),
    "batch_tokens": dict(
        type=int,
        positive=True,
        help="token budget per batch; batches group sequences of similar "
        "length (dropped when --batch-size is given)",
    ),
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
    "max_eval_examples": dict(
        type=int,
        positive=True,
        help="use at most this many held-out examples (default: all)",
    ),
    "vocabulary_size": dict(
        type=int,
        positive=True,
        help="the largest WordPiece vocabulary, learned from the training "
        "texts",
    ),
    "max_length": dict(
        type=int,
        positive=True,
        help="the longest sequence, in tokens",
    ),
    "case_sensitive": dict(
        action="store_true",
        help="keep the case of the texts (by default they are lowercased, "
        "in training and in the exported model alike)",
    ),
    "normalization": dict(
        type=_normalization,
        choices=NORMALIZATIONS,
        default="nfd_strip_accents",
        help="Unicode normalisation before WordPiece tokenisation (None: "
        "the text as it is)",
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
    "norm_first": dict(
        action="store_true", help="pre-LN blocks instead of post-LN"
    ),
    "steps_per_epoch": dict(
        type=int,
        positive=True,
        help="updates per epoch, the data repeating as needed (default: one "
        "pass over the data)",
    ),
    "warmup_steps": dict(
        type=int, positive=True, help="learning-rate warm-up updates"
    ),
    "label_smoothing": dict(type=float, help="label smoothing"),
    "strategy": dict(
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy: mirrored = all local GPUs, "
        "multi_worker = the cluster in $TF_CONFIG",
    ),
    "beam_width": dict(
        type=int,
        positive=True,
        help="beam search width (evaluation and export); 1 = greedy",
    ),
    "length_penalty": dict(
        type=float, help="GNMT length penalty alpha of beam search"
    ),
    "max_output_length": dict(
        type=int,
        positive=True,
        help="the most tokens generated (default: --max-length)",
    ),
    "no_export": dict(
        action="store_true",
        help="skip the SavedModel export and its fresh-process check",
    ),
    "no_jit": dict(
        action="store_true",
        help="do not XLA-compile training and decoding (compiles faster, "
        "runs slower: for tiny runs)",
    ),
    "patience": dict(
        type=int,
        positive=True,
        help="early stopping: stop after this many epochs without a better "
        "validation loss (or the recipe's held-out metric), keeping "
        "(saving, exporting) the best epoch's weights (default: train "
        "every epoch)",
    ),
    "time_budget": dict(
        type=float,
        positive=True,
        metavar="MINUTES",
        help="stop cleanly after the epoch that exceeds this much training "
        "time, counted across resumes, then export as usual (default: no "
        "limit)",
    ),
    "prompt": dict(
        action="append",
        help="a prompt to continue, repeatable (default: the starts of a "
        "few held-out windows)",
    ),
    "max_new_tokens": dict(
        type=int, positive=True, help="tokens generated per sample"
    ),
    "temperature": dict(type=float, help="sampling temperature"),
    "top_k": dict(
        type=int,
        positive=True,
        help="sample among the k most likely tokens",
    ),
    "export_version": dict(
        type=int,
        positive=True,
        help="the version the SavedModel is written as, "
        "<output-dir>/saved_model/<version>/ (default: one more than the "
        "highest there, so that a re-run adds a version)",
    ),
}
# Old spellings of common arguments, kept for one release.
DEPRECATED_FLAGS = {
    "vocabulary_size": ("--vocab-size",),
    "d_model": ("--embedding-dim",),
    "max_train_examples": ("--max-examples",),
    "max_length": ("--max-sequence-length",),
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

    The arguments are `names`, then the keys of `defaults` that `names`
    leaves out, in that order.

    Example:

    >>> parser = make_parser("A recipe.")
    >>> add_arguments(parser, "seed", epochs=3, batch_size=8)
    >>> parser.parse_args([]).batch_size
    8
    """
    for name in [*names, *(n for n in defaults if n not in names)]:
        if name in defaults:
            add_argument(group, name, default=defaults[name])
        else:
            add_argument(group, name)


def add_output_arguments(parser, recipe):
    """Add the `output` group: `--output-dir` and the export's options.

    The options are `--output-dir`, `--no-export` and `--export-version`.

    Args:
        parser: the recipe's parser.
        recipe: the recipe's name; `--output-dir` defaults to
            `outputs/<recipe>`.

    Returns:
        The group, for the recipe's own output options.

    Example:

    >>> parser = make_parser("A recipe.")
    >>> _ = add_output_arguments(parser, "classify")
    >>> parser.parse_args([]).output_dir
    'outputs/classify'
    """
    group = parser.add_argument_group("output")
    add_argument(group, "output_dir", default=os.path.join("outputs", recipe))
    add_argument(group, "no_export")
    add_argument(group, "export_version")
    return group


def preset_defaults(presets, name):
    """`"(default: 20 with base, 5 with cpu-small)"`: `name` in each preset.

    Args:
        presets: a dict of preset name to a dataclass of values.
        name: a field of the presets.

    Example:

    >>> @dataclasses.dataclass(frozen=True)
    ... class Sizes:
    ...     epochs: int
    >>> preset_defaults({"small": Sizes(2), "big": Sizes(9)}, "epochs")
    '(default: 9 with big, 2 with small)'
    """
    values = ", ".join(
        f"{getattr(presets[preset], name)} with {preset}"
        for preset in sorted(presets)
    )
    return f"(default: {values})"


def add_preset_arguments(group, presets, *names, **help_texts):
    """Add common arguments whose defaults come from the chosen preset.

    Each argument defaults to `None` (so that `apply_preset` can tell an
    explicit value from a missing one) and its help ends with its value in
    every preset (`preset_defaults`).

    Args:
        group: an `argparse` parser or argument group.
        presets: a dict of preset name to a dataclass of values.
        *names: keys of `COMMON_ARGUMENTS` that are fields of the presets.
        **help_texts: a more precise help for some of `names` (the
            presets' values are still appended).
    """
    for name in names:
        help_text = help_texts.get(name, COMMON_ARGUMENTS[name]["help"])
        add_argument(
            group, name, help=f"{help_text} {preset_defaults(presets, name)}"
        )


def add_preset_group(parser, presets, default, preset_help, **help_texts):
    """Add the `sizes` group: `--preset` and one flag per preset field.

    Every field of the presets' dataclass is a common argument whose
    default comes from the chosen preset (`add_preset_arguments`);
    `parse_arguments(..., presets=presets)` fills in what the command line
    leaves out.

    Args:
        parser: the recipe's parser.
        presets: a dict of preset name to a dataclass of values whose
            fields are keys of `COMMON_ARGUMENTS`.
        default: the preset used without `--preset`.
        preset_help: the help text of `--preset`.
        **help_texts: a more precise help for some fields (the presets'
            values are still appended).

    Returns:
        The group.

    Example:

    >>> @dataclasses.dataclass(frozen=True)
    ... class Sizes:
    ...     epochs: int = 2
    >>> presets = {"small": Sizes(), "big": Sizes(epochs=9)}
    >>> parser = make_parser("A recipe.")
    >>> _ = add_preset_group(parser, presets, "small", "model sizes")
    >>> parse_arguments(parser, ["--preset", "big"], presets=presets).epochs
    9
    """
    if default not in presets:
        raise ValueError(
            f"`default` must be one of {sorted(presets)}. "
            f"Received: default={default!r}"
        )
    group = parser.add_argument_group(
        "sizes", "defaults from --preset; explicit options override them"
    )
    group.add_argument(
        "--preset", choices=sorted(presets), default=default, help=preset_help
    )
    fields = dataclasses.fields(presets[default])
    add_preset_arguments(
        group, presets, *(field.name for field in fields), **help_texts
    )
    return group


def apply_preset(args, preset):
    """Give every argument that is `None` in `args` its value in `preset`.

    Args:
        args: the parsed `argparse.Namespace`.
        preset: a dataclass whose fields are argument names.

    Example:

    >>> @dataclasses.dataclass(frozen=True)
    ... class Sizes:
    ...     epochs: int
    ...     seed: int
    >>> args = argparse.Namespace(epochs=None, seed=7)
    >>> apply_preset(args, Sizes(epochs=2, seed=0))
    >>> args.epochs, args.seed
    (2, 7)
    """
    for field in dataclasses.fields(preset):
        if getattr(args, field.name) is None:
            setattr(args, field.name, getattr(preset, field.name))


def data_source_arguments(args):
    """The data-source arguments in `args`, as loader keywords.

    The common arguments of `DATA_SOURCE_ARGUMENTS` that the recipe added
    (`--dataset`, `--data`, `--source-file`, `--train-split`, `--seed`,
    ...) carry the names of the arguments of `keras_attention.data.
    load_text_classification` and `load_text_pairs`, so a recipe passes
    them on in one go and adds its task's own.

    Args:
        args: the parsed `argparse.Namespace`.

    Returns:
        A dict of argument name to value, for the names `args` holds.

    Example:

    >>> args = argparse.Namespace(dataset="imdb_reviews", data=None, epochs=3)
    >>> data_source_arguments(args)
    {'dataset': 'imdb_reviews', 'data': None}
    """
    return {
        name: getattr(args, name)
        for name in DATA_SOURCE_ARGUMENTS
        if hasattr(args, name)
    }


def add_restart_argument(group):
    """Add the recipes' `--restart` flag (see `training.start_run`)."""
    add_argument(group, "restart")


def add_stopping_arguments(group):
    """Add the stopping rule: `--patience` and `--time-budget`.

    `Run.fit` passes them on to `training.fit_run` (see
    `training.StoppingRule`).

    Example:

    >>> parser = make_parser("A recipe.")
    >>> add_stopping_arguments(parser)
    >>> parser.parse_args(["--patience", "2"]).patience
    2
    """
    add_arguments(group, "patience", "time_budget")


def add_training_arguments(parser, *names, **defaults):
    """Add the `training` group that every recipe shares.

    The group holds `names` and the keys of `defaults` (as `add_arguments`
    adds them; a value that is a dict is the `add_argument` keywords of
    that argument, e.g. `dict(default=1e-2, help=...)`), then `--seed`,
    `--restart`, `--strategy` (see `Run.build_and_compile`) and the
    stopping rule (`add_stopping_arguments`).

    Args:
        parser: the recipe's parser.
        *names: common arguments without a recipe default.
        **defaults: common arguments with the recipe's default (or its
            keywords).

    Returns:
        The group, for the recipe's own training options.

    Example:

    >>> parser = make_parser("A recipe.")
    >>> _ = add_training_arguments(parser, epochs=3, batch_size=32)
    >>> args = parser.parse_args(["--seed", "4", "--time-budget", "30"])
    >>> args.epochs, args.batch_size, args.seed, args.time_budget
    (3, 32, 4, 30.0)
    """
    group = parser.add_argument_group("training")
    for name in [*names, *(n for n in defaults if n not in names)]:
        overrides = defaults.get(name, {})
        if not isinstance(overrides, dict):
            overrides = {"default": overrides}
        add_argument(group, name, **overrides)
    add_arguments(group, "seed", "restart", "strategy")
    add_stopping_arguments(group)
    return group


def add_sampling_arguments(parser, **defaults):
    """Add the `sampling` group: `--prompt`, `--max-new-tokens`, ...

    The decoding options of a generative recipe: `--prompt` (repeatable),
    `--max-new-tokens`, `--temperature` and `--top-k`, with these
    defaults.

    Returns:
        The group.

    Example:

    >>> parser = make_parser("A recipe.")
    >>> _ = add_sampling_arguments(parser, max_new_tokens=40, top_k=10)
    >>> parser.parse_args(["--prompt", "once"]).prompt
    ['once']
    """
    group = parser.add_argument_group("sampling")
    names = ("prompt", "max_new_tokens", "temperature", "top_k")
    add_arguments(group, *names, **defaults)
    return group


def _existing_ancestor(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_output_dir(path, min_free_bytes=MIN_FREE_BYTES):
    """Why a run cannot write to `path`, checked before it starts, or `None`.

    `path` (or, when it does not exist yet, the nearest directory above
    it, where it will be created) must be a directory in which a probe
    file can be written and removed, and whose file system has at least
    `min_free_bytes` free. Nothing is created.

    Args:
        path: the output directory.
        min_free_bytes: int, the least free space. Defaults to
            `MIN_FREE_BYTES` (64 MiB).

    Returns:
        `None` when the directory is usable, else the reason, a str.

    Example:

    >>> import tempfile
    >>> check_output_dir(os.path.join(tempfile.mkdtemp(), "new", "run"))
    >>> check_output_dir(__file__)[:26]
    'it exists and is not a dir'
    """
    existing = _existing_ancestor(path)
    if not os.path.isdir(existing):
        what = "it" if existing == os.path.abspath(path) else existing
        return f"{what} exists and is not a directory"
    probe = os.path.join(existing, f".write-probe-{os.getpid()}")
    try:
        with open(probe, "w") as file:
            file.write("probe")
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        return f"cannot write in {existing}: {error.strerror or error}"
    finally:
        if os.path.exists(probe):
            os.remove(probe)
    free = shutil.disk_usage(existing).free
    if free < min_free_bytes:
        return (
            f"only {free / 2**20:.1f} MiB free on its disk, less than the "
            f"{min_free_bytes / 2**20:.0f} MiB a run needs"
        )
    return None


def check_arguments(parser, args, positive=()):
    """Exit with a usage error for bad values of the common arguments.

    Every common argument marked `positive` that `args` holds (and is not
    `None`) must be positive, as must the names in `positive`; `--dropout`
    must be in `[0, 1)`, `--held-out-fraction` in `(0, 1)`, `--d-model`
    divisible by `--num-heads`; `--test-data` comes with `--data`, and
    `--source-file` with `--target-file` (and without `--data`);
    `--export-version` must not name a version that `--output-dir` holds;
    `--output-dir` must be a writable directory (or creatable) with free
    space (`check_output_dir`): found now, not after an hour of training.

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
    fraction = getattr(args, "held_out_fraction", None)
    if fraction is not None and not 0.0 < fraction < 1.0:
        parser.error("--held-out-fraction must be in (0, 1)")
    d_model, num_heads = (
        getattr(args, n, None) for n in ("d_model", "num_heads")
    )
    if d_model and num_heads and d_model % num_heads:
        parser.error("--d-model must be divisible by --num-heads")
    data, source_file, target_file = (
        getattr(args, n, None) for n in ("data", "source_file", "target_file")
    )
    if getattr(args, "test_data", None) and not data:
        parser.error("--test-data needs --data")
    if bool(source_file) != bool(target_file):
        parser.error("--source-file and --target-file go together")
    if source_file and data:
        parser.error("use either --source-file/--target-file or --data")
    version = getattr(args, "export_version", None)
    output_dir = getattr(args, "output_dir", None)
    problem = output_dir and check_output_dir(output_dir)
    if problem:
        parser.error(f"--output-dir {output_dir}: {problem}")
    if version and output_dir and not getattr(args, "no_export", False):
        # Found before training, not after it: versions are never replaced.
        existing = os.path.join(output_dir, EXPORT_DIR, str(version))
        if os.path.exists(existing):
            parser.error(
                f"--export-version {version}: {existing} exists already "
                "(leave the option out to write the next version)"
            )


def parse_arguments(parser, argv=None, positive=(), presets=None):
    """Parse `argv`, fill in the chosen preset, check the common arguments.

    Between the two, the defaults that depend on other arguments are set:
    with `--batch-size`, `--batch-tokens` is `None`; without
    `--max-output-length`, it is `--max-length`.

    Args:
        parser: the recipe's parser.
        argv: command-line arguments. Defaults to `None` (`sys.argv[1:]`).
        positive: further argument names that must be positive (see
            `check_arguments`). Defaults to `()`.
        presets: optional dict of preset name to a dataclass of values; the
            one named by `--preset` fills what the command line leaves out
            (`apply_preset`). Defaults to `None`.

    Returns:
        The `argparse.Namespace`.

    Example:

    >>> parser = make_parser("A recipe.")
    >>> add_arguments(parser, epochs=3)
    >>> parse_arguments(parser, ["--epochs", "2"]).epochs
    2
    """
    args = parser.parse_args(argv)
    if presets is not None:
        apply_preset(args, presets[args.preset])
    _resolve_defaults(args)
    check_arguments(parser, args, positive=positive)
    return args


def _resolve_defaults(args):
    """Defaults that depend on other arguments, as their help texts say.

    An explicit `--batch-size` replaces the `--batch-tokens` budget, and
    `--max-output-length` defaults to `--max-length`.
    """
    if getattr(args, "batch_size", None) is not None:
        if hasattr(args, "batch_tokens"):
            args.batch_tokens = None
    if hasattr(args, "max_output_length") and args.max_output_length is None:
        args.max_output_length = getattr(args, "max_length", None)


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
        self.multi_worker = getattr(args, "strategy", None) == "multi_worker"
        self._strategy = None
        if self.multi_worker:  # before any other TensorFlow op
            self._strategy = make_distribution_strategy("multi_worker")
        self.chief = is_chief() if self.multi_worker else True
        # A worker that is not the chief writes to a scratch directory.
        self.output_dir = (
            worker_output_dir(args.output_dir)
            if self.multi_worker
            else args.output_dir
        )
        self.started = time.perf_counter()
        self.resuming = False
        self.history = None
        self.export_dir = None  # the version `export_and_verify` wrote
        self._build = self._compile_arguments = None
        keras.utils.set_random_seed(args.seed)

    @property
    def strategy(self):
        """The `tf.distribute` strategy of `--strategy` (made once)."""
        if self._strategy is None:
            name = getattr(self.args, "strategy", "default")
            self._strategy = make_distribution_strategy(name)
        return self._strategy

    def build_and_compile(self, build, compile_arguments):
        """The model `build()` returns, compiled with `compile_arguments()`.

        Under `--strategy mirrored` it is built under the strategy (see
        `training.build_and_compile`). Under `multi_worker` it is built
        without one, so that evaluation, plots, saving and export run as
        on one machine; `fit` trains a twin built under the strategy and
        copies its weights back.

        The seed is set again first, so that the initial weights depend on
        `--seed` alone, not on what loading the data drew from the random
        generators (generating a TFDS dataset on a first run does).
        """
        keras.utils.set_random_seed(self.args.seed)
        if not self.multi_worker:
            return build_and_compile(build, compile_arguments, self.strategy)
        self._build, self._compile_arguments = build, compile_arguments
        return build_and_compile(build, compile_arguments)

    def start(self):
        """Prepare the output directory; return whether the run resumes."""
        self.resuming = start_run(self.output_dir, restart=self.args.restart)
        return self.resuming

    def path(self, name):
        """The path of `name` in the output directory."""
        return os.path.join(self.output_dir, name)

    def save_model(self, model, name="model.keras"):
        """`model.save` to `name` in the output directory, atomically.

        A run killed while saving leaves the previous file or none (see
        `keras_attention.files`). Returns the path.
        """
        path = self.path(name)
        with atomic_path(path) as temporary:
            model.save(temporary)
        return path

    def elapsed(self):
        """Seconds since the run was created."""
        return time.perf_counter() - self.started

    def fit(
        self, model, data, callbacks=(), monitor="val_loss", mode="min", **kw
    ):
        """`training.fit_run` for `--epochs`; returns the whole history.

        With `steps_per_epoch` (not `None`), the `tf.data.Dataset` `data`
        repeats, so that every epoch has its steps. The stopping rule
        (`--patience`, `--time-budget`, when the recipe has them) watches
        `monitor` (`mode`: `"min"` or `"max"`).
        """
        if self.multi_worker:
            return self._fit_multi_worker(
                model, data, monitor, kw.get("validation_data")
            )
        if kw.get("steps_per_epoch") is not None:
            data = data.repeat()
        self.history = fit_run(
            model,
            data,
            self.output_dir,
            self.args.epochs,
            callbacks,
            patience=getattr(self.args, "patience", None),
            time_budget=getattr(self.args, "time_budget", None),
            monitor=monitor,
            mode=mode,
            keep_backup=True,  # until `finish`: see below
            **kw,
        )
        return self.history

    def _fit_multi_worker(self, model, data, monitor, validation_data):
        """`training.fit_distributed_run` of a twin; weights copied back.

        Keras callbacks do not run in this loop; its stopping rule watches
        the validation loss (or the training loss without validation data),
        so a recipe whose early stopping watches another metric refuses
        `--patience` here.
        """
        patience = getattr(self.args, "patience", None)
        watched = "val_loss" if validation_data is not None else "loss"
        if patience is not None and monitor != watched:
            raise ValueError(
                f"--patience with --strategy multi_worker watches {watched}; "
                f"this recipe stops on {monitor}, which only its callbacks "
                f"compute. Received: --patience {patience} (--time-budget "
                "works)"
            )
        if self._build is None:
            raise ValueError(
                "--strategy multi_worker needs the model built by "
                "`Run.build_and_compile`. Received: a model built elsewhere"
            )
        twin = build_and_compile(
            self._build, self._compile_arguments, self.strategy
        )
        twin.set_weights(model.get_weights())
        self.history = fit_distributed_run(
            twin,
            data,
            self.args.output_dir,
            self.args.epochs,
            self.strategy,
            validation_data=validation_data,
            patience=patience,
            time_budget=getattr(self.args, "time_budget", None),
        )
        model.set_weights(twin.get_weights())
        return self.history

    def export_and_verify(
        self, export, texts, expected=None, compare=None, noun="answers"
    ):
        """Export, reload in a fresh process, check the served answers.

        The SavedModel goes to a new version of the model base directory
        `<output_dir>/saved_model` (TF Serving's layout; earlier versions
        are kept, so that a re-run adds one) and answers `texts` in a
        Python process that never imports `keras_attention`.

        Args:
            export: a function of the model base directory that writes a
                version of the SavedModel there and returns its directory
                (as the `keras_attention.serving` exports do).
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
        version_dir = export(self.path(EXPORT_DIR))
        self.export_dir = version_dir
        served = run_saved_model_in_fresh_process(
            version_dir, texts, None if compare else expected
        )
        agree = len(texts) if compare is None else compare(served)
        count = (
            f"all {len(texts)}"
            if agree == len(texts)
            else f"{agree}/{len(texts)}"
        )
        print(
            f"Exported {version_dir}, reloaded in a fresh process (without "
            f"keras_attention): {count} {noun} agree, e.g. "
            f"{texts[0][:50]!r} -> {served[0]!r}"
        )
        return agree / len(texts)

    def export_to_summary(
        self, summary, export, texts, expected=None, compare=None, **kwargs
    ):
        """`export_and_verify` unless `--no-export`, into `summary`.

        The export is called as `export(path, version=--export-version,
        warmup_texts=texts[:NUM_WARMUP_TEXTS])` (the `keras_attention.serving`
        exports' keywords: bind the model and the rest with
        `functools.partial`); the agreement becomes
        `summary["export_agreement"]`. With `--no-export` nothing happens.

        Args:
            summary: the run's summary dict.
            export: the export function (see above).
            texts, compare, **kwargs: as in `export_and_verify`.
            expected: as in `export_and_verify`, or a function of `texts`
                that computes them (called only when exporting).

        Returns:
            `summary`.
        """
        if self.args.no_export or not self.chief:
            return summary
        if callable(expected):
            expected = expected(texts)
        warmup_texts = list(texts[:NUM_WARMUP_TEXTS])
        summary["export_agreement"] = self.export_and_verify(
            lambda path: export(
                path,
                version=self.args.export_version,
                warmup_texts=warmup_texts,
            ),
            texts,
            expected,
            compare,
            **kwargs,
        )
        return summary

    def finish(self, summary):
        """Write `summary.json`; return `summary`.

        After a `fit`, `summary` gains `"epochs"` (the number of epochs the
        whole run trained) and `"history"` (their metrics), and with a
        stopping rule `"stopping"` (the 0-based best epoch, the training
        seconds and why it stopped, or `None`); it always gains
        `"total_seconds"`.
        """
        if self.history is not None:
            summary["epochs"] = len(self.history.get("loss", []))
            summary["history"] = self.history
        stopping = read_stopping_state(self.output_dir)
        if stopping:
            summary["stopping"] = {
                name: stopping[name]
                for name in ("best_epoch", "elapsed_seconds", "stop_reason")
            }
        write_summary(self.output_dir, summary, self.started)
        # The backup (or the distributed checkpoint) outlives `fit` (a run
        # killed while evaluating or exporting resumes without training
        # again) until here.
        shutil.rmtree(self.path(BACKUP_DIR), ignore_errors=True)
        shutil.rmtree(
            distributed_checkpoint_dir(self.output_dir), ignore_errors=True
        )
        if not self.chief:  # its copies were for the collective saves
            remove_worker_output_dir(self.args.output_dir)
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
    return atomic_write_text(path, json.dumps(summary, indent=1))


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
