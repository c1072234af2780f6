"""Transformer encoder text classifier and its attention inspector."""

import keras
from keras import ops

from keras_attention._checks import check_positive_int
from keras_attention.layers._utils import check_implementation
from keras_attention.layers._utils import check_rate
from keras_attention.layers.dropout import Dropout
from keras_attention.layers.layer_normalization import LayerNormalization
from keras_attention.layers.position_embedding import PositionEmbedding
from keras_attention.layers.sinusoidal_positional_encoding import (
    SinusoidalPositionalEncoding,
)
from keras_attention.layers.transformer_block import TransformerBlock

__all__ = [
    "CLS_TOKEN",
    "POOLINGS",
    "POSITIONAL_ENCODINGS",
    "build_attention_inspector",
    "build_transformer_classifier",
]

POSITIONAL_ENCODINGS = ("sinusoidal", "learned")
POOLINGS = ("mean", "cls")
# The label of the class token in attention plots: with `pooling="cls"`
# every sequence the blocks see starts with it.
CLS_TOKEN = "[CLS]"
PADDING_ID = 0
TOKEN_INPUT = "token_ids"
BLOCK_NAME = "transformer_block_{}"


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {choices}. Received: {name}={value!r}"
        )


def _prepend_class_token(token_ids, class_token_id):
    """`(batch, len)` ids -> `(batch, 1 + len)`, the class token first."""
    first = ops.ones_like(token_ids[:, :1]) * class_token_id  # (batch, 1)
    return ops.concatenate([first, token_ids], axis=1)  # (batch, 1 + len)


def _masked_mean(sequence, token_ids):
    """Mean over the non-padding positions; `0` for an all-padding row."""
    weights = ops.cast(
        ops.expand_dims(ops.not_equal(token_ids, PADDING_ID), -1),
        sequence.dtype,
    )  # (batch, len, 1)
    total = ops.sum(sequence * weights, axis=1)  # (batch, d)
    count = ops.maximum(ops.sum(weights, axis=1), 1.0)  # (batch, 1)
    return total / count  # (batch, d)


def build_transformer_classifier(
    vocabulary_size,
    num_classes,
    num_layers=2,
    num_heads=4,
    embedding_dim=64,
    feed_forward_dim=128,
    dropout=0.1,
    max_sequence_length=None,
    positional_encoding="sinusoidal",
    pooling="mean",
    norm_first=False,
    attention_implementation="auto",
    name="transformer_classifier",
):
    """Builds an encoder-only Transformer that classifies token sequences.

    `token_ids (batch, seq_len)` (id `0` is padding) -> token embeddings
    plus positional encodings (fixed sinusoids or a learned table) ->
    dropout -> `num_layers` `TransformerBlock`s -> pooling -> dropout ->
    `Dense(num_classes)` -> softmax. The padding mask of
    `Embedding(mask_zero=True)` reaches every block, so padded tokens are
    never attended to and padding a sequence to any length leaves its
    prediction unchanged.

    Pooling: `"mean"` averages the final token states over the non-padding
    tokens; `"cls"` prepends a class token (its own learned embedding, id
    `vocabulary_size`, so the tokenizer needs no special token) to every
    sequence and classifies its final state, as BERT does. With `"cls"` the
    attention scores cover `1 + seq_len` tokens, the class token first.

    A binary classifier is `num_classes=2`; the output is always the
    `(batch, num_classes)` class probabilities in float32 (train with
    `SparseCategoricalCrossentropy()`). The model is a plain Functional
    `keras.Model` with the input `"token_ids"`; the blocks are named
    `"transformer_block_0"`, `"transformer_block_1"`, ... and
    `build_attention_inspector` returns their attention weights.

    Args:
        vocabulary_size: int, the number of token ids (padding included).
        num_classes: int >= 2, the number of classes.
        num_layers: int, the number of `TransformerBlock`s. Defaults to `2`.
        num_heads: int, attention heads per block. Defaults to `4`.
        embedding_dim: int, the model width, divisible by `num_heads`.
            Defaults to `64`.
        feed_forward_dim: int, the hidden width of each block's
            feed-forward network. Defaults to `128`.
        dropout: float in `[0, 1)`, dropout after the embeddings, inside the
            blocks and before the classification head. Defaults to `0.1`.
        max_sequence_length: int, the longest `token_ids` sequence; needed
            by `positional_encoding="learned"` (the size of the position
            table, plus one for the class token). Sinusoidal encodings take
            any length. Defaults to `None`.
        positional_encoding: `"sinusoidal"` or `"learned"`. Defaults to
            `"sinusoidal"`.
        pooling: `"mean"` or `"cls"`. Defaults to `"mean"`.
        norm_first: bool, pre-LN blocks (with a final `LayerNormalization`)
            instead of post-LN. Defaults to `False`.
        attention_implementation: `"auto"`, `"dense"` or `"chunked"`, see
            `keras_attention.ops.scaled_dot_product_attention`. Defaults to
            `"auto"`.
        name: str, the model name. Defaults to `"transformer_classifier"`.

    Returns:
        A `keras.Model` mapping `(batch, seq_len)` int32 ids to
        `(batch, num_classes)` probabilities.

    Example:

    >>> model = build_transformer_classifier(
    ...     vocabulary_size=100, num_classes=3, num_layers=1, num_heads=2,
    ...     embedding_dim=16, feed_forward_dim=32)
    >>> model.predict(np.array([[5, 8, 13, 0]]), verbose=0).shape
    (1, 3)

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Devlin et al., 2018](https://arxiv.org/abs/1810.04805) (the
          class token)
    """
    vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            "`num_classes` must be an integer >= 2 (use 2 for a binary "
            f"classifier). Received: num_classes={num_classes!r}"
        )
    num_layers = check_positive_int("num_layers", num_layers)
    num_heads = check_positive_int("num_heads", num_heads)
    embedding_dim = check_positive_int("embedding_dim", embedding_dim)
    feed_forward_dim = check_positive_int("feed_forward_dim", feed_forward_dim)
    check_rate("dropout", dropout)
    max_sequence_length = check_positive_int(
        "max_sequence_length", max_sequence_length, True
    )
    _check_choice(
        "positional_encoding", positional_encoding, POSITIONAL_ENCODINGS
    )
    _check_choice("pooling", pooling, POOLINGS)
    check_implementation("attention_implementation", attention_implementation)
    if embedding_dim % num_heads != 0:
        raise ValueError(
            "`embedding_dim` must be divisible by `num_heads`. Received: "
            f"embedding_dim={embedding_dim}, num_heads={num_heads}"
        )
    if positional_encoding == "learned" and max_sequence_length is None:
        raise ValueError(
            "`positional_encoding='learned'` needs `max_sequence_length`. "
            "Received: max_sequence_length=None"
        )

    token_ids = keras.Input(shape=(None,), dtype="int32", name=TOKEN_INPUT)
    ids = token_ids
    table_size = vocabulary_size
    if pooling == "cls":
        ids = _prepend_class_token(ids, vocabulary_size)  # (batch, 1 + len)
        table_size += 1
    # (batch, len, d), with the padding mask from here on.
    x = keras.layers.Embedding(
        table_size, embedding_dim, mask_zero=True, name="token_embedding"
    )(ids)
    if positional_encoding == "sinusoidal":
        positions = SinusoidalPositionalEncoding(name="position_encoding")(x)
    else:
        positions = PositionEmbedding(
            sequence_length=max_sequence_length + (pooling == "cls"),
            name="position_embedding",
        )(x)
    x = keras.layers.Add(name="add_positions")([x, positions])
    x = Dropout(dropout, name="embedding_dropout")(x)
    # The blocks also return their attention weights (the dense attention
    # computes them anyway), for `build_attention_inspector`; the chunked
    # one never materialises them.
    return_scores = attention_implementation != "chunked"
    for index in range(num_layers):
        x = TransformerBlock(
            num_heads=num_heads,
            feed_forward_dim=feed_forward_dim,
            dropout=dropout,
            norm_first=norm_first,
            attention_implementation=attention_implementation,
            name=BLOCK_NAME.format(index),
        )(x, return_attention_scores=return_scores)
        if return_scores:
            x, _ = x  # (batch, len, d); scores (batch, heads, len, len)
    if norm_first:
        x = LayerNormalization(epsilon=1e-5, name="final_layer_norm")(x)
    if pooling == "cls":
        pooled = x[:, 0, :]  # (batch, d)
    else:
        pooled = _masked_mean(x, ids)  # (batch, d)
    pooled = Dropout(dropout, name="head_dropout")(pooled)
    logits = keras.layers.Dense(num_classes, name="logits")(pooled)
    probabilities = keras.layers.Activation(
        "softmax", dtype="float32", name="probabilities"
    )(logits)  # (batch, num_classes)
    return keras.Model(token_ids, probabilities, name=name)


def build_attention_inspector(model):
    """A model that returns the attention weights of every encoder block.

    It shares the layers (and weights) of `model`: its outputs are the
    attention weights that the blocks of `model` return beside their
    outputs (unused by the classifier itself). Padded keys get zero weight;
    rows of padded queries are all zeros.

    Args:
        model: a model built by `build_transformer_classifier` (or reloaded
            from its `.keras` file), with an attention implementation other
            than `"chunked"`; or any Functional model whose
            `TransformerBlock`s are called with
            `return_attention_scores=True`.

    Returns:
        A `keras.Model` with the input of `model` whose output is a dict
        from each block's name (`"transformer_block_0"`, ...) to its
        `(batch, num_heads, len, len)` attention weights. With
        `pooling="cls"`, `len` is `1 + seq_len` and position 0 is the class
        token (`CLS_TOKEN`).

    Example:

    >>> model = build_transformer_classifier(100, 2, num_layers=2,
    ...     num_heads=2, embedding_dim=16, feed_forward_dim=32)
    >>> inspector = build_attention_inspector(model)
    >>> scores = inspector.predict(np.array([[5, 8, 13, 0]]), verbose=0)
    >>> scores["transformer_block_1"].shape
    (1, 2, 4, 4)
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs"):
        raise ValueError(
            "`model` must be a Functional `keras.Model`. "
            f"Received: {type(model).__name__}"
        )
    blocks = [
        layer for layer in model.layers if isinstance(layer, TransformerBlock)
    ]
    if not blocks:
        raise ValueError(
            "`model` has no `TransformerBlock`. Received: a model with "
            f"layers {[layer.name for layer in model.layers]}"
        )
    scores = {}
    for block in blocks:
        outputs = block.output
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
            raise ValueError(
                "Every `TransformerBlock` of `model` must be called with "
                "`return_attention_scores=True` (as in models built by "
                "`build_transformer_classifier` with an attention "
                "implementation other than 'chunked'). Received: block "
                f"{block.name!r} returning {outputs}"
            )
        scores[block.name] = outputs[1]  # (batch, heads, len, len)
    return keras.Model(model.input, scores, name=f"{model.name}_attention")
