"""Seeds of the package's random ops as two int32 words, on every backend."""

import numbers

import keras
from keras import ops

__all__ = ["seed_bits"]

_INT32_MAX = 2**31 - 1


def seed_bits(seed):
    """A `(2,)` int32 tensor of seed bits.

    Args:
        seed: a `keras.random.SeedGenerator` (fresh bits at every call,
            drawn from its state), a Python int (the same bits every call;
            62 of its bits are kept, any size or sign), or `None` (fresh
            bits from Keras's global generator).

    Example:

    >>> keras.ops.convert_to_numpy(seed_bits(5)).tolist()
    [5, 0]
    """
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return keras.random.randint(
            (2,), 0, _INT32_MAX, seed=seed, dtype="int32"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(
            "`seed` must be an int, a `keras.random.SeedGenerator` or None. "
            f"Received: seed={seed!r}"
        )
    seed = int(seed)
    return ops.convert_to_tensor(
        [seed & _INT32_MAX, (seed >> 31) & _INT32_MAX], dtype="int32"
    )
