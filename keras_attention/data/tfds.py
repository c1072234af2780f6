"""TensorFlow Datasets: builders, keys, splits and the hold-out policy.

Every TFDS loader of the package goes through this module:

- `tfds_builder` looks a builder up by name with clear errors;
- `supervised_pair` and `check_feature` read and check its keys;
- `split_names`, `missing_split` and `check_split` check split specs
  (`"train+validation[:10%]"`) against the splits a dataset has;
- `choose_held_out_split` and `hold_out` are the hold-out policy: a loader's
  default held-out split (`"test"`, `"validation"`) that a dataset lacks
  is replaced by `HELD_OUT_FRACTION` of the examples that train (at least
  one, leaving at least one to train), taken from the training split; a
  held-out split that was named is never replaced.
"""

import logging

import tensorflow_datasets as tfds

__all__ = [
    "HELD_OUT_FRACTION",
    "HOLD_OUT_POSITIONS",
    "check_feature",
    "check_split",
    "count_examples",
    "choose_held_out_split",
    "hold_out",
    "missing_split",
    "split_names",
    "supervised_pair",
    "tfds_builder",
    "tfds_split_names",
]

# The default part of the training examples held out when a dataset has no
# held-out split (the loaders and recipes may name another).
HELD_OUT_FRACTION = 0.1
# Where the held-out examples are taken from the training split.
HOLD_OUT_POSITIONS = ("start", "end")

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


def check_split(name, builder, split, argument="split"):
    """Raise if `split` names a split that `builder` is known not to have.

    Args:
        name: the dataset's name, for messages.
        builder: its `tfds.core.DatasetBuilder`.
        split: a TFDS split spec, sliced or joined.
        argument: the argument that named `split`. Defaults to `"split"`.
    """
    missing = missing_split(builder, split)
    if missing is not None:
        raise ValueError(
            f"{name!r} has no split {missing!r}; its splits are "
            f"{sorted(builder.info.splits.keys())}. "
            f"Received: {argument}={split!r}"
        )


def choose_held_out_split(name, builder, split, default, argument="split"):
    """The split to read held-out examples from, or `None` to hold out.

    Call it once the dataset is prepared (its split names are known then).

    Args:
        name: the dataset's name, for messages.
        builder: its `tfds.core.DatasetBuilder`.
        split: the held-out split spec the caller got.
        default: the caller's default held-out split: only that one, when
            the dataset lacks it, falls back to holding out part of the
            training split.
        argument: the argument that named `split`. Defaults to `"split"`.

    Returns:
        `split`, or `None` when `split` is `default` and the dataset does
        not have it.

    Raises:
        ValueError: for any other split the dataset does not have.

    Example:

    >>> builder = tfds_builder("date_conversion")
    >>> choose_held_out_split("date_conversion", builder, "test", "test")
    'test'
    """
    if split == default and missing_split(builder, split) is not None:
        return None
    check_split(name, builder, split, argument)
    return split


def hold_out(
    examples,
    fraction=HELD_OUT_FRACTION,
    name="the dataset",
    split="train",
    num_train=None,
    position="end",
):
    """Splits held-out examples off a training split.

    The policy's second half: see `choose_held_out_split` for when.

    Args:
        examples: the training split's `tf.data.Dataset`.
        fraction: float in `(0, 1)`, the part of the examples that train
            that is held out (at least one). Defaults to `0.1`.
        name: the dataset's name, for messages. Defaults to
            `"the dataset"`.
        split: the training split's spec, for messages. Defaults to
            `"train"`.
        num_train: optional int, how many of the remaining examples will
            train (the rest are not used); the fraction is of those.
            Defaults to `None` (all of them).
        position: `"end"` (the last examples, whatever the split's slicing
            or `+` parts) or `"start"` (the first ones, read without a pass
            over the rest). Defaults to `"end"`.

    Returns:
        `(train, held_out, num_held_out)`.

    Raises:
        ValueError: for a bad `fraction` or `position`, or a split too
            small to leave an example to train.

    Example:

    >>> examples = tf.data.Dataset.range(10)
    >>> train, held_out, count = hold_out(examples, 0.2)
    >>> [int(i) for i in held_out], count
    ([8, 9], 2)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"The held-out fraction must be in (0, 1). Received: {fraction}"
        )
    if position not in HOLD_OUT_POSITIONS:
        raise ValueError(
            f"`position` must be one of {HOLD_OUT_POSITIONS}. "
            f"Received: position={position!r}"
        )
    size = count_examples(examples)
    used = size if num_train is None else min(size, num_train)
    held = max(1, round(used * fraction))
    if size - held < 1:
        raise ValueError(
            f"{split!r} of {name!r} has too few examples to hold some out "
            f"(there is no held-out split). Received: {size} examples"
        )
    if position == "start":
        return examples.skip(held), examples.take(held), held
    keep = size - held
    return examples.take(keep), examples.skip(keep), held


def tfds_split_names(name, data_dir=None):
    """The split names of a TFDS dataset (`[]` until it is prepared).

    Args:
        name: the TFDS name (with its config).
        data_dir: the TFDS data directory. Defaults to `None`.
    """
    return sorted(tfds.builder(name, data_dir=data_dir).info.splits.keys())


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
