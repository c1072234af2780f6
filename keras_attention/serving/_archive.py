"""Private helpers shared by the export modules.

The `(batch,)` string input spec of every signature, a fresh copy of a
tokenizer (so an export never holds, or changes, the caller's), and the
writing of a `keras.export.ExportArchive` with one `serving_default`
endpoint as a version of a model base directory.
"""

import os

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from keras_attention.serving.constants import CLASSIFY_INPUTS
from keras_attention.serving.constants import CLASSIFY_SIGNATURE
from keras_attention.serving.constants import SERVING_INPUT
from keras_attention.serving.constants import SERVING_SIGNATURE
from keras_attention.serving.model_versions import write_version
from keras_attention.serving.warmup import write_warmup_requests

# The method name TF Serving's Classify API requires of a signature.
CLASSIFY_METHOD = "tensorflow/serving/classify"


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


def set_method_names(directory, method_names):
    """Sets the `method_name` of signatures in `directory/saved_model.pb`.

    TF Serving's Classify API serves only a signature whose method name is
    `tensorflow/serving/classify`; TensorFlow writes every signature as
    `tensorflow/serving/predict`.
    """
    path = os.path.join(directory, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as file:
        saved_model.ParseFromString(file.read())
    for meta_graph in saved_model.meta_graphs:
        for name, method_name in method_names.items():
            meta_graph.signature_def[name].method_name = method_name
    with open(path, "wb") as file:
        file.write(saved_model.SerializeToString())


def write_extras(directory, warmup_texts=None, classify=False):
    """Writes what a SavedModel in `directory` has besides the graph.

    The TF Serving warmup file (`assets.extra/`) from `warmup_texts`, when
    given, with requests for the `classification` signature too when
    `classify`.
    """
    if warmup_texts is not None:
        write_warmup_requests(directory, warmup_texts, classify=classify)


def write_archive(
    path,
    module,
    models=(),
    version=None,
    warmup_texts=None,
    classify=None,
):
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
        classify: optional function of `(batch,)` serialized
            `tf.Example`s, written as the `classification` signature for
            TF Serving's Classify API. Defaults to `None`.

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
    if classify is not None:
        examples = tf.TensorSpec([None], tf.string, name=CLASSIFY_INPUTS)
        archive.add_endpoint(
            CLASSIFY_SIGNATURE, classify, input_signature=[examples]
        )

    def write(directory):
        archive.write_out(directory, verbose=False)
        if classify is not None:
            set_method_names(directory, {CLASSIFY_SIGNATURE: CLASSIFY_METHOD})
        write_extras(directory, warmup_texts, classify=classify is not None)

    return write_version(path, write, version)
