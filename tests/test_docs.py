"""The documentation cannot lag the code (issue 21): every command-line option has help, every public
name of ``pipesim`` a docstring, and the generated reference pages are built from them
(docs/hooks/reference.py; ``mkdocs build --strict`` in .ci/run)."""

from __future__ import annotations

import argparse
import importlib.util
import inspect
from pathlib import Path

import pytest

import pipesim
from pipesim.cli import build_parser
from pipesim.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


def _hook():
    spec = importlib.util.spec_from_file_location("reference_hook", ROOT / "docs" / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parsers(parser: argparse.ArgumentParser, prog: str):
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{prog} {name}")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help(command):
    top = build_parser(command)
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    missing = [f"{prog}: {'/'.join(a.option_strings) or a.dest}"
               for prog, parser in _parsers(sub, f"pipesim {command}")
               for a in parser._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
               and a.help in (None, "") and a.help is not argparse.SUPPRESS]
    assert not missing, "options without help: " + "; ".join(missing)


@pytest.mark.parametrize("name", [n for n in pipesim.__all__ if not n.startswith("_")])
def test_every_public_name_has_a_docstring(name):
    value = getattr(pipesim, name)
    if inspect.isfunction(value) or inspect.isclass(value):
        assert inspect.getdoc(value), f"pipesim.{name} has no docstring"


def test_the_cli_reference_lists_every_command_and_option():
    text = _hook().reference()
    for command in COMMANDS:
        assert f"`pipesim {command}`" in text
    assert "`--microbatches`" in text and "`--method`" in text


def test_the_api_reference_lists_every_public_name():
    text = _hook().api_reference()
    for name in pipesim.__all__:
        if not name.startswith("_"):
            assert f".{name}\n" in text, name


def test_the_scenario_reference_lists_every_key():
    from pipesim.scenario import SCHEMA

    text = _hook().scenario_reference()
    for section, fields in SCHEMA.items():
        for key in fields:
            assert f"| `{section}.{key}` |" in text
