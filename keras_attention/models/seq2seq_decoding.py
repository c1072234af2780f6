"""Greedy decoding and evaluation for `build_attention_seq2seq`.

The greedy decoder runs the layers of a trained model one target step at a
time inside a `keras.ops.while_loop`, on every backend (wrap it in a
`tf.function`, optionally XLA-compiled, or `jax.jit`), and stops when every
sequence has produced the end id or after `max_length` steps. Strings in,
strings out around it is `keras_attention.serving.Seq2SeqTranslator`.
"""

import time

import keras
from keras import ops

from keras_attention._checks import check_positive_int
from keras_attention.decoding import check_special_ids
from keras_attention.decoding import without_padding
from keras_attention.models import seq2seq
from keras_attention.ops.updates import slice_update

__all__ = [
    "ExactMatchCallback",
    "Seq2SeqGreedyDecoder",
]


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
        max_length = check_positive_int("max_length", max_length)
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
