"""Scaled dot-product attention: the one place the formula lives.

`softmax(Q K^T / sqrt(d_k)) V` with two implementations behind one signature:

* `"dense"` keeps the `(batch, heads, q_len, k_len)` weights for the
  backward pass (memory quadratic in the length, no recomputation), except
  in an inference call (`training=False`).
* `"chunked"` keeps only the output and recomputes the weights tile by tile
  in the backward pass, so memory grows linearly with the length.

Long sequences run tile by tile: a tile is one head and a block of query
rows against all keys, with its exact softmax, sized so that its float32
scores (16 MiB) stay in the CPU's last-level cache. Separate passes over a
large score matrix are memory-bound; over a tile in cache they are not,
which makes the tiled path faster than one big batched matmul at 2k tokens
(forward+backward: 2.7x with TensorFlow's stock CPU kernels, 1.15x with
oneDNN's, 1.5x under XLA). Short sequences use one batched matmul; where
the two cross depends on the kernels (`DENSE_TILE_MIN_BYTES`).

Both give the same output and gradients. Scores and softmax statistics are
kept in float32 whatever the input dtype, so float16 and bfloat16 inputs
never overflow in the mask; float16 queries and keys are multiplied in
float32 too, as float16 scores overflow past 65504 (bfloat16 has float32's
range and keeps its own matmul). A query row whose keys are all masked gets
zero weights and a zero output (never NaN).
"""

import functools
import math
import numbers

import keras
import tensorflow as tf
from keras import ops

from keras_attention.ops.dropout import dropout
from keras_attention.ops.dropout import dropout_multiplier
from keras_attention.ops.dropout import seed_tensor
from keras_attention.ops.masks import causal_mask

__all__ = ["scaled_dot_product_attention", "masked_softmax"]

IMPLEMENTATIONS = ("auto", "dense", "chunked")
# `implementation="auto"` switches to the chunked path when the float32
# score matrix (batch, heads, q_len, k_len) would take at least this much
# memory (an unknown batch size counts as 1, an unknown length as short).
# Below it the dense path is faster on CPU; above it memory dominates.
AUTO_CHUNKED_MIN_SCORE_BYTES = 2**30
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
# Masked scores are set to this before the softmax. The softmax runs in
# float32, so a large finite number is safe and never produces NaN.
_MASKED_SCORE = -1e30


def _validate_inputs(
    query, key, value, mask, implementation, chunk_size, dropout_rate
):
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        if len(tensor.shape) != 4:
            raise ValueError(
                f"`{name}` must be a rank-4 tensor laid out as (batch, "
                f"length, heads, depth). Received: {name}.shape="
                f"{tuple(tensor.shape)}"
            )
    q_shape, k_shape, v_shape = (
        tuple(query.shape),
        tuple(key.shape),
        tuple(value.shape),
    )

    def differ(a, b):
        return a is not None and b is not None and a != b

    if differ(q_shape[3], k_shape[3]):
        raise ValueError(
            "`query` and `key` must have the same depth (last axis). "
            f"Received: query.shape={q_shape}, key.shape={k_shape}"
        )
    if differ(k_shape[1], v_shape[1]):
        raise ValueError(
            "`key` and `value` must have the same length (axis 1). "
            f"Received: key.shape={k_shape}, value.shape={v_shape}"
        )
    for axis, what in ((0, "batch size"), (2, "number of heads")):
        if differ(q_shape[axis], k_shape[axis]) or differ(
            k_shape[axis], v_shape[axis]
        ):
            raise ValueError(
                f"`query`, `key` and `value` must have the same {what} "
                f"(axis {axis}). Received: query.shape={q_shape}, "
                f"key.shape={k_shape}, value.shape={v_shape}"
            )
    if mask is not None:
        target = (q_shape[0], q_shape[2], q_shape[1], k_shape[1])
        m_shape = tuple(mask.shape)
        compatible = len(m_shape) <= 4 and all(
            m is None or t is None or m in (1, t)
            for m, t in zip(reversed(m_shape), reversed(target))
        )
        if not compatible:
            raise ValueError(
                "`mask` must broadcast to (batch, heads, query_length, "
                f"key_length) = {target}. Received: mask.shape={m_shape}"
            )
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {IMPLEMENTATIONS}. "
            f"Received: implementation={implementation!r}"
        )
    if chunk_size is not None and (
        not isinstance(chunk_size, numbers.Integral)
        or isinstance(chunk_size, bool)
        or chunk_size <= 0
    ):
        raise ValueError(
            "`chunk_size` must be a positive integer or None. "
            f"Received: chunk_size={chunk_size!r}"
        )
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(
            "`dropout_rate` must be in [0, 1). "
            f"Received: dropout_rate={dropout_rate}"
        )


def _full_mask(mask, causal, q_len, k_len):
    """Combine the user mask and the causal flag into one broadcastable mask."""
    if mask is not None:
        mask = ops.convert_to_tensor(mask)
        if mask.dtype != "bool":
            mask = ops.not_equal(mask, 0)
        while len(mask.shape) < 4:
            mask = ops.expand_dims(mask, 0)
    if causal:
        causal_part = causal_mask(q_len, k_len)[None, None]  # (1, 1, q, k)
        mask = (
            causal_part if mask is None else ops.logical_and(mask, causal_part)
        )
    return mask


def masked_softmax(scores, mask=None):
    """Softmax over the last axis in float32, with masked entries at zero.

    Args:
        scores: tensor of scores, any float dtype.
        mask: optional boolean mask broadcastable to `scores`, True = keep.

    Returns:
        float32 weights of the shape of `scores`. Masked entries are exactly
        zero, and a row whose entries are all masked is all zeros (not a
        uniform distribution, and never NaN).

    Example:

    >>> masked_softmax([[1.0, 1.0, 5.0]], [[True, True, False]]).numpy()
    array([[0.5, 0.5, 0. ]], dtype=float32)
    """
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.convert_to_tensor(mask)
    weights = ops.softmax(ops.where(mask, scores, _MASKED_SCORE), axis=-1)
    # Masked entries of a row with any key left are exactly zero already
    # (exp(-1e30 - max) underflows to 0); a row with none left came out
    # uniform and is zeroed by one multiply, cheaper than a second `where`.
    return weights * _rows_with_keys(mask)


def _score_dtype(dtype):
    """The dtype of the `Q K^T` matmul: float32 for float16 inputs."""
    return tf.float32 if dtype == tf.float16 else dtype


def _rows_with_keys(mask):
    """float32 1/0 per query row: whether the row may attend to any key."""
    return ops.cast(ops.any(mask, axis=-1, keepdims=True), "float32")


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
        scores = tf.where(mask, scores, _MASKED_SCORE)
    weights = tf.cast(tf.nn.softmax(scores), dtype)
    attended = weights
    if dropout_rate > 0.0:
        attended = dropout(weights, dropout_rate, seed=seed)
    output = tf.matmul(attended, values)  # (b, h, q, dv)
    if mask is not None:
        # A row with no key to attend to came out of the softmax uniform:
        # zeroing its (q, dv) output is cheaper than its (q, k) weights.
        has_keys = tf.cast(_rows_with_keys(mask), dtype)
        output = output * has_keys
        if return_weights:
            weights = weights * has_keys
    return tf.transpose(output, [0, 2, 1, 3]), (
        weights if return_weights else None
    )


def _static_score_bytes(query, key):
    """Bytes of the float32 scores, from static shapes (0 if unknown)."""
    batch, q_len, heads = query.shape[:3]
    k_len = key.shape[1]
    if q_len is None or k_len is None or heads is None:
        return 0
    return (batch or 1) * heads * q_len * k_len * 4


def _tile_rows(key):
    """Query rows per tile so that one float32 score tile fits the budget."""
    k_len = key.shape[1]
    if k_len is not None:
        rows = TILE_BUDGET_BYTES // (4 * max(k_len, 1))
        return max(1, min(rows, MAX_TILE_ROWS))
    rows = TILE_BUDGET_BYTES // (4 * tf.shape(key)[1])
    return tf.maximum(1, tf.minimum(rows, MAX_TILE_ROWS))


def _dense_uses_tiles(query, key, chunk_size):
    """Whether the dense implementation should run tile by tile.

    Decided from static shapes: with a length unknown until run time (a
    model traced with `None` lengths) it keeps one batched matmul. A
    run-time `tf.cond` between the two would not compile under XLA, whose
    tile loop needs sizes known when the branch is compiled.
    """
    if chunk_size is not None:
        return True
    q_len, k_len = query.shape[1], key.shape[1]
    if q_len is None or k_len is None:
        return False
    # Tiles are sized for CPU caches and measured on CPUs only; a GPU keeps
    # the single batched matmul it is built for.
    if _gpu_visible():
        return False
    return q_len * k_len * 4 >= DENSE_TILE_MIN_BYTES[_cpu_kernels()]


def _gpu_visible():
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
            scores = tf.where(block, scores, _MASKED_SCORE)
            # A row with no keys comes out uniform; it is zeroed through its
            # (rows, dv) output rather than its (rows, k) weights.
            return tf.nn.softmax(scores), _rows_with_keys(block)

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
                        None if mask is None else _rows_with_keys(tile_mask(i))
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


def scaled_dot_product_attention(
    query,
    key,
    value,
    mask=None,
    causal=False,
    scale=None,
    dropout_rate=0.0,
    training=None,
    seed=None,
    return_attention_scores=False,
    implementation="auto",
    chunk_size=None,
):
    """Scaled dot-product attention, `softmax(Q K^T / sqrt(d_k)) V`.

    Inputs are laid out `(batch, length, heads, depth)` as in
    `keras.ops.dot_product_attention`. Scores and softmax statistics are
    computed in float32 (for float16 inputs `Q K^T` too, past whose range
    float16 would overflow); the output has the dtype of `query`. Keys masked
    out get exactly zero weight, and a query whose keys are all masked gets
    a zero output.

    Args:
        query: `(batch, q_len, heads, depth)` tensor.
        key: `(batch, k_len, heads, depth)` tensor.
        value: `(batch, k_len, heads, value_depth)` tensor.
        mask: optional boolean mask (True = may attend) broadcastable to
            `(batch, heads, q_len, k_len)`; non-boolean masks are read as
            `mask != 0`. Defaults to `None`.
        causal: bool, whether query `i` may only attend to keys
            `j <= i + k_len - q_len` (the usual lower-triangular mask when
            `q_len == k_len`). Defaults to `False`.
        scale: float, the factor applied to the scores. Defaults to
            `1 / sqrt(depth)`.
        dropout_rate: float in `[0, 1)`, dropout on the attention weights,
            applied only when `training` is truthy. Defaults to `0.0`.
        training: bool, whether dropout is active. With `False` the tiled
            dense path does not keep the weights for a backward pass
            (inference is faster; a gradient, if asked for, recomputes
            them). Defaults to `None` (no dropout, weights kept).
        seed: optional int or `keras.random.SeedGenerator` for dropout.
        return_attention_scores: bool, whether to also return the
            `(batch, heads, q_len, k_len)` attention weights (these need the
            dense implementation). Defaults to `False`.
        implementation: `"dense"`, `"chunked"` or `"auto"`. `"auto"` uses
            the chunked path when no weights are requested and the static
            shapes say the float32 score matrix would take at least
            `AUTO_CHUNKED_MIN_SCORE_BYTES` (1 GiB), else the dense path.
            Defaults to `"auto"`.
        chunk_size: int, query rows per tile, or `None` to pick the most
            rows (up to 1024) whose float32 scores `(rows, k_len)` fit in
            16 MiB. With `None` the dense path tiles only when one head's
            scores take `DENSE_TILE_MIN_BYTES` or more (from 256 x 256 to
            1,024 x 1,024 keys, by the CPU kernels in use), known from
            static shapes, and no GPU is visible; an explicit `chunk_size`
            always tiles. Defaults to `None`.

    Returns:
        The `(batch, q_len, heads, value_depth)` output, or the tuple
        `(output, weights)` when `return_attention_scores=True`.

    Example:

    >>> q = keras.random.normal((2, 5, 4, 8))
    >>> k = v = keras.random.normal((2, 7, 4, 8))
    >>> scaled_dot_product_attention(q, k, v).shape
    TensorShape([2, 5, 4, 8])

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Rabe & Staats, 2021](https://arxiv.org/abs/2112.05682)
        - [Dao et al., 2022](https://arxiv.org/abs/2205.14135)
    """
    query = ops.convert_to_tensor(query)
    if "float" not in keras.backend.standardize_dtype(query.dtype):
        raise ValueError(
            "`query`, `key` and `value` must be floating-point tensors "
            "(integer weights and scale would round to zero). Received: "
            f"query.dtype={keras.backend.standardize_dtype(query.dtype)}"
        )
    key = ops.convert_to_tensor(key, dtype=query.dtype)
    value = ops.convert_to_tensor(value, dtype=query.dtype)
    if mask is not None:
        mask = ops.convert_to_tensor(mask)
    _validate_inputs(
        query, key, value, mask, implementation, chunk_size, dropout_rate
    )
    if chunk_size is not None:
        chunk_size = int(chunk_size)  # NumPy integers too
    if implementation == "chunked" and return_attention_scores:
        raise ValueError(
            "`return_attention_scores=True` needs the full weight matrix, "
            "which the chunked implementation never builds. Use "
            "implementation='dense' or 'auto'."
        )
    if scale is None:
        depth = query.shape[-1]
        if depth is None:
            raise ValueError(
                "The depth (last axis) of `query` must be known to derive "
                "the default `scale`. Pass `scale` explicitly. Received: "
                f"query.shape={tuple(query.shape)}"
            )
        scale = 1.0 / math.sqrt(depth)
    if implementation == "auto":
        implementation = (
            "chunked"
            if not return_attention_scores
            and _static_score_bytes(query, key) >= AUTO_CHUNKED_MIN_SCORE_BYTES
            else "dense"
        )
    q_len, k_len = ops.shape(query)[1], ops.shape(key)[1]
    mask = _full_mask(mask, causal, q_len, k_len)
    use_dropout = dropout_rate > 0.0 and bool(training)
    dropout_rate = dropout_rate if use_dropout else 0.0
    if implementation == "dense" and (
        return_attention_scores or not _dense_uses_tiles(query, key, chunk_size)
    ):
        output, weights = _dense_attention(
            query,
            key,
            value,
            mask,
            scale,
            dropout_rate,
            seed,
            return_attention_scores,
        )
        return (output, weights) if return_attention_scores else output
    return _tiled_attention(
        query,
        key,
        value,
        mask,
        scale,
        dropout_rate,
        seed_tensor(seed) if use_dropout else None,
        chunk_size or _tile_rows(key),
        # An inference call (training=False) has no backward pass to keep
        # weights for; should one be asked for, it recomputes them.
        keep_weights=implementation == "dense" and training is not False,
    )
