"""Attention layers: one public layer per module, named after the class."""

from keras_attention.layers.additive_attention import AdditiveAttention
from keras_attention.layers.dot_product_attention import DotProductAttention
from keras_attention.layers.dropout import Dropout
from keras_attention.layers.layer_normalization import LayerNormalization
from keras_attention.layers.multi_head_attention import MultiHeadAttention
from keras_attention.layers.multi_head_self_attention import (
    MultiHeadSelfAttention,
)
from keras_attention.layers.position_embedding import PositionEmbedding
from keras_attention.layers.rms_normalization import RMSNormalization
from keras_attention.layers.rotary_embedding import RotaryEmbedding
from keras_attention.layers.sinusoidal_positional_encoding import (
    SinusoidalPositionalEncoding,
)
from keras_attention.layers.token_embedding import TokenEmbedding
from keras_attention.layers.transformer_block import TransformerBlock
from keras_attention.layers.transformer_decoder_block import (
    TransformerDecoderBlock,
)

__all__ = [
    "AdditiveAttention",
    "DotProductAttention",
    "Dropout",
    "LayerNormalization",
    "MultiHeadAttention",
    "MultiHeadSelfAttention",
    "PositionEmbedding",
    "RMSNormalization",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "TokenEmbedding",
    "TransformerBlock",
    "TransformerDecoderBlock",
]
