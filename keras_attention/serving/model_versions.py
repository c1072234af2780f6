"""TF Serving's layout: a model base directory of integer versions.

Every export writes `<base>/<version>/saved_model.pb` (with its
`variables/`, `assets/` and `assets.extra/`), the layout that
`tensorflow_model_server --model_base_path=<base>` watches: it serves the
highest version and loads a new one as it appears. A version is written
under a hidden name first (`<base>/.<version>.partial`, which the server
ignores) and renamed when complete, so the server never loads half of one.

`saved_model_path` finds the SavedModel of a base directory (its highest
version) or of a version directory, and `load_saved_model` loads it.
"""

import os
import shutil

import tensorflow as tf

__all__ = [
    "load_saved_model",
    "next_version",
    "saved_model_path",
    "write_version",
]

_SAVED_MODEL_FILE = "saved_model.pb"


def _versions(base_path):
    """The integer version numbers under `base_path` (maybe none)."""
    if not os.path.isdir(base_path):
        return []
    return [int(name) for name in os.listdir(base_path) if name.isdigit()]


def next_version(base_path):
    """One more than the highest version under `base_path`, or `1`.

    Example:

    >>> next_version("/tmp/no_such_model")
    1
    """
    return max(_versions(os.fspath(base_path)), default=0) + 1


def _check_version(version):
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(
            f"`version` must be None or a positive int. Received: "
            f"version={version!r}"
        )
    if version < 1:
        raise ValueError(
            f"`version` must be positive. Received: version={version}"
        )


def write_version(base_path, write, version=None):
    """Writes one version of a model base directory, all or nothing.

    Args:
        base_path: the model base directory (created if missing).
        write: a function of a directory that writes the SavedModel there.
        version: optional positive int; a version that exists already is
            an error. Defaults to `None` (`next_version(base_path)`).

    Returns:
        The version directory, `<base_path>/<version>`, as a str.

    Example:

    >>> write_version("/tmp/dates", lambda d: tf.saved_model.save(
    ...     module, d))  # doctest: +SKIP
    '/tmp/dates/1'
    """
    base_path = os.fspath(base_path)
    if version is None:
        version = next_version(base_path)
    _check_version(version)
    final = os.path.join(base_path, str(version))
    if os.path.exists(final):
        raise ValueError(
            f"Version {version} of {base_path!r} exists already: pass "
            f"another `version`, or none for the next one. Received: "
            f"version={version}"
        )
    staging = os.path.join(base_path, f".{version}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(base_path, exist_ok=True)
    try:
        write(staging)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def saved_model_path(path):
    """The SavedModel directory of a version or of a model base directory.

    Args:
        path: a directory holding `saved_model.pb`, or a model base
            directory (its highest version holding one is taken).

    Returns:
        The SavedModel directory, a str.

    Raises:
        FileNotFoundError: if `path` holds no SavedModel in either layout.

    Example:

    >>> saved_model_path("/tmp/dates")  # doctest: +SKIP
    '/tmp/dates/3'
    """
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, _SAVED_MODEL_FILE)):
        return path
    for version in sorted(_versions(path), reverse=True):
        candidate = os.path.join(path, str(version))
        if os.path.isfile(os.path.join(candidate, _SAVED_MODEL_FILE)):
            return candidate
    raise FileNotFoundError(
        f"No SavedModel in {path!r}: expected {_SAVED_MODEL_FILE} there or "
        "in an integer version subdirectory (<base>/<version>/)."
    )


def load_saved_model(path):
    """`tf.saved_model.load` of `saved_model_path(path)`.

    Models with WordPiece tokenizers need `import tensorflow_text` first
    (it registers their ops); this function imports it when installed.

    Example:

    >>> serving = load_saved_model("/tmp/dates").signatures[
    ...     "serving_default"]  # doctest: +SKIP
    """
    try:
        import tensorflow_text  # noqa: F401, registers its ops.
    except ImportError:
        pass
    return tf.saved_model.load(saved_model_path(path))
