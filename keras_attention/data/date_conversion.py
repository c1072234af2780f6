"""The `date_conversion` TFDS dataset: human-written dates -> ISO 8601.

The dataset is generated offline and deterministically from a seed: every
example is a random calendar date between 1950-01-01 and 2049-12-31 written
in one of many human formats (`september 27, 1994`, `2/10/93`,
`TUESDAY, SEPTEMBER 25, 1984`, `Aug 19, 2003`, `19 August 2003`, ...), in
lower, upper or title case, paired with its ISO form (`1994-09-27`).

Every format is unambiguous: slashes are month/day/year (US order), dots are
day.month.year (European order) and two-digit years `50`-`99` are `19xx`
while `00`-`49` are `20xx`. Weekdays, when written, are always correct.

The test split never repeats a source string of the train split, so it
measures generalisation to unseen inputs. Importing this module registers
the builder with TFDS, after which `tfds.load("date_conversion")` works
with no network access.
"""

import dataclasses
import datetime
import logging
import random

import tensorflow_datasets as tfds
from etils import epath

from keras_attention.data.parallel_text import make_seq2seq_dataset
from keras_attention.text.character_tokenizer import CharacterTokenizer

__all__ = [
    "DATASET_NAME",
    "DATE_FORMATS",
    "DEFAULT_NUM_TEST",
    "DEFAULT_NUM_TRAIN",
    "CharacterSeq2SeqData",
    "DateConversion",
    "DateConversionConfig",
    "character_seq2seq_data",
    "check_source_lengths",
    "format_date",
    "generate_date_pairs",
    "sized_builder_kwargs",
]

DATASET_NAME = "date_conversion"
# The sizes of the default configuration.
DEFAULT_NUM_TRAIN = 50_000
DEFAULT_NUM_TEST = 10_000

_logger = logging.getLogger(__name__)

FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)
TWO_DIGIT_YEAR_PIVOT = 50  # `yy >= 50` -> 19yy, else 20yy.
# Training sources are padded to a multiple of this many characters.
SOURCE_LENGTH_MULTIPLE = 8

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_CASES = ("lower", "upper", "title")


def _ordinal(day):
    if 11 <= day <= 13:
        return f"{day}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _fields(date):
    month = _MONTHS[date.month - 1]
    weekday = _WEEKDAYS[date.weekday()]
    return {
        "Month": month,
        "Mon": month[:3],
        "Weekday": weekday,
        "Wkd": weekday[:3],
        "M": str(date.month),
        "MM": f"{date.month:02d}",
        "D": str(date.day),
        "DD": f"{date.day:02d}",
        "Dth": _ordinal(date.day),
        "YYYY": f"{date.year:04d}",
        "YY": f"{date.year % 100:02d}",
    }


# Python `str.format` templates over the fields of `_fields`.
DATE_FORMATS = (
    "{Month} {D}, {YYYY}",  # september 27, 1994
    "{Month} {D} {YYYY}",  # september 27 1994
    "{Month} {Dth}, {YYYY}",  # september 27th, 1994
    "{Mon} {D}, {YYYY}",  # aug 19, 2003
    "{Mon} {DD} {YYYY}",  # aug 09 2003
    "{Weekday}, {Month} {D}, {YYYY}",  # tuesday, september 25, 1984
    "{Wkd}, {Mon} {D}, {YYYY}",  # tue, sep 25, 1984
    "{Wkd} {Mon} {DD} {YYYY}",  # tue sep 25 1984
    "{D} {Month} {YYYY}",  # 19 august 2003
    "{D} {Mon} {YYYY}",  # 19 aug 2003
    "{DD} {Mon}, {YYYY}",  # 09 aug, 2003
    "{Weekday}, {D} {Month} {YYYY}",  # tuesday, 25 september 1984
    "{Weekday} {D} {Mon} {YY}",  # tuesday 25 sep 84
    "{D}-{Mon}-{YY}",  # 19-aug-03
    "{M}/{D}/{YY}",  # 2/10/93
    "{MM}/{DD}/{YY}",  # 10/31/90
    "{M}/{D}/{YYYY}",  # 2/10/1993
    "{DD}.{MM}.{YYYY}",  # 31.10.1990
    "{D}.{M}.{YY}",  # 31.10.90
    "{YYYY}-{MM}-{DD}",  # 1990-10-31
    "{YYYY}/{MM}/{DD}",  # 1990/10/31
)


def format_date(date, date_format, case="lower"):
    """Writes `date` with one of `DATE_FORMATS` in the given letter case.

    Args:
        date: a `datetime.date`.
        date_format: a `str.format` template over the fields `Month`, `Mon`,
            `Weekday`, `Wkd`, `M`, `MM`, `D`, `DD`, `Dth`, `YYYY` and `YY`,
            usually one of `DATE_FORMATS`.
        case: one of `"lower"`, `"upper"` or `"title"`. Defaults to
            `"lower"`.

    Returns:
        The formatted string, e.g. `"Tuesday, September 25, 1984"`.

    Example:

    >>> format_date(datetime.date(1994, 9, 27), DATE_FORMATS[0])
    'september 27, 1994'
    """
    if case not in _CASES:
        raise ValueError(
            f"`case` must be one of {_CASES}. Received: case={case!r}"
        )
    text = date_format.format(**_fields(date))
    if case == "upper":
        return text.upper()
    if case == "title":
        # `str.title` would write "27Th"; capitalise words that start with
        # a letter only.
        return " ".join(
            word[:1].upper() + word[1:] if word[:1].isalpha() else word
            for word in text.split(" ")
        )
    return text


def _random_example(rng):
    span = (LAST_DATE - FIRST_DATE).days
    date = FIRST_DATE + datetime.timedelta(days=rng.randint(0, span))
    date_format = rng.choice(DATE_FORMATS)
    case = rng.choice(_CASES)
    return format_date(date, date_format, case), date.isoformat()


def generate_date_pairs(num_examples, seed=0, exclude=()):
    """Generates `(human_date, iso_date)` string pairs deterministically.

    Args:
        num_examples: number of pairs to generate.
        seed: integer seed; the same seed always gives the same pairs.
            Defaults to `0`.
        exclude: a collection of source strings that must not be generated
            (e.g. the sources of the train split when generating the test
            split). Defaults to `()`.

    Returns:
        A list of `num_examples` `(source, target)` tuples of `str`.

    Example:

    >>> pairs = generate_date_pairs(2, seed=1)
    >>> len(pairs), len(pairs[0][1])
    (2, 10)
    """
    if num_examples < 0:
        raise ValueError(
            "`num_examples` must be non-negative. "
            f"Received: num_examples={num_examples}"
        )
    rng = random.Random(seed)
    exclude = frozenset(exclude)
    pairs = []
    while len(pairs) < num_examples:
        source, target = _random_example(rng)
        if source not in exclude:
            pairs.append((source, target))
    return pairs


@dataclasses.dataclass(eq=False)
class DateConversionConfig(tfds.core.BuilderConfig):
    """Sizes and seed of a `date_conversion` configuration.

    Args:
        num_train: number of train examples.
        num_test: number of test examples; no test source string appears in
            the train split.
        seed: seed of the train split; the test split uses `seed + 1`.
    """

    num_train: int = DEFAULT_NUM_TRAIN
    num_test: int = DEFAULT_NUM_TEST
    seed: int = 0


def sized_builder_kwargs(dataset, num_train, num_test):
    """The TFDS builder arguments that give `date_conversion` these sizes.

    The default sizes need no arguments. Other sizes become a
    `DateConversionConfig` named after them (`"train2000_test500"`), so
    that each size is generated and cached once. They only size this
    dataset: for another one (read whole) a warning says so.

    Args:
        dataset: the TFDS name, or `None` when the data are local files
            (no builder, no warning).
        num_train: int, the train examples to generate.
        num_test: int, the test examples to generate.

    Returns:
        A dict of `tfds.builder` keyword arguments (maybe empty).

    Example:

    >>> sized_builder_kwargs("date_conversion", 50_000, 10_000)
    {}
    >>> sized_builder_kwargs("date_conversion", 200, 20)["config"].name
    'train200_test20'
    """
    if (num_train, num_test) == (DEFAULT_NUM_TRAIN, DEFAULT_NUM_TEST):
        return {}
    if dataset == DATASET_NAME:
        config = DateConversionConfig(
            name=f"train{num_train}_test{num_test}",
            num_train=num_train,
            num_test=num_test,
        )
        return {"config": config}
    if dataset is not None:
        _logger.warning(
            "`num_train` and `num_test` size the generated %s dataset only; "
            "%s is used whole.",
            DATASET_NAME,
            dataset,
        )
    return {}


def check_source_lengths(splits, max_source_length, limit_name=None):
    """The longest source of each split, checked against a limit.

    Check every split before training when the model that decodes them
    rejects longer inputs (as the `max_source_length` of
    `keras_attention.serving.export_seq2seq` does), rather than failing
    after training.

    Args:
        splits: a dict of a split's name (`"training"`, `"held-out"`) to
            its `(source, target)` pairs of str, in the order to check.
        max_source_length: int, the most characters a source may have.
        limit_name: what the error calls the limit (such as a flag,
            `"--max-source-length"`). Defaults to `"max_source_length"`.

    Returns:
        A dict of each split's name to its longest source, in characters.

    Raises:
        ValueError: a source is longer than `max_source_length`.

    Example:

    >>> pairs = [("jan 1, 2001", "2001-01-01")]
    >>> check_source_lengths({"training": pairs}, 16)
    {'training': 11}
    """
    limit_name = limit_name or "max_source_length"
    longest = {}
    for name, pairs in splits.items():
        longest[name] = max((len(source) for source, _ in pairs), default=0)
        if longest[name] > max_source_length:
            raise ValueError(
                f"A {name} input has {longest[name]} characters, more than "
                f"{limit_name}={max_source_length}."
            )
    return longest


@dataclasses.dataclass
class CharacterSeq2SeqData:
    """What a character-level seq2seq model trains on.

    Attributes:
        train_pairs: the `(source, target)` training pairs of str.
        test_pairs: the held-out pairs of str.
        source_tokenizer: a `CharacterTokenizer` of the training sources.
        target_tokenizer: a `CharacterTokenizer` of the training targets.
        longest_target: int, the most characters of any target (training
            or held-out): the decoder's output length.
        train_data: the `tf.data.Dataset` of training batches (see
            `keras_attention.data.make_seq2seq_dataset`).
    """

    train_pairs: list
    test_pairs: list
    source_tokenizer: object
    target_tokenizer: object
    longest_target: int
    train_data: object


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


def character_seq2seq_data(
    train_pairs,
    test_pairs,
    batch_size,
    max_source_length,
    lowercase=True,
    seed=None,
    limit_name=None,
):
    """Character tokenizers and fixed-shape training batches of text pairs.

    The tokenizers learn the characters of the training pairs (the sources
    lowercased with `lowercase`, the targets as they are). Every source of
    both splits is checked against `max_source_length` first
    (`check_source_lengths`): the held-out ones are decoded only after
    training, by a model that rejects longer inputs. The batches have one
    shape, so that XLA compiles once: sources padded to the longest
    training source rounded up to a multiple of 8, targets to the longest
    target plus the start id, and the last partial batch dropped (unless
    there is only one).

    Args:
        train_pairs: a list of `(source, target)` pairs of str.
        test_pairs: the held-out pairs.
        batch_size: int, pairs per batch.
        max_source_length: int, the most characters a source may have.
        lowercase: bool, whether the source tokenizer lowercases. Defaults
            to `True`.
        seed: optional int, the seed of the per-epoch reshuffling.
            Defaults to `None`.
        limit_name: what an error calls `max_source_length` (a flag).
            Defaults to `None` (`"max_source_length"`).

    Returns:
        A `CharacterSeq2SeqData`.

    Example:

    >>> pairs = [("jan 1, 2001", "2001-01-01"), ("feb 2, 2002", "2002-02-02")]
    >>> data = character_seq2seq_data(pairs, pairs[:1], 2, 16)
    >>> data.longest_target, data.source_tokenizer.lowercase
    (10, True)
    """
    splits = {"training": train_pairs, "held-out": test_pairs}
    longest_source = check_source_lengths(
        splits, max_source_length, limit_name
    )["training"]
    source_tokenizer = CharacterTokenizer.from_texts(
        (source for source, _ in train_pairs), lowercase=lowercase
    )
    target_tokenizer = CharacterTokenizer.from_texts(
        target for _, target in train_pairs
    )
    longest_target = max(len(t) for _, t in [*train_pairs, *test_pairs])
    train_data = make_seq2seq_dataset(
        train_pairs,
        source_tokenizer,
        target_tokenizer,
        batch_size,
        shuffle=True,
        seed=seed,
        source_length=_round_up(longest_source, SOURCE_LENGTH_MULTIPLE),
        target_length=longest_target + 1,
        drop_remainder=len(train_pairs) >= batch_size,
    )
    return CharacterSeq2SeqData(
        train_pairs,
        test_pairs,
        source_tokenizer,
        target_tokenizer,
        longest_target,
        train_data,
    )


class DateConversion(tfds.core.GeneratorBasedBuilder):
    """Human-written dates paired with their ISO 8601 form."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        DateConversionConfig(
            name="default",
            description="50,000 train and 10,000 test examples.",
        ),
        DateConversionConfig(
            name="small",
            description="2,000 train and 500 test examples.",
            num_train=2_000,
            num_test=500,
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"
    # TFDS finds a builder's source through `importlib_resources` on some
    # installs (a package missing on Python >= 3.9); name it directly.
    code_path = epath.Path(__file__)

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "source": tfds.features.Text(),
                    "target": tfds.features.Text(),
                }
            ),
            supervised_keys=("source", "target"),
            homepage="https://github.com/keras-team/keras",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Generated locally, nothing to download.
        config = self.builder_config
        train = generate_date_pairs(config.num_train, seed=config.seed)
        test = generate_date_pairs(
            config.num_test,
            seed=config.seed + 1,
            exclude={source for source, _ in train},
        )
        return {
            "train": self._generate_examples(train),
            "test": self._generate_examples(test),
        }

    def _generate_examples(self, pairs):
        for index, (source, target) in enumerate(pairs):
            yield index, {"source": source, "target": target}
