import importlib.util
import json
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from tests.recipes.checks import assert_unusable_output_dir_stops_first
from tests.testing import EpochRecorder

RECIPE = os.path.join(
    os.path.dirname(__file__), "..", "..", "recipes", "date_conversion.py"
)


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("date_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_args(tmp_path, *extra):
    return [
        "--output-dir",
        str(tmp_path / "out"),
        "--data-dir",
        str(tmp_path / "tfds"),
        "--num-train",
        "96",
        "--num-test",
        "16",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--units",
        "8",
        "--embedding-dim",
        "4",
        "--no-jit",
        *extra,
    ]


@pytest.mark.large
def test_end_to_end_writes_everything(recipe, tmp_path):
    summary = recipe.main(_tiny_args(tmp_path))
    out = tmp_path / "out"
    for name in (
        "attention.png",
        "training_curves.png",
        "model.keras",
        "source_vocabulary.json",
        "target_vocabulary.json",
        "history.csv",
        "summary.json",
        "saved_model/1/saved_model.pb",
    ):
        assert (out / name).exists(), name
    assert summary["export_agreement"] == 1.0
    assert summary["epochs"] == 1
    assert 0.0 <= summary["exact_match"] <= 1.0
    assert json.loads((out / "summary.json").read_text())["num_test"] == 16
    assert not (out / "backup").exists()  # removed once training completes


# Resuming after an interruption: tests/recipes/test_kill_and_resume.py
# (SIGKILL mid-epoch, rerun, final weights equal an uninterrupted run).


def test_local_data_files(recipe, tmp_path):
    from keras_attention.data.date_conversion import generate_date_pairs

    pairs = generate_date_pairs(40, seed=5)
    data = tmp_path / "dates.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    args = recipe.parse_args(_tiny_args(tmp_path, "--data", str(data)))
    train, test = recipe.load_pairs(args)
    assert (len(train), len(test)) == (36, 4)  # 10% held out
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("aug 19, 2003   _2003-08-19\n")
    args = recipe.parse_args(
        _tiny_args(tmp_path, "--data", str(data), "--test-data", str(held_out))
    )
    train, test = recipe.load_pairs(args)
    assert len(train) == 40 and test == [("aug 19, 2003", "2003-08-19")]


def test_bad_data_file_fails_clearly(recipe, tmp_path):
    data = tmp_path / "bad.tsv"
    data.write_text("a\tb\nc\td\nno tab\n")
    with pytest.raises(ValueError, match="bad.tsv, line 3: expected"):
        recipe.main(_tiny_args(tmp_path, "--data", str(data)))
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        recipe.main(
            _tiny_args(tmp_path, "--data", str(tmp_path / "missing.tsv"))
        )


def test_over_long_inputs_fail_before_training(recipe, tmp_path):
    data = tmp_path / "pairs.tsv"
    data.write_text(
        "".join(f"jan {d}, 2001\t2001-01-{d:02d}\n" for d in range(1, 29))
    )
    long_input = "the first of january in the year two thousand and one"
    held_out = tmp_path / "held_out.tsv"
    held_out.write_text(f"{long_input}\t2001-01-01\n")
    recorder = EpochRecorder()
    args = ["--data", str(data), "--test-data", str(held_out)]
    with pytest.raises(ValueError, match="A held-out input has 53 char"):
        recipe.main(
            _tiny_args(tmp_path, *args, "--max-source-length", "40"),
            callbacks=[recorder],
        )
    assert recorder.epochs == []  # nothing trained
    with pytest.raises(ValueError, match="A training input has 12 char"):
        recipe.main(_tiny_args(tmp_path, *args, "--max-source-length", "11"))


def test_unknown_dataset_fails_clearly(recipe, tmp_path):
    with pytest.raises(ValueError, match="Unknown TFDS dataset.*no_such_set"):
        recipe.main(_tiny_args(tmp_path, "--dataset", "no_such_set"))


def test_other_tfds_dataset_with_mock_data(recipe, tmp_path):
    args = recipe.parse_args(
        _tiny_args(tmp_path, "--dataset", "ted_hrlr_translate/pt_to_en")
    )
    with tfds.testing.mock_data(num_examples=8):
        train, test = recipe.load_pairs(args)
    assert len(train) == 8 and len(test) == 8
    assert all(isinstance(s, str) and isinstance(t, str) for s, t in train)


def test_help_documents_options(recipe, capsys):
    with pytest.raises(SystemExit):
        recipe.parse_args(["--help"])
    help_text = capsys.readouterr().out
    for option in (
        "--dataset",
        "--data",
        "--test-data",
        "--epochs",
        "--batch-size",
        "--units",
        "--attention",
        "--output-dir",
        "--seed",
    ):
        assert option in help_text


def test_command_line_error_message(tmp_path):
    result = subprocess.run(
        [sys.executable, RECIPE, "--data", str(tmp_path / "nope.tsv")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "error: No such data file" in result.stderr


def test_make_demo_defaults(recipe, capsys):
    args = recipe.parse_args([])
    assert args.output_dir == os.path.join("outputs", "date_conversion")
    assert (args.dataset, args.num_train, args.num_test) == (
        "date_conversion",
        50_000,
        10_000,
    )
    assert (args.epochs, args.batch_size, args.learning_rate) == (3, 128, 1e-2)
    assert (args.units, args.embedding_dim, args.rnn) == (64, 32, "gru")
    assert (args.attention, args.seed, args.max_source_length) == (
        "general",
        0,
        64,
    )
    assert not (args.no_jit or args.no_export or args.restart)
    assert capsys.readouterr().err == ""  # --embedding-dim is its own here


def test_unusable_output_dir_stops_before_the_data_is_read(
    recipe, tmp_path, capsys
):
    assert_unusable_output_dir_stops_first(
        recipe.main, ["--data", str(tmp_path / "missing.tsv")], tmp_path, capsys
    )


def test_multi_worker_refuses_patience_when_parsing(recipe, capsys):
    # Refused before any data or model: the distributed loop's stopping
    # rule sees only the losses, and this recipe stops on exact match.
    with pytest.raises(SystemExit) as raised:
        recipe.parse_args(["--strategy", "multi_worker", "--patience", "2"])
    assert raised.value.code == 2
    assert "--patience watches val_exact_match" in capsys.readouterr().err
    args = recipe.parse_args(
        ["--strategy", "multi_worker", "--time-budget", "5"]
    )
    assert args.time_budget == 5.0
