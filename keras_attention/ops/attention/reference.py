"""The paper's formula in `keras.ops`: the reference every kernel matches.

`reference_attention` is `softmax(Q K^T * scale) V` written once, on one
screen, with the package's conventions: boolean masks (True = may attend),
bottom-right causal alignment, float32 scores and softmax statistics
whatever the input dtype, and zero weights and output for a query whose keys
are all masked. It runs on every Keras backend. The tests use it as their
oracle, and it is the dense kernel of JAX and PyTorch (one batched product
that keeps the `(batch, heads, q_len, k_len)` weights).
"""

from keras import ops

from keras_attention.ops.dropout import dropout
from keras_attention.ops.masks import causal_mask
from keras_attention.ops.masks import sliding_window_mask

__all__ = ["MASKED_SCORE", "masked_softmax", "reference_attention"]

# Masked scores are set to this before the softmax. The softmax runs in
# float32, so a large finite number is safe and never produces NaN.
MASKED_SCORE = -1e30


def rows_with_keys(mask):
    """float32 1/0 per query row: whether the row may attend to any key."""
    return ops.cast(ops.any(mask, axis=-1, keepdims=True), "float32")


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

    >>> weights = masked_softmax([[1.0, 1.0, 5.0]], [[True, True, False]])
    >>> keras.ops.convert_to_numpy(weights)
    array([[0.5, 0.5, 0. ]], dtype=float32)
    """
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.convert_to_tensor(mask)
    weights = ops.softmax(ops.where(mask, scores, MASKED_SCORE), axis=-1)
    # Masked entries of a row with any key left are exactly zero already
    # (exp(-1e30 - max) underflows to 0); a row with none left came out
    # uniform and is zeroed by one multiply, cheaper than a second `where`.
    return weights * rows_with_keys(mask)


def full_mask(mask, causal, q_len, k_len, window=None):
    """The rank-4 user mask AND the causal or window mask (or `None`)."""
    if window is not None:
        part = sliding_window_mask(q_len, k_len, window, causal)
    elif causal:
        part = causal_mask(q_len, k_len)
    else:
        return mask
    part = part[None, None]  # (1, 1, q, k)
    return part if mask is None else ops.logical_and(mask, part)


def cap_scores(scores, soft_cap):
    """`soft_cap * tanh(scores / soft_cap)`, or `scores` for `None`."""
    if soft_cap is None:
        return scores
    return ops.tanh(scores / soft_cap) * soft_cap


def logits(scores, soft_cap=None, bias=None):
    """The float32 softmax input: capped scores plus the additive bias."""
    scores = cap_scores(scores, soft_cap)
    if bias is not None:
        # A bias of -inf (a common way to mask) would make a fully masked
        # row NaN; MASKED_SCORE masks as well and stays finite.
        scores = scores + ops.maximum(ops.cast(bias, "float32"), MASKED_SCORE)
    return scores


def reference_attention(
    query,
    key,
    value,
    mask=None,
    causal=False,
    scale=None,
    dropout_rate=0.0,
    seed=None,
    bias=None,
    window=None,
    soft_cap=None,
):
    """`softmax(Q K^T * scale) V` in `keras.ops`; returns (output, weights).

    Args:
        query: `(batch, q_len, heads, depth)` tensor.
        key: `(batch, k_len, heads, depth)` tensor.
        value: `(batch, k_len, heads, value_depth)` tensor.
        mask: optional boolean mask broadcastable to
            `(batch, heads, q_len, k_len)`, True = may attend.
        causal: bool, whether query `i` sees only keys
            `j <= i + k_len - q_len`.
        scale: float, defaults to `1 / sqrt(depth)`.
        dropout_rate: float, dropout on the weights (0 = none).
        seed: int or `keras.random.SeedGenerator` of the dropout.
        bias: optional additive bias broadcastable to
            `(batch, heads, q_len, k_len)`, added after the soft cap.
        window: optional positive int: each query sees only the keys of
            its sliding window (see `masks.sliding_window_mask`).
        soft_cap: optional positive float: scores become
            `soft_cap * tanh(scores / soft_cap)`.

    Returns:
        The `(batch, q_len, heads, value_depth)` output in the dtype of
        `value`, and the float32 `(batch, heads, q_len, k_len)` weights
        (before dropout).
    """
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    mask = full_mask(
        mask, causal, ops.shape(query)[1], ops.shape(key)[1], window
    )
    # float32 scores: float16 ones overflow past 65504.
    q = ops.cast(query, "float32") * scale
    k = ops.cast(key, "float32")
    scores = ops.einsum("bqhd,bkhd->bhqk", q, k)  # (b, h, q, k)
    scores = logits(scores, soft_cap, bias)
    weights = masked_softmax(scores, mask)  # float32
    attended = weights
    if dropout_rate > 0.0:
        attended = dropout(weights, dropout_rate, seed=seed)
    attended = ops.cast(attended, value.dtype)
    output = ops.einsum("bhqk,bkhd->bqhd", attended, value)  # (b, q, h, dv)
    return output, weights
