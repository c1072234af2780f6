"""Checks of values known only at run time, on each backend's terms.

A layer checks what it can from static shapes and Python ints, raising a
`ValueError` at once. What depends on a tensor's value (a cache index, a
traced sequence length) is checked by `check_then`, the one place where
backends differ:

- TensorFlow inside a `tf.function`: a `tf.debugging.Assert` the result
  depends on, raising `InvalidArgumentError` when the graph runs (XLA
  compiles it away);
- TensorFlow executing eagerly, PyTorch (eager) and JAX outside a trace: a
  `ValueError` right away;
- JAX inside `jit`: no check (a traced value has no truth value; use
  `jax.experimental.checkify` around the call to keep it).
"""

import keras
from keras import ops

__all__ = ["check_then"]


def _is_traced(condition):
    try:
        import jax
    except ImportError:  # pragma: no cover - JAX not installed
        return False
    return isinstance(condition, jax.core.Tracer)


def check_then(tensor, condition, data):
    """`tensor`, once the scalar boolean `condition` has been checked.

    Args:
        tensor: the tensor to return; on TensorFlow it is computed only
            after the check.
        condition: scalar boolean tensor, True when all is well.
        data: list of strings and scalar tensors that make up the error
            message (no string formatting of tensors, which XLA cannot
            compile).

    Returns:
        `tensor`.

    Example:

    >>> x = keras.ops.ones((2,))
    >>> y = check_then(x, keras.ops.all(x > 0), ["x must be positive"])
    >>> tuple(y.shape)
    (2,)
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.executing_eagerly():
            return _check_now(tensor, condition, data)
        with tf.control_dependencies([tf.debugging.Assert(condition, data)]):
            return tf.identity(tensor)
    if backend == "jax" and _is_traced(condition):
        return tensor
    return _check_now(tensor, condition, data)


def _check_now(tensor, condition, data):
    if not bool(ops.convert_to_numpy(condition)):
        raise ValueError(
            "".join(
                str(ops.convert_to_numpy(part))
                if not isinstance(part, str)
                else part
                for part in data
            )
        )
    return tensor
