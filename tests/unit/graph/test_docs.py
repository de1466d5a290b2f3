"""The examples in docs/identity-graph.md run and their assertions hold."""

import re
from pathlib import Path

import yaml

from graph.commands import load_allow_list

DOC = Path(__file__).resolve().parents[3] / "docs" / "identity-graph.md"


def test_python_examples_run():
    text = DOC.read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the doc has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    assert namespace["ring"]["n_members"] == 3


def test_allow_list_example_loads(tmp_path):
    text = DOC.read_text("utf-8")
    block = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)[0]
    path = tmp_path / "allow.yaml"
    path.write_text(block, "utf-8")
    allow = load_allow_list(path)
    assert allow is not None and allow.values["ip"] == ["203.0.113.7"]
    assert allow.hashed == yaml.safe_load(block)["hashed"]
