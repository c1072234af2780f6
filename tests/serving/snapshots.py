"""What an export must leave as it found it: `state_of(*objects)`.

For each object: its attribute names (`__dict__` keys, so an attribute set
on a `tf.Module` shows), and where it has them its `get_config()`, its dtype
policy and its weights; for an object without a config (a plain
`tf.Module` such as a `Translator`) also which object each attribute holds,
so a replaced attribute shows. Compare the state before and after an export.
"""

import numpy as np


def _weights(obj):
    weights = getattr(obj, "weights", None)
    if weights is None:
        return None
    return [(w.path, np.asarray(w).tolist()) for w in weights]


def state_of(*objects):
    states = []
    for obj in objects:
        policy = getattr(obj, "dtype_policy", None)
        config = obj.get_config() if hasattr(obj, "get_config") else None
        held = None
        if config is None:
            held = {name: id(value) for name, value in vars(obj).items()}
        states.append(
            {
                "attributes": sorted(vars(obj)),
                "held": held,
                "config": config,
                "dtype_policy": getattr(policy, "name", None),
                "weights": _weights(obj),
            }
        )
    return states
