import argparse
import json
import time

import pytest

from keras_attention.cli import HelpFormatter
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
