"""Untrained (random) tiny models with their tokenizers, for several tests.

`translator_parts()`: a `build_transformer` model with its two WordPiece
tokenizers; `seq2seq_parts()`: a `build_attention_seq2seq` model with its
two character tokenizers; `classifier_parts()`: a
`build_transformer_classifier` model with its WordPiece tokenizer.
"""

from keras_attention.data.translation import learn_translation_tokenizers
from keras_attention.models.seq2seq import build_attention_seq2seq
from keras_attention.models.transformer import build_transformer
from keras_attention.models.transformer_classifier import (
    build_transformer_classifier,
)
from keras_attention.text.character_tokenizer import CharacterTokenizer
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer

CLASSIFIER_VOCABULARY = ["[PAD]", "[UNK]", "[START]", "[END]", "the", "cat"]


def translator_parts():
    """`(model, source_tokenizer, target_tokenizer)` of a Transformer."""
    pairs = [(f"um dois {i}", f"one two {i}") for i in range(12)]
    source_tokenizer, target_tokenizer = learn_translation_tokenizers(pairs, 40)
    model = build_transformer(
        source_tokenizer.vocabulary_size,
        target_tokenizer.vocabulary_size,
        num_layers=1,
        d_model=8,
        num_heads=2,
        feed_forward_dim=16,
    )
    return model, source_tokenizer, target_tokenizer


def seq2seq_parts():
    """`(model, source_tokenizer, target_tokenizer)` of an RNN seq2seq."""
    source = CharacterTokenizer.from_texts(["aug 19, 2003/"], lowercase=True)
    target = CharacterTokenizer.from_texts(["0123456789-"])
    model = build_attention_seq2seq(
        source.vocabulary_size,
        target.vocabulary_size,
        embedding_dim=4,
        units=8,
        rnn_type="lstm",
        attention="additive",
    )
    return model, source, target


def classifier_parts(num_classes=3, max_sequence_length=16):
    """`(model, tokenizer)` of a classifier with learned positions."""
    model = build_transformer_classifier(
        len(CLASSIFIER_VOCABULARY),
        num_classes,
        num_layers=1,
        num_heads=2,
        embedding_dim=8,
        feed_forward_dim=16,
        max_sequence_length=max_sequence_length,
        positional_encoding="learned",
    )
    return model, WordPieceTokenizer(CLASSIFIER_VOCABULARY)
