"""Atomic writes: a file that a later run trusts is whole or absent.

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

import contextlib
import os
import secrets
import signal

__all__ = [
    "KILL_BEFORE_RENAME_VARIABLE",
    "TEMPORARY_PREFIX",
    "atomic_path",
    "atomic_write_text",
    "is_temporary",
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
