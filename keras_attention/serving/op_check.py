"""Can a model server run this SavedModel? Every op type of its graphs.

TF Serving's `tensorflow_model_server` runs a SavedModel only when every
op its graphs name is linked into the server: TensorFlow's core ops, and
the tensorflow-text ops of `@org_tensorflow_text//tensorflow_text:ops_lib`,
which the server's `SUPPORTED_TENSORFLOW_OPS` links in. An op from any
other library (a custom kernel, an op that only a Python package
registers) loads in Python but fails in the server with `Op type not
registered`. `check_saved_model_ops` lists the op types of every graph of
a SavedModel, the functions of their libraries included, and names the
ones that are neither; `python -m keras_attention.serving check DIR...`
does the same from a shell and exits with status 1 on such an op.

The two op sets are read from the op registry of the installed packages,
in a fresh Python process (`registered_op_sets`): the ops registered once
TensorFlow is imported are the core ops; the ones that importing
tensorflow-text adds are tensorflow-text's.

XLA. Ops named `Xla*` are in TensorFlow's registry but run only through
XLA compilation (on a CPU, `XlaCompileOnDemandOp`), and
`tensorflow_model_server` disables XLA compilation unless it is started
with `--xla_cpu_compilation_enabled=true` (its `main` calls
`DisableXlaCompilation()`; a model using it fails on its first request).
The check counts them apart (`XLA`) and fails on them unless
`allow_xla=True` (`--allow-xla`). Keras's TensorFlow backend writes
`keras.ops.slice_update` as `XlaDynamicUpdateSlice`; the decoders write
their caches with `keras_attention.ops.slice_update`, core ops, so no
export holds an XLA op (the tests check every kind without `--allow-xla`).

Versions. The package builds with TensorFlow 2.21 and tensorflow-text
2.21, and the exports target TF Serving 2.20, which links TensorFlow 2.20
and tensorflow-text 2.20, so an op added in 2.21 would pass this check and
fail in that server. Both registries compared (2026-12-06): TensorFlow
2.21.0 registers 1910 core ops, 2.20.0 1909 (2.21 adds only `DecodeJxl`,
which no export uses); tensorflow-text 2.21.1 and 2.20.1 register the same
38. The exports use about 110 core op types (string, ragged, lookup-table,
control-flow, resource-variable, stateless-random and math ops) and seven
tensorflow-text ops: WordPiece exports `FastWordpieceTokenizeWithOffsets`,
`TFText>FastWordpieceDetokenize`, `NormalizeUTF8` and
`RegexSplitWithOffsets`; SentencePiece exports (the translator's default)
`SentencepieceOp`, `SentencepieceTokenizeOp` and
`SentencepieceDetokenizeOp`. `make check-serving-release` installs
TensorFlow 2.20.0, tensorflow-text 2.20.1 and tensorflow-serving-api 2.20.0
in an environment of their own, checks one export of every kind against
that registry, loads each there and checks that it answers as under 2.21
(`scripts/check_serving_release.py`); run it again after an upgrade.
"""

import collections
import dataclasses
import json
import os
import subprocess
import sys

from tensorflow.core.protobuf import saved_model_pb2

from keras_attention.serving.model_versions import saved_model_path

__all__ = [
    "OpCheck",
    "OpSets",
    "TENSORFLOW",
    "TENSORFLOW_TEXT",
    "XLA",
    "check_op_types",
    "check_saved_model_ops",
    "graph_op_types",
    "registered_op_sets",
    "saved_model_op_types",
]

# Where an op comes from.
TENSORFLOW = "tensorflow"
TENSORFLOW_TEXT = "tensorflow-text"
XLA = "xla"  # registered by TensorFlow, run only by XLA compilation
_XLA_PREFIXES = ("Xla", "_Xla")

_SAVED_MODEL_FILE = "saved_model.pb"

# Run with `python -c`: the op names registered by TensorFlow alone, then
# those that importing tensorflow-text adds (none when it is missing).
_REGISTRY_SCRIPT = """
import json
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session


def registered():
    buffer = pywrap_tf_session.TF_GetAllOpList()
    try:
        data = pywrap_tf_session.TF_GetBuffer(buffer)
    finally:
        pywrap_tf_session.TF_DeleteBuffer(buffer)
    return {op.name for op in op_def_pb2.OpList.FromString(bytes(data)).op}


core = registered()
try:
    import tensorflow_text
except ImportError:
    text, text_version = set(), None
else:
    text, text_version = registered() - core, tensorflow_text.__version__
print(json.dumps({
    "tensorflow_version": tf.__version__,
    "tensorflow_text_version": text_version,
    "core": sorted(core),
    "text": sorted(text),
}))
"""


@dataclasses.dataclass(frozen=True)
class OpSets:
    """The op types a model server with these packages can run.

    Attributes:
        tensorflow_version: str, the TensorFlow version they come from.
        tensorflow_text_version: str, or `None` without tensorflow-text.
        core: frozenset of TensorFlow's core op types.
        text: frozenset of tensorflow-text's op types.
    """

    tensorflow_version: str
    tensorflow_text_version: str
    core: frozenset
    text: frozenset

    def origin(self, op_type):
        """`TENSORFLOW`, `TENSORFLOW_TEXT`, `XLA`, or `None` (unknown)."""
        if op_type in self.core:
            return XLA if op_type.startswith(_XLA_PREFIXES) else TENSORFLOW
        if op_type in self.text:
            return TENSORFLOW_TEXT
        return None

    def describe(self):
        """`"TensorFlow 2.21.0 and tensorflow-text 2.21.1"`."""
        text = self.tensorflow_text_version
        return f"TensorFlow {self.tensorflow_version} and " + (
            f"tensorflow-text {text}" if text else "no tensorflow-text"
        )


@dataclasses.dataclass(frozen=True)
class OpCheck:
    """The op types of a SavedModel and where each comes from.

    Attributes:
        path: the SavedModel directory checked.
        op_types: dict of op type to the number of nodes that use it.
        origins: dict of op type to `TENSORFLOW`, `TENSORFLOW_TEXT`, `XLA`
            or `None` (none of them).
        op_sets: the `OpSets` checked against.
        allow_xla: whether `XLA` ops pass (a server started with
            `--xla_cpu_compilation_enabled=true`).
    """

    path: str
    op_types: dict
    origins: dict
    op_sets: OpSets
    allow_xla: bool = False

    def _with_origin(self, origin):
        return sorted(op for op, o in self.origins.items() if o == origin)

    @property
    def unknown(self):
        """The op types that are neither core nor tensorflow-text, sorted."""
        return self._with_origin(None)

    @property
    def xla(self):
        """The op types that only XLA compilation runs, sorted."""
        return self._with_origin(XLA)

    @property
    def failing(self):
        """The op types a model server would refuse, sorted."""
        return sorted(self.unknown + ([] if self.allow_xla else self.xla))

    @property
    def ok(self):
        """Whether a model server can run every op."""
        return not self.failing

    def report(self):
        """The check as text: a verdict, then one line per op type."""
        versions = self.op_sets.describe()
        head = [f"{self.path}: {len(self.op_types)} op types ({versions})"]
        if self.unknown:
            head.append(
                "error: neither TensorFlow core nor tensorflow-text ops, so "
                f"a model server cannot run them: {', '.join(self.unknown)}"
            )
        if self.xla and not self.allow_xla:
            head.append(
                f"error: XLA ops ({', '.join(self.xla)}): a model server "
                "runs them only when started with "
                "--xla_cpu_compilation_enabled=true (then pass --allow-xla)"
            )
        if self.ok:
            head.append("ok: a model server can run every op")
        lines = [
            f"  {op} ({self.origins[op] or 'UNKNOWN'}, "
            f"{self.op_types[op]} nodes)"
            for op in sorted(self.op_types)
        ]
        return "\n".join([*head, *lines])


def registered_op_sets(timeout=300):
    """The core and tensorflow-text op types of the installed packages.

    Read in a fresh Python process, so that what this process imported
    (tensorflow-text, other op libraries) does not blur the two sets.

    Args:
        timeout: seconds to wait for the child process. Defaults to `300`.

    Returns:
        An `OpSets`.

    Example:

    >>> op_sets = registered_op_sets()  # doctest: +SKIP
    >>> "MatMul" in op_sets.core, "NormalizeUTF8" in op_sets.text
    ... # doctest: +SKIP
    (True, True)
    """
    result = subprocess.run(
        [sys.executable, "-c", _REGISTRY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(
            "Reading the op registry failed:\n" + result.stderr[-4000:]
        )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return OpSets(
        found["tensorflow_version"],
        found["tensorflow_text_version"],
        frozenset(found["core"]),
        frozenset(found["text"]),
    )


def graph_op_types(graph_def):
    """`Counter` of op type -> nodes in a `GraphDef` and its functions.

    A node that calls a function of the library by its name is a call, not
    an op, and is not counted.

    Args:
        graph_def: a `tf.compat.v1.GraphDef` proto.

    Returns:
        A `collections.Counter`.
    """
    functions = {f.signature.name for f in graph_def.library.function}
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return collections.Counter(
        node.op for node in nodes if node.op not in functions
    )


def saved_model_op_types(path):
    """`Counter` of op type -> nodes over every graph of a SavedModel.

    Args:
        path: a SavedModel directory, or a model base directory (its
            highest version, see `saved_model_path`).

    Returns:
        A `collections.Counter`.
    """
    saved_model = saved_model_pb2.SavedModel()
    file_path = os.path.join(saved_model_path(path), _SAVED_MODEL_FILE)
    with open(file_path, "rb") as file:
        saved_model.ParseFromString(file.read())
    counts = collections.Counter()
    for meta_graph in saved_model.meta_graphs:
        counts.update(graph_op_types(meta_graph.graph_def))
    return counts


def check_op_types(op_types, op_sets, path="", allow_xla=False):
    """An `OpCheck` of `op_types`, a dict of op type to node count."""
    return OpCheck(
        path,
        dict(op_types),
        {op: op_sets.origin(op) for op in op_types},
        op_sets,
        allow_xla,
    )


def check_saved_model_ops(path, op_sets=None, allow_xla=False):
    """Which op types of a SavedModel a model server can run.

    Args:
        path: a SavedModel directory, or a model base directory (its
            highest version, the one TF Serving serves).
        op_sets: optional `OpSets` to check against. Defaults to `None`
            (`registered_op_sets()`, the installed packages').
        allow_xla: bool, whether ops that only XLA compilation runs pass
            (for a server started with `--xla_cpu_compilation_enabled`).
            Defaults to `False`.

    Returns:
        An `OpCheck`: `.ok` is whether the server can run every op,
        `.failing` the op types it would refuse, `.report()` the text the
        command prints.

    Example:

    >>> check = check_saved_model_ops("/tmp/classifier")  # doctest: +SKIP
    >>> check.ok, check.failing  # doctest: +SKIP
    (True, [])
    """
    version_dir = saved_model_path(path)
    if op_sets is None:
        op_sets = registered_op_sets()
    return check_op_types(
        saved_model_op_types(version_dir), op_sets, version_dir, allow_xla
    )
