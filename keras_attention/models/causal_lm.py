"""A decoder-only Transformer language model (GPT-style), Functional.

`build_causal_lm` returns a plain `keras.Model` from token ids to next-token
logits. Its forward pass is written once, in `CausalLMParts`, which the
builder runs on `keras.Input`s and `CausalLMGenerator` runs one token at a
time with a key/value cache per block (finding the layers by name, also in
a model reloaded from `.keras`).
"""

import keras
from keras import ops

from keras_attention._checks import check_positive_int
from keras_attention.layers._transformer_utils import NORMALIZATIONS
from keras_attention.layers._utils import check_rate
from keras_attention.layers.dropout import Dropout
from keras_attention.layers.position_embedding import PositionEmbedding
from keras_attention.layers.sinusoidal_positional_encoding import (
    SinusoidalPositionalEncoding,
)
from keras_attention.layers.token_embedding import TokenEmbedding
from keras_attention.layers.token_embedding import check_token_id
from keras_attention.layers.transformer_decoder_block import (
    TransformerDecoderBlock,
)

__all__ = ["CausalLMParts", "build_causal_lm"]

POSITION_ENCODINGS = ("rotary", "learned", "sinusoidal")
NORM_EPSILON = 1e-6

# The names the generator finds the layers by, also after `.keras`.
INPUT = "token_ids"
EMBEDDING = "token_embedding"
POSITIONS = "positions"
EMBEDDING_DROPOUT = "embedding_dropout"
BLOCK = "decoder_block_{}"
FINAL_NORM = "final_norm"
LOGITS = "logits"


class CausalLMParts:
    """The layers of a `build_causal_lm` model and its forward pass.

    Attributes:
        embedding: the `TokenEmbedding` (also the output projection when
            the embeddings are tied).
        positions: the positional layer, or `None` with rotary positions
            (rotated inside the attention).
        dropout: the embedding `Dropout`.
        blocks: the decoder-only `TransformerDecoderBlock`s.
        final_norm: the final normalization of the pre-LN stack.
        output_projection: the `Dense` output layer, or `None` when tied.
    """

    def __init__(
        self, embedding, positions, dropout, blocks, final_norm, output=None
    ):
        self.embedding = embedding
        self.positions = positions
        self.dropout = dropout
        self.blocks = list(blocks)
        self.final_norm = final_norm
        self.output_projection = output

    @classmethod
    def from_model(cls, model):
        """The parts of a model from `build_causal_lm` (or its reload)."""
        names = {layer.name: layer for layer in getattr(model, "layers", [])}
        if not {EMBEDDING, BLOCK.format(0), FINAL_NORM} <= set(names):
            raise ValueError(
                "`model` must be built by `build_causal_lm`. Received: a "
                f"model with the layers {sorted(names)}"
            )
        blocks = []
        while BLOCK.format(len(blocks)) in names:
            blocks.append(names[BLOCK.format(len(blocks))])
        return cls(
            names[EMBEDDING],
            names.get(POSITIONS),
            names.get(EMBEDDING_DROPOUT),
            blocks,
            names[FINAL_NORM],
            names.get(LOGITS),
        )

    @property
    def padding_id(self):
        return self.embedding.padding_id

    @property
    def vocabulary_size(self):
        return self.embedding.vocabulary_size

    @property
    def max_positions(self):
        """The size of a learned position table, else `None`."""
        return getattr(self.positions, "sequence_length", None)

    def position_table(self, length):
        """`(1, length, d_model)` encodings of positions `0..length - 1`.

        `None` with rotary positions. A decoding loop slices the row of
        each step out of it (an XLA-friendly dynamic slice).
        """
        if self.positions is None:
            return None
        d_model = self.embedding.embedding_dim
        dtype = self.embedding.compute_dtype
        return self.positions(ops.zeros((1, length, d_model), dtype))

    def embed(self, token_ids, positions=None, training=None):
        """Scaled token embeddings plus positions, then dropout.

        Args:
            token_ids: `(batch, length)` int ids.
            positions: optional `(1, length, d_model)` rows of
                `position_table` to add. Defaults to those of positions
                `0..length - 1`.
            training: whether dropout is active.
        """
        x = self.embedding(token_ids)  # (batch, length, d_model)
        if self.positions is not None:
            x = x + (self.positions(x) if positions is None else positions)
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        return x

    def logits(self, hidden):
        """Final norm and output projection: float32 `(batch, len, vocab)`."""
        hidden = self.final_norm(hidden)
        if self.output_projection is None:
            return self.embedding(hidden, reverse=True)
        return self.output_projection(hidden)

    def __call__(self, token_ids, training=None):
        """Logits of every position of whole (right-padded) sequences."""
        padding_mask = self.embedding.padding_mask(token_ids)  # (b, len)
        x = self.embed(token_ids, training=training)
        for block in self.blocks:
            x = block(
                x, decoder_padding_mask=padding_mask, training=training
            )  # (batch, length, d_model)
        return self.logits(x)


def _block_windows(sliding_window, num_layers):
    """Each block's window from `build_causal_lm`'s `sliding_window`."""
    if not isinstance(sliding_window, (list, tuple)):
        return [sliding_window] * num_layers
    if len(sliding_window) != num_layers:
        raise ValueError(
            "`sliding_window` must be an int, `None`, or a list with one "
            f"entry per block (num_layers={num_layers}). Received: "
            f"sliding_window={list(sliding_window)!r}"
        )
    return list(sliding_window)


def build_causal_lm(
    vocabulary_size,
    num_layers=2,
    d_model=128,
    num_heads=4,
    feed_forward_dim=512,
    num_key_value_heads=None,
    dropout=0.0,
    max_length=512,
    position_encoding="rotary",
    sliding_window=None,
    normalization="rms",
    activation="swiglu",
    tie_embeddings=True,
    padding_id=0,
    attention_implementation="auto",
    name="causal_lm",
):
    """Builds a decoder-only Transformer language model.

    Token ids -> scaled embeddings (plus learned or sinusoidal positions;
    none with rotary, which rotates every head's queries and keys) ->
    dropout -> `num_layers` pre-LN `TransformerDecoderBlock`s with causal
    self-attention and no cross-attention -> final normalization -> logits,
    tied to the embedding table by default. Ids equal to `padding_id` are
    padding (pad on the right for training): they are never attended to
    and their logits are meaningless, so weight the loss with
    `labels != padding_id`. The defaults are a small Llama-style model
    (rotary positions, RMSNorm, SwiGLU); `position_encoding="learned",
    normalization="layer", activation="gelu"` gives a GPT-2-style one.

    The model is a plain Functional `keras.Model` with the input
    `"token_ids"` and stable layer names (`"token_embedding"`,
    `"positions"` unless rotary, `"decoder_block_0"`, ..., `"final_norm"`,
    `"logits"` when untied), which `CausalLMGenerator` uses for cached
    generation.

    Args:
        vocabulary_size: int, the number of token ids.
        num_layers: int, the number of decoder blocks. Defaults to `2`.
        d_model: int, the model width, divisible by `num_heads`. Defaults
            to `128`.
        num_heads: int, the query heads per block. Defaults to `4`.
        feed_forward_dim: int, the hidden width of the feed-forward
            networks. Defaults to `512`.
        num_key_value_heads: int dividing `num_heads`, grouped-query
            attention (`1`: multi-query); the KV cache holds only these
            heads. Defaults to `num_heads`.
        dropout: float in `[0, 1)`, after the embeddings, on every sublayer
            output and on the attention weights. Defaults to `0.0`.
        max_length: int, the longest sequence with learned positions (the
            size of their table). Rotary and sinusoidal positions take any
            length. Defaults to `512`.
        position_encoding: `"rotary"`, `"learned"` or `"sinusoidal"`.
            Defaults to `"rotary"`.
        sliding_window: optional int, local causal attention over the last
            `sliding_window` positions in every block; or a list of
            `num_layers` ints and `None`s, one per block (`None`: that block
            attends to every earlier position), for models that interleave
            local and global layers (Gemma 2 alternates
            `[4096, None, ...]`). Defaults to `None`.
        normalization: `"rms"` or `"layer"`. Defaults to `"rms"`.
        activation: the feed-forward activation: `"swiglu"`, `"geglu"` or
            any Keras activation. Defaults to `"swiglu"`.
        tie_embeddings: bool, whether the output projection is the
            transposed embedding table. Defaults to `True`.
        padding_id: int, the padding id. Defaults to `0`.
        attention_implementation: `"auto"`, `"dense"` or `"chunked"`.
            Defaults to `"auto"`.
        name: str, the model name. Defaults to `"causal_lm"`.

    Returns:
        A `keras.Model` from `(batch, length)` int32 ids to
        `(batch, length, vocabulary_size)` float32 logits of the next id.

    Example:

    >>> model = build_causal_lm(50, num_layers=1, d_model=16, num_heads=2,
    ...                         feed_forward_dim=32, num_key_value_heads=1)
    >>> model(np.array([[5, 8, 13, 0]])).shape
    TensorShape([1, 4, 50])

    References:
        - [Radford et al., 2019](https://openai.com/research/better-language-models)
          (GPT-2)
        - [Touvron et al., 2023](https://arxiv.org/abs/2302.13971) (Llama)
    """
    vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
    num_layers = check_positive_int("num_layers", num_layers)
    d_model = check_positive_int("d_model", d_model)
    num_heads = check_positive_int("num_heads", num_heads)
    max_length = check_positive_int("max_length", max_length)
    check_rate("dropout", dropout)
    check_token_id("padding_id", padding_id, vocabulary_size)
    if position_encoding not in POSITION_ENCODINGS:
        raise ValueError(
            f"`position_encoding` must be one of {POSITION_ENCODINGS}. "
            f"Received: position_encoding={position_encoding!r}"
        )
    if d_model % num_heads:
        raise ValueError(
            "`d_model` must be divisible by `num_heads`. Received: "
            f"d_model={d_model}, num_heads={num_heads}"
        )
    windows = _block_windows(sliding_window, num_layers)
    positions = None
    if position_encoding == "learned":
        positions = PositionEmbedding(max_length, name=POSITIONS)
    elif position_encoding == "sinusoidal":
        positions = SinusoidalPositionalEncoding(name=POSITIONS)
    blocks = [
        TransformerDecoderBlock(
            num_heads=num_heads,
            feed_forward_dim=feed_forward_dim,
            num_key_value_heads=num_key_value_heads,
            dropout=dropout,
            activation=activation,
            norm_first=True,
            normalization=normalization,
            layer_norm_epsilon=NORM_EPSILON,
            sliding_window=windows[i],
            rotary=position_encoding == "rotary",
            attention_implementation=attention_implementation,
            name=BLOCK.format(i),
        )
        for i in range(num_layers)
    ]
    parts = CausalLMParts(
        TokenEmbedding(
            vocabulary_size, d_model, padding_id=padding_id, name=EMBEDDING
        ),
        positions,
        Dropout(dropout, name=EMBEDDING_DROPOUT),
        blocks,
        NORMALIZATIONS[normalization](epsilon=NORM_EPSILON, name=FINAL_NORM),
        None
        if tie_embeddings
        else keras.layers.Dense(vocabulary_size, dtype="float32", name=LOGITS),
    )
    token_ids = keras.Input(shape=(None,), dtype="int32", name=INPUT)
    return keras.Model(token_ids, parts(token_ids), name=name)
