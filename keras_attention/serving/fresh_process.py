"""Checks that a SavedModel stands on its own, in a new Python process.

`run_saved_model_in_fresh_process` answers strings with an exported
SavedModel in a child process that imports TensorFlow (and tensorflow-text
when installed) but never `keras_attention`, and compares the answers with
the in-process ones. `compare_served_classes` is that comparison for a
classifier, whose served class may differ from the in-process one on a
near tie.
"""

import json
import os
import subprocess
import sys

import numpy as np

from keras_attention.serving.constants import SERVING_OUTPUT
from keras_attention.serving.constants import SERVING_SIGNATURE
from keras_attention.serving.model_versions import saved_model_path

__all__ = ["compare_served_classes", "run_saved_model_in_fresh_process"]

# Two classes whose in-process probabilities are closer than this are a
# near tie: float rounding in the SavedModel may pick either.
TIE_MARGIN = 1e-3

# Run with `python -c`: plain TensorFlow only (plus tensorflow-text when
# installed, for models that use its ops); it fails if anything imported
# `keras_attention`. Arguments: the path, the signature, the output key.
_FRESH_PROCESS_SCRIPT = """
import json, sys
import tensorflow as tf
try:
    import tensorflow_text  # noqa: F401, registers its ops if used.
except ImportError:
    pass
model = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.stdin.read())
outputs = model.signatures[sys.argv[2]](tf.constant(texts, tf.string))
strings = [s.decode("utf-8") for s in outputs[sys.argv[3]].numpy()]
if "keras_attention" in sys.modules:
    raise SystemExit("keras_attention was imported")
print(json.dumps(strings))
"""

# The most characters of the child's stderr quoted in an error.
_STDERR_TAIL = 4000


def run_saved_model_in_fresh_process(path, texts, expected=None, timeout=300):
    """Answers `texts` with an exported SavedModel in a new Python process.

    The child process imports TensorFlow (and tensorflow-text if present)
    but never `keras_attention`; it fails if anything imports it. This
    checks that the SavedModel stands on its own.

    Args:
        path: a model base directory or a version directory written by
            one of the `export_*` functions (a base directory answers with
            its highest version).
        texts: a list of input strings.
        expected: optional list of the answers the in-process model gave
            for `texts`; when given, any disagreement raises. Defaults to
            `None`.
        timeout: seconds to wait for the child. Defaults to `300`.

    Returns:
        The list of output strings (the signature's `"outputs"`).

    Raises:
        RuntimeError: if the child process fails (its stderr is included),
            or if its answers differ from `expected`.

    Example:

    >>> run_saved_model_in_fresh_process(
    ...     "/tmp/dates", ["aug 19, 2003"])  # doctest: +SKIP
    ['2003-08-19']
    """
    path = saved_model_path(path)
    environment = dict(os.environ)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _FRESH_PROCESS_SCRIPT,
            os.fspath(path),
            SERVING_SIGNATURE,
            SERVING_OUTPUT,
        ],
        input=json.dumps(list(texts)),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"Loading the SavedModel {path!r} in a fresh process failed "
            f"(exit code {result.returncode}):\n"
            f"{result.stderr[-_STDERR_TAIL:]}"
        )
    served = json.loads(result.stdout.strip().splitlines()[-1])
    if expected is not None:
        differ = [
            (text, want, got)
            for text, want, got in zip(texts, expected, served)
            if want != got
        ]
        if differ or len(served) != len(expected):
            raise RuntimeError(
                f"The SavedModel {path!r} reloaded in a fresh process "
                f"disagrees with the in-process model on {len(differ)} of "
                f"{len(expected)} inputs, e.g. (input, expected, served): "
                f"{differ[:3]}"
            )
    return served


def compare_served_classes(
    texts, served, probabilities, class_names, tie_margin=TIE_MARGIN
):
    """How many served classes agree with the in-process probabilities.

    The in-process class of a text is the name of its most probable class.
    A served class may differ from it only where the two most probable
    classes are within `tie_margin` of each other (the SavedModel's float
    rounding may then pick the other one); any other difference raises.

    Args:
        texts: the inputs, a list of str (for the error message).
        served: the class names the SavedModel answered, one per text
            (e.g. from `run_saved_model_in_fresh_process`).
        probabilities: the in-process probabilities, `(len(texts),
            num_classes)`.
        class_names: the name of each class id.
        tie_margin: float, the largest gap between the two most probable
            classes that counts as a near tie. Defaults to `1e-3`.

    Returns:
        The number of texts whose served class is the in-process one.

    Raises:
        RuntimeError: if a served class differs where there is no near
            tie, or if there are not as many answers as texts.

    Example:

    >>> compare_served_classes(["good", "bad"], ["pos", "neg"],
    ...                        [[0.1, 0.9], [0.8, 0.2]], ["neg", "pos"])
    2
    """
    probabilities = np.asarray(probabilities)  # (texts, classes)
    if not len(texts) == len(served) == len(probabilities):
        raise RuntimeError(
            f"{len(served)} served answers and {len(probabilities)} "
            f"in-process ones for {len(texts)} texts."
        )
    expected = [class_names[i] for i in probabilities.argmax(-1)]
    top_two = np.sort(probabilities, axis=-1)[:, -2:]  # (texts, 2)
    near_tie = (top_two[:, 1] - top_two[:, 0]) < tie_margin  # (texts,)
    disagree = [
        i
        for i, (got, want) in enumerate(zip(served, expected))
        if got != want and not near_tie[i]
    ]
    if disagree:
        first = disagree[0]
        raise RuntimeError(
            "The reloaded SavedModel disagrees with the in-process model "
            f"on {len(disagree)} of {len(texts)} texts, e.g. "
            f"{texts[first]!r}: {served[first]!r} != {expected[first]!r}"
        )
    return sum(got == want for got, want in zip(served, expected))
