"""Private argument checks and helpers shared by every layer module."""

import numbers

from keras_attention.ops.attention.dispatch import IMPLEMENTATIONS


def is_positive_int(value):
    """Whether `value` is a positive integer (NumPy integers included)."""
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value > 0
    )


def check_positive_int(name, value, allow_none=False):
    """`value` as a Python int (or `None` if allowed); raise otherwise.

    NumPy integers (`np.int64(8)`, from a hyper-parameter grid) are
    accepted, as Keras accepts them, and returned as Python ints.
    """
    if allow_none and value is None:
        return None
    if not is_positive_int(value):
        expected = "a positive integer"
        if allow_none:
            expected += " or `None`"
        raise ValueError(
            f"`{name}` must be {expected}. Received: {name}={value!r}"
        )
    return int(value)


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


def check_rate(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )


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
