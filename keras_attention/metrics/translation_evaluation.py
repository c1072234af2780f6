"""Held-out translation quality: translate, normalise the references, BLEU.

`evaluate_translations` translates the sources of held-out pairs with any
translation function, optionally brings the references into the form the
system writes (a SentencePiece detokenizer writes natural cased text, so
references stay as they are; a WordPiece detokenizer gives lower-cased,
accent-free text with spaces around punctuation, so references are
normalised the same way) and scores the corpus with sacreBLEU
(`sacre_bleu`, the `sacrebleu` package). It returns a
`TranslationEvaluation`, which keeps the sentences for printing a few
examples or writing a summary.
"""

import dataclasses

from keras_attention.metrics.sacrebleu_score import SacreBleuScore
from keras_attention.metrics.sacrebleu_score import sacre_bleu

__all__ = ["TranslationEvaluation", "evaluate_translations"]


@dataclasses.dataclass(frozen=True)
class TranslationEvaluation:
    """Held-out translations and their corpus BLEU.

    Attributes:
        sources: list of str, the held-out source sentences.
        references: list of str, their reference translations, normalised
            as the hypotheses are.
        hypotheses: list of str, the translations of `sources`.
        bleu: the `SacreBleuScore` of `hypotheses` against `references`.
    """

    sources: list
    references: list
    hypotheses: list
    bleu: SacreBleuScore

    def format_examples(self, count):
        """The first `count` examples: source, reference and translation.

        Args:
            count: int, how many examples.

        Returns:
            A str of three indented lines per example.
        """
        examples = zip(self.sources, self.references, self.hypotheses)
        return "\n".join(
            f"  source:     {source}\n"
            f"  reference:  {reference}\n"
            f"  translated: {hypothesis}"
            for source, reference, hypothesis in list(examples)[:count]
        )

    def summary(self):
        """`{"bleu", "bleu_details", "bleu_signature", "num_held_out"}`.

        JSON-serialisable: the score, sacreBLEU's line, its signature and
        the number of held-out pairs.
        """
        return {
            "bleu": self.bleu.score,
            "bleu_details": self.bleu.details,
            "bleu_signature": self.bleu.signature,
            "num_held_out": len(self.sources),
        }


def evaluate_translations(translate, pairs, normalize=None):
    """Translates the sources of `pairs` and scores them with sacreBLEU.

    Args:
        translate: a function from a list of source strings to the list of
            their translations, e.g. `serving.Translator.translate`.
        pairs: a non-empty list of `(source, reference)` strings.
        normalize: optional function from the list of references to the
            list of references as the system would write them, e.g.
            `data.reference_normalizer(target_tokenizer)` (`None` for
            SentencePiece). Defaults to `None` (the references as they
            are: cased, detokenized text).

    Returns:
        A `TranslationEvaluation`.

    Raises:
        ValueError: if `pairs` is empty, or `translate` or `normalize`
            returns a list of another length.

    Example:

    >>> pairs = [("o gato sentou no tapete", "The cat sat on the mat")]
    >>> evaluation = evaluate_translations(
    ...     lambda sources: ["the cat sat on a mat"],
    ...     pairs,
    ...     normalize=lambda texts: [text.lower() for text in texts],
    ... )
    >>> round(evaluation.bleu.score, 2)
    53.73
    >>> print(evaluation.format_examples(1))
      source:     o gato sentou no tapete
      reference:  the cat sat on the mat
      translated: the cat sat on a mat
    """
    if not pairs:
        raise ValueError(f"`pairs` must not be empty. Received: {pairs!r}")
    sources = [source for source, _ in pairs]
    references = [reference for _, reference in pairs]
    if normalize is not None:
        references = _same_length(normalize(references), pairs, "normalize")
    hypotheses = _same_length(translate(sources), pairs, "translate")
    return TranslationEvaluation(
        sources, references, hypotheses, sacre_bleu(hypotheses, references)
    )


def _same_length(outputs, pairs, name):
    """`outputs` as a list, checked to hold one string per pair."""
    outputs = list(outputs)
    if len(outputs) != len(pairs):
        raise ValueError(
            f"`{name}` must return one string per pair. Received: "
            f"{len(outputs)} strings for {len(pairs)} pairs"
        )
    return outputs
