"""Writing a generated workload so that every tool can read it.

A workload for a system with at most one accelerator class and at most one
CPU class is also a paper-model workload (docs/model.md §2): :func:`as_paper` renames
its classes to ``accelerator`` and ``cpu`` (a missing class gets count 0), so
:func:`pipesim.placement.formats.write_paper_workload` can write it and every solver,
and ``pipesim evaluate``, reads it.  :func:`write_workload` writes the paper
form when there is one and always the native form (all classes, FLOPs kept,
:mod:`pipesim.workloads.native`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pipesim.hardware.devices import ACCELERATOR_KIND, System
from pipesim.placement.devices import ACCELERATOR, CPU, DeviceClass
from pipesim.placement.formats import write_paper_workload
from pipesim.placement.graph import Graph
from pipesim.placement.workload import Workload
from pipesim.workloads.native import write_native_workload

__all__ = ["as_paper", "write_workload"]


def as_paper(workload: Workload, system: System) -> Workload | None:
    """``workload`` with the paper's two class names, or ``None`` if ``system`` has more classes."""
    if not system.is_paper_shaped:
        return None
    rename = {g.name: ACCELERATOR if g.kind == ACCELERATOR_KIND else CPU for g in system.groups}

    def renamed(mapping):
        return {rename.get(k, k): v for k, v in mapping.items()}

    nodes = [
        replace(n, time=renamed(n.time), transfer=renamed(n.transfer), unsupported=frozenset(rename.get(c, c) for c in n.unsupported))
        for n in workload.graph.nodes.values()
    ]
    devices = {rename[dc.name]: replace(dc, name=rename[dc.name]) for dc in workload.devices}
    classes = tuple(devices.get(name, DeviceClass(name, 0)) for name in (ACCELERATOR, CPU))
    return Workload(Graph(nodes, workload.graph.edges), classes, workload.source)


def write_workload(path: str | Path, workload: Workload, system: System, name: str | None = None) -> list[Path]:
    """Write ``path`` (paper format if possible, else native) and the native form; the files written."""
    path = Path(path)
    paper = as_paper(workload, system)
    native_path = path.with_name(path.stem + ".native.json") if paper is not None else path
    written = []
    if paper is not None:
        write_paper_workload(path, paper)
        written.append(path)
    kinds = {g.name: g.kind for g in system.groups}
    write_native_workload(native_path, workload, name=name or path.stem, hardware=system.name, kinds=kinds)
    written.append(native_path)
    return written
