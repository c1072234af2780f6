"""Dropout layer that draws 16 random bits per element (1.3x faster)."""

import keras

from keras_attention.layers._utils import check_floating
from keras_attention.ops.dropout import dropout


@keras.saving.register_keras_serializable(package="keras_attention")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with a cheaper random draw.

    The same arguments, config and behaviour as `keras.layers.Dropout`
    (inverted dropout in training, identity otherwise), but each element's
    fate is decided by 16 random bits rather than a float32 uniform, which
    halves the random numbers drawn: a call is about 1.3x faster on a CPU
    (forward or forward+backward), drawing them being most of its cost.
    `rate` is rounded to a multiple of 1/65536 (0.1 becomes 0.1000061), and
    kept elements are scaled by the inverse of the rounded keep probability,
    so the expected output equals the input. The blocks and model builders
    of this package use it.

    Args:
        rate: float in `[0, 1]`, the fraction of inputs to drop.
        noise_shape: optional shape of the binary mask, broadcast to the
            input's shape; `None` entries take the input's size.
        seed: optional int, the seed of the layer's random generator.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a tensor of any rank.
        training: bool, whether to drop (only in training).

    Example:

    >>> layer = Dropout(0.5, seed=0)
    >>> x = keras.ops.ones((2, 4))
    >>> bool(keras.ops.all(layer(x) == x))  # inference: unchanged
    True
    >>> y = layer(x, training=True)  # entries are 0.0 or 2.0

    References:
        - [Srivastava et al., 2014](https://jmlr.org/papers/v15/srivastava14a.html)
    """

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            check_floating("inputs", inputs)
            return dropout(
                inputs,
                self.rate,
                noise_shape=self.noise_shape,
                seed=self.seed_generator,
            )
        return inputs
