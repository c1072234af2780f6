"""Evaluation metrics: token accuracy (a Keras metric), corpus BLEU and the
held-out evaluation of a translation system (`evaluate_translations`)."""

from keras_attention.metrics.bleu import BleuScore
from keras_attention.metrics.bleu import corpus_bleu
from keras_attention.metrics.bleu import tokenize_13a
from keras_attention.metrics.masked_token_accuracy import MaskedTokenAccuracy
from keras_attention.metrics.translation_evaluation import TranslationEvaluation
from keras_attention.metrics.translation_evaluation import evaluate_translations

__all__ = [
    "BleuScore",
    "MaskedTokenAccuracy",
    "TranslationEvaluation",
    "corpus_bleu",
    "evaluate_translations",
    "tokenize_13a",
]
