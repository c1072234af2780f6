"""SavedModel export of a `Translator`, with its tokenizers' files as assets.

`export_translator` saves a small `tf.Module` that holds the variables
the caller's `Translator` (never modified) reads, its tokenizers and their
two files (SentencePiece models, or WordPiece vocabularies) as
`tf.saved_model.Asset`s; the signature is the
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
from keras_attention.text.sentencepiece_tokenizer import SentencePieceTokenizer
from keras_attention.text.wordpiece_vocabulary import save_vocabulary

__all__ = ["export_translator"]

# The assets of SentencePiece tokenizers (WordPiece: the vocabularies').
SOURCE_MODEL_ASSET = "source_sentencepiece.model"
TARGET_MODEL_ASSET = "target_sentencepiece.model"


def _write_tokenizer_file(tokenizer, directory, model_name, vocabulary_name):
    """Writes a tokenizer's file in `directory`; returns its path."""
    if isinstance(tokenizer, SentencePieceTokenizer):
        path = os.path.join(directory, model_name)
        tokenizer.save_model_file(path)
    else:
        path = os.path.join(directory, vocabulary_name)
        save_vocabulary(tokenizer.get_vocabulary(), path)
    return path


class _TranslatorArchive(tf.Module):
    """What the SavedModel tracks: variables, tokenizers, their files."""

    def __init__(self, serving, translator, source_file, target_file):
        super().__init__(name="translator_archive")
        # The `tf.Variable`s the signature reads, in the checkpoint under
        # their own handles (see the module docstring): never the Keras
        # model, whose tracked `keras.Variable`s would be saved as copies.
        self.serving_variables = list(serving.variables)
        # The tokenizers: a SentencePiece model's resource must be tracked
        # to be created again on load (WordPiece models are constants).
        self.source_tokenizer = translator.source_tokenizer
        self.target_tokenizer = translator.target_tokenizer
        self.source_file = tf.saved_model.Asset(source_file)
        self.target_file = tf.saved_model.Asset(target_file)


def export_translator(path, translator, version=None, warmup_texts=None):
    """Writes a string-to-string SavedModel of a `Translator`.

    The SavedModel's `serving_default` signature takes
    `texts: (batch,) tf.string` and returns the `Translator`'s outputs
    (`"outputs"`, `(batch,)` `tf.string`, and the others). It holds the
    model's variables and the tokenizers (their files also as the assets
    `source_sentencepiece.model` and `target_sentencepiece.model`, or
    `source_vocabulary.txt` and `target_vocabulary.txt`). Load it
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
    with tempfile.TemporaryDirectory() as files_dir:
        files = [
            _write_tokenizer_file(tokenizer, files_dir, *names)
            for tokenizer, names in (
                (
                    translator.source_tokenizer,
                    (SOURCE_MODEL_ASSET, SOURCE_VOCABULARY_ASSET),
                ),
                (
                    translator.target_tokenizer,
                    (TARGET_MODEL_ASSET, TARGET_VOCABULARY_ASSET),
                ),
            )
        ]
        serving = translator.serving_function()
        archive = _TranslatorArchive(serving, translator, *files)

        def write(directory):
            # `tf.saved_model.save` copies the assets into `assets/`.
            tf.saved_model.save(
                archive, directory, signatures={SERVING_SIGNATURE: serving}
            )
            write_extras(directory, warmup_texts)

        return write_version(path, write, version)
