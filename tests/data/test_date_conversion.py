import datetime

import pytest
import tensorflow_datasets as tfds

from keras_attention.data.date_conversion import DATE_FORMATS
from keras_attention.data.date_conversion import DateConversion
from keras_attention.data.date_conversion import DateConversionConfig
from keras_attention.data.date_conversion import format_date
from keras_attention.data.date_conversion import generate_date_pairs


@pytest.mark.parametrize(
    "date, date_format, case, expected",
    [
        ((1994, 9, 27), "{Month} {D}, {YYYY}", "lower", "september 27, 1994"),
        ((1993, 2, 10), "{M}/{D}/{YY}", "lower", "2/10/93"),
        ((1990, 10, 31), "{MM}/{DD}/{YY}", "lower", "10/31/90"),
        (
            (1984, 9, 25),
            "{Weekday}, {Month} {D}, {YYYY}",
            "upper",
            "TUESDAY, SEPTEMBER 25, 1984",
        ),
        ((2003, 8, 19), "{Mon} {D}, {YYYY}", "title", "Aug 19, 2003"),
        ((2003, 8, 19), "{D} {Month} {YYYY}", "title", "19 August 2003"),
        ((2001, 3, 3), "{Month} {Dth}, {YYYY}", "title", "March 3rd, 2001"),
        ((2001, 3, 11), "{Month} {Dth}, {YYYY}", "lower", "march 11th, 2001"),
        ((2003, 8, 9), "{D}-{Mon}-{YY}", "upper", "9-AUG-03"),
    ],
)
def test_format_date_examples(date, date_format, case, expected):
    assert format_date(datetime.date(*date), date_format, case) == expected


def test_format_date_rejects_unknown_case():
    with pytest.raises(ValueError, match="Received: case='camel'"):
        format_date(datetime.date(2000, 1, 1), DATE_FORMATS[0], "camel")


# An independent parser for every format: strptime patterns.
_STRPTIME = {
    "{Month} {D}, {YYYY}": "%B %d, %Y",
    "{Month} {D} {YYYY}": "%B %d %Y",
    "{Mon} {D}, {YYYY}": "%b %d, %Y",
    "{Mon} {DD} {YYYY}": "%b %d %Y",
    "{Weekday}, {Month} {D}, {YYYY}": "%A, %B %d, %Y",
    "{Wkd}, {Mon} {D}, {YYYY}": "%a, %b %d, %Y",
    "{Wkd} {Mon} {DD} {YYYY}": "%a %b %d %Y",
    "{D} {Month} {YYYY}": "%d %B %Y",
    "{D} {Mon} {YYYY}": "%d %b %Y",
    "{DD} {Mon}, {YYYY}": "%d %b, %Y",
    "{Weekday}, {D} {Month} {YYYY}": "%A, %d %B %Y",
    "{M}/{D}/{YYYY}": "%m/%d/%Y",
    "{DD}.{MM}.{YYYY}": "%d.%m.%Y",
    "{YYYY}-{MM}-{DD}": "%Y-%m-%d",
    "{YYYY}/{MM}/{DD}": "%Y/%m/%d",
}


@pytest.mark.parametrize("date_format", sorted(_STRPTIME))
def test_formats_parse_back_to_the_date(date_format):
    for date in (
        datetime.date(1950, 1, 1),
        datetime.date(1984, 9, 25),
        datetime.date(2049, 12, 31),
    ):
        for case in ("lower", "upper", "title"):
            text = format_date(date, date_format, case)
            parsed = datetime.datetime.strptime(text, _STRPTIME[date_format])
            assert parsed.date() == date, text


def test_every_format_is_generated_and_targets_are_iso():
    pairs = generate_date_pairs(3000, seed=3)
    for source, target in pairs:
        date = datetime.date.fromisoformat(target)
        assert datetime.date(1950, 1, 1) <= date <= datetime.date(2049, 12, 31)
        assert source.strip() == source and source
    # Two-digit years pivot at 50: "/93" is 1993, "/03" is 2003.
    for source, target in pairs:
        parts = source.split("/")
        if len(parts) == 3 and len(parts[0]) <= 2 and len(parts[2]) == 2:
            assert target[2:4] == source.split("/")[2]
            assert target[:2] == ("19" if int(target[2:4]) >= 50 else "20")
    cases = {
        "upper" if s.isupper() else "lower" if s.islower() else "other"
        for s, _ in pairs
    }
    assert {"upper", "lower", "other"} <= cases


def test_generation_is_deterministic():
    assert generate_date_pairs(50, seed=7) == generate_date_pairs(50, seed=7)
    assert generate_date_pairs(50, seed=7) != generate_date_pairs(50, seed=8)


def test_generate_excludes_sources():
    first = generate_date_pairs(200, seed=0)
    excluded = {source for source, _ in first}
    other = generate_date_pairs(200, seed=0, exclude=excluded)
    assert not excluded & {source for source, _ in other}


def test_generate_rejects_negative_size():
    with pytest.raises(ValueError, match="Received: num_examples=-1"):
        generate_date_pairs(-1)


def test_builder_generates_splits_offline(tmp_path):
    config = DateConversionConfig(name="tiny", num_train=60, num_test=20)
    builder = DateConversion(config=config, data_dir=str(tmp_path))
    builder.download_and_prepare()
    assert builder.info.splits["train"].num_examples == 60
    assert builder.info.splits["test"].num_examples == 20
    assert builder.info.supervised_keys == ("source", "target")

    train = list(tfds.as_numpy(builder.as_dataset(split="train")))
    test = list(tfds.as_numpy(builder.as_dataset(split="test")))
    train_sources = {example["source"] for example in train}
    assert not train_sources & {example["source"] for example in test}
    expected = dict(generate_date_pairs(60, seed=0))
    for example in train:
        source = example["source"].decode()
        assert expected[source] == example["target"].decode()


def test_tfds_load_by_name(tmp_path):
    # The builder is registered under its snake-case name.
    config = DateConversionConfig(name="tiny", num_train=10, num_test=5)
    dataset = tfds.load(
        "date_conversion",
        split="test",
        data_dir=str(tmp_path),
        as_supervised=True,
        builder_kwargs={"config": config},
        download=True,
    )
    pairs = list(tfds.as_numpy(dataset))
    assert len(pairs) == 5
    for _, target in pairs:
        datetime.date.fromisoformat(target.decode())
    assert "small" in [c.name for c in DateConversion.BUILDER_CONFIGS]


def test_sized_builder_kwargs():
    from keras_attention.data.date_conversion import sized_builder_kwargs

    assert sized_builder_kwargs("date_conversion", 50_000, 10_000) == {}
    config = sized_builder_kwargs("date_conversion", 30, 7)["config"]
    assert (config.name, config.num_train, config.num_test) == (
        "train30_test7",
        30,
        7,
    )
    assert sized_builder_kwargs(None, 30, 7) == {}  # local files


def test_sized_builder_kwargs_warns_for_another_dataset(caplog):
    from keras_attention.data.date_conversion import sized_builder_kwargs

    assert sized_builder_kwargs("ted_hrlr_translate/pt_to_en", 30, 7) == {}
    assert "ted_hrlr_translate/pt_to_en is used whole" in caplog.text


def test_check_source_lengths():
    from keras_attention.data.date_conversion import check_source_lengths

    splits = {"training": [("abc", "x"), ("abcdef", "y")], "held-out": []}
    assert check_source_lengths(splits, 6) == {"training": 6, "held-out": 0}
    with pytest.raises(ValueError, match="A training input has 6 char.*=5"):
        check_source_lengths(splits, 5)
    splits = {"training": [("ab", "x")], "held-out": [("abcdef", "y")]}
    with pytest.raises(ValueError, match="held-out input.*--limit=3"):
        check_source_lengths(splits, 3, "--limit")


def test_character_seq2seq_data_fixed_shapes_and_tokenizers():
    from keras_attention.data import character_seq2seq_data

    train = [("Jan 1, 2001", "2001-01-01"), ("feb 22, 1999", "1999-02-22")]
    train *= 3
    test = [("mar 3, 2003", "2003-03-03")]
    data = character_seq2seq_data(
        train, test, batch_size=4, max_source_length=20
    )
    assert data.train_pairs is train and data.test_pairs is test
    assert data.longest_target == 10
    # The sources are lowercased, the targets kept as they are.
    assert data.source_tokenizer.lowercase
    assert not data.target_tokenizer.lowercase
    assert "J" not in data.source_tokenizer.vocabulary
    batches = list(data.train_data)
    assert len(batches) == 1  # 6 pairs, batches of 4, the rest dropped
    inputs, target_out = batches[0]
    # The longest source (12 characters) rounded up to a multiple of 8.
    assert tuple(inputs["source_ids"].shape) == (4, 16)
    assert tuple(inputs["target_in_ids"].shape) == (4, 11)
    assert tuple(target_out.shape) == (4, 11)
    # Fewer pairs than a batch: the one partial batch is kept.
    small = character_seq2seq_data(train[:2], test, 4, 20, lowercase=False)
    assert [int(b[1].shape[0]) for b in small.train_data] == [2]
    assert not small.source_tokenizer.lowercase


def test_character_seq2seq_data_checks_every_split_before_batching():
    from keras_attention.data import character_seq2seq_data

    train = [("jan 1, 2001", "2001-01-01")]
    test = [("the first of january 2001", "2001-01-01")]
    with pytest.raises(ValueError, match="A held-out input has 25 char.*--max"):
        character_seq2seq_data(train, test, 2, 16, limit_name="--max")
    with pytest.raises(ValueError, match="A training input has 11 char"):
        character_seq2seq_data(train, [], 2, 10)
