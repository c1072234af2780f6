"""TensorFlow Datasets helpers shared by the data loaders.

`tfds_builder` looks a builder up by name with clear errors; the others
check a dataset's keys and splits and count a dataset's examples.
"""

import logging

import tensorflow_datasets as tfds

__all__ = [
    "check_feature",
    "count_examples",
    "missing_split",
    "split_names",
    "supervised_pair",
    "tfds_builder",
]

_logger = logging.getLogger(__name__)


def tfds_builder(name, data_dir=None, **builder_kwargs):
    """`tfds.builder(name, ...)`, raising `ValueError` for an unknown name.

    A dataset with several configs named without one (`"wmt14_translate"`)
    gets TFDS's first config, which is logged with the others.

    Args:
        name: a TFDS dataset name, optionally with a config and a version
            (`"ted_hrlr_translate/pt_to_en"`, `"imdb_reviews:1.0.0"`).
        data_dir: optional TFDS data directory. Defaults to `None`
            (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        **builder_kwargs: passed on to `tfds.builder` (e.g. `config`).

    Returns:
        The `tfds.core.DatasetBuilder`.

    Raises:
        ValueError: if no dataset of that name is registered (with TFDS's
            suggestion of a close name), or it has no such config (the
            message lists them) or version.

    Example:

    >>> tfds_builder("date_conversion").name
    'date_conversion'
    """
    try:
        builder = tfds.builder(name, data_dir=data_dir, **builder_kwargs)
    except tfds.core.registered.DatasetNotFoundError as error:
        lines = str(error).splitlines()
        hint = [line for line in lines if line.startswith("Did you mean")]
        raise ValueError(
            f"Unknown TFDS dataset. Received: name={name!r} (use local files "
            f"for offline data). {' '.join(lines[:1] + hint)}"
        ) from error
    except (ValueError, AssertionError) as error:
        # A wrong config or version; TFDS's own message may list nothing.
        raise ValueError(
            f"TFDS dataset {name!r} cannot be built: "
            f"{_first_line(error)} Configs: {_configs(name) or 'none'}. "
            f"Received: name={name!r}"
        ) from error
    configs = _configs(name)
    named = "/" in name or "config" in builder_kwargs
    if not named and len(configs) > 1 and configs[0] != "default":
        _logger.warning(
            "%r has several configs and none was named: TFDS uses the first, "
            "%r. Name one as '%s/<config>' among %s.",
            name,
            builder.builder_config.name,
            name.split(":")[0],
            configs,
        )
    return builder


def check_feature(name, features, argument, key, kind, description):
    """Raise unless `features[key]` exists and is a `kind` feature.

    Args:
        name: the dataset's name, for messages.
        features: the dataset's `FeaturesDict`.
        argument: the argument that named `key` (e.g. `"text_key"`).
        key: the feature name.
        kind: the expected `tfds.features` class.
        description: what the feature must be (`"a text"`).
    """
    summary = ", ".join(
        f"{feature_name!r} ({type(feature).__name__})"
        for feature_name, feature in sorted(features.items())
    )
    if key not in features:
        raise ValueError(
            f"`{argument}` is not a feature of {name!r}, whose features "
            f"are: {summary}. Received: {argument}={key!r}"
        )
    if not isinstance(features[key], kind):
        raise ValueError(
            f"`{argument}` must name {description} feature of {name!r} "
            f"(features: {summary}). Received: {argument}={key!r}, a "
            f"{type(features[key]).__name__}"
        )


def supervised_pair(builder):
    """The builder's two supervised keys as a tuple of str, else `None`."""
    keys = builder.info.supervised_keys
    if (
        isinstance(keys, (tuple, list))
        and len(keys) == 2
        and all(isinstance(key, str) for key in keys)
    ):
        return tuple(keys)
    return None


def missing_split(builder, split):
    """The first split named in `split` that `builder` lacks, else `None`.

    `None` too when the split names are not known (a dataset not prepared
    yet, or TFDS's mock data, which serves any split).
    """
    known = set(builder.info.splits.keys())
    if not known:
        return None
    for part in split_names(split):
        if part not in known:
            return part
    return None


def count_examples(dataset):
    """The number of elements of a `tf.data.Dataset`.

    Its cardinality when known (as for a TFDS split), else counted with one
    pass over it.
    """
    size = int(dataset.cardinality())
    if size < 0:
        size = int(dataset.reduce(0, lambda count, _: count + 1))
    return size


def split_names(spec):
    """The split names in a TFDS split spec.

    Example:

    >>> split_names("train+validation[:10%]")
    ['train', 'validation']
    """
    return [part.split("[")[0].strip() for part in spec.split("+")]


def _first_line(error):
    """TFDS's message, less its 'Failed to construct ...' preamble."""
    message = str(error).strip().splitlines()[0]
    message = message.rsplit('}": ', 1)[-1]
    # "... Here are 10 BuilderConfigs whose name closely match: " (then
    # nothing): the configs are listed by the caller.
    return message.split(" Here are ")[0]


def _configs(name):
    """The config names of the dataset `name` ([] if it has none)."""
    try:
        builder_cls = tfds.builder_cls(name.split("/")[0].split(":")[0])
    except Exception:  # unknown name: the caller reports it
        return []
    return [config.name for config in builder_cls.BUILDER_CONFIGS or []]
