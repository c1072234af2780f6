"""Functional-API model builders and their inference helpers."""

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
from keras_attention.models.transformer_translator import Translator

__all__ = [
    "ExactMatchCallback",
    "Seq2SeqGreedyDecoder",
    "Seq2SeqTranslator",
    "TransformerDecoder",
    "Translator",
    "build_attention_inspector",
    "build_attention_seq2seq",
    "build_transformer",
    "build_transformer_classifier",
]
