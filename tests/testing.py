"""The shared layer test every layer test calls (modelled on Keras's).

`run_layer_test` checks, for one layer class and one set of arguments: the
config round trip, `compute_output_shape` against an eager call, the number
of weights, a symbolic call with a `None` sequence length, saving a model that
holds the layer to `.keras` and reloading it, one `fit` step, and a
mixed-precision call. `EpochRecorder` records the epochs a `fit` runs and
can stop it as an interruption would. `value_and_gradients` differentiates
a function on whichever backend Keras runs, so one test body serves
TensorFlow, JAX and PyTorch.
"""

import os
import tempfile

import keras
import numpy as np


def _as_tuple(shape):
    return tuple(None if d is None else int(d) for d in shape)


def _structure_shapes(outputs):
    if isinstance(outputs, (tuple, list)):
        return tuple(_as_tuple(o.shape) for o in outputs)
    return _as_tuple(outputs.shape)


def _symbolic_inputs(inputs, dynamic_axes):
    symbolic = {}
    for name, array in inputs.items():
        shape = list(array.shape[1:])
        if len(array.shape) >= 3:
            for axis in dynamic_axes:
                shape[axis - 1] = None
        symbolic[name] = keras.Input(
            shape=tuple(shape), dtype=str(array.dtype), name=name
        )
    return symbolic


def _first(outputs):
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def _check_config_round_trip(layer_cls, init_kwargs):
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    for name in init_kwargs:
        assert name in config, f"get_config() is missing {name!r}"
    revived = layer_cls.from_config(config)
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is layer_cls
    assert deserialized.get_config() == config


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    call_kwargs=None,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=0,
    dynamic_axes=(1,),
    run_training_check=True,
    run_mixed_precision_check=True,
    run_saving_check=True,
):
    """Run the standard checks every layer must pass.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        input_data: a NumPy array (the single positional input) or a dict
            from call-argument name to NumPy array.
        call_kwargs: dict of extra (non-tensor) call arguments.
        expected_output_shape: the expected output shape, or a tuple of
            shapes when the layer returns several tensors.
        expected_num_trainable_weights: int, checked when given.
        expected_num_non_trainable_weights: int. Defaults to `0`.
        dynamic_axes: axes of rank >= 3 inputs set to `None` in the symbolic
            call. Defaults to `(1,)`, the sequence axis.
        run_training_check: whether to fit one step.
        run_mixed_precision_check: whether to call under `mixed_float16`.
        run_saving_check: whether to save and reload a `.keras` model.

    Returns:
        The eager output of a fresh layer on `input_data`.
    """
    call_kwargs = dict(call_kwargs or {})
    single_input = not isinstance(input_data, dict)
    inputs = {"inputs": input_data} if single_input else dict(input_data)

    def call(layer, tensors):
        if single_input:
            return layer(tensors["inputs"], **call_kwargs)
        return layer(**tensors, **call_kwargs)

    _check_config_round_trip(layer_cls, init_kwargs)

    # Eager call, output shape and weight counts.
    layer = layer_cls(**init_kwargs)
    outputs = call(layer, inputs)
    shapes = _structure_shapes(outputs)
    if expected_output_shape is not None:
        assert shapes == expected_output_shape, (shapes, expected_output_shape)
    if not isinstance(outputs, (tuple, list)):
        if single_input:
            computed = layer.compute_output_shape(input_data.shape)
        else:
            computed = layer.compute_output_shape(
                **{f"{k}_shape": v.shape for k, v in inputs.items()}
            )
        assert _as_tuple(computed) == shapes, (computed, shapes)
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert (
        len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    )
    for output in keras.tree.flatten(outputs):
        assert not np.isnan(keras.ops.convert_to_numpy(output)).any()

    # Symbolic call with a dynamic sequence length, in a Functional model.
    symbolic = _symbolic_inputs(inputs, dynamic_axes)
    sym_layer = layer_cls(**init_kwargs)
    sym_outputs = call(sym_layer, symbolic)
    for sym, eager in zip(
        keras.tree.flatten(sym_outputs), keras.tree.flatten(outputs)
    ):
        assert len(sym.shape) == len(eager.shape)
        for s, e in zip(sym.shape, eager.shape):
            assert s is None or s == e, (sym.shape, eager.shape)
    model_symbolic = symbolic["inputs"] if single_input else symbolic
    model = keras.Model(model_symbolic, sym_outputs)
    model_inputs = inputs["inputs"] if single_input else inputs
    reference = model.predict(model_inputs, verbose=0)

    if run_saving_check:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path)
        for a, b in zip(
            keras.tree.flatten(reference),
            keras.tree.flatten(reloaded.predict(model_inputs, verbose=0)),
        ):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    if run_training_check and layer.trainable_weights:
        train_model = keras.Model(model_symbolic, _first(sym_outputs))
        train_model.compile(optimizer="sgd", loss="mse")
        target = (
            np.random.default_rng(0)
            .normal(size=_first(reference).shape)
            .astype("float32")
        )
        history = train_model.fit(
            model_inputs, target, batch_size=len(target), epochs=1, verbose=0
        )
        assert np.isfinite(history.history["loss"][0])

    if run_mixed_precision_check:
        mp_layer = layer_cls(**init_kwargs, dtype="mixed_float16")
        mp_outputs = call(mp_layer, inputs)
        main_output = _first(mp_outputs)
        assert keras.backend.standardize_dtype(main_output.dtype) == (
            "float16"
        ), main_output.dtype
        for output in keras.tree.flatten(mp_outputs):
            assert not np.isnan(
                keras.ops.convert_to_numpy(output).astype("float32")
            ).any()
    return outputs


class EpochRecorder(keras.callbacks.Callback):
    """Records the epochs `fit` starts; raises `KeyboardInterrupt` at one.

    Args:
        fail_at: optional epoch index at whose start to simulate an
            interruption (Ctrl-C or a killed job).
    """

    def __init__(self, fail_at=None):
        super().__init__()
        self.epochs = []
        self.fail_at = fail_at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.fail_at:
            raise KeyboardInterrupt("simulated interruption")
        self.epochs.append(epoch)


def decode_self_attention(layer, inputs, cache, chunks, **call_kwargs):
    """Feeds an attention layer `inputs` chunk by chunk through its cache.

    Args:
        layer: a `MultiHeadAttention`-like layer taking `cache` and
            `cache_update_index`.
        inputs: `(batch, length, features)`, the query and the value.
        cache: the initial `(batch, 2, cache_len, heads, key_dim)` cache.
        chunks: `(start, stop)` pairs, in order; each is one causal call.
        **call_kwargs: more call arguments (e.g. `rolling_cache=True`).

    Returns:
        `(outputs, cache)`: the chunks' outputs concatenated along the
        length, and the last cache, both NumPy arrays.
    """
    outputs = []
    for start, stop in chunks:
        chunk = inputs[:, start:stop]
        output, cache = layer(
            chunk,
            chunk,
            cache=cache,
            cache_update_index=start,
            use_causal_mask=True,
            **call_kwargs,
        )
        outputs.append(np.asarray(keras.ops.convert_to_numpy(output)))
    cache = np.asarray(keras.ops.convert_to_numpy(cache))
    return np.concatenate(outputs, axis=1), cache


def value_and_gradients(fn, *arrays):
    """`fn(*tensors)` and the gradients of its scalar loss, on any backend.

    Args:
        fn: a function of tensors returning `(output, loss)`, `loss` a
            scalar.
        *arrays: NumPy arrays, the inputs to differentiate.

    Returns:
        `[output, d_loss/d_array_1, ...]` as NumPy arrays.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            output, loss = fn(*tensors)
        grads = tape.gradient(loss, tensors)
    elif backend == "jax":
        import jax

        def loss_fn(*tensors):
            output, loss = fn(*tensors)
            return loss, output

        (_, output), grads = jax.value_and_grad(
            loss_fn, argnums=tuple(range(len(arrays))), has_aux=True
        )(*[jax.numpy.asarray(a) for a in arrays])
    elif backend == "torch":
        import torch

        tensors = [
            keras.ops.convert_to_tensor(a).detach().requires_grad_(True)
            for a in arrays
        ]
        output, loss = fn(*tensors)
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        grads = [
            torch.zeros_like(t) if g is None else g
            for g, t in zip(grads, tensors)
        ]
        output = output.detach()
    else:  # pragma: no cover - a backend the suite does not run
        raise NotImplementedError(backend)
    return [keras.ops.convert_to_numpy(x) for x in [output, *grads]]
