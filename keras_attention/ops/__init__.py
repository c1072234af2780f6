"""Pure tensor functions with no weights: attention, masks, dropout, norms."""

from keras_attention.ops.attention import masked_softmax
from keras_attention.ops.attention import scaled_dot_product_attention
from keras_attention.ops.dropout import dropout
from keras_attention.ops.layer_norm import layer_normalization
from keras_attention.ops.masks import causal_mask
from keras_attention.ops.masks import compute_attention_mask
from keras_attention.ops.masks import merge_masks
from keras_attention.ops.masks import padding_mask
from keras_attention.ops.masks import sliding_window_mask
from keras_attention.ops.updates import slice_update

__all__ = [
    "scaled_dot_product_attention",
    "masked_softmax",
    "dropout",
    "layer_normalization",
    "causal_mask",
    "compute_attention_mask",
    "merge_masks",
    "padding_mask",
    "sliding_window_mask",
    "slice_update",
]
