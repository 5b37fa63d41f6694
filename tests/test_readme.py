"""The README is short and true (issue 21): its Python example runs as written from a clone, its
commands exist, and it stays within 150 lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipesim.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 150


def test_the_two_fresh_machine_commands():
    assert "pip install -e . && pipesim run scenarios/bert24-training.yaml" in README
    assert "pip install -e '.[test]' && python -m pytest" in README
    assert (ROOT / "scenarios" / "bert24-training.yaml").is_file()


def test_every_command_in_the_table_exists():
    named = set(re.findall(r"^\| `pipesim (\w+)", README, flags=re.M))
    assert named and named <= set(COMMANDS)
    assert set(COMMANDS) <= named, f"commands missing from the README's table: {set(COMMANDS) - named}"


def test_every_linked_file_exists():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


@pytest.mark.slow
def test_the_python_example_runs_as_written(monkeypatch, capsys):
    block = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    monkeypatch.chdir(ROOT)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "3.7 3.7" or [round(float(x), 6) for x in out[0].split()] == [3.7, 3.7]
    assert out[1].startswith("True ")
