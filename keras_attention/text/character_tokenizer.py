"""A character-level tokenizer that runs in the TensorFlow graph."""

import collections
import json
import os

import tensorflow as tf

from keras_attention.files import atomic_write_text
from keras_attention.files import read_json_file

__all__ = ["CharacterTokenizer"]

PADDING_TOKEN = ""
OOV_TOKEN = "[UNK]"
START_TOKEN = "[START]"
END_TOKEN = "[END]"
RESERVED_TOKENS = (PADDING_TOKEN, OOV_TOKEN, START_TOKEN, END_TOKEN)


class CharacterTokenizer(tf.Module):
    """Splits strings into Unicode characters and maps them to integer ids.

    Everything runs in the TensorFlow graph with `tf.strings` ops and a
    `tf.lookup.StaticHashTable`, so the tokenizer works inside `tf.data`
    pipelines and inside exported `tf.function`s; being a `tf.Module`, its
    table is saved with any SavedModel that tracks it, and loading that
    SavedModel needs plain TensorFlow only.

    The ids `0`-`3` are reserved: `0` is padding (so `Embedding(mask_zero=
    True)` masks it), `1` stands for characters outside the vocabulary,
    `2` starts and `3` ends a target sequence. The characters of the
    vocabulary follow, in the given order.

    Args:
        vocabulary: a sequence of single characters (reserved tokens are
            added automatically and must not be included).
        lowercase: bool, whether to lowercase the text before splitting it
            (also applied when building a vocabulary with `from_texts`).
            Defaults to `False`.
        name: optional name of the module.

    Example:

    >>> tokenizer = CharacterTokenizer.from_texts(["2003-08-19"])
    >>> tokenizer.vocabulary
    ['', '[UNK]', '[START]', '[END]', '-', '0', '1', '2', '3', '8', '9']
    >>> ids = tokenizer.tokenize(["2003-08-19", "19"])
    >>> ids.to_list()
    [[7, 5, 5, 8, 4, 5, 9, 4, 6, 10], [6, 10]]
    >>> tokenizer.detokenize(ids).numpy().tolist()
    [b'2003-08-19', b'19']
    """

    padding_id = 0
    oov_id = 1
    start_id = 2
    end_id = 3

    def __init__(self, vocabulary, lowercase=False, name=None):
        vocabulary = list(vocabulary)
        for token in vocabulary:
            if not isinstance(token, str) or len(token) != 1:
                raise ValueError(
                    "Every vocabulary entry must be a single character. "
                    f"Received: {token!r}"
                )
        duplicates = [
            token
            for token, count in collections.Counter(vocabulary).items()
            if count > 1
        ]
        if duplicates:
            raise ValueError(
                "The vocabulary must not repeat characters. "
                f"Received repeated: {duplicates}"
            )
        super().__init__(name=name)
        self.lowercase = bool(lowercase)
        self._characters = tuple(vocabulary)
        tokens = list(RESERVED_TOKENS) + vocabulary
        self._tokens = tf.constant(tokens, dtype=tf.string)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                keys=tf.constant(vocabulary, dtype=tf.string),
                values=tf.range(
                    len(RESERVED_TOKENS),
                    len(tokens),
                    dtype=tf.int64,
                ),
            ),
            default_value=self.oov_id,
        )

    @classmethod
    def from_texts(cls, texts, lowercase=False, max_characters=None, **kwargs):
        """Builds the vocabulary from the characters of `texts`.

        Args:
            texts: an iterable of Python strings (or bytes), e.g. the train
                split only, so no held-out character leaks into it.
            lowercase: bool, whether to lowercase. Defaults to `False`.
            max_characters: optional int, keep only the most frequent
                characters. Defaults to `None` (keep all).
            **kwargs: other arguments of the constructor.

        Returns:
            A `CharacterTokenizer` whose characters are sorted.
        """
        counts = collections.Counter()
        for text in texts:
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            counts.update(text.lower() if lowercase else text)
        characters = [char for char, _ in counts.most_common(max_characters)]
        return cls(sorted(characters), lowercase=lowercase, **kwargs)

    @property
    def vocabulary(self):
        """All tokens, reserved ones first, as a list of Python strings."""
        return list(RESERVED_TOKENS) + list(self._characters)

    @property
    def vocabulary_size(self):
        """The number of ids, reserved ones included."""
        return len(RESERVED_TOKENS) + len(self._characters)

    def split(self, texts):
        """Splits (lowercased) strings into a ragged tensor of characters."""
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return tf.strings.unicode_split(texts, "UTF-8")

    def tokenize(self, texts):
        """Maps strings to character ids.

        Args:
            texts: a string tensor (or Python strings), scalar or `(batch,)`.

        Returns:
            `int32` ids: a `(length,)` tensor for a scalar input, a
            `(batch, None)` `tf.RaggedTensor` for a batch.
        """
        characters = self.split(texts)
        if isinstance(characters, tf.RaggedTensor):
            return characters.with_flat_values(
                tf.cast(self._table.lookup(characters.flat_values), tf.int32)
            )
        return tf.cast(self._table.lookup(characters), tf.int32)

    def __call__(self, texts):
        return self.tokenize(texts)

    def id_to_token(self, ids):
        """The token string of every id (a tensor of the same shape)."""
        if isinstance(ids, tf.RaggedTensor):
            return ids.with_flat_values(self.id_to_token(ids.flat_values))
        return tf.gather(self._tokens, tf.cast(ids, tf.int32))

    def detokenize(self, ids):
        """Joins ids back into strings.

        Decoding of a sequence stops at its first end id; padding, start and
        end ids are dropped and out-of-vocabulary ids become `"[UNK]"`.

        Args:
            ids: `(batch, length)` integer ids, dense or ragged.

        Returns:
            A `(batch,)` string tensor.
        """
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor(default_value=self.padding_id)
        ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)  # (batch, length)
        is_end = tf.cast(tf.equal(ids, self.end_id), tf.int32)
        before_end = tf.equal(tf.cumsum(is_end, axis=-1), 0)
        keep = before_end & (ids != self.padding_id) & (ids != self.start_id)
        tokens = tf.where(keep, self.id_to_token(ids), "")
        return tf.strings.reduce_join(tokens, axis=-1)  # (batch,)

    def get_config(self):
        """The constructor arguments, JSON-serialisable."""
        return {
            "vocabulary": list(self._characters),
            "lowercase": self.lowercase,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def save(self, path):
        """Writes the configuration (vocabulary included) as JSON.

        The file is written atomically (see `keras_attention.files`): a
        run killed while saving leaves the old file or none, never half.
        """
        text = json.dumps(self.get_config(), ensure_ascii=False, indent=1)
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path):
        """Reads a tokenizer written by `save`.

        Raises:
            FileNotFoundError: if there is no file at `path`.
            ValueError: if the file is not a `CharacterTokenizer` written by
                `save` (e.g. a WordPiece vocabulary).
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No CharacterTokenizer file at this path. Received: {path!r}"
            )
        # `save` writes no BOM, but an editor may add one: it is accepted.
        config = read_json_file(
            path,
            "a CharacterTokenizer file (the JSON written by "
            "`CharacterTokenizer.save`)",
        )
        expected = {"vocabulary", "lowercase"}
        if not isinstance(config, dict) or not (
            "vocabulary" in config and set(config) <= expected
        ):
            keys = sorted(config) if isinstance(config, dict) else config
            raise ValueError(
                f"{path} is not a CharacterTokenizer file: expected the keys "
                f"{sorted(expected)}. Received: {str(keys)[:200]}"
            )
        if not isinstance(config["vocabulary"], list) or not isinstance(
            config.get("lowercase", False), bool
        ):
            raise ValueError(
                f"{path} is not a CharacterTokenizer file: `vocabulary` must "
                "be a list of characters and `lowercase` a bool. Received: "
                f"{str(config)[:200]}"
            )
        try:
            return cls.from_config(config)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
