"""keras_attention: attention mechanisms as Keras 3 layers.

The modelling half (`ops`, `layers`, `models`' builders, `decoding`,
`losses`, `metrics`, `schedules`) runs on every Keras backend: TensorFlow,
JAX and PyTorch. The text-and-serving half (`data`, `text`, `serving`,
`export`, `training`, `viz`) is TensorFlow's and loads lazily, on first
use, so importing the package imports neither TensorFlow Datasets nor
tensorflow-text, and it never changes the environment (pick a backend
with `KERAS_BACKEND` before importing Keras, as usual).
"""

import importlib

from keras_attention import decoding
from keras_attention import layers
from keras_attention import losses
from keras_attention import metrics
from keras_attention import models
from keras_attention import ops
from keras_attention import samplers
from keras_attention import schedules
from keras_attention.layers import AdditiveAttention
from keras_attention.layers import DotProductAttention
from keras_attention.layers import Dropout
from keras_attention.layers import LayerNormalization
from keras_attention.layers import MultiHeadAttention
from keras_attention.layers import MultiHeadSelfAttention
from keras_attention.layers import PositionEmbedding
from keras_attention.layers import RMSNormalization
from keras_attention.layers import RotaryEmbedding
from keras_attention.layers import SinusoidalPositionalEncoding
from keras_attention.layers import TokenEmbedding
from keras_attention.layers import TransformerBlock
from keras_attention.layers import TransformerDecoderBlock

__version__ = "0.1.0"

# Sub-packages imported on first attribute access (PEP 562).
_LAZY_SUBMODULES = (
    "data",
    "export",
    "serving",
    "text",
    "training",
    "viz",
)

__all__ = [
    "data",
    "decoding",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "samplers",
    "schedules",
    "serving",
    "text",
    "training",
    "viz",
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
    "__version__",
]


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"keras_attention.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_attention' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
