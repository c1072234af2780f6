"""`EinsumDense` run as one 2-D matmul, for the attention projections."""

import keras
from keras import ops


def _contracted_axes(equation):
    """Number of trailing input axes `equation` contracts with the kernel.

    Returns 0 when the equation is not of the form `<batch><c>,<c><out>->
    <batch><out>`, i.e. when it is not a plain matmul of the input's last
    axes with the kernel's first axes.
    """
    inputs, rest = equation.split(",")
    kernel, output = rest.split("->")
    contracted = "".join(a for a in inputs if a in kernel and a not in output)
    count = len(contracted)
    if (
        count == 0
        or not inputs.endswith(contracted)
        or not kernel.startswith(contracted)
        or output != inputs[:-count] + kernel[count:]
    ):
        return 0
    return count


@keras.saving.register_keras_serializable(package="keras_attention")
class MatMulEinsumDense(keras.layers.EinsumDense):
    """`keras.layers.EinsumDense` that runs as a single 2-D matmul.

    For equations such as `"btd,dhk->bthk"` (project to heads) and
    `"bthk,hko->bto"` (merge heads), TensorFlow runs the einsum as a batched
    matmul that broadcasts the kernel over the batch, whose gradient is two
    to three times slower than the matmul of the input flattened to
    `(tokens, features)`. This layer flattens, multiplies and reshapes back.
    Weights, config and results are those of `EinsumDense`. Other equations,
    and quantized layers, take `EinsumDense`'s own path.

    Args:
        **kwargs: the arguments of `keras.layers.EinsumDense`.

    Example:

    >>> layer = MatMulEinsumDense("btd,dhk->bthk", output_shape=(None, 2, 4))
    >>> layer(keras.ops.ones((3, 5, 8))).shape
    TensorShape([3, 5, 2, 4])
    """

    def call(self, inputs, training=None, sections=None):
        """Projects `inputs`; with `sections`, returns one output per section.

        Args:
            inputs: the input tensor.
            training: unused, as in `EinsumDense`.
            sections: optional list of sizes that add up to the kernel's
                last axis. Each section is projected with its own slice of
                the kernel (and bias), which is faster than one projection
                split afterwards: the split copies the output strided and
                its gradient concatenates.
        """
        if sections is not None and sum(sections) != self.kernel.shape[-1]:
            raise ValueError(
                "`sections` must add up to the last axis of the kernel, "
                f"{self.kernel.shape[-1]}. Received: sections={sections}"
            )
        contracted = _contracted_axes(self.equation)
        full_bias = self.bias is None or tuple(self.bias.shape) == tuple(
            self.kernel.shape[contracted:]
        )
        ends = (
            None
            if sections is None
            else [sum(sections[: i + 1]) for i in range(len(sections))]
        )
        if not contracted or not full_bias or self.quantization_mode:
            outputs = super().call(inputs, training=training)
            if sections is None:
                return outputs
            return ops.split(outputs, ends[:-1], axis=-1)
        kernel, bias = self.kernel, self.bias
        if sections is None:
            return self._matmul(inputs, kernel, bias, contracted)
        # One split (its gradient: one concat) rather than a slice per
        # section (a zero-padded gradient each, then their sum).
        kernels = ops.split(kernel, ends[:-1], axis=-1)
        biases = (
            [None] * len(sections)
            if bias is None
            else ops.split(bias, ends[:-1], axis=-1)
        )
        return [
            self._matmul(inputs, k, b, contracted)
            for k, b in zip(kernels, biases)
        ]

    def _matmul(self, inputs, kernel, bias, contracted):
        """`inputs` times `kernel` over `contracted` axes as a 2-D matmul."""
        in_features = 1
        for size in kernel.shape[:contracted]:
            in_features *= size
        flat = ops.reshape(inputs, (-1, in_features))  # (tokens, in)
        outputs = ops.matmul(flat, ops.reshape(kernel, (in_features, -1)))
        if bias is not None:
            outputs = ops.add(outputs, ops.reshape(bias, (-1,)))
        batch_shape = ops.shape(inputs)[:-contracted]
        outputs = ops.reshape(
            outputs, tuple(batch_shape) + tuple(kernel.shape[contracted:])
        )
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_spec(self, inputs, training=None, sections=None):
        spec = super().compute_output_spec(inputs)
        if sections is None:
            return spec
        return [
            keras.KerasTensor(spec.shape[:-1] + (size,), dtype=spec.dtype)
            for size in sections
        ]
