"""A run's tokenizer: learned once, reloaded when the run resumes.

A resumed run must tokenize exactly as it did when it started, so the
vocabulary (WordPiece) or model (SentencePiece) it learned is saved in its
directory and read back instead of being learned again.
"""

import os

from keras_attention.text.sentencepiece_model import learn_sentencepiece_model
from keras_attention.text.sentencepiece_model import read_model_file
from keras_attention.text.sentencepiece_model import write_model_file
from keras_attention.text.sentencepiece_tokenizer import SentencePieceTokenizer
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary
from keras_attention.text.wordpiece_vocabulary import load_vocabulary
from keras_attention.text.wordpiece_vocabulary import save_vocabulary

__all__ = [
    "learn_or_load_sentencepiece_tokenizer",
    "learn_or_load_wordpiece_tokenizer",
]


def _check_path(path, what):
    """`path` as a str, checked before anything is learned."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"The {what} path is a directory. Received: path={path!r}"
        )
    directory = os.path.dirname(path) or os.curdir
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"The {what} file's directory does not exist. "
            f"Received: path={path!r}"
        )
    return path


def learn_or_load_wordpiece_tokenizer(
    texts,
    vocabulary_size,
    path,
    reuse=False,
    lowercase=True,
    normalization="nfd_strip_accents",
    add_start_end=False,
):
    """A `WordPieceTokenizer` whose vocabulary is saved at `path`.

    With `reuse` and a file at `path`, the vocabulary is read from it (and
    `texts` is not read); otherwise it is learned from `texts` with
    `learn_wordpiece_vocabulary` and written to `path`, one token a line.

    Args:
        texts: the training texts: a `tf.data.Dataset` of scalar strings or
            an iterable of Python strings.
        vocabulary_size: int, the largest vocabulary, reserved tokens
            included.
        path: the vocabulary file, in an existing directory.
        reuse: bool, whether to reload the file when it exists (a resumed
            run). Defaults to `False`.
        lowercase: bool, whether to lower-case the text. Defaults to `True`.
        normalization: `"nfd_strip_accents"`, `"nfkc"` or `None`; see
            `normalize_text`. Defaults to `"nfd_strip_accents"`.
        add_start_end: bool, whether the tokenizer adds `[START]` and
            `[END]` around every sequence. Defaults to `False`.

    Returns:
        The `WordPieceTokenizer`.

    Raises:
        FileNotFoundError: if the directory of `path` does not exist
            (checked before anything is learned).
        IsADirectoryError: if `path` is a directory.
        ValueError: for an empty corpus, a bad `vocabulary_size` or
            `normalization`, or a malformed vocabulary file.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "vocabulary.txt")
    >>> corpus = ["the cat sat", "the cat ran"] * 10
    >>> tokenizer = learn_or_load_wordpiece_tokenizer(corpus, 40, path)
    >>> reloaded = learn_or_load_wordpiece_tokenizer([], 40, path, reuse=True)
    >>> reloaded.get_vocabulary() == tokenizer.get_vocabulary()
    True
    """
    path = _check_path(path, "vocabulary")
    if reuse and os.path.isfile(path):
        vocabulary = load_vocabulary(path)
    else:
        vocabulary = learn_wordpiece_vocabulary(
            texts,
            vocabulary_size,
            lowercase=lowercase,
            normalization=normalization,
        )
        save_vocabulary(vocabulary, path)
    return WordPieceTokenizer(
        vocabulary,
        lowercase=lowercase,
        normalization=normalization,
        add_start_end=add_start_end,
    )


def learn_or_load_sentencepiece_tokenizer(
    texts, vocabulary_size, path, reuse=False, add_start_end=False, seed=0
):
    """A `SentencePieceTokenizer` whose model file is saved at `path`.

    With `reuse` and a file at `path`, the model is read from it (and
    `texts` is not read); otherwise it is trained on `texts` with
    `learn_sentencepiece_model` and written to `path` atomically (a
    temporary name, then renamed: a killed run never leaves half a model).

    Args:
        texts: the training texts: a `tf.data.Dataset` of scalar strings or
            an iterable of Python strings.
        vocabulary_size: int, the number of pieces, special ones included.
        path: the model file, in an existing directory.
        reuse: bool, whether to reload the file when it exists (a resumed
            run). Defaults to `False`.
        add_start_end: bool, whether the tokenizer adds the start and end
            ids around every sequence. Defaults to `False`.
        seed: int, the training seed. Defaults to `0`.

    Returns:
        The `SentencePieceTokenizer`.

    Raises:
        FileNotFoundError: if the directory of `path` does not exist
            (checked before anything is learned).
        IsADirectoryError: if `path` is a directory.
        ValueError: for an empty corpus, a `vocabulary_size` the text
            cannot give (the message says what to pass), or a corrupt
            model file.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "en.model")
    >>> corpus = ["The cat sat.", "The dog ran."] * 10
    >>> tokenizer = learn_or_load_sentencepiece_tokenizer(corpus, 19, path)
    >>> reloaded = learn_or_load_sentencepiece_tokenizer(
    ...     [], 19, path, reuse=True)
    >>> reloaded.get_vocabulary() == tokenizer.get_vocabulary()
    True
    """
    path = _check_path(path, "SentencePiece model")
    if reuse and os.path.isfile(path):
        model = read_model_file(path)
    else:
        model = learn_sentencepiece_model(texts, vocabulary_size, seed=seed)
        write_model_file(model, path)
    return SentencePieceTokenizer(model, add_start_end=add_start_end)
