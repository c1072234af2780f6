"""A WordPiece subword tokenizer layer that runs in the TensorFlow graph."""

import collections
import os

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_attention.text._subword_tokenizer import SubwordTokenizer
from keras_attention.text._subword_tokenizer import batch_of_texts
from keras_attention.text._subword_tokenizer import check_sequence_length
from keras_attention.text._subword_tokenizer import detokenize_with
from keras_attention.text._subword_tokenizer import frame_ids
from keras_attention.text.wordpiece_vocabulary import END_TOKEN
from keras_attention.text.wordpiece_vocabulary import OOV_TOKEN
from keras_attention.text.wordpiece_vocabulary import PADDING_TOKEN
from keras_attention.text.wordpiece_vocabulary import START_TOKEN
from keras_attention.text.wordpiece_vocabulary import SUFFIX_INDICATOR
from keras_attention.text.wordpiece_vocabulary import check_normalization
from keras_attention.text.wordpiece_vocabulary import load_vocabulary
from keras_attention.text.wordpiece_vocabulary import split_words

__all__ = ["WordPieceTokenizer"]

# `FastWordpieceTokenizer` maps a longer word to the out-of-vocabulary token.
_MAX_BYTES_PER_WORD = 100


@keras.saving.register_keras_serializable(package="keras_attention")
class WordPieceTokenizer(SubwordTokenizer):
    """Splits text into WordPiece subwords and maps them to integer ids.

    The text is normalised and split into words by `split_words` (optional
    Unicode normalisation and lower-casing; whitespace split; punctuation
    and CJK ideographs cut out as words), then every word is split into the
    longest vocabulary pieces, left to right, with
    `tensorflow_text.FastWordpieceTokenizer`; a suffix piece starts with
    `"##"` (`"playing"` -> `["play", "##ing"]`) and a word that cannot be
    spelled with the vocabulary becomes `oov_token`. Everything runs in the
    TensorFlow graph, so the layer works eagerly, inside `tf.data` pipelines
    and inside `tf.function`s. The WordPiece model is compiled from the
    vocabulary into a constant tensor (no lookup-table resource), so a
    SavedModel that calls the tokenizer loads with plain TensorFlow and
    tensorflow-text.

    The padding token must have id `0` (so `Embedding(mask_zero=True)` masks
    it); `learn_wordpiece_vocabulary` returns such a vocabulary.
    `detokenize` inverts `tokenize` up to normalisation: it returns the
    normalised words joined by single spaces (`"Héllo, wörld!"` ->
    `"hello , world !"`), with `oov_token` for unknown words.

    Args:
        vocabulary: a list of token strings (the index is the id), or the
            path of a text file with one token per line. It must hold
            `padding_token` (at index 0), `oov_token`, `start_token` and
            `end_token`.
        sequence_length: optional int. When set, `tokenize` returns a dense
            `(batch, sequence_length)` tensor, truncated and padded with the
            padding id; when `None`, a ragged tensor. Defaults to `None`.
        lowercase: bool, whether to lower-case the text. Must match the
            vocabulary's. Defaults to `True`.
        normalization: `"nfd_strip_accents"`, `"nfkc"` or `None`; see
            `normalize_text`. Must match the vocabulary's. Defaults to
            `"nfd_strip_accents"`.
        add_start_end: bool, whether to put `start_token` first and
            `end_token` last in every sequence (on truncation the end token
            is kept). Defaults to `False`.
        padding_token: str. Defaults to `"[PAD]"`.
        oov_token: str, the token of unknown words. Defaults to `"[UNK]"`.
        start_token: str. Defaults to `"[START]"`.
        end_token: str. Defaults to `"[END]"`.
        suffix_indicator: str, the prefix of suffix pieces. Defaults to
            `"##"`.
        **kwargs: arguments of `keras.layers.Layer`; `dtype` is the id dtype,
            `"int32"` (the default) or `"int64"`.

    Call arguments:
        inputs: strings, a scalar, `(batch,)` or `(batch, 1)` (Python
            strings, NumPy arrays or `tf.string` tensors).

    Returns:
        The ids, in `dtype`: `(batch, sequence_length)` when
        `sequence_length` is set, else a `(batch, None)` `tf.RaggedTensor`;
        for a scalar input, one sequence without the batch axis.

    Example:

    >>> vocabulary = ["[PAD]", "[UNK]", "[START]", "[END]", "the", "cat",
    ...               "play", "##ing", "!"]
    >>> tokenizer = WordPieceTokenizer(vocabulary, add_start_end=True)
    >>> ids = tokenizer(["The cat", "Playing dogs!"])
    >>> ids.to_list()
    [[2, 4, 5, 3], [2, 6, 7, 1, 8, 3]]
    >>> tokenizer.detokenize(ids).numpy().tolist()
    [b'the cat', b'playing [UNK] !']
    >>> padded = WordPieceTokenizer(vocabulary, sequence_length=3)
    >>> padded(["the cat", "cat"]).numpy().tolist()
    [[4, 5, 0], [5, 0, 0]]

    References:
        - [Wu et al., 2016](https://arxiv.org/abs/1609.08144), Google's
          neural machine translation system (WordPiece).
        - [Devlin et al., 2018](https://arxiv.org/abs/1810.04805), BERT
          (the basic tokenizer's normalisation and split).
        - [Song et al., 2021](https://arxiv.org/abs/2012.15524), fast
          WordPiece tokenization.
    """

    def __init__(
        self,
        vocabulary,
        sequence_length=None,
        lowercase=True,
        normalization="nfd_strip_accents",
        add_start_end=False,
        padding_token=PADDING_TOKEN,
        oov_token=OOV_TOKEN,
        start_token=START_TOKEN,
        end_token=END_TOKEN,
        suffix_indicator=SUFFIX_INDICATOR,
        **kwargs,
    ):
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocabulary(vocabulary)
        vocabulary = _check_vocabulary(vocabulary)
        sequence_length = check_sequence_length(sequence_length, add_start_end)
        check_normalization(normalization)
        special_tokens = {
            "padding_token": padding_token,
            "oov_token": oov_token,
            "start_token": start_token,
            "end_token": end_token,
        }
        for name, token in special_tokens.items():
            if token not in vocabulary:
                raise ValueError(
                    f"The vocabulary must contain `{name}` {token!r}. "
                    f"Received: a vocabulary of {len(vocabulary)} tokens "
                    f"starting {vocabulary[:6]}"
                )
        if vocabulary[0] != padding_token:
            raise ValueError(
                f"`padding_token` {padding_token!r} must be the first token "
                f"of the vocabulary (id 0). Received: {vocabulary[0]!r} first"
            )
        if not isinstance(suffix_indicator, str) or not suffix_indicator:
            raise ValueError(
                "`suffix_indicator` must be a non-empty string. "
                f"Received: suffix_indicator={suffix_indicator!r}"
            )
        super().__init__(**kwargs)
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length
        self.lowercase = bool(lowercase)
        self.normalization = normalization
        self.add_start_end = bool(add_start_end)
        self.padding_token = padding_token
        self.oov_token = oov_token
        self.start_token = start_token
        self.end_token = end_token
        self.suffix_indicator = suffix_indicator
        self._token_to_id = {token: i for i, token in enumerate(vocabulary)}
        self.padding_id = self._token_to_id[padding_token]
        self.oov_id = self._token_to_id[oov_token]
        self.start_id = self._token_to_id[start_token]
        self.end_id = self._token_to_id[end_token]
        # A constant model buffer, not a resource: SavedModels capture it.
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary,
            suffix_indicator=suffix_indicator,
            max_bytes_per_word=_MAX_BYTES_PER_WORD,
            token_out_type=tf.int32,
            unknown_token=oov_token,
            no_pretokenization=True,
            support_detokenization=True,
        )
        self.built = True

    def tokenize(self, inputs):
        """Maps strings to ids (see the class docstring for shapes)."""
        texts, scalar = batch_of_texts(inputs)  # (batch,)
        words = split_words(texts, self.lowercase, self.normalization)
        pieces = self._wordpiece.tokenize(words)  # (batch, words, pieces)
        ids = frame_ids(self, pieces.merge_dims(1, 2))  # (batch, None)
        ids = tf.cast(ids, self.compute_dtype)
        return ids[0] if scalar else ids

    def detokenize(self, ids):
        """Joins ids back into normalised text.

        Each sequence is read up to its first end id; padding, start and end
        ids are dropped, the pieces of a word are joined (`"play"`,
        `"##ing"` -> `"playing"`) and words are separated by single spaces.
        Out-of-range ids read as `oov_token`.

        Args:
            ids: integer ids, `(batch, length)` (dense or ragged) or
                `(length,)`.

        Returns:
            A `(batch,)` string tensor, or a scalar for `(length,)` ids.
        """
        return detokenize_with(self, ids, self._wordpiece.detokenize)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self.vocabulary),
                "sequence_length": self.sequence_length,
                "lowercase": self.lowercase,
                "normalization": self.normalization,
                "add_start_end": self.add_start_end,
                "padding_token": self.padding_token,
                "oov_token": self.oov_token,
                "start_token": self.start_token,
                "end_token": self.end_token,
                "suffix_indicator": self.suffix_indicator,
            }
        )
        return config


def _check_vocabulary(vocabulary):
    """Returns `vocabulary` as a list of strings or raises a `ValueError`."""
    try:
        vocabulary = list(vocabulary)
    except TypeError as error:
        raise ValueError(
            "`vocabulary` must be a list of strings or a file path. "
            f"Received: vocabulary={vocabulary!r}"
        ) from error
    if not vocabulary:
        raise ValueError("`vocabulary` must not be empty. Received: []")
    tokens = []
    for token in vocabulary:
        if isinstance(token, bytes):
            token = token.decode("utf-8")
        if not isinstance(token, str) or token.split() != [token]:
            raise ValueError(
                "Every vocabulary token must be a non-empty string without "
                f"whitespace. Received: {token!r}"
            )
        tokens.append(token)
    repeated = [
        token
        for token, count in collections.Counter(tokens).items()
        if count > 1
    ]
    if repeated:
        raise ValueError(
            "The vocabulary must not repeat tokens. "
            f"Received repeated: {repeated[:10]}"
        )
    return tokens
