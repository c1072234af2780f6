"""Corpus BLEU as sacreBLEU computes it, with the `sacrebleu` package.

`sacre_bleu` scores detokenized hypotheses against one reference each with
`sacrebleu.metrics.BLEU` (default arguments: case kept, the `"13a"`
tokenizer, exponential smoothing), and returns the score with sacreBLEU's
own line (`"BLEU = 27.34 60.1/33.2/20.0/12.5 (BP = ...)"`) and its
signature (`"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"`),
the string papers report next to the number so that scores compare.
`metrics.corpus_bleu` is this package's own copy of the same algorithm.
"""

import dataclasses

import sacrebleu

__all__ = ["SacreBleuScore", "sacre_bleu"]


@dataclasses.dataclass(frozen=True)
class SacreBleuScore:
    """A sacreBLEU corpus score.

    Attributes:
        score: float, BLEU in `[0, 100]`.
        details: str, sacreBLEU's line: the score, the four n-gram
            precisions, the brevity penalty and the lengths.
        signature: str, sacreBLEU's signature of the settings and version.
    """

    score: float
    details: str
    signature: str

    def __str__(self):
        return f"{self.details} ({self.signature})"


def sacre_bleu(hypotheses, references, lowercase=False, tokenize="13a"):
    """Corpus BLEU of `hypotheses` against one reference each (sacreBLEU).

    Args:
        hypotheses: list of str, the detokenized system outputs.
        references: list of str, one reference per hypothesis.
        lowercase: bool, whether to compare lower-cased text. Defaults to
            `False` (case counts, as sacreBLEU's default).
        tokenize: str, a sacreBLEU tokenizer name. Defaults to `"13a"`.

    Returns:
        A `SacreBleuScore`.

    Raises:
        ValueError: if the lists differ in length or hold a non-string.

    Example:

    >>> score = sacre_bleu(["The cat sat on a mat."],
    ...                    ["The cat sat on the mat."])
    >>> round(score.score, 2)
    48.89
    >>> score.signature.split("|")[:4]
    ['nrefs:1', 'case:mixed', 'eff:no', 'tok:13a']
    """
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(
            "`hypotheses` and `references` must have the same length. "
            f"Received: {len(hypotheses)} hypotheses and {len(references)} "
            "references"
        )
    for name, texts in (("hypotheses", hypotheses), ("references", references)):
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(
                    f"`{name}` must hold strings. Received: {text!r} at "
                    f"index {index}"
                )
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase, tokenize=tokenize)
    result = bleu.corpus_score(hypotheses, [references])
    return SacreBleuScore(
        float(result.score), str(result), str(bleu.get_signature())
    )
