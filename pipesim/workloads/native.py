"""pipesim's native workload format: any number of device classes, FLOPs kept.

The paper's format (docs/model.md §7) knows two device classes; a workload generated
for a mixed system needs more.  The native form is JSON with snake_case keys::

    {"format": "pipesim-workload", "version": 1, "name": "bert24", "time_unit": "ms",
     "hardware": "mixed-a100x4-v100x4",                        (optional, informative)
     "devices": [{"name": "a100", "count": 4, "memory": 4e10, "kind": "accelerator"},
                 {"name": "cpu", "count": 1, "memory": null}],  (null: unlimited)
     "nodes": [{"id": 0, "name": "layer1", "time": {"a100": 0.9, "cpu": 1153.8},
                "transfer": {"a100": 0.28}, "memory": 3.7e8, "unsupported": [],
                "is_backward": false, "color_class": 0, "layer_id": 1, "flops": 1.1e11}],
     "edges": [{"source": 0, "dest": 1, "size": 8388608}]}

Only ``format``, ``devices``, ``nodes`` (with ``id`` and ``time``) and
``edges`` (with ``source`` and ``dest``) are required.  Every problem raises
:class:`~pipesim.placement.formats.InputError` naming the file and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipesim.placement.devices import DeviceClass
from pipesim.placement.formats import InputError, _Reader, load_json, write_json
from pipesim.placement.graph import Edge, Graph, GraphError, Node
from pipesim.placement.workload import Workload

__all__ = ["FORMAT", "is_native", "read_native_workload", "workload_to_native", "write_native_workload"]

FORMAT = "pipesim-workload"
VERSION = 1


def is_native(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("format") == FORMAT


def _class_numbers(r: _Reader, raw: Any, where: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise r.fail(where, f"must be an object mapping a device class to a number, got {raw!r}")
    return {str(cls): r.number(raw, cls, where) for cls in raw}


def _kernels(r: _Reader, raw: Any, where: str) -> dict | None:
    """``{class: [[launch, compute, memory, repeat], ...]}`` (optional), checked."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise r.fail(where, "must be an object mapping a device class to its kernels")
    out = {}
    for cls, kernels in raw.items():
        ok = isinstance(kernels, list) and all(
            isinstance(k, list) and len(k) == 4 and all(isinstance(x, (int, float)) and x >= 0 for x in k) for k in kernels)
        if not ok:
            raise r.fail(f"{where}.{cls}", "must be a list of [launch, compute, memory, repeat] non-negative numbers")
        out[str(cls)] = tuple(tuple(float(x) for x in k) for k in kernels)
    return out


def read_native_workload(path: str | Path, data: Any = None) -> Workload:
    path = Path(path)
    if data is None:
        data = load_json(path)
    r = _Reader(path)
    if not is_native(data):
        raise r.fail("format", f"must be {FORMAT!r}")
    version = r.integer(data, "version", "", VERSION)
    if version != VERSION:
        raise r.fail("version", f"version {version} is not supported (this pipesim reads {VERSION})")
    devices = []
    for i, raw in enumerate(r.array(data, "devices", "")):
        where = f"devices[{i}]"
        name = str(r.get(raw, "name", where))
        count = r.integer(raw, "count", where, minimum=0)
        memory = math.inf if raw.get("memory") is None else r.number(raw, "memory", where)
        if not name:
            raise r.fail(f"{where}.name", "must not be empty")
        devices.append(DeviceClass(name, count, memory))
    nodes = []
    for i, raw in enumerate(r.array(data, "nodes", "")):
        where = f"nodes[{i}]"
        node_id = r.integer(raw, "id", where)
        where = f"nodes[{i}] (id {node_id})"
        unsupported = raw.get("unsupported", [])
        if not isinstance(unsupported, list):
            raise r.fail(f"{where}.unsupported", "must be a list of device-class names")
        nodes.append(
            Node(
                id=node_id,
                time=_class_numbers(r, r.get(raw, "time", where), f"{where}.time"),
                memory=r.number(raw, "memory", where, 0.0),
                unsupported=frozenset(map(str, unsupported)),
                transfer=_class_numbers(r, raw.get("transfer", {}), f"{where}.transfer"),
                is_backward=r.flag(raw, "is_backward", where, False),
                color_class=r.integer(raw, "color_class", where) if raw.get("color_class") is not None else None,
                name=str(raw["name"]) if raw.get("name") is not None else None,
                layer_id=r.integer(raw, "layer_id", where) if raw.get("layer_id") is not None else None,
                flops=r.number(raw, "flops", where) if raw.get("flops") is not None else None,
                kernels=_kernels(r, raw.get("kernels"), f"{where}.kernels"),
            )
        )
    edges = []
    for i, raw in enumerate(r.array(data, "edges", "")):
        where = f"edges[{i}]"
        size = r.number(raw, "size", where) if isinstance(raw, Mapping) and raw.get("size") is not None else None
        edges.append(Edge(r.integer(raw, "source", where), r.integer(raw, "dest", where), size))
    try:
        graph = Graph(nodes, edges)
    except GraphError as exc:
        raise InputError(path, "nodes/edges", str(exc)) from None
    return Workload(graph, tuple(devices), source=path)


def workload_to_native(workload: Workload, *, name: str | None = None, hardware: str | None = None,
                       kinds: Mapping[str, str] | None = None) -> dict:
    """The native form; ``kinds`` optionally records each class's kind (accelerator/cpu)."""
    kinds = kinds or {}
    devices = []
    for dc in workload.devices:
        entry: dict[str, Any] = {"name": dc.name, "count": dc.count, "memory": None if math.isinf(dc.memory) else dc.memory}
        if dc.name in kinds:
            entry["kind"] = kinds[dc.name]
        devices.append(entry)
    nodes = []
    for node in workload.graph.nodes.values():
        entry = {"id": node.id, "time": dict(node.time), "memory": node.memory}
        optional = {
            "name": node.name,
            "transfer": dict(node.transfer) or None,
            "unsupported": sorted(node.unsupported) or None,
            "is_backward": node.is_backward or None,
            "color_class": node.color_class,
            "layer_id": node.layer_id,
            "flops": node.flops,
            "kernels": {cls: [list(k) for k in parts] for cls, parts in node.kernels.items()} if node.kernels else None,
        }
        entry.update({k: v for k, v in optional.items() if v is not None})
        nodes.append(entry)
    edges = []
    for e in workload.graph.edges:
        edge: dict[str, Any] = {"source": e.source, "dest": e.dest}
        if e.size is not None:
            edge["size"] = e.size
        edges.append(edge)
    out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": name or workload.name, "time_unit": "ms"}
    if hardware:
        out["hardware"] = hardware
    out.update(devices=devices, nodes=nodes, edges=edges)
    return out


def write_native_workload(path: str | Path, workload: Workload, **info: Any) -> None:
    write_json(path, workload_to_native(workload, **info))
