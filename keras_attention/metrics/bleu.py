"""Corpus BLEU, computed the way sacreBLEU computes it by default.

`corpus_bleu` reproduces `sacrebleu.corpus_bleu(hypotheses, references)`
(sacreBLEU 2.x, default arguments) without depending on sacreBLEU:

- every segment is right-stripped and tokenised with the `"13a"` tokenizer
  (`tokenize_13a`: the `mteval-v13a.pl` rules WMT uses; case kept);
- n-grams of orders 1 to 4 are counted per segment; a hypothesis n-gram
  matches at most as often as it occurs in the reference that has most of
  it (clipping), and the counts are summed over the corpus;
- the reference length of a segment is that of the reference closest in
  length to the hypothesis (the shorter one on a tie); the brevity penalty
  is `exp(1 - ref_len / hyp_len)` when the corpus hypothesis is shorter;
- BLEU is `100 * BP * exp(mean(log p_n))` over the four precisions.

Smoothing only matters when some n-gram order has no match at all. The
default, `"exp"`, is sacreBLEU's default: the k-th order without a match
gets the precision `1 / (2**k * total_n)` instead of zero. Note that it is
*on* by default in sacreBLEU (and here); `smooth_method="none"` gives the
unsmoothed BLEU of Papineni et al., which is zero when any order has no
match. `"floor"` and `"add-k"` are sacreBLEU's other two options. A corpus
without any matching unigram scores 0, whatever the smoothing.
"""

import collections
import dataclasses
import math
import re

from keras_attention._checks import check_positive_int

__all__ = ["BleuScore", "corpus_bleu", "tokenize_13a"]

MAX_NGRAM_ORDER = 4
SMOOTH_METHODS = ("exp", "none", "floor", "add-k")
# sacreBLEU's default smoothing values ("floor" and "add-k" need one).
_SMOOTH_DEFAULTS = {"exp": None, "none": None, "floor": 0.1, "add-k": 1}
TOKENIZERS = ("13a", "none")
# sacreBLEU's log of a zero precision: a very negative number, not -inf.
_LOG_ZERO = -9999999999.0

# The `mteval-v13a.pl` rules, in order (Western languages).
_13A_RULES = (
    # Symbols and punctuation other than `'`, `.`, `,` and `-` become tokens.
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    # `.` and `,` become tokens unless they sit between digits.
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    # `-` becomes a token after a digit.
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
_HTML_ENTITIES = (
    ("&quot;", '"'),
    ("&amp;", "&"),
    ("&lt;", "<"),
    ("&gt;", ">"),
)


def tokenize_13a(text):
    """Tokenises one segment with sacreBLEU's default `"13a"` rules.

    `<skipped>` markers are removed, hyphenated line breaks are joined,
    four HTML entities are unescaped, then punctuation is split off (a
    decimal point or thousands comma between digits stays inside the
    number) and runs of whitespace become single spaces.

    Args:
        text: str, one segment.

    Returns:
        The tokens joined by single spaces, a str.

    Example:

    >>> tokenize_13a("Hello, world! It costs $3.50 (2-3 days).")
    'Hello , world ! It costs $ 3.50 ( 2 - 3 days ) .'
    """
    text = text.replace("<skipped>", "").replace("-\n", "")
    text = text.replace("\n", " ")
    if "&" in text:
        for entity, character in _HTML_ENTITIES:
            text = text.replace(entity, character)
    text = f" {text} "
    for pattern, replacement in _13A_RULES:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


@dataclasses.dataclass(frozen=True)
class BleuScore:
    """A corpus BLEU score and the statistics it was computed from.

    Attributes:
        score: float, BLEU in `[0, 100]`.
        precisions: tuple of 4 floats, the (smoothed) n-gram precisions in
            percent.
        brevity_penalty: float, in `[0, 1]`.
        hypothesis_length: int, the hypothesis tokens of the corpus.
        reference_length: int, the effective reference tokens.
        counts: tuple of 4 ints, the clipped n-gram matches per order.
        totals: tuple of 4 ints, the hypothesis n-grams per order.
    """

    score: float
    precisions: tuple
    brevity_penalty: float
    hypothesis_length: int
    reference_length: int
    counts: tuple
    totals: tuple

    @property
    def ratio(self):
        """`hypothesis_length / reference_length` (0 without references)."""
        if not self.reference_length:
            return 0.0
        return self.hypothesis_length / self.reference_length

    def __str__(self):
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (
            f"BLEU = {self.score:.2f} {precisions} (BP = "
            f"{self.brevity_penalty:.3f} ratio = {self.ratio:.3f} hyp_len = "
            f"{self.hypothesis_length} ref_len = {self.reference_length})"
        )


def _check_strings(values, name):
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(
                f"`{name}` must hold strings. Received: {value!r} of type "
                f"{type(value).__name__} at index {index}"
            )


def _reference_streams(references, num_hypotheses):
    """A list of reference streams, each as long as the hypotheses."""
    references = list(references)
    if references and all(isinstance(r, str) for r in references):
        references = [references]  # A single reference per segment.
    if not references:
        raise ValueError(
            "`references` must hold at least one reference stream. "
            "Received: references=[]"
        )
    streams = []
    for index, stream in enumerate(references):
        if isinstance(stream, str):
            raise ValueError(
                "`references` must be a list of strings (one reference per "
                "segment) or a list of reference streams (lists of strings)."
                f" Received: a string at index {index} among lists"
            )
        stream = list(stream)
        if len(stream) != num_hypotheses:
            raise ValueError(
                "Every reference stream must have one reference per "
                f"hypothesis ({num_hypotheses}). Received: stream {index} "
                f"with {len(stream)} references"
            )
        _check_strings(stream, "references")
        streams.append(stream)
    return streams


def _ngram_counts(tokens, max_order):
    counts = collections.Counter()
    for order in range(1, max_order + 1):
        for start in range(len(tokens) - order + 1):
            counts[tuple(tokens[start : start + order])] += 1
    return counts


def _closest_length(hypothesis_length, reference_lengths):
    """The reference length closest to the hypothesis' (shorter on ties)."""
    return min(
        reference_lengths,
        key=lambda length: (abs(length - hypothesis_length), length),
    )


def corpus_bleu(
    hypotheses,
    references,
    tokenize="13a",
    lowercase=False,
    smooth_method="exp",
    smooth_value=None,
    max_ngram_order=MAX_NGRAM_ORDER,
):
    """Corpus BLEU with sacreBLEU's defaults (see the module docstring).

    Args:
        hypotheses: a list of detokenised system outputs, one per segment.
        references: either a list of strings (one reference per segment)
            or, as in sacreBLEU, a list of reference streams, each a list
            with one reference per segment.
        tokenize: `"13a"` (sacreBLEU's default) or `"none"` (split on
            whitespace only, for pre-tokenised text). Defaults to `"13a"`.
        lowercase: bool, whether to lower-case everything first. Defaults
            to `False`.
        smooth_method: `"exp"`, `"none"`, `"floor"` or `"add-k"`. Defaults
            to `"exp"`, sacreBLEU's default.
        smooth_value: the value of `"floor"` (default `0.1`) or `"add-k"`
            (default `1`). Defaults to `None`.
        max_ngram_order: int, the longest n-gram. Defaults to `4`.

    Returns:
        A `BleuScore`; `str()` of it prints like sacreBLEU.

    Example:

    >>> round(corpus_bleu(["the cat sat on the mat"],
    ...                   ["the cat sat on the mat"]).score, 2)
    100.0
    >>> round(corpus_bleu(["the cat sat on a mat"],
    ...                   ["the cat sat on the mat"]).score, 2)
    53.73

    References:
        - [Papineni et al., 2002](https://aclanthology.org/P02-1040/),
          BLEU.
        - [Post, 2018](https://aclanthology.org/W18-6319/), sacreBLEU.
    """
    if isinstance(hypotheses, str):
        raise ValueError(
            "`hypotheses` must be a list of strings, not one string. "
            f"Received: {hypotheses!r}"
        )
    hypotheses = list(hypotheses)
    _check_strings(hypotheses, "hypotheses")
    streams = _reference_streams(references, len(hypotheses))
    if tokenize not in TOKENIZERS:
        raise ValueError(
            f"`tokenize` must be one of {TOKENIZERS}. "
            f"Received: tokenize={tokenize!r}"
        )
    if smooth_method not in SMOOTH_METHODS:
        raise ValueError(
            f"`smooth_method` must be one of {SMOOTH_METHODS}. "
            f"Received: smooth_method={smooth_method!r}"
        )
    max_ngram_order = check_positive_int("max_ngram_order", max_ngram_order)
    if smooth_value is None:
        smooth_value = _SMOOTH_DEFAULTS[smooth_method]

    def words(text):
        text = text.lower() if lowercase else text
        text = text.rstrip()
        return (tokenize_13a(text) if tokenize == "13a" else text).split()

    counts = [0] * max_ngram_order
    totals = [0] * max_ngram_order
    hypothesis_length = reference_length = 0
    for index, hypothesis in enumerate(hypotheses):
        hypothesis_words = words(hypothesis)
        reference_words = [words(stream[index]) for stream in streams]
        hypothesis_length += len(hypothesis_words)
        reference_length += _closest_length(
            len(hypothesis_words), [len(w) for w in reference_words]
        )
        # The most times each n-gram occurs in any one reference.
        most = collections.Counter()
        for reference in reference_words:
            most |= _ngram_counts(reference, max_ngram_order)
        for ngram, count in _ngram_counts(
            hypothesis_words, max_ngram_order
        ).items():
            counts[len(ngram) - 1] += min(count, most[ngram])
        for order in range(1, max_ngram_order + 1):
            totals[order - 1] += max(0, len(hypothesis_words) - order + 1)

    if hypothesis_length < reference_length:
        brevity_penalty = (
            math.exp(1 - reference_length / hypothesis_length)
            if hypothesis_length
            else 0.0
        )
    else:
        brevity_penalty = 1.0
    precisions = _precisions(counts, totals, smooth_method, smooth_value)
    if not any(counts):
        score = 0.0
    else:
        logs = [math.log(p) if p else _LOG_ZERO for p in precisions]
        score = brevity_penalty * math.exp(sum(logs) / max_ngram_order)
    return BleuScore(
        score=score,
        precisions=tuple(precisions),
        brevity_penalty=brevity_penalty,
        hypothesis_length=hypothesis_length,
        reference_length=reference_length,
        counts=tuple(counts),
        totals=tuple(totals),
    )


def _precisions(counts, totals, smooth_method, smooth_value):
    """The n-gram precisions in percent, smoothed as sacreBLEU does."""
    precisions = [0.0] * len(counts)
    if not any(counts):
        return precisions
    exp_factor = 1.0
    for index, (count, total) in enumerate(zip(counts, totals)):
        if smooth_method == "add-k" and index > 0:
            count, total = count + smooth_value, total + smooth_value
        if total == 0:
            break  # No longer n-grams at all: this and later orders are 0.
        if count:
            precisions[index] = 100.0 * count / total
        elif smooth_method == "exp":
            exp_factor *= 2
            precisions[index] = 100.0 / (exp_factor * total)
        elif smooth_method == "floor":
            precisions[index] = 100.0 * smooth_value / total
    return precisions
