"""Training a SentencePiece model on a corpus, and its model files.

`learn_sentencepiece_model` trains a SentencePiece model (Kudo and
Richardson, 2018) with the `sentencepiece` package on raw training text:
no lower-casing, no pre-tokenization, so the model keeps case and
punctuation and its detokenizer gives back natural text. The special ids
are fixed to what the rest of the package expects: padding `0` (masked by
`Embedding(mask_zero=True)`), unknown `1`, start `2`, end `3`.
`write_model_file` writes the serialized model atomically and
`read_model_file` reads and checks one.
"""

import io
import os
import re
import tempfile

import sentencepiece
import tensorflow as tf

__all__ = [
    "END_ID",
    "OOV_ID",
    "PADDING_ID",
    "START_ID",
    "check_model_proto",
    "learn_sentencepiece_model",
    "read_model_file",
    "write_model_file",
]

PADDING_ID = 0
OOV_ID = 1
START_ID = 2
END_ID = 3
MODEL_TYPES = ("unigram", "bpe")
# Sentences sampled for training at most: bounds memory on a large corpus.
MAX_TRAINING_SENTENCES = 1_000_000
# sentencepiece's own wording when the text cannot give that many pieces.
_TOO_MANY_PIECES = re.compile(r"Vocabulary size too high \((\d+)\).*<= (\d+)")
_TOO_FEW_PIECES = re.compile(r"smaller than required_chars\. (\d+) vs (\d+)")


def _texts(texts):
    """The training sentences as a list of non-blank Python strings."""
    if isinstance(texts, tf.data.Dataset):
        texts = (t.decode("utf-8") for t in texts.as_numpy_iterator())
    elif isinstance(texts, str):
        raise ValueError(
            "`texts` must be many sentences (a list or a dataset), not one "
            f"string. Received: {texts[:60]!r}"
        )
    sentences = []
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if text.strip():
            sentences.append(text.strip())
    return sentences


def learn_sentencepiece_model(
    texts,
    vocabulary_size,
    model_type="unigram",
    character_coverage=1.0,
    seed=0,
):
    """Trains a SentencePiece model on `texts`; returns it serialized.

    The text is used as written (case, accents and punctuation kept; only
    SentencePiece's `nmt_nfkc` normalization), so the model's detokenizer
    writes natural text. Training runs in one thread with a fixed seed, so
    the same texts and arguments give the same model bytes.

    Args:
        texts: the training sentences: a `tf.data.Dataset` of scalar
            strings or an iterable of Python strings (blank ones skipped).
        vocabulary_size: int, the number of pieces, the four special ones
            (padding, unknown, start, end) included.
        model_type: `"unigram"` (Kudo, 2018) or `"bpe"`. Defaults to
            `"unigram"`.
        character_coverage: float in `(0, 1]`, the share of characters
            the model covers; the rarest others become the unknown id.
            Defaults to `1.0` (every character of the text).
        seed: int, the seed of the sentence sampling. Defaults to `0`.

    Returns:
        The serialized model, `bytes` (for `SentencePieceTokenizer`).

    Raises:
        ValueError: for an empty corpus, a bad argument, or a
            `vocabulary_size` the text cannot give (the message says which
            sizes it can).

    Example:

    >>> model = learn_sentencepiece_model(
    ...     ["A man in an orange hat.", "A dog runs."] * 20, 21)
    >>> check_model_proto(model).get_piece_size()
    21
    """
    if (
        not isinstance(vocabulary_size, int)
        or isinstance(vocabulary_size, bool)
        or vocabulary_size <= END_ID + 1
    ):
        raise ValueError(
            "`vocabulary_size` must be an int > 4 (four ids are special). "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"`model_type` must be one of {MODEL_TYPES}. "
            f"Received: model_type={model_type!r}"
        )
    if not 0 < character_coverage <= 1:
        raise ValueError(
            "`character_coverage` must be in (0, 1]. "
            f"Received: character_coverage={character_coverage!r}"
        )
    sentences = _texts(texts)
    if not sentences:
        raise ValueError(
            "`texts` holds no text to learn a SentencePiece model from. "
            "Received: no non-blank sentence"
        )
    model = io.BytesIO()
    sentencepiece.set_random_generator_seed(int(seed))
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            vocab_size=vocabulary_size,
            model_type=model_type,
            character_coverage=character_coverage,
            pad_id=PADDING_ID,
            unk_id=OOV_ID,
            bos_id=START_ID,
            eos_id=END_ID,
            input_sentence_size=MAX_TRAINING_SENTENCES,
            shuffle_input_sentence=True,
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as error:
        raise _training_error(error, vocabulary_size, len(sentences)) from None
    return model.getvalue()


def _training_error(error, vocabulary_size, num_sentences):
    """A `ValueError` saying what to pass instead, from sentencepiece's."""
    message = str(error)
    too_many = _TOO_MANY_PIECES.search(message)
    if too_many:
        return ValueError(
            f"`vocabulary_size` is too large for the training text "
            f"({num_sentences} sentences): it gives at most "
            f"{too_many.group(2)} pieces. Pass vocabulary_size <= "
            f"{too_many.group(2)} (--vocabulary-size in the recipes), or "
            f"more text. Received: vocabulary_size={vocabulary_size}"
        )
    too_few = _TOO_FEW_PIECES.search(message)
    if too_few:
        needed = int(too_few.group(2))  # characters and special pieces
        return ValueError(
            "`vocabulary_size` is too small for the characters of the "
            f"training text: pass vocabulary_size >= {needed}, or a lower "
            f"`character_coverage`. Received: vocabulary_size="
            f"{vocabulary_size}"
        )
    return ValueError(f"SentencePiece training failed: {message}")


def check_model_proto(model, where="`model`"):
    """A `sentencepiece.SentencePieceProcessor` of `model`, checked.

    Args:
        model: serialized model bytes.
        where: what to name in an error (a file path, or the argument).

    Raises:
        ValueError: if the bytes are not a SentencePiece model, or its
            special ids are not padding `0`, unknown, start and end.
    """
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model)
    except (RuntimeError, TypeError, OSError) as error:
        raise ValueError(
            f"{where} is not a SentencePiece model (corrupt or another "
            "file): learn it again (`learn_sentencepiece_model`; a recipe "
            f"run relearns it with --restart). Received: {len(model)} bytes"
            f" ({error})"
        ) from None
    ids = {
        "padding": processor.pad_id(),
        "unknown": processor.unk_id(),
        "start": processor.bos_id(),
        "end": processor.eos_id(),
    }
    if ids["padding"] != PADDING_ID or -1 in ids.values():
        raise ValueError(
            f"{where} must have padding id 0 and unknown, start and end ids "
            "(train it with `learn_sentencepiece_model`). Received: "
            f"special ids {ids}"
        )
    return processor


def read_model_file(path):
    """The checked bytes of a SentencePiece model file.

    Raises:
        FileNotFoundError: if there is no file at `path`.
        ValueError: if it is not a SentencePiece model (see
            `check_model_proto`).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No SentencePiece model file at {path!r}. Received: path={path!r}"
        )
    with open(path, "rb") as file:
        model = file.read()
    check_model_proto(model, where=path)
    return model


def write_model_file(model, path):
    """Writes model bytes to `path` atomically (a temporary name, renamed).

    A run killed while writing leaves the previous file, or none, never
    half a model.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or os.curdir
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(model)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
