"""TensorFlow's dropout: 16 random bits per element rather than a float32.

Drawing the random numbers is most of dropout's cost on a CPU: in a small
Transformer's training step, Keras's dropout (a float32 uniform per element)
took 15-20% of the step. Here each 32-bit word from the stateless
Philox generator decides two elements, and an element is kept when its 16
bits are at least `round(rate * 65536)`, so half as many words are drawn
and none is converted to float. The rate is thereby rounded to a multiple of
1/65536 (0.1 becomes 0.1000061); the kept elements are scaled by the
inverse of the exact keep probability, so the expected output still equals
the input.
"""

import tensorflow as tf

from keras_attention.ops.dropout.seeds import seed_bits

__all__ = ["dropout", "dropout_multiplier", "seed_tensor"]

# Random bits per element, and the resolution of the rate they give.
RATE_RESOLUTION = 2**16
_INT32_MAX = 2**31 - 1


def seed_tensor(seed):
    """A `(2,)` int32 seed for TensorFlow's stateless random ops.

    Args:
        seed: see `seeds.seed_bits`; with `None`, a fresh seed from
            TensorFlow's global generator (no Keras state is touched).
    """
    if seed is None:
        return tf.random.uniform((2,), 0, _INT32_MAX, dtype=tf.int32)
    return seed_bits(seed)


def _threshold(rate):
    """The 16-bit threshold below which an element is dropped."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"`rate` must be in [0, 1]. Received: rate={rate}")
    return round(rate * RATE_RESOLUTION)


def dropout_multiplier(shape, rate, seed, dtype="float32"):
    """A tensor of `shape` holding `0` (dropped) or `1 / keep_probability`.

    Multiplying by it is inverted dropout; the same `seed` gives the same
    multiplier, which is how a backward pass can redraw a forward mask.

    Args:
        shape: 1-D int tensor or list, the shape of the multiplier.
        rate: float in `[0, 1)`, the fraction to drop (rounded to a multiple
            of 1/65536).
        seed: a `(2,)` int32 tensor, see `seed_tensor`.
        dtype: dtype of the multiplier. Defaults to `"float32"`.
    """
    threshold = _threshold(rate)
    if threshold >= RATE_RESOLUTION:
        raise ValueError(
            "`rate` must be below 1 for a multiplier (1 drops everything). "
            f"Received: rate={rate}"
        )
    # int64: a tensor may hold more than 2**31 elements.
    shape = tf.cast(tf.convert_to_tensor(shape), tf.int64)
    size = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform(
        tf.reshape((size + 1) // 2, [1]),
        seed=seed,
        minval=None,
        maxval=None,
        dtype=tf.uint32,
    )
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])  # 2 per word
    if not _statically_even(size):
        halves = halves[:size]
    keep = tf.reshape(halves >= tf.constant(threshold, tf.uint16), shape)
    scale = RATE_RESOLUTION / (RATE_RESOLUTION - threshold)
    return tf.where(keep, tf.constant(scale, dtype), tf.constant(0.0, dtype))


def _statically_even(size):
    static = tf.get_static_value(size)
    return static is not None and int(static) % 2 == 0


def dropout(x, rate, noise_shape=None, seed=None):
    """`keras_attention.ops.dropout` on TensorFlow (see the module)."""
    x = tf.convert_to_tensor(x)
    threshold = _threshold(rate)
    if threshold == 0:
        return x
    if threshold >= RATE_RESOLUTION:
        return tf.zeros_like(x)
    shape = _noise_shape(x, noise_shape)
    multiplier = dropout_multiplier(shape, rate, seed_tensor(seed), x.dtype)
    return x * multiplier


def _noise_shape(x, noise_shape):
    """The mask's shape as a tensor: `None` entries take `x`'s size."""
    dynamic = tf.shape(x, out_type=tf.int64)
    if noise_shape is None:
        return dynamic
    if len(noise_shape) != x.shape.rank:
        raise ValueError(
            "`noise_shape` must have one entry per axis of the input. "
            f"Received: noise_shape={tuple(noise_shape)} for an input of "
            f"shape {tuple(x.shape)}"
        )
    return tf.stack(
        [
            dynamic[axis] if size is None else tf.constant(size, tf.int64)
            for axis, size in enumerate(noise_shape)
        ]
    )
