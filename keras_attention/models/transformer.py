"""The Transformer encoder-decoder (Vaswani et al., 2017) for translation.

`build_transformer` returns a plain Functional `keras.Model`. Its forward
pass is written once, in `TransformerParts`, which holds the model's layers:
the builder runs it on `keras.Input`s, and the decoders of
`keras_attention.models.transformer_decoding` find the same layers again by
name (`TransformerParts.from_model`, also on a model reloaded from `.keras`)
to encode a source once and to run the decoder one token at a time.
"""

import keras
from keras import ops

from keras_attention._checks import check_positive_int
from keras_attention.layers._utils import check_rate
from keras_attention.layers.dropout import Dropout
from keras_attention.layers.layer_normalization import LayerNormalization
from keras_attention.layers.position_embedding import PositionEmbedding
from keras_attention.layers.sinusoidal_positional_encoding import (
    SinusoidalPositionalEncoding,
)
from keras_attention.layers.token_embedding import TokenEmbedding
from keras_attention.layers.token_embedding import check_token_id
from keras_attention.layers.transformer_block import TransformerBlock
from keras_attention.layers.transformer_decoder_block import (
    TransformerDecoderBlock,
)

__all__ = [
    "POSITIONAL_ENCODINGS",
    "TokenEmbedding",
    "TransformerParts",
    "build_transformer",
]

POSITIONAL_ENCODINGS = ("sinusoidal", "learned")
LAYER_NORM_EPSILON = 1e-5

# The names of the inputs and layers of a model built here. The decoders
# find the layers by these names, also after a `.keras` round trip.
SOURCE_INPUT = "source_ids"
TARGET_INPUT = "target_ids"
SOURCE_EMBEDDING = "source_embedding"
TARGET_EMBEDDING = "target_embedding"
SHARED_EMBEDDING = "shared_embedding"
SOURCE_POSITIONS = "source_positions"
TARGET_POSITIONS = "target_positions"
SOURCE_DROPOUT = "source_dropout"
TARGET_DROPOUT = "target_dropout"
ENCODER_BLOCK = "encoder_block_{}"
DECODER_BLOCK = "decoder_block_{}"
ENCODER_FINAL_NORM = "encoder_final_norm"
DECODER_FINAL_NORM = "decoder_final_norm"
LOGITS = "logits"


class TransformerParts:
    """The layers of a `build_transformer` model and its forward pass.

    The one place the Transformer's computation is written: the builder
    runs it on `keras.Input`s, the decoders on tensors, a piece at a time.
    Holds references to the model's layers only (no state of its own).

    Attributes:
        source_embedding, target_embedding: the `TokenEmbedding`s (one
            object when the embeddings are shared).
        source_positions, target_positions: the positional layers.
        source_dropout, target_dropout: the embedding `Dropout`s.
        encoder_blocks, decoder_blocks: lists of `TransformerBlock`s and
            `TransformerDecoderBlock`s.
        encoder_final_norm, decoder_final_norm: the final
            `LayerNormalization`s of a pre-LN model, else `None`.
        output_projection: the `Dense` output layer, or `None` when the
            output is tied to `target_embedding`.
    """

    def __init__(
        self,
        source_embedding,
        target_embedding,
        source_positions,
        target_positions,
        source_dropout,
        target_dropout,
        encoder_blocks,
        decoder_blocks,
        encoder_final_norm=None,
        decoder_final_norm=None,
        output_projection=None,
    ):
        self.source_embedding = source_embedding
        self.target_embedding = target_embedding
        self.source_positions = source_positions
        self.target_positions = target_positions
        self.source_dropout = source_dropout
        self.target_dropout = target_dropout
        self.encoder_blocks = list(encoder_blocks)
        self.decoder_blocks = list(decoder_blocks)
        self.encoder_final_norm = encoder_final_norm
        self.decoder_final_norm = decoder_final_norm
        self.output_projection = output_projection

    @classmethod
    def from_model(cls, model):
        """Finds the parts of a model built by `build_transformer`.

        Args:
            model: a `keras.Model` from `build_transformer`, or reloaded from
                its `.keras` file.

        Returns:
            A `TransformerParts` sharing the model's layers.
        """
        names = {layer.name: layer for layer in getattr(model, "layers", [])}
        shared = names.get(SHARED_EMBEDDING)
        source_embedding = names.get(SOURCE_EMBEDDING, shared)
        target_embedding = names.get(TARGET_EMBEDDING, shared)
        required = (
            source_embedding,
            target_embedding,
            names.get(SOURCE_POSITIONS),
            names.get(TARGET_POSITIONS),
            names.get(ENCODER_BLOCK.format(0)),
            names.get(DECODER_BLOCK.format(0)),
        )
        if any(layer is None for layer in required):
            raise ValueError(
                "`model` must be built by `build_transformer`. Received: a "
                f"model with the layers {sorted(names)}"
            )

        def numbered(pattern):
            layers = []
            while pattern.format(len(layers)) in names:
                layers.append(names[pattern.format(len(layers))])
            return layers

        return cls(
            source_embedding=source_embedding,
            target_embedding=target_embedding,
            source_positions=names[SOURCE_POSITIONS],
            target_positions=names[TARGET_POSITIONS],
            source_dropout=names.get(SOURCE_DROPOUT),
            target_dropout=names.get(TARGET_DROPOUT),
            encoder_blocks=numbered(ENCODER_BLOCK),
            decoder_blocks=numbered(DECODER_BLOCK),
            encoder_final_norm=names.get(ENCODER_FINAL_NORM),
            decoder_final_norm=names.get(DECODER_FINAL_NORM),
            output_projection=names.get(LOGITS),
        )

    @property
    def padding_id(self):
        return self.target_embedding.padding_id

    @property
    def target_vocabulary_size(self):
        return self.target_embedding.vocabulary_size

    @property
    def max_positions(self):
        """The size of the learned position table, `None` if sinusoidal."""
        return getattr(self.target_positions, "sequence_length", None)

    def _embed(self, embedding, positions, dropout, ids, training):
        """`embedding(ids)` plus positions (a layer or precomputed)."""
        x = embedding(ids)  # (batch, len, d_model)
        if callable(positions):
            positions = positions(x)  # (batch, len, d_model)
        x = x + positions  # (batch, len, d_model)
        if dropout is not None:
            x = dropout(x, training=training)
        return x

    def target_position_table(self, length):
        """The target positional encodings of positions `0 .. length - 1`.

        Computed once by the target positional layer, so that a decoding
        loop can slice out the row of each step (an XLA-friendly dynamic
        slice) instead of calling the layer with a tensor `start_index`.

        Args:
            length: int, the number of positions.

        Returns:
            A `(1, length, d_model)` tensor in the compute dtype.
        """
        d_model = self.target_embedding.embedding_dim
        dtype = self.target_embedding.compute_dtype
        return self.target_positions(ops.zeros((1, length, d_model), dtype))

    def embed_target(self, target_ids, positions=None, training=None):
        """Scaled target embeddings plus positional encodings.

        Args:
            target_ids: `(batch, length)` int ids.
            positions: optional `(1 or batch, length, d_model)` encodings
                to add, for example rows of `target_position_table`.
                Defaults to `None`: those of positions `0 .. length - 1`.
            training: whether dropout is active.

        Returns:
            `(batch, length, d_model)` tensor.
        """
        return self._embed(
            self.target_embedding,
            self.target_positions if positions is None else positions,
            self.target_dropout,
            target_ids,
            training,
        )

    def encode(self, source_ids, training=None):
        """Runs the encoder.

        Args:
            source_ids: `(batch, src_len)` int ids.
            training: whether dropout is active.

        Returns:
            `(encoder_output, source_mask)`: the `(batch, src_len, d_model)`
            encoder output and the `(batch, src_len)` boolean padding mask
            (True for real tokens).
        """
        source_mask = self.source_embedding.padding_mask(source_ids)
        x = self._embed(
            self.source_embedding,
            self.source_positions,
            self.source_dropout,
            source_ids,
            training,
        )  # (batch, src_len, d_model)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=source_mask, training=training)
        if self.encoder_final_norm is not None:
            x = self.encoder_final_norm(x)
        return x, source_mask

    def decoder_hidden(
        self,
        target_ids,
        encoder_output,
        source_mask,
        training=None,
        return_attention_scores=False,
    ):
        """Runs the decoder blocks over a whole (teacher-forced) prefix.

        Args:
            target_ids: `(batch, tgt_len)` int ids, the start id first.
            encoder_output: `(batch, src_len, d_model)` from `encode`.
            source_mask: `(batch, src_len)` boolean mask from `encode`.
            training: whether dropout is active.
            return_attention_scores: bool, whether to also return the
                cross-attention weights of every block.

        Returns:
            The `(batch, tgt_len, d_model)` output of the last block (before
            the final norm of a pre-LN model); with
            `return_attention_scores=True`, also a list with one
            `(batch, num_heads, tgt_len, src_len)` tensor per block.
        """
        target_mask = self.target_embedding.padding_mask(target_ids)
        x = self.embed_target(target_ids, training=training)
        cross_scores = []
        for block in self.decoder_blocks:
            outputs = block(
                x,
                encoder_output,
                decoder_padding_mask=target_mask,
                encoder_padding_mask=source_mask,
                return_attention_scores=return_attention_scores,
                training=training,
            )
            if return_attention_scores:
                x, _, scores = outputs
                cross_scores.append(scores)  # (batch, heads, tgt, src)
            else:
                x = outputs  # (batch, tgt_len, d_model)
        if return_attention_scores:
            return x, cross_scores
        return x

    def logits(self, hidden):
        """The final norm (pre-LN) and the output projection, in float32.

        Args:
            hidden: `(batch, length, d_model)` decoder output.

        Returns:
            `(batch, length, target_vocabulary_size)` float32 logits.
        """
        if self.decoder_final_norm is not None:
            hidden = self.decoder_final_norm(hidden)
        if self.output_projection is None:
            return self.target_embedding(hidden, reverse=True)
        return self.output_projection(hidden)


def build_transformer(
    source_vocabulary_size,
    target_vocabulary_size,
    num_layers=2,
    d_model=128,
    num_heads=4,
    feed_forward_dim=512,
    dropout=0.1,
    max_length=256,
    positional_encoding="sinusoidal",
    share_embeddings=False,
    tie_output_embedding=False,
    norm_first=False,
    padding_id=0,
    name="transformer",
):
    """Builds the Transformer encoder-decoder for sequence-to-sequence tasks.

    Encoder: source ids -> token embeddings scaled by `sqrt(d_model)` plus
    positional encodings -> dropout -> `num_layers` `TransformerBlock`s.
    Decoder: teacher-forced target ids (starting with the start id) ->
    scaled embeddings plus positions -> dropout -> `num_layers`
    `TransformerDecoderBlock`s (causal self-attention, cross-attention to
    the encoder output, feed-forward) -> a linear projection onto the
    target vocabulary. With `norm_first=True` the blocks are pre-LN and each
    stack ends with a `LayerNormalization`; by default they are post-LN, as
    in the paper.

    Masks: ids equal to `padding_id` are padding, in the source and the
    target. Padded source tokens are never attended to, padded target
    positions attend to nothing, and the decoder's self-attention is causal,
    so logit `t` depends only on the source and on target ids `0..t`.
    Padding a source or a target with more `padding_id`s leaves the logits
    of the real positions unchanged. The logits carry no Keras mask: weight
    the loss with `target_out != padding_id`.

    Embeddings: with `share_embeddings=True` one table serves the source and
    the target (the vocabularies must then be one and the same); with
    `tie_output_embedding=True` the output projection is the transposed
    target table plus a bias, `logits = h @ E^T + b` (the paper does both,
    with a shared BPE vocabulary). The table is initialised with
    `N(0, d_model^-0.5)`, so the scaled embeddings have unit variance.

    The paper's base model is `num_layers=6, d_model=512, num_heads=8,
    feed_forward_dim=2048, dropout=0.1` (the big model: 6, 1024, 16, 4096,
    0.3). The defaults here are a small model that trains on a laptop CPU.

    The model is a plain Functional `keras.Model` with the inputs
    `"source_ids"` and `"target_ids"` (pass a dict) and stable layer names
    (`"source_embedding"`/`"target_embedding"` or `"shared_embedding"`,
    `"source_positions"`, `"target_positions"`, `"encoder_block_0"`, ...,
    `"decoder_block_0"`, ..., `"encoder_final_norm"` and
    `"decoder_final_norm"` (pre-LN only), `"logits"` (untied output only)),
    which `keras_attention.models.transformer_decoding.TransformerDecoder`
    uses for fast cached decoding.

    Args:
        source_vocabulary_size: int, the number of source ids.
        target_vocabulary_size: int, the number of target ids.
        num_layers: int, the number of encoder blocks and of decoder blocks.
            Defaults to `2`.
        d_model: int, the model width, divisible by `num_heads`. Defaults to
            `128`.
        num_heads: int, attention heads per attention layer. Defaults to
            `4`.
        feed_forward_dim: int, the hidden width of the feed-forward networks.
            Defaults to `512`.
        dropout: float in `[0, 1)`, dropout after the embeddings, on every
            sublayer output and on the attention weights. Defaults to `0.1`.
        max_length: int, the size of the learned position tables, the
            longest source and the longest target (start id included) the
            model accepts with `positional_encoding="learned"`; longer
            sequences raise an error. Sinusoidal encodings take any length
            and ignore it. Defaults to `256`.
        positional_encoding: `"sinusoidal"` (fixed) or `"learned"`.
            Defaults to `"sinusoidal"`.
        share_embeddings: bool, one embedding table for the source and the
            target. Needs `source_vocabulary_size == target_vocabulary_size`.
            Defaults to `False`.
        tie_output_embedding: bool, the output projection reuses the target
            embedding table (plus a bias). Defaults to `False`.
        norm_first: bool, pre-LN blocks with a final `LayerNormalization`
            per stack, instead of post-LN. Defaults to `False`.
        padding_id: int, the padding id of both vocabularies. Defaults to
            `0`.
        name: str, the model name. Defaults to `"transformer"`.

    Returns:
        A `keras.Model` mapping `{"source_ids": (batch, src_len),
        "target_ids": (batch, tgt_len)}` int32 ids to
        `(batch, tgt_len, target_vocabulary_size)` float32 logits (float32
        also under a mixed-precision policy).

    Example:

    >>> model = build_transformer(100, 120, num_layers=1, d_model=16,
    ...                           num_heads=2, feed_forward_dim=32)
    >>> logits = model({"source_ids": np.array([[5, 8, 13, 0]]),
    ...                 "target_ids": np.array([[1, 7, 9]])})
    >>> logits.shape
    TensorShape([1, 3, 120])

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Press and Wolf, 2017](https://arxiv.org/abs/1608.05859) (tied
          embeddings)
        - [Xiong et al., 2020](https://arxiv.org/abs/2002.04745) (pre-LN)
    """
    source_vocabulary_size = check_positive_int(
        "source_vocabulary_size", source_vocabulary_size
    )
    target_vocabulary_size = check_positive_int(
        "target_vocabulary_size", target_vocabulary_size
    )
    num_layers = check_positive_int("num_layers", num_layers)
    d_model = check_positive_int("d_model", d_model)
    num_heads = check_positive_int("num_heads", num_heads)
    feed_forward_dim = check_positive_int("feed_forward_dim", feed_forward_dim)
    check_rate("dropout", dropout)
    max_length = check_positive_int("max_length", max_length)
    if positional_encoding not in POSITIONAL_ENCODINGS:
        raise ValueError(
            f"`positional_encoding` must be one of {POSITIONAL_ENCODINGS}. "
            f"Received: positional_encoding={positional_encoding!r}"
        )
    if d_model % num_heads != 0:
        raise ValueError(
            "`d_model` must be divisible by `num_heads`. Received: "
            f"d_model={d_model}, num_heads={num_heads}"
        )
    if share_embeddings and source_vocabulary_size != target_vocabulary_size:
        raise ValueError(
            "`share_embeddings=True` needs one vocabulary for the source and "
            "the target, so the vocabulary sizes must be equal. Received: "
            f"source_vocabulary_size={source_vocabulary_size}, "
            f"target_vocabulary_size={target_vocabulary_size}"
        )
    check_token_id("padding_id", padding_id, source_vocabulary_size)
    check_token_id("padding_id", padding_id, target_vocabulary_size)

    def embedding(vocabulary_size, layer_name, use_output_bias=False):
        return TokenEmbedding(
            vocabulary_size,
            d_model,
            padding_id=padding_id,
            use_output_bias=use_output_bias,
            name=layer_name,
        )

    def positions(layer_name):
        if positional_encoding == "learned":
            return PositionEmbedding(max_length, name=layer_name)
        return SinusoidalPositionalEncoding(name=layer_name)

    if share_embeddings:
        source_embedding = target_embedding = embedding(
            source_vocabulary_size, SHARED_EMBEDDING, tie_output_embedding
        )
    else:
        source_embedding = embedding(source_vocabulary_size, SOURCE_EMBEDDING)
        target_embedding = embedding(
            target_vocabulary_size, TARGET_EMBEDDING, tie_output_embedding
        )
    block_kwargs = dict(
        num_heads=num_heads,
        feed_forward_dim=feed_forward_dim,
        dropout=dropout,
        norm_first=norm_first,
        layer_norm_epsilon=LAYER_NORM_EPSILON,
    )

    def final_norm(layer_name):
        if not norm_first:
            return None
        return LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=layer_name)

    output_projection = None
    if not tie_output_embedding:
        output_projection = keras.layers.Dense(
            target_vocabulary_size, dtype="float32", name=LOGITS
        )
    parts = TransformerParts(
        source_embedding=source_embedding,
        target_embedding=target_embedding,
        source_positions=positions(SOURCE_POSITIONS),
        target_positions=positions(TARGET_POSITIONS),
        source_dropout=Dropout(dropout, name=SOURCE_DROPOUT),
        target_dropout=Dropout(dropout, name=TARGET_DROPOUT),
        encoder_blocks=[
            TransformerBlock(**block_kwargs, name=ENCODER_BLOCK.format(i))
            for i in range(num_layers)
        ],
        decoder_blocks=[
            TransformerDecoderBlock(
                **block_kwargs, name=DECODER_BLOCK.format(i)
            )
            for i in range(num_layers)
        ],
        encoder_final_norm=final_norm(ENCODER_FINAL_NORM),
        decoder_final_norm=final_norm(DECODER_FINAL_NORM),
        output_projection=output_projection,
    )

    source_ids = keras.Input(shape=(None,), dtype="int32", name=SOURCE_INPUT)
    target_ids = keras.Input(shape=(None,), dtype="int32", name=TARGET_INPUT)
    # (batch, src_len, d_model), (batch, src_len)
    encoder_output, source_mask = parts.encode(source_ids)
    # (batch, tgt_len, d_model)
    hidden = parts.decoder_hidden(target_ids, encoder_output, source_mask)
    logits = parts.logits(hidden)  # (batch, tgt_len, target_vocabulary)
    return keras.Model(
        {SOURCE_INPUT: source_ids, TARGET_INPUT: target_ids},
        logits,
        name=name,
    )
