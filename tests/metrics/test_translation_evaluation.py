import json

import pytest

from keras_attention.data import normalized_references
from keras_attention.metrics import evaluate_translations

PAIRS = [
    ("o gato sentou no tapete", "The cat sat on the mat."),
    ("olá, mundo", "Olá, Mundo!"),
]


def test_translates_every_source_once_in_order():
    calls = []

    def translate(sources):
        calls.append(list(sources))
        return [reference for _, reference in PAIRS]

    evaluation = evaluate_translations(translate, PAIRS)
    assert calls == [[source for source, _ in PAIRS]]
    assert evaluation.sources == calls[0]
    assert evaluation.hypotheses == [reference for _, reference in PAIRS]
    assert evaluation.bleu.score == pytest.approx(100.0)


def test_score_matches_a_hand_checked_value():
    # One substitution in six words: 53.73, as sacreBLEU gives.
    evaluation = evaluate_translations(
        lambda sources: ["the cat sat on a mat"],
        [("o gato sentou num tapete", "the cat sat on the mat")],
    )
    assert evaluation.bleu.score == pytest.approx(53.73, abs=0.01)


def test_references_are_normalised_as_the_tokenizer_writes():
    def translate(sources):
        return ["the cat sat on the mat .", "ola , mundo !"]

    raw = evaluate_translations(translate, PAIRS)
    evaluation = evaluate_translations(
        translate, PAIRS, normalize=normalized_references
    )
    assert evaluation.references == [
        "the cat sat on the mat .",
        "ola , mundo !",
    ]
    assert evaluation.bleu.score == pytest.approx(100.0)
    # Without normalising, case and accents differ.
    assert raw.references == [reference for _, reference in PAIRS]
    assert raw.bleu.score < 70.0


def test_examples_and_summary():
    evaluation = evaluate_translations(
        lambda sources: ["a cat sat", "hello"], PAIRS
    )
    first = evaluation.format_examples(1).splitlines()
    assert first == [
        "  source:     o gato sentou no tapete",
        "  reference:  The cat sat on the mat.",
        "  translated: a cat sat",
    ]
    assert len(evaluation.format_examples(10).splitlines()) == 6
    assert evaluation.format_examples(0) == ""
    summary = evaluation.summary()
    assert summary == json.loads(json.dumps(summary))
    assert summary["num_held_out"] == 2
    assert summary["bleu"] == evaluation.bleu.score
    assert summary["bleu_details"].startswith("BLEU = ")
    assert summary["bleu_signature"].startswith("nrefs:1|case:mixed|")


@pytest.mark.parametrize(
    "translate, normalize, pairs, message",
    [
        (lambda s: [], None, [], "must not be empty"),
        (lambda s: ["one"], None, PAIRS, "`translate` must return one"),
        (lambda s: s, lambda r: r[:1], PAIRS, "`normalize` must return one"),
    ],
)
def test_errors(translate, normalize, pairs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_translations(translate, pairs, normalize=normalize)
    with pytest.raises(ValueError, match="Received"):
        evaluate_translations(translate, pairs, normalize=normalize)
