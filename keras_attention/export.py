"""SavedModel export of text-to-text models: strings in, strings out.

`export_text_to_text` is the generic part: it writes a SavedModel whose
`serving_default` signature takes a `(batch,)` `tf.string` tensor, tokenizes
it in the graph, runs a decoding function on the ids and detokenizes the
result. Each kind of model supplies only its decoding function:
`export_seq2seq` passes the greedy decoder of `build_attention_seq2seq`; a
Transformer translator can pass its own decoder the same way.

Everything the SavedModel needs is tracked in it: the model's variables and
the tokenizers' vocabularies (fresh `tf.lookup` tables and constants made
from the vocabularies, not the training-time objects). It loads with plain
`tf.saved_model.load`, in a process that never imports `keras_attention`.

Inputs longer than `max_source_length` characters, and empty inputs, are
rejected: the call fails with an `InvalidArgumentError` that says so. They
are never silently truncated, because a truncated date is a different date.
"""

import json
import os
import subprocess
import sys
import tempfile

import keras
import tensorflow as tf

from keras_attention.text.character_tokenizer import CharacterTokenizer
from keras_attention.text.wordpiece_vocabulary import save_vocabulary

__all__ = [
    "SERVING_CLASS_IDS",
    "SERVING_OUTPUT",
    "SERVING_PROBABILITIES",
    "export_seq2seq",
    "export_text_classifier",
    "export_text_to_text",
    "export_translator",
    "run_saved_model_in_fresh_process",
]

SERVING_OUTPUT = "outputs"
SERVING_ATTENTION = "attention_weights"
SERVING_SIGNATURE = "serving_default"
SERVING_PROBABILITIES = "probabilities"
SERVING_CLASS_IDS = "class_ids"
SOURCE_VOCABULARY_ASSET = "source_vocabulary.txt"
TARGET_VOCABULARY_ASSET = "target_vocabulary.txt"

# Run by `run_saved_model_in_fresh_process` with `python -c`: plain
# TensorFlow only (plus tensorflow-text when installed, for models that use
# its ops); it fails if anything imported `keras_attention`.
_FRESH_PROCESS_SCRIPT = """
import json, sys
import tensorflow as tf
try:
    import tensorflow_text  # noqa: F401, registers its ops if used.
except ImportError:
    pass
model = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.stdin.read())
outputs = model.signatures["serving_default"](tf.constant(texts, tf.string))
strings = [s.decode("utf-8") for s in outputs[sys.argv[2]].numpy()]
if "keras_attention" in sys.modules:
    raise SystemExit("keras_attention was imported")
print(json.dumps(strings))
"""


def _copy_tokenizer(tokenizer):
    """A fresh tokenizer (new tables) with the same vocabulary."""
    return tokenizer.__class__.from_config(tokenizer.get_config())


class _TextToTextModule(tf.Module):
    """Holds the tokenizers and the decoder; `serve` is the signature."""

    def __init__(
        self, source_tokenizer, target_tokenizer, decoder, max_source_length
    ):
        super().__init__(name="text_to_text")
        self.source_tokenizer = _copy_tokenizer(source_tokenizer)
        self.target_tokenizer = _copy_tokenizer(target_tokenizer)
        self.decoder = decoder
        self.max_source_length = max_source_length

    def serve(self, texts):
        ids = self.source_tokenizer.tokenize(texts)  # (batch, None) ragged
        lengths = ids.row_lengths()  # (batch,)
        checks = [
            tf.debugging.assert_less_equal(
                lengths,
                tf.constant(self.max_source_length, lengths.dtype),
                message=(
                    f"Inputs longer than {self.max_source_length} "
                    "characters are rejected (not truncated)"
                ),
            ),
            tf.debugging.assert_positive(
                lengths, message="Empty inputs are rejected"
            ),
        ]
        with tf.control_dependencies(checks):
            source_ids = ids.to_tensor()  # (batch, src_len)
        # At least one (padding) step: the encoder RNN cannot run zero steps
        # (an empty batch has none).
        source_ids = tf.pad(
            source_ids,
            [[0, 0], [0, tf.maximum(1 - tf.shape(source_ids)[1], 0)]],
        )
        tokens, attention_weights = self.decoder(source_ids)
        return {
            SERVING_OUTPUT: self.target_tokenizer.detokenize(tokens),
            SERVING_ATTENTION: attention_weights,
        }


def export_text_to_text(
    path,
    source_tokenizer,
    target_tokenizer,
    decoder,
    max_source_length,
    models=(),
):
    """Exports a string-in, string-out SavedModel.

    Args:
        path: the SavedModel directory to write.
        source_tokenizer: a `CharacterTokenizer` (or any `tf.Module` with
            `tokenize`, `get_config` and `from_config`) for the inputs.
        target_tokenizer: the same for the outputs, with `detokenize`.
        decoder: a callable (usually a `tf.Module`) mapping `(batch,
            src_len)` int32 ids, `0`-padded, to `(tokens (batch, steps),
            attention_weights (batch, steps, src_len))`.
        max_source_length: int, the longest accepted input, in characters.
        models: Keras models whose variables `decoder` uses; they are
            tracked in the SavedModel.

    Returns:
        `path`. The SavedModel's `serving_default` signature takes
        `texts: (batch,) tf.string` and returns `{"outputs": (batch,)
        tf.string, "attention_weights": (batch, steps, src_len) float32}`.
    """
    if not isinstance(max_source_length, int) or max_source_length <= 0:
        raise ValueError(
            "`max_source_length` must be a positive integer. "
            f"Received: max_source_length={max_source_length!r}"
        )
    module = _TextToTextModule(
        source_tokenizer, target_tokenizer, decoder, max_source_length
    )
    archive = keras.export.ExportArchive()
    for model in models:
        archive.track(model)
    archive.track(module)
    archive.add_endpoint(
        "serving_default",
        module.serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="texts")],
    )
    archive.write_out(os.fspath(path), verbose=False)
    return path


def export_seq2seq(
    path,
    model,
    source_tokenizer,
    target_tokenizer,
    max_source_length,
    max_output_length,
):
    """Exports a `build_attention_seq2seq` model with greedy decoding.

    Args:
        path: the SavedModel directory to write.
        model: a model built by `build_attention_seq2seq`.
        source_tokenizer: the source `CharacterTokenizer`.
        target_tokenizer: the target `CharacterTokenizer`.
        max_source_length: int, the longest accepted input, in characters;
            longer inputs are rejected (see the module docstring).
        max_output_length: int, the most output characters.

    Returns:
        `path`; see `export_text_to_text` for the signature.

    Example:

    >>> export_seq2seq("/tmp/dates", model, source_tokenizer,
    ...                target_tokenizer, 64, 10)  # doctest: +SKIP
    >>> serving = tf.saved_model.load("/tmp/dates").signatures[
    ...     "serving_default"]  # doctest: +SKIP
    >>> serving(tf.constant(["aug 19, 2003"]))["outputs"]  # doctest: +SKIP
    <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'2003-08-19'])>
    """
    if not isinstance(source_tokenizer, CharacterTokenizer):
        raise ValueError(
            "`source_tokenizer` must be a `CharacterTokenizer`. "
            f"Received: {type(source_tokenizer).__name__}"
        )
    # Imported here: the models modules import this one's serving keys.
    from keras_attention.models.seq2seq_decoding import Seq2SeqGreedyDecoder

    decoder = Seq2SeqGreedyDecoder(
        model,
        start_id=target_tokenizer.start_id,
        end_id=target_tokenizer.end_id,
        max_length=int(max_output_length) + 1,
    )
    return export_text_to_text(
        path,
        source_tokenizer,
        target_tokenizer,
        decoder,
        max_source_length,
        models=(model,),
    )


def run_saved_model_in_fresh_process(path, texts, expected=None, timeout=300):
    """Answers `texts` with an exported SavedModel in a new Python process.

    The child process imports TensorFlow (and tensorflow-text if present)
    but never `keras_attention`; it fails if anything imports it. This
    checks that the SavedModel stands on its own.

    Args:
        path: a SavedModel written by `export_text_to_text`.
        texts: a list of input strings.
        expected: optional list of the answers the in-process model gave
            for `texts`; when given, any disagreement raises. Defaults to
            `None`.
        timeout: seconds to wait for the child. Defaults to `300`.

    Returns:
        The list of output strings.

    Raises:
        RuntimeError: if the child process fails (its stderr is included),
            or if its answers differ from `expected`.
    """
    environment = dict(os.environ)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _FRESH_PROCESS_SCRIPT,
            os.fspath(path),
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
            f"(exit code {result.returncode}):\n{result.stderr[-4000:]}"
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


class _TextClassifierModule(tf.Module):
    """Holds the tokenizer, the model and the class names; `serve` runs."""

    def __init__(self, model, tokenizer, class_names, max_sequence_length):
        super().__init__(name="text_classifier")
        # A fresh copy: its WordPiece model is a constant built from the
        # vocabulary, so the SavedModel needs no tokenizer files.
        self.tokenizer = _copy_tokenizer(tokenizer)
        self.model = model
        self.class_names = list(class_names)
        self.max_sequence_length = max_sequence_length

    def serve(self, texts):
        ids = self.tokenizer.tokenize(texts)  # (batch, None), maybe padded
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=0)
        if self.max_sequence_length is not None:
            ids = ids[:, : self.max_sequence_length]  # (batch, None)
        token_ids = tf.cast(ids.to_tensor(), tf.int32)  # (batch, len)
        # At least one (padding) position, so a batch of empty texts runs.
        missing = tf.maximum(1 - tf.shape(token_ids)[1], 0)
        token_ids = tf.pad(token_ids, [[0, 0], [0, missing]])  # (batch, len)
        probabilities = tf.cast(
            self.model(token_ids, training=False), tf.float32
        )  # (batch, classes)
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        names = tf.constant(self.class_names, tf.string)  # (classes,)
        return {
            SERVING_OUTPUT: tf.gather(names, class_ids),  # (batch,)
            SERVING_PROBABILITIES: probabilities,
            SERVING_CLASS_IDS: class_ids,  # (batch,)
        }


def export_text_classifier(
    model, tokenizer, path, class_names, max_sequence_length=None
):
    """Exports a text classifier as a SavedModel: raw strings in.

    The `serving_default` signature takes `texts`, a `(batch,)` `tf.string`
    tensor; tokenizes it in the graph (truncating to `max_sequence_length`
    ids, as in training), runs `model` and returns a dict with
    `"probabilities"` `(batch, num_classes)` float32, `"class_ids"`
    `(batch,)` int32 and `"outputs"` `(batch,)` `tf.string`, the name of the
    most probable class. The tokenizer (a constant WordPiece model), the
    class names and the model's variables are all inside the SavedModel: it
    loads with `tf.saved_model.load` in a process that imports only
    TensorFlow and tensorflow-text (for the tokenizer's ops), never Keras
    or `keras_attention`.

    Args:
        model: a Keras model mapping `(batch, len)` int32 ids (`0` =
            padding) to `(batch, num_classes)` probabilities, e.g. from
            `build_transformer_classifier`.
        tokenizer: the tokenizer the model was trained with, e.g. a
            `WordPieceTokenizer`: a layer with `tokenize`, `get_config` and
            `from_config`.
        path: the SavedModel directory to write.
        class_names: the name of each class id, `num_classes` strings.
        max_sequence_length: optional int, the most ids kept per text.
            Defaults to `None` (keep all).

    Returns:
        `path`.

    Example:

    >>> export_text_classifier(model, tokenizer, "/tmp/classifier",
    ...                        ["neg", "pos"])  # doctest: +SKIP
    >>> serve = tf.saved_model.load("/tmp/classifier").signatures[
    ...     "serving_default"]  # doctest: +SKIP
    >>> serve(tf.constant(["a wonderful film"]))["outputs"]  # doctest: +SKIP
    <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'pos'], ...)>
    """
    for method in ("tokenize", "get_config", "from_config"):
        if not hasattr(tokenizer, method):
            raise ValueError(
                f"`tokenizer` must have a `{method}` method. "
                f"Received: {type(tokenizer).__name__}"
            )
    class_names = [str(name) for name in class_names]
    num_classes = model.outputs[0].shape[-1] if model.outputs else None
    if num_classes is not None and len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must name the model's {num_classes} classes. "
            f"Received: {len(class_names)} names {class_names[:10]}"
        )
    if max_sequence_length is not None and (
        not isinstance(max_sequence_length, int) or max_sequence_length <= 0
    ):
        raise ValueError(
            "`max_sequence_length` must be a positive int or None. "
            f"Received: max_sequence_length={max_sequence_length!r}"
        )
    module = _TextClassifierModule(
        model, tokenizer, class_names, max_sequence_length
    )
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(module)
    archive.add_endpoint(
        "serving_default",
        module.serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="texts")],
    )
    archive.write_out(os.fspath(path), verbose=False)
    return path


def export_translator(path, translator):
    """Writes a string-to-string SavedModel of a `Translator`.

    The SavedModel's `serving_default` signature takes
    `texts: (batch,) tf.string` and returns the `Translator`'s outputs
    (`"outputs"`, `(batch,)` `tf.string`, and the others). It holds the
    model's variables and the tokenizers (their vocabularies also as the
    assets `source_vocabulary.txt` and `target_vocabulary.txt`). Load it
    with `import tensorflow_text` then `tf.saved_model.load(path)`; no
    `keras_attention` needed.

    Args:
        path: the SavedModel directory to write.
        translator: a `Translator`.

    Returns:
        `path`.

    Example:

    >>> translator = Translator(model, source_tokenizer,
    ...                         target_tokenizer)  # doctest: +SKIP
    >>> export_translator("/tmp/translator", translator)  # doctest: +SKIP
    >>> import tensorflow_text  # doctest: +SKIP
    >>> serving = tf.saved_model.load("/tmp/translator").signatures[
    ...     "serving_default"]  # doctest: +SKIP
    >>> serving(tf.constant(["obrigado ."]))["outputs"]  # doctest: +SKIP
    """
    # Imported here: the models modules import this one's serving keys.
    from keras_attention.models.transformer_translator import Translator

    if not isinstance(translator, Translator):
        raise ValueError(
            "`translator` must be a `Translator`. "
            f"Received: {type(translator).__name__}"
        )
    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as vocabulary_dir:
        for name, tokenizer in (
            (SOURCE_VOCABULARY_ASSET, translator.source_tokenizer),
            (TARGET_VOCABULARY_ASSET, translator.target_tokenizer),
        ):
            vocabulary_path = os.path.join(vocabulary_dir, name)
            save_vocabulary(tokenizer.get_vocabulary(), vocabulary_path)
            # Tracked by the module, so `tf.saved_model.save` copies it.
            setattr(
                translator,
                os.path.splitext(name)[0],
                tf.saved_model.Asset(vocabulary_path),
            )
        # The module tracks everything the signature uses: the model's
        # variables (through `translator.model`), the tokenizers (constant
        # WordPiece models) and the vocabulary assets.
        tf.saved_model.save(
            translator,
            path,
            signatures={SERVING_SIGNATURE: translator.serving_function()},
        )
    return path
