"""Reading users' text files with errors that point at the problem."""

import codecs
import os

__all__ = ["read_text_lines"]

_GZIP_MAGIC = b"\x1f\x8b"


def read_text_lines(path):
    """The lines of a UTF-8 text file, with errors that name the bad line.

    Lines are split on `"\\n"` only (a Unicode line separator inside a
    sentence does not split it; a file with only `"\\r"` line ends, from
    old Macs, is split on those), a trailing `"\\r"` and a UTF-8
    byte-order mark are dropped, and each line is decoded on its own so
    that invalid bytes are reported with their line number.

    Args:
        path: the file to read.

    Returns:
        The list of lines (possibly empty or blank: callers decide).

    Raises:
        FileNotFoundError: if `path` does not exist.
        IsADirectoryError: if `path` is a directory.
        ValueError: for a gzip-compressed file, and for bytes that are not
            UTF-8 (file, line and bytes).

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
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    # Old Mac files end lines with a lone "\r".
    newline = b"\r" if b"\r" in data and b"\n" not in data else b"\n"
    raw_lines = data.split(newline)
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
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
