"""End-to-end tests of `recipes/classify.py` (offline: TSV or mock TFDS)."""

import importlib.util
import json
import os
import random
import sys

import pytest
import tensorflow_datasets as tfds

from tests.recipes.checks import assert_unusable_output_dir_stops_first
from tests.testing import EpochRecorder

RECIPE = os.path.join(
    os.path.dirname(__file__), os.pardir, os.pardir, "recipes", "classify.py"
)
FILLERS = "the a cat dog sat ran on under big small red blue house tree".split()
# Small enough to run in seconds on a CPU.
TINY = [
    "--num-layers=1",
    "--num-heads=2",
    "--embedding-dim=32",
    "--feed-forward-dim=64",
    "--vocabulary-size=60",
    "--max-length=16",
    "--batch-size=32",
    "--learning-rate=5e-3",
    "--dropout=0",
]


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("classify_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    # Registered, so that AutoGraph finds the module of its functions.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def write_order_task(path, num_lines, seed=0):
    """`text<TAB>label` lines whose label depends only on word order."""
    rng = random.Random(seed)
    lines = []
    for _ in range(num_lines):
        words = [rng.choice(FILLERS) for _ in range(rng.randint(4, 10))]
        first, second = rng.sample(range(len(words)), 2)
        words[first], words[second] = "alice", "bob"
        label = "alice_first" if first < second else "bob_first"
        lines.append(" ".join(words) + "\t" + label + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def mock_tfds(num_examples):
    return tfds.testing.mock_data(
        num_examples=num_examples, policy=tfds.testing.MockPolicy.USE_CODE
    )


def test_help_documents_every_option(recipe, capsys):
    parser = recipe.build_parser()
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"
    with pytest.raises(SystemExit) as exit_info:
        recipe.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in parser._actions:
        for option in action.option_strings:
            assert option in text


@pytest.mark.large
def test_local_tsv_end_to_end(recipe, tmp_path):
    train = write_order_task(tmp_path / "train.tsv", 1000, seed=0)
    test = write_order_task(tmp_path / "test.tsv", 100, seed=1)
    output_dir = tmp_path / "out"
    summary = recipe.main(
        [
            f"--data={train}",
            f"--test-data={test}",
            f"--output-dir={output_dir}",
            "--epochs=8",
            *TINY,
        ]
    )
    for name in (
        "attention_heads.png",
        "training_curves.png",
        "model.keras",
        "vocabulary.txt",
        "classes.json",
        "summary.json",
        os.path.join("saved_model", "1", "saved_model.pb"),
    ):
        assert (output_dir / name).is_file(), name
    with open(output_dir / "classes.json") as file:
        assert json.load(file) == ["alice_first", "bob_first"]
    with open(output_dir / "summary.json") as file:
        assert json.load(file)["test_accuracy"] == summary["test_accuracy"]
    assert summary["num_test"] == 100
    assert len(summary["history"]["val_accuracy"]) == 8
    # The answer is in the word order alone; a bag of words gets ~50%.
    assert summary["test_accuracy"] > 0.9
    assert summary["export_agreement"] == 1.0


def test_interrupted_run_resumes_from_saved_epoch(recipe, tmp_path):
    train = write_order_task(tmp_path / "train.tsv", 128, seed=0)
    output_dir = tmp_path / "out"
    args = [
        f"--data={train}",
        f"--output-dir={output_dir}",
        "--epochs=3",
        "--no-export",
        *TINY,
    ]
    first = EpochRecorder(fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        recipe.main(args, callbacks=[first])
    assert first.epochs == [0, 1]
    assert (output_dir / "backup").is_dir()
    resumed = EpochRecorder()
    summary = recipe.main(args, callbacks=[resumed])
    assert resumed.epochs == [2]  # continues after the last finished epoch
    assert len(summary["history"]["val_accuracy"]) == 3  # the whole run
    assert not (output_dir / "backup").exists()
    checkpoints = sorted(os.listdir(output_dir / "checkpoints"))
    assert checkpoints == [f"epoch_00{i}.weights.h5" for i in (1, 2, 3)]
    # A mistyped command stops before touching the completed run's files.
    with pytest.raises(FileNotFoundError):
        recipe.main([f"--data={tmp_path / 'typo.tsv'}", *args[1:]])
    assert len(os.listdir(output_dir / "checkpoints")) == 3
    assert (output_dir / "history.csv").exists()
    # --restart starts over: one epoch's files, none of the earlier run's.
    args[2] = "--epochs=1"
    summary = recipe.main([*args, "--restart"])
    assert len(summary["history"]["val_accuracy"]) == 1
    assert os.listdir(output_dir / "checkpoints") == ["epoch_001.weights.h5"]


@pytest.mark.large
def test_mock_tfds_end_to_end(recipe, tmp_path):
    output_dir = tmp_path / "out"
    with mock_tfds(num_examples=40):
        summary = recipe.main(
            [
                f"--output-dir={output_dir}",
                "--epochs=1",
                "--no-export",
                "--positional-encoding=learned",
                "--pooling=cls",
                *TINY,
            ]
        )
    assert summary["class_names"] == ["neg", "pos"]
    assert summary["num_test"] == 40
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert (output_dir / "attention_heads.png").is_file()
    assert not (output_dir / "saved_model").exists()


def test_bad_input_gives_clear_errors(recipe, tmp_path):
    output_dir = f"--output-dir={tmp_path / 'out'}"
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        recipe.main([f"--data={tmp_path / 'missing.tsv'}", output_dir])
    bad = tmp_path / "bad.tsv"
    bad.write_text("good\tpos\nno label here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tsv, line 2"):
        recipe.main([f"--data={bad}", output_dir])
    with mock_tfds(num_examples=4):
        with pytest.raises(ValueError, match="'label' .*'text'"):
            recipe.main(["--text-key=review", output_dir])


@pytest.mark.parametrize(
    "argv",
    [
        ["--test-data=x.tsv"],
        ["--embedding-dim=10", "--num-heads=4"],
        ["--epochs=0"],
        ["--dropout=1"],
        ["--pooling=max"],
    ],
)
def test_bad_arguments_exit(recipe, argv):
    with pytest.raises(SystemExit) as exit_info:
        recipe.parse_args(argv)
    assert exit_info.value.code == 2


def test_old_flag_spellings_still_work(recipe, capsys):
    args = recipe.parse_args(["--embedding-dim=32", "--num-heads=2"])
    assert args.d_model == 32
    err = capsys.readouterr().err
    assert "warning: --embedding-dim is deprecated, use --d-model" in err
    assert recipe.parse_args(["--d-model=48"]).d_model == 48
    assert capsys.readouterr().err == ""
    # One name with translate.py: --max-length.
    assert recipe.parse_args(["--max-sequence-length=16"]).max_length == 16
    err = capsys.readouterr().err
    assert (
        "warning: --max-sequence-length is deprecated, use --max-length" in err
    )
    assert recipe.parse_args([]).max_length == 256


def test_unusable_output_dir_stops_before_the_data_is_read(
    recipe, tmp_path, capsys
):
    assert_unusable_output_dir_stops_first(
        recipe.main, ["--data", str(tmp_path / "missing.tsv")], tmp_path, capsys
    )
