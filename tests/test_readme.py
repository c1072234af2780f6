"""The README's Python examples run as written (those needing no outputs).

A block that picks its own backend (`KERAS_BACKEND`) runs in a fresh
process, as it would for a user.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
# Blocks that read a trained recipe's output directory are left out.
RUNNABLE = [block for block in BLOCKS if "outputs/" not in block]


def test_readme_has_runnable_examples():
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_readme_example_runs(index):
    block = RUNNABLE[index]
    if "KERAS_BACKEND" not in block:
        exec(compile(block, f"README block {index}", "exec"), {})
        return
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", block],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
