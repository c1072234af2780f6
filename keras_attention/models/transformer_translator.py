"""Deprecated: `Translator` moved to `keras_attention.serving`.

`Translator` and the output keys `SERVING_IDS` and `SERVING_SCORES` moved
to keras_attention.serving; this alias is kept for one release. Import
them from `keras_attention.serving`.
"""

from keras_attention.serving import SERVING_IDS
from keras_attention.serving import SERVING_SCORES
from keras_attention.serving import Translator

__all__ = ["SERVING_IDS", "SERVING_SCORES", "Translator"]
