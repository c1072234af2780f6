"""Reading users' text files with errors that point at the problem."""

import codecs
import json
import os

__all__ = ["read_json_file", "read_text_lines"]

_GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# A longer "line" is almost surely a file without line breaks (a binary
# file, or one joined by a bad conversion), not a sentence.
MAX_LINE_BYTES = 1 << 20  # 1 MiB


def read_text_lines(path):
    """The lines of a UTF-8 text file, with errors that name the bad line.

    Lines are split on `"\\n"` only (a Unicode line separator inside a
    sentence does not split it; a file with only `"\\r"` line ends, from
    old Macs, is split on those), a trailing `"\\r"` and a UTF-8
    byte-order mark are dropped, and each line is decoded on its own so
    that invalid bytes are reported with their line number. A UTF-8 BOM
    and Windows line ends (CRLF) are accepted; UTF-16 (with or without a
    BOM), NUL bytes (binary files) and lines longer than
    `MAX_LINE_BYTES` (1 MiB) are refused, with the line number.

    Args:
        path: the file to read.

    Returns:
        The list of lines (possibly empty or blank: callers decide).

    Raises:
        FileNotFoundError: if `path` does not exist.
        IsADirectoryError: if `path` is a directory.
        ValueError: for a gzip-compressed or UTF-16 file, and for bytes
            that are not UTF-8, NUL bytes or an over-long line (file, line
            and bytes).

    Example:

    >>> read_text_lines("pairs.tsv")  # doctest: +SKIP
    ['16+75\\t91', '2+3\\t5']
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"{path!r} is a directory; expected a text file."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such data file: {path!r}")
    with open(path, "rb") as file:
        data = file.read()
    if data.startswith(_GZIP_MAGIC):
        raise ValueError(
            f"{path} is gzip-compressed; decompress it first (e.g. "
            "`gunzip`): the data loaders read plain UTF-8 text."
        )
    if data.startswith(_UTF16_BOMS):
        raise ValueError(
            f"{path}, line 1: the file is UTF-16 (it starts with a UTF-16 "
            "byte-order mark); re-save it as UTF-8 (e.g. `iconv -f UTF-16 "
            "-t UTF-8`)."
        )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    # Old Mac files end lines with a lone "\r".
    newline = b"\r" if b"\r" in data and b"\n" not in data else b"\n"
    raw_lines = data.split(newline)
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
        _check_raw_line(path, number, raw)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{path}, line {number}: not valid UTF-8 (byte "
                f"{error.start + 1} of the line, {raw[error.start :][:4]!r})."
                f" Received: {raw[:60]!r}"
            ) from error
        lines.append(line[:-1] if line.endswith("\r") else line)
    return lines


def _check_raw_line(path, number, raw):
    """Raise for a NUL byte or an over-long line (`raw` is its bytes)."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ValueError(
            f"{path}, line {number}: a NUL byte (byte {nul + 1} of the "
            "line): a binary file, or "
            "UTF-16 text without a byte-order mark? The data loaders read "
            f"plain UTF-8 text. Received: {raw[:60]!r}"
        )
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(
            f"{path}, line {number}: {len(raw)} bytes, more than "
            f"{MAX_LINE_BYTES} in one line: a file without line breaks? "
            f"Received: {raw[:60]!r}..."
        )


def read_json_file(path, description="JSON"):
    """The parsed JSON of a UTF-8 file, with errors that name the line.

    A UTF-8 byte-order mark (some editors add one) is accepted.

    Args:
        path: the file to read.
        description: what the file should be, for the error messages
            (e.g. `"a CharacterTokenizer file"`). Defaults to `"JSON"`.

    Returns:
        The parsed value.

    Raises:
        FileNotFoundError: if `path` is not a file.
        ValueError: for bytes that are not UTF-8 or text that is not JSON
            (file, line and what was wrong).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    with open(path, "rb") as file:
        data = file.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{path} is not {description}: line {line} is not valid "
            f"UTF-8. Received: {data[error.start :][:4]!r}"
        ) from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not {description}: line {error.lineno}, column "
            f"{error.colno}: {error.msg}."
        ) from error
