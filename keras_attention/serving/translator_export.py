"""SavedModel export of a `Translator`, with its vocabularies as assets.

`export_translator` saves a small `tf.Module` that holds the variables
the caller's `Translator` (never modified) reads, its tokenizers and the two
vocabulary files as `tf.saved_model.Asset`s; the signature is the
`Translator`'s own serving function, so served answers are in-process
answers.

The module holds the `tf.Variable`s the signature captures, not the Keras
model. Keras 3 saves a tracked `keras.Variable` as a new `tf.Variable`
(`Variable_N`) made from the one it wraps: the checkpoint would then restore
only those copies, which the signature never reads. `tf.saved_model.load`
binds the signature to the restored objects and hides this; a loader that
runs the graph's restore op (TF Serving, `saved_model_cli run`) would find
the captured variables uninitialized (`Could not find variable ...`).
"""

import os
import tempfile

import tensorflow as tf

from keras_attention.serving._archive import check_tensorflow_backend
from keras_attention.serving._archive import write_extras
from keras_attention.serving.constants import SERVING_SIGNATURE
from keras_attention.serving.constants import SOURCE_VOCABULARY_ASSET
from keras_attention.serving.constants import TARGET_VOCABULARY_ASSET
from keras_attention.serving.model_versions import write_version
from keras_attention.serving.translator import Translator
from keras_attention.text.wordpiece_vocabulary import save_vocabulary

__all__ = ["export_translator"]


class _TranslatorArchive(tf.Module):
    """What the SavedModel tracks: variables, tokenizers, vocabularies."""

    def __init__(
        self, serving, translator, source_vocabulary, target_vocabulary
    ):
        super().__init__(name="translator_archive")
        # The `tf.Variable`s the signature reads, in the checkpoint under
        # their own handles (see the module docstring): never the Keras
        # model, whose tracked `keras.Variable`s would be saved as copies.
        self.serving_variables = list(serving.variables)
        # Constant WordPiece models: no resource, tracked for the record.
        self.source_tokenizer = translator.source_tokenizer
        self.target_tokenizer = translator.target_tokenizer
        self.source_vocabulary = tf.saved_model.Asset(source_vocabulary)
        self.target_vocabulary = tf.saved_model.Asset(target_vocabulary)


def export_translator(path, translator, version=None, warmup_texts=None):
    """Writes a string-to-string SavedModel of a `Translator`.

    The SavedModel's `serving_default` signature takes
    `texts: (batch,) tf.string` and returns the `Translator`'s outputs
    (`"outputs"`, `(batch,)` `tf.string`, and the others). It holds the
    model's variables and the tokenizers (their vocabularies also as the
    assets `source_vocabulary.txt` and `target_vocabulary.txt`). Load it
    with `import tensorflow_text` then `tf.saved_model.load(path)`; no
    `keras_attention` needed.

    Args:
        path: the model base directory; the SavedModel goes to
            `<path>/<version>/` (TF Serving's layout).
        translator: a `Translator`.
        version: optional positive int, the version to write. Defaults
            to `None` (one more than the highest under `path`, or `1`).
        warmup_texts: optional list of a few real example inputs, written
            as TF Serving warmup requests (`assets.extra/`). Defaults to
            `None` (no warmup file).

    Returns:
        The version directory written, a str.

    Example:

    >>> translator = Translator(model, source_tokenizer,
    ...                         target_tokenizer)  # doctest: +SKIP
    >>> export_translator("/tmp/translator", translator)  # doctest: +SKIP
    '/tmp/translator/1'
    >>> import tensorflow_text  # doctest: +SKIP
    >>> serving = tf.saved_model.load("/tmp/translator/1").signatures[
    ...     "serving_default"]  # doctest: +SKIP
    >>> serving(tf.constant(["obrigado ."]))["outputs"]  # doctest: +SKIP
    """
    check_tensorflow_backend()
    if not isinstance(translator, Translator):
        raise ValueError(
            "`translator` must be a `Translator`. "
            f"Received: {type(translator).__name__}"
        )
    with tempfile.TemporaryDirectory() as vocabulary_dir:
        vocabularies = []
        for name, tokenizer in (
            (SOURCE_VOCABULARY_ASSET, translator.source_tokenizer),
            (TARGET_VOCABULARY_ASSET, translator.target_tokenizer),
        ):
            vocabulary_path = os.path.join(vocabulary_dir, name)
            save_vocabulary(tokenizer.get_vocabulary(), vocabulary_path)
            vocabularies.append(vocabulary_path)
        serving = translator.serving_function()
        archive = _TranslatorArchive(serving, translator, *vocabularies)

        def write(directory):
            # `tf.saved_model.save` copies the assets into `assets/`.
            tf.saved_model.save(
                archive, directory, signatures={SERVING_SIGNATURE: serving}
            )
            write_extras(directory, warmup_texts)

        return write_version(path, write, version)
