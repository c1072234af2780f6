"""The README's Python examples run as written (those needing no outputs)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
# Blocks that read a trained recipe's output directory are left out.
RUNNABLE = [block for block in BLOCKS if "outputs/" not in block]


def test_readme_has_runnable_examples():
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_readme_example_runs(index):
    exec(compile(RUNNABLE[index], f"README block {index}", "exec"), {})
