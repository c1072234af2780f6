"""Fast greedy and beam search for `build_transformer` models.

`TransformerDecoder` encodes the source once, projects each decoder block's
cross-attention keys and values once, and then generates one id per step,
feeding only the newest id through the decoder blocks with a self-attention
key/value cache per block. A step therefore costs one decoder position, not a
re-run over the whole prefix. The searches themselves are the generic ones
of `keras_attention.decoding`.
"""

from keras import ops

from keras_attention._checks import check_positive_int
from keras_attention.decoding import beam_search
from keras_attention.decoding import check_beam_arguments
from keras_attention.decoding import check_special_ids
from keras_attention.decoding import greedy_search
from keras_attention.layers.token_embedding import check_token_id
from keras_attention.models.transformer import TransformerParts
from keras_attention.ops.updates import slice_update

__all__ = ["TransformerDecoder"]


def _stack_last_query(cross_scores):
    """Per-block `(rows, heads, q, src)` -> `(rows, blocks, heads, src)`."""
    return ops.stack([scores[:, :, -1, :] for scores in cross_scores], axis=1)


class TransformerDecoder:
    """Greedy and beam search with the layers of a `build_transformer` model.

    The searches use the trained model's own layers and weights (found by
    name, so a model reloaded from `.keras` works too) and never re-run the
    decoder over the prefix: the encoder runs once per source, the
    cross-attention keys and values of every decoder block are projected
    once, and every step feeds only the newest id, with a
    `(rows, 2, max_length, num_heads, key_dim)` self-attention cache per
    block. `use_cache=False` selects the reference path instead, which
    re-runs the decoder over the whole prefix at every step (same ids, far
    slower; for tests and benchmarks; it has a dynamic prefix length, so it
    runs eagerly or in a `tf.function` but not under XLA).

    The methods are pure functions of their inputs, on every backend: wrap
    them in `jax.jit` on JAX, or in `tf.function`, optionally with
    `jit_compile=True`, on TensorFlow. With
    `input_signature=[tf.TensorSpec([None, None], tf.int32)]` one graph
    serves every batch size and source length (that is how to export it as
    a SavedModel); XLA compiles one program per input shape, so pad sources
    to a few lengths. Two XLA caveats of a model with learned positions: a
    source longer than the position table is not caught, and an
    `input_signature` with a `None` source length does not compile (the
    `PositionEmbedding` length check builds a string); trace with concrete
    shapes instead. Dropout is off. The searches never emit the padding id;
    the output ids exclude the start id and include the end id, followed by
    the padding id.

    Args:
        model: a model from `build_transformer` (or its `.keras` reload).
        start_id: int, the target id every output starts from (the first
            id of the teacher-forced `target_ids` in training).
        end_id: int or `None`, the id that ends an output. With `None`
            every search runs `max_length` steps. Defaults to `None`.
        max_length: int, the most ids to generate per output, end id
            included. With learned positions at most the model's
            `max_length`. Defaults to `128`.
        name: str, the module name. Defaults to `"transformer_decoder"`.

    Example:

    >>> model = ka.models.build_transformer(30, 30, num_layers=1, d_model=16,
    ...                                     num_heads=2, feed_forward_dim=32)
    >>> decoder = TransformerDecoder(model, start_id=1, end_id=2,
    ...                              max_length=10)
    >>> source = np.array([[5, 8, 13, 0]], "int32")
    >>> ids, attention = decoder.greedy(source, return_attention_scores=True)
    >>> tuple(ids.shape), tuple(attention.shape)
    ((1, 10), (1, 10, 1, 2, 4))
    >>> ids, scores = decoder.beam(source, beam_width=3)
    >>> tuple(ids.shape)
    (1, 10)

    On TensorFlow, `tf.function(decoder.beam, jit_compile=True)` compiles
    a search with XLA (`greedy` too); the outputs are the same.
    """

    def __init__(
        self,
        model,
        start_id,
        end_id=None,
        max_length=128,
        name="transformer_decoder",
    ):
        parts = TransformerParts.from_model(model)
        vocabulary_size = parts.target_vocabulary_size
        check_token_id("start_id", start_id, vocabulary_size)
        check_token_id("end_id", end_id, vocabulary_size, allow_none=True)
        check_special_ids(start_id, end_id, parts.padding_id)
        max_length = check_positive_int("max_length", max_length)
        if parts.max_positions is not None and max_length > (
            parts.max_positions
        ):
            raise ValueError(
                "`max_length` must fit in the model's learned target "
                f"position table of {parts.max_positions} positions. "
                f"Received: max_length={max_length}"
            )
        self.name = name
        self.model = model
        self._parts = parts
        self.start_id = start_id
        self.end_id = end_id
        self.max_length = max_length
        self.padding_id = parts.padding_id

    def _encode(self, source_ids, repeats=1):
        """Runs the encoder and projects every cross-attention cache.

        Returns:
            `(encoder_output, source_mask, cross_caches)`, each repeated
            `repeats` times along the batch axis (beam `k` of example `b` in
            row `b * repeats + k`).
        """
        source_ids = ops.convert_to_tensor(source_ids, dtype="int32")
        if len(source_ids.shape) != 2:
            raise ValueError(
                "`source_ids` must be a (batch, src_len) int tensor. "
                f"Received: source_ids.shape={tuple(source_ids.shape)}"
            )
        # (batch, src_len, d_model), (batch, src_len)
        encoder_output, source_mask = self._parts.encode(
            source_ids, training=False
        )
        if repeats > 1:
            encoder_output = ops.repeat(encoder_output, repeats, axis=0)
            source_mask = ops.repeat(source_mask, repeats, axis=0)
        cross_caches = tuple(
            block.compute_cross_attention_cache(encoder_output)
            for block in self._parts.decoder_blocks
        )  # each (rows, 2, src_len, heads, key_dim)
        return encoder_output, source_mask, cross_caches

    def _cached_step(self, encoder_output, source_mask, cross_caches, record):
        """A step function feeding one id through the cached blocks.

        The state is `(self_caches, attention)`: one self-attention cache
        per block and, when `record`, the `(rows, max_length, blocks, heads,
        src_len)` buffer of cross-attention weights (else `()`).
        """
        parts = self._parts
        # (1, max_length, d_model), one row per step.
        position_table = parts.target_position_table(self.max_length)
        d_model = ops.shape(position_table)[-1]

        def step(sequences, index, state):
            caches, attention = state
            ids = ops.take(sequences, index, axis=1)[:, None]  # (rows, 1)
            positions = ops.slice(
                position_table, [0, index, 0], [1, 1, d_model]
            )  # (1, 1, d_model)
            # (rows, 1, d_model)
            x = parts.embed_target(ids, positions=positions, training=False)
            new_caches, cross_scores = [], []
            for block, cache, cross_cache in zip(
                parts.decoder_blocks, caches, cross_caches
            ):
                outputs = block(
                    x,
                    encoder_output,
                    encoder_padding_mask=source_mask,
                    self_attention_cache=cache,
                    self_attention_cache_update_index=index,
                    cross_attention_cache=cross_cache,
                    return_attention_scores=record,
                    training=False,
                )
                if record:
                    x, _, scores, cache, _ = outputs
                    cross_scores.append(scores)  # (rows, heads, 1, src)
                else:
                    x, cache, _ = outputs  # (rows, 1, d_model)
                new_caches.append(cache)
            logits = parts.logits(x)[:, 0]  # (rows, vocab)
            if record:
                attention = _record(attention, index, cross_scores)
            return logits, (tuple(new_caches), attention)

        return step

    def _uncached_step(self, encoder_output, source_mask, record):
        """A step function re-running the decoder over the whole prefix."""
        parts = self._parts

        def step(sequences, index, attention):
            prefix = sequences[:, : index + 1]  # (rows, index + 1)
            outputs = parts.decoder_hidden(
                prefix,
                encoder_output,
                source_mask,
                training=False,
                return_attention_scores=record,
            )
            if record:
                hidden, cross_scores = outputs
                attention = _record(attention, index, cross_scores)
            else:
                hidden = outputs  # (rows, index + 1, d_model)
            logits = parts.logits(hidden[:, -1:])[:, 0]  # (rows, vocab)
            return logits, attention

        return step

    def _search_state(self, rows, source_length, use_cache, record):
        """The initial state of the step function."""
        attention = ()
        if record:
            first = self._parts.decoder_blocks[0]
            attention = ops.zeros(
                (
                    rows,
                    self.max_length,
                    len(self._parts.decoder_blocks),
                    first.num_heads,
                    source_length,
                ),
                dtype="float32",
            )
        if not use_cache:
            return attention
        caches = tuple(
            block.empty_self_attention_cache(rows, self.max_length)
            for block in self._parts.decoder_blocks
        )
        return caches, attention

    def _step_fn(self, context, use_cache, record):
        if use_cache:
            return self._cached_step(*context, record)
        return self._uncached_step(*context[:2], record)

    def greedy(self, source_ids, return_attention_scores=False, use_cache=True):
        """Greedy decoding.

        Args:
            source_ids: `(batch, src_len)` int source ids, padded with the
                model's padding id.
            return_attention_scores: bool, whether to also return the
                cross-attention weights of every step, block and head.
                Defaults to `False`.
            use_cache: bool, whether to decode with the key/value caches
                (else re-run the decoder over the prefix at every step).
                Defaults to `True`.

        Returns:
            The `(batch, max_length)` int32 output ids (end id included,
            padding id after it) or, with `return_attention_scores=True`,
            `(ids, attention)` with `attention` the float32 cross-attention
            weights of shape `(batch, max_length, num_layers, num_heads,
            src_len)`: `attention[b, t, l, h]` is the distribution over the
            source of head `h` of decoder block `l` when it produced
            `ids[b, t]`; zero at steps after the end id and on source
            padding. For a plot, average the last block's heads:
            `attention[:, :, -1].mean(axis=2)`.
        """
        context = self._encode(source_ids)
        rows = ops.shape(context[0])[0]
        state = self._search_state(
            rows, ops.shape(context[0])[1], use_cache, return_attention_scores
        )
        ids, _, state = greedy_search(
            self._step_fn(context, use_cache, return_attention_scores),
            state,
            rows,
            self.max_length,
            self.start_id,
            self.end_id,
            self.padding_id,
        )
        if not return_attention_scores:
            return ids
        attention = state[1] if use_cache else state
        generated = ops.cast(ops.not_equal(ids, self.padding_id), "float32")
        return ids, attention * generated[:, :, None, None, None]

    def beam(
        self,
        source_ids,
        beam_width=4,
        length_penalty=0.6,
        return_all_beams=False,
        use_cache=True,
    ):
        """Beam search (see `keras_attention.decoding.beam_search`).

        Args:
            source_ids: `(batch, src_len)` int source ids, padded with the
                model's padding id.
            beam_width: int, hypotheses kept per example. Defaults to `4`.
            length_penalty: float >= 0, the GNMT `alpha` of the score
                `log_prob / ((5 + length) / 6) ** alpha`. Defaults to `0.6`.
            return_all_beams: bool, whether to return every hypothesis.
                Defaults to `False`.
            use_cache: bool, whether to decode with the key/value caches.
                Defaults to `True`.

        Returns:
            `(ids, scores)`: `(batch, max_length)` int32 ids of the best
            hypothesis (end id included, padding id after it) and its
            `(batch,)` float32 score; with `return_all_beams=True`,
            `(batch, beam_width, max_length)` ids and `(batch, beam_width)`
            scores, best first.
        """
        check_beam_arguments(beam_width, length_penalty)
        context = self._encode(source_ids, repeats=beam_width)
        rows = ops.shape(context[0])[0]
        state = self._search_state(rows, None, use_cache, record=False)
        return beam_search(
            self._step_fn(context, use_cache, record=False),
            state,
            rows // beam_width,
            self.max_length,
            self.start_id,
            self.end_id,
            beam_width=beam_width,
            length_penalty=length_penalty,
            padding_id=self.padding_id,
            return_all_beams=return_all_beams,
        )


def _record(attention, index, cross_scores):
    """Writes one step's cross-attention weights into the buffer."""
    step = ops.cast(_stack_last_query(cross_scores), "float32")
    return slice_update(attention, [0, index, 0, 0, 0], step[:, None])
