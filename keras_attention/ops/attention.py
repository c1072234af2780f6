"""Scaled dot-product attention: the one place the formula lives.

`softmax(Q K^T / sqrt(d_k)) V` with two implementations behind one signature:

* `"dense"` materialises the `(batch, heads, q_len, k_len)` score matrix.
* `"chunked"` never holds that matrix. It walks over blocks of keys with a
  running maximum and a running sum (online softmax) and recomputes the
  blocks in the backward pass, so memory grows linearly with the sequence
  length instead of quadratically.

Both give the same output and gradients. Softmax statistics are kept in
float32 whatever the input dtype, so float16 and bfloat16 inputs never
overflow in the mask. A query row whose keys are all masked gets zero weights
and a zero output (never NaN).
"""

import math

import keras
import tensorflow as tf
from keras import ops

from keras_attention.ops.masks import causal_mask

__all__ = ["scaled_dot_product_attention", "masked_softmax"]

IMPLEMENTATIONS = ("auto", "dense", "chunked")
# `implementation="auto"` switches to the chunked path when the float32
# score matrix (batch, heads, q_len, k_len) would take at least this much
# memory (an unknown batch size counts as 1, an unknown length as short).
# Below it the dense path is faster on CPU; above it memory dominates.
AUTO_CHUNKED_MIN_SCORE_BYTES = 2**30
# With `chunk_size=None` the chunked path picks the largest power of two in
# [MIN_CHUNK_SIZE, MAX_CHUNK_SIZE] whose float32 score block
# (batch, heads, q_len, chunk) fits in BLOCK_BUDGET_BYTES.
MAX_CHUNK_SIZE = 512
MIN_CHUNK_SIZE = 64
BLOCK_BUDGET_BYTES = 64 * 2**20
# Key blocks run one after another: overlapping iterations of the while loop
# would hold several blocks of scores at once and defeat the memory bound.
_PARALLEL_ITERATIONS = 1
# Masked scores are set to this before the softmax. The softmax runs in
# float32, so a large finite number is safe and never produces NaN.
_MASKED_SCORE = -1e30
_INT32_MAX = 2**31 - 1


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
        not isinstance(chunk_size, int) or chunk_size <= 0
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
    scores = ops.where(mask, scores, _MASKED_SCORE)
    return ops.where(mask, ops.softmax(scores, axis=-1), 0.0)


def _dense_attention(query, key, value, mask, scale, dropout_rate, seed):
    query = query * ops.cast(scale, query.dtype)
    scores = ops.einsum("bqhd,bkhd->bhqk", query, key)  # (b, h, q, k)
    weights = masked_softmax(scores, mask)  # (b, h, q, k)
    weights = ops.cast(weights, query.dtype)
    attended = weights
    if dropout_rate > 0.0:
        attended = keras.random.dropout(weights, dropout_rate, seed=seed)
    output = ops.einsum("bhqk,bkhd->bqhd", attended, value)  # (b, q, h, d)
    return output, weights


def _seed_tensor(seed):
    """A `(2,)` int32 seed for stateless ops, fresh at every call."""
    if isinstance(seed, keras.random.SeedGenerator):
        return keras.random.randint(
            (2,), 0, _INT32_MAX, seed=seed, dtype="int32"
        )
    if seed is None:
        return tf.random.uniform((2,), 0, _INT32_MAX, dtype=tf.int32)
    return tf.constant([seed, 0], dtype=tf.int32)


def _static_score_bytes(query, key):
    """Bytes of the float32 scores, from static shapes (0 if unknown)."""
    batch, q_len, heads = query.shape[:3]
    k_len = key.shape[1]
    if q_len is None or k_len is None or heads is None:
        return 0
    return (batch or 1) * heads * q_len * k_len * 4


def _default_chunk_size(query):
    batch, q_len, heads = query.shape[:3]
    if None in (batch, q_len, heads):
        return MAX_CHUNK_SIZE
    bytes_per_key = batch * q_len * heads * 4
    chunk_size = MAX_CHUNK_SIZE
    while (
        chunk_size > MIN_CHUNK_SIZE
        and chunk_size * bytes_per_key > BLOCK_BUDGET_BYTES
    ):
        chunk_size //= 2
    return chunk_size


def _chunked_attention(
    query, key, value, mask, scale, dropout_rate, seed_tensor, chunk_size
):
    """Online-softmax attention over key blocks, recomputed in backward."""
    dtype = query.dtype
    q_shape = tf.shape(query)
    batch, q_len, heads, depth = q_shape[0], q_shape[1], q_shape[2], q_shape[3]
    k_len = tf.shape(key)[1]
    v_depth = tf.shape(value)[3]
    num_chunks = (k_len + chunk_size - 1) // chunk_size
    pad = num_chunks * chunk_size - k_len
    keep_scale = 1.0 / (1.0 - dropout_rate)
    mask_is_chunked = mask is not None and mask.shape[-1] != 1
    if mask is not None and mask_is_chunked:
        mask = tf.pad(mask, [[0, 0], [0, 0], [0, 0], [0, pad]])
        m_shape = tf.shape(mask)
        mask = tf.reshape(
            mask, tf.concat([m_shape[:3], [num_chunks, chunk_size]], 0)
        )
        mask = tf.transpose(mask, [3, 0, 1, 2, 4])  # (n_chunks, b, h, q, c)

    def to_blocks(x, x_depth):
        # (b, k, h, d) -> (n_chunks, b, h, chunk, d)
        x = tf.pad(x, [[0, 0], [0, pad], [0, 0], [0, 0]])
        x = tf.reshape(x, [batch, num_chunks, chunk_size, heads, x_depth])
        return tf.transpose(x, [1, 0, 3, 2, 4])

    def from_blocks(x, x_depth):
        # (n_chunks, b, h, chunk, d) -> (b, k, h, d)
        x = tf.transpose(x, [1, 0, 3, 2, 4])
        x = tf.reshape(x, [batch, num_chunks * chunk_size, heads, x_depth])
        return x[:, :k_len]

    def allowed_in_chunk(i):
        """Boolean (b|1, h|1, q|1, chunk) mask of the keys of chunk `i`."""
        positions = i * chunk_size + tf.range(chunk_size)  # (c,)
        allowed = (positions < k_len)[None, None, None, :]
        if mask is not None:
            block = mask[i] if mask_is_chunked else mask
            allowed = tf.logical_and(allowed, block)
        return allowed

    def keep_in_chunk(i, shape):
        noise = tf.random.stateless_uniform(
            shape, seed=seed_tensor + tf.stack([0, i])
        )
        return tf.cast(noise >= dropout_rate, tf.float32) * keep_scale

    @tf.custom_gradient
    def attention(query, key, value):
        q = tf.transpose(query, [0, 2, 1, 3]) * tf.cast(scale, dtype)
        k_blocks = to_blocks(key, depth)
        v_blocks = to_blocks(value, v_depth)

        def block_scores(i):
            """Masked float32 scores `(b, h, q, chunk)` of chunk `i`."""
            scores = tf.cast(
                tf.matmul(q, k_blocks[i], transpose_b=True), tf.float32
            )
            allowed = allowed_in_chunk(i)
            scores = tf.where(allowed, scores, _MASKED_SCORE)
            return scores, allowed

        def forward_step(i, row_max, row_sum, acc):
            scores, allowed = block_scores(i)  # (b, h, q, c)
            new_max = tf.maximum(row_max, tf.reduce_max(scores, -1))
            correction = tf.exp(row_max - new_max)  # (b, h, q)
            probs = tf.where(allowed, tf.exp(scores - new_max[..., None]), 0.0)
            row_sum = row_sum * correction + tf.reduce_sum(probs, -1)
            if dropout_rate > 0.0:
                probs = probs * keep_in_chunk(i, tf.shape(probs))
            block_out = tf.matmul(tf.cast(probs, dtype), v_blocks[i])
            acc = acc * correction[..., None] + tf.cast(block_out, tf.float32)
            return i + 1, new_max, row_sum, acc

        stats_shape = tf.stack([batch, heads, q_len])
        _, row_max, row_sum, acc = tf.while_loop(
            lambda i, *_: i < num_chunks,
            forward_step,
            (
                tf.constant(0),
                tf.fill(stats_shape, tf.constant(_MASKED_SCORE, tf.float32)),
                tf.zeros(stats_shape, tf.float32),
                tf.zeros(tf.stack([batch, heads, q_len, v_depth]), tf.float32),
            ),
            parallel_iterations=_PARALLEL_ITERATIONS,
        )
        has_keys = row_sum > 0.0  # (b, h, q)
        safe_sum = tf.where(has_keys, row_sum, 1.0)
        out32 = acc / safe_sum[..., None]  # (b, h, q, dv)
        log_sum_exp = tf.where(has_keys, row_max + tf.math.log(safe_sum), 0.0)
        output = tf.transpose(tf.cast(out32, dtype), [0, 2, 1, 3])

        def grad(d_output):
            d_out = tf.transpose(d_output, [0, 2, 1, 3])  # (b, h, q, dv)
            d_out32 = tf.cast(d_out, tf.float32)
            delta = tf.reduce_sum(d_out32 * out32, -1, keepdims=True)

            def backward_step(i, d_q, d_keys, d_values):
                scores, allowed = block_scores(i)
                probs = tf.where(
                    allowed, tf.exp(scores - log_sum_exp[..., None]), 0.0
                )
                d_probs = tf.cast(
                    tf.matmul(d_out, v_blocks[i], transpose_b=True), tf.float32
                )  # (b, h, q, c)
                dropped = probs
                if dropout_rate > 0.0:
                    keep = keep_in_chunk(i, tf.shape(probs))
                    dropped = probs * keep
                    d_probs = d_probs * keep
                d_values = d_values.write(
                    i,
                    tf.matmul(tf.cast(dropped, dtype), d_out, transpose_a=True),
                )
                d_scores = tf.cast(probs * (d_probs - delta), dtype)
                d_q = d_q + tf.cast(
                    tf.matmul(d_scores, k_blocks[i]), tf.float32
                )
                d_keys = d_keys.write(
                    i, tf.matmul(d_scores, q, transpose_a=True)
                )
                return i + 1, d_q, d_keys, d_values

            _, d_q, d_keys, d_values = tf.while_loop(
                lambda i, *_: i < num_chunks,
                backward_step,
                (
                    tf.constant(0),
                    tf.zeros(
                        tf.stack([batch, heads, q_len, depth]), tf.float32
                    ),
                    tf.TensorArray(dtype, size=num_chunks),
                    tf.TensorArray(dtype, size=num_chunks),
                ),
                parallel_iterations=_PARALLEL_ITERATIONS,
            )
            d_query = tf.transpose(tf.cast(d_q * scale, dtype), [0, 2, 1, 3])
            d_key = from_blocks(d_keys.stack(), depth)
            d_value = from_blocks(d_values.stack(), v_depth)
            return d_query, d_key, d_value

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
    computed in float32; the output has the dtype of `query`. Keys masked
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
        training: bool, whether dropout is active. Defaults to `None`
            (inactive).
        seed: optional int or `keras.random.SeedGenerator` for dropout.
        return_attention_scores: bool, whether to also return the
            `(batch, heads, q_len, k_len)` attention weights (these need the
            dense implementation). Defaults to `False`.
        implementation: `"dense"`, `"chunked"` or `"auto"`. `"auto"` uses
            the chunked path when no weights are requested and the static
            shapes say the float32 score matrix would take at least
            `AUTO_CHUNKED_MIN_SCORE_BYTES` (1 GiB), else the dense path.
            Defaults to `"auto"`.
        chunk_size: int, keys per block of the chunked path, or `None` to
            pick the largest block (at most 512 keys) whose float32 scores
            `(batch, heads, q_len, chunk_size)` fit in 64 MiB, so peak
            memory stays bounded for very long sequences. Defaults to
            `None`.

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
    key = ops.convert_to_tensor(key, dtype=query.dtype)
    value = ops.convert_to_tensor(value, dtype=query.dtype)
    if mask is not None:
        mask = ops.convert_to_tensor(mask)
    _validate_inputs(
        query, key, value, mask, implementation, chunk_size, dropout_rate
    )
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
    if implementation == "dense":
        output, weights = _dense_attention(
            query,
            key,
            value,
            mask,
            scale,
            dropout_rate if use_dropout else 0.0,
            seed,
        )
        return (output, weights) if return_attention_scores else output
    return _chunked_attention(
        query,
        key,
        value,
        mask,
        scale,
        dropout_rate if use_dropout else 0.0,
        _seed_tensor(seed) if use_dropout else None,
        chunk_size or _default_chunk_size(query),
    )
