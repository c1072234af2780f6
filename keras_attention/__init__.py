"""keras_attention: attention mechanisms as Keras 3 layers on TensorFlow."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_attention import data  # noqa: E402  (registers TFDS builders)
from keras_attention import decoding  # noqa: E402
from keras_attention import export  # noqa: E402
from keras_attention import layers  # noqa: E402
from keras_attention import losses  # noqa: E402
from keras_attention import metrics  # noqa: E402
from keras_attention import models  # noqa: E402
from keras_attention import ops  # noqa: E402
from keras_attention import schedules  # noqa: E402
from keras_attention import text  # noqa: E402
from keras_attention import training  # noqa: E402
from keras_attention.layers import AdditiveAttention  # noqa: E402
from keras_attention.layers import DotProductAttention  # noqa: E402
from keras_attention.layers import Dropout  # noqa: E402
from keras_attention.layers import LayerNormalization  # noqa: E402
from keras_attention.layers import MultiHeadAttention  # noqa: E402
from keras_attention.layers import MultiHeadSelfAttention  # noqa: E402
from keras_attention.layers import PositionEmbedding  # noqa: E402
from keras_attention.layers import SinusoidalPositionalEncoding  # noqa: E402
from keras_attention.layers import TokenEmbedding  # noqa: E402
from keras_attention.layers import TransformerBlock  # noqa: E402
from keras_attention.layers import TransformerDecoderBlock  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "data",
    "decoding",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "schedules",
    "text",
    "training",
    "AdditiveAttention",
    "DotProductAttention",
    "Dropout",
    "LayerNormalization",
    "MultiHeadAttention",
    "MultiHeadSelfAttention",
    "PositionEmbedding",
    "SinusoidalPositionalEncoding",
    "TokenEmbedding",
    "TransformerBlock",
    "TransformerDecoderBlock",
    "__version__",
]
