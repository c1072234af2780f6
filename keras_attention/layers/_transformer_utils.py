"""What `TransformerBlock` and `TransformerDecoderBlock` share.

Both blocks take the same constructor arguments, validate them the same way,
derive `key_dim` from the model width the same way, and wrap every sublayer
(attention or feed-forward) in the same residual connection with a layer
normalization placed before (pre-LN) or after (post-LN) it. That logic lives
here once, in `TransformerBlockBase`.
"""

import keras
from keras import ops

from keras_attention.layers._utils import check_implementation
from keras_attention.layers._utils import check_positive_int
from keras_attention.layers._utils import check_rate
from keras_attention.layers._utils import clone_initializer
from keras_attention.layers.dropout import Dropout
from keras_attention.layers.layer_normalization import LayerNormalization
from keras_attention.layers.multi_head_attention import _check_key_value_heads
from keras_attention.layers.rms_normalization import RMSNormalization
from keras_attention.ops.attention.validation import check_soft_cap
from keras_attention.ops.masks import merge_masks

# Gated feed-forward networks (Shazeer, 2020): `activation` names the gate's.
GATED_ACTIVATIONS = {"swiglu": "silu", "geglu": "gelu"}
NORMALIZATIONS = {"layer": LayerNormalization, "rms": RMSNormalization}


def check_sequence_shape(name, shape):
    """Check a `(batch, length, d_model)` shape and return `d_model`."""
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` must be a rank-3 tensor of shape (batch, "
            f"sequence_length, d_model). Received: {name}.shape={shape}"
        )
    if shape[-1] is None:
        raise ValueError(
            f"The last axis (d_model) of `{name}` must be known. "
            f"Received: {name}.shape={shape}"
        )
    return shape[-1]


def sequence_padding_mask(
    name, sequence, implicit_mask, padding_mask, padding_mask_name
):
    """Merge the implicit Keras mask and an explicit padding mask.

    Args:
        name: the name of the sequence argument, for error messages.
        sequence: the `(batch, length, d_model)` tensor the masks describe.
        implicit_mask: the Keras mask Keras passed for `sequence`, or `None`.
            When `None`, the `_keras_mask` attached to `sequence` is used
            (Keras only auto-fills mask arguments in some call patterns).
        padding_mask: optional explicit `(batch, length)` mask.
        padding_mask_name: the name of the explicit mask argument.

    Returns:
        A boolean `(batch, length)` mask (True = real token), or `None`.
    """
    if implicit_mask is None:
        implicit_mask = getattr(sequence, "_keras_mask", None)
    for mask_name, mask in (
        (f"{name}_mask", implicit_mask),
        (padding_mask_name, padding_mask),
    ):
        if mask is None:
            continue
        mask_shape = tuple(mask.shape)
        expected = tuple(sequence.shape)[:2]
        compatible = len(mask_shape) == 2 and all(
            m is None or s is None or m == s
            for m, s in zip(mask_shape, expected)
        )
        if not compatible:
            raise ValueError(
                f"`{mask_name}` must have shape (batch, sequence_length) = "
                f"{expected}. Received: {mask_name}.shape={mask_shape}"
            )
    return merge_masks(implicit_mask, padding_mask)


class TransformerBlockBase(keras.layers.Layer):
    """Constructor, config and residual wiring shared by the two blocks.

    Subclasses build their attention sublayers in `build()` and call
    `_build_feed_forward()`; in `call()` they wrap each sublayer with
    `_residual()`.
    """

    def __init__(
        self,
        num_heads,
        feed_forward_dim,
        key_dim=None,
        value_dim=None,
        dropout=0.0,
        attention_dropout=None,
        activation="relu",
        norm_first=False,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        attention_implementation="auto",
        normalization="layer",
        num_key_value_heads=None,
        sliding_window=None,
        soft_cap=None,
        rotary=False,
        rotary_max_wavelength=10000,
        **kwargs,
    ):
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {sorted(NORMALIZATIONS)}. "
                f"Received: normalization={normalization!r}"
            )
        num_heads = check_positive_int("num_heads", num_heads)
        # Checked here too so that a bad block fails when it is made.
        _check_key_value_heads(num_heads, num_key_value_heads)
        check_positive_int("sliding_window", sliding_window, allow_none=True)
        check_soft_cap(soft_cap)
        feed_forward_dim = check_positive_int(
            "feed_forward_dim", feed_forward_dim
        )
        key_dim = check_positive_int("key_dim", key_dim, allow_none=True)
        value_dim = check_positive_int("value_dim", value_dim, allow_none=True)
        check_rate("dropout", dropout)
        check_rate("attention_dropout", attention_dropout, allow_none=True)
        if not isinstance(layer_norm_epsilon, (int, float)) or (
            layer_norm_epsilon <= 0
        ):
            raise ValueError(
                "`layer_norm_epsilon` must be a positive float. Received: "
                f"layer_norm_epsilon={layer_norm_epsilon!r}"
            )
        check_implementation(
            "attention_implementation", attention_implementation
        )
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.feed_forward_dim = feed_forward_dim
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        # A gated network keeps its name ("swiglu"); others the function.
        self.activation = (
            activation
            if activation in GATED_ACTIVATIONS
            else keras.activations.get(activation)
        )
        self.norm_first = norm_first
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.attention_implementation = attention_implementation
        self.normalization = normalization
        self.num_key_value_heads = num_key_value_heads
        self.sliding_window = sliding_window
        self.soft_cap = soft_cap
        self.rotary = rotary
        self.rotary_max_wavelength = rotary_max_wavelength
        self.supports_masking = True

    def _resolve_key_dim(self, d_model):
        """`key_dim`, or `d_model // num_heads` when it was not given."""
        if self.key_dim is not None:
            return self.key_dim
        if d_model % self.num_heads != 0:
            raise ValueError(
                f"The model width d_model={d_model} must be divisible by "
                f"num_heads={self.num_heads} when `key_dim` is not given. "
                f"Received: d_model={d_model}, num_heads={self.num_heads}"
            )
        return d_model // self.num_heads

    def _attention_kwargs(self, d_model, name, positional=True):
        """Constructor arguments for one attention sublayer.

        `positional` (self-attention) adds the sliding window and the
        rotary embedding, which cross-attention has no use for.
        """
        attention_dropout = self.attention_dropout
        if attention_dropout is None:
            attention_dropout = self.dropout
        options = dict(
            num_key_value_heads=self.num_key_value_heads,
            soft_cap=self.soft_cap,
        )
        if positional:
            options.update(
                sliding_window=self.sliding_window,
                rotary=self.rotary,
                rotary_max_wavelength=self.rotary_max_wavelength,
            )
        return dict(
            **options,
            num_heads=self.num_heads,
            key_dim=self._resolve_key_dim(d_model),
            value_dim=self.value_dim,
            output_dim=d_model,
            dropout=attention_dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            attention_implementation=self.attention_implementation,
            dtype=self.dtype_policy,
            name=name,
        )

    def _make_norm_and_dropout(self, prefix, sequence_shape):
        """The built normalization and `Dropout` of one sublayer."""
        norm = NORMALIZATIONS[self.normalization](
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name=f"{prefix}_layer_norm",
        )
        norm.build(sequence_shape)
        dropout = Dropout(
            rate=self.dropout,
            dtype=self.dtype_policy,
            name=f"{prefix}_dropout",
        )
        return norm, dropout

    def _dense(self, units, name, input_shape, activation=None):
        layer = keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )
        layer.build(input_shape)
        return layer

    def _build_feed_forward(self, sequence_shape):
        """Dense(ff, activation) -> Dense(d), or its gated variant.

        A gated network (`"swiglu"`, `"geglu"`) multiplies the intermediate
        projection by a gate, `act(x W_gate) * (x W_in)`, before the output
        projection.
        """
        d_model = sequence_shape[-1]
        gate_activation = GATED_ACTIVATIONS.get(self.activation)
        self._feed_forward_gate = None
        if gate_activation is not None:
            self._feed_forward_gate = self._dense(
                self.feed_forward_dim,
                "feed_forward_gate_dense",
                sequence_shape,
                activation=gate_activation,
            )
        self._feed_forward_intermediate = self._dense(
            self.feed_forward_dim,
            "feed_forward_intermediate_dense",
            sequence_shape,
            activation=None if gate_activation else self.activation,
        )
        self._feed_forward_output = self._dense(
            d_model,
            "feed_forward_output_dense",
            tuple(sequence_shape[:-1]) + (self.feed_forward_dim,),
        )
        self._feed_forward_norm, self._feed_forward_dropout = (
            self._make_norm_and_dropout("feed_forward", sequence_shape)
        )

    def _feed_forward(self, x):
        # On (tokens, d_model) the Dense layers are plain 2-D matmuls, which
        # TensorFlow fuses with their bias and activation (on 3-D inputs a
        # reshape sits between them).
        shape = ops.shape(x)
        tokens = ops.reshape(x, (-1, shape[-1]))  # (batch * len, d_model)
        hidden = self._feed_forward_intermediate(tokens)  # (tokens, ff)
        if self._feed_forward_gate is not None:
            hidden = hidden * self._feed_forward_gate(tokens)
        outputs = self._feed_forward_output(hidden)  # (tokens, d_model)
        return (ops.reshape(outputs, shape),)  # (batch, len, d_model)

    def _residual(self, inputs, sublayer, norm, dropout, training=None):
        """`norm(x + dropout(sublayer(x)))`, or pre-LN `x + ...(norm(x))`.

        Args:
            inputs: `(batch, length, d_model)` tensor.
            sublayer: callable on a `(batch, length, d_model)` tensor that
                returns a tuple whose first item is the `(batch, length,
                d_model)` sublayer output; the other items (attention scores,
                caches) are passed through.
            norm: the `LayerNormalization` of this sublayer.
            dropout: the `Dropout` applied to the sublayer output.
            training: whether dropout is active.

        Returns:
            `(outputs, extras)`: the `(batch, length, d_model)` result and
            the tuple of the sublayer's other outputs.
        """
        x = norm(inputs) if self.norm_first else inputs
        x, *extras = sublayer(x)  # (batch, len, d_model)
        x = dropout(x, training=training)
        x = inputs + x  # (batch, len, d_model)
        if not self.norm_first:
            x = norm(x)
        return x, tuple(extras)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "feed_forward_dim": self.feed_forward_dim,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": (
                    self.activation
                    if isinstance(self.activation, str)
                    else keras.activations.serialize(self.activation)
                ),
                "norm_first": self.norm_first,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "attention_implementation": self.attention_implementation,
                "normalization": self.normalization,
                "num_key_value_heads": self.num_key_value_heads,
                "sliding_window": self.sliding_window,
                "soft_cap": self.soft_cap,
                "rotary": self.rotary,
                "rotary_max_wavelength": self.rotary_max_wavelength,
            }
        )
        return config
