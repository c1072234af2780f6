"""`import keras_attention` leaves the environment alone and loads lazily."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    before = dict(os.environ)
    import keras_attention
    after_import = {
        "environ_changed": sorted(
            key for key in set(before) | set(os.environ)
            if before.get(key) != os.environ.get(key)
        ),
        "tfds": "tensorflow_datasets" in sys.modules,
        "tf_text": "tensorflow_text" in sys.modules,
        "data": "keras_attention.data" in sys.modules,
        "text": "keras_attention.text" in sys.modules,
        "export": "keras_attention.export" in sys.modules,
    }
    layer = keras_attention.MultiHeadSelfAttention(num_heads=2, key_dim=4)
    keras_attention.text.WordPieceTokenizer  # first use loads the module
    after_use = {
        "text": "keras_attention.text" in sys.modules,
        "tf_text": "tensorflow_text" in sys.modules,
    }
    print(json.dumps({"import": after_import, "use": after_use}))
    """
)


def test_importing_the_package_has_no_side_effects_and_loads_text_lazily():
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["import"] == {
        "environ_changed": [],
        "tfds": False,
        "tf_text": False,
        "data": False,
        "text": False,
        "export": False,
    }
    assert result["use"] == {"text": True, "tf_text": True}
