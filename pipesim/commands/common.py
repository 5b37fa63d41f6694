"""What several subcommands share: loading inputs and printing results."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from pipesim.placement.formats import InputError, load_json, read_paper_workload
from pipesim.placement.workload import Workload
from pipesim.workloads.native import is_native, read_native_workload

# Wide enough for the device tables when output is piped (no terminal to measure).
console = Console(width=shutil.get_terminal_size((120, 24)).columns)


def load_workload(path: str) -> Workload:
    """Read a workload file: paper JSON, or pipesim's native JSON (detected by its ``format`` key)."""
    data = load_json(Path(path))
    if is_native(data):
        return read_native_workload(Path(path), data)
    return read_paper_workload(Path(path), data)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(None, None, f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise InputError(None, None, f"expected a non-negative whole number, got {text!r}")
    return value
