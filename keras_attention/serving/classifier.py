"""SavedModel export of a text classifier: raw strings in, class names out.

`export_text_classifier` writes a SavedModel whose `serving_default`
signature tokenizes a `(batch,)` `tf.string` tensor in the graph (with a
fresh copy of the training tokenizer), runs the model and returns the
probabilities, the class ids, the class names and each item's status
(see `item_status`: an empty, over-long or invalid item gets `""`, zero
probabilities and class id `-1`, and never changes the others). It
loads with `tf.saved_model.load` in a process that imports only TensorFlow
and tensorflow-text (for the tokenizer's ops), never Keras or
`keras_attention`.
"""

import os
import warnings

import tensorflow as tf

from keras_attention._checks import check_positive_int
from keras_attention.serving._archive import check_tensorflow_backend
from keras_attention.serving._archive import check_tokenizer
from keras_attention.serving._archive import copy_tokenizer
from keras_attention.serving._archive import write_archive
from keras_attention.serving.constants import CLASSIFY_CLASSES
from keras_attention.serving.constants import CLASSIFY_SCORES
from keras_attention.serving.constants import EXAMPLE_TEXT_FEATURE
from keras_attention.serving.constants import SERVING_CLASS_IDS
from keras_attention.serving.constants import SERVING_OUTPUT
from keras_attention.serving.constants import SERVING_PROBABILITIES
from keras_attention.serving.item_status import answer_texts

__all__ = ["export_text_classifier"]

# The class id of an item that is not answered (its status is not `ok`).
UNANSWERED_CLASS_ID = -1


class _TextClassifierModule(tf.Module):
    """Holds the tokenizer, the model and the class names; `serve` runs."""

    def __init__(
        self, model, tokenizer, class_names, max_sequence_length, truncate
    ):
        super().__init__(name="text_classifier")
        self.model = model
        # A fresh copy: its WordPiece model is a constant built from the
        # vocabulary, so the SavedModel needs no tokenizer files.
        self.tokenizer = copy_tokenizer(tokenizer)
        self.class_names = list(class_names)
        self.max_sequence_length = max_sequence_length
        self.truncate = truncate

    def classify(self, ids):
        """Outputs of `(num, None)` ragged ids, all answerable."""
        token_ids = tf.cast(ids.to_tensor(), tf.int32)  # (num, len)
        # At least one (padding) position, so an empty batch runs.
        missing = tf.maximum(1 - tf.shape(token_ids)[1], 0)
        token_ids = tf.pad(token_ids, [[0, 0], [0, missing]])  # (num, len)
        probabilities = tf.cast(
            self.model(token_ids, training=False), tf.float32
        )  # (num, classes)
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        names = tf.constant(self.class_names, tf.string)  # (classes,)
        return {
            SERVING_OUTPUT: tf.gather(names, class_ids),  # (num,)
            SERVING_PROBABILITIES: probabilities,
            SERVING_CLASS_IDS: class_ids,  # (num,)
        }

    def tokenize(self, texts):
        """`(batch, None)` ragged ids of `(batch,)` strings."""
        ids = self.tokenizer.tokenize(texts)  # (batch, None), maybe padded
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=0)
        return ids

    def serve(self, texts):
        return answer_texts(
            texts,
            self.tokenize,
            self.classify,
            self.max_sequence_length,
            self.truncate,
            fill_values={SERVING_CLASS_IDS: UNANSWERED_CLASS_ID},
        )

    def classify_examples(self, examples):
        """The `classification` signature: serialized `tf.Example`s in."""
        features = tf.io.parse_example(
            examples,
            {EXAMPLE_TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string, "")},
        )
        outputs = self.serve(features[EXAMPLE_TEXT_FEATURE])
        scores = outputs[SERVING_PROBABILITIES]  # (batch, classes)
        names = tf.constant(self.class_names, tf.string)  # (classes,)
        classes = tf.tile(names[None], [tf.shape(scores)[0], 1])
        return {CLASSIFY_CLASSES: classes, CLASSIFY_SCORES: scores}


def _is_path(value):
    return isinstance(value, (str, bytes, os.PathLike))


def export_text_classifier(
    path,
    model,
    tokenizer,
    class_names,
    max_sequence_length=None,
    truncate=False,
    version=None,
    warmup_texts=None,
):
    """Exports a text classifier as a SavedModel: raw strings in.

    The `serving_default` signature takes `texts`, a `(batch,)` `tf.string`
    tensor; tokenizes it in the graph, runs `model` and returns a dict with
    `"probabilities"` `(batch, num_classes)` float32, `"class_ids"`
    `(batch,)` int32, `"outputs"` `(batch,)` `tf.string`, the name of the
    most probable class, and `"status"` `(batch,)` `tf.string`. A text of
    more than `max_sequence_length` ids is rejected (`"too_long"`), or
    truncated as in training with `truncate=True`. The tokenizer (a
    constant WordPiece model), the class names and the model's variables
    are all inside the SavedModel.

    A second signature, `classification`, serves TF Serving's Classify
    API: `inputs`, `(batch,)` serialized `tf.Example`s with the text in the
    bytes feature `"text"`, to `classes` `(batch, num_classes)` (every
    class name) and `scores` `(batch, num_classes)` (their probabilities,
    zero for an item that is not answered; its status is only in
    `serving_default`).

    The order `(model, tokenizer, path, ...)` of earlier versions still
    works, with a `DeprecationWarning`, for one release.

    Args:
        path: the model base directory; the SavedModel goes to
            `<path>/<version>/` (TF Serving's layout).
        model: a Keras model mapping `(batch, len)` int32 ids (`0` =
            padding) to `(batch, num_classes)` probabilities, e.g. from
            `build_transformer_classifier`.
        tokenizer: the tokenizer the model was trained with, e.g. a
            `WordPieceTokenizer`: a layer with `tokenize`, `get_config` and
            `from_config`.
        class_names: the name of each class id, `num_classes` strings.
        max_sequence_length: optional int, the most ids a text is
            answered with. Defaults to `None` (no limit).
        truncate: bool, whether longer texts are cut to
            `max_sequence_length` ids and answered (`"truncated"`) rather
            than rejected (`"too_long"`). Defaults to `False`.
        version: optional positive int, the version to write. Defaults
            to `None` (one more than the highest under `path`, or `1`).
        warmup_texts: optional list of a few real example inputs, written
            as TF Serving warmup requests (`assets.extra/`). Defaults to
            `None` (no warmup file).

    Returns:
        The version directory written, a str.

    Example:

    >>> export_text_classifier("/tmp/classifier", model, tokenizer,
    ...                        ["neg", "pos"])  # doctest: +SKIP
    '/tmp/classifier/1'
    >>> serve = load_saved_model("/tmp/classifier").signatures[
    ...     "serving_default"]  # doctest: +SKIP
    >>> serve(tf.constant(["a wonderful film"]))["outputs"]  # doctest: +SKIP
    <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'pos'], ...)>
    """
    check_tensorflow_backend()
    # A model or a tokenizer is never a path: the old order is unambiguous.
    if _is_path(tokenizer) and not _is_path(path):
        warnings.warn(
            "`export_text_classifier(model, tokenizer, path, ...)` is "
            "deprecated and accepted for one release only; call "
            "`export_text_classifier(path, model, tokenizer, ...)`.",
            DeprecationWarning,
            stacklevel=2,
        )
        path, model, tokenizer = tokenizer, path, model
    check_tokenizer(
        "tokenizer", tokenizer, ("tokenize", "get_config", "from_config")
    )
    class_names = [str(name) for name in class_names]
    num_classes = model.outputs[0].shape[-1] if model.outputs else None
    if num_classes is not None and len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must name the model's {num_classes} classes. "
            f"Received: {len(class_names)} names {class_names[:10]}"
        )
    max_sequence_length = check_positive_int(
        "max_sequence_length", max_sequence_length, allow_none=True
    )
    module = _TextClassifierModule(
        model, tokenizer, class_names, max_sequence_length, bool(truncate)
    )
    return write_archive(
        path,
        module,
        models=(model,),
        version=version,
        warmup_texts=warmup_texts,
        classify=module.classify_examples,
    )
