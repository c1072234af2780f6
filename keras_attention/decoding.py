"""Greedy and beam search over any autoregressive step function.

Both searches drive a `step_fn` that, given the ids generated so far,
returns the logits of the next id. They know nothing about the model: a
step function may run the whole decoder over the prefix, or (much faster)
feed only the newest id and keep a key/value cache in its `state`, see
`keras_attention.models.transformer_decoding`.

Everything is graph- and XLA-friendly: fixed-size buffers, one
`keras.ops.while_loop` that ends early when every sequence has produced the
end id, `keras.ops.slice_update` writes, and a dynamic batch size. Call the
searches inside a `tf.function`, with or without `jit_compile=True`.

The step function contract:

    step_fn(sequences, index, state) -> (logits, state)

- `sequences`: `(rows, max_length + 1)` int32, the start id in column 0 and
  the generated ids in columns `1..index`; columns after `index` hold
  `padding_id`.
- `index`: scalar int32 tensor, the position of the newest id; the logits
  are those of the id at position `index + 1`.
- `state`: any structure of tensors whose first axis is `rows` (a cache,
  buffers to record into), or `()`. Beam search reorders it along with the
  beams.
- `logits`: `(rows, vocabulary_size)`, any float dtype.

Conventions: the searches never emit `padding_id` (its logit is ignored, as
in fairseq), so a padding id in the output always means "after the end".
The returned ids exclude the start id and include the end id, followed by
`padding_id`.
"""

from keras import ops
from keras import tree

from keras_attention._checks import check_positive_int
from keras_attention.ops.updates import slice_update

__all__ = [
    "NEGATIVE_INFINITY",
    "beam_search",
    "greedy_search",
    "length_penalty_factor",
]

# A finite stand-in for -inf in float32 log probabilities: `-inf` would turn
# `0 * -inf` and `-inf - -inf` into NaN.
NEGATIVE_INFINITY = -1e9


def length_penalty_factor(lengths, alpha):
    """The GNMT length penalty `((5 + length) / 6) ** alpha`.

    A hypothesis' score is its log probability divided by this factor.
    `alpha = 0` gives the plain log probability (which favours short
    hypotheses); larger values favour longer ones. Wu et al. (2016) use
    `alpha` in `[0.6, 0.7]`.

    Args:
        lengths: int tensor, the number of generated ids (end id included).
        alpha: float >= 0.

    Returns:
        A float32 tensor shaped like `lengths`.

    References:
        - [Wu et al., 2016](https://arxiv.org/abs/1609.08144), section 7
    """
    lengths = ops.cast(lengths, "float32")
    return ops.power((5.0 + lengths) / 6.0, alpha)


def _check_search_arguments(max_length, start_id, end_id, padding_id):
    for name, value, allow_none in (
        ("max_length", max_length, False),
        ("start_id", start_id, False),
        ("end_id", end_id, True),
        ("padding_id", padding_id, False),
    ):
        if value is None and allow_none:
            continue
        is_int = isinstance(value, int) and not isinstance(value, bool)
        minimum = 1 if name == "max_length" else 0
        if not is_int or value < minimum:
            expected = "a positive" if minimum else "a non-negative"
            raise ValueError(
                f"`{name}` must be {expected} integer. "
                f"Received: {name}={value!r}"
            )
    # The start id may be the padding id here: a custom step function may
    # not mask padding; no search emits it, so an end id must differ.
    check_special_ids(None, end_id, padding_id)


def check_special_ids(start_id, end_id, padding_id):
    """Raise if the start or the end id is the padding id (`None`: unchecked).

    Models mask padding ids, so a start id equal to it would be ignored by
    teacher-forced training but attended by cached decoding; and searches
    never emit the padding id, so an end id equal to it could never end an
    output.
    """
    if start_id is not None and start_id == padding_id:
        raise ValueError(
            f"`start_id` must differ from the padding id ({padding_id}), "
            "which the model masks out. Received: "
            f"start_id={start_id!r}, padding_id={padding_id!r}"
        )
    if end_id is not None and end_id == padding_id:
        raise ValueError(
            f"`end_id` must differ from the padding id ({padding_id}), "
            "which decoding never emits, so no output could end. Received: "
            f"end_id={end_id!r}, padding_id={padding_id!r}"
        )


def check_beam_arguments(beam_width, length_penalty):
    """Raise unless `beam_width >= 1` is an int and `length_penalty >= 0`."""
    check_positive_int("beam_width", beam_width)
    if not isinstance(length_penalty, (int, float)) or length_penalty < 0:
        raise ValueError(
            "`length_penalty` must be a non-negative number. "
            f"Received: length_penalty={length_penalty!r}"
        )


def _initial_sequences(rows, max_length, start_id, padding_id):
    """`(rows, max_length + 1)` int32: the start id, then padding."""
    start = ops.full((rows, 1), start_id, dtype="int32")
    rest = ops.full((rows, max_length), padding_id, dtype="int32")
    return ops.concatenate([start, rest], axis=1)


def without_padding(logits, padding_id):
    """`(rows, vocab)` float32 logits with `padding_id` ruled out.

    No decoder predicts the padding id: it marks the steps after the end id.
    """
    logits = ops.cast(logits, "float32")  # (rows, vocab)
    vocabulary = ops.arange(ops.shape(logits)[-1], dtype="int32")  # (vocab,)
    return ops.where(
        ops.equal(vocabulary, padding_id)[None, :], NEGATIVE_INFINITY, logits
    )  # (rows, vocab)


def _next_log_probs(logits, padding_id):
    """`(rows, vocab)` float32 log-softmax with `padding_id` ruled out."""
    return ops.log_softmax(without_padding(logits, padding_id), axis=-1)


def _write(sequences, index, ids):
    """Writes `(rows,)` ids into column `index` of `sequences`."""
    ids = ops.cast(ids, "int32")[:, None]  # (rows, 1)
    return slice_update(sequences, [0, index], ids)


def _not_all_finished(end_id):
    def cond(index, sequences, finished, *rest):
        if end_id is None:
            return ops.convert_to_tensor(True)
        return ops.logical_not(ops.all(finished))

    return cond


def greedy_search(
    step_fn,
    state,
    batch_size,
    max_length,
    start_id,
    end_id=None,
    padding_id=0,
):
    """Greedy search: the most likely next id at every step.

    Runs `step_fn` (see the module docstring) at most `max_length` times.
    A sequence is finished once it has produced `end_id`; it then only
    receives `padding_id`, and the loop stops as soon as every sequence is
    finished. With `end_id=None` all `max_length` steps run.

    Args:
        step_fn: `(sequences, index, state) -> (logits, state)`.
        state: the initial state for `batch_size` rows (any structure of
            tensors, or `()`).
        batch_size: int or scalar int tensor, the number of sequences.
        max_length: int, the most ids to generate (end id included).
        start_id: int, the id every sequence starts from.
        end_id: int or `None`, the id that ends a sequence. Defaults to
            `None`.
        padding_id: int, the id written after the end id, never generated.
            Defaults to `0`.

    Returns:
        `(ids, log_probs, state)`: `(batch, max_length)` int32 ids (end id
        included, `padding_id` after it), the `(batch,)` float32 sum of the
        log probabilities of the generated ids, and the final state.

    Example:

    >>> table = ops.convert_to_tensor(np.eye(5) * 3.0)  # next id = id
    >>> def step_fn(sequences, index, state):
    ...     previous = ops.take(sequences, index, axis=1)
    ...     return ops.take(ops.roll(table, 1, axis=1), previous, axis=0), ()
    >>> ids, _, _ = greedy_search(step_fn, (), 1, 6, start_id=1, end_id=4)
    >>> ops.convert_to_numpy(ids)
    array([[2, 3, 4, 0, 0, 0]], dtype=int32)
    """
    _check_search_arguments(max_length, start_id, end_id, padding_id)

    def body(index, sequences, finished, log_probs, state):
        logits, state = step_fn(sequences, index, state)
        step_log_probs = _next_log_probs(logits, padding_id)  # (rows, vocab)
        ids = ops.cast(ops.argmax(step_log_probs, axis=-1), "int32")  # (rows,)
        best = ops.max(step_log_probs, axis=-1)  # (rows,)
        ids = ops.where(finished, padding_id, ids)
        log_probs = log_probs + ops.where(finished, 0.0, best)
        if end_id is not None:
            finished = ops.logical_or(finished, ops.equal(ids, end_id))
        sequences = _write(sequences, index + 1, ids)
        return index + 1, sequences, finished, log_probs, state

    loop_vars = (
        ops.convert_to_tensor(0, dtype="int32"),
        _initial_sequences(batch_size, max_length, start_id, padding_id),
        ops.zeros((batch_size,), dtype="bool"),
        ops.zeros((batch_size,), dtype="float32"),
        state,
    )
    _, sequences, _, log_probs, state = ops.while_loop(
        _not_all_finished(end_id),
        body,
        loop_vars,
        maximum_iterations=max_length,
    )
    return sequences[:, 1:], log_probs, state


def beam_search(
    step_fn,
    state,
    batch_size,
    max_length,
    start_id,
    end_id=None,
    beam_width=4,
    length_penalty=0.6,
    padding_id=0,
    return_all_beams=False,
):
    """Beam search with a GNMT length penalty.

    Keeps the `beam_width` best hypotheses of every example. At each step
    every hypothesis is extended by every id, and the `beam_width` best
    candidates of the example survive, ranked by their score
    `log_prob / ((5 + length) / 6) ** length_penalty` (see
    `length_penalty_factor`; `length` counts the generated ids, end id
    included). A hypothesis that has produced `end_id` is finished: it keeps
    its log probability and length, is extended only by `padding_id`, and
    competes with the unfinished ones for its place in the beam. The loop
    stops when every hypothesis of every example is finished, or after
    `max_length` steps. With `beam_width=1` this is greedy search.

    The `beam_width` hypotheses of example `b` live in rows
    `b * beam_width ... (b + 1) * beam_width - 1` of `sequences` and
    `state`: build the initial state (and anything `step_fn` closes over,
    such as encoder outputs) for `batch_size * beam_width` rows, for
    example with `ops.repeat(x, beam_width, axis=0)`.

    Args:
        step_fn: `(sequences, index, state) -> (logits, state)`, see the
            module docstring, for `batch_size * beam_width` rows.
        state: the initial state for `batch_size * beam_width` rows, or
            `()`.
        batch_size: int or scalar int tensor, the number of examples.
        max_length: int, the most ids to generate (end id included).
        start_id: int, the id every sequence starts from.
        end_id: int or `None`, the id that ends a hypothesis. Defaults to
            `None`.
        beam_width: int, hypotheses kept per example. Defaults to `4`.
        length_penalty: float >= 0, the GNMT `alpha`. Defaults to `0.6`.
        padding_id: int, the id written after the end id, never generated.
            Defaults to `0`.
        return_all_beams: bool, whether to return every hypothesis instead
            of the best one. Defaults to `False`.

    Returns:
        `(ids, scores)`: the best hypothesis of each example, `(batch,
        max_length)` int32 (end id included, `padding_id` after it), and its
        `(batch,)` float32 score. With `return_all_beams=True`, `(batch,
        beam_width, max_length)` ids and `(batch, beam_width)` scores, best
        first.

    References:
        - [Wu et al., 2016](https://arxiv.org/abs/1609.08144), section 7
    """
    _check_search_arguments(max_length, start_id, end_id, padding_id)
    check_beam_arguments(beam_width, length_penalty)
    rows = batch_size * beam_width

    def body(index, sequences, finished, log_probs, lengths, state):
        logits, state = step_fn(sequences, index, state)
        step_log_probs = _next_log_probs(logits, padding_id)  # (rows, vocab)
        vocabulary_size = ops.shape(step_log_probs)[-1]
        # A finished hypothesis is extended by the padding id, at no cost.
        is_padding = ops.equal(
            ops.arange(vocabulary_size, dtype="int32"), padding_id
        )  # (vocab,)
        finished_row = ops.where(is_padding, 0.0, NEGATIVE_INFINITY)
        step_log_probs = ops.where(
            finished[:, None], finished_row[None, :], step_log_probs
        )  # (rows, vocab)
        candidate_log_probs = log_probs[:, None] + step_log_probs
        candidate_lengths = ops.where(finished, lengths, index + 1)  # (rows,)
        candidate_scores = (
            candidate_log_probs
            / length_penalty_factor(candidate_lengths, length_penalty)[:, None]
        )  # (rows, vocab)
        # The best `beam_width` candidates of each example.
        _, best = ops.top_k(
            ops.reshape(candidate_scores, (-1, beam_width * vocabulary_size)),
            k=beam_width,
        )  # (batch, beam)
        parent_beams = best // vocabulary_size  # (batch, beam)
        ids = ops.reshape(best % vocabulary_size, (-1,))  # (rows,)
        example_offsets = ops.arange(ops.shape(best)[0], dtype="int32")
        parents = ops.reshape(
            example_offsets[:, None] * beam_width
            + ops.cast(parent_beams, "int32"),
            (-1,),
        )  # (rows,) the row each surviving candidate extends

        def reorder(x):
            return ops.take(x, parents, axis=0)

        log_probs = ops.reshape(
            ops.take_along_axis(
                ops.reshape(
                    candidate_log_probs, (-1, beam_width * vocabulary_size)
                ),
                best,
                axis=1,
            ),
            (-1,),
        )  # (rows,)
        lengths = reorder(candidate_lengths)
        finished = reorder(finished)
        sequences = _write(reorder(sequences), index + 1, ids)
        if end_id is not None:
            finished = ops.logical_or(finished, ops.equal(ids, end_id))
        state = tree.map_structure(reorder, state)
        return index + 1, sequences, finished, log_probs, lengths, state

    # Only the first beam of each example is alive at the start: the others
    # would duplicate it.
    initial_log_probs = ops.tile(
        ops.convert_to_tensor(
            [[0.0] + [NEGATIVE_INFINITY] * (beam_width - 1)], dtype="float32"
        ),
        (batch_size, 1),
    )  # (batch, beam)
    loop_vars = (
        ops.convert_to_tensor(0, dtype="int32"),
        _initial_sequences(rows, max_length, start_id, padding_id),
        ops.zeros((rows,), dtype="bool"),
        ops.reshape(initial_log_probs, (-1,)),
        ops.zeros((rows,), dtype="int32"),
        state,
    )
    _, sequences, _, log_probs, lengths, _ = ops.while_loop(
        _not_all_finished(end_id),
        body,
        loop_vars,
        maximum_iterations=max_length,
    )
    scores = log_probs / length_penalty_factor(lengths, length_penalty)
    scores = ops.reshape(scores, (-1, beam_width))  # (batch, beam)
    sequences = ops.reshape(
        sequences[:, 1:], (-1, beam_width, max_length)
    )  # (batch, beam, max_length)
    order = ops.argsort(-scores, axis=-1)  # (batch, beam), best first
    scores = ops.take_along_axis(scores, order, axis=1)
    sequences = ops.take_along_axis(sequences, order[:, :, None], axis=1)
    if return_all_beams:
        return sequences, scores
    return sequences[:, 0], scores[:, 0]
