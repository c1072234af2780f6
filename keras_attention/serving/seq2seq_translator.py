"""`Seq2SeqTranslator`: strings in, strings out for `build_attention_seq2seq`.

Character tokenizers around the greedy decoder of
`keras_attention.models.Seq2SeqGreedyDecoder`, in-process. Every item is
screened as the SavedModel export (`export_seq2seq`) screens it
(`keras_attention.serving.item_status`), so a bad item never fails the
others of its batch.
"""

import numpy as np
import tensorflow as tf

from keras_attention.models.seq2seq_decoding import Seq2SeqGreedyDecoder
from keras_attention.serving import item_status

__all__ = ["Seq2SeqTranslator"]

SOURCE_LENGTH_MULTIPLE = 8


def _utf8_bytes(text):
    """The bytes of one item: `bytes` as given, `str` encoded as UTF-8.

    A `str` with a lone surrogate (not encodable as UTF-8) keeps it, so the
    screen finds the bytes invalid rather than this raising.
    """
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8", "surrogatepass")
    raise ValueError(
        "Every text must be a `str` or `bytes`. "
        f"Received: {text!r} of type {type(text).__name__}"
    )


class Seq2SeqTranslator:
    """Strings in, strings out: tokenizers around a greedy decoder.

    Args:
        model: a model built by `build_attention_seq2seq`.
        source_tokenizer: the source `CharacterTokenizer`.
        target_tokenizer: the target `CharacterTokenizer`.
        max_output_length: int, the most target characters to produce (the
            end id is one more step).
        max_source_length: int, the longest source answered as it is (in
            ids). A longer one is `"too_long"` and answered `""`, or, with
            `truncate=True`, cut to it and answered (`"truncated"`).
        batch_size: int, the decoding batch size; with `jit_compile` every
            batch is padded to it, so the decoder compiles once. Defaults to
            `512`.
        jit_compile: bool, whether to XLA-compile the decoder. Defaults to
            `True`.
        truncate: bool, the policy for over-long sources, as the export's
            (`export_seq2seq(truncate=...)`). Defaults to `False` (reject).

    Each item of a batch stands alone, as in the SavedModel: `translate`
    answers `""` for an item that is empty or blank (`"empty"`), over-long
    (`"too_long"`) or not valid UTF-8 (`"invalid_utf8"`: `bytes` that do not
    decode, or a `str` with a lone surrogate), and `return_status=True`
    says which.

    Example:

    >>> source = ka.text.CharacterTokenizer.from_texts(["aug 19, 2003"])
    >>> target = ka.text.CharacterTokenizer.from_texts(["2003-08-19"])
    >>> model = ka.models.build_attention_seq2seq(
    ...     source.vocabulary_size, target.vocabulary_size, units=8)
    >>> translator = Seq2SeqTranslator(model, source, target, 10, 32,
    ...                                jit_compile=False)
    >>> len(translator.translate(["aug 19, 2003", "aug 20, 2003"]))
    2
    >>> translator.translate(["aug 19, 2003"])  # once trained # doctest: +SKIP
    ['2003-08-19']
    >>> translator.translate(["", "x" * 40], return_status=True)[1]
    ['empty', 'too_long']
    """

    def __init__(
        self,
        model,
        source_tokenizer,
        target_tokenizer,
        max_output_length,
        max_source_length,
        batch_size=512,
        jit_compile=True,
        truncate=False,
    ):
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_source_length = int(max_source_length)
        self.batch_size = int(batch_size)
        self.jit_compile = jit_compile
        self.truncate = bool(truncate)
        self.decoder = Seq2SeqGreedyDecoder(
            model,
            start_id=target_tokenizer.start_id,
            end_id=target_tokenizer.end_id,
            max_length=int(max_output_length) + 1,
        )
        self._decode = tf.function(
            self.decoder.__call__, jit_compile=jit_compile, autograph=False
        )

    def encode(self, texts):
        """`(num_texts, src_len)` int32 ids, or a `ValueError` if too long."""
        ids = self.source_tokenizer.tokenize(list(texts))
        lengths = ids.row_lengths().numpy()
        too_long = np.flatnonzero(lengths > self.max_source_length)
        if too_long.size:
            index = int(too_long[0])
            raise ValueError(
                f"Inputs longer than {self.max_source_length} characters are "
                f"rejected. Received: {list(texts)[index]!r} "
                f"({int(lengths[index])} characters) at index {index}"
            )
        return self._padded(ids)

    def _padded(self, ids):
        """`(num, width)` ids of `(num, None)` ragged ids, few widths."""
        lengths = ids.row_lengths().numpy()
        # Pad to a multiple of a few ids: few distinct shapes to compile.
        width = -(-int(lengths.max(initial=1)) // SOURCE_LENGTH_MULTIPLE)
        width = min(width * SOURCE_LENGTH_MULTIPLE, self.max_source_length)
        return ids.to_tensor(shape=[None, width]).numpy()

    def screen(self, texts):
        """Each item's status, and the source ids of every item.

        Args:
            texts: a list of `str` or `bytes`.

        Returns:
            `(statuses, answered, ids)`: a list of status strings (see
            `keras_attention.serving.item_status`), a `(num,)` bool array
            (which items reach the model) and `(num, None)` ragged ids, cut
            to `max_source_length`.
        """
        valid, safe_texts = item_status.screen_utf8(
            tf.constant([_utf8_bytes(text) for text in texts], tf.string)
        )
        ids = self.source_tokenizer.tokenize(safe_texts)  # (num, None)
        statuses = item_status.item_status(
            safe_texts,
            valid,
            ids.row_lengths(),
            self.max_source_length,
            self.truncate,
        )
        answered = item_status.is_answered(statuses).numpy()
        statuses = [status.decode("utf-8") for status in statuses.numpy()]
        return statuses, answered, ids[:, : self.max_source_length]

    def decode_ids(self, source_ids):
        """Greedy `(tokens, weights)` for `(num, src_len)` ids, batched."""
        tokens, weights = [], []
        for begin in range(0, len(source_ids), self.batch_size):
            batch = source_ids[begin : begin + self.batch_size]
            size = len(batch)
            if self.jit_compile and size < self.batch_size:
                # Pad to the one batch shape the XLA program was built for.
                padding = np.zeros(
                    (self.batch_size - size, batch.shape[1]), batch.dtype
                )
                batch = np.concatenate([batch, padding])
            batch_tokens, batch_weights = self._decode(tf.constant(batch))
            tokens.append(batch_tokens.numpy()[:size])
            weights.append(batch_weights.numpy()[:size])
        return np.concatenate(tokens), np.concatenate(weights)

    def translate(self, texts, return_attention=False, return_status=False):
        """Translates a list of strings, each item on its own.

        Args:
            texts: a list of `str` (or UTF-8 `bytes`).
            return_attention: bool, whether to also return the output ids
                and the attention weights. Defaults to `False`.
            return_status: bool, whether to also return each item's status
                (`"ok"`, `"truncated"`, `"empty"`, `"too_long"`,
                `"invalid_utf8"`). Defaults to `False`.

        Returns:
            A list of strings (`""` for an item not answered), followed,
            in a tuple, by `tokens` `(num, steps)` and `weights` `(num,
            steps, src_len)` with `return_attention=True` (zeros for an
            item not answered) and by the list of statuses with
            `return_status=True`.
        """
        texts = list(texts)
        statuses, answered, ids = (
            self.screen(texts) if texts else ([], [], None)
        )
        answered = np.flatnonzero(answered)
        strings = [""] * len(texts)
        tokens = np.zeros((len(texts), self.decoder.max_length), "int32")
        weights = np.zeros((len(texts), self.decoder.max_length, 1), "float32")
        if answered.size:
            answered_tokens, answered_weights = self.decode_ids(
                self._padded(tf.gather(ids, answered))
            )
            detokenized = self.target_tokenizer.detokenize(answered_tokens)
            for index, text in zip(answered, detokenized.numpy()):
                strings[index] = text.decode("utf-8")
            tokens[answered] = answered_tokens
            weights = np.zeros(
                (len(texts),) + answered_weights.shape[1:], "float32"
            )
            weights[answered] = answered_weights
        results = (strings,)
        if return_attention:
            results += (tokens, weights)
        if return_status:
            results += (statuses,)
        return results if len(results) > 1 else strings

    def exact_match(self, pairs):
        """The fraction of `(source, target)` pairs translated exactly.

        Returns:
            `(accuracy, predictions)`.
        """
        sources = [source for source, _ in pairs]
        predictions = self.translate(sources)
        correct = sum(
            prediction == target
            for prediction, (_, target) in zip(predictions, pairs)
        )
        return correct / max(1, len(pairs)), predictions
