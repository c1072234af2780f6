"""TensorFlow's attention kernels: one batched matmul, and cache-sized tiles.

* `_dense_attention` is one batched matmul over all heads, keeping the
  `(batch, heads, q_len, k_len)` weights.
* `_tiled_attention` runs tile by tile: a tile is one head and a block of
  query rows against all keys, with its exact softmax, sized so that its
  float32 scores (16 MiB) stay in the CPU's last-level cache. With
  `keep_weights` it keeps each tile's weights for the backward pass (the
  dense implementation of long sequences); otherwise its hand-written
  gradient recomputes them tile by tile, so memory grows linearly with the
  length (the chunked implementation). A causal tile multiplies only the
  keys up to its last query (about half the work of full attention; under
  XLA, whose slices need static sizes, the row tiles are unrolled when the
  lengths are static, and with dynamic lengths the keys past the diagonal
  are masked instead), a windowed one only its window's span.

Separate passes over a large score matrix are memory-bound; over a tile in
cache they are not, which makes the tiled path faster than one big batched
matmul at 2k tokens (forward+backward: 2.7x with TensorFlow's stock CPU
kernels, 1.15x with oneDNN's, 1.5x under XLA). Where the two cross depends
on the kernels (`DENSE_TILE_MIN_BYTES`), which `dense_tile_min_bytes()`
reports to `dispatch.choose_strategy`.

float16 queries and keys are multiplied in float32, as float16 scores
overflow past 65504 (bfloat16 has float32's range and keeps its own
matmul).
"""

import functools

import tensorflow as tf

from keras_attention.ops.attention.reference import MASKED_SCORE
from keras_attention.ops.attention.reference import full_mask
from keras_attention.ops.attention.reference import logits
from keras_attention.ops.attention.reference import rows_with_keys
from keras_attention.ops.dropout import dropout
from keras_attention.ops.dropout.tensorflow_kernels import dropout_multiplier
from keras_attention.ops.dropout.tensorflow_kernels import seed_tensor

__all__ = ["attention", "dense_tile_min_bytes"]

# Both implementations work on tiles of (one head, `rows` queries) against
# all keys, so that a tile's float32 scores stay in cache: with
# `chunk_size=None`, `rows` is the most that fits TILE_BUDGET_BYTES.
# Measured on a 2-core machine with a 32 MiB L3: 16 MiB beats 8 MiB by
# about 1.1x at 4k tokens and ties at 2k and 8k; 32 MiB and more lose.
TILE_BUDGET_BYTES = 16 * 2**20
# ... and at most this many rows: under XLA a (2048, 2048) tile ran at 0.6 of
# the matmul roof where two (1024, 2048) tiles ran at 0.8 (graph mode: tie).
MAX_TILE_ROWS = 1024
# The dense implementation tiles only when one head's float32 scores take at
# least this much; below it one batched matmul is faster, as the loop's
# per-tile overhead outweighs the cache savings. Where the two cross depends
# on the matmul kernels the program runs on (forward+backward, 8 heads,
# d_head 64, 4,096 tokens a batch, 2-core x86; time tiled / batched):
# - "eigen", TensorFlow's stock CPU kernels: 0.72 at 256 keys, 1.17 at 128;
# - "onednn", the oneDNN kernels TensorFlow enables on CPUs with AVX-512
#   (their batched matmul is 2-3x faster on short sequences): 0.89 at 1,024
#   keys, 1.05 at 512, 1.37 at 256;
# - "xla", inside `jit_compile=True`: 0.76 at 512 keys, 0.95-1.24 at 256.
DENSE_TILE_MIN_BYTES = {
    "eigen": 256 * 256 * 4,
    "onednn": 1024 * 1024 * 4,
    "xla": 512 * 512 * 4,
}
# Two tiles in flight keep both cores of a small machine busy while bounding
# memory to a couple of tiles.
_PARALLEL_ITERATIONS = 2
# Under XLA a causal tile can stop at the diagonal only if its span is a
# size known at compile time: the row tiles are then unrolled, one loop over
# the heads each, up to this many (32k tokens in tiles of 1,024 rows: 32).
MAX_UNROLLED_ROW_TILES = 64


def _score_dtype(dtype):
    """The dtype of the `Q K^T` matmul: float32 for float16 inputs."""
    return tf.float32 if dtype == tf.float16 else dtype


def _dense_attention(
    query,
    key,
    value,
    mask,
    scale,
    dropout_rate,
    seed,
    return_weights,
    soft_cap=None,
    bias=None,
):
    """One batched matmul over all heads; returns (output, weights|None).

    The heads are moved in front with explicit transposes so that both
    products are plain batched matmuls: `einsum` would contract the keys
    through an adjoint matmul, which is about 1.4x slower on CPU for short
    sequences (forward+backward, measured at 64 tokens).
    """
    dtype, score_dtype = value.dtype, _score_dtype(value.dtype)
    query = tf.transpose(
        tf.cast(query, score_dtype) * tf.cast(scale, score_dtype), [0, 2, 1, 3]
    )
    keys_t = tf.transpose(tf.cast(key, score_dtype), [0, 2, 3, 1])  # (b,h,d,k)
    values = tf.transpose(value, [0, 2, 1, 3])  # (b, h, k, dv)
    scores = tf.cast(tf.matmul(query, keys_t), tf.float32)  # (b, h, q, k)
    scores = logits(scores, soft_cap, bias)
    if mask is not None:
        scores = tf.where(mask, scores, MASKED_SCORE)
    weights = tf.cast(tf.nn.softmax(scores), dtype)
    attended = weights
    if dropout_rate > 0.0:
        attended = dropout(weights, dropout_rate, seed=seed)
    output = tf.matmul(attended, values)  # (b, h, q, dv)
    if mask is not None:
        # A row with no key to attend to came out of the softmax uniform:
        # zeroing its (q, dv) output is cheaper than its (q, k) weights.
        has_keys = tf.cast(rows_with_keys(mask), dtype)
        output = output * has_keys
        if return_weights:
            weights = weights * has_keys
    return tf.transpose(output, [0, 2, 1, 3]), (
        weights if return_weights else None
    )


def _tile_rows(key, window=None, causal=False):
    """Query rows per tile so that one float32 score tile fits the budget.

    With a sliding window a tile spans `rows + window - 1` keys (twice the
    window without `causal`): tiles of `MAX_TILE_ROWS` rows, within the
    budget, amortize the overlap of neighbouring tiles' spans best.
    """
    k_len = key.shape[1]
    if window is not None:
        reach = window - 1 if causal else 2 * (window - 1)
        rows = MAX_TILE_ROWS
        while rows > 1 and rows * (rows + reach) * 4 > TILE_BUDGET_BYTES:
            rows //= 2
        if k_len is None or rows + reach < k_len:
            return rows
    if k_len is not None:
        rows = TILE_BUDGET_BYTES // (4 * max(k_len, 1))
        return max(1, min(rows, MAX_TILE_ROWS))
    rows = TILE_BUDGET_BYTES // (4 * tf.shape(key)[1])
    return tf.maximum(1, tf.minimum(rows, MAX_TILE_ROWS))


@functools.cache
def _gpu_visible():
    """Whether TensorFlow sees a GPU.

    Fixed once TensorFlow has started, hence cached: `dense_tile_min_bytes`
    asks at every attention call.
    """
    return bool(tf.config.list_logical_devices("GPU"))


def _cpu_kernels():
    """The kernels the op being traced will run on (a threshold's key)."""
    if _in_xla_context():
        return "xla"
    return "onednn" if _onednn_enabled() else "eigen"


def _in_xla_context():
    """Whether the graph being built will be compiled by XLA.

    TensorFlow has no public API for this; the private helper it uses
    itself is wrapped so that its absence means "no".
    """
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - moved in a future TensorFlow
        return False
    return bool(
        control_flow_util.GraphOrParentsInXlaContext(
            tf.compat.v1.get_default_graph()
        )
    )


@functools.cache
def _onednn_enabled():
    """Whether TensorFlow runs its CPU ops on oneDNN in this process.

    On by default on x86 CPUs with AVX-512 (off with
    `TF_ENABLE_ONEDNN_OPTS=0`). Fixed for the process, hence cached.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # pragma: no cover - moved in a future TensorFlow
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def _static_tiling(query, key, rows):
    """`(rows, row_tiles, offset, k_len)` as Python ints, or `None`.

    The tiling of a causal call under XLA, if its lengths are static and
    it has at most `MAX_UNROLLED_ROW_TILES` row tiles.
    """
    q_len, k_len = query.shape[1], key.shape[1]
    if not q_len or k_len is None or not isinstance(rows, int):
        return None
    if query.shape[0] == 0 or query.shape[2] == 0:
        return None
    rows = max(min(rows, q_len), 1)
    row_tiles = -(-q_len // rows)
    if row_tiles > MAX_UNROLLED_ROW_TILES:
        return None
    return rows, row_tiles, k_len - q_len, k_len


def _tiled_attention(
    query,
    key,
    value,
    mask,
    scale,
    dropout_rate,
    seed,
    rows,
    keep_weights,
    causal=False,
    window=None,
    soft_cap=None,
    bias=None,
):
    """Attention over tiles of (one head, `rows` queries) against its keys.

    Each tile's scores `(rows, span)` are small enough to stay in cache, and
    each tile takes the exact softmax over its keys: all of them, or with a
    sliding `window` only the `span` keys that some query of the tile sees
    (the others are never multiplied, so the cost grows as `n * window`).
    The causal and window masks are built per tile from positions, never as
    an `n^2` tensor. With `keep_weights` the forward pass keeps the weights
    of every tile for the backward pass (the dense implementation: quadratic
    memory, no recomputation); otherwise the backward pass recomputes them
    tile by tile from the queries and keys (the chunked implementation:
    memory linear in the sequence length). `bias` (rank 4, broadcastable to
    the scores) gets its gradient too.
    """
    dtype, score_dtype = query.dtype, _score_dtype(query.dtype)
    # A soft cap needs its tanh in the backward pass: recompute it.
    keep_weights = keep_weights and soft_cap is None
    q_shape = tf.shape(query)
    batch, q_len, heads, depth = q_shape[0], q_shape[1], q_shape[2], q_shape[3]
    k_len = tf.shape(key)[1]
    v_depth = tf.shape(value)[3]
    xla = _in_xla_context()
    static = None
    if causal and window is None and xla:
        static = _static_tiling(query, key, rows)
    rows = tf.maximum(tf.minimum(rows, q_len), 1)
    row_tiles = (q_len + rows - 1) // rows
    pad = row_tiles * rows - q_len
    num_heads = batch * heads
    num_tiles = num_heads * row_tiles
    offset = k_len - q_len  # bottom-right alignment of causal and window
    if window is None:
        span = k_len
    else:
        # Keys some query of a tile may see: its rows' windows together.
        reach = window - 1 if causal else 2 * (window - 1)
        static_k_len = key.shape[1]
        static_rows = tf.get_static_value(rows)
        if static_k_len is not None and static_rows is not None:
            span = min(static_k_len, int(static_rows) + reach)
        else:
            span = tf.minimum(k_len, rows + reach)

    # Causal tiles stop at the diagonal: a row tile multiplies only the keys
    # up to its last query (half the work of full attention). Under XLA,
    # whose slices need sizes known at compile time, they do so with static
    # lengths, the row tiles unrolled (`static`: the tiling as Python ints,
    # every tile function then takes its static `row_tile`); with dynamic
    # lengths they keep all keys (the keys past the diagonal masked).
    stops_at_diagonal = causal and window is None and (not xla or bool(static))

    def key_range(i, row_tile=None):
        """`(start, size)`: the keys of tile i's span."""
        if stops_at_diagonal and row_tile is not None:
            static_rows, _, static_offset, static_k_len = static
            last_row = row_tile * static_rows + static_rows - 1 + static_offset
            return 0, min(max(last_row + 1, 0), static_k_len)
        if stops_at_diagonal:
            last_row = (i % row_tiles) * rows + rows - 1 + offset
            return 0, tf.clip_by_value(last_row + 1, 0, k_len)
        if window is None:
            return 0, span
        first_row = (i % row_tiles) * rows + offset
        start = tf.clip_by_value(first_row - (window - 1), 0, k_len - span)
        return start, span

    def rows_of(x):
        """Rank-4 `x` broadcast over query rows and padded to the tiles."""
        x_shape = tf.shape(x)
        x = tf.broadcast_to(
            x, tf.stack([x_shape[0], x_shape[1], q_len, x_shape[3]])
        )
        return tf.pad(x, [[0, 0], [0, 0], [0, pad], [0, 0]])

    def tile_of(x, i, cols):
        """The (rows|1, span|1) block of rank-4 `x` that tile i reads."""
        head, row_tile = i // row_tiles, i % row_tiles
        x_shape = tf.shape(x)
        block = x[
            tf.minimum(head // heads, x_shape[0] - 1),
            tf.minimum(head % heads, x_shape[1] - 1),
        ]
        row_begin, row_size = (
            (row_tile * rows, rows) if x.shape[2] != 1 else (0, 1)
        )
        col_begin, col_size = cols if x.shape[3] != 1 else (0, 1)
        # Sizes, not ends, so that XLA sees fixed-size slices.
        return tf.slice(
            block,
            tf.stack([row_begin, col_begin]),
            tf.stack([row_size, col_size]),
        )

    if mask is not None and mask.shape[2] != 1:
        mask = rows_of(mask)
    if bias is not None and bias.shape[2] != 1:
        bias = rows_of(bias)

    def position_mask(i, cols):
        """Causal/window mask (rows, span) of tile i, or `None`."""
        if not causal and window is None:
            return None
        query_pos = (i % row_tiles) * rows + offset + tf.range(rows)[:, None]
        start, size = cols
        key_pos = start + tf.range(size)[None, :]
        distance = query_pos - key_pos  # (rows, span)
        if window is None:
            return distance >= 0
        if causal:
            return (distance >= 0) & (distance < window)
        return tf.abs(distance) < window

    def tile_mask(i, cols):
        """Boolean (rows|1, span|1) mask of tile i, or `None`."""
        block = None if mask is None else tile_of(mask, i, cols)
        positions = position_mask(i, cols)
        if positions is None:
            return block
        return positions if block is None else block & positions

    def keep_in_tile(i, cols):
        return dropout_multiplier(
            tf.stack([rows, cols[1]]), dropout_rate, seed + tf.stack([0, i])
        )

    def to_tiles(x, x_depth):
        # (b, h, q, d) -> (b * h * row_tiles, rows, d)
        x = tf.pad(x, [[0, 0], [0, 0], [0, pad], [0, 0]])
        return tf.reshape(x, tf.stack([num_tiles, rows, x_depth]))

    def from_tiles(x, x_depth):
        # (b * h * row_tiles, rows, d) -> (b, q, h, d)
        x = tf.reshape(x, tf.stack([batch, heads, row_tiles * rows, x_depth]))
        return tf.transpose(x[:, :, :q_len], [0, 2, 1, 3])

    all_keys = window is None and not stops_at_diagonal

    def to_all_keys(x, cols):
        """(..., span) columns of the keys `cols` -> (..., k_len)."""
        if all_keys:
            return x
        start, size = cols
        return tf.pad(x, [[0, 0], [start, k_len - start - size]])

    def span_of(x, head, cols, x_depth, axis):
        """Head `head` of `x` (keys on `axis`), sliced to a tile's span."""
        if all_keys:
            return x[head]
        begin, size = [0, 0], [x_depth, x_depth]
        begin[axis], size[axis] = cols
        return tf.slice(x[head], tf.stack(begin), tf.stack(size))

    @tf.custom_gradient
    def attention(query, key, value, *biases):
        # Eagerly, an outer GradientTape would record every op of the
        # forward pass, and so keep every tile's weights (n^2 memory): the
        # gradient comes from `grad` below, so nothing here is recorded.
        query, key, value = (tf.stop_gradient(x) for x in (query, key, value))
        biases = tuple(tf.stop_gradient(b) for b in biases)
        q_tiles = to_tiles(
            tf.transpose(tf.cast(query, score_dtype), [0, 2, 1, 3])
            * tf.cast(scale, score_dtype),
            depth,
        )  # (tiles, rows, d)
        keys_t = tf.reshape(
            tf.transpose(tf.cast(key, score_dtype), [0, 2, 3, 1]),
            tf.stack([num_heads, depth, k_len]),
        )  # (b*h, d, k)
        values = tf.reshape(
            tf.transpose(value, [0, 2, 1, 3]),
            tf.stack([num_heads, k_len, v_depth]),
        )  # (b*h, k, dv)

        def tile_weights(i, row_tile=None):
            """Softmax weights (rows, span) of tile i, its rows with keys, and
            the tanh of its capped scores (`None` without a soft cap).

            One fused softmax kernel makes fewer passes over the tile than
            separate max, subtract, exp and sum ops (1.4x faster measured on
            a (1024, 2048) tile).
            """
            cols = key_range(i, row_tile)
            scores = tf.cast(
                tf.matmul(
                    q_tiles[i], span_of(keys_t, i // row_tiles, cols, depth, 1)
                ),
                tf.float32,
            )
            capped = None
            if soft_cap is not None:
                capped = tf.tanh(scores / soft_cap)
                scores = capped * soft_cap
            if biases:
                scores += tf.maximum(
                    tf.cast(tile_of(biases[0], i, cols), tf.float32),
                    MASKED_SCORE,
                )
            block = tile_mask(i, cols)
            if block is None:
                return tf.nn.softmax(scores), None, capped
            scores = tf.where(block, scores, MASKED_SCORE)
            # A row with no keys comes out uniform; it is zeroed through its
            # (rows, dv) output rather than its (rows, span) weights.
            return tf.nn.softmax(scores), rows_with_keys(block), capped

        def tile_output(i, row_tile=None):
            """Tile i's (rows, dv) float32 output and (rows, span) weights."""
            cols = key_range(i, row_tile)
            weights, has_keys, _ = tile_weights(i, row_tile)
            attended = weights
            if dropout_rate > 0.0:
                attended = weights * keep_in_tile(i, cols)
            values_i = span_of(values, i // row_tiles, cols, v_depth, 0)
            out = tf.matmul(tf.cast(attended, dtype), values_i)
            out = tf.cast(out, tf.float32)
            if has_keys is not None:
                out = out * has_keys
            return out, weights

        def forward_step(i, outputs, *kept):
            out, weights = tile_output(i)
            if keep_weights:
                kept = (kept[0].write(i, weights),)
            return (i + 1, outputs.write(i, out)) + kept

        def row_tile_forward(row_tile, outputs):
            """The loop over heads of one (unrolled) row tile."""

            def head_step(head, outputs, *kept):
                i = head * row_tiles + row_tile
                out, weights = tile_output(i, row_tile)
                if keep_weights:
                    kept = (kept[0].write(head, weights),)
                return (head + 1, outputs.write(i, out)) + kept

            return tf.while_loop(
                lambda head, *_: head < num_heads,
                head_step,
                (tf.constant(0), outputs)
                + (
                    (tf.TensorArray(tf.float32, size=num_heads),)
                    if keep_weights
                    else ()
                ),
                parallel_iterations=_PARALLEL_ITERATIONS,
            )[1:]

        outputs = tf.TensorArray(tf.float32, size=num_tiles)
        if static:
            # kept[row_tile] holds that row tile's weights, by head.
            kept = []
            for row_tile in range(static[1]):
                outputs, *row_kept = row_tile_forward(row_tile, outputs)
                kept += row_kept
        else:
            # kept[0] holds every tile's weights.
            _, outputs, *kept = tf.while_loop(
                lambda i, *_: i < num_tiles,
                forward_step,
                (tf.constant(0), outputs)
                + (
                    # Causal tiles' weights differ in width.
                    (
                        tf.TensorArray(
                            tf.float32,
                            size=num_tiles,
                            infer_shape=not stops_at_diagonal,
                        ),
                    )
                    if keep_weights
                    else ()
                ),
                parallel_iterations=_PARALLEL_ITERATIONS,
            )
        # The reshape gives an empty batch its (0, rows, dv) shape back.
        out_tiles = tf.reshape(
            outputs.stack(), tf.stack([num_tiles, rows, v_depth])
        )  # (tiles, rows, dv) float32
        output = tf.cast(from_tiles(out_tiles, v_depth), dtype)

        def grad(d_output):
            d_out = to_tiles(tf.transpose(d_output, [0, 2, 1, 3]), v_depth)
            # rowsum(P * dP), P the softmax weights and dP their gradient,
            # equals rowsum(dO * O): one (rows, dv) pass instead of (rows, k).
            delta = tf.reduce_sum(
                tf.cast(d_out, tf.float32) * out_tiles, -1, keepdims=True
            )  # (tiles, rows, 1)
            values_t = tf.transpose(values, [0, 2, 1])  # (b*h, dv, k)
            keys = tf.transpose(keys_t, [0, 2, 1])  # (b*h, k, d)

            def tile_grads(i, head, d_keys_t, d_values_t, row_tile=None):
                d_out_i, delta_i = d_out[i], delta[i]  # (rows, dv), (rows, 1)
                cols = key_range(i, row_tile)
                capped = None
                if keep_weights:
                    if row_tile is None:
                        weights = kept[0].read(i)
                    else:
                        weights = kept[row_tile].read(head)
                    weights.set_shape([None, None])  # (rows, span)
                    block = tile_mask(i, cols)
                    has_keys = None if block is None else rows_with_keys(block)
                else:
                    weights, has_keys, capped = tile_weights(i, row_tile)
                if has_keys is not None:
                    # Rows without keys had their output zeroed.
                    d_out_i = d_out_i * tf.cast(has_keys, dtype)
                d_weights = tf.cast(
                    tf.matmul(
                        d_out_i, span_of(values_t, head, cols, v_depth, 1)
                    ),
                    tf.float32,
                )  # (rows, span)
                attended = weights
                if dropout_rate > 0.0:
                    keep = keep_in_tile(i, cols)
                    attended = weights * keep
                    d_weights = d_weights * keep
                d_logits = weights * (d_weights - delta_i)  # (rows, span)
                d_scores = d_logits
                if capped is not None:
                    d_scores = d_logits * (1.0 - tf.square(capped))
                d_scores = tf.cast(d_scores, score_dtype)
                d_q = tf.cast(
                    tf.matmul(d_scores, span_of(keys, head, cols, depth, 0)),
                    dtype,
                )
                d_keys_t += to_all_keys(
                    tf.cast(
                        tf.matmul(q_tiles[i], d_scores, transpose_a=True),
                        tf.float32,
                    ),
                    cols,
                )  # (d, k)
                d_values_t += to_all_keys(
                    tf.cast(
                        tf.matmul(
                            d_out_i, tf.cast(attended, dtype), transpose_a=True
                        ),
                        tf.float32,
                    ),
                    cols,
                )  # (dv, k)
                return d_q, d_keys_t, d_values_t, bias_part(d_logits, cols)

            def bias_part(d_logits, cols):
                """Tile i's share of the bias gradient, reduced to its shape."""
                if not biases:
                    return None
                if biases[0].shape[2] == 1:
                    d_logits = tf.reduce_sum(d_logits, 0, keepdims=True)
                if biases[0].shape[3] == 1:
                    return tf.reduce_sum(d_logits, 1, keepdims=True)
                return to_all_keys(d_logits, cols)

            def row_step(
                j, head, d_queries, d_keys_t, d_values_t, *d_bias, row_tile
            ):
                """Tile `(head, j)`'s gradients (`row_tile`: j, if static)."""
                i = head * row_tiles + j
                d_q, d_keys_t, d_values_t, part = tile_grads(
                    i, head, d_keys_t, d_values_t, row_tile
                )
                if d_bias:
                    d_bias = (d_bias[0].write(i, part),)
                return (
                    j + 1,
                    d_queries.write(i, d_q),
                    d_keys_t,
                    d_values_t,
                ) + tuple(d_bias)

            def head_step(head, d_queries, d_keys, d_values, *d_bias):
                state = (
                    d_queries,
                    tf.zeros(tf.stack([depth, k_len]), tf.float32),
                    tf.zeros(tf.stack([v_depth, k_len]), tf.float32),
                ) + tuple(d_bias)
                if static:
                    for row_tile in range(static[1]):
                        state = row_step(
                            row_tile, head, *state, row_tile=row_tile
                        )[1:]
                else:
                    state = tf.while_loop(
                        lambda j, *_: j < row_tiles,
                        lambda j, *state: row_step(
                            j, head, *state, row_tile=None
                        ),
                        (tf.constant(0),) + state,
                        parallel_iterations=_PARALLEL_ITERATIONS,
                    )[1:]
                d_queries, d_keys_t, d_values_t, *d_bias = state
                return (
                    head + 1,
                    d_queries,
                    d_keys.write(head, tf.cast(d_keys_t, dtype)),
                    d_values.write(head, tf.cast(d_values_t, dtype)),
                ) + tuple(d_bias)

            _, d_queries, d_keys, d_values, *d_bias = tf.while_loop(
                lambda head, *_: head < num_heads,
                head_step,
                (
                    tf.constant(0),
                    tf.TensorArray(dtype, size=num_tiles),
                    tf.TensorArray(dtype, size=num_heads),
                    tf.TensorArray(dtype, size=num_heads),
                )
                + (
                    (tf.TensorArray(tf.float32, size=num_tiles),)
                    if biases
                    else ()
                ),
                parallel_iterations=1,
            )
            d_query = from_tiles(d_queries.stack(), depth) * tf.cast(
                scale, dtype
            )

            def from_heads(x, x_depth):
                # (b * h, d, k) -> (b, k, h, d)
                x = tf.reshape(x, tf.stack([batch, heads, x_depth, k_len]))
                return tf.transpose(x, [0, 3, 1, 2])

            grads = [
                d_query,
                from_heads(d_keys.stack(), depth),
                from_heads(d_values.stack(), v_depth),
            ]
            if biases:
                grads.append(bias_gradient(d_bias[0].stack(), biases[0]))
            return grads

        return output, grad

    def bias_gradient(parts, bias):
        """Per-tile bias gradients (tiles, rows|1, k|1) -> `bias`'s shape."""
        bias_rows = rows if bias.shape[2] != 1 else 1
        cols = tf.shape(parts)[2]
        parts = tf.reshape(
            parts, tf.stack([batch, heads, row_tiles, bias_rows, cols])
        )
        if bias.shape[2] == 1:
            parts = tf.reduce_sum(parts, 2)  # (b, h, 1, cols)
        else:
            # `bias` was padded to the tiles' rows: so is its gradient.
            parts = tf.reshape(
                parts, tf.stack([batch, heads, row_tiles * rows, cols])
            )
        b_shape = tf.shape(bias)
        if bias.shape[0] == 1:
            parts = tf.reduce_sum(parts, 0, keepdims=True)
        if bias.shape[1] == 1:
            parts = tf.reduce_sum(parts, 1, keepdims=True)
        return tf.cast(tf.reshape(parts, b_shape), bias.dtype)

    extra = () if bias is None else (bias,)
    return attention(query, key, value, *extra)


def dense_tile_min_bytes():
    """The score size from which the dense implementation tiles, or `None`.

    Tiles are sized for CPU caches and measured on CPUs only; a GPU keeps
    the single batched matmul it is built for (`None`).
    """
    if _gpu_visible():
        return None
    return DENSE_TILE_MIN_BYTES[_cpu_kernels()]


def attention(
    query,
    key,
    value,
    mask,
    causal,
    scale,
    dropout_rate,
    seed,
    strategy,
    return_weights,
    bias=None,
    window=None,
    soft_cap=None,
):
    """Runs `strategy` (`"dense"` or `"tiled"`); returns (output, weights)."""
    if strategy.kernel == "dense":
        mask = full_mask(
            mask, causal, tf.shape(query)[1], tf.shape(key)[1], window
        )
        return _dense_attention(
            query,
            key,
            value,
            mask,
            scale,
            dropout_rate,
            seed,
            return_weights,
            soft_cap=soft_cap,
            bias=bias,
        )
    output = _tiled_attention(
        query,
        key,
        value,
        mask,
        scale,
        dropout_rate,
        seed_tensor(seed) if dropout_rate > 0.0 else None,
        strategy.chunk_size or _tile_rows(key, window, causal),
        keep_weights=strategy.keep_weights,
        causal=causal,
        window=window,
        soft_cap=soft_cap,
        bias=bias,
    )
    return output, None
