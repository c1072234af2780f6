"""Argument checks shared by every part of the package (a leaf module).

Each raises a `ValueError` that names the argument and the value received,
as Keras does: ``"`k` must be a positive integer. Received: k=0"``.
"""

import numbers


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


def check_rate(name, value, allow_none=False):
    """Raise unless `value` is a rate in [0, 1) (or `None` if allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )
