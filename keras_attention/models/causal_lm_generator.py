"""Text generation with a `build_causal_lm` model and a key/value cache.

`CausalLMGenerator` runs the prompt through the model once (filling one
self-attention cache per block), then feeds one token per step. Prompts of
different lengths share one buffer of `max_length` positions: every row
steps through the same positions, keeps its own prompt tokens where it has
them and writes sampled ones after them. The buffer's shape never changes,
so one compiled program serves every prompt length and seed.

A block with a `sliding_window` shorter than `max_length` keeps a rolling
cache of its window only (`rolling_cache=True`, the default): memory and
attention cost per step are bounded by the window, whatever the length
generated, and the ids are those of the full-length cache.
"""

import keras
import numpy as np
from keras import ops

from keras_attention import samplers as samplers_module
from keras_attention.decoding import NEGATIVE_INFINITY
from keras_attention.decoding import check_beam_arguments
from keras_attention.decoding import length_penalty_factor
from keras_attention.decoding import without_padding
from keras_attention.layers.multi_head_attention import rolling_cache_positions
from keras_attention.layers.token_embedding import check_token_id
from keras_attention.models.causal_lm import CausalLMParts
from keras_attention.ops.updates import slice_update

__all__ = ["CausalLMGenerator"]


def _compile(fn, variables, signature):
    """`fn` compiled once, by backend.

    TensorFlow traces one `tf.function` for `signature` (any batch size).
    JAX jits a stateless version that takes the variables' current values
    as inputs, so weights trained after compiling are the ones used.
    PyTorch runs eagerly.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        specs = [tf.TensorSpec(shape, dtype) for shape, dtype in signature]
        return tf.function(fn, input_signature=specs)
    if backend == "jax":
        import jax

        def stateless(values, *args):
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping):
                return fn(*args)

        compiled = jax.jit(stateless)
        return lambda *args: compiled([v.value for v in variables], *args)
    return fn


class CausalLMGenerator:
    """Generates token ids from prompts with a `build_causal_lm` model.

    Prompts are `(batch, prompt_length)` int ids padded with the model's
    padding id on the left or on the right (each prompt is moved to the
    start of its row); every prompt needs at least one token, and no
    padding between tokens. Generation writes into a `(batch, max_length)`
    buffer: the prompt, then the generated ids up to the end id (included),
    then padding. The padding id is never generated.

    With `use_cache=True` (the default) the prompt fills one key/value
    cache per block in one pass, and each step feeds a single token;
    `use_cache=False` re-runs the model over the whole buffer at every step
    instead (the same ids, for tests and benchmarks). Each sampler is
    compiled once (`tf.function` on TensorFlow, `jax.jit` on JAX; PyTorch
    runs eagerly): new prompts of any length up to `max_length` and new
    seeds reuse it (as does any batch size on TensorFlow; JAX compiles once
    per batch size). `traces` counts the compilations.

    Rolling caches: each block with a `sliding_window` `w < max_length`
    keeps, while decoding, a cache of its last `w` positions only (slot
    `p % w` holds position `p`) instead of `max_length`: the cache memory
    and the attention work of a step are bounded by the window. The prompt
    pass runs each block over the whole buffer with a full-length cache,
    exactly as without rolling, then keeps the last `w` positions before
    the first decoding step, so prompts longer than the window are exact
    too; the generated ids are the same as with full caches (up to float
    rounding in the order the keys are summed). `cache_lengths` gives each
    block's cache length.

    Args:
        model: a model from `build_causal_lm` (or its `.keras` reload).
        max_length: int, the length of the buffer: prompt plus generated
            ids. With learned positions at most the model's `max_length`.
        end_id: optional int, the id that ends a row. Defaults to `None`
            (generate up to `max_length`).
        rolling_cache: bool, whether windowed blocks keep rolling caches
            of `sliding_window` positions (see above); `False` gives every
            block a `max_length` cache. Defaults to `True`.

    Example:

    >>> model = ka.models.build_causal_lm(30, num_layers=1, d_model=16,
    ...                                   num_heads=2, feed_forward_dim=32)
    >>> generator = CausalLMGenerator(model, max_length=8, end_id=2)
    >>> ids = generator.generate(np.array([[5, 6, 7], [9, 0, 0]]),
    ...                          sampler="top_k", seed=3)
    >>> ids.shape
    (2, 8)
    >>> ids[:, :1].tolist()
    [[5], [9]]
    """

    def __init__(self, model, max_length, end_id=None, rolling_cache=True):
        parts = CausalLMParts.from_model(model)
        if not isinstance(rolling_cache, bool):
            raise ValueError(
                "`rolling_cache` must be a bool. Received: rolling_cache="
                f"{rolling_cache!r}"
            )
        check_token_id("end_id", end_id, parts.vocabulary_size, True)
        if end_id is not None and end_id == parts.padding_id:
            raise ValueError(
                "`end_id` must differ from the padding id, which is never "
                f"generated. Received: end_id={end_id}, padding_id="
                f"{parts.padding_id}"
            )
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(
                "`max_length` must be an integer of at least 2 (a prompt "
                f"token and a generated one). Received: max_length="
                f"{max_length!r}"
            )
        if parts.max_positions is not None and max_length > parts.max_positions:
            raise ValueError(
                "`max_length` must fit in the model's learned position "
                f"table of {parts.max_positions} positions. Received: "
                f"max_length={max_length}"
            )
        self.model = model
        self.max_length = max_length
        self.end_id = end_id
        self.padding_id = parts.padding_id
        self.rolling_cache = rolling_cache
        # Per block: its window when it rolls, else the whole buffer.
        self.cache_lengths = tuple(
            window
            if rolling_cache and window is not None and window < max_length
            else max_length
            for window in (block.sliding_window for block in parts.blocks)
        )
        self.traces = 0
        self._parts = parts
        self._compiled = {}

    # -- inputs ---------------------------------------------------------

    def _prompt_buffer(self, prompt_ids):
        """`(buffer, lengths)`: prompts moved left into `max_length` rows."""
        prompts = np.asarray(keras.ops.convert_to_numpy(prompt_ids))
        if prompts.ndim != 2 or not np.issubdtype(prompts.dtype, np.integer):
            raise ValueError(
                "`prompt_ids` must be a (batch, prompt_length) integer "
                f"array. Received: shape={prompts.shape}, dtype="
                f"{prompts.dtype}"
            )
        if prompts.shape[1] >= self.max_length:
            raise ValueError(
                "Prompts must be shorter than `max_length` to leave room "
                f"for a generated id. Received: prompt_length="
                f"{prompts.shape[1]}, max_length={self.max_length}"
            )
        vocabulary_size = self._parts.vocabulary_size
        if prompts.size and (
            prompts.min() < 0 or prompts.max() >= vocabulary_size
        ):
            raise ValueError(
                f"`prompt_ids` must lie in [0, {vocabulary_size}). "
                f"Received: ids from {prompts.min()} to {prompts.max()}"
            )
        real = prompts != self.padding_id
        lengths = real.sum(axis=1)
        if (lengths == 0).any():
            raise ValueError(
                "Every prompt needs at least one token that is not padding. "
                f"Received: empty prompts in rows "
                f"{np.flatnonzero(lengths == 0).tolist()}"
            )
        first = real.argmax(axis=1)  # leading padding (left-padded rows)
        buffer = np.full(
            (prompts.shape[0], self.max_length), self.padding_id, "int32"
        )
        for row, (start, length) in enumerate(zip(first, lengths)):
            tokens = prompts[row, start : start + length]
            if (tokens == self.padding_id).any():
                raise ValueError(
                    "Prompts may be padded on the left or the right, not in "
                    f"between tokens. Received: row {row} = "
                    f"{prompts[row].tolist()}"
                )
            buffer[row, :length] = tokens
        return buffer, lengths.astype("int32")

    # -- the model, cached or not ----------------------------------------

    def empty_caches(self, batch_size):
        """Zero caches of every block, shaped as decoding holds them.

        Args:
            batch_size: int, the number of rows.

        Returns:
            A tuple with one `(batch_size, 2, cache_length,
            num_key_value_heads, key_dim)` cache per block, `cache_length`
            from `cache_lengths`.

        Example:

        >>> model = ka.models.build_causal_lm(
        ...     30, num_layers=1, d_model=16, num_heads=2,
        ...     feed_forward_dim=32, sliding_window=4)
        >>> generator = CausalLMGenerator(model, max_length=64)
        >>> [tuple(c.shape) for c in generator.empty_caches(3)]
        [(3, 2, 4, 2, 8)]
        """
        return tuple(
            block.empty_self_attention_cache(batch_size, length)
            for block, length in zip(self._parts.blocks, self.cache_lengths)
        )

    def _rolls(self, length):
        return length < self.max_length

    def _prefill(self, buffer, start):
        """Every block's cache after the prompt pass, for step `start`.

        Each block runs over the whole buffer with a full-length cache at
        positions 0..; a rolling block then keeps its slots of the
        positions before `start` (the first decoding step writes `start`).
        """
        parts = self._parts
        rows = ops.shape(buffer)[0]
        x = parts.embed(buffer, training=False)
        caches = []
        for block, length in zip(parts.blocks, self.cache_lengths):
            cache = block.empty_self_attention_cache(rows, self.max_length)
            # The causal mask keeps the padding after each prompt out of
            # the prompt's keys; its own entries are overwritten later.
            x, cache = block(
                x,
                self_attention_cache=cache,
                self_attention_cache_update_index=0,
                training=False,
            )
            if self._rolls(length):
                # Empty slots (negative positions) are masked: any entry.
                held = rolling_cache_positions(start - 1, length)
                cache = ops.take(cache, ops.maximum(held, 0), axis=2)
            caches.append(cache)
        return tuple(caches)

    def _next_logits(self, buffer, index, caches, position_table):
        """`(rows, vocab)` logits of position `index + 1`, new caches."""
        parts = self._parts
        if not caches:
            logits = parts(buffer, training=False)  # (rows, max_length, V)
            return ops.take(logits, index, axis=1), ()
        token = ops.expand_dims(ops.take(buffer, index, axis=1), 1)
        positions = None
        if position_table is not None:
            positions = ops.slice(
                position_table,
                [0, index, 0],
                [1, 1, ops.shape(position_table)[-1]],
            )
        x = parts.embed(token, positions=positions, training=False)
        new_caches = []
        for block, cache, length in zip(
            parts.blocks, caches, self.cache_lengths
        ):
            x, cache = block(
                x,
                self_attention_cache=cache,
                self_attention_cache_update_index=index,
                rolling_cache=self._rolls(length),
                training=False,
            )
            new_caches.append(cache)
        return parts.logits(x)[:, 0], tuple(new_caches)

    def _start(self, buffer, lengths, use_cache):
        """`(start, caches, table)`: the first step, its state."""
        start = ops.min(lengths) - 1
        caches = self._prefill(buffer, start) if use_cache else ()
        return start, caches, self._parts.position_table(self.max_length)

    # -- sampling --------------------------------------------------------

    def generate_buffer(
        self,
        buffer,
        lengths,
        sampler="greedy",
        seed=None,
        max_new_tokens=None,
        use_cache=True,
    ):
        """Continues prompts already laid out in a buffer; graph-friendly.

        The tensor-in, tensor-out core of `generate`, for callers that
        trace it themselves (an exported `tf.function`, a `jax.jit`): it
        checks nothing at run time and uses no NumPy.

        Args:
            buffer: `(batch, max_length)` int32 ids, each prompt from
                column 0 and padding after it.
            lengths: `(batch,)` int32 prompt lengths, each in
                `[1, max_length)`.
            sampler: a sampler name, a `keras_attention.samplers.Sampler`
                or any callable `(logits, seed=) -> (batch,) ids`. Defaults
                to `"greedy"`.
            seed: a `(2,)` int32 seed for the whole batch, or `(batch, 2)`
                seeds, one per row; step `i` draws with `seed + [0, i]`.
                Defaults to `None` (`[0, 0]`).
            max_new_tokens: optional `(batch,)` int32 (or a scalar): the
                most ids each row generates, `0` for none. Defaults to
                `None` (up to `max_length`).
            use_cache: bool, whether to use the key/value caches. Defaults
                to `True`.

        Returns:
            The `(batch, max_length)` int32 ids (see `generate`).

        Example:

        >>> model = ka.models.build_causal_lm(
        ...     30, num_layers=1, d_model=16, num_heads=2,
        ...     feed_forward_dim=32)
        >>> generator = CausalLMGenerator(model, max_length=6)
        >>> buffer = np.array([[5, 6, 0, 0, 0, 0]], "int32")
        >>> ids = generator.generate_buffer(
        ...     buffer, np.array([2], "int32"), max_new_tokens=1)
        >>> ops.convert_to_numpy(ids)[0, 3:].tolist()
        [0, 0, 0]
        """
        if not callable(sampler):
            sampler = samplers_module.get(sampler)
        buffer = ops.convert_to_tensor(buffer, "int32")
        lengths = ops.convert_to_tensor(lengths, "int32")
        seed = ops.convert_to_tensor([0, 0] if seed is None else seed, "int32")
        end_id, padding_id = self.end_id, self.padding_id
        start, caches, table = self._start(buffer, lengths, use_cache)
        finished = ops.zeros_like(lengths, dtype="bool")
        limits = None
        if max_new_tokens is not None:
            limits = lengths + ops.maximum(
                ops.convert_to_tensor(max_new_tokens, "int32"), 0
            )  # (batch,), one past the last id a row may write
            finished = lengths >= limits

        def cond(index, buffer, caches, finished):
            return ops.logical_and(
                index < self.max_length - 1,
                ops.logical_not(ops.all(finished)),
            )

        def body(index, buffer, caches, finished):
            logits, caches = self._next_logits(buffer, index, caches, table)
            logits = without_padding(logits, padding_id)
            step_seed = ops.add(seed, ops.stack([0, index]))
            sampled = sampler(logits, seed=step_seed)  # (rows,)
            in_prompt = index + 1 < lengths
            ids = ops.where(
                in_prompt,
                ops.take(buffer, index + 1, axis=1),
                ops.where(finished, padding_id, sampled),
            )
            generating = ops.logical_not(in_prompt)
            if end_id is not None:
                done = ops.logical_and(generating, ops.equal(ids, end_id))
                finished = ops.logical_or(finished, done)
            if limits is not None:
                full = ops.logical_and(generating, index + 2 >= limits)
                finished = ops.logical_or(finished, full)
            buffer = slice_update(
                buffer, [0, index + 1], ops.expand_dims(ids, 1)
            )
            return index + 1, buffer, caches, finished

        _, buffer, _, _ = ops.while_loop(
            cond, body, (start, buffer, caches, finished)
        )
        return buffer

    def _sample_program(self, sampler, use_cache):
        def run(buffer, lengths, seed):
            self.traces += 1  # runs once per trace / compilation
            return self.generate_buffer(
                buffer, lengths, sampler, seed, use_cache=use_cache
            )

        signature = [
            ((None, self.max_length), "int32"),
            ((None,), "int32"),
            ((2,), "int32"),
        ]
        return _compile(run, self.model.variables, signature)

    def generate(self, prompt_ids, sampler="greedy", seed=None, use_cache=True):
        """Continues every prompt up to the end id or `max_length`.

        Args:
            prompt_ids: `(batch, prompt_length)` int ids, padded with the
                padding id on the left or on the right.
            sampler: a name (`"greedy"`, `"random"`, `"top_k"`, `"top_p"`)
                or a `keras_attention.samplers.Sampler` (for a temperature,
                `k` or `p`). Defaults to `"greedy"`.
            seed: optional int: the same seed gives the same ids. Defaults
                to `None` (a fixed seed of 0).
            use_cache: bool, whether to generate with the key/value caches.
                Defaults to `True`.

        Returns:
            A `(batch, max_length)` int32 NumPy array: each prompt from
            column 0, its continuation, the end id, then padding.
        """
        sampler = samplers_module.get(sampler)
        key = ("sample", repr(sampler.get_config()), type(sampler), use_cache)
        if key not in self._compiled:
            self._compiled[key] = self._sample_program(sampler, use_cache)
        buffer, lengths = self._prompt_buffer(prompt_ids)
        seed = np.array([0 if seed is None else int(seed), 0], "int32")
        ids = self._compiled[key](*_tensors(buffer, lengths, seed))
        return np.asarray(keras.ops.convert_to_numpy(ids))

    # -- attention -------------------------------------------------------

    def attention_scores(self, token_ids):
        """Every block's self-attention weights over whole sequences.

        Args:
            token_ids: `(batch, length)` int ids, padded on the right.

        Returns:
            A `(batch, num_layers, num_heads, length, length)` float32 NumPy
            array: row `i` of a head weighs the positions `j <= i`.

        Example:

        >>> model = ka.models.build_causal_lm(
        ...     30, num_layers=2, d_model=16, num_heads=2,
        ...     feed_forward_dim=32)
        >>> generator = CausalLMGenerator(model, max_length=8)
        >>> generator.attention_scores(np.array([[5, 6, 7]])).shape
        (1, 2, 2, 3, 3)
        """
        parts = self._parts
        token_ids = ops.convert_to_tensor(token_ids, "int32")
        padding_mask = parts.embedding.padding_mask(token_ids)  # (b, len)
        x = parts.embed(token_ids, training=False)
        scores = []
        for block in parts.blocks:
            x, block_scores = block(
                x,
                decoder_padding_mask=padding_mask,
                return_attention_scores=True,
                training=False,
            )  # block_scores: (batch, heads, len, len)
            scores.append(keras.ops.convert_to_numpy(block_scores))
        return np.stack(scores, axis=1).astype("float32")

    # -- beam search -----------------------------------------------------

    def _beam_program(self, beam_width, length_penalty, use_cache):
        end_id, padding_id = self.end_id, self.padding_id
        width = beam_width

        def run(buffer, lengths):
            self.traces += 1
            batch = ops.shape(buffer)[0]
            buffer = ops.repeat(buffer, width, axis=0)  # (batch * K, L)
            lengths = ops.repeat(lengths, width, axis=0)
            start, caches, table = self._start(buffer, lengths, use_cache)
            # Only the first beam of each example is alive at first: the
            # copies would otherwise pick the same ids.
            scores = ops.tile(
                ops.convert_to_tensor(
                    [0.0] + [NEGATIVE_INFINITY] * (width - 1), "float32"
                ),
                [batch],
            )  # (batch * K,)
            finished = ops.zeros_like(lengths, dtype="bool")
            generated = ops.zeros_like(lengths)

            def cond(index, *state):
                finished = state[3]
                return ops.logical_and(
                    index < self.max_length - 1,
                    ops.logical_not(ops.all(finished)),
                )

            def body(index, buffer, caches, scores, finished, generated):
                logits, caches = self._next_logits(buffer, index, caches, table)
                vocab = ops.shape(logits)[-1]
                log_probs = ops.log_softmax(
                    without_padding(logits, padding_id), axis=-1
                )
                in_prompt = index + 1 < lengths
                # A row in its prompt must take its prompt token, a finished
                # row the padding id, both at no cost.
                forced_id = ops.where(
                    in_prompt, ops.take(buffer, index + 1, axis=1), padding_id
                )
                forced = ops.where(
                    ops.one_hot(forced_id, vocab) > 0, 0.0, NEGATIVE_INFINITY
                )
                must = ops.expand_dims(ops.logical_or(in_prompt, finished), 1)
                log_probs = ops.where(must, forced, log_probs)
                candidates = ops.reshape(
                    ops.expand_dims(scores, 1) + log_probs, (batch, -1)
                )  # (batch, K * vocab)
                best, flat = ops.top_k(candidates, width)  # (batch, K)
                parent = flat // vocab + ops.expand_dims(
                    ops.arange(batch) * width, 1
                )
                parent = ops.reshape(parent, (-1,))  # rows to keep
                ids = ops.reshape(flat % vocab, (-1,))
                buffer = ops.take(buffer, parent, axis=0)
                caches = tuple(ops.take(c, parent, axis=0) for c in caches)
                in_prompt = ops.take(in_prompt, parent, axis=0)
                was_finished = ops.take(finished, parent, axis=0)
                generated = ops.take(generated, parent, axis=0) + ops.cast(
                    ops.logical_not(ops.logical_or(in_prompt, was_finished)),
                    generated.dtype,
                )
                finished = was_finished
                if end_id is not None:
                    finished = ops.logical_or(
                        finished,
                        ops.logical_and(
                            ops.logical_not(in_prompt), ops.equal(ids, end_id)
                        ),
                    )
                buffer = slice_update(
                    buffer,
                    [0, index + 1],
                    ops.expand_dims(ops.cast(ids, buffer.dtype), 1),
                )
                scores = ops.reshape(best, (-1,))
                return index + 1, buffer, caches, scores, finished, generated

            state = (start, buffer, caches, scores, finished, generated)
            _, buffer, _, scores, _, generated = ops.while_loop(
                cond, body, state
            )
            ranked = scores / length_penalty_factor(
                ops.maximum(generated, 1), length_penalty
            )
            ranked = ops.reshape(ranked, (batch, width))
            best = ops.argmax(ranked, axis=-1)  # (batch,)
            rows = ops.arange(batch) * width + ops.cast(best, "int32")
            return ops.take(buffer, rows, axis=0), ops.max(ranked, axis=-1)

        signature = [((None, self.max_length), "int32"), ((None,), "int32")]
        return _compile(run, self.model.variables, signature)

    def beam(
        self, prompt_ids, beam_width=4, length_penalty=0.6, use_cache=True
    ):
        """Beam search continuation of every prompt.

        Hypotheses are ranked by their summed log probability while
        searching; the best finished one is picked with the GNMT length
        penalty `log_prob / ((5 + length) / 6) ** length_penalty`.

        Args:
            prompt_ids: `(batch, prompt_length)` int ids, padded on the left
                or on the right.
            beam_width: int, hypotheses kept per prompt. Defaults to `4`.
            length_penalty: float >= 0. Defaults to `0.6`.
            use_cache: bool, whether to use the key/value caches. Defaults
                to `True`.

        Returns:
            `(ids, scores)`: the `(batch, max_length)` int32 NumPy ids of
            the best hypothesis (prompt first) and its `(batch,)` score.
        """
        check_beam_arguments(beam_width, length_penalty)
        key = ("beam", beam_width, float(length_penalty), use_cache)
        if key not in self._compiled:
            self._compiled[key] = self._beam_program(
                beam_width, float(length_penalty), use_cache
            )
        buffer, lengths = self._prompt_buffer(prompt_ids)
        ids, scores = self._compiled[key](*_tensors(buffer, lengths))
        return (
            np.asarray(keras.ops.convert_to_numpy(ids)),
            np.asarray(keras.ops.convert_to_numpy(scores)),
        )


def _tensors(*arrays):
    return [ops.convert_to_tensor(a, "int32") for a in arrays]
