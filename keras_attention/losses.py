"""Sequence losses: label-smoothed cross-entropy that ignores padding."""

import keras
from keras import ops

__all__ = ["MaskedSparseCategoricalCrossentropy"]


@keras.saving.register_keras_serializable(package="keras_attention")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Label-smoothed sparse cross-entropy over tokens, ignoring padding.

    For a label `y` among `V` classes, label smoothing with `epsilon` trains
    towards the distribution `q = (1 - epsilon) * one_hot(y) + epsilon / V`
    (Keras's `CategoricalCrossentropy(label_smoothing=...)` convention), so
    the loss of one token is
    `-(1 - epsilon) * log p[y] - (epsilon / V) * sum_k log p[k]`.
    Tokens whose label is `padding_id` get no loss, and the default
    reduction averages over the other tokens only: the loss of a batch does
    not depend on how much padding it has. It is computed in float32 from
    logits with a log-softmax, so mixed-precision logits cannot overflow.

    The padding mask comes from the labels; a Keras mask that the
    predictions may carry (e.g. propagated from `Embedding(mask_zero=True)`)
    is ignored, so that it cannot be applied twice.

    Args:
        padding_id: int, the label that gets no loss. Defaults to `0`.
        label_smoothing: float in `[0, 1)`. Defaults to `0.1` (Vaswani et
            al., 2017).
        from_logits: bool, whether `y_pred` holds logits (else
            probabilities). Defaults to `True`.
        reduction: `"sum_over_batch_size"` (the mean over non-padding
            tokens), `"sum"` or `"none"` (per-token losses, zero on
            padding). Defaults to `"sum_over_batch_size"`.
        name: optional name. Defaults to
            `"masked_sparse_categorical_crossentropy"`.
        dtype: optional dtype of the loss computations. Defaults to `None`.

    Call arguments:
        y_true: `(batch, length)` integer labels.
        y_pred: `(batch, length, vocabulary)` logits (or probabilities).
        sample_weight: optional `(batch,)` or `(batch, length)` weights.

    Returns:
        A scalar, or `(batch, length)` with `reduction="none"`.

    Example:

    >>> loss = MaskedSparseCategoricalCrossentropy(label_smoothing=0.0)
    >>> labels = np.array([[1, 0]])  # the second token is padding
    >>> logits = np.array([[[0.0, 0.0], [5.0, -5.0]]])
    >>> round(float(loss(labels, logits)), 4)  # log(2), padding ignored
    0.6931

    References:
        - [Szegedy et al., 2016](https://arxiv.org/abs/1512.00567), label
          smoothing.
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762),
          Attention is all you need (section 5.4).
    """

    def __init__(
        self,
        padding_id=0,
        label_smoothing=0.1,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="masked_sparse_categorical_crossentropy",
        dtype=None,
    ):
        if not isinstance(padding_id, int) or isinstance(padding_id, bool):
            raise ValueError(
                f"`padding_id` must be an int. Received: padding_id="
                f"{padding_id!r}"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                "`label_smoothing` must be in [0, 1). "
                f"Received: label_smoothing={label_smoothing}"
            )
        if reduction == "mean_with_sample_weight":
            raise ValueError(
                "`reduction` must be 'sum_over_batch_size', 'mean', 'sum', "
                "'none' or None (the mean is over non-padding tokens). "
                f"Received: reduction={reduction!r}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.padding_id = padding_id
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        # A fresh tensor: drop any Keras mask of `y_pred`, see the docstring.
        y_pred = ops.copy(ops.convert_to_tensor(y_pred))
        mask = ops.cast(ops.not_equal(y_true, self.padding_id), self.dtype)
        weights = mask  # (batch, length)
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, self.dtype)
            while len(sample_weight.shape) < len(mask.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight  # (batch, length)
        if self.reduction in ("sum_over_batch_size", "mean"):
            # Keras divides by the number of tokens; divide by the number of
            # non-padding tokens instead.
            total = ops.cast(ops.size(mask), self.dtype)
            weights = weights * ops.divide_no_nan(total, ops.sum(mask))
        return super().__call__(y_true, y_pred, sample_weight=weights)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")  # (batch, length)
        y_pred = ops.cast(y_pred, "float32")  # (batch, length, vocab)
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            probs = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
            log_probs = ops.log(
                ops.clip(probs, keras.config.epsilon(), 1.0)
            )  # (batch, length, vocab)
        # Padding labels may be any id: look up a valid one, masked later.
        safe_labels = ops.where(
            ops.not_equal(labels, self.padding_id), labels, 0
        )
        true_log_prob = ops.take_along_axis(
            log_probs, safe_labels[..., None], axis=-1
        )[..., 0]  # (batch, length)
        vocabulary_size = ops.cast(ops.shape(y_pred)[-1], "float32")
        losses = -(1.0 - self.label_smoothing) * true_log_prob
        if self.label_smoothing:
            mean_log_prob = ops.sum(log_probs, axis=-1) / vocabulary_size
            losses = losses - self.label_smoothing * mean_log_prob
        return ops.cast(losses, self.dtype)  # (batch, length)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "padding_id": self.padding_id,
                "label_smoothing": self.label_smoothing,
                "from_logits": self.from_logits,
            }
        )
        return config
