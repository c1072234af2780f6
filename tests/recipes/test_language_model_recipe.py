"""End-to-end tests of `recipes/language_model.py` (offline)."""

import importlib.util
import json
import os
import sys

import pytest
import tensorflow_datasets as tfds

from tests.recipes.checks import assert_unusable_output_dir_stops_first

RECIPE = os.path.join(
    os.path.dirname(__file__),
    os.pardir,
    os.pardir,
    "recipes",
    "language_model.py",
)
# Small enough to train in seconds on a CPU.
TINY = [
    "--num-layers=1",
    "--d-model=16",
    "--num-heads=2",
    "--feed-forward-dim=32",
    "--sequence-length=32",
    "--batch-size=32",
    "--max-new-tokens=8",
]


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("lm_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # for AutoGraph
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def tiny_args(tmp_path, *extra, epochs=1):
    output = f"--output-dir={tmp_path / 'out'}"
    return [*TINY, f"--epochs={epochs}", output, *extra]


def test_help_documents_every_option(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        recipe.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in recipe.build_parser()._actions:
        for option in action.option_strings:
            assert option in text


@pytest.mark.large
def test_shipped_text_end_to_end_with_export(recipe, tmp_path, capsys):
    summary = recipe.main(tiny_args(tmp_path, "--num-key-value-heads=1"))
    out = tmp_path / "out"
    for name in (
        "attention.png",
        "training_curves.png",
        "model.keras",
        "vocabulary.json",
        "history.csv",
        "saved_model/1/saved_model.pb",
    ):
        assert (out / name).exists(), name
    assert summary["export_agreement"] == 1.0
    assert summary["held_out_perplexity"] > 1.0
    assert len(summary["samples"]) == 3
    printed = capsys.readouterr().out
    assert "epoch 1: held-out loss" in printed and "perplexity" in printed
    assert "fresh process" in printed
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1


def test_tfds_dataset_by_name(recipe, tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        summary = recipe.main(
            tiny_args(
                tmp_path,
                "--no-export",
                "--tfds-name=imdb_reviews",
                "--position-encoding=learned",
                "--sliding-window=8",
                "--normalization=layer",
                "--activation=gelu",
            )
        )
    assert summary["num_held_out_tokens"] > 32


def test_bad_input_fails_clearly(recipe, tmp_path):
    with pytest.raises(ValueError, match="Unknown TFDS dataset"):
        recipe.main(tiny_args(tmp_path, "--tfds-name=no_such_set"))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        recipe.main(tiny_args(tmp_path, f"--text-file={tmp_path}/missing.txt"))
    short = tmp_path / "short.txt"
    short.write_text("too short\n")
    with pytest.raises(ValueError, match="too few"):
        recipe.main(tiny_args(tmp_path, f"--text-file={short}"))


def test_unusable_output_dir_stops_before_the_data_is_read(
    recipe, tmp_path, capsys
):
    assert_unusable_output_dir_stops_first(
        recipe.main,
        [f"--text-file={tmp_path / 'missing.txt'}"],
        tmp_path,
        capsys,
    )
