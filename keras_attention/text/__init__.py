"""Tokenizers that run in the TensorFlow graph, and vocabulary tools.

`run_vocabulary.learn_or_load_wordpiece_tokenizer` gives a run its WordPiece
tokenizer: learned and saved when the run starts, reloaded when it resumes.
"""

from keras_attention.text.character_tokenizer import CharacterTokenizer
from keras_attention.text.run_vocabulary import (
    learn_or_load_wordpiece_tokenizer,
)
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary
from keras_attention.text.wordpiece_vocabulary import load_vocabulary
from keras_attention.text.wordpiece_vocabulary import normalize_text
from keras_attention.text.wordpiece_vocabulary import save_vocabulary
from keras_attention.text.wordpiece_vocabulary import split_words

__all__ = [
    "CharacterTokenizer",
    "WordPieceTokenizer",
    "learn_or_load_wordpiece_tokenizer",
    "learn_wordpiece_vocabulary",
    "load_vocabulary",
    "normalize_text",
    "save_vocabulary",
    "split_words",
]
