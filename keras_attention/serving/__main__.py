"""`python -m keras_attention.serving check DIR...`: can a server run it?

Lists every op type of each SavedModel (a version directory, or a model
base directory: its highest version) and exits with status 1 when one is
neither a TensorFlow core op nor a tensorflow-text op, or is an XLA op
without `--allow-xla` (see `keras_attention.serving.op_check`).
"""

import argparse
import sys

from keras_attention.serving.model_versions import saved_model_path
from keras_attention.serving.op_check import check_saved_model_ops
from keras_attention.serving.op_check import registered_op_sets

# Exit status when a SavedModel holds an op a model server cannot run, and
# for a directory that holds no SavedModel (as `argparse` uses for bad
# arguments).
FAILED_EXIT_CODE = 1
BAD_INPUT_EXIT_CODE = 2


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_attention.serving",
        description=__doc__.split("\n\n")[0],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="list a SavedModel's op types; fail on one that TF Serving "
        "(TensorFlow core ops plus tensorflow-text's) cannot run",
    )
    check.add_argument(
        "directories",
        nargs="+",
        metavar="DIR",
        help="a SavedModel, or a model base directory (its highest version)",
    )
    check.add_argument(
        "--allow-xla",
        action="store_true",
        help="accept XLA ops, for a server started with "
        "--xla_cpu_compilation_enabled=true",
    )
    return parser


def main(argv=None):
    """Runs the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every directory is looked at before the op registry is read (a
    # child process, seconds): a mistyped path fails at once.
    try:
        version_dirs = [saved_model_path(d) for d in args.directories]
    except OSError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    op_sets = registered_op_sets()
    status = 0
    for version_dir in version_dirs:
        try:
            check = check_saved_model_ops(version_dir, op_sets, args.allow_xla)
        except OSError as error:
            print(f"{parser.prog}: error: {error}", file=sys.stderr)
            return BAD_INPUT_EXIT_CODE
        print(check.report())
        if not check.ok:
            status = FAILED_EXIT_CODE
    return status


if __name__ == "__main__":
    sys.exit(main())
