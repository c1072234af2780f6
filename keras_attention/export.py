"""Deprecated: moved to `keras_attention.serving`.

The SavedModel exports (`export_text_to_text`, `export_seq2seq`,
`export_text_classifier`, `export_translator`), the fresh-process check
and the serving constants moved to keras_attention.serving; this alias is
kept for one release. Import them from `keras_attention.serving`.
"""

from keras_attention.serving import SERVING_ATTENTION
from keras_attention.serving import SERVING_CLASS_IDS
from keras_attention.serving import SERVING_OUTPUT
from keras_attention.serving import SERVING_PROBABILITIES
from keras_attention.serving import SERVING_SIGNATURE
from keras_attention.serving import SOURCE_VOCABULARY_ASSET
from keras_attention.serving import TARGET_VOCABULARY_ASSET
from keras_attention.serving import export_seq2seq
from keras_attention.serving import export_text_classifier
from keras_attention.serving import export_text_to_text
from keras_attention.serving import export_translator
from keras_attention.serving import run_saved_model_in_fresh_process

__all__ = [
    "SERVING_ATTENTION",
    "SERVING_CLASS_IDS",
    "SERVING_OUTPUT",
    "SERVING_PROBABILITIES",
    "SERVING_SIGNATURE",
    "SOURCE_VOCABULARY_ASSET",
    "TARGET_VOCABULARY_ASSET",
    "export_seq2seq",
    "export_text_classifier",
    "export_text_to_text",
    "export_translator",
    "run_saved_model_in_fresh_process",
]
