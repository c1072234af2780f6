import argparse
import json
import re
import time

import pytest

from keras_attention.cli import COMMON_ARGUMENTS
from keras_attention.cli import DEPRECATED_FLAGS
from keras_attention.cli import HelpFormatter
from keras_attention.cli import Run
from keras_attention.cli import add_argument
from keras_attention.cli import add_arguments
from keras_attention.cli import check_arguments
from keras_attention.cli import make_parser
from keras_attention.cli import run_recipe
from keras_attention.cli import write_summary


def test_write_summary_adds_elapsed_time(tmp_path):
    summary = {"accuracy": 0.5}
    path = write_summary(str(tmp_path), summary, time.perf_counter() - 2.0)
    with open(path) as file:
        written = json.load(file)
    assert written["accuracy"] == 0.5
    assert 2.0 <= written["total_seconds"] < 60.0
    assert summary["total_seconds"] == written["total_seconds"]


def test_run_recipe_returns_main_result():
    assert run_recipe(lambda argv: ("ran", argv), ["--x"]) == ("ran", ["--x"])


@pytest.mark.parametrize(
    "error", [ValueError, FileNotFoundError, FileExistsError, PermissionError]
)
def test_run_recipe_turns_bad_input_into_exit_2(capsys, error):
    def main(argv):
        raise error("no such data file: 'x.tsv'")

    with pytest.raises(SystemExit) as exit_info:
        run_recipe(main, [])
    assert exit_info.value.code == 2
    assert "error: no such data file: 'x.tsv'" in capsys.readouterr().err


def test_run_recipe_lets_other_errors_through():
    def main(argv):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run_recipe(main, [])


def test_help_formatter_states_each_useful_default_once():
    parser = argparse.ArgumentParser(
        prog="recipe", formatter_class=HelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3, help="passes")
    parser.add_argument(
        "--max-examples", type=int, help="use at most N (default: all)"
    )
    parser.add_argument("--data", help="local file")
    parser.add_argument("--restart", action="store_true", help="start over")
    text = " ".join(parser.format_help().split())
    assert "passes (default: 3)" in text
    assert "start over (default: False)" in text
    assert "use at most N (default: all)" in text
    assert text.count("(default:") == 3  # nothing for --data's None


def _parser(*names, **defaults):
    parser = make_parser("A recipe.\n\nMore.")
    add_arguments(parser, *names, **defaults)
    return parser


@pytest.mark.parametrize(
    "name, old", [(n, o) for n, olds in DEPRECATED_FLAGS.items() for o in olds]
)
def test_old_spellings_work_with_a_deprecation_message(capsys, name, old):
    parser = _parser(name)
    args = parser.parse_args([old, "7"])
    assert getattr(args, name) == 7
    new = "--" + name.replace("_", "-")
    assert capsys.readouterr().err == (
        f"warning: {old} is deprecated, use {new}\n"
    )
    # The new spelling is silent, and the old one is listed in --help.
    assert getattr(parser.parse_args([new, "8"]), name) == 8
    assert capsys.readouterr().err == ""
    assert old in parser.format_help() and new in parser.format_help()


def test_an_old_spelling_does_not_hide_the_default():
    args = _parser("vocabulary_size", vocabulary_size=8000).parse_args([])
    assert args.vocabulary_size == 8000


def test_common_arguments_have_one_name_and_help_each():
    parser = make_parser("A recipe.")
    for name in COMMON_ARGUMENTS:
        add_argument(parser, name)
    for action in parser._actions:
        assert action.help, action.option_strings
    flags = [f for a in parser._actions for f in a.option_strings]
    assert len(flags) == len(set(flags))
    assert parser.description == "A recipe."


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "--epochs must be positive"),
        (["--dropout", "1"], r"--dropout must be in \[0, 1\)"),
        (["--d-model", "10", "--num-heads", "4"], "divisible by --num-heads"),
        (["--beam-width", "0"], "--beam-width must be positive"),
    ],
)
def test_check_arguments_exits_with_a_usage_error(capsys, argv, message):
    parser = _parser("epochs", "dropout", "d_model", "num_heads")
    parser.add_argument("--beam-width", type=int, default=4)
    args = parser.parse_args(argv)
    with pytest.raises(SystemExit) as exit_info:
        check_arguments(parser, args, positive=("beam_width",))
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_run_prepares_the_directory_and_writes_the_summary(tmp_path, capsys):
    args = _parser("output_dir", "seed", "restart", "epochs").parse_args(
        ["--output-dir", str(tmp_path / "run"), "--epochs", "1"]
    )
    run = Run(args)
    assert run.start() is False and (tmp_path / "run").is_dir()
    assert run.path("model.keras") == str(tmp_path / "run" / "model.keras")
    summary = run.finish({"accuracy": 0.5})
    with open(tmp_path / "run" / "summary.json") as file:
        assert json.load(file) == summary
    assert "Wrote results to" in capsys.readouterr().out
