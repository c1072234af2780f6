import argparse
import dataclasses
import json
import os
import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.cli import COMMON_ARGUMENTS
from keras_attention.cli import DATA_SOURCE_ARGUMENTS
from keras_attention.cli import DEPRECATED_FLAGS
from keras_attention.cli import EXPORT_DIR
from keras_attention.cli import NUM_WARMUP_TEXTS
from keras_attention.cli import HelpFormatter
from keras_attention.cli import Run
from keras_attention.cli import add_argument
from keras_attention.cli import add_arguments
from keras_attention.cli import add_output_arguments
from keras_attention.cli import add_preset_arguments
from keras_attention.cli import add_preset_group
from keras_attention.cli import apply_preset
from keras_attention.cli import check_arguments
from keras_attention.cli import data_source_arguments
from keras_attention.cli import make_parser
from keras_attention.cli import parse_arguments
from keras_attention.cli import preset_defaults
from keras_attention.cli import run_recipe
from keras_attention.cli import write_summary
from keras_attention.serving.model_versions import write_version


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


def test_add_arguments_takes_names_then_the_defaults_it_lacks():
    parser = make_parser("A recipe.")
    add_arguments(parser, "seed", epochs=3, batch_size=8)
    flags = [a.option_strings[0] for a in parser._actions[1:]]
    assert flags == ["--seed", "--epochs", "--batch-size"]
    args = parser.parse_args([])
    assert (args.seed, args.epochs, args.batch_size) == (0, 3, 8)


def test_add_output_arguments():
    parser = make_parser("A recipe.")
    group = add_output_arguments(parser, "classify")
    group.add_argument("--extra", help="the recipe's own")
    args = parser.parse_args(["--no-export"])
    assert args.output_dir == os.path.join("outputs", "classify")
    assert args.no_export and args.extra is None
    assert args.export_version is None  # the next version
    assert parser.parse_args(["--export-version", "3"]).export_version == 3
    assert group.title == "output"


def test_export_version_must_be_new_and_positive(tmp_path, capsys):
    parser = make_parser("A recipe.")
    add_output_arguments(parser, "classify")
    (tmp_path / EXPORT_DIR / "2").mkdir(parents=True)
    out = f"--output-dir={tmp_path}"
    for argv, message in (
        (["--export-version=0"], "--export-version must be positive"),
        (["--export-version=2"], "--export-version 2: .* exists already"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            parse_arguments(parser, [out, *argv])
        assert exit_info.value.code == 2
        assert re.search(message, capsys.readouterr().err)
    assert parse_arguments(parser, [out, "--export-version=3"])
    # Nothing is exported, so nothing is overwritten.
    assert parse_arguments(parser, [out, "--export-version=2", "--no-export"])


class _Cased(tf.Module):
    """A string-in, string-out SavedModel: texts upper- or lower-cased."""

    def __init__(self, upper):
        super().__init__()
        self.upper = upper

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, texts):
        cased = tf.strings.upper if self.upper else tf.strings.lower
        return {"outputs": cased(texts)}


def _export_cased(upper, version=None):
    """An `export_*`-like function of a model base directory."""
    module = _Cased(upper)

    def write(directory):
        tf.saved_model.save(
            module, directory, signatures={"serving_default": module.serve}
        )

    return lambda path: write_version(path, write, version)


def test_export_and_verify_adds_a_version_each_run(tmp_path, capsys):
    parser = _parser("output_dir", "seed", "restart", "epochs")
    args = parser.parse_args(["--output-dir", str(tmp_path), "--epochs", "1"])
    base = tmp_path / EXPORT_DIR
    for upper, version in ((True, "1"), (False, "2")):
        run = Run(args)  # the same command, run again
        run.start()
        agreement = run.export_and_verify(
            _export_cased(upper), ["Ab"], ["AB" if upper else "ab"]
        )
        assert agreement == 1.0
        assert run.export_dir == str(base / version)
        assert f"Exported {base / version}" in capsys.readouterr().out
    # The first version is kept, as TF Serving expects of a base directory.
    assert sorted(os.listdir(base)) == ["1", "2"]
    assert (base / "1" / "saved_model.pb").is_file()
    with pytest.raises(ValueError, match="exists already"):
        Run(args).export_and_verify(_export_cased(True, version=2), ["Ab"])


@dataclasses.dataclass(frozen=True)
class Sizes:
    epochs: int = 2
    d_model: int = 16


PRESETS = {"small": Sizes(), "big": Sizes(epochs=9, d_model=64)}


def test_presets_fill_what_the_command_line_leaves_out(capsys):
    assert preset_defaults(PRESETS, "epochs") == (
        "(default: 9 with big, 2 with small)"
    )
    parser = make_parser("A recipe.")
    add_preset_arguments(parser, PRESETS, "epochs", "d_model")
    text = " ".join(parser.format_help().split())
    assert "training epochs (default: 9 with big, 2 with small)" in text
    args = parser.parse_args(["--d-model", "32"])
    apply_preset(args, PRESETS["big"])
    assert (args.epochs, args.d_model) == (9, 32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["big"].epochs = 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--held-out-fraction", "1"], r"--held-out-fraction .* \(0, 1\)"),
        (["--held-out-fraction", "0"], r"--held-out-fraction .* \(0, 1\)"),
        (["--test-data", "t.tsv"], "--test-data needs --data"),
        (["--max-length", "0"], "--max-length must be positive"),
    ],
)
def test_check_arguments_on_data_arguments(capsys, argv, message):
    parser = _parser("data", "test_data", "held_out_fraction", "max_length")
    with pytest.raises(SystemExit) as exit_info:
        check_arguments(parser, parser.parse_args(argv))
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    good = ["--data", "d.tsv", "--test-data", "t.tsv"]
    check_arguments(parser, parser.parse_args(good))  # no exit


def test_run_fit_repeats_the_data_and_the_summary_counts_epochs(tmp_path):
    args = _parser("output_dir", "seed", "restart", "epochs").parse_args(
        ["--output-dir", str(tmp_path), "--epochs", "2"]
    )
    run = Run(args)
    run.start()
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    data = tf.data.Dataset.from_tensor_slices(([[1.0]] * 4, [[2.0]] * 4))
    # Two batches, but three steps per epoch: the data must repeat.
    history = run.fit(model, data.batch(2), steps_per_epoch=3, verbose=0)
    assert len(history["loss"]) == 2
    assert model.optimizer.iterations.numpy() == 6
    summary = run.finish({"accuracy": 0.5})
    assert summary["epochs"] == 2 and summary["history"] == history
    assert 0.0 < run.elapsed() and summary["total_seconds"] > 0.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--source-file", "a.pt"], "--source-file and --target-file go"),
        (["--target-file", "a.en"], "--source-file and --target-file go"),
        (
            ["--source-file", "a", "--target-file", "b", "--data", "c"],
            "either --source-file/--target-file or --data",
        ),
    ],
)
def test_check_arguments_on_line_aligned_files(capsys, argv, message):
    parser = _parser("data", "source_file", "target_file")
    with pytest.raises(SystemExit) as exit_info:
        check_arguments(parser, parser.parse_args(argv))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    good = ["--source-file", "a.pt", "--target-file", "a.en"]
    check_arguments(parser, parser.parse_args(good))  # no exit


def test_preset_group_holds_the_preset_and_every_field(capsys):
    parser = make_parser("A recipe.")
    group = add_preset_group(
        parser, PRESETS, "small", "how big", d_model="the width"
    )
    assert group.title == "sizes"
    flags = [action.option_strings[0] for action in group._group_actions]
    # Each field with its old spellings (`--embedding-dim`).
    assert flags == ["--preset", "--epochs", "--d-model", "--embedding-dim"]
    text = " ".join(parser.format_help().split())
    assert "how big" in text
    assert "the width (default: 64 with big, 16 with small)" in text
    args = parse_arguments(parser, ["--epochs", "5"], presets=PRESETS)
    assert (args.preset, args.epochs, args.d_model) == ("small", 5, 16)
    args = parse_arguments(parser, ["--preset", "big"], presets=PRESETS)
    assert (args.epochs, args.d_model) == (9, 64)
    with pytest.raises(SystemExit):
        parse_arguments(parser, ["--preset", "huge"], presets=PRESETS)
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Received: default='huge'"):
        add_preset_group(make_parser("A recipe."), PRESETS, "huge", "sizes")


def test_batch_tokens_and_norm_first_are_common_arguments(capsys):
    parser = _parser("batch_tokens", "norm_first")
    args = parser.parse_args(["--batch-tokens", "512", "--norm-first"])
    assert (args.batch_tokens, args.norm_first) == (512, True)
    assert parser.parse_args([]).norm_first is False
    with pytest.raises(SystemExit):
        check_arguments(parser, parser.parse_args(["--batch-tokens", "0"]))
    assert "--batch-tokens must be positive" in capsys.readouterr().err


def test_parse_arguments_resolves_defaults_that_follow_other_flags():
    parser = _parser(
        "batch_size", "max_length", "max_output_length", batch_tokens=4096
    )
    args = parse_arguments(parser, ["--max-length", "32"])
    assert (args.batch_tokens, args.batch_size) == (4096, None)
    assert args.max_output_length == 32
    args = parse_arguments(
        parser, ["--batch-size", "8", "--max-output-length", "5"]
    )
    assert (args.batch_tokens, args.batch_size) == (None, 8)
    assert (args.max_output_length, args.max_length) == (5, None)
    # A parser without these flags is left alone.
    assert not hasattr(parse_arguments(_parser("epochs"), []), "batch_tokens")


def test_parse_arguments_applies_the_preset_then_checks(capsys):
    parser = make_parser("A recipe.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    add_preset_arguments(parser, PRESETS, "epochs", "d_model")
    args = parse_arguments(
        parser, ["--preset", "big", "--epochs", "4"], presets=PRESETS
    )
    assert (args.epochs, args.d_model) == (4, 64)
    parser.add_argument("--units", type=int, default=0)
    with pytest.raises(SystemExit):
        parse_arguments(parser, [], positive=("units",), presets=PRESETS)
    assert "--units must be positive" in capsys.readouterr().err
    plain = _parser("epochs")
    assert parse_arguments(plain, ["--epochs", "2"]).epochs == 2


def test_data_source_arguments_are_the_loaders_keywords():
    import inspect

    from keras_attention.data.sources import load_text_pairs
    from keras_attention.data.translation import load_tfds_translation_data

    parser = _parser("dataset", "data", "source_file", "target_file", "seed")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(["--data", "p.tsv", "--seed", "4"])
    assert data_source_arguments(args) == dict(
        dataset=None, data="p.tsv", source_file=None, target_file=None, seed=4
    )
    # Every name is a common argument and a keyword of a loader.
    keywords = {
        *inspect.signature(load_text_pairs).parameters,
        *inspect.signature(load_tfds_translation_data).parameters,
        "text_key",
        "label_key",
    }
    for name in DATA_SOURCE_ARGUMENTS:
        assert name in COMMON_ARGUMENTS and name in keywords, name


def test_normalization_none_is_parsed_as_none():
    parser = _parser("normalization")
    assert parser.parse_args([]).normalization == "nfd_strip_accents"
    assert parser.parse_args(["--normalization", "None"]).normalization is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--normalization", "nfc"])


def test_export_to_summary_passes_version_and_warmup_or_skips(tmp_path):
    parser = _parser("seed", "restart", "epochs")
    add_output_arguments(parser, "recipe")
    argv = ["--output-dir", str(tmp_path), "--export-version", "7"]
    run = Run(parser.parse_args(argv))
    calls = []

    def export_and_verify(export, texts, expected, compare, noun="answers"):
        calls.append((export("base"), texts, expected, noun))
        return 0.5

    run.export_and_verify = export_and_verify
    texts = [f"t{i}" for i in range(6)]
    summary = run.export_to_summary(
        {},
        lambda path, **kwargs: (path, kwargs),
        texts,
        lambda inputs: [s.upper() for s in inputs],  # computed when exporting
        noun="things",
    )
    assert summary == {"export_agreement": 0.5}
    ((written, checked, expected, noun),) = calls
    assert written == (
        "base",
        {"version": 7, "warmup_texts": texts[:NUM_WARMUP_TEXTS]},
    )
    assert (checked, expected[0], noun) == (texts, "T0", "things")
    skipped = Run(parser.parse_args([*argv, "--no-export"]))
    skipped.export_and_verify = export_and_verify
    never = lambda inputs: pytest.fail("computed without an export")  # noqa: E731
    assert skipped.export_to_summary({}, None, texts, never) == {}
    assert len(calls) == 1


def test_add_training_arguments_shares_one_group_with_recipe_defaults():
    from keras_attention.cli import add_training_arguments

    parser = make_parser("A recipe.")
    group = add_training_arguments(
        parser,
        "no_jit",
        epochs=3,
        batch_size=dict(default=128, help="pairs per batch"),
    )
    assert group.title == "training"
    args = parse_arguments(parser, ["--seed", "4", "--no-jit"])
    assert (args.epochs, args.batch_size, args.seed) == (3, 128, 4)
    assert args.no_jit and not args.restart
    assert "pairs per batch" in parser.format_help()
    with pytest.raises(SystemExit):
        parse_arguments(parser, ["--epochs", "0"])


def test_add_sampling_arguments_defaults_and_checks(capsys):
    from keras_attention.cli import add_sampling_arguments

    parser = make_parser("A recipe.")
    add_sampling_arguments(parser, max_new_tokens=40, temperature=0.8, top_k=10)
    args = parse_arguments(parser, ["--prompt", "a", "--prompt", "b c"])
    assert args.prompt == ["a", "b c"]
    assert (args.max_new_tokens, args.temperature, args.top_k) == (40, 0.8, 10)
    for bad in (["--top-k", "0"], ["--max-new-tokens", "-1"]):
        with pytest.raises(SystemExit):
            parse_arguments(parser, bad)
        assert "must be positive" in capsys.readouterr().err


def _output_dir_parser():
    parser = make_parser("A recipe.")
    add_output_arguments(parser, "classify")
    return parser


def _exit_message(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(_output_dir_parser(), argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_output_dir_that_is_a_file_stops_before_anything(tmp_path, capsys):
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine")
    error = _exit_message(capsys, ["--output-dir", str(a_file)])
    assert f"error: --output-dir {a_file}: it exists and is not a dir" in error
    # Below a file: the file is named.
    error = _exit_message(capsys, ["--output-dir", str(a_file / "run")])
    assert f"{a_file} exists and is not a directory" in error
    assert sorted(os.listdir(tmp_path)) == ["results.txt"]


def test_new_output_dir_is_checked_without_being_created(tmp_path):
    target = tmp_path / "new" / "run"
    args = parse_arguments(_output_dir_parser(), ["--output-dir", str(target)])
    assert args.output_dir == str(target)
    assert os.listdir(tmp_path) == []  # no probe, no directory left


@pytest.mark.parametrize(
    "error, expected",
    [
        (PermissionError(13, "Permission denied"), "Permission denied"),
        (OSError(28, "No space left on device"), "No space left on device"),
    ],
)
def test_unwritable_or_full_output_dir_stops(
    tmp_path, capsys, monkeypatch, error, expected
):
    import keras_attention.cli as cli

    # Root may write in a read-only directory: the probe's failure is
    # simulated (a chmod would not stop root).
    def refuse(path, *args, **kwargs):
        raise error

    monkeypatch.setattr(cli, "open", refuse, raising=False)
    message = _exit_message(capsys, ["--output-dir", str(tmp_path)])
    assert f"--output-dir {tmp_path}: cannot write in {tmp_path}" in message
    assert expected in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output_dir_stops(tmp_path, capsys):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        message = _exit_message(capsys, ["--output-dir", str(read_only)])
    finally:
        read_only.chmod(0o700)
    assert "cannot write in" in message and "Permission denied" in message


def test_too_little_free_space_stops(tmp_path, capsys, monkeypatch):
    import collections

    import keras_attention.cli as cli

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(
        cli.shutil, "disk_usage", lambda path: usage(10, 10, 2**20)
    )
    message = _exit_message(capsys, ["--output-dir", str(tmp_path)])
    assert "only 1.0 MiB free on its disk, less than the 64 MiB" in message
    assert cli.check_output_dir(tmp_path, min_free_bytes=2**19) is None


def test_run_save_model_is_atomic(tmp_path):
    args = argparse.Namespace(
        output_dir=str(tmp_path), seed=0, restart=False, epochs=1
    )
    run = Run(args)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = run.save_model(model)
    assert path == str(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(path)
    assert reloaded.count_params() == model.count_params()
    assert os.listdir(tmp_path) == ["model.keras"]  # no temporary left


def test_multi_worker_patience_refuses_a_monitor_the_loop_cannot_compute():
    # Under multi_worker the stopping rule sees only the (validation)
    # loss: a recipe that stops on another metric must say so, not watch
    # the wrong number.
    run = object.__new__(Run)
    run.args = argparse.Namespace(patience=2, time_budget=None)
    with pytest.raises(ValueError, match="--patience with --strategy"):
        run._fit_multi_worker(None, None, "val_exact_match", object())
    with pytest.raises(ValueError, match="watches loss"):
        run._fit_multi_worker(None, None, "val_loss", None)


def test_multi_worker_fit_hands_the_stopping_rule_to_the_loop(monkeypatch):
    # What the recipes' --patience / --time-budget reach under
    # multi_worker: fit_distributed_run's own stopping rule, with the
    # validation data, on a twin built under the strategy whose trained
    # weights come back into the recipe's model.
    import keras_attention.cli as cli_module

    calls = {}

    def fit(model, data, output_dir, epochs, strategy, **kwargs):
        calls.update(kwargs, output_dir=output_dir, epochs=epochs)
        model.set_weights([w + 1.0 for w in model.get_weights()])
        return {"loss": [1.0]}

    monkeypatch.setattr(cli_module, "fit_distributed_run", fit)

    def build():
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def compile_arguments():
        return {"optimizer": "sgd", "loss": "mse"}

    run = object.__new__(Run)
    run.args = argparse.Namespace(
        patience=2, time_budget=5.0, output_dir="out", epochs=3
    )
    run._strategy = tf.distribute.get_strategy()
    run._build, run._compile_arguments = build, compile_arguments
    model = build()
    before = model.get_weights()
    validation = object()
    history = run._fit_multi_worker(model, "data", "val_loss", validation)
    assert history == run.history == {"loss": [1.0]}
    assert calls == {
        "validation_data": validation,
        "patience": 2,
        "time_budget": 5.0,
        "output_dir": "out",
        "epochs": 3,
    }
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_allclose(got, want + 1.0)
