"""Untrained (random) tiny models with their tokenizers, for several tests.

`translator_parts()`: a `build_transformer` model with its two WordPiece
tokenizers; `seq2seq_parts()`: a `build_attention_seq2seq` model with its
two character tokenizers, and `seq2seq_translator(parts, ...)` its
in-process `Seq2SeqTranslator`; `classifier_parts()`: a
`build_transformer_classifier` model with its WordPiece tokenizer;
`causal_lm_parts()`: a `build_causal_lm` model with its character
tokenizer. `export_every_kind(directory)` exports one of each, with the
options that put the most ops in their graphs (beam search, sampling).
"""

from keras_attention.data.translation import learn_translation_tokenizers
from keras_attention.models.causal_lm import build_causal_lm
from keras_attention.models.seq2seq import build_attention_seq2seq
from keras_attention.models.transformer import build_transformer
from keras_attention.models.transformer_classifier import (
    build_transformer_classifier,
)
from keras_attention.serving.classifier import export_text_classifier
from keras_attention.serving.language_model import export_causal_lm
from keras_attention.serving.seq2seq_translator import Seq2SeqTranslator
from keras_attention.serving.text_to_text import export_seq2seq
from keras_attention.serving.translator import Translator
from keras_attention.serving.translator_export import export_translator
from keras_attention.text.character_tokenizer import CharacterTokenizer
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer

CLASSIFIER_VOCABULARY = ["[PAD]", "[UNK]", "[START]", "[END]", "the", "cat"]
# An input every kind of export answers (`"ok"`).
EXAMPLE_TEXT = "the cat"
LM_MAX_LENGTH = 12


def tiny_transformer(source_tokenizer, target_tokenizer):
    """An untrained 1-layer `build_transformer` for the two tokenizers."""
    return build_transformer(
        source_tokenizer.vocabulary_size,
        target_tokenizer.vocabulary_size,
        num_layers=1,
        d_model=8,
        num_heads=2,
        feed_forward_dim=16,
    )


def translator_parts():
    """`(model, source_tokenizer, target_tokenizer)` of a Transformer."""
    pairs = [(f"um dois {i}", f"one two {i}") for i in range(12)]
    source_tokenizer, target_tokenizer = learn_translation_tokenizers(pairs, 40)
    model = tiny_transformer(source_tokenizer, target_tokenizer)
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


def seq2seq_translator(parts, max_source_length, max_output_length, **kwargs):
    """The eager (not XLA) `Seq2SeqTranslator` of `seq2seq_parts()`."""
    model, source, target = parts
    return Seq2SeqTranslator(
        model,
        source,
        target,
        max_output_length=max_output_length,
        max_source_length=max_source_length,
        jit_compile=False,
        **kwargs,
    )


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


def causal_lm_parts():
    """`(model, tokenizer)` of a decoder-only language model."""
    tokenizer = CharacterTokenizer.from_texts(["the cat sat on a mat"])
    model = build_causal_lm(
        tokenizer.vocabulary_size,
        num_layers=1,
        d_model=8,
        num_heads=2,
        feed_forward_dim=16,
        max_length=LM_MAX_LENGTH,
    )
    return model, tokenizer


def export_every_kind(directory):
    """`{kind: version directory}`: one tiny export of each kind."""
    seq2seq, source, target = seq2seq_parts()
    transformer, source_pieces, target_pieces = translator_parts()
    classifier, pieces = classifier_parts()
    lm, characters = causal_lm_parts()
    translator = Translator(
        transformer,
        source_pieces,
        target_pieces,
        max_output_length=6,
        beam_width=2,
    )
    return {
        "seq2seq": export_seq2seq(
            f"{directory}/seq2seq", seq2seq, source, target, 16, 6
        ),
        "translator": export_translator(f"{directory}/translator", translator),
        "classifier": export_text_classifier(
            f"{directory}/classifier", classifier, pieces, ["a", "b", "c"]
        ),
        "language_model": export_causal_lm(
            f"{directory}/language_model",
            lm,
            characters,
            LM_MAX_LENGTH,
            max_new_tokens=4,
        ),
    }
