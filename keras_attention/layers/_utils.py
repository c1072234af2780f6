"""Private argument checks and helpers shared by every layer module."""

import keras

from keras_attention._checks import check_positive_int  # noqa: F401
from keras_attention._checks import check_rate  # noqa: F401
from keras_attention._checks import is_positive_int  # noqa: F401
from keras_attention.ops.attention.dispatch import IMPLEMENTATIONS


def check_rank_3(name, shape):
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` must be a rank-3 tensor of shape (batch, length, "
            f"features). Received: {name}.shape={shape}"
        )


def clone_initializer(initializer):
    """A fresh instance, so that no two weights share one initializer."""
    return initializer.__class__.from_config(initializer.get_config())


def check_same_batch(name_a, shape_a, name_b, shape_b):
    """Raise if two static batch sizes are known and differ."""
    batch_a, batch_b = tuple(shape_a)[0], tuple(shape_b)[0]
    if batch_a is not None and batch_b is not None and batch_a != batch_b:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same batch size. "
            f"Received: {name_a}.shape={tuple(shape_a)}, "
            f"{name_b}.shape={tuple(shape_b)}"
        )


def check_implementation(name, value):
    if value not in IMPLEMENTATIONS:
        raise ValueError(
            f"`{name}` must be one of {IMPLEMENTATIONS}. "
            f"Received: {name}={value!r}"
        )


def check_floating(name, tensor):
    """Raise unless `tensor` holds floating-point numbers.

    Layers with a residual connection or a dropout add their input to a
    float result; an integer input (token ids not yet embedded) would fail
    deep inside the backend with a dtype mismatch.
    """
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"`{name}` must be a floating-point tensor (embed token ids "
            f"first, e.g. with `TokenEmbedding`). Received: {name}.dtype="
            f"{dtype}"
        )


def _fits(shape, target, broadcast):
    return len(shape) == len(target) and all(
        m is None or t is None or m == t or (broadcast and m == 1)
        for m, t in zip(shape, target)
    )


def check_attention_masks(
    query_shape,
    key_shape,
    query_mask=None,
    value_mask=None,
    key_mask=None,
    attention_mask=None,
):
    """Raise unless each mask fits the `(batch, length, ...)` sequences.

    `query_mask` is `(batch, q_len)`; `value_mask` and `key_mask` are
    `(batch, k_len)`; `attention_mask` is `(batch, q_len, k_len)` or
    `(q_len, k_len)`, any axis possibly 1 (broadcast). A mask of another
    length would otherwise broadcast silently (a length-1 mask) or fail
    deep inside the backend.
    """
    batch, q_len = tuple(query_shape)[:2]
    k_len = tuple(key_shape)[1]
    padding = (
        ("query_mask", query_mask, (batch, q_len)),
        ("value_mask", value_mask, (batch, k_len)),
        ("key_mask", key_mask, (batch, k_len)),
    )
    for name, mask, target in padding:
        if mask is None:
            continue
        shape = tuple(mask.shape)
        # A batch of 1 broadcasts; the length must match.
        if not _fits(shape, target, broadcast=False) and not (
            len(shape) == 2
            and shape[0] == 1
            and _fits(shape[1:], target[1:], False)
        ):
            raise ValueError(
                f"`{name}` must have shape (batch, length) = {target}. "
                f"Received: {name}.shape={shape}"
            )
    check_attention_mask(
        "attention_mask", attention_mask, (batch, q_len, k_len)
    )


def check_attention_mask(name, mask, target):
    """Raise unless `mask` broadcasts to `target`, `(batch, q_len, k_len)`.

    Rank 2 `(q_len, k_len)` or 3; an axis of 1 broadcasts; `None` in
    `target` (a length known only at run time) matches anything.
    """
    if mask is None:
        return
    shape = tuple(mask.shape)
    if len(shape) not in (2, 3) or not _fits(
        shape, tuple(target)[-len(shape) :], broadcast=True
    ):
        raise ValueError(
            f"`{name}` must broadcast to (batch, query_length, key_length) "
            f"= {tuple(target)}. Received: {name}.shape={shape}"
        )
