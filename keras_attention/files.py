"""Users' files: read with errors that name the line, written atomically.

Reading: `read_text_lines(path)` (a UTF-8 text file, one item a line) and
`read_json_file(path)` refuse what is not what they expect (gzip, UTF-16,
binary, invalid UTF-8, a line over `MAX_LINE_BYTES`) with an error naming
the file and the line, never skipping silently. Every reader of users'
files in the package (`data`, `text`) goes through them.

Writing: a file that a later run trusts is whole or absent.

A run killed while it writes a checkpoint, a vocabulary or a summary must
not leave half a file that the next run reads as if it were complete. So
every such file is written under a temporary name in its own directory
(same file system) and then renamed over the final name with
`os.replace`, which is atomic on POSIX and Windows: a reader sees the old
file or the new one, never a mixture.

- `atomic_path(path)`: a context manager yielding the temporary path to
  write (by any writer: `model.save_weights`, `json.dump`, ...); renamed
  to `path` when the block succeeds, removed when it raises.
- `atomic_write_text(path, text)`: the same for a string.
- `is_temporary(name)` and `remove_temporaries(directory)`: the temporary
  files a killed process left behind (hidden, `.tmp-` names that keep the
  final suffix, e.g. `.tmp-k2x9-epoch_003.weights.h5`), which no reader
  trusts and a new run deletes.

For the kill-and-resume tests, the environment variable
`KERAS_ATTENTION_KILL_BEFORE_RENAME` makes the process kill itself with
SIGKILL right after writing a temporary file whose final name contains its
value, before the rename.
"""

import codecs
import contextlib
import json
import os
import secrets
import signal

__all__ = [
    "KILL_BEFORE_RENAME_VARIABLE",
    "MAX_LINE_BYTES",
    "TEMPORARY_PREFIX",
    "atomic_path",
    "atomic_write_text",
    "is_temporary",
    "read_json_file",
    "read_text_lines",
    "remove_temporaries",
]

TEMPORARY_PREFIX = ".tmp-"
KILL_BEFORE_RENAME_VARIABLE = "KERAS_ATTENTION_KILL_BEFORE_RENAME"


def is_temporary(name):
    """Whether the file name `name` is one of `atomic_path`'s temporaries.

    Example:

    >>> is_temporary(".tmp-1a2b-vocabulary.txt"), is_temporary("vocab.txt")
    (True, False)
    """
    return os.path.basename(name).startswith(TEMPORARY_PREFIX)


def _temporary_name(path):
    directory, name = os.path.split(os.path.abspath(path))
    # The final name stays at the end: writers that check the suffix
    # (`.weights.h5`, `.keras`) accept the temporary name.
    token = secrets.token_hex(4)
    return os.path.join(directory, f"{TEMPORARY_PREFIX}{token}-{name}")


def _kill_if_asked(path):
    marker = os.environ.get(KILL_BEFORE_RENAME_VARIABLE)
    if marker and marker in os.path.basename(path):
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def atomic_path(path):
    """Write to a temporary path; rename it to `path` when done.

    The temporary file is in the directory of `path`. When the block
    raises, the temporary file is removed and `path` keeps its old
    contents (or stays absent).

    Args:
        path: the final file path.

    Yields:
        The temporary path to write to (it does not exist yet).

    Raises:
        IsADirectoryError: `path` is a directory.
        FileNotFoundError: the directory of `path` does not exist, or the
            block wrote nothing.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "numbers.txt")
    >>> with atomic_path(path) as temporary:
    ...     with open(temporary, "w") as file:
    ...         _ = file.write("1 2 3")
    >>> open(path).read()
    '1 2 3'
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"Is a directory: {path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"No such directory: {directory!r}")
    temporary = _temporary_name(path)
    try:
        yield temporary
        if not os.path.exists(temporary):
            raise FileNotFoundError(
                f"Nothing was written to the temporary file of {path!r}."
            )
        _kill_if_asked(path)
        os.replace(temporary, path)
    finally:
        if os.path.isfile(temporary):  # the block raised: `path` is kept
            os.remove(temporary)


def atomic_write_text(path, text, encoding="utf-8"):
    """Write `text` to `path` atomically (see `atomic_path`).

    Lines are written as they are (`newline=""`: no CRLF translation).

    Args:
        path: the file to write.
        text: str, the whole contents.
        encoding: the text encoding. Defaults to `"utf-8"`.

    Returns:
        `path`.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "summary.json")
    >>> _ = atomic_write_text(path, '{"epochs": 3}')
    >>> open(path).read()
    '{"epochs": 3}'
    """
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding=encoding, newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    return path


def remove_temporaries(directory):
    """Delete the temporary files a killed writer left in `directory`.

    Args:
        directory: a directory (a missing one is skipped).

    Returns:
        The list of removed paths.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if is_temporary(name) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


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
