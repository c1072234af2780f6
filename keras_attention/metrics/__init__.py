"""Evaluation metrics: token accuracy (a Keras metric) and corpus BLEU."""

from keras_attention.metrics.bleu import BleuScore
from keras_attention.metrics.bleu import corpus_bleu
from keras_attention.metrics.bleu import tokenize_13a
from keras_attention.metrics.masked_token_accuracy import MaskedTokenAccuracy

__all__ = [
    "BleuScore",
    "MaskedTokenAccuracy",
    "corpus_bleu",
    "tokenize_13a",
]
