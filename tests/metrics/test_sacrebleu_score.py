"""`sacre_bleu` is wired to the `sacrebleu` package (not a copy of it), and
this package's own `corpus_bleu` agrees with it on a handful of sentences."""

import pytest
import sacrebleu

from keras_attention.metrics import corpus_bleu
from keras_attention.metrics import sacre_bleu

HYPOTHESES = [
    "A man in an orange hat, holding something.",
    "Two dogs run in the park!",
    "The 3.5 km race starts at 9:30.",
    'she said "hello" to Bob',
]
REFERENCES = [
    "A man in an orange hat is holding something.",
    "Two dogs are running in the park!",
    "The 3.5 km race starts at 9:30.",
    'She said "Hello" to Bob.',
]


def test_score_details_and_signature_are_sacrebleu_s():
    score = sacre_bleu(HYPOTHESES, REFERENCES)
    expected = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    assert score.score == pytest.approx(expected.score)
    assert score.details == str(expected)
    assert score.signature == (
        f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:"
        f"{sacrebleu.__version__}"
    )
    assert str(score) == f"{expected} ({score.signature})"


def test_case_counts_unless_lowercase():
    hypotheses, references = (
        ["she said hello to bob"],
        ["She said Hello to Bob"],
    )
    cased = sacre_bleu(hypotheses, references)
    lowered = sacre_bleu(hypotheses, references, lowercase=True)
    assert lowered.score == pytest.approx(100.0)
    assert cased.score < lowered.score
    assert "case:lc" in lowered.signature


def test_corpus_bleu_agrees_with_sacrebleu():
    ours = corpus_bleu(HYPOTHESES, REFERENCES)
    assert ours.score == pytest.approx(
        sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score, abs=1e-9
    )


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="same length. Received: 1"):
        sacre_bleu(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="`references` must hold strings"):
        sacre_bleu(["a"], [None])
