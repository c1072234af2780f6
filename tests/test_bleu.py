import math

import pytest

from keras_attention.metrics.bleu import corpus_bleu
from keras_attention.metrics.bleu import tokenize_13a


def _bleu(precisions, brevity_penalty=1.0):
    """The BLEU formula, written out: 100 * BP * geometric mean."""
    logs = [math.log(p) for p in precisions]
    return 100.0 * brevity_penalty * math.exp(sum(logs) / len(logs))


def test_sacrebleu_readme_example():
    # The example of sacreBLEU's README, with its published output.
    references = [
        [
            "The dog bit the man.",
            "It was not unexpected.",
            "The man bit him first.",
        ],
        [
            "The dog had bit the man.",
            "No one was surprised.",
            "The man had bitten the dog.",
        ],
    ]
    hypotheses = [
        "The dog bit the man.",
        "It wasn't surprising.",
        "The man had just bitten him.",
    ]
    score = corpus_bleu(hypotheses, references)
    assert str(score) == (
        "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 "
        "hyp_len = 17 ref_len = 18)"
    )
    assert score.counts == (14, 7, 5, 3)
    assert score.totals == (17, 14, 11, 8)


@pytest.mark.parametrize(
    "hypothesis, reference, expected",
    [
        # sacreBLEU's `raw_corpus_bleu` test cases (floor 0.01, no 13a).
        ("this is a test", "this is a test", 1.0),
        ("this is a fest", "this is a test", 0.223606797749979),
    ],
)
def test_sacrebleu_raw_cases(hypothesis, reference, expected):
    score = corpus_bleu(
        [hypothesis],
        [reference],
        tokenize="none",
        smooth_method="floor",
        smooth_value=0.01,
    )
    assert score.score / 100 == pytest.approx(expected, abs=1e-12)


def test_hand_computed_without_smoothing():
    # 1-grams 5/6, 2-grams 3/5, 3-grams 2/4, 4-grams 1/3; same length.
    score = corpus_bleu(["the cat sat on a mat"], ["the cat sat on the mat"])
    expected = _bleu([5 / 6, 3 / 5, 2 / 4, 1 / 3])
    assert score.score == pytest.approx(expected, rel=1e-12)
    assert score.brevity_penalty == 1.0


@pytest.mark.parametrize(
    "smooth_method, fourth_precision",
    [
        ("exp", 1 / (2 * 2)),  # first order without a match: 1 / (2 * total)
        ("floor", 0.1 / 2),  # sacreBLEU's default floor value, 0.1
        ("none", 0.0),
    ],
)
def test_smoothing_of_an_order_without_matches(smooth_method, fourth_precision):
    # Hypothesis "a b c d e" against "a b c x e": 1-grams 4/5, 2-grams 2/4,
    # 3-grams 1/3, 4-grams 0/2.
    score = corpus_bleu(
        ["a b c d e"], ["a b c x e"], smooth_method=smooth_method
    )
    assert score.counts == (4, 2, 1, 0)
    assert score.precisions[3] == pytest.approx(100 * fourth_precision)
    if fourth_precision:
        expected = _bleu([4 / 5, 2 / 4, 1 / 3, fourth_precision])
        assert score.score == pytest.approx(expected, rel=1e-12)
    else:
        assert score.score == pytest.approx(0.0, abs=1e-12)


def test_add_k_smoothing():
    score = corpus_bleu(["a b c d e"], ["a b c x e"], smooth_method="add-k")
    # k = 1 is added to the matches and totals of orders 2 to 4.
    expected = _bleu([4 / 5, 3 / 5, 2 / 4, 1 / 3])
    assert score.score == pytest.approx(expected, rel=1e-12)


def test_brevity_penalty_uses_the_closest_reference():
    # Hypothesis of 4 words; references of 6 and 9 words: 6 is closest.
    hypothesis = "the cat sat down"
    references = [["the cat sat down on mats"], ["a b c d e f g h i"]]
    score = corpus_bleu([hypothesis], references)
    assert (score.hypothesis_length, score.reference_length) == (4, 6)
    brevity_penalty = math.exp(1 - 6 / 4)
    assert score.brevity_penalty == pytest.approx(brevity_penalty)
    assert score.score == pytest.approx(100 * brevity_penalty)


def test_closest_reference_length_tie_takes_the_shorter():
    # 5 words; references of 4 and 6 words are equally close: 4 is used.
    score = corpus_bleu(["a b c d e"], [["a b c d"], ["a b c d e f"]])
    assert score.reference_length == 4
    assert score.brevity_penalty == 1.0


def test_counts_are_clipped_by_the_references():
    score = corpus_bleu(
        ["the the the the"],
        [["the cat"], ["the the dog"]],
        smooth_method="none",
    )
    # "the" occurs at most twice in one reference: 2 of 4 unigrams match.
    assert score.counts[0] == 2
    assert score.counts[1] == 1  # "the the"
    assert score.totals == (4, 3, 2, 1)


def test_statistics_are_summed_over_the_corpus():
    # Corpus BLEU is not the mean of sentence BLEUs.
    hypotheses = ["a b c d", "e f g h i j"]
    references = ["a b c d", "e f x h i j"]
    score = corpus_bleu(hypotheses, references)
    # Sentence 1 matches everything; sentence 2 ("g" -> "x") has 1-grams
    # 5/6, 2-grams 3/5 (ef, hi, ij), 3-grams 1/4 (hij), 4-grams 0/3.
    assert score.counts == (4 + 5, 3 + 3, 2 + 1, 1 + 0)
    assert score.totals == (4 + 6, 3 + 5, 2 + 4, 1 + 3)
    expected = _bleu([9 / 10, 6 / 8, 3 / 6, 1 / 4])
    assert score.score == pytest.approx(expected, rel=1e-12)


def test_lowercase_option():
    hypotheses, references = ["The Cat sat on a Mat"], ["the cat sat on a mat"]
    assert corpus_bleu(hypotheses, references).score < 100
    assert corpus_bleu(
        hypotheses, references, lowercase=True
    ).score == pytest.approx(100)


def test_sentences_shorter_than_four_words_score_zero():
    # As in sacreBLEU: with no 4-gram at all the precision is 0 and the
    # corpus scores 0 (no smoothing applies to a zero total).
    score = corpus_bleu(["the cat"], ["the cat"])
    assert score.totals == (2, 1, 0, 0)
    assert score.score == 0.0


def test_no_match_and_empty_hypotheses_score_zero():
    assert corpus_bleu(["x y z"], ["a b c"]).score == 0.0
    score = corpus_bleu([""], ["a b c"])
    assert score.score == 0.0 and score.brevity_penalty == 0.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, world!", "Hello , world !"),
        (
            "It costs $3.50 or 1,000 (2-3 days).",
            "It costs $ 3.50 or 1,000 ( 2 - 3 days ) .",
        ),
        ("don't stop well-known", "don't stop well-known"),
        ("a &amp; b &lt;c&gt; &quot;d&quot;", 'a & b < c > " d "'),
        ("  many   spaces\there  ", "many spaces here"),
        ("end.", "end ."),
        ("<skipped>a line", "a line"),
    ],
)
def test_tokenize_13a(text, expected):
    assert tokenize_13a(text) == expected


def test_punctuation_is_scored_as_tokens():
    # With 13a, "mat." is "mat ." : the full stop is a separate token.
    score = corpus_bleu(
        ["the cat sat on the mat."], ["the cat sat on the mat ."]
    )
    assert score.score == pytest.approx(100.0)
    assert score.hypothesis_length == 7
    raw = corpus_bleu(
        ["the cat sat on the mat."],
        ["the cat sat on the mat ."],
        tokenize="none",
    )
    assert raw.score < 100


@pytest.mark.parametrize(
    "hypotheses, references, match",
    [
        (["a", "b"], ["a"], "one reference per hypothesis"),
        ("a b", ["a b"], "not one string"),
        (["a"], [], "at least one reference stream"),
        ([1], ["a"], "must hold strings"),
        (["a"], [["a"], "a"], "a string at index 1"),
    ],
)
def test_bad_inputs(hypotheses, references, match):
    with pytest.raises(ValueError, match=match):
        corpus_bleu(hypotheses, references)


def test_bad_options():
    with pytest.raises(ValueError, match="smooth_method"):
        corpus_bleu(["a"], ["a"], smooth_method="linear")
    with pytest.raises(ValueError, match="tokenize"):
        corpus_bleu(["a"], ["a"], tokenize="intl")
    with pytest.raises(ValueError, match="max_ngram_order"):
        corpus_bleu(["a"], ["a"], max_ngram_order=0)
