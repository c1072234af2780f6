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


def check_weights_available(implementation, return_attention_scores):
    """Raise if weights are asked of the implementation that never has them."""
    if implementation == "chunked" and return_attention_scores:
        raise ValueError(
            "`return_attention_scores=True` needs the full weight matrix, "
            "which the chunked implementation never builds. Use "
            "implementation='dense' or 'auto'."
        )
