"""Strings in, strings out: a Transformer translator and its SavedModel.

`Translator` wraps a `build_transformer` model and its two subword
tokenizers (`SentencePieceTokenizer`s, or `WordPieceTokenizer`s) in one
`tf.Module`: the source sentences are tokenised in the graph, encoded
once, decoded with the cached greedy or beam search of
`TransformerDecoder`, and detokenised (natural cased text with
SentencePiece; normalised words joined by spaces with WordPiece). The
very same module serves in-process translation (evaluation, BLEU) and is
what `export_translator` writes as a SavedModel, so served answers are
in-process answers.

Everything the SavedModel needs is tracked by the module: the model's
variables, and the tokenizers (WordPiece models are constant tensors; a
SentencePiece model is a resource the graph's initializer creates from
the model bytes). The tokenizers' files are also written as SavedModel
assets (`assets/source_sentencepiece.model` and
`assets/target_sentencepiece.model`, or `assets/source_vocabulary.txt`
and `assets/target_vocabulary.txt`). The export loads with
`tf.saved_model.load` after `import tensorflow_text` (which registers the
tokenizer ops), in a process that never imports `keras_attention`.

`keras_attention.serving.export_translator` writes it as a SavedModel.
"""

import tensorflow as tf

from keras_attention._checks import check_positive_int
from keras_attention.models.transformer_decoding import TransformerDecoder
from keras_attention.serving._archive import copy_tokenizer
from keras_attention.serving._archive import texts_spec
from keras_attention.serving.constants import SERVING_ATTENTION
from keras_attention.serving.constants import SERVING_IDS
from keras_attention.serving.constants import SERVING_OUTPUT
from keras_attention.serving.constants import SERVING_SCORES
from keras_attention.serving.item_status import answer_texts
from keras_attention.text.sentencepiece_tokenizer import SentencePieceTokenizer
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer

__all__ = ["Translator"]

TOKENIZER_TYPES = (SentencePieceTokenizer, WordPieceTokenizer)


def _check_tokenizer(name, tokenizer):
    if not isinstance(tokenizer, TOKENIZER_TYPES):
        raise ValueError(
            f"`{name}` must be a `SentencePieceTokenizer` or a "
            f"`WordPieceTokenizer`. Received: {type(tokenizer).__name__}"
        )
    if tokenizer.sequence_length is not None:
        raise ValueError(
            f"`{name}` must return ragged ids (`sequence_length=None`). "
            f"Received: sequence_length={tokenizer.sequence_length}"
        )


class Translator(tf.Module):
    """Translates a batch of raw sentences with a Transformer, in the graph.

    Call it with a `(batch,)` string tensor (or a list of Python strings).
    Sources are tokenised with `source_tokenizer` exactly as in training
    (with `[START]`/`[END]` if it adds them) and padded with id `0`.
    Each source stands alone (see `item_status`, and the `"status"`
    output): one longer than `max_source_length` ids is rejected
    (`"too_long"`), or cut to it keeping the end id with `truncate=True`
    (`"truncated"`); one that is not UTF-8 is `"invalid_utf8"`; one with
    no token besides the start and end ids (empty, blank, or only
    characters the normalisation drops) is `"empty"`. Those not answered
    translate to `""` (padding ids, zero attention and score), and never
    change the others' translations. Decoding is greedy for `beam_width=1`
    and beam search
    otherwise, at most `max_output_length` target ids (end id included).
    The outputs are detokenised by `target_tokenizer`: with a
    `SentencePieceTokenizer`, natural text as a person reads it (`"A man in
    an orange hat."`); with a `WordPieceTokenizer`, the normalised words
    (lower-cased and without accents if the tokenizer does so) joined by
    single spaces (`"a man in an orange hat ."`).

    Args:
        model: a model built by `build_transformer` (or reloaded from its
            `.keras` file).
        source_tokenizer: the source tokenizer of training, a
            `SentencePieceTokenizer` or a `WordPieceTokenizer`.
        target_tokenizer: the target tokenizer of training (of the same
            kinds); its start and end ids start and end the outputs.
        max_output_length: int, the most target ids to generate. Defaults to
            `64`.
        beam_width: int, `1` for greedy decoding, more for beam search.
            Defaults to `1`.
        length_penalty: float, the GNMT length penalty of beam search.
            Defaults to `0.6`.
        max_source_length: optional int, the most source ids answered
            (see above). Defaults to `None` (no limit; with learned
            position embeddings use the model's `max_length`).
        truncate: bool, whether longer sources are cut and answered
            rather than rejected. Defaults to `False`.

    Call arguments:
        texts: `(batch,)` strings.

    Returns:
        A dict: `"outputs"`, `(batch,)` translated strings; `"output_ids"`,
        `(batch, max_output_length)` int32 ids (end id included, `0` after
        it); with greedy decoding `"attention_weights"`, `(batch,
        max_output_length, src_len)` float32 cross-attention of the last
        decoder block averaged over its heads (zero after the end id); with
        beam search `"scores"`, `(batch,)` float32 length-normalised log
        probabilities; `"status"`, `(batch,)` strings.

    Example:

    >>> translator = Translator(model, source_tokenizer, target_tokenizer,
    ...                         max_output_length=32)  # doctest: +SKIP
    >>> translator(["Obrigado!"])["outputs"]  # doctest: +SKIP
    <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'Thank you!'])>
    """

    def __init__(
        self,
        model,
        source_tokenizer,
        target_tokenizer,
        max_output_length=64,
        beam_width=1,
        length_penalty=0.6,
        max_source_length=None,
        truncate=False,
    ):
        _check_tokenizer("source_tokenizer", source_tokenizer)
        _check_tokenizer("target_tokenizer", target_tokenizer)
        max_output_length = check_positive_int(
            "max_output_length", max_output_length
        )
        beam_width = check_positive_int("beam_width", beam_width)
        minimum = 2 if source_tokenizer.add_start_end else 1
        if max_source_length is not None and (
            not isinstance(max_source_length, int)
            or max_source_length < minimum
        ):
            raise ValueError(
                f"`max_source_length` must be None or an int >= {minimum}. "
                f"Received: max_source_length={max_source_length!r}"
            )
        super().__init__(name="translator")
        self.model = model
        # Fresh copies: the export never depends on training-time objects.
        self.source_tokenizer = copy_tokenizer(source_tokenizer)
        self.target_tokenizer = copy_tokenizer(target_tokenizer)
        self.decoder = TransformerDecoder(
            model,
            start_id=target_tokenizer.start_id,
            end_id=target_tokenizer.end_id,
            max_length=max_output_length,
        )
        self.max_output_length = max_output_length
        self.beam_width = beam_width
        self.length_penalty = float(length_penalty)
        self.max_source_length = max_source_length
        self.truncate = bool(truncate)
        self._translate = tf.function(
            self.serve, input_signature=[texts_spec()]
        )

    def _cut(self, ids):
        """Ragged ids cut to `max_source_length`, keeping the end id."""
        if self.max_source_length is None:
            return ids
        if not self.source_tokenizer.add_start_end:
            return ids[:, : self.max_source_length]
        body = ids[:, :-1][:, : self.max_source_length - 1]
        end = tf.fill(
            [body.nrows(), 1], self.source_tokenizer.end_id
        )  # (batch, 1)
        return tf.concat([body, end], axis=1)  # (batch, None)

    def encode(self, texts):
        """`(batch, src_len)` int32 source ids, `0`-padded (graph-safe).

        Sources longer than `max_source_length` ids are cut to it (keeping
        the end id), whatever the policy: this shows what the model sees.
        """
        return self._cut(self.tokenize(texts)).to_tensor(
            default_value=self.source_tokenizer.padding_id
        )

    def decode(self, ids):
        """The outputs of `(num, None)` ragged source ids, all answerable."""
        source_ids = ids.to_tensor(
            default_value=self.source_tokenizer.padding_id
        )  # (num, src_len)
        outputs = {}
        if self.beam_width == 1:
            output_ids, attention = self.decoder.greedy(
                source_ids, return_attention_scores=True
            )  # (num, steps), (num, steps, layers, heads, src_len)
            outputs[SERVING_ATTENTION] = tf.reduce_mean(
                attention[:, :, -1], axis=2
            )  # (num, steps, src_len)
        else:
            output_ids, scores = self.decoder.beam(
                source_ids,
                beam_width=self.beam_width,
                length_penalty=self.length_penalty,
            )  # (num, steps), (num,)
            outputs[SERVING_SCORES] = scores
        outputs[SERVING_OUTPUT] = self.target_tokenizer.detokenize(output_ids)
        outputs[SERVING_IDS] = output_ids
        return outputs

    def tokenize(self, texts):
        """`(batch, None)` ragged int32 source ids of `(batch,)` strings."""
        return tf.cast(self.source_tokenizer.tokenize(texts), tf.int32)

    def serve(self, texts):
        """The serving function: see the class docstring."""
        return answer_texts(
            texts,
            self.tokenize,
            self.decode,
            self.max_source_length,
            self.truncate,
            num_special=2 if self.source_tokenizer.add_start_end else 0,
            cut=self._cut,
        )

    def greedy(self):
        """This translator if it decodes greedily, else a greedy copy.

        The copy has the same model, tokenizers and lengths, and returns
        the attention weights that beam search does not.

        Example:

        >>> translator.greedy().beam_width  # doctest: +SKIP
        1
        """
        if self.beam_width == 1:
            return self
        return Translator(
            self.model,
            self.source_tokenizer,
            self.target_tokenizer,
            max_output_length=self.max_output_length,
            length_penalty=self.length_penalty,
            max_source_length=self.max_source_length,
            truncate=self.truncate,
        )

    def serving_function(self):
        """The concrete serving function: `(batch,)` strings to a dict."""
        return self._translate.get_concrete_function()

    def __call__(self, texts):
        texts = tf.convert_to_tensor(texts, tf.string)
        if texts.shape.rank != 1:
            raise ValueError(
                "`texts` must be a (batch,) batch of strings. "
                f"Received: shape={texts.shape}"
            )
        return self._translate(texts)

    def translate(self, texts, batch_size=64):
        """Translates a list of Python strings, `batch_size` at a time.

        Args:
            texts: a list of source sentences.
            batch_size: int, sentences per call. Defaults to `64`.

        Returns:
            A list of translated strings.
        """
        texts = list(texts)
        translations = []
        for start in range(0, len(texts), batch_size):
            outputs = self(texts[start : start + batch_size])[SERVING_OUTPUT]
            translations.extend(t.decode("utf-8") for t in outputs.numpy())
        return translations
