"""Look up a TensorFlow Datasets builder by name, with a clear error."""

import tensorflow_datasets as tfds

__all__ = ["tfds_builder"]


def tfds_builder(name, data_dir=None, **builder_kwargs):
    """`tfds.builder(name, ...)`, raising `ValueError` for an unknown name.

    Args:
        name: a TFDS dataset name, optionally with a config
            (`"ted_hrlr_translate/pt_to_en"`).
        data_dir: optional TFDS data directory. Defaults to `None`
            (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        **builder_kwargs: passed on to `tfds.builder` (e.g. `config`).

    Returns:
        The `tfds.core.DatasetBuilder`.

    Raises:
        ValueError: if no dataset of that name is registered; the message
            names it and suggests local files for offline data.

    Example:

    >>> tfds_builder("date_conversion").name
    'date_conversion'
    """
    try:
        return tfds.builder(name, data_dir=data_dir, **builder_kwargs)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"Unknown TFDS dataset. Received: name={name!r} (use local files "
            f"for offline data). {str(error).splitlines()[0]}"
        ) from error
