"""Private helpers shared by the export modules.

The `(batch,)` string input spec of every signature, a fresh copy of a
tokenizer (so an export never holds, or changes, the caller's), and the
writing of a `keras.export.ExportArchive` with one `serving_default`
endpoint as a version of a model base directory.
"""

import keras
import tensorflow as tf

from keras_attention.serving.constants import SERVING_INPUT
from keras_attention.serving.constants import SERVING_SIGNATURE
from keras_attention.serving.model_versions import write_version
from keras_attention.serving.warmup import write_warmup_requests


def check_tensorflow_backend():
    """Raise unless Keras runs on TensorFlow, the backend of SavedModels."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            "Exports write TensorFlow SavedModels and need the TensorFlow "
            "backend: run with KERAS_BACKEND=tensorflow (a `.keras` file "
            "saved on any backend loads there). Received: "
            f"keras.backend.backend()={backend!r}"
        )


def texts_spec():
    """The input spec of every serving signature: `(batch,)` strings."""
    return tf.TensorSpec([None], tf.string, name=SERVING_INPUT)


def copy_tokenizer(tokenizer):
    """A fresh tokenizer (new tables) with the same vocabulary."""
    return tokenizer.__class__.from_config(tokenizer.get_config())


def check_tokenizer(name, tokenizer, methods):
    """Raise unless `tokenizer` has every method named in `methods`."""
    for method in methods:
        if not callable(getattr(tokenizer, method, None)):
            raise ValueError(
                f"`{name}` must have a `{method}` method. "
                f"Received: {type(tokenizer).__name__}"
            )


def write_extras(directory, warmup_texts=None):
    """Writes what a SavedModel in `directory` has besides the graph.

    The TF Serving warmup file (`assets.extra/`) from `warmup_texts`, when
    given.
    """
    if warmup_texts is not None:
        write_warmup_requests(directory, warmup_texts)


def write_archive(path, module, models=(), version=None, warmup_texts=None):
    """Writes `module.serve` as the `serving_default` signature.

    Args:
        path: the model base directory; the SavedModel goes to
            `<path>/<version>/`.
        module: a `tf.Module` with a `serve(texts)` method; it and
            everything it tracks are saved.
        models: Keras models whose variables `module.serve` uses.
        version: optional positive int. Defaults to `None` (the next).
        warmup_texts: optional example inputs for the warmup file.
            Defaults to `None` (no warmup file).

    Returns:
        The version directory, a str.
    """
    archive = keras.export.ExportArchive()
    for model in models:
        archive.track(model)
    archive.track(module)
    archive.add_endpoint(
        SERVING_SIGNATURE, module.serve, input_signature=[texts_spec()]
    )

    def write(directory):
        archive.write_out(directory, verbose=False)
        write_extras(directory, warmup_texts)

    return write_version(path, write, version)
