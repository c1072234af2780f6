import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_attention.data.translation import DEFAULT_DATASET
from keras_attention.data.translation import learn_translation_tokenizers
from keras_attention.data.translation import load_parallel_files
from keras_attention.data.translation import load_tfds_translation
from keras_attention.data.translation import make_translation_dataset
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer

LEXICON = {
    "um": "one",
    "dois": "two",
    "tres": "three",
    "gato": "cat",
    "cao": "dog",
    "ve": "sees",
    "o": "the",
}


def _pairs(count=40, seed=0):
    """Toy Portuguese -> English pairs of 1 to 9 words."""
    rng = np.random.default_rng(seed)
    words = list(LEXICON)
    pairs = []
    for _ in range(count):
        sentence = list(rng.choice(words, size=rng.integers(1, 10)))
        pairs.append(
            (" ".join(sentence), " ".join(LEXICON[w] for w in sentence))
        )
    return pairs


@pytest.fixture(scope="module")
def tokenizers():
    return learn_translation_tokenizers(_pairs(), 40)


def _collect(dataset):
    batches = []
    for inputs, labels in dataset:
        batches.append(
            (
                inputs["source_ids"].numpy(),
                inputs["target_ids"].numpy(),
                labels.numpy(),
            )
        )
    return batches


def _unpad(row):
    return [int(i) for i in row if i != 0]


# TFDS (mocked: never a download)


def test_tfds_default_dataset_with_mock_data():
    with tfds.testing.mock_data(num_examples=6):
        dataset, keys = load_tfds_translation()
        pairs = list(dataset.as_numpy_iterator())
    assert DEFAULT_DATASET == "ted_hrlr_translate/pt_to_en"
    assert keys == ("pt", "en")  # the builder's supervised keys
    assert len(pairs) == 6
    assert all(isinstance(s, bytes) and isinstance(t, bytes) for s, t in pairs)


def test_tfds_explicit_keys_swap_the_direction():
    with tfds.testing.mock_data(num_examples=4):
        forward, _ = load_tfds_translation(split="validation")
        backward, keys = load_tfds_translation(
            split="validation", source_key="en", target_key="pt"
        )
        forward = list(forward.as_numpy_iterator())
        backward = list(backward.as_numpy_iterator())
    assert keys == ("en", "pt")
    assert backward == [(t, s) for s, t in forward]


def test_tfds_mocked_data_feeds_the_pipeline(tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    with tfds.testing.mock_data(num_examples=12):
        dataset, _ = load_tfds_translation()
        batches = _collect(
            make_translation_dataset(
                dataset, source_tokenizer, target_tokenizer, batch_size=4
            )
        )
    assert sum(len(labels) for _, _, labels in batches) == 12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "no_such_translation_set"}, "Unknown TFDS dataset"),
        (
            {"source_key": "de", "target_key": "en"},
            "source_key` is not a feature.*'pt'",
        ),
    ],
)
def test_tfds_errors(kwargs, match):
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError, match=match):
            load_tfds_translation(**kwargs)


# Local line-aligned files


def test_parallel_files(tmp_path):
    source = tmp_path / "train.pt"
    target = tmp_path / "train.en"
    # A BOM, CRLF line ends, a Unicode line separator inside a sentence
    # (not a line break) and a pair of blank lines.
    source.write_bytes(
        "\ufeffolá mundo\r\n\nsim\u2028não\r\n  obrigado  \n".encode()
    )
    target.write_bytes(b"hello world\r\n\nyes no\r\nthank you\n")
    assert load_parallel_files(source, target) == [
        ("olá mundo", "hello world"),
        ("sim\u2028não", "yes no"),
        ("obrigado", "thank you"),
    ]


def test_parallel_files_skip_one_sided_pairs(tmp_path, caplog):
    (tmp_path / "s").write_text("a\n\nc\n")
    (tmp_path / "t").write_text("x\ny\nz\n")
    pairs = load_parallel_files(tmp_path / "s", tmp_path / "t")
    assert pairs == [("a", "x"), ("c", "z")]
    assert "Skipped 1 line pairs" in caplog.text


def test_mismatched_line_counts_report_both(tmp_path):
    (tmp_path / "s").write_text("a\nb\nc\n")
    (tmp_path / "t").write_text("x\ny\n")
    with pytest.raises(ValueError, match=r"3 lines in .*'.*s' and 2 lines"):
        load_parallel_files(tmp_path / "s", tmp_path / "t")


def test_trailing_blank_lines_do_not_count(tmp_path):
    (tmp_path / "s").write_text("a\nb\n")
    (tmp_path / "t").write_text("x\ny\n\n  \n")
    pairs = load_parallel_files(tmp_path / "s", tmp_path / "t")
    assert pairs == [("a", "x"), ("b", "y")]


def test_empty_file(tmp_path):
    (tmp_path / "s").write_text("a\n")
    (tmp_path / "t").write_text("\n  \n")
    with pytest.raises(ValueError, match="t: the file is empty"):
        load_parallel_files(tmp_path / "s", tmp_path / "t")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_parallel_files(tmp_path / "empty", tmp_path / "s")


def test_undecodable_bytes_name_the_line(tmp_path):
    (tmp_path / "s").write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    (tmp_path / "t").write_text("a\nb\nc\n")
    with pytest.raises(ValueError, match=r"s, line 3: not valid UTF-8"):
        load_parallel_files(tmp_path / "s", tmp_path / "t")


def test_missing_file(tmp_path):
    (tmp_path / "t").write_text("a\n")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_parallel_files(tmp_path / "missing.txt", tmp_path / "t")


# The tf.data pipeline


BUCKET_BOUNDARIES = [4, 6, 8, 10]


@pytest.fixture(scope="module")
def bucketed(tokenizers):
    """`(pairs, batches)` of a bucketed, shuffled pipeline."""
    source_tokenizer, target_tokenizer = tokenizers
    pairs = _pairs(count=200, seed=3)
    dataset = make_translation_dataset(
        pairs,
        source_tokenizer,
        target_tokenizer,
        batch_size=16,
        bucket_boundaries=BUCKET_BOUNDARIES,
        shuffle=True,
        seed=0,
    )
    return pairs, _collect(dataset)


def test_batches_hold_every_pair_with_shifted_labels(tokenizers, bucketed):
    source_tokenizer, target_tokenizer = tokenizers
    pairs, batches = bucketed
    got_sources, got_targets = [], []
    for source_ids, target_ids, labels in batches:
        assert source_ids.dtype == target_ids.dtype == labels.dtype == np.int32
        assert target_ids.shape == labels.shape
        for source_row, target_row, label_row in zip(
            source_ids, target_ids, labels
        ):
            target = _unpad(target_row)
            label = _unpad(label_row)
            # inputs: [START] w1..wn ; labels: w1..wn [END]
            assert target[0] == target_tokenizer.start_id
            assert label[-1] == target_tokenizer.end_id
            assert target[1:] == label[:-1]
            got_sources.append(_unpad(source_row))
            got_targets.append(target + label[-1:])
    expected_sources = source_tokenizer([s for s, _ in pairs]).to_list()
    expected_targets = target_tokenizer([t for _, t in pairs]).to_list()
    assert sorted(got_sources) == sorted(expected_sources)
    assert sorted(got_targets) == sorted(expected_targets)


def test_bucketing_cuts_padding(tokenizers, bucketed):
    source_tokenizer, target_tokenizer = tokenizers
    pairs, batches = bucketed

    def padding_fraction(batches):
        padded = sum(s.size for s, _, _ in batches)
        real = sum(int((s != 0).sum()) for s, _, _ in batches)
        return 1 - real / padded

    one_bucket = _collect(
        make_translation_dataset(
            pairs,
            source_tokenizer,
            target_tokenizer,
            batch_size=16,
            bucket_boundaries=[1000],
            shuffle=True,
            seed=0,
        )
    )
    assert padding_fraction(batches) < 0.5 * padding_fraction(one_bucket)
    # All sequences of a batch fall in one bucket, e.g. [6, 8): 6 or 7 ids.
    for source_ids, target_ids, _ in batches:
        lengths = np.maximum((source_ids != 0).sum(1), (target_ids != 0).sum(1))
        buckets = np.searchsorted(BUCKET_BOUNDARIES, lengths, side="right")
        assert len(set(buckets.tolist())) == 1


def test_token_budget_sets_the_batch_size(tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    batches = _collect(
        make_translation_dataset(
            _pairs(count=200, seed=4),
            source_tokenizer,
            target_tokenizer,
            batch_tokens=40,
            bucket_boundaries=[6, 11],
            max_length=12,
        )
    )
    # Buckets of lengths <= 5, 6..10 and 11..12 get 8, 4 and 3 pairs.
    sizes = {}
    for source_ids, target_ids, _ in batches:
        longest = max(source_ids.shape[1], target_ids.shape[1])
        bucket = int(np.searchsorted([6, 11], longest, side="right"))
        sizes.setdefault(bucket, set()).add(len(source_ids))
    for bucket, budget in zip(range(3), (8, 4, 3)):
        if bucket in sizes:
            assert max(sizes[bucket]) == budget


@pytest.mark.parametrize("policy", ["filter", "truncate"])
def test_length_policies(tokenizers, policy):
    source_tokenizer, target_tokenizer = tokenizers
    pairs = _pairs(count=60, seed=5)
    max_length = 6
    batches = _collect(
        make_translation_dataset(
            pairs,
            source_tokenizer,
            target_tokenizer,
            batch_size=64,
            max_length=max_length,
            length_policy=policy,
        )
    )
    count = sum(len(labels) for _, _, labels in batches)
    source_lengths = source_tokenizer([s for s, _ in pairs]).row_lengths()
    target_lengths = target_tokenizer([t for _, t in pairs]).row_lengths()
    fits = (source_lengths <= max_length) & (target_lengths <= max_length + 1)
    if policy == "filter":
        assert count == int(tf.reduce_sum(tf.cast(fits, tf.int32)))
        assert count < len(pairs)
    else:
        assert count == len(pairs)
    for source_ids, target_ids, labels in batches:
        assert source_ids.shape[1] <= max_length
        assert target_ids.shape[1] <= max_length
        for source_row, label_row in zip(source_ids, labels):
            # Truncated or not, every sequence still ends with its end id.
            assert _unpad(source_row)[-1] == source_tokenizer.end_id
            assert _unpad(label_row)[-1] == target_tokenizer.end_id


def test_truncation_keeps_the_first_tokens(tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    pair = (
        "um dois tres gato cao ve o um",
        "one two three cat dog sees the one",
    )
    ((source_ids, target_ids, labels),) = _collect(
        make_translation_dataset(
            [pair],
            source_tokenizer,
            target_tokenizer,
            max_length=4,
            length_policy="truncate",
        )
    )
    full_source = source_tokenizer(pair[0]).numpy().tolist()
    full_target = target_tokenizer(pair[1]).numpy().tolist()
    assert source_ids[0].tolist() == full_source[:3] + [full_source[-1]]
    assert target_ids[0].tolist() == full_target[:4]
    assert labels[0].tolist() == full_target[1:4] + [full_target[-1]]


def test_shuffling_is_seeded_and_cache_can_be_a_file(tokenizers, tmp_path):
    source_tokenizer, target_tokenizer = tokenizers

    def first_batch(seed, cache=True):
        dataset = make_translation_dataset(
            _pairs(),
            source_tokenizer,
            target_tokenizer,
            batch_size=4,
            bucket_boundaries=[1000],
            shuffle=True,
            seed=seed,
            cache=cache,
        )
        return _collect(dataset)[0][0]

    seeded = first_batch(1)
    # The same seed gives the same order, also when caching to files.
    cached = first_batch(1, cache=str(tmp_path / "cache"))
    np.testing.assert_array_equal(cached, seeded)
    assert any(p.name.startswith("cache") for p in tmp_path.iterdir())
    assert not np.array_equal(first_batch(2), seeded)


def test_counted_batches_set_the_cardinality(tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    dataset = make_translation_dataset(
        _pairs(count=50, seed=6),
        source_tokenizer,
        target_tokenizer,
        batch_size=8,
        bucket_boundaries=[5, 8],
        shuffle=True,
        seed=0,
        count_batches=True,
    )
    cardinality = int(dataset.cardinality())
    # Shuffling changes the batches, not their number.
    assert [len(_collect(dataset)) for _ in range(2)] == [cardinality] * 2


def test_counting_reports_pairs_the_length_filter_drops(tokenizers, caplog):
    source_tokenizer, target_tokenizer = tokenizers
    pairs = _pairs(count=50, seed=7)
    config = dict(batch_size=8, max_length=6, count_batches=True)
    with caplog.at_level("WARNING"):
        dataset = make_translation_dataset(
            pairs, source_tokenizer, target_tokenizer, **config
        )
    kept = sum(len(labels) for _, _, labels in _collect(dataset))
    assert 0 < kept < len(pairs)
    assert f"{len(pairs) - kept} of {len(pairs)} pairs" in caplog.text
    # Nothing fits: an error, not an epoch of zero steps.
    config["max_length"] = 2
    with pytest.raises(ValueError, match="every pair is longer.*truncate"):
        make_translation_dataset(
            pairs, source_tokenizer, target_tokenizer, **config
        )


def test_tokenizers_are_learned_per_language(tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    assert "gato" in source_tokenizer.get_vocabulary()
    assert "cat" in target_tokenizer.get_vocabulary()
    assert "cat" not in source_tokenizer.get_vocabulary()
    assert source_tokenizer.add_start_end and target_tokenizer.add_start_end
    assert source_tokenizer.vocabulary_size <= 40


def test_pipeline_errors(tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    pairs = _pairs(count=4)
    no_start_end = WordPieceTokenizer(target_tokenizer.get_vocabulary())
    fixed_length = WordPieceTokenizer(
        target_tokenizer.get_vocabulary(), sequence_length=8
    )
    cases = [
        (dict(target_tokenizer=no_start_end), "add_start_end=True"),
        (dict(source_tokenizer=fixed_length), "sequence_length"),
        (dict(length_policy="pad"), "length_policy"),
        (dict(max_length=1), "max_length"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_tokens=-5), "batch_tokens"),
        (dict(bucket_boundaries=[8, 4]), "strictly increasing"),
        (dict(data=[]), "no pairs"),
        (dict(data=[("only one",)]), "string pairs"),
        (
            dict(data=tf.data.Dataset.from_tensor_slices(["a", "b"])),
            "element_spec",
        ),
    ]
    for overrides, match in cases:
        kwargs = dict(
            data=pairs,
            source_tokenizer=source_tokenizer,
            target_tokenizer=target_tokenizer,
        )
        kwargs.update(overrides)
        with pytest.raises(ValueError, match=match):
            make_translation_dataset(**kwargs)
