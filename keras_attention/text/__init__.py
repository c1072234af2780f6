"""Tokenizers that run in the TensorFlow graph, and vocabulary tools.

`SentencePieceTokenizer` keeps case and detokenizes to natural text (its
model trained by `learn_sentencepiece_model`); `WordPieceTokenizer` splits
normalised (by default lower-cased) words. `run_vocabulary.learn_or_load_*`
give a run its tokenizer: learned and saved when the run starts, reloaded
when it resumes.
"""

from keras_attention.text.character_tokenizer import CharacterTokenizer
from keras_attention.text.run_vocabulary import (
    learn_or_load_sentencepiece_tokenizer,
)
from keras_attention.text.run_vocabulary import (
    learn_or_load_wordpiece_tokenizer,
)
from keras_attention.text.sentencepiece_model import learn_sentencepiece_model
from keras_attention.text.sentencepiece_tokenizer import SentencePieceTokenizer
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary
from keras_attention.text.wordpiece_vocabulary import load_vocabulary
from keras_attention.text.wordpiece_vocabulary import normalize_text
from keras_attention.text.wordpiece_vocabulary import save_vocabulary
from keras_attention.text.wordpiece_vocabulary import split_words

__all__ = [
    "CharacterTokenizer",
    "SentencePieceTokenizer",
    "WordPieceTokenizer",
    "learn_or_load_sentencepiece_tokenizer",
    "learn_or_load_wordpiece_tokenizer",
    "learn_sentencepiece_model",
    "learn_wordpiece_vocabulary",
    "load_vocabulary",
    "normalize_text",
    "save_vocabulary",
    "split_words",
]
