"""WordPiece text normalisation, vocabulary learning and vocabulary files.

The text is normalised and split into words by `split_words`, both when a
vocabulary is learned (`learn_wordpiece_vocabulary`) and when
`WordPieceTokenizer` tokenises, so the two always agree. The split follows
the BERT "basic tokenizer": optional Unicode normalisation, optional
lower-casing, control characters turned into spaces, then a split on
whitespace that also cuts out every punctuation character and every CJK
ideograph as a word of its own.
"""

import collections
import os

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.tools.wordpiece_vocab import (
    wordpiece_tokenizer_learner_lib as wordpiece_learner,
)

from keras_attention._checks import check_positive_int
from keras_attention.files import atomic_write_text
from keras_attention.files import read_text_lines

__all__ = [
    "NORMALIZATIONS",
    "RESERVED_TOKENS",
    "learn_wordpiece_vocabulary",
    "load_vocabulary",
    "normalize_text",
    "save_vocabulary",
    "split_words",
]

PADDING_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"
START_TOKEN = "[START]"
END_TOKEN = "[END]"
# Padding first, so that its id is 0 and `Embedding(mask_zero=True)` masks it.
RESERVED_TOKENS = (PADDING_TOKEN, OOV_TOKEN, START_TOKEN, END_TOKEN)
SUFFIX_INDICATOR = "##"
NORMALIZATIONS = ("nfd_strip_accents", "nfkc", None)

# The learner keeps, for every character of its alphabet, the character and
# its suffix form (`"a"` and `"##a"`).
_TOKENS_PER_CHARACTER = 2
# The learner's own default cap on the alphabet size.
_MAX_UNIQUE_CHARACTERS = 1000
_CONTROL_CHARACTERS = r"[\p{Cc}\p{Cf}]"
_WHITESPACE = r"[\s\p{Z}]+"
# Cut out as words of their own: ASCII punctuation, Unicode punctuation and
# the CJK ideograph blocks (the classes BERT's basic tokenizer splits off).
_KEPT_DELIMITERS = "|".join(
    [
        r"[!-/:-@\[-`{-~]",
        r"\p{P}",
        r"[\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}\x{F900}-\x{FAFF}]",
        r"[\x{20000}-\x{2A6DF}\x{2A700}-\x{2CEAF}\x{2F800}-\x{2FA1F}]",
    ]
)
_DELIMITERS = f"{_WHITESPACE}|{_KEPT_DELIMITERS}"


def check_normalization(normalization):
    """Raises a `ValueError` unless `normalization` is a supported option."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"`normalization` must be one of {NORMALIZATIONS}. "
            f"Received: normalization={normalization!r}"
        )


def check_string_tensor(texts, name="inputs"):
    """Converts `texts` to a `tf.string` tensor or raises a `ValueError`."""
    if isinstance(texts, (tf.Tensor, tf.RaggedTensor)):
        if texts.dtype != tf.string:
            raise ValueError(
                f"`{name}` must be strings. Received: dtype={texts.dtype.name}"
            )
        return texts
    try:
        texts = tf.convert_to_tensor(texts)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be strings. Received: {texts!r}"
        ) from error
    if texts.dtype != tf.string:
        raise ValueError(
            f"`{name}` must be strings. Received: dtype={texts.dtype.name}"
        )
    return texts


def normalize_text(texts, lowercase=True, normalization="nfd_strip_accents"):
    """Applies the Unicode normalisation, then the lower-casing, in the graph.

    Args:
        texts: a string tensor of any shape (or Python strings).
        lowercase: bool, whether to lower-case (Unicode-aware) after the
            normalisation. Defaults to `True`.
        normalization: `"nfd_strip_accents"` (canonical decomposition, then
            every combining mark, `\\p{Mn}`, is removed: `"é"` becomes
            `"e"`), `"nfkc"` (compatibility composition: `"ﬁ"` becomes
            `"fi"`, full-width letters become ASCII) or `None` (the text is
            kept as it is). Defaults to `"nfd_strip_accents"`.

    Returns:
        A string tensor of the same shape as `texts`.
    """
    check_normalization(normalization)
    texts = check_string_tensor(texts, name="texts")
    if normalization == "nfd_strip_accents":
        texts = tf_text.normalize_utf8(texts, "NFD")
        texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
    elif normalization == "nfkc":
        texts = tf_text.normalize_utf8(texts, "NFKC")
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    return texts


def split_words(texts, lowercase=True, normalization="nfd_strip_accents"):
    """Normalises strings and splits them into words, in the graph.

    After `normalize_text`, control characters become spaces; the text is
    split on whitespace, and every punctuation character and every CJK
    ideograph becomes a word of its own: `"Héllo, wörld!"` gives
    `["hello", ",", "world", "!"]`. Joining the words with single spaces
    gives the text's *normalised* form, which is what
    `WordPieceTokenizer.detokenize` returns for text without unknown words.

    Args:
        texts: a string tensor, scalar or `(batch,)`.
        lowercase: bool. Defaults to `True`.
        normalization: see `normalize_text`. Defaults to
            `"nfd_strip_accents"`.

    Returns:
        The words: `(num_words,)` for a scalar, a `(batch, None)`
        `tf.RaggedTensor` for a batch.
    """
    texts = normalize_text(texts, lowercase, normalization)
    texts = tf.strings.regex_replace(texts, _CONTROL_CHARACTERS, " ")
    words = tf_text.regex_split(texts, _DELIMITERS, _KEPT_DELIMITERS)
    # `regex_split` gives a scalar a batch axis of 1.
    return words[0] if texts.shape.rank == 0 else words


def _word_batches(data, batch_size, lowercase, normalization):
    """Yields the words of `data`, `batch_size` strings at a time (NumPy)."""

    def split(texts):
        return split_words(texts, lowercase, normalization).flat_values

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tf.TensorSpec) or spec.dtype != tf.string:
            raise ValueError(
                "`data` must be a dataset of string tensors. "
                f"Received: element_spec={spec}"
            )
        words = data.batch(batch_size).map(
            split, num_parallel_calls=tf.data.AUTOTUNE
        )
        yield from words.as_numpy_iterator()
        return
    if isinstance(data, (str, bytes)):
        raise ValueError(
            "`data` must be a dataset or an iterable of strings, not a "
            f"single string. Received: data={data!r}"
        )
    # In-memory text is split eagerly: no `tf.data` start-up cost.
    texts = []
    for text in data:
        if not isinstance(text, (str, bytes)):
            raise ValueError(
                f"`data` must hold strings. Received: {text!r} of type "
                f"{type(text).__name__}"
            )
        texts.append(text)
        if len(texts) == batch_size:
            yield split(tf.constant(texts, tf.string)).numpy()
            texts = []
    if texts:
        yield split(tf.constant(texts, tf.string)).numpy()


def _check_reserved_tokens(reserved_tokens):
    reserved_tokens = list(reserved_tokens)
    if not reserved_tokens:
        raise ValueError(
            "`reserved_tokens` must not be empty. "
            f"Received: reserved_tokens={reserved_tokens}"
        )
    for token in reserved_tokens:
        if not isinstance(token, str) or not token:
            raise ValueError(
                "Every reserved token must be a non-empty string. "
                f"Received: {token!r}"
            )
    repeated = [
        token
        for token, count in collections.Counter(reserved_tokens).items()
        if count > 1
    ]
    if repeated:
        raise ValueError(
            "`reserved_tokens` must not repeat tokens. "
            f"Received repeated: {repeated}"
        )
    return reserved_tokens


def learn_wordpiece_vocabulary(
    data,
    vocabulary_size,
    reserved_tokens=RESERVED_TOKENS,
    lowercase=True,
    normalization="nfd_strip_accents",
    batch_size=1024,
    learn_params=None,
):
    """Learns a WordPiece vocabulary from training text.

    The text is normalised and split into words by `split_words` (the same
    function `WordPieceTokenizer` uses, with the same `lowercase` and
    `normalization`), the words are counted, and tensorflow-text's WordPiece
    learner (`wordpiece_tokenizer_learner_lib.learn`, the algorithm behind
    `bert_vocab_from_dataset`) picks the word pieces. The vocabulary starts
    with `reserved_tokens`, then the alphabet (sorted), then the pieces,
    most frequent first: whole words, word beginnings, and suffixes marked
    with `"##"`, among them the suffix form of every character (`"##a"`),
    so that any word of the alphabet can be spelled.

    Learn from the training split only, so no held-out word leaks into the
    vocabulary.

    Args:
        data: a `tf.data.Dataset` of scalar strings, or an iterable of Python
            strings.
        vocabulary_size: int, the largest vocabulary size, reserved tokens
            included. The alphabet is capped so that every character and its
            suffix form fit; the learner aims at 95-100% of this size.
        reserved_tokens: the tokens that come first, in this order. The
            default gives `"[PAD]"` id 0, `"[UNK]"` 1, `"[START]"` 2 and
            `"[END]"` 3, what `WordPieceTokenizer` expects; append others
            (e.g. `"[MASK]"`) as needed. Defaults to
            `("[PAD]", "[UNK]", "[START]", "[END]")`.
        lowercase: bool, whether to lower-case the text. Defaults to `True`.
        normalization: `"nfd_strip_accents"`, `"nfkc"` or `None`; see
            `normalize_text`. Defaults to `"nfd_strip_accents"`.
        batch_size: int, how many strings are split at a time. Defaults to
            `1024`.
        learn_params: optional dict of further keyword arguments of
            `wordpiece_tokenizer_learner_lib.learn` (e.g. `lower_thresh`,
            the lowest count a piece needs, `10` by default there; or
            `max_token_length`). Defaults to `None`.

    Returns:
        The vocabulary, a list of at most `vocabulary_size` strings.

    Example:

    >>> corpus = ["the cat sat", "the cat ran", "a cat sat"] * 10
    >>> vocabulary = learn_wordpiece_vocabulary(corpus, vocabulary_size=40)
    >>> vocabulary[:6]
    ['[PAD]', '[UNK]', '[START]', '[END]', 'a', 'c']
    >>> "cat" in vocabulary
    True
    """
    check_normalization(normalization)
    reserved_tokens = _check_reserved_tokens(reserved_tokens)
    if (
        not isinstance(vocabulary_size, int)
        or vocabulary_size <= len(reserved_tokens) + 1
    ):
        raise ValueError(
            "`vocabulary_size` must be an int larger than the number of "
            f"reserved tokens plus one ({len(reserved_tokens) + 1}). "
            f"Received: vocabulary_size={vocabulary_size}"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    learn_params = dict(learn_params or {})
    max_characters = (
        vocabulary_size - len(reserved_tokens)
    ) // _TOKENS_PER_CHARACTER
    learn_params["max_unique_chars"] = min(
        learn_params.get("max_unique_chars", _MAX_UNIQUE_CHARACTERS),
        max_characters,
    )

    words = _word_batches(data, batch_size, lowercase, normalization)
    try:
        word_counts = wordpiece_learner.count_words(words)
    except StopIteration:  # Raised by the learner when it counts no word.
        word_counts = None
    if not word_counts:
        raise ValueError(
            "`data` holds no words to learn a vocabulary from. "
            "Received: an empty corpus (or only whitespace)"
        )
    vocabulary = wordpiece_learner.learn(
        word_counts, vocabulary_size, reserved_tokens, **learn_params
    )
    return _drop_rarest_pieces(vocabulary, vocabulary_size, reserved_tokens)


def _drop_rarest_pieces(vocabulary, vocabulary_size, reserved_tokens):
    """Cuts the learner's overshoot, keeping every character and suffix form.

    The learner may return more than `vocabulary_size` tokens when even its
    highest count threshold keeps too many pieces. Its longer pieces come
    most frequent first, so the last of them go; the reserved tokens, the
    characters and their suffix forms (which spell any word of the alphabet)
    stay, and fit because the alphabet was capped.
    """
    excess = len(vocabulary) - vocabulary_size
    if excess <= 0:
        return list(vocabulary)

    def is_essential(token):
        if token in reserved_tokens or len(token) == 1:
            return True
        return (
            token.startswith(SUFFIX_INDICATOR)
            and len(token) == len(SUFFIX_INDICATOR) + 1
        )

    pieces = [token for token in vocabulary if not is_essential(token)]
    dropped = set(pieces[len(pieces) - excess :])
    return [token for token in vocabulary if token not in dropped]


def save_vocabulary(vocabulary, path):
    """Writes a vocabulary as UTF-8 text, one token per line.

    The file is written under a temporary name and renamed (see
    `keras_attention.files`).

    Args:
        vocabulary: a sequence of non-empty strings without line breaks.
        path: the file to write.
    """
    vocabulary = list(vocabulary)
    if not vocabulary:
        raise ValueError("`vocabulary` must not be empty. Received: []")
    for token in vocabulary:
        if not isinstance(token, str) or not token or "\n" in token:
            raise ValueError(
                "Every token must be a non-empty string without a line "
                f"break. Received: {token!r}"
            )
    # Atomically: a run killed while saving leaves the old file or none.
    atomic_write_text(path, "\n".join(vocabulary) + "\n")


_ASCII_SPACES = " \t\r\f\v"


def load_vocabulary(path):
    """Reads a vocabulary written by `save_vocabulary`, one token per line.

    The file is read by `keras_attention.data.read_text_lines`: a UTF-8
    BOM and Windows line ends (CRLF) are accepted; other encodings, binary
    bytes and over-long lines are refused with the line number.

    Args:
        path: a UTF-8 text file with one token per line.

    Returns:
        The tokens, a list of strings, in file order (the line index is the
        id).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is empty, is not UTF-8 text, or has an
            empty line or a token with surrounding whitespace (the message
            names the file and the line).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No vocabulary file at this path. Received: path={path!r}"
        )
    lines = read_text_lines(path)
    if not lines:
        raise ValueError(
            f"The vocabulary file is empty. Received: path={path!r}"
        )
    for index, line in enumerate(lines):
        if not line:
            raise ValueError(
                f"Line {index + 1} of the vocabulary file {path} is empty "
                "(one token per line, no blank lines). Received: "
                f"path={path!r}"
            )
        if line != line.strip(_ASCII_SPACES):
            # No word piece holds spaces or tabs: this token could never
            # match. (Other Unicode spaces, such as U+2028, can end up in
            # a learned vocabulary and are kept.)
            raise ValueError(
                f"{path}, line {index + 1}: the token has surrounding "
                f"whitespace (one token per line). Received: {line!r}"
            )
    return lines
