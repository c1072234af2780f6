"""The learning-rate schedule of "Attention is all you need"."""

import keras
from keras import ops

from keras_attention._checks import check_positive_int

__all__ = ["TransformerSchedule"]


@keras.saving.register_keras_serializable(package="keras_attention")
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then inverse-square-root decay (Vaswani et al.).

    `lr = scale * d_model**-0.5 * min(n**-0.5, n * warmup_steps**-1.5)`,
    where `n` is the paper's step number, counted from 1: the optimizer's
    `iterations` (updates already applied) plus one, so the very first
    update does not get a zero learning rate. The rate grows linearly for
    `warmup_steps` updates, peaks at `scale * (d_model * warmup_steps)**-0.5`
    and then decays as `n**-0.5`.

    Args:
        d_model: int, the model width.
        warmup_steps: int, the number of warm-up updates. Defaults to
            `4000`.
        scale: float, a factor on the whole schedule. Defaults to `1.0`.

    Call arguments:
        step: the optimizer's `iterations` (a scalar, 0 for the first
            update).

    Returns:
        The learning rate, a float32 scalar.

    Example:

    >>> schedule = TransformerSchedule(d_model=512, warmup_steps=4000)
    >>> round(float(schedule(3999)), 6)  # the peak, step n = 4000
    0.000699

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762),
          Attention is all you need (section 5.3).
    """

    def __init__(self, d_model, warmup_steps=4000, scale=1.0):
        d_model = check_positive_int("d_model", d_model)
        warmup_steps = check_positive_int("warmup_steps", warmup_steps)
        if not scale > 0:
            raise ValueError(
                f"`scale` must be positive. Received: scale={scale}"
            )
        self.d_model = d_model
        self.warmup_steps = warmup_steps
        self.scale = float(scale)

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0  # The paper counts from 1.
        decay = ops.rsqrt(step)
        warmup = step * float(self.warmup_steps) ** -1.5
        return (
            self.scale
            * float(self.d_model) ** -0.5
            * ops.minimum(decay, warmup)
        )

    def get_config(self):
        return {
            "d_model": self.d_model,
            "warmup_steps": self.warmup_steps,
            "scale": self.scale,
        }
