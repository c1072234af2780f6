"""Greedy decoding, translation and evaluation for `build_attention_seq2seq`.

The greedy decoder runs the layers of a trained model one target step at a
time inside a `keras.ops.while_loop`, on every backend (wrap it in a
`tf.function`, optionally XLA-compiled, or `jax.jit`), and stops when every
sequence has produced the end id or after `max_length` steps. The
`Seq2SeqTranslator` around it (strings in, strings out) needs TensorFlow
for its tokenizers; it screens every item as the SavedModel export does
(`keras_attention.serving.item_status`), so a bad item never fails the
others of its batch.
"""

import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_attention.decoding import check_special_ids
from keras_attention.decoding import without_padding
from keras_attention.models import seq2seq
from keras_attention.ops.updates import slice_update

__all__ = [
    "ExactMatchCallback",
    "Seq2SeqGreedyDecoder",
    "Seq2SeqTranslator",
]

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


class Seq2SeqGreedyDecoder:
    """Greedy decoding with the layers of an attention seq2seq model.

    At every step the previous token is embedded, one step of the decoder
    RNN's cell runs, the attention layer weights the encoder states by the
    new decoder state and the output head picks the most likely next token.
    These are the very layers (and weights) of the teacher-forced model, so
    when a prediction is right, teacher forcing and greedy decoding give the
    same tokens.

    Args:
        model: a model built by `build_attention_seq2seq` (or reloaded from
            its `.keras` file).
        start_id: int, the id that starts every target sequence.
        end_id: int, the id that ends a target sequence.
        max_length: int, the most target steps to run (the end id counted).

    Call arguments:
        source_ids: `(batch, src_len)` int ids, `0`-padded.

    Returns:
        `(tokens, weights)`: `(batch, max_length)` int32 predicted ids, the
        end id included and `0` after it, and `(batch, max_length, src_len)`
        float32 attention weights of every step (zero after the end id).

    Example:

    >>> model = ka.models.build_attention_seq2seq(12, 12, embedding_dim=4,
    ...                                           units=8)
    >>> decoder = Seq2SeqGreedyDecoder(model, start_id=2, end_id=3,
    ...                                max_length=5)
    >>> tokens, weights = decoder(np.array([[5, 6, 7, 0]], "int32"))
    >>> tuple(tokens.shape), tuple(weights.shape)
    ((1, 5), (1, 5, 4))
    """

    def __init__(self, model, start_id, end_id, max_length):
        if not isinstance(max_length, int) or max_length <= 0:
            raise ValueError(
                "`max_length` must be a positive integer. "
                f"Received: max_length={max_length!r}"
            )
        self.name = "seq2seq_greedy_decoder"
        try:
            self.encoder = model.get_layer(seq2seq.ENCODER)
            self.target_embedding = model.get_layer(seq2seq.TARGET_EMBEDDING)
            self.decoder_cell = model.get_layer(seq2seq.DECODER).cell
            self.attention = model.get_layer(seq2seq.ATTENTION)
            self.output_head = model.get_layer(seq2seq.OUTPUT_HEAD)
        except ValueError as error:
            raise ValueError(
                "`model` must be built by `build_attention_seq2seq`. "
                f"Received: a model without the expected layer ({error})"
            ) from error
        check_special_ids(start_id, end_id, seq2seq.PADDING_ID)
        self.start_id = int(start_id)
        self.end_id = int(end_id)
        self.max_length = max_length

    def __call__(self, source_ids):
        source_ids = ops.cast(ops.convert_to_tensor(source_ids), "int32")
        batch, source_length = (
            ops.shape(source_ids)[0],
            ops.shape(source_ids)[1],
        )
        # (batch, src_len, units) and the decoder's initial state(s).
        encoder_states, *states = self.encoder(source_ids, training=False)
        source_mask = ops.not_equal(source_ids, seq2seq.PADDING_ID)

        def step(index, token, finished, states, tokens, weights):
            embedded = self.target_embedding(token)  # (batch, embedding_dim)
            output, states = self.decoder_cell(embedded, states)
            output = ops.expand_dims(output, 1)  # (batch, 1, units)
            # (batch, 1, units), (batch, 1, src_len)
            context, step_weights = self.attention(
                output,
                encoder_states,
                value_mask=source_mask,
                return_attention_scores=True,
            )
            logits = self.output_head([output, context])  # (batch, 1, vocab)
            logits = without_padding(logits[:, 0], seq2seq.PADDING_ID)
            next_token = ops.cast(ops.argmax(logits, axis=-1), "int32")
            next_token = ops.where(finished, seq2seq.PADDING_ID, next_token)
            # (batch, 1, src_len), zero for finished sequences.
            step_weights = ops.where(
                finished[:, None, None],
                ops.zeros_like(step_weights),
                step_weights,
            )
            # Write step `index` of the fixed-size outputs.
            tokens = slice_update(tokens, [0, index], next_token[:, None])
            weights = slice_update(
                weights, [0, index, 0], ops.cast(step_weights, "float32")
            )  # (batch, max_length, src_len)
            finished = ops.logical_or(
                finished, ops.equal(next_token, self.end_id)
            )
            return index + 1, next_token, finished, states, tokens, weights

        def not_done(index, token, finished, *_):
            return ops.logical_not(ops.all(finished))

        loop_vars = (
            ops.convert_to_tensor(0, "int32"),
            ops.full((batch,), self.start_id, dtype="int32"),
            ops.zeros((batch,), dtype="bool"),
            states,
            ops.zeros((batch, self.max_length), dtype="int32"),
            ops.zeros((batch, self.max_length, source_length), "float32"),
        )
        *_, tokens, weights = ops.while_loop(
            not_done, step, loop_vars, maximum_iterations=self.max_length
        )
        return tokens, weights


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
        # Deferred: `serving` imports this module for its exports.
        from keras_attention.serving import item_status

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


class ExactMatchCallback(keras.callbacks.Callback):
    """Exact-match accuracy of greedy decoding after every epoch.

    Adds `val_exact_match` to the epoch logs (so `History` records it) and
    prints it with a few `input -> prediction (target)` examples.

    Args:
        translator_fn: a function of the model returning a
            `Seq2SeqTranslator` (called once, on the first epoch end).
        pairs: held-out `(source, target)` pairs.
        num_examples: how many examples to print. Defaults to `3`.
        print_fn: the printing function. Defaults to `print`.
    """

    def __init__(self, translator_fn, pairs, num_examples=3, print_fn=print):
        super().__init__()
        self.translator_fn = translator_fn
        self.pairs = list(pairs)
        self.num_examples = num_examples
        self.print_fn = print_fn
        self.translator = None

    def on_epoch_end(self, epoch, logs=None):
        if self.translator is None:
            self.translator = self.translator_fn(self.model)
        started = time.perf_counter()
        accuracy, predictions = self.translator.exact_match(self.pairs)
        seconds = time.perf_counter() - started
        if logs is not None:
            logs["val_exact_match"] = accuracy
        errors = [
            i
            for i, (prediction, (_, target)) in enumerate(
                zip(predictions, self.pairs)
            )
            if prediction != target
        ]
        self.print_fn(
            f"Epoch {epoch + 1}: held-out exact match {accuracy:.4%} "
            f"({len(self.pairs) - len(errors)}/{len(self.pairs)}, greedy "
            f"decoding took {seconds:.1f} s)"
        )
        # Show mistakes first, then correct examples.
        shown = (errors + list(range(len(self.pairs))))[: self.num_examples]
        for index in shown:
            source, target = self.pairs[index]
            mark = "ok " if predictions[index] == target else "BAD"
            self.print_fn(
                f"  {mark} {source!r} -> {predictions[index]!r} ({target!r})"
            )
