"""Argument checks of `scaled_dot_product_attention`, in one place.

Every check reads static shapes only, so it runs the same on every backend
and inside a traced function; a problem is a `ValueError` naming the
argument and what was received, raised before any kernel runs.
"""

import math
import numbers

import keras

from keras_attention.ops.attention.dispatch import IMPLEMENTATIONS

__all__ = [
    "check_floating",
    "check_score_options",
    "check_soft_cap",
    "check_weights_available",
    "default_scale",
    "validate_attention_inputs",
]


def check_floating(query):
    """Raise unless `query` holds floating-point numbers."""
    dtype = keras.backend.standardize_dtype(query.dtype)
    if "float" not in dtype:
        raise ValueError(
            "`query`, `key` and `value` must be floating-point tensors "
            "(integer weights and scale would round to zero). Received: "
            f"query.dtype={dtype}"
        )


def default_scale(query):
    """`1 / sqrt(depth)`, from the static depth of `query`."""
    depth = query.shape[-1]
    if depth is None:
        raise ValueError(
            "The depth (last axis) of `query` must be known to derive "
            "the default `scale`. Pass `scale` explicitly. Received: "
            f"query.shape={tuple(query.shape)}"
        )
    return 1.0 / math.sqrt(depth)


def validate_attention_inputs(
    query, key, value, mask, implementation, chunk_size, dropout_rate
):
    """Raise a `ValueError` naming the first argument that does not fit."""
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
    if differ(q_shape[0], k_shape[0]) or differ(k_shape[0], v_shape[0]):
        raise ValueError(
            "`query`, `key` and `value` must have the same batch size "
            f"(axis 0). Received: query.shape={q_shape}, "
            f"key.shape={k_shape}, value.shape={v_shape}"
        )
    q_heads, kv_heads = q_shape[2], k_shape[2]
    if differ(kv_heads, v_shape[2]) or (
        None not in (q_heads, kv_heads) and q_heads % kv_heads
    ):
        raise ValueError(
            "`key` and `value` must have the same number of heads (axis 2), "
            "and it must divide the number of query heads (grouped-query "
            f"attention). Received: query.shape={q_shape}, "
            f"key.shape={k_shape}, value.shape={v_shape}"
        )
    target = (q_shape[0], q_shape[2], q_shape[1], k_shape[1])
    if mask is not None:
        _check_broadcasts("mask", mask, target)
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


def _check_broadcasts(name, tensor, target):
    shape = tuple(tensor.shape)
    compatible = len(shape) <= 4 and all(
        m is None or t is None or m in (1, t)
        for m, t in zip(reversed(shape), reversed(target))
    )
    if not compatible:
        raise ValueError(
            f"`{name}` must broadcast to (batch, heads, query_length, "
            f"key_length) = {target}. Received: {name}.shape={shape}"
        )


def check_score_options(query, key, attention_bias, window, soft_cap):
    """Raise unless the bias, window and soft cap are usable."""
    if attention_bias is not None:
        dtype = keras.backend.standardize_dtype(attention_bias.dtype)
        if "float" not in dtype:
            raise ValueError(
                "`attention_bias` must be a floating-point tensor (it is "
                "added to the scores; pass boolean masks as `mask`). "
                f"Received: attention_bias.dtype={dtype}"
            )
        q_shape, k_shape = tuple(query.shape), tuple(key.shape)
        _check_broadcasts(
            "attention_bias",
            attention_bias,
            (q_shape[0], q_shape[2], q_shape[1], k_shape[1]),
        )
    if window is not None and (
        not isinstance(window, numbers.Integral)
        or isinstance(window, bool)
        or window < 1
    ):
        raise ValueError(
            "`window` must be a positive integer or None. "
            f"Received: window={window!r}"
        )
    check_soft_cap(soft_cap)


def check_soft_cap(soft_cap):
    """Raise unless `soft_cap` is `None` or a positive, finite number."""
    if soft_cap is not None and (
        not isinstance(soft_cap, numbers.Real)
        or isinstance(soft_cap, bool)
        or not soft_cap > 0
        or math.isinf(soft_cap)
    ):
        raise ValueError(
            "`soft_cap` must be a positive, finite number or None. "
            f"Received: soft_cap={soft_cap!r}"
        )


def check_weights_available(implementation, return_attention_scores):
    """Raise if weights are asked of the implementation that never has them."""
    if implementation == "chunked" and return_attention_scores:
        raise ValueError(
            "`return_attention_scores=True` needs the full weight matrix, "
            "which the chunked implementation never builds. Use "
            "implementation='dense' or 'auto'."
        )
