"""TensorFlow's attention kernels: one batched matmul, and cache-sized tiles.

* `_dense_attention` is one batched matmul over all heads, keeping the
  `(batch, heads, q_len, k_len)` weights.
* `_tiled_attention` runs tile by tile: a tile is one head and a block of
  query rows against all keys, with its exact softmax, sized so that its
  float32 scores (16 MiB) stay in the CPU's last-level cache. With
  `keep_weights` it keeps each tile's weights for the backward pass (the
  dense implementation of long sequences); otherwise its hand-written
  gradient recomputes them tile by tile, so memory grows linearly with the
  length (the chunked implementation).

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


def _score_dtype(dtype):
    """The dtype of the `Q K^T` matmul: float32 for float16 inputs."""
    return tf.float32 if dtype == tf.float16 else dtype


def _dense_attention(
    query, key, value, mask, scale, dropout_rate, seed, return_weights
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


def _tile_rows(key):
    """Query rows per tile so that one float32 score tile fits the budget."""
    k_len = key.shape[1]
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
):
    """Attention over tiles of (one head, `rows` queries) against all keys.

    Each tile's scores `(rows, k_len)` are small enough to stay in cache, and
    each tile takes the exact softmax over all its keys. With `keep_weights`
    the forward pass keeps the weights of every tile for the backward pass
    (the dense implementation: quadratic memory, no recomputation);
    otherwise the backward pass recomputes the weights tile by tile from
    the queries and keys (the chunked implementation: memory linear in the
    sequence length).
    """
    dtype, score_dtype = query.dtype, _score_dtype(query.dtype)
    q_shape = tf.shape(query)
    batch, q_len, heads, depth = q_shape[0], q_shape[1], q_shape[2], q_shape[3]
    k_len = tf.shape(key)[1]
    v_depth = tf.shape(value)[3]
    rows = tf.maximum(tf.minimum(rows, q_len), 1)
    row_tiles = (q_len + rows - 1) // rows
    pad = row_tiles * rows - q_len
    num_heads = batch * heads
    num_tiles = num_heads * row_tiles
    mask_has_rows = mask is not None and mask.shape[2] != 1
    if mask is not None:
        m_shape = tf.shape(mask)
        mask_batch, mask_heads = m_shape[0], m_shape[1]
        if mask_has_rows:
            mask = tf.broadcast_to(
                mask, tf.stack([mask_batch, mask_heads, q_len, m_shape[3]])
            )
            mask = tf.pad(mask, [[0, 0], [0, 0], [0, pad], [0, 0]])

    def tile_mask(i):
        """Boolean (rows|1, k_len|1) mask of tile i."""
        head, row_tile = i // row_tiles, i % row_tiles
        block = mask[
            tf.minimum(head // heads, mask_batch - 1),
            tf.minimum(head % heads, mask_heads - 1),
        ]
        if mask_has_rows:
            # A size, not an end, so that XLA sees a fixed-size slice.
            block = tf.slice(block, tf.stack([row_tile * rows, 0]), [rows, -1])
        return block

    def keep_in_tile(i):
        return dropout_multiplier(
            tf.stack([rows, k_len]), dropout_rate, seed + tf.stack([0, i])
        )

    def to_tiles(x, x_depth):
        # (b, h, q, d) -> (b * h * row_tiles, rows, d)
        x = tf.pad(x, [[0, 0], [0, 0], [0, pad], [0, 0]])
        return tf.reshape(x, tf.stack([num_tiles, rows, x_depth]))

    def from_tiles(x, x_depth):
        # (b * h * row_tiles, rows, d) -> (b, q, h, d)
        x = tf.reshape(x, tf.stack([batch, heads, row_tiles * rows, x_depth]))
        return tf.transpose(x[:, :, :q_len], [0, 2, 1, 3])

    @tf.custom_gradient
    def attention(query, key, value):
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

        def tile_weights(i):
            """Softmax weights (rows, k) of tile i and its rows with keys.

            One fused softmax kernel makes fewer passes over the tile than
            separate max, subtract, exp and sum ops (1.4x faster measured on
            a (1024, 2048) tile).
            """
            scores = tf.cast(
                tf.matmul(q_tiles[i], keys_t[i // row_tiles]), tf.float32
            )
            if mask is None:
                return tf.nn.softmax(scores), None
            block = tile_mask(i)
            scores = tf.where(block, scores, MASKED_SCORE)
            # A row with no keys comes out uniform; it is zeroed through its
            # (rows, dv) output rather than its (rows, k) weights.
            return tf.nn.softmax(scores), rows_with_keys(block)

        def forward_step(i, outputs, *kept):
            weights, has_keys = tile_weights(i)  # (rows, k) float32
            if keep_weights:
                kept = (kept[0].write(i, weights),)
            if dropout_rate > 0.0:
                weights = weights * keep_in_tile(i)
            out = tf.matmul(tf.cast(weights, dtype), values[i // row_tiles])
            out = tf.cast(out, tf.float32)  # (rows, dv)
            if has_keys is not None:
                out = out * has_keys
            return (i + 1, outputs.write(i, out)) + kept

        _, outputs, *kept = tf.while_loop(
            lambda i, *_: i < num_tiles,
            forward_step,
            (
                tf.constant(0),
                tf.TensorArray(tf.float32, size=num_tiles),
            )
            + (
                (tf.TensorArray(tf.float32, size=num_tiles),)
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

            def tile_grads(i, head, d_keys_t, d_values_t):
                d_out_i, delta_i = d_out[i], delta[i]  # (rows, dv), (rows, 1)
                if keep_weights:
                    weights = kept[0].read(i)
                    has_keys = (
                        None if mask is None else rows_with_keys(tile_mask(i))
                    )
                else:
                    weights, has_keys = tile_weights(i)
                if has_keys is not None:
                    # Rows without keys had their output zeroed.
                    d_out_i = d_out_i * tf.cast(has_keys, dtype)
                d_weights = tf.cast(
                    tf.matmul(d_out_i, values_t[head]), tf.float32
                )  # (rows, k)
                attended = weights
                if dropout_rate > 0.0:
                    keep = keep_in_tile(i)
                    attended = weights * keep
                    d_weights = d_weights * keep
                d_scores = tf.cast(weights * (d_weights - delta_i), score_dtype)
                d_q = tf.cast(tf.matmul(d_scores, keys[head]), dtype)
                d_keys_t += tf.cast(
                    tf.matmul(q_tiles[i], d_scores, transpose_a=True),
                    tf.float32,
                )  # (d, k)
                d_values_t += tf.cast(
                    tf.matmul(
                        d_out_i, tf.cast(attended, dtype), transpose_a=True
                    ),
                    tf.float32,
                )  # (dv, k)
                return d_q, d_keys_t, d_values_t

            def head_step(head, d_queries, d_keys, d_values):
                def row_step(j, d_queries, d_keys_t, d_values_t):
                    i = head * row_tiles + j
                    d_q, d_keys_t, d_values_t = tile_grads(
                        i, head, d_keys_t, d_values_t
                    )
                    return j + 1, d_queries.write(i, d_q), d_keys_t, d_values_t

                _, d_queries, d_keys_t, d_values_t = tf.while_loop(
                    lambda j, *_: j < row_tiles,
                    row_step,
                    (
                        tf.constant(0),
                        d_queries,
                        tf.zeros(tf.stack([depth, k_len]), tf.float32),
                        tf.zeros(tf.stack([v_depth, k_len]), tf.float32),
                    ),
                    parallel_iterations=_PARALLEL_ITERATIONS,
                )
                return (
                    head + 1,
                    d_queries,
                    d_keys.write(head, tf.cast(d_keys_t, dtype)),
                    d_values.write(head, tf.cast(d_values_t, dtype)),
                )

            _, d_queries, d_keys, d_values = tf.while_loop(
                lambda head, *_: head < num_heads,
                head_step,
                (
                    tf.constant(0),
                    tf.TensorArray(dtype, size=num_tiles),
                    tf.TensorArray(dtype, size=num_heads),
                    tf.TensorArray(dtype, size=num_heads),
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

            return (
                d_query,
                from_heads(d_keys.stack(), depth),
                from_heads(d_values.stack(), v_depth),
            )

        return output, grad

    return attention(query, key, value)


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
):
    """Runs `strategy` (`"dense"` or `"tiled"`); returns (output, weights)."""
    mask = full_mask(mask, causal, tf.shape(query)[1], tf.shape(key)[1])
    if strategy.kernel == "dense":
        return _dense_attention(
            query, key, value, mask, scale, dropout_rate, seed, return_weights
        )
    output = _tiled_attention(
        query,
        key,
        value,
        mask,
        scale,
        dropout_rate,
        seed_tensor(seed) if dropout_rate > 0.0 else None,
        strategy.chunk_size or _tile_rows(key),
        keep_weights=strategy.keep_weights,
    )
    return output, None
