"""Reading a workload file in either format: the paper's JSON or pipesim's native JSON.

The native format is recognised by its ``"format": "pipesim-workload"`` key;
anything else is read as the paper's format (docs/model.md §7).  Every problem raises
:class:`~pipesim.errors.InputError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path

from pipesim.placement.formats import load_json, read_paper_workload
from pipesim.placement.workload import Workload
from pipesim.workloads.native import is_native, read_native_workload

__all__ = ["load_workload"]


def load_workload(path: str | Path) -> Workload:
    """Read the workload in ``path`` (paper or native format, detected)."""
    path = Path(path)
    data = load_json(path)
    if is_native(data):
        return read_native_workload(path, data)
    return read_paper_workload(path, data)
