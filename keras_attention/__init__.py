"""keras_attention: attention mechanisms as Keras 3 layers on TensorFlow."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_attention import ops  # noqa: E402

__version__ = "0.1.0"

__all__ = ["ops", "__version__"]
