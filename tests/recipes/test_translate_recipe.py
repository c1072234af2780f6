import contextlib
import importlib.util
import io
import json
import os
import random

import pytest
import tensorflow_datasets as tfds

from keras_attention.data.translation import TOKENIZER_FILES
from tests.tfds_fakes import KaTestParaLike
from tests.tfds_fakes import KaTestWmtLike
from tests.tfds_fakes import prepare

RECIPE = os.path.join(
    os.path.dirname(__file__), "..", "..", "recipes", "translate.py"
)
LEXICON = {
    "um": "one",
    "dois": "two",
    "tres": "three",
    "gato": "cat",
    "cao": "dog",
    "come": "eats",
    "ve": "sees",
    "o": "the",
    "grande": "big",
}
# The toy corpus gives SentencePiece 28 source pieces at most.
VOCABULARY_SIZES = {"sentencepiece": "28", "wordpiece": "60"}


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("translate_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_parallel_files(folder, count=96, seed=0):
    """A toy word-for-word "Portuguese" -> English corpus."""
    rng = random.Random(seed)
    words = list(LEXICON)
    sources, targets = [], []
    for _ in range(count):
        sentence = [rng.choice(words) for _ in range(rng.randint(2, 6))]
        sources.append(" ".join(sentence))
        english = " ".join(LEXICON[w] for w in sentence)
        targets.append(english.capitalize() + ".")
    source, target = folder / "train.pt", folder / "train.en"
    source.write_text("\n".join(sources) + "\n", encoding="utf-8")
    target.write_text("\n".join(targets) + "\n", encoding="utf-8")
    return source, target


def _tiny_args(tmp_path, *extra, tokenizer="sentencepiece"):
    return [
        "--tokenizer",
        tokenizer,
        "--output-dir",
        str(tmp_path / "out"),
        "--num-layers",
        "1",
        "--d-model",
        "16",
        "--num-heads",
        "2",
        "--feed-forward-dim",
        "32",
        "--vocabulary-size",
        VOCABULARY_SIZES[tokenizer],
        "--max-length",
        "12",
        "--batch-size",
        "16",
        "--warmup-steps",
        "10",
        "--epochs",
        "1",
        "--held-out-fraction",
        "0.1",
        *extra,
    ]


@pytest.mark.large
@pytest.mark.parametrize("tokenizer", ["sentencepiece", "wordpiece"])
def test_end_to_end_bleu_export_and_fresh_process(recipe, tmp_path, tokenizer):
    source, target = write_parallel_files(tmp_path)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        summary = recipe.main(
            _tiny_args(
                tmp_path,
                "--source-file",
                str(source),
                "--target-file",
                str(target),
                "--beam-width",
                "1",
                tokenizer=tokenizer,
            )
        )
    printed = output.getvalue()
    assert "Held-out greedy BLEU = " in printed
    assert "(nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in printed
    assert "translated: " in printed
    assert 0.0 <= summary["bleu"] <= 100.0
    assert summary["bleu_details"].startswith("BLEU = ")
    assert summary["bleu_signature"].startswith("nrefs:1|case:mixed|")
    # References are compared as written (cased) with SentencePiece, and
    # normalised as WordPiece writes with it.
    references = [
        line.split("reference:  ")[1]
        for line in printed.splitlines()
        if "reference:  " in line
    ]
    assert len(references) == 3
    cased = [reference[0].isupper() for reference in references]
    assert cased == [tokenizer == "sentencepiece"] * 3
    assert summary["epochs"] == 1 and summary["num_held_out"] == 10
    # The default stopping rule ran (patience 3: one epoch is the best).
    assert summary["stopping"]["best_epoch"] == 0
    # The recipe answered the held-out sources with the SavedModel in a
    # process that did not import keras_attention, and compared them.
    assert summary["export_agreement"] == 1.0
    assert "translations agree" in printed
    out = tmp_path / "out"
    source_file, target_file = TOKENIZER_FILES[tokenizer]
    for name in (
        "attention.png",
        "model.keras",
        source_file,
        target_file,
        "history.csv",
        "summary.json",
        "stopping.json",
        "best.weights.h5",
        "checkpoints/epoch_001.weights.h5",
        "saved_model/1/saved_model.pb",
        f"saved_model/1/assets/{target_file}",
    ):
        assert (out / name).exists(), name
    assert not (out / "backup").exists()  # removed once training completes
    assert (
        json.loads((out / "summary.json").read_text())["bleu"]
        == (summary["bleu"])
    )
    # `saved_model_cli` on a translator export: tests/serving/
    # test_saved_model_tools.py.


def test_help_documents_every_option(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        recipe.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--dataset",
        "--data-dir",
        "--source-key",
        "--target-key",
        "--train-split",
        "--eval-split",
        "--source-file",
        "--target-file",
        "--data",
        "--held-out-fraction",
        "--max-examples",
        "--max-eval-examples",
        "--vocab-size",
        "--tokenizer",
        "--case-sensitive",
        "--normalization",
        "--preset",
        "--num-layers",
        "--d-model",
        "--num-heads",
        "--feed-forward-dim",
        "--dropout",
        "--epochs",
        "--batch-tokens",
        "--batch-size",
        "--max-length",
        "--length-policy",
        "--warmup-steps",
        "--label-smoothing",
        "--steps-per-epoch",
        "--strategy",
        "--patience",
        "--time-budget",
        "--restart",
        "--seed",
        "--beam-width",
        "--length-penalty",
        "--max-output-length",
        "--output-dir",
        "--no-export",
    ):
        assert option in text, option
    assert "cpu-small" in text and "mirrored" in text


def test_presets_and_overrides(recipe):
    args = recipe.parse_args([])
    assert args.preset == "cpu-small"
    assert (args.num_layers, args.d_model, args.batch_tokens) == (2, 128, 4096)
    assert args.dataset == "ted_hrlr_translate/pt_to_en"
    assert args.max_output_length == args.max_length == 64
    assert args.tokenizer == "sentencepiece"
    # Early stopping by default, with room to train (a ~30k-pair file).
    assert (args.patience, args.epochs, args.time_budget) == (3, 30, None)
    args = recipe.parse_args(["--patience", "5", "--time-budget", "60"])
    assert (args.patience, args.time_budget) == (5, 60.0)
    # Under multi_worker too: the workers stop together on val_loss.
    assert recipe.parse_args(["--strategy", "multi_worker"]).patience == 3
    assert recipe.parse_args(["--tokenizer", "wordpiece"]).tokenizer == (
        "wordpiece"
    )
    args = recipe.parse_args(["--preset", "base", "--d-model", "256"])
    assert (args.num_layers, args.d_model, args.num_heads) == (6, 256, 8)
    args = recipe.parse_args(["--batch-size", "32"])
    assert args.batch_tokens is None  # sentences per batch instead


@pytest.mark.parametrize(
    "argv",
    [
        ["--source-file", "a.txt"],
        ["--source-file", "a", "--target-file", "b", "--data", "c"],
        ["--epochs", "0"],
        ["--held-out-fraction", "1.5"],
        ["--strategy", "tpu"],
        ["--tokenizer", "bpe"],
    ],
)
def test_bad_command_lines(recipe, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        recipe.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_local_data(recipe, tmp_path):
    source, target = write_parallel_files(tmp_path, count=40)
    args = recipe.parse_args(
        _tiny_args(
            tmp_path, "--source-file", str(source), "--target-file", str(target)
        )
    )
    train, held_out = recipe.load_data(args)
    assert (len(train), len(held_out)) == (36, 4)
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("olá\thello\nobrigado\tthank you\n" * 10, encoding="utf-8")
    args = recipe.parse_args(
        _tiny_args(tmp_path, "--data", str(tsv), "--max-eval-examples", "1")
    )
    train, held_out = recipe.load_data(args)
    assert len(train) == 18 and len(held_out) == 1
    assert set(train) == {("olá", "hello"), ("obrigado", "thank you")}


def test_local_data_errors(recipe, tmp_path):
    (tmp_path / "s").write_text("a\nb\n")
    (tmp_path / "t").write_text("x\n")
    args = recipe.parse_args(
        [
            "--source-file",
            str(tmp_path / "s"),
            "--target-file",
            str(tmp_path / "t"),
        ]
    )
    with pytest.raises(ValueError, match="2 lines in .* and 1 lines"):
        recipe.load_data(args)


def test_tfds_data_with_mock(recipe, tmp_path):
    args = recipe.parse_args(
        ["--max-examples", "5", "--max-eval-examples", "3"]
    )
    with tfds.testing.mock_data(num_examples=8):
        train, held_out = recipe.load_data(args)
        train = list(train.as_numpy_iterator())
    assert len(train) == 5 and len(held_out) == 3
    assert all(isinstance(s, str) and isinstance(t, str) for s, t in held_out)


def test_tfds_data_without_validation_split_holds_out_train(
    recipe, tmp_path, capsys
):
    data_dir = prepare(tmp_path / "tfds")
    argv = ["--data-dir", data_dir, "--held-out-fraction", "0.1"]
    args = recipe.parse_args(["--dataset", KaTestParaLike.name, *argv])
    train, held_out = recipe.load_data(args)
    train = [source.decode() for source, _ in train.as_numpy_iterator()]
    assert (len(train), len(held_out)) == (36, 4)  # 10% of 40
    assert not set(train) & {source for source, _ in held_out}
    assert "held out: the first 4 pairs of train" in capsys.readouterr().out
    # The hold-out is a fraction of what trains, not of the whole split.
    args = recipe.parse_args(
        ["--dataset", KaTestParaLike.name, "--max-examples", "20", *argv]
    )
    train, held_out = recipe.load_data(args)
    assert (len(list(train)), len(held_out)) == (20, 2)
    # A dataset with a validation split uses it.
    args = recipe.parse_args(["--dataset", KaTestWmtLike.name, *argv])
    _, held_out = recipe.load_data(args)
    assert len(held_out) == 6
    assert all(" validation " in source for source, _ in held_out)


def test_old_flag_spellings_still_work(recipe, capsys):
    args = recipe.parse_args(["--vocab-size", "60", "--max-examples", "5"])
    assert (args.vocabulary_size, args.max_train_examples) == (60, 5)
    err = capsys.readouterr().err
    assert "warning: --vocab-size is deprecated, use --vocabulary-size" in err
    assert "warning: --max-examples is deprecated, use --max-train-" in err
    args = recipe.parse_args(["--vocabulary-size", "60"])
    assert args.vocabulary_size == 60 and capsys.readouterr().err == ""
    assert recipe.parse_args([]).vocabulary_size == 4000  # the preset's
    # One name with classify.py: --max-length.
    args = recipe.parse_args(["--max-sequence-length", "32"])
    assert args.max_length == args.max_output_length == 32
    err = capsys.readouterr().err
    assert (
        "warning: --max-sequence-length is deprecated, use --max-length" in err
    )


def test_synthetic_benchmark_corpus_is_cased_distinct_and_loads(
    recipe, tmp_path
):
    spec = importlib.util.spec_from_file_location(
        "translation_quality",
        os.path.join(
            os.path.dirname(RECIPE),
            "..",
            "benchmarks",
            "translation_quality.py",
        ),
    )
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    pairs = benchmark.synthetic_pairs(400, seed=1)
    assert pairs == benchmark.synthetic_pairs(400, seed=1)
    assert pairs != benchmark.synthetic_pairs(400, seed=2)
    assert len(set(pairs)) == 400
    targets = [target for _, target in pairs]
    assert not any(target[0].islower() for target in targets)
    assert any(any(c.isdigit() for c in target) for target in targets)
    assert any("?" in target for target in targets)
    assert any('"' in target for target in targets)
    tsv = tmp_path / "corpus.tsv"
    benchmark.write_tsv(pairs, tsv)
    args = recipe.parse_args(["--data", str(tsv), "--held-out-fraction", "0.1"])
    train, held_out = recipe.load_data(args)
    assert len(train) + len(held_out) == 400
    assert set(train) | set(held_out) == set(pairs)
