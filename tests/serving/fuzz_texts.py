"""Random serving inputs: `random_texts(rng, count, max_length, words)`.

Each input is UTF-8 bytes (valid or not): words the model knows, letters
of several scripts, blanks, control and format characters, or invalid
byte sequences, from empty to ten times `max_length` characters.
"""

# Code point ranges of several scripts and of blanks.
_SCRIPTS = {
    "latin": (0x0041, 0x024F),
    "greek": (0x0391, 0x03C9),
    "cyrillic": (0x0410, 0x044F),
    "arabic": (0x0621, 0x064A),
    "devanagari": (0x0905, 0x0939),
    "cjk": (0x4E00, 0x4FFF),
    "hangul": (0xAC00, 0xAD00),
    "emoji": (0x1F600, 0x1F64F),
    "combining": (0x0300, 0x036F),
}
_BLANKS = " \t\n\r\u00a0\u2003\u3000\u200b\ufeff"
_CONTROLS = "".join(chr(c) for c in list(range(0x20)) + [0x7F, 0x85])
# Not UTF-8: a bad start byte, a lone continuation byte, an overlong "/",
# a UTF-16 surrogate, a sequence cut short.
_INVALID = [b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe6\x97"]
_KINDS = ("words", "script", "blank", "control", "mixed", "invalid")


def _characters(rng, kind, length, words):
    if kind == "words":
        text = ""
        while len(text) < length:
            text += str(rng.choice(words)) + " "
        return text[:length]
    if kind == "blank":
        return "".join(rng.choice(list(_BLANKS), length))
    if kind == "control":
        return "".join(rng.choice(list(_CONTROLS), length))
    names = list(_SCRIPTS)
    text = []
    for _ in range(length):
        low, high = _SCRIPTS[names[rng.integers(len(names))]]
        text.append(chr(int(rng.integers(low, high + 1))))
    if kind == "mixed":
        pool = list(_BLANKS + _CONTROLS) + list(words)
        for index in rng.integers(0, max(length, 1), length // 3):
            if index < len(text):
                text[index] = str(rng.choice(pool))
    return "".join(text)


def random_texts(rng, count, max_length, words):
    """`count` random inputs as bytes; see the module docstring.

    Args:
        rng: a `np.random.Generator`.
        count: int, how many.
        max_length: int, the export's limit; lengths go up to ten times it,
            most of them within it.
        words: strings the model knows (words or characters).
    """
    texts = []
    for _ in range(count):
        kind = _KINDS[rng.integers(len(_KINDS))]
        if rng.random() < 0.7:
            length = int(rng.integers(0, max_length + 1))
        else:
            length = int(rng.integers(0, 10 * max_length + 1))
        text = _characters(rng, kind, length, words).encode("utf-8")
        if kind == "invalid" or rng.random() < 0.05:
            cut = int(rng.integers(0, len(text) + 1))
            bad = _INVALID[rng.integers(len(_INVALID))]
            text = text[:cut] + bad + text[cut:]
        texts.append(text)
    return texts


def batch_sizes(rng, count, largest=256):
    """`count` batch sizes from `0` to `largest`, both ends included."""
    sizes = [0, 1, largest] + list(rng.integers(0, largest + 1, count))
    return sizes[:count]
