"""MkDocs hook: the command-line and Python references, generated from the code itself.

* ``<!-- pipesim-cli -->`` becomes one section per command with its usage and
  every option's help, taken from :func:`pipesim.cli.build_parser`;
* ``<!-- pipesim-api -->`` becomes one mkdocstrings entry (``::: module.name``)
  per public name of ``pipesim`` (``pipesim.__all__``), grouped by module;
* ``<!-- pipesim-scenario -->`` becomes a table of every key of a scenario
  file, from the schema the validator checks (:data:`pipesim.scenario.SCHEMA`).

Both are built when the site is, so neither can drift from the code;
``tests/test_docs.py`` checks that every option has help and every public
name a docstring.
"""

from __future__ import annotations

import argparse

CLI_MARKER = "<!-- pipesim-cli -->"
API_MARKER = "<!-- pipesim-api -->"
SCENARIO_MARKER = "<!-- pipesim-scenario -->"

#: What the section's own code checks, for the schema's fields declared ``None`` (their meaning depends on
#: other fields).
_FREE = {
    ("model", "params"): "the generator's parameters (`pipesim graph generate --help`), or `batch` for an ONNX model",
    ("hardware", "devices"): "inline device classes: `name`, `device` (a preset or a mapping), `count`, `memory`, "
                             "`host_link`",
    ("hardware", "whatif"): "per class: `speed`, `compute`, `memory_bandwidth`, `link`, `memory`, `count`, `device`",
    ("hardware", "prices"): "per class: price per device-hour (cost per million samples)",
    ("solve", "options"): "the method's options (`pipesim solve --help`; `plan`: `pipesim plan --help`)",
    ("simulate", "compare_schedules"): "`all` or a list of flushed schedules to compare",
    ("output", "artefacts"): "which files `run` writes",
    ("sweep", "vary"): "field path -> list of values (the grid is their product)",
}


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


def scenario_reference() -> str:
    """Markdown: one row per key of a scenario file, from :data:`pipesim.scenario.SCHEMA`."""
    from pipesim.scenario import SCHEMA

    lines = ["| key | values | meaning |", "|---|---|---|", "| `name` | text | default: the file's stem |",
             "| `description` | text | shown in reports |"]
    for section, fields in SCHEMA.items():
        for key, spec in fields.items():
            if spec is None:
                values, text = "mapping", _FREE.get((section, key), "")
            else:
                values, text = type(spec).__name__.lower(), spec.help
                if hasattr(spec, "values"):
                    values = ", ".join(f"`{v}`" for v in spec.values)
            lines.append(f"| `{section}.{key}` | {values} | {text} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, reference())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, api_reference())
    if SCENARIO_MARKER in markdown:
        markdown = markdown.replace(SCENARIO_MARKER, scenario_reference())
    return markdown
