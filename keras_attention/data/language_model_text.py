"""A language model's data: documents, one token stream, windows of it.

`load_documents` reads the texts (a local UTF-8 file, or the text feature
of a TFDS split), `token_streams` tokenizes them into one stream of ids,
every document followed by the end id, and splits off its end for
evaluation, and `make_language_model_dataset` cuts a stream into batches
of `(ids, next_ids)` windows. `window_prompts` turns the starts of a
stream's windows back into prompt texts, and `continue_texts` writes a
generator's continuations of prompts as the exported model writes them.
`learn_or_load_tokenizer` gives a run its character or WordPiece
tokenizer, saved in (or, resuming, reloaded from) its directory.
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_attention.data.tfds import HELD_OUT_FRACTION
from keras_attention.files import read_text_lines
from keras_attention.text.character_tokenizer import CharacterTokenizer
from keras_attention.text.run_vocabulary import (
    learn_or_load_wordpiece_tokenizer,
)

__all__ = [
    "TOKENIZER_FILES",
    "continue_texts",
    "learn_or_load_tokenizer",
    "load_documents",
    "make_language_model_dataset",
    "token_streams",
    "window_prompts",
]


# Each kind of tokenizer, and the file of a run directory it is saved in.
TOKENIZER_FILES = {
    "character": "vocabulary.json",
    "wordpiece": "vocabulary.txt",
}


def learn_or_load_tokenizer(
    kind,
    documents,
    output_dir,
    vocabulary_size=None,
    reuse=False,
    lowercase=True,
    **kwargs,
):
    """A run's tokenizer of `kind`, learned from `documents` and saved.

    The tokenizer is saved in `output_dir` under `TOKENIZER_FILES[kind]`
    (`vocabulary.json`, a `CharacterTokenizer`; `vocabulary.txt`, a
    WordPiece vocabulary). With `reuse` (a resumed run) and that file
    present, it is reloaded instead, so that the ids match the weights.

    Args:
        kind: `"character"` or `"wordpiece"`.
        documents: the training texts, a list of str.
        output_dir: the run's directory.
        vocabulary_size: int, WordPiece's largest vocabulary (unused for
            characters). Defaults to `None`.
        reuse: bool, whether to reload a saved tokenizer. Defaults to
            `False`.
        lowercase: bool, whether the tokenizer lowercases the texts.
            Defaults to `True`.
        **kwargs: further arguments of
            `keras_attention.text.learn_or_load_wordpiece_tokenizer`.

    Returns:
        The `CharacterTokenizer` or `WordPieceTokenizer`.

    Example:

    >>> import tempfile
    >>> run_dir = tempfile.mkdtemp()
    >>> tokenizer = learn_or_load_tokenizer("character", ["abc"], run_dir)
    >>> sorted(os.listdir(run_dir))
    ['vocabulary.json']
    """
    if kind not in TOKENIZER_FILES:
        raise ValueError(
            f"`kind` must be one of {sorted(TOKENIZER_FILES)}. "
            f"Received: kind={kind!r}"
        )
    path = os.path.join(os.fspath(output_dir), TOKENIZER_FILES[kind])
    if kind == "wordpiece":
        return learn_or_load_wordpiece_tokenizer(
            documents,
            vocabulary_size,
            path,
            reuse=reuse,
            lowercase=lowercase,
            **kwargs,
        )
    if reuse and os.path.isfile(path):
        return CharacterTokenizer.load(path)
    tokenizer = CharacterTokenizer.from_texts(documents, lowercase=lowercase)
    tokenizer.save(path)
    return tokenizer


def load_documents(
    text_file=None,
    tfds_name=None,
    text_key="text",
    split="train",
    data_dir=None,
    max_documents=None,
):
    """The texts to learn, a list of str: one file, or a TFDS split.

    Args:
        text_file: a UTF-8 text file, read as one document.
        tfds_name: a TFDS dataset, used instead of `text_file`; each
            example is a document. Defaults to `None`.
        text_key: str, the TFDS text feature. Defaults to `"text"`.
        split: the TFDS split. Defaults to `"train"`.
        data_dir: optional TFDS data directory. Defaults to `None`.
        max_documents: optional int, the most TFDS examples read.
            Defaults to `None` (all).

    Raises:
        ValueError: for an unknown TFDS name or text feature, or an
            unreadable or empty file (see `read_text_lines`).

    Example:

    >>> documents = load_documents("recipes/data/nursery_rhymes.txt",
    ... )  # doctest: +SKIP
    >>> len(documents), documents[0][:8]  # doctest: +SKIP
    (1, 'Mary had')
    """
    if not tfds_name:
        lines = read_text_lines(text_file)
        if not "".join(lines).strip():
            raise ValueError(
                f"{text_file} holds no text to learn (it is empty or "
                "blank). Received: an empty text file"
            )
        return ["\n".join(lines)]
    try:
        examples = tfds.load(tfds_name, split=split, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"Unknown TFDS dataset. Received: tfds_name={tfds_name!r}"
        ) from error
    if text_key not in examples.element_spec:
        raise ValueError(
            f"{tfds_name} has no feature {text_key!r}; its features: "
            f"{sorted(examples.element_spec)}. Received: "
            f"text_key={text_key!r}"
        )
    if max_documents:
        examples = examples.take(max_documents)
    texts = examples.map(lambda example: example[text_key])
    return [text.decode("utf-8") for text in texts.as_numpy_iterator()]


def token_streams(
    tokenizer, documents, sequence_length, fraction=HELD_OUT_FRACTION
):
    """`(train, held_out)` int32 ids of the documents, each with an end id.

    Args:
        tokenizer: a tokenizer with `tokenize` and `end_id`.
        documents: a list of str.
        sequence_length: int, the window length; both parts must hold one
            window and its next id.
        fraction: float, the share of the stream held out, from its end.
            Defaults to `0.1`.

    Example:

    >>> from keras_attention.text import CharacterTokenizer
    >>> tokenizer = CharacterTokenizer.from_texts(["abcd" * 10])
    >>> train, held_out = token_streams(tokenizer, ["abcd" * 10], 3)
    >>> len(train), len(held_out), int(held_out[-1]) == tokenizer.end_id
    (36, 5, True)
    """
    rows = tokenizer.tokenize(tf.constant(documents)).numpy()
    stream = np.concatenate([np.append(row, tokenizer.end_id) for row in rows])
    cut = int(len(stream) * (1 - fraction))
    if min(cut, len(stream) - cut) <= sequence_length:
        raise ValueError(
            f"The text has {len(stream)} tokens: too few to hold out "
            f"{fraction:.0%} and keep a window of {sequence_length} + 1 on "
            f"each side. Received: sequence_length={sequence_length}"
        )
    stream = stream.astype("int32")
    return stream[:cut], stream[cut:]


def make_language_model_dataset(
    stream, sequence_length, batch_size, shuffle=False, seed=0
):
    """Batches of `(ids, next_ids)`, non-overlapping windows of `stream`.

    Args:
        stream: 1-D int ids.
        sequence_length: int, the window length.
        batch_size: int.
        shuffle: bool, whether to shuffle the windows. Defaults to `False`.
        seed: int, the shuffle seed. Defaults to `0`.

    Returns:
        A `tf.data.Dataset` of `(batch, sequence_length)` int32 pairs,
        `next_ids` being `ids` shifted by one token.

    Example:

    >>> data = make_language_model_dataset(np.arange(7), 3, batch_size=2)
    >>> [ids.tolist() for ids in next(iter(data.as_numpy_iterator()))]
    [[[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]]]
    """
    count = (len(stream) - 1) // sequence_length
    starts = np.arange(count)[:, None] * sequence_length  # (count, 1)
    ids = np.asarray(stream, "int32")[starts + np.arange(sequence_length + 1)]
    data = tf.data.Dataset.from_tensor_slices((ids[:, :-1], ids[:, 1:]))
    if shuffle:
        data = data.shuffle(count, seed=seed)
    return data.batch(batch_size)


def window_prompts(
    tokenizer, ids, sequence_length, num_prompts=3, prompt_tokens=12
):
    """The starts of a token stream's first windows, as prompt texts.

    Args:
        tokenizer: the tokenizer of `ids` (its `detokenize`).
        ids: a 1-D array, the token stream (e.g. the held-out one of
            `token_streams`).
        sequence_length: int, the windows' length: a prompt starts every
            `sequence_length` tokens.
        num_prompts: int, the most prompts. Defaults to `3`.
        prompt_tokens: int, the tokens of each prompt, at most half a
            window. Defaults to `12`.

    Returns:
        A list of str, the prompts that are not blank.
    """
    prompt_length = min(prompt_tokens, sequence_length // 2)
    starts = np.arange(0, len(ids) - prompt_length, sequence_length)
    starts = starts[:num_prompts, None]  # (num_prompts, 1)
    prompt_ids = ids[starts + np.arange(prompt_length)]  # (num_prompts, n)
    return [
        text.decode()
        for text in tokenizer.detokenize(prompt_ids).numpy()
        if text.strip()
    ]


def continue_texts(generator, tokenizer, prompts, max_new_tokens, **kwargs):
    """Each prompt and its continuation, as the exported model writes it.

    Args:
        generator: a `keras_attention.models.CausalLMGenerator`.
        tokenizer: its tokenizer (`tokenize` and `detokenize`).
        prompts: a list of str.
        max_new_tokens: int, the most tokens written after each prompt.
        **kwargs: further `generator.generate` arguments (`sampler`,
            `seed`, ...); greedy without them.

    Returns:
        A list of str, each prompt followed by its continuation.
    """
    ids = tokenizer.tokenize(tf.constant(prompts))
    lengths = ids.row_lengths().numpy()[:, None]  # (batch, 1)
    generated = generator.generate(ids.to_tensor().numpy(), **kwargs)
    positions = np.arange(generated.shape[1])[None]  # (1, max_length)
    generated[positions >= lengths + max_new_tokens] = generator.padding_id
    return [text.decode() for text in tokenizer.detokenize(generated).numpy()]
