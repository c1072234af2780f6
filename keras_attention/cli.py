"""What every recipe's command line shares: help, summary file, exit codes.

Recipes stay thin: they parse arguments and call the package; this module
holds the two pieces each of them would otherwise write again.
"""

import argparse
import json
import os
import sys
import time

__all__ = [
    "HelpFormatter",
    "add_restart_argument",
    "run_recipe",
    "write_summary",
]

SUMMARY_FILE = "summary.json"
# Exit status for bad input (a missing file, an unknown dataset, a malformed
# line), as `argparse` uses for bad arguments.
BAD_INPUT_EXIT_CODE = 2


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


def add_restart_argument(group):
    """Add the recipes' `--restart` flag (see `training.start_run`)."""
    group.add_argument(
        "--restart",
        action="store_true",
        help="discard the backup of an interrupted run and start over "
        "(by default an interrupted run resumes)",
    )


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
