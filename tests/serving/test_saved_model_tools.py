"""Every export under the tools of a deployment: the op check, saved_model_cli.

One tiny export of each kind (`tiny_models.export_every_kind`, and a
translator with SentencePiece tokenizers) goes through
`python -m keras_attention.serving check`, `saved_model_cli show --all` and
`saved_model_cli run`.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from keras_attention.serving import __main__ as serving_command
from keras_attention.serving import check_saved_model_ops
from keras_attention.serving import export_translator
from keras_attention.serving import registered_op_sets
from keras_attention.serving.op_check import TENSORFLOW
from keras_attention.serving.op_check import TENSORFLOW_TEXT
from keras_attention.serving.op_check import XLA
from keras_attention.serving.op_check import graph_op_types
from tests.serving.tiny_models import EXAMPLE_TEXT
from tests.serving.tiny_models import export_every_kind
from tests.serving.tiny_sentencepiece import sentencepiece_translator

# The module-scoped exports are built once, on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_saved_model_tools")

KINDS = (
    "seq2seq",
    "translator",
    "translator_sentencepiece",
    "classifier",
    "language_model",
)
# The exports whose tokenizers run tensorflow-text ops (WordPiece,
# SentencePiece).
TEXT_OP_KINDS = ("translator", "translator_sentencepiece", "classifier")
# The tensorflow-text ops the exports may use, all in tensorflow-text
# releases long before the 2.20 that TF Serving 2.20 links: a new one
# needs a look at the server's version first (see `op_check`).
KNOWN_TEXT_OPS = {
    "FastWordpieceTokenizeWithOffsets",
    "NormalizeUTF8",
    "RegexSplitWithOffsets",
    "TFText>FastWordpieceDetokenize",
    "SentencepieceOp",
    "SentencepieceTokenizeOp",
    "SentencepieceDetokenizeOp",
}
SENTENCEPIECE_OPS = {
    "SentencepieceOp",
    "SentencepieceTokenizeOp",
    "SentencepieceDetokenizeOp",
}
FAKE_OP = "KerasAttentionNoSuchOp"
# `saved_model_cli`'s own `main`, run once per command line (argv[1:],
# each a JSON list) in one process, a marker after each, with
# tensorflow-text's ops registered first when argv[1] is "text", as a model
# server links them: plain `saved_model_cli run` cannot load a WordPiece
# export (`Op type not registered 'NormalizeUTF8'`).
SAVED_MODEL_CLI_COMMANDS = """
import json, sys
if sys.argv[1] == "text":
    import tensorflow_text
from tensorflow.python.tools.saved_model_cli import main
for command in sys.argv[2:]:
    sys.argv = ["saved_model_cli", *json.loads(command)]
    try:
        main()
    except SystemExit as exit:
        if exit.code:
            raise
    print("=== command finished ===", flush=True)
"""
END_OF_COMMAND = "=== command finished ===\n"


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    directory = tmp_path_factory.mktemp("exports")
    translator = sentencepiece_translator(directory, beam_width=2)
    return {
        **export_every_kind(directory),
        "translator_sentencepiece": export_translator(
            directory / "translator_sentencepiece", translator
        ),
    }


@pytest.fixture(scope="module")
def op_sets():
    return registered_op_sets()


def _run(command, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        command, capture_output=True, text=True, env=env, **kwargs
    )


def _saved_model_cli(kind, *commands):
    """Runs `saved_model_cli` commands in one process; their stdouts."""
    ops = "text" if kind in TEXT_OP_KINDS else "core"
    command_lines = [json.dumps(list(command)) for command in commands]
    result = _run(
        [sys.executable, "-c", SAVED_MODEL_CLI_COMMANDS, ops, *command_lines]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = result.stdout.split(END_OF_COMMAND)
    assert len(outputs) == len(commands) + 1, result.stdout[-3000:]
    return outputs[:-1]


def test_the_registries_split_core_and_text_ops(op_sets):
    assert {"MatMul", "StringSplitV2", "StatelessWhile"} <= op_sets.core
    assert {"NormalizeUTF8", "FastWordpieceTokenizeWithOffsets"} <= (
        op_sets.text
    )
    assert not op_sets.core & op_sets.text
    assert op_sets.origin("XlaDynamicUpdateSlice") == XLA
    assert op_sets.origin(FAKE_OP) is None


@pytest.mark.parametrize("kind", KINDS)
def test_every_op_of_every_export_is_core_or_text(kind, exports, op_sets):
    check = check_saved_model_ops(exports[kind], op_sets, allow_xla=True)
    assert check.ok, check.report()
    assert check.unknown == []
    text_ops = {op for op, o in check.origins.items() if o == TENSORFLOW_TEXT}
    assert text_ops <= KNOWN_TEXT_OPS
    assert bool(text_ops) == (kind in TEXT_OP_KINDS)
    assert (SENTENCEPIECE_OPS <= text_ops) == (
        kind == "translator_sentencepiece"
    )
    assert check.origins["StatefulPartitionedCall"] == TENSORFLOW
    # Nodes of the functions count too: the decoding loops live there.
    assert "ReadVariableOp" in check.op_types


@pytest.mark.parametrize("kind", KINDS)
def test_a_default_model_server_can_run_every_export(kind, exports, op_sets):
    check = check_saved_model_ops(exports[kind], op_sets)
    assert check.ok, check.report()


def test_graph_op_types_counts_functions_but_not_calls():
    graph = graph_pb2.GraphDef()
    graph.node.add(name="x", op="Placeholder")
    graph.node.add(name="call", op="inner")  # a call of a function by name
    inner = graph.library.function.add()
    inner.signature.name = "inner"
    inner.node_def.add(name="a", op="AddV2")
    inner.node_def.add(name="b", op="AddV2")
    inner.node_def.add(name="fake", op=FAKE_OP)
    assert graph_op_types(graph) == {"Placeholder": 1, "AddV2": 2, FAKE_OP: 1}


def _with_fake_op(version_dir, directory):
    """A copy of a SavedModel with an unknown op in a function's body."""
    shutil.copytree(version_dir, directory)
    path = os.path.join(directory, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as file:
        saved_model.ParseFromString(file.read())
    function = saved_model.meta_graphs[0].graph_def.library.function[0]
    function.node_def.add(name="unknown", op=FAKE_OP)
    with open(path, "wb") as file:
        file.write(saved_model.SerializeToString())
    return directory


def test_the_command_names_an_unknown_op_and_fails(exports, tmp_path):
    crafted = _with_fake_op(exports["classifier"], str(tmp_path / "crafted"))
    base_dir = os.path.dirname(exports["classifier"])
    module = [sys.executable, "-m", "keras_attention.serving", "check"]
    result = _run([*module, base_dir, exports["language_model"], crafted])
    assert result.returncode == 1, result.stdout + result.stderr
    reports = result.stdout.split(f"{crafted}:")
    assert len(reports) == 2, result.stdout
    good, bad = reports
    assert good.count("ok: a model server can run every op") == 2
    assert "  NormalizeUTF8 (tensorflow-text, " in good
    # The language model decodes with core ops only (ops.slice_update).
    assert "XlaDynamicUpdateSlice" not in good
    assert f"cannot run them: {FAKE_OP}" in bad
    assert f"  {FAKE_OP} (UNKNOWN, 1 nodes)" in bad


def test_the_command_says_when_a_directory_holds_no_saved_model(
    tmp_path, capsys
):
    status = serving_command.main(["check", str(tmp_path / "missing")])
    assert status == serving_command.BAD_INPUT_EXIT_CODE
    assert "No SavedModel" in capsys.readouterr().err


def _show_and_run(directory):
    return [
        ["show", "--all", "--dir", directory],
        [
            "run",
            "--dir",
            directory,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            f'texts=["{EXAMPLE_TEXT}", ""]',
        ],
    ]


@pytest.fixture(scope="module")
def saved_model_cli_outputs(exports):
    """`{kind: (shown, run)}`: one process for the exports of core ops
    only (tensorflow-text never loaded), one for those of text ops."""
    outputs = {}
    for text in (False, True):
        kinds = [kind for kind in KINDS if (kind in TEXT_OP_KINDS) == text]
        commands = [c for kind in kinds for c in _show_and_run(exports[kind])]
        results = _saved_model_cli(kinds[0], *commands)
        for index, kind in enumerate(kinds):
            outputs[kind] = tuple(results[2 * index : 2 * index + 2])
    return outputs


@pytest.mark.parametrize("kind", KINDS)
def test_saved_model_cli_shows_and_runs_every_export(
    kind, saved_model_cli_outputs
):
    shown, run = saved_model_cli_outputs[kind]
    assert "MetaGraphDef with tag-set: 'serve'" in shown
    assert "signature_def['serving_default']" in shown
    assert "inputs['texts'] tensor_info:" in shown
    for output in ("outputs", "status"):
        assert f"outputs['{output}'] tensor_info:" in shown
    assert "Result for output key status:\n[b'ok' b'empty']" in run
    assert "Result for output key outputs:" in run


def test_the_saved_model_cli_executable_shows_an_export(exports):
    executable = shutil.which(
        "saved_model_cli", path=os.path.dirname(sys.executable)
    )
    assert executable, "saved_model_cli is installed with tensorflow"
    shown = _run([executable, "show", "--all", "--dir", exports["seq2seq"]])
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "signature_def['serving_default']" in shown.stdout
