"""Token accuracy of sequence predictions, padding excluded."""

import keras
from keras import ops

__all__ = ["MaskedTokenAccuracy"]


@keras.saving.register_keras_serializable(package="keras_attention")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """The fraction of non-padding tokens whose argmax is the label.

    Counts are accumulated over batches (a token-weighted mean, not a mean
    of per-batch accuracies), and summed over replicas under a
    `tf.distribute` strategy.

    Args:
        padding_id: int, the label that is not counted. Defaults to `0`.
        name: optional name. Defaults to `"masked_token_accuracy"`.
        dtype: optional dtype of the result. Defaults to `None`.

    Call arguments:
        y_true: `(batch, length)` integer labels.
        y_pred: `(batch, length, vocabulary)` logits or probabilities.
        sample_weight: optional `(batch,)` or `(batch, length)` weights.

    Example:

    >>> metric = MaskedTokenAccuracy()
    >>> labels = np.array([[2, 1, 0]])  # the last token is padding
    >>> logits = np.array([[[0, 0, 9], [0, 0, 9], [9, 0, 0]]], "float32")
    >>> metric.update_state(labels, logits)
    >>> float(metric.result())
    0.5
    """

    def __init__(self, padding_id=0, name="masked_token_accuracy", dtype=None):
        if not isinstance(padding_id, int) or isinstance(padding_id, bool):
            raise ValueError(
                f"`padding_id` must be an int. Received: padding_id="
                f"{padding_id!r}"
            )
        super().__init__(name=name, dtype=dtype)
        self.padding_id = padding_id
        self.correct = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="correct"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="count"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(ops.convert_to_tensor(y_true), "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        weights = ops.cast(
            ops.not_equal(labels, self.padding_id), "float32"
        )  # (batch, length)
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            while len(sample_weight.shape) < len(weights.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight  # (batch, length)
        hits = ops.cast(ops.equal(predicted, labels), "float32")
        self.correct.assign_add(ops.sum(hits * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.cast(ops.divide_no_nan(self.correct, self.count), self.dtype)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config["padding_id"] = self.padding_id
        return config
