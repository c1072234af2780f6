"""Translation data: TFDS datasets, local parallel files, tf.data batches.

Three sources give `(source, target)` sentence pairs:

- `load_tfds_translation`: a split of a TFDS translation dataset by name
  (default `ted_hrlr_translate/pt_to_en`, Portuguese to English TED
  talks), with the languages taken from the builder's supervised keys or
  named explicitly. It downloads and prepares the data on first use
  (internet needed once). `load_tfds_translation_data` gives the training
  and held-out pairs together, holding part of the training split out when
  the dataset has no validation split (`keras_attention.data.tfds`).
- `load_parallel_files`: two line-aligned UTF-8 files, the i-th source line
  translated by the i-th target line.
- `keras_attention.data.load_parallel_text(path, "tsv")`: one
  `source<TAB>target` pair per line.

`translation_tokenizers` gives a run one tokenizer per language, learned
from the training pairs and saved, or reloaded when the run resumes: a
SentencePiece model (cased; detokenizes to natural text) or a WordPiece
vocabulary (`learn_translation_tokenizers` learns WordPiece ones without
saving). `make_translation_dataset` turns pairs into the batches a
Transformer trains on: tokenised in the graph, filtered or truncated by
length, bucketed by length to cut padding, cached and prefetched (the
pipeline of `keras_attention.data.pipeline`); `make_translation_datasets`
makes a run's training and validation batches.
"""

import dataclasses
import functools
import logging
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_attention._checks import check_positive_int
from keras_attention.data.pipeline import BUCKET_GROWTH
from keras_attention.data.pipeline import DEFAULT_SHUFFLE_BUFFER
from keras_attention.data.pipeline import PADDING_ID
from keras_attention.data.pipeline import batch_examples
from keras_attention.data.pipeline import check_batch_size
from keras_attention.data.pipeline import geometric_boundaries
from keras_attention.data.tfds import HELD_OUT_FRACTION
from keras_attention.data.tfds import check_feature
from keras_attention.data.tfds import check_split
from keras_attention.data.tfds import choose_held_out_split
from keras_attention.data.tfds import hold_out
from keras_attention.data.tfds import supervised_pair
from keras_attention.data.tfds import tfds_builder
from keras_attention.files import read_text_lines
from keras_attention.text.run_vocabulary import (
    learn_or_load_sentencepiece_tokenizer,
)
from keras_attention.text.run_vocabulary import (
    learn_or_load_wordpiece_tokenizer,
)
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary
from keras_attention.text.wordpiece_vocabulary import split_words

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_HELD_OUT_SPLIT",
    "LENGTH_POLICIES",
    "TOKENIZERS",
    "TOKENIZER_FILES",
    "TranslationData",
    "learn_translation_tokenizers",
    "load_parallel_files",
    "load_tfds_translation",
    "load_tfds_translation_data",
    "make_translation_dataset",
    "make_translation_datasets",
    "normalized_references",
    "reference_normalizer",
    "text_pairs",
    "translation_tokenizers",
]

DEFAULT_DATASET = "ted_hrlr_translate/pt_to_en"
DEFAULT_HELD_OUT_SPLIT = "validation"
LENGTH_POLICIES = ("filter", "truncate")
TOKENIZERS = ("sentencepiece", "wordpiece")
# A run's tokenizer files, `(source, target)`, per kind of tokenizer.
TOKENIZER_FILES = {
    "sentencepiece": (
        "source_sentencepiece.model",
        "target_sentencepiece.model",
    ),
    "wordpiece": ("source_vocabulary.txt", "target_vocabulary.txt"),
}

_logger = logging.getLogger(__name__)


def load_tfds_translation(
    name=DEFAULT_DATASET,
    split="train",
    data_dir=None,
    source_key=None,
    target_key=None,
    download=True,
):
    """A split of a TFDS translation dataset as `(source, target)` strings.

    Args:
        name: a TFDS dataset name, with its config: `"ted_hrlr_translate/
            pt_to_en"`, `"wmt14_translate/de-en"`, ... Defaults to
            `"ted_hrlr_translate/pt_to_en"`.
        split: a TFDS split (`"train"`, `"validation"`, `"test[:100]"`,
            ...). Defaults to `"train"`.
        data_dir: the TFDS data directory. Defaults to `None` (TFDS's own,
            `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        source_key: the feature that holds the source sentence. Defaults to
            `None`: the first of the builder's supervised keys (`"pt"` for
            the default dataset), or the other one when `target_key` names
            the first.
        target_key: the feature that holds the target sentence. Defaults to
            `None`: the second supervised key (`"en"`), or the other one
            when `source_key` names the second.
        download: bool, whether to download and prepare the data if needed.
            Defaults to `True`.

    Returns:
        `(dataset, (source_key, target_key))`: a `tf.data.Dataset` of
        `(source, target)` scalar `tf.string` pairs and the feature names.

    Raises:
        ValueError: for an unknown dataset or split, or when the language
            keys cannot be found.
    """
    builder = tfds_builder(name, data_dir=data_dir)
    keys = _language_keys(name, builder, source_key, target_key)
    return _read_pairs(name, builder, split, keys, download), keys


@dataclasses.dataclass
class TranslationData:
    """Training and held-out pairs of a TFDS translation dataset.

    Attributes:
        train: a `tf.data.Dataset` of `(source, target)` scalar strings.
        held_out: the held-out pairs, in the same format.
        keys: `(source_key, target_key)`, the features read.
        held_out_split: str, where `held_out` comes from: a split name or
            `"the first N pairs of <train split>"`.
    """

    train: tf.data.Dataset
    held_out: tf.data.Dataset
    keys: tuple
    held_out_split: str


def load_tfds_translation_data(
    name=DEFAULT_DATASET,
    train_split="train",
    held_out_split=DEFAULT_HELD_OUT_SPLIT,
    data_dir=None,
    source_key=None,
    target_key=None,
    held_out_fraction=HELD_OUT_FRACTION,
    max_train_examples=None,
    download=True,
    builder_kwargs=None,
):
    """The training and held-out pairs of a TFDS translation dataset.

    The keys are found as in `load_tfds_translation`. When the dataset has
    no validation split (para_crawl, opus) and `held_out_split` is left at
    `"validation"`, the first `held_out_fraction` of the pairs that train
    are held out from `train_split` (see `keras_attention.data.tfds.
    hold_out`); a held-out split that was named is never replaced.

    Args:
        name: the TFDS name with its config. Defaults to
            `"ted_hrlr_translate/pt_to_en"`.
        train_split: the training split. Defaults to `"train"`.
        held_out_split: the held-out split. Defaults to `"validation"`.
        data_dir: the TFDS data directory. Defaults to `None`.
        source_key: the source feature. Defaults to `None` (see
            `load_tfds_translation`).
        target_key: the target feature. Defaults to `None`.
        held_out_fraction: float in `(0, 1)`, the part held out of the
            pairs that train when there is no validation split. Defaults to
            `0.1`.
        max_train_examples: optional int, the most training pairs kept.
            Defaults to `None` (all).
        download: bool, whether to download and prepare the data if
            needed. Defaults to `True`.
        builder_kwargs: optional dict passed to `tfds.builder` (e.g. a
            `config`). Defaults to `None`.

    Returns:
        A `TranslationData`.

    Raises:
        ValueError: for an unknown dataset or split, keys that cannot be
            found, or a training split too small to hold some out.

    Example:

    >>> data = load_tfds_translation_data(
    ...     "date_conversion", held_out_split="test")  # doctest: +SKIP
    >>> data.keys, data.held_out_split  # doctest: +SKIP
    (('source', 'target'), 'test')
    """
    builder = tfds_builder(name, data_dir=data_dir, **(builder_kwargs or {}))
    keys = _language_keys(name, builder, source_key, target_key)
    train = _read_pairs(name, builder, train_split, keys, download)
    split = choose_held_out_split(
        name,
        builder,
        held_out_split,
        DEFAULT_HELD_OUT_SPLIT,
        "held_out_split",
    )
    if split is None:
        train, held_out, count = hold_out(
            train,
            held_out_fraction,
            name=name,
            split=train_split,
            num_train=max_train_examples,
            position="start",
        )
        split = f"the first {count} pairs of {train_split}"
    else:
        held_out = _read_pairs(name, builder, split, keys, download=False)
    if max_train_examples:
        train = train.take(max_train_examples)
    return TranslationData(train, held_out, keys, split)


def _language_keys(name, builder, source_key, target_key):
    """`(source_key, target_key)`: two distinct text features of `builder`.

    A missing key is the other supervised key (`("pt", "en")` for the
    default dataset), so naming one language picks the other.
    """
    features = builder.info.features
    names = list(features.keys())
    supervised = supervised_pair(builder)
    if source_key is None or target_key is None:
        given = source_key if target_key is None else target_key
        if supervised is None or (
            given is not None and given not in supervised
        ):
            raise ValueError(
                f"Dataset {name!r} has no (source, target) supervised keys "
                f"to complete {'the keys' if given is None else repr(given)} "
                "with; name both `source_key` and `target_key`. Received: "
                f"supervised_keys={builder.info.supervised_keys}, features "
                f"{names}"
            )
        if given is None:
            source_key, target_key = supervised
        else:
            other = supervised[1] if given == supervised[0] else supervised[0]
            if source_key is None:
                source_key = other
            else:
                target_key = other
    if source_key == target_key:
        raise ValueError(
            "`source_key` and `target_key` must differ (translating a "
            f"language into itself is a copy task). Received: {source_key!r}"
            " for both"
        )
    for argument, key in (
        ("source_key", source_key),
        ("target_key", target_key),
    ):
        check_feature(
            name, features, argument, key, tfds.features.Text, "a text"
        )
    return source_key, target_key


def _read_pairs(name, builder, split, keys, download):
    """`(source, target)` strings of one split, checked before and after a
    download (the split names are known once the data is prepared)."""
    check_split(name, builder, split)
    if download:
        builder.download_and_prepare()
        check_split(name, builder, split)
    source_key, target_key = keys
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    return dataset.map(
        lambda example: (example[source_key], example[target_key]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def text_pairs(dataset):
    """The `(source, target)` pairs of a dataset as a list of `str` pairs."""
    return [
        (source.decode("utf-8"), target.decode("utf-8"))
        for source, target in dataset.as_numpy_iterator()
    ]


def _read_lines(path):
    """Lines of a non-blank file, trailing blank lines left out.

    Blank lines at the end shift no line's alignment, so one file may end
    with more of them than the other.
    """
    lines = read_text_lines(path)
    if not any(line.strip() for line in lines):
        raise ValueError(f"{os.fspath(path)}: the file is empty (no text).")
    while not lines[-1].strip():
        lines.pop()
    return lines


def load_parallel_files(source_path, target_path):
    """Reads `(source, target)` pairs from two line-aligned text files.

    Line `i` of `source_path` is translated by line `i` of `target_path`.
    Surrounding whitespace is stripped. Pairs where both lines are blank
    are skipped; pairs with only one blank side are skipped too (a gap in
    the alignment), with a logged warning that counts them. Blank lines at
    the end of a file are not counted.

    Args:
        source_path: a UTF-8 text file, one source sentence per line.
        target_path: a UTF-8 text file with as many lines.

    Returns:
        A list of `(source, target)` tuples of `str`.

    Raises:
        FileNotFoundError: if a file does not exist.
        ValueError: if a file is empty, is not valid UTF-8 (the message
            names the line), or the files have different line counts (the
            message gives both).

    Example:

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "src.txt").write_text("olá mundo\\nobrigado\\n")
    >>> _ = (folder / "tgt.txt").write_text("hello world\\nthank you\\n")
    >>> load_parallel_files(folder / "src.txt", folder / "tgt.txt")
    [('olá mundo', 'hello world'), ('obrigado', 'thank you')]
    """
    sources = _read_lines(source_path)
    targets = _read_lines(target_path)
    if len(sources) != len(targets):
        raise ValueError(
            "The source and target files must have the same number of "
            f"lines. Received: {len(sources)} lines in "
            f"{os.fspath(source_path)!r} and {len(targets)} lines in "
            f"{os.fspath(target_path)!r}"
        )
    pairs = []
    one_sided = 0
    for source, target in zip(sources, targets):
        source, target = source.strip(), target.strip()
        if source and target:
            pairs.append((source, target))
        elif source or target:
            one_sided += 1
    if one_sided:
        _logger.warning(
            "Skipped %d line pairs with an empty source or target.", one_sided
        )
    if not pairs:
        raise ValueError(
            f"{os.fspath(source_path)} and {os.fspath(target_path)} hold no "
            "pair with both a source and a target."
        )
    return pairs


def _pair_dataset(data):
    """A dataset of scalar `(source, target)` strings from pairs or one."""
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not (
            isinstance(spec, tuple)
            and len(spec) == 2
            and all(
                isinstance(s, tf.TensorSpec)
                and s.dtype == tf.string
                and s.shape.rank == 0
                for s in spec
            )
        ):
            raise ValueError(
                "`data` must be a dataset of (source, target) scalar "
                f"strings. Received: element_spec={spec}"
            )
        return data
    pairs = list(data)
    if not pairs:
        raise ValueError("`data` holds no pairs. Received: []")
    for index, pair in enumerate(pairs):
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not all(isinstance(text, (str, bytes)) for text in pair)
        ):
            raise ValueError(
                "`data` must hold (source, target) string pairs. "
                f"Received: {pair!r} at index {index}"
            )
    sources, targets = zip(*pairs)
    return tf.data.Dataset.from_tensor_slices((list(sources), list(targets)))


def learn_translation_tokenizers(
    data,
    source_vocabulary_size,
    target_vocabulary_size=None,
    lowercase=True,
    normalization="nfd_strip_accents",
    learn_params=None,
):
    """Learns one WordPiece tokenizer per language from training pairs.

    Learn from the training split only. Both tokenizers add `[START]` and
    `[END]` around every sequence (`add_start_end=True`), which is what
    `make_translation_dataset` and the decoders expect.

    Args:
        data: a list of `(source, target)` string pairs or a
            `tf.data.Dataset` of them.
        source_vocabulary_size: int, the largest source vocabulary.
        target_vocabulary_size: int, the largest target vocabulary.
            Defaults to `None` (the same as the source's).
        lowercase: bool, whether to lower-case the text. Defaults to `True`.
        normalization: `"nfd_strip_accents"`, `"nfkc"` or `None`. Defaults
            to `"nfd_strip_accents"`.
        learn_params: optional dict of further learner arguments; see
            `learn_wordpiece_vocabulary`. Defaults to `None`.

    Returns:
        `(source_tokenizer, target_tokenizer)`, two `WordPieceTokenizer`s.
        `translation_tokenizers` also saves (or reloads) their
        vocabularies.
    """
    dataset = _pair_dataset(data)
    target_vocabulary_size = target_vocabulary_size or source_vocabulary_size
    tokenizers = []
    for index, size in enumerate(
        (source_vocabulary_size, target_vocabulary_size)
    ):
        texts = dataset.map(lambda *pair, i=index: pair[i])
        vocabulary = learn_wordpiece_vocabulary(
            texts,
            size,
            lowercase=lowercase,
            normalization=normalization,
            learn_params=learn_params,
        )
        tokenizers.append(
            WordPieceTokenizer(
                vocabulary,
                lowercase=lowercase,
                normalization=normalization,
                add_start_end=True,
            )
        )
    return tuple(tokenizers)


def translation_tokenizers(
    data,
    vocabulary_size,
    vocabulary_paths,
    reuse=False,
    lowercase=True,
    normalization="nfd_strip_accents",
    tokenizer="wordpiece",
    seed=0,
):
    """The source and target tokenizers of a run, saved or reloaded.

    A resumed run must use the tokenizers it trained with: with `reuse`
    and both files present they are reloaded; otherwise both are learned
    from `data` and saved there, once per language
    (`text.learn_or_load_sentencepiece_tokenizer` or
    `text.learn_or_load_wordpiece_tokenizer`).

    Args:
        data: the training pairs (a list or a `tf.data.Dataset`).
        vocabulary_size: int, the largest vocabulary per language.
        vocabulary_paths: `(source_path, target_path)`: SentencePiece model
            files, or WordPiece vocabularies (one token a line); see
            `TOKENIZER_FILES` for a run's names.
        reuse: bool, whether to reload existing files. Defaults to `False`.
        lowercase: bool, WordPiece only (SentencePiece keeps case).
            Defaults to `True`.
        normalization: WordPiece only; see `learn_translation_tokenizers`.
            Defaults to `"nfd_strip_accents"`.
        tokenizer: `"sentencepiece"` (cased; detokenizes to natural text)
            or `"wordpiece"`. Defaults to `"wordpiece"`.
        seed: int, the SentencePiece training seed. Defaults to `0`.

    Returns:
        `(source_tokenizer, target_tokenizer)`, with `add_start_end=True`.

    Example:

    >>> import os, tempfile
    >>> directory = tempfile.mkdtemp()
    >>> paths = [os.path.join(directory, n) for n in ("pt.txt", "en.txt")]
    >>> pairs = [("o gato", "the cat"), ("o cão", "the dog")] * 10
    >>> source, target = translation_tokenizers(pairs, 40, paths)
    >>> reloaded, _ = translation_tokenizers([], 40, paths, reuse=True)
    >>> reloaded.get_vocabulary() == source.get_vocabulary()
    True
    """
    if len(vocabulary_paths) != 2:
        raise ValueError(
            "`vocabulary_paths` must be (source_path, target_path). "
            f"Received: vocabulary_paths={vocabulary_paths!r}"
        )
    if tokenizer not in TOKENIZERS:
        raise ValueError(
            f"`tokenizer` must be one of {TOKENIZERS}. "
            f"Received: tokenizer={tokenizer!r}"
        )
    reuse = reuse and all(os.path.isfile(path) for path in vocabulary_paths)
    if reuse:
        texts = (None, None)  # not read
    else:
        dataset = _pair_dataset(data)
        texts = [dataset.map(lambda *pair, i=i: pair[i]) for i in (0, 1)]
    if tokenizer == "sentencepiece":
        learn_or_load = functools.partial(
            learn_or_load_sentencepiece_tokenizer, seed=seed
        )
    else:
        learn_or_load = functools.partial(
            learn_or_load_wordpiece_tokenizer,
            lowercase=lowercase,
            normalization=normalization,
        )
    return tuple(
        learn_or_load(
            language_texts,
            vocabulary_size,
            path,
            reuse=reuse,
            add_start_end=True,
        )
        for language_texts, path in zip(texts, vocabulary_paths)
    )


def reference_normalizer(tokenizer):
    """How references must be written to compare with `tokenizer`'s output.

    A `WordPieceTokenizer` detokenizes to normalised words (see
    `normalized_references`), so references are normalised with its
    settings; any other tokenizer (SentencePiece) writes natural text, and
    references stay as they are.

    Returns:
        A function from a list of references to a list, or `None`.

    Example:

    >>> from keras_attention.text import WordPieceTokenizer
    >>> normalize = reference_normalizer(WordPieceTokenizer(
    ...     ["[PAD]", "[UNK]", "[START]", "[END]"]))
    >>> normalize(["Olá, Mundo!"])
    ['ola , mundo !']
    """
    if not isinstance(tokenizer, WordPieceTokenizer):
        return None
    return functools.partial(
        normalized_references,
        lowercase=tokenizer.lowercase,
        normalization=tokenizer.normalization,
    )


def normalized_references(
    texts, lowercase=True, normalization="nfd_strip_accents"
):
    """Reference sentences in the normalised form the tokenizers output.

    `WordPieceTokenizer.detokenize` gives normalised text (see
    `split_words`), so BLEU compares translations with references
    normalised the same way.

    Example:

    >>> normalized_references(["Olá, Mundo!"])
    ['ola , mundo !']
    """
    words = split_words(
        list(texts), lowercase=lowercase, normalization=normalization
    )
    return [" ".join(w.decode("utf-8") for w in row) for row in words.to_list()]


def _truncate(ids, max_length, end_id):
    """Cuts ragged `(batch, None)` ids to `max_length`, keeping `end_id`."""
    if end_id is None:
        return ids[:, :max_length]
    # Every row ends with `end_id`: cut the body, then put the end back.
    body = ids[:, :-1][:, : max_length - 1]  # (batch, None)
    end = tf.fill([body.nrows(), 1], tf.cast(end_id, ids.dtype))
    return tf.concat([body, end], axis=1)  # (batch, None)


def make_translation_dataset(
    data,
    source_tokenizer,
    target_tokenizer,
    batch_size=64,
    batch_tokens=None,
    max_length=None,
    length_policy="filter",
    bucket_boundaries=None,
    shuffle=False,
    seed=None,
    shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
    cache=True,
    count_batches=False,
):
    """Batches of tokenised sentence pairs for teacher-forced training.

    The pipeline (`keras_attention.data.pipeline.batch_examples`):
    tokenise both sides in the graph (chunks of strings at a time), split
    each target `[START] w1 ... wn [END]` into the decoder inputs
    `[START] w1 ... wn` and the labels `w1 ... wn [END]` (shifted by one),
    drop or truncate pairs longer than `max_length`, cache, shuffle, group
    pairs of similar length into the same batch
    (`tf.data.Dataset.bucket_by_sequence_length`, so a batch is padded only
    to its own longest sequence and little compute goes to padding), and
    prefetch.

    Lengths count ids, start and end included: a pair fits when its source
    has at most `max_length` ids and its decoder input (the target without
    `[END]`) too, so the model never sees more than `max_length` positions.
    Truncation keeps the `[END]` id of a truncated sequence.

    Args:
        data: a list of `(source, target)` string pairs or a
            `tf.data.Dataset` of scalar string pairs (e.g. from
            `load_tfds_translation`).
        source_tokenizer: a `WordPieceTokenizer` (ragged output, no
            `sequence_length`); its output is used as is, so make it with
            `add_start_end=True` to frame sources as the exported model
            does.
        target_tokenizer: a `WordPieceTokenizer` with `add_start_end=True`
            and no `sequence_length`.
        batch_size: int, the sentence pairs per batch when `batch_tokens`
            is `None`. Defaults to `64`.
        batch_tokens: optional int, a budget of ids per batch instead: a
            bucket of sequences up to `L` ids long gets
            `max(1, batch_tokens // L)` pairs. Defaults to `None`.
        max_length: optional int, the longest sequence kept (see above).
            Defaults to `None` (no limit).
        length_policy: `"filter"` (drop longer pairs) or `"truncate"` (cut
            them). Defaults to `"filter"`.
        bucket_boundaries: optional increasing ints, the length boundaries
            of the buckets. Defaults to `None`: 8, 16, 32, ... up to
            `max_length` (or 256).
        shuffle: bool, whether to reshuffle the pairs every epoch. Defaults
            to `False`.
        seed: optional int, the shuffling seed. Defaults to `None`.
        shuffle_buffer: int, the shuffle buffer size. Defaults to `20000`.
        cache: `True` (cache the tokenised pairs in memory), a path (cache
            to files with that prefix, for corpora too large for memory) or
            `False`. Defaults to `True`.
        count_batches: bool, whether to count the batches with one pass
            over the data (which also fills the cache) and declare the
            count as the dataset's cardinality. The count is the same every
            epoch, however the pairs are shuffled, since each bucket always
            holds the same pairs. Keras then shows progress from the first
            epoch and runs no extra step at the end of an epoch under a
            distribution strategy. Defaults to `False`.

    Returns:
        A `tf.data.Dataset` of `({"source_ids": (batch, src_len),
        "target_ids": (batch, tgt_len)}, labels (batch, tgt_len))`, int32,
        padded with id `0`.

    Example:

    >>> source_tokenizer, target_tokenizer = learn_translation_tokenizers(
    ...     [("olá mundo", "hello world")] * 20, 40)
    >>> batches = make_translation_dataset(
    ...     [("olá mundo", "hello world")], source_tokenizer,
    ...     target_tokenizer, batch_size=2)
    >>> inputs, labels = next(iter(batches))
    >>> sorted(inputs), labels.shape[0]
    (['source_ids', 'target_ids'], 1)
    """
    for name, tokenizer in (
        ("source_tokenizer", source_tokenizer),
        ("target_tokenizer", target_tokenizer),
    ):
        if getattr(tokenizer, "sequence_length", None) is not None:
            raise ValueError(
                f"`{name}` must return ragged ids (`sequence_length=None`). "
                f"Received: sequence_length={tokenizer.sequence_length}"
            )
    if not getattr(target_tokenizer, "add_start_end", False):
        raise ValueError(
            "`target_tokenizer` must add start and end ids "
            "(`add_start_end=True`): the decoder inputs start with the start "
            "id and the labels end with the end id. Received: "
            "add_start_end=False"
        )
    if length_policy not in LENGTH_POLICIES:
        raise ValueError(
            f"`length_policy` must be one of {LENGTH_POLICIES}. "
            f"Received: length_policy={length_policy!r}"
        )
    minimum_length = 2 if source_tokenizer.add_start_end else 1
    if max_length is not None and (
        not isinstance(max_length, int) or max_length < minimum_length
    ):
        raise ValueError(
            f"`max_length` must be None or an int >= {minimum_length}. "
            f"Received: max_length={max_length!r}"
        )
    if batch_tokens is None:
        check_batch_size(batch_size)
    else:
        batch_tokens = check_positive_int("batch_tokens", batch_tokens)
    if bucket_boundaries is None:
        bucket_boundaries = geometric_boundaries(max_length)
    bucket_boundaries = [int(b) for b in bucket_boundaries]
    if not bucket_boundaries or any(
        b <= a for a, b in zip([0] + bucket_boundaries, bucket_boundaries)
    ):
        raise ValueError(
            "`bucket_boundaries` must be positive and strictly increasing. "
            f"Received: bucket_boundaries={bucket_boundaries}"
        )

    source_end = (
        source_tokenizer.end_id if source_tokenizer.add_start_end else None
    )

    def encode(sources, targets):
        source_ids = tf.cast(source_tokenizer.tokenize(sources), tf.int32)
        target_ids = tf.cast(target_tokenizer.tokenize(targets), tf.int32)
        if max_length is not None and length_policy == "truncate":
            source_ids = _truncate(source_ids, max_length, source_end)
            # The decoder input (target minus the end id) gets `max_length`.
            target_ids = _truncate(
                target_ids, max_length + 1, target_tokenizer.end_id
            )
        # Decoder inputs `[START] w1 ... wn`, labels `w1 ... wn [END]`.
        return source_ids, target_ids[:, :-1], target_ids[:, 1:]

    def fits(source_ids, target_inputs, labels):
        return (tf.shape(source_ids)[0] <= max_length) & (
            tf.shape(target_inputs)[0] <= max_length
        )

    def length(source_ids, target_inputs, labels):
        return tf.maximum(tf.shape(source_ids)[0], tf.shape(target_inputs)[0])

    def as_inputs(source_ids, target_inputs, labels):
        return {"source_ids": source_ids, "target_ids": target_inputs}, labels

    # Bucket `i` holds lengths in [boundaries[i - 1], boundaries[i]).
    if batch_tokens is None:
        batch_sizes = [batch_size] * (len(bucket_boundaries) + 1)
    else:
        longest = [b - 1 for b in bucket_boundaries]
        longest.append(max_length or BUCKET_GROWTH * bucket_boundaries[-1])
        batch_sizes = [max(1, batch_tokens // max(1, n)) for n in longest]

    def check_counts(num_batches, num_pairs):
        _check_kept_pairs(data, num_pairs, max_length, length_policy)

    return batch_examples(
        _pair_dataset(data),
        encode,
        batch_size=max(batch_sizes),
        keep=fits
        if max_length is not None and length_policy == "filter"
        else None,
        length=length,
        bucket_boundaries=bucket_boundaries,
        bucket_batch_sizes=batch_sizes,
        padding_values=(PADDING_ID, PADDING_ID, PADDING_ID),
        cache=cache,
        shuffle=shuffle,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        finish=as_inputs,
        count_batches=count_batches,
        check_counts=check_counts,
    )


def make_translation_datasets(
    train,
    held_out,
    source_tokenizer,
    target_tokenizer,
    length_policy="filter",
    seed=None,
    **options,
):
    """A run's training and validation batches (`make_translation_dataset`).

    The training pairs are reshuffled every epoch and filtered or cut by
    `length_policy`; the held-out pairs keep their order and are cut, so
    every one of them counts in the validation loss. Both count their
    batches (progress from the first epoch).

    Args:
        train: the training pairs (a list or a `tf.data.Dataset`).
        held_out: the held-out pairs.
        source_tokenizer: the source tokenizer (`add_start_end=True`).
        target_tokenizer: the target tokenizer (`add_start_end=True`).
        length_policy: the training pairs' `"filter"` or `"truncate"`.
            Defaults to `"filter"`.
        seed: optional int, the shuffling seed. Defaults to `None`.
        **options: further `make_translation_dataset` arguments for both
            (`batch_size`, `batch_tokens`, `max_length`, ...).

    Returns:
        `(train_batches, validation_batches)`.
    """
    return tuple(
        make_translation_dataset(
            pairs,
            source_tokenizer,
            target_tokenizer,
            length_policy=policy,
            shuffle=shuffle,
            seed=seed,
            count_batches=True,
            **options,
        )
        for pairs, policy, shuffle in (
            (train, length_policy, True),
            (held_out, "truncate", False),
        )
    )


def _check_kept_pairs(data, kept, max_length, length_policy):
    """Raise if the length filter left nothing; warn if it dropped pairs."""
    try:
        total = len(data)
    except TypeError:  # a tf.data.Dataset: its size is not known up front
        total = None
    if kept == 0:
        reason = (
            f"every pair is longer than max_length={max_length} ids "
            "(start and end ids included); raise `max_length` or pass "
            "length_policy='truncate'"
            if max_length is not None and length_policy == "filter"
            else "the data holds no pairs"
        )
        raise ValueError(
            f"No training batches: {reason}. Received: "
            f"{'an unknown number of' if total is None else total} pairs"
        )
    if total is not None and kept < total:
        _logger.warning(
            "%d of %d pairs are longer than max_length=%d ids and were left "
            "out (length_policy='filter'; 'truncate' keeps them, cut).",
            total - kept,
            total,
            max_length,
        )
