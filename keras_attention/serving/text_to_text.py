"""SavedModel export of text-to-text models: strings in, strings out.

`export_text_to_text` is the generic part: it writes a SavedModel whose
`serving_default` signature takes a `(batch,)` `tf.string` tensor, tokenizes
it in the graph, runs a decoding function on the ids and detokenizes the
result. Each kind of model supplies only its decoding function:
`export_seq2seq` passes the greedy decoder of `build_attention_seq2seq`.

Everything the SavedModel needs is tracked in it: the model's variables and
the tokenizers' vocabularies (fresh `tf.lookup` tables and constants made
from the vocabularies, not the caller's objects, which are left unchanged).
It is written as `<path>/<version>/` (see `model_versions`) and loads with
plain `tf.saved_model.load`, in a process that never imports
`keras_attention`.

Each item of a batch stands alone (see `item_status`): the signature also
returns its `"status"`. An empty or blank input is `"empty"`; one longer
than `max_source_length` characters is `"too_long"` and not answered (a
truncated date is a different date), unless the export was asked to
truncate (`truncate=True`, status `"truncated"`). Such items get `""` and
zero attention; the other items of the batch are answered as if alone.
"""

import tensorflow as tf

from keras_attention._checks import check_positive_int
from keras_attention.models.seq2seq_decoding import Seq2SeqGreedyDecoder
from keras_attention.serving._archive import check_tensorflow_backend
from keras_attention.serving._archive import check_tokenizer
from keras_attention.serving._archive import copy_tokenizer
from keras_attention.serving._archive import write_archive
from keras_attention.serving.constants import SERVING_ATTENTION
from keras_attention.serving.constants import SERVING_OUTPUT
from keras_attention.serving.item_status import answer_texts
from keras_attention.text.character_tokenizer import CharacterTokenizer

__all__ = ["export_seq2seq", "export_text_to_text"]


class _TextToTextModule(tf.Module):
    """Holds the tokenizers and the decoder; `serve` is the signature."""

    def __init__(
        self,
        decoder,
        source_tokenizer,
        target_tokenizer,
        max_source_length,
        truncate,
    ):
        super().__init__(name="text_to_text")
        self.decoder = decoder
        self.source_tokenizer = copy_tokenizer(source_tokenizer)
        self.target_tokenizer = copy_tokenizer(target_tokenizer)
        self.max_source_length = max_source_length
        self.truncate = truncate

    def decode(self, ids):
        """Outputs of `(num, None)` ragged source ids, all answerable."""
        source_ids = ids.to_tensor()  # (num, src_len)
        # At least one (padding) step: the encoder RNN cannot run zero steps
        # (a batch without an answerable item has none).
        source_ids = tf.pad(
            source_ids,
            [[0, 0], [0, tf.maximum(1 - tf.shape(source_ids)[1], 0)]],
        )
        tokens, attention_weights = self.decoder(source_ids)
        return {
            SERVING_OUTPUT: self.target_tokenizer.detokenize(tokens),
            SERVING_ATTENTION: attention_weights,
        }

    def serve(self, texts):
        return answer_texts(
            texts,
            self.source_tokenizer.tokenize,
            self.decode,
            self.max_source_length,
            self.truncate,
        )


def export_text_to_text(
    path,
    decoder,
    source_tokenizer,
    target_tokenizer,
    max_source_length,
    models=(),
    truncate=False,
    version=None,
    warmup_texts=None,
):
    """Exports a string-in, string-out SavedModel.

    Args:
        path: the model base directory; the SavedModel goes to
            `<path>/<version>/` (TF Serving's layout).
        decoder: a callable (usually a `tf.Module`) mapping `(batch,
            src_len)` int32 ids, `0`-padded, to `(tokens (batch, steps),
            attention_weights (batch, steps, src_len))`.
        source_tokenizer: a `CharacterTokenizer` (or any `tf.Module` with
            `tokenize`, `get_config` and `from_config`) for the inputs.
        target_tokenizer: the same for the outputs, with `detokenize`.
        max_source_length: int, the longest input answered as it is, in
            characters.
        models: Keras models whose variables `decoder` uses; they are
            tracked in the SavedModel. Defaults to `()`.
        truncate: bool, whether longer inputs are cut to
            `max_source_length` and answered (`"truncated"`) rather than
            rejected (`"too_long"`). Defaults to `False`.
        version: optional positive int, the version to write. Defaults
            to `None` (one more than the highest under `path`, or `1`).
        warmup_texts: optional list of a few real example inputs, written
            as TF Serving warmup requests (`assets.extra/`). Defaults to
            `None` (no warmup file).

    Returns:
        The version directory written, a str. The SavedModel's
        `serving_default` signature takes `texts: (batch,) tf.string` and
        returns `{"outputs": (batch,)
        tf.string, "attention_weights": (batch, steps, src_len) float32,
        "status": (batch,) tf.string}`.

    Example:

    >>> decoder = Seq2SeqGreedyDecoder(model, start_id=1, end_id=2,
    ...                                max_length=11)  # doctest: +SKIP
    >>> export_text_to_text("/tmp/dates", decoder, source_tokenizer,
    ...                     target_tokenizer, 64,
    ...                     models=[model])  # doctest: +SKIP
    """
    check_tensorflow_backend()
    max_source_length = check_positive_int(
        "max_source_length", max_source_length
    )
    check_tokenizer(
        "source_tokenizer",
        source_tokenizer,
        ("tokenize", "get_config", "from_config"),
    )
    check_tokenizer(
        "target_tokenizer",
        target_tokenizer,
        ("detokenize", "get_config", "from_config"),
    )
    module = _TextToTextModule(
        decoder,
        source_tokenizer,
        target_tokenizer,
        max_source_length,
        bool(truncate),
    )
    return write_archive(
        path,
        module,
        models=models,
        version=version,
        warmup_texts=warmup_texts,
    )


def export_seq2seq(
    path,
    model,
    source_tokenizer,
    target_tokenizer,
    max_source_length,
    max_output_length,
    truncate=False,
    version=None,
    warmup_texts=None,
):
    """Exports a `build_attention_seq2seq` model with greedy decoding.

    Args:
        path: the model base directory; the SavedModel goes to
            `<path>/<version>/`.
        model: a model built by `build_attention_seq2seq`.
        source_tokenizer: the source `CharacterTokenizer`.
        target_tokenizer: the target `CharacterTokenizer`.
        max_source_length: int, the longest input answered as it is, in
            characters; longer inputs are rejected (see the module
            docstring).
        max_output_length: int, the most output characters.
        truncate: bool, whether longer inputs are truncated and answered
            instead. Defaults to `False`.
        version: optional positive int, the version to write. Defaults
            to `None` (one more than the highest under `path`, or `1`).
        warmup_texts: optional list of a few real example inputs, written
            as TF Serving warmup requests (`assets.extra/`). Defaults to
            `None` (no warmup file).

    Returns:
        The version directory; see `export_text_to_text` for the
        signature.

    Example:

    >>> export_seq2seq("/tmp/dates", model, source_tokenizer,
    ...                target_tokenizer, 64, 10)  # doctest: +SKIP
    '/tmp/dates/1'
    >>> serving = load_saved_model("/tmp/dates").signatures[
    ...     "serving_default"]  # doctest: +SKIP
    >>> serving(tf.constant(["aug 19, 2003"]))["outputs"]  # doctest: +SKIP
    <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'2003-08-19'])>
    """
    check_tensorflow_backend()
    if not isinstance(source_tokenizer, CharacterTokenizer):
        raise ValueError(
            "`source_tokenizer` must be a `CharacterTokenizer`. "
            f"Received: {type(source_tokenizer).__name__}"
        )
    decoder = Seq2SeqGreedyDecoder(
        model,
        start_id=target_tokenizer.start_id,
        end_id=target_tokenizer.end_id,
        max_length=int(max_output_length) + 1,
    )
    return export_text_to_text(
        path,
        decoder,
        source_tokenizer,
        target_tokenizer,
        max_source_length,
        models=(model,),
        truncate=truncate,
        version=version,
        warmup_texts=warmup_texts,
    )
