"""Functional-API model builders and their inference helpers.

`Translator` moved to `keras_attention.serving`; `models.Translator` is a
deprecated alias, loaded on first use (it needs tensorflow-text).
"""

import importlib

from keras_attention.models.causal_lm import build_causal_lm
from keras_attention.models.causal_lm_generator import CausalLMGenerator
from keras_attention.models.seq2seq import build_attention_seq2seq
from keras_attention.models.seq2seq_decoding import ExactMatchCallback
from keras_attention.models.seq2seq_decoding import Seq2SeqGreedyDecoder
from keras_attention.models.seq2seq_decoding import Seq2SeqTranslator
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
    "Seq2SeqTranslator",
    "TransformerDecoder",
    "Translator",
    "build_attention_inspector",
    "build_attention_seq2seq",
    "build_causal_lm",
    "build_transformer",
    "build_transformer_classifier",
]


def __getattr__(name):
    if name == "Translator":
        return importlib.import_module("keras_attention.serving").Translator
    raise AttributeError(
        f"module 'keras_attention.models' has no attribute {name!r}"
    )
