"""Attention masks: one convention for the whole package.

Every mask in `keras_attention` is boolean and `True` means "may attend".
Masks given as integers or floats are read as `value != 0`. These helpers are
the one place where padding masks, causal masks and explicit masks are built
and combined; every layer calls them.
"""

import keras
from keras import ops

__all__ = [
    "as_bool_mask",
    "causal_mask",
    "sliding_window_mask",
    "padding_mask",
    "merge_masks",
    "compute_attention_mask",
]


def as_bool_mask(mask):
    """`mask` as a boolean tensor (True = may attend); others read `!= 0`."""
    mask = ops.convert_to_tensor(mask)
    if keras.backend.standardize_dtype(mask.dtype) == "bool":
        return mask
    return ops.not_equal(mask, 0)


def causal_mask(query_length, key_length=None):
    """Boolean lower-triangular mask of shape `(query_length, key_length)`.

    The mask is aligned to the bottom-right corner: query `i` may attend to
    key `j` when `j <= i + (key_length - query_length)`. For
    `query_length == key_length` this is the usual lower-triangular mask; when
    the queries are the last positions of a longer key sequence (decoding with
    a key/value cache) each query sees every key up to its own position.

    Args:
        query_length: int or scalar tensor, number of queries.
        key_length: int or scalar tensor, number of keys. Defaults to
            `query_length`.

    Returns:
        A boolean tensor of shape `(query_length, key_length)`.

    Example:

    >>> causal_mask(3).numpy().astype(int).tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    if key_length is None:
        key_length = query_length
    offset = key_length - query_length
    rows = ops.expand_dims(ops.arange(query_length), 1)  # (q_len, 1)
    cols = ops.expand_dims(ops.arange(key_length), 0)  # (1, k_len)
    return ops.less_equal(cols, rows + offset)  # (q_len, k_len)


def sliding_window_mask(query_length, key_length, window, causal=True):
    """Boolean mask `(query_length, key_length)` of a local attention window.

    Positions are aligned to the bottom-right corner as in `causal_mask`:
    query `i` stands at key position `p = i + key_length - query_length`.
    With `causal` it may attend to keys `j` in `[p - window + 1, p]` (itself
    and the `window - 1` keys before it); without, to keys with
    `|p - j| < window`.

    Args:
        query_length: int or scalar tensor, number of queries.
        key_length: int or scalar tensor, number of keys.
        window: positive int, the window size.
        causal: bool, whether the window looks back only. Defaults to
            `True`.

    Returns:
        A boolean tensor of shape `(query_length, key_length)`.

    Example:

    >>> sliding_window_mask(4, 4, 2).numpy().astype(int).tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    offset = key_length - query_length
    rows = ops.expand_dims(ops.arange(query_length), 1) + offset  # (q, 1)
    cols = ops.expand_dims(ops.arange(key_length), 0)  # (1, k)
    distance = rows - cols  # (q, k): how far key j lies before query i
    if causal:
        return ops.logical_and(
            ops.greater_equal(distance, 0), ops.less(distance, window)
        )
    return ops.less(ops.abs(distance), window)


def padding_mask(query_mask=None, key_mask=None):
    """Pairwise mask `(batch, query_length, key_length)` from 1-D masks.

    Args:
        query_mask: optional `(batch, query_length)` mask of real queries.
        key_mask: optional `(batch, key_length)` mask of real keys.

    Returns:
        A boolean tensor broadcastable to `(batch, query_length, key_length)`,
        or `None` when both masks are `None`.
    """
    mask = None
    if query_mask is not None:
        # (batch, q_len, 1)
        mask = ops.expand_dims(as_bool_mask(query_mask), -1)
    if key_mask is not None:
        # (batch, 1, k_len)
        key_part = ops.expand_dims(as_bool_mask(key_mask), -2)
        mask = key_part if mask is None else ops.logical_and(mask, key_part)
    return mask


def merge_masks(*masks):
    """Logical AND of the given masks, skipping `None`s (`None` if all are)."""
    merged = None
    for mask in masks:
        if mask is None:
            continue
        mask = as_bool_mask(mask)
        merged = mask if merged is None else ops.logical_and(merged, mask)
    return merged


def _check_attention_mask_shape(attention_mask, query, value):
    mask_shape = tuple(attention_mask.shape)
    expected = (query.shape[0], query.shape[1], value.shape[1])
    if len(mask_shape) != 3:
        raise ValueError(
            "`attention_mask` must have shape (batch, query_length, "
            f"key_length) = {expected}. Received: "
            f"attention_mask.shape={mask_shape}"
        )
    for got, want in zip(mask_shape, expected):
        if got is not None and want is not None and got not in (1, want):
            raise ValueError(
                "`attention_mask` must be broadcastable to (batch, "
                f"query_length, key_length) = {expected}. Received: "
                f"attention_mask.shape={mask_shape}"
            )


def compute_attention_mask(
    query,
    value,
    query_mask=None,
    value_mask=None,
    key_mask=None,
    attention_mask=None,
    use_causal_mask=False,
):
    """Combine every source of masking into one `(batch, q_len, k_len)` mask.

    Sources, all optional and combined with logical AND: the Keras implicit
    masks of the query, value and key tensors (`(batch, length)`, for
    example from `Embedding(mask_zero=True)`), an explicit `attention_mask`
    (`(batch, q_len, k_len)`) and a causal mask.

    Args:
        query: `(batch, q_len, ...)` query tensor (used for its shape).
        value: `(batch, k_len, ...)` value tensor (used for its shape).
        query_mask: optional `(batch, q_len)` mask of the queries.
        value_mask: optional `(batch, k_len)` mask of the values.
        key_mask: optional `(batch, k_len)` mask of the keys.
        attention_mask: optional `(batch, q_len, k_len)` explicit mask.
        use_causal_mask: bool, whether to add a causal mask.

    Returns:
        A boolean tensor broadcastable to `(batch, q_len, k_len)`, or `None`
        when nothing is masked.

    Raises:
        ValueError: if `attention_mask` does not fit the query and value.
    """
    if attention_mask is not None:
        attention_mask = ops.convert_to_tensor(attention_mask)
        _check_attention_mask_shape(attention_mask, query, value)
    causal = None
    if use_causal_mask:
        q_len = ops.shape(query)[1]
        k_len = ops.shape(value)[1]
        causal = ops.expand_dims(causal_mask(q_len, k_len), 0)
    return merge_masks(
        padding_mask(query_mask, None),
        padding_mask(None, value_mask),
        padding_mask(None, key_mask),
        attention_mask,
        causal,
    )
