"""`slice_update` that a stock TF Serving model server can run.

On TensorFlow, `keras.ops.slice_update` is XLA's `XlaDynamicUpdateSlice`,
an op that TF Serving runs only with `--xla_cpu_compilation_enabled=true`.
The decoders write their caches and output buffers with it at every step,
so it would end up in every exported SavedModel that decodes. Here the
TensorFlow version is a `tensor_scatter_nd_update` over the updated
positions instead: a core op, with static shapes, so it runs in plain
graphs and under `jit_compile=True` alike. Other backends use
`keras.ops.slice_update`.
"""

import keras
from keras import ops

__all__ = ["slice_update"]


def slice_update(inputs, start_indices, updates):
    """`inputs` with `updates` written from `start_indices` on.

    Args:
        inputs: the tensor to update.
        start_indices: one int (or scalar int tensor) per axis of
            `inputs`, where `updates` begins. The updated block must lie
            inside `inputs` (callers check this; unlike XLA's op, nothing
            is clamped).
        updates: a tensor of the rank and dtype of `inputs`.

    Returns:
        The updated tensor, shaped like `inputs`.

    Example:

    >>> x = keras.ops.zeros((2, 5), "int32")
    >>> keras.ops.convert_to_numpy(slice_update(x, [0, 3], keras.ops.ones(
    ...     (2, 1), "int32"))).tolist()
    [[0, 0, 0, 1, 0], [0, 0, 0, 1, 0]]
    """
    if keras.backend.backend() != "tensorflow":
        return ops.slice_update(inputs, start_indices, updates)
    import tensorflow as tf

    updates = tf.cast(updates, inputs.dtype)
    shape = tf.shape(updates)
    axes = [
        tf.range(shape[axis]) + tf.cast(start, tf.int32)
        for axis, start in enumerate(start_indices)
    ]  # the positions written along each axis
    grid = tf.meshgrid(*axes, indexing="ij")
    indices = tf.stack(grid, axis=-1)  # updates.shape + (rank,)
    return tf.tensor_scatter_nd_update(inputs, indices, updates)
