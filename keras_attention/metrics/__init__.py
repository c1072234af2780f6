"""Evaluation metrics: token accuracy (a Keras metric), corpus BLEU (sacreBLEU
itself, `sacre_bleu`, and this package's copy, `corpus_bleu`) and the
held-out evaluation of a translation system (`evaluate_translations`)."""

from keras_attention.metrics.bleu import BleuScore
from keras_attention.metrics.bleu import corpus_bleu
from keras_attention.metrics.bleu import tokenize_13a
from keras_attention.metrics.masked_token_accuracy import MaskedTokenAccuracy
from keras_attention.metrics.sacrebleu_score import SacreBleuScore
from keras_attention.metrics.sacrebleu_score import sacre_bleu
from keras_attention.metrics.translation_evaluation import TranslationEvaluation
from keras_attention.metrics.translation_evaluation import evaluate_translations

__all__ = [
    "BleuScore",
    "MaskedTokenAccuracy",
    "SacreBleuScore",
    "TranslationEvaluation",
    "corpus_bleu",
    "evaluate_translations",
    "sacre_bleu",
    "tokenize_13a",
]
