"""MkDocs hook: the command-line and Python references, generated from the code itself.

* ``<!-- pipesim-cli -->`` becomes one section per command with its usage and
  every option's help, taken from :func:`pipesim.cli.build_parser`;
* ``<!-- pipesim-api -->`` becomes one mkdocstrings entry (``::: module.name``)
  per public name of ``pipesim`` (``pipesim.__all__``), grouped by module.

Both are built when the site is, so neither can drift from the code;
``tests/test_docs.py`` checks that every option has help and every public
name a docstring.
"""

from __future__ import annotations

import argparse

CLI_MARKER = "<!-- pipesim-cli -->"
API_MARKER = "<!-- pipesim-api -->"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _section(name: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    parser.prog = f"pipesim {name}"
    lines = [f"{'#' * level} `pipesim {name}`", "", parser.description or "", "", "```text",
             parser.format_usage().removeprefix("usage: ").strip(), "```", "", "| option | help |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        flags = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.dest.upper()}`"
        text = (action.help or "").replace("|", "\\|").replace("\n", " ")
        if "%(" in text:
            text = text % {**vars(action), "prog": parser.prog, "default": action.default}
        lines.append(f"| {flags} | {text} |")
    lines.append("")
    for sub, child in _subparsers(parser).items():
        lines += _section(f"{name} {sub}", child, level + 1)
    return lines


def reference() -> str:
    """Markdown for every ``pipesim`` command, in the order ``pipesim --help`` lists them."""
    from pipesim.cli import build_parser
    from pipesim.commands import COMMANDS

    lines: list[str] = []
    for command in COMMANDS:
        parser = build_parser(command)
        lines += _section(command, _subparsers(parser)[command], 2)
    return "\n".join(lines)


def api_reference() -> str:
    """Markdown with one ``::: module.name`` per public name of ``pipesim``, grouped by module."""
    import pipesim

    by_module: dict[str, list[str]] = {}
    for name in pipesim.__all__:
        if name.startswith("_"):
            continue
        by_module.setdefault(pipesim._LAZY[name], []).append(name)
    lines: list[str] = []
    for module in sorted(by_module):
        lines += [f"## `{module}`", ""]
        lines += [f"::: {module}.{name}\n" for name in by_module[module]]
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, reference())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, api_reference())
    return markdown
