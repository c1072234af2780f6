"""Functional-API model builders and their inference helpers.

Strings in, strings out lives one layer up, in `keras_attention.serving`
(which imports this package, never the reverse): `Translator` and
`Seq2SeqTranslator` moved there, and `models.Translator` and
`models.Seq2SeqTranslator` are deprecated aliases for one release, loaded
on first use with a `DeprecationWarning`.
"""

import importlib
import warnings

from keras_attention.models.causal_lm import build_causal_lm
from keras_attention.models.causal_lm_generator import CausalLMGenerator
from keras_attention.models.seq2seq import build_attention_seq2seq
from keras_attention.models.seq2seq_decoding import ExactMatchCallback
from keras_attention.models.seq2seq_decoding import Seq2SeqGreedyDecoder
from keras_attention.models.transformer import build_transformer
from keras_attention.models.transformer_classifier import (
    build_attention_inspector,
)
from keras_attention.models.transformer_classifier import (
    build_transformer_classifier,
)
from keras_attention.models.transformer_decoding import TransformerDecoder

__all__ = [
    "CausalLMGenerator",
    "ExactMatchCallback",
    "Seq2SeqGreedyDecoder",
    "TransformerDecoder",
    "build_attention_inspector",
    "build_attention_seq2seq",
    "build_causal_lm",
    "build_transformer",
    "build_transformer_classifier",
]


# Deprecated aliases of classes that moved to `keras_attention.serving`.
_MOVED_TO_SERVING = ("Seq2SeqTranslator", "Translator")


def __getattr__(name):
    if name in _MOVED_TO_SERVING:
        warnings.warn(
            f"`keras_attention.models.{name}` moved to "
            f"`keras_attention.serving.{name}`; the old name is removed in "
            "the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("keras_attention.serving"), name)
    raise AttributeError(
        f"module 'keras_attention.models' has no attribute {name!r}"
    )
