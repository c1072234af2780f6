"""Users' files, corrupted at random: a clear error or the right result.

Every reader of a user's file (TSV and underscore parallel text, two
line-aligned files, labelled TSV, class names, language-model text, the
WordPiece vocabulary, a saved `CharacterTokenizer`'s JSON) gets a valid
file corrupted one way at a time:

- accepted, with the same result as the clean file: Windows line ends
  (CRLF) and a UTF-8 byte-order mark;
- refused with a `ValueError` naming the file and the line: latin-1 or
  UTF-16 (with or without a BOM) text, binary bytes (NUL), a line over
  `MAX_LINE_BYTES`;
- refused with a `ValueError` naming the file: an empty file;
- either read (a shorter file that is still valid) or refused with the
  file and the line: truncation at a random byte, random bytes inserted.

Nothing else may escape: no `UnicodeDecodeError`, `KeyError`, TensorFlow
error or silent wrong result. `KERAS_ATTENTION_FUZZ_EXAMPLES` raises the
number of random corruptions per reader and kind (default 4).
"""

import codecs
import json
import re

import numpy as np
import pytest

from keras_attention.data import load_documents
from keras_attention.data import load_parallel_text
from keras_attention.data.text_classification import load_class_names
from keras_attention.data.text_classification import read_labeled_tsv
from keras_attention.data.translation import load_parallel_files
from keras_attention.files import MAX_LINE_BYTES
from keras_attention.text import CharacterTokenizer
from keras_attention.text import load_vocabulary
from tests.fuzz._settings import example_count

pytestmark = pytest.mark.tf_only

WORDS = ["olá", "mundo", "obrigado", "você", "ação", "café", "naïve", "ß"]


def _sentence(rng):
    return " ".join(rng.choice(WORDS, size=rng.integers(1, 5)))


def _clean_texts(rng):
    """`{reader: (clean text, reader function)}` for one random corpus."""
    pairs = [(_sentence(rng), _sentence(rng)) for _ in range(6)]
    labels = [f"{_sentence(rng)}\t{rng.integers(0, 3)}" for _ in range(6)]
    characters = sorted(set("".join(WORDS)) - {" "})
    return {
        "tsv": ("".join(f"{s}\t{t}\n" for s, t in pairs), load_parallel_text),
        "underscore": (
            "".join(f"{s}_{t}\n" for s, t in pairs),
            lambda p: load_parallel_text(p, file_format="underscore"),
        ),
        "labeled_tsv": ("".join(line + "\n" for line in labels), _labeled),
        "class_names": (
            json.dumps(["négatif", "positif", "neutre"], ensure_ascii=False),
            load_class_names,
        ),
        "documents": (
            "".join(s + "\n" for s, _ in pairs),
            lambda p: load_documents(text_file=p),
        ),
        "vocabulary": (
            "".join(f"{t}\n" for t in ["[PAD]", "[UNK]", *WORDS, "##s"]),
            load_vocabulary,
        ),
        "character_json": (
            json.dumps(
                {"vocabulary": characters, "lowercase": True},
                ensure_ascii=False,
                indent=1,
            ),
            lambda p: CharacterTokenizer.load(p).get_config(),
        ),
        "source_file": (
            "".join(s + "\n" for s, _ in pairs),
            lambda p: load_parallel_files(p, p),
        ),
    }


def _labeled(path):
    return read_labeled_tsv(path)


def _crlf(data, rng):
    return data.replace(b"\n", b"\r\n")


def _bom(data, rng):
    return codecs.BOM_UTF8 + data


def _latin1(data, rng):
    return data.decode("utf-8").encode("latin-1", errors="replace")


def _utf16(data, rng):
    encoding = rng.choice(["utf-16", "utf-16-le", "utf-16-be"])
    return data.decode("utf-8").encode(encoding)


def _nul(data, rng):
    lines = data.split(b"\n")
    index = rng.integers(0, max(1, len(lines) - 1))
    lines[index] += b"\x00\x01\x02"
    return b"\n".join(lines)


def _huge_line(data, rng):
    lines = data.split(b"\n")
    index = rng.integers(0, max(1, len(lines) - 1))
    lines[index] += b"x" * (MAX_LINE_BYTES + 1)
    return b"\n".join(lines)


def _empty(data, rng):
    return b""


def _truncated(data, rng):
    return data[: rng.integers(1, len(data))]


def _binary(data, rng):
    at = rng.integers(0, len(data))
    noise = rng.integers(0, 256, size=rng.integers(1, 16)).astype("uint8")
    return data[:at] + noise.tobytes() + data[at:]


JSON_READERS = ("character_json", "class_names")
ACCEPTED = {"crlf": _crlf, "utf8_bom": _bom}
REFUSED = {
    "latin1": _latin1,
    "utf16": _utf16,
    "nul_bytes": _nul,
    "huge_line": _huge_line,
}
EITHER = {"truncated": _truncated, "binary_bytes": _binary}


READERS = sorted(_clean_texts(np.random.default_rng(0)))
CORRUPTED = []  # (reader, kind) of every corrupted file tried


def _read(reader, path):
    return _clean_texts_cache[reader][1](path)


_clean_texts_cache = {}


def _corrupt_and_read(tmp_path, reader, kind, corrupt, seed):
    rng = np.random.default_rng(seed)
    texts = _clean_texts(rng)
    _clean_texts_cache.update(texts)
    text, read = texts[reader]
    clean_path = tmp_path / f"clean_{seed}.txt"
    clean_path.write_bytes(text.encode("utf-8"))
    path = tmp_path / f"{reader}_{kind}_{seed}.txt"
    path.write_bytes(corrupt(text.encode("utf-8"), rng))
    CORRUPTED.append((reader, kind))
    return read, clean_path, path


def _assert_names_file_and_line(error, path, line=True):
    message = str(error)
    assert str(path) in message, message
    if line:
        assert re.search(r"\bline \d+", message), message


def _seeds():
    return range(example_count(weight=0.1))


@pytest.mark.parametrize("kind", sorted(ACCEPTED))
@pytest.mark.parametrize("reader", READERS)
def test_crlf_and_bom_are_accepted(tmp_path, reader, kind):
    for seed in _seeds():
        read, clean, corrupted = _corrupt_and_read(
            tmp_path, reader, kind, ACCEPTED[kind], seed
        )
        assert read(corrupted) == read(clean)


@pytest.mark.parametrize("kind", sorted(REFUSED))
@pytest.mark.parametrize("reader", READERS)
def test_wrong_encoding_binary_and_huge_lines_name_the_line(
    tmp_path, reader, kind
):
    for seed in _seeds():
        read, _, corrupted = _corrupt_and_read(
            tmp_path, reader, kind, REFUSED[kind], seed
        )
        with pytest.raises(ValueError) as error:
            read(corrupted)
        _assert_names_file_and_line(error.value, corrupted)


@pytest.mark.parametrize("reader", READERS)
def test_empty_file_names_the_file(tmp_path, reader):
    read, _, corrupted = _corrupt_and_read(tmp_path, reader, "empty", _empty, 0)
    with pytest.raises(ValueError) as error:
        read(corrupted)
    _assert_names_file_and_line(error.value, corrupted, line=False)


@pytest.mark.parametrize("kind", sorted(EITHER))
@pytest.mark.parametrize("reader", READERS)
def test_truncated_or_noisy_file_is_read_or_names_the_line(
    tmp_path, reader, kind
):
    for seed in _seeds():
        read, _, corrupted = _corrupt_and_read(
            tmp_path, reader, kind, EITHER[kind], seed
        )
        try:
            read(corrupted)
        except ValueError as error:
            # Valid JSON of the wrong structure (a garbled key) has no bad
            # line: the error names the file and shows what it received.
            structural = reader in JSON_READERS and "Received" in str(error)
            _assert_names_file_and_line(error, corrupted, line=not structural)
