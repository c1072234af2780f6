"""Inverted dropout with one contract on every backend.

`dropout` zeroes a `rate` fraction of its input and scales the rest by the
inverse of the keep probability, so the expectation equals the input. On
TensorFlow it runs `tensorflow_kernels.dropout`, which decides each element
by 16 random bits from the stateless Philox generator (about 1.3x faster a
call on a CPU than a float32 uniform per element; `rate` is rounded to a
multiple of 1/65536 and the scale follows the rounded rate). On JAX and
PyTorch it is `keras.random.dropout`. The same int seed gives the same mask
on one backend; masks differ between backends.
"""

import keras
from keras import ops

from keras_attention.ops.dropout.seeds import seed_bits

__all__ = ["dropout", "seed_bits"]


def _check_rate(rate):
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"`rate` must be in [0, 1]. Received: rate={rate}")


def dropout(x, rate, noise_shape=None, seed=None):
    """Inverted dropout: zero a `rate` fraction of `x`, scale up the rest.

    The same contract as `keras.random.dropout`; see the module for the
    TensorFlow kernel.

    Args:
        x: the tensor to drop elements of.
        rate: float in `[0, 1]`, the fraction of elements to drop.
        noise_shape: optional shape of the random mask, broadcast to `x`'s
            shape; `None` entries take `x`'s size on that axis (e.g.
            `(batch, 1, features)` drops the same features at every step).
        seed: int, `keras.random.SeedGenerator` or `None`, see
            `seed_bits`.

    Returns:
        A tensor of `x`'s shape and dtype.

    Example:

    >>> y = dropout(keras.ops.ones((2, 1000)), 0.25, seed=1)
    >>> round(float(keras.ops.max(y)), 4)  # kept values times 1 / 0.75
    1.3333
    """
    _check_rate(rate)
    if keras.backend.backend() == "tensorflow":
        from keras_attention.ops.dropout import tensorflow_kernels

        return tensorflow_kernels.dropout(x, rate, noise_shape, seed)
    x = ops.convert_to_tensor(x)
    if noise_shape is not None and len(noise_shape) != len(x.shape):
        raise ValueError(
            "`noise_shape` must have one entry per axis of the input. "
            f"Received: noise_shape={tuple(noise_shape)} for an input of "
            f"shape {tuple(x.shape)}"
        )
    if rate == 0.0:
        return x
    if rate == 1.0:
        return ops.zeros_like(x)
    return keras.random.dropout(x, rate, noise_shape=noise_shape, seed=seed)
