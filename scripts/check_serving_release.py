"""Do our exports run on the TensorFlow release TF Serving links?

The package builds with TensorFlow 2.21 and tensorflow-text 2.21; TF
Serving 2.20 links TensorFlow 2.20 and tensorflow-text 2.20. This script
checks, in two steps, that an export made with the first runs in the
second:

1. `export DIR` (the project's environment): one tiny export of every kind
   (seq2seq, WordPiece and SentencePiece translators, classifier, language
   model) under DIR, and DIR/expected.json with each export's answers to a
   few texts, computed by loading the SavedModel.
2. `verify DIR` (an environment with `tensorflow==2.20.*` and
   `tensorflow-text==2.20.*`): the op check of every export against that
   release's op registry (`keras_attention.serving.op_check`), then each
   SavedModel loaded and called on the same texts; its answers must equal
   step 1's. Exits with status 1 on any difference.

`make check-serving-release` runs both (it downloads the 2.20 packages into
`.venv-serving-release`, about 600 MB, so it is not part of `make test`).
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TEXTS = ["the cat sat", "", "a dog ran to the park", "zz"]


def _answers(version_dir):
    """`{output name: list}` of the `serving_default` answers to TEXTS."""
    import tensorflow as tf

    if "tensorflow_text" not in sys.modules:
        import tensorflow_text  # noqa: F401  (registers its ops)
    loaded = tf.saved_model.load(version_dir)
    outputs = loaded.signatures["serving_default"](texts=tf.constant(TEXTS))
    return {
        name: _decoded(tensor.numpy().tolist())
        for name, tensor in sorted(outputs.items())
    }


def _decoded(value):
    """`value` (nested lists) with its byte strings decoded as UTF-8."""
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def export(directory):
    from keras_attention.serving import export_translator
    from tests.serving.tiny_models import export_every_kind
    from tests.serving.tiny_sentencepiece import sentencepiece_translator

    paths = export_every_kind(directory)
    translator = sentencepiece_translator(directory, beam_width=2)
    paths["translator_sentencepiece"] = export_translator(
        os.path.join(directory, "translator_sentencepiece"), translator
    )
    expected = {
        kind: {"path": os.fspath(path), "answers": _answers(os.fspath(path))}
        for kind, path in sorted(paths.items())
    }
    with open(os.path.join(directory, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"exported {', '.join(sorted(expected))} under {directory}")


def _close(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= 1e-5 * max(1.0, abs(a), abs(b))
    return a == b


def verify(directory):
    import tensorflow as tf
    import tensorflow_text as text

    from keras_attention.serving.op_check import check_saved_model_ops
    from keras_attention.serving.op_check import registered_op_sets

    with open(os.path.join(directory, "expected.json")) as f:
        expected = json.load(f)
    op_sets = registered_op_sets()
    print(
        f"TensorFlow {tf.__version__}, tensorflow-text {text.__version__}: "
        f"{len(op_sets.core)} core ops, "
        f"{len(op_sets.text)} tensorflow-text ops"
    )
    failures = []
    for kind, record in expected.items():
        check = check_saved_model_ops(record["path"], op_sets)
        answers = _answers(record["path"])
        same = _close(answers, record["answers"])
        print(
            f"{kind}: {len(check.op_types)} op types, "
            f"{'ops ok' if check.ok else 'ops FAIL ' + str(check.failing)}, "
            f"answers {'equal' if same else 'DIFFER'}"
        )
        if not check.ok:
            failures.append(f"{kind}: ops {check.failing}")
        if not same:
            failures.append(f"{kind}: answers {answers} != {record['answers']}")
    if failures:
        sys.exit("\n".join(failures))
    print(f"all {len(expected)} exports run on this release with equal answers")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["export", "verify"])
    parser.add_argument("directory")
    args = parser.parse_args(argv)
    os.makedirs(args.directory, exist_ok=True)
    (export if args.step == "export" else verify)(args.directory)


if __name__ == "__main__":
    main()
