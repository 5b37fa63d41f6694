"""Reading and writing the paper's files (docs/model.md §7.1, §7.2).

* **Paper input**: ``maxSizePerFPGA``, ``maxFPGAs``, ``maxCPUs``, ``nodes``,
  ``edges``; "FPGA" means any accelerator.  ``"maxSizePerFPGA": null`` is
  unlimited memory (JSON has no infinity).  Each node becomes a
  :class:`~pipesim.placement.graph.Node` with times on the classes ``accelerator``
  and ``cpu``; each edge's ``cost`` becomes the source's accelerator transfer
  time (all out-edges of a node must carry the same cost).
* **Split**: ``{"fpgas": [{"nodes": [...]}, ...], "cpus": [...]}``; loads in
  the file are ignored on input.  Classes other than the paper's two are
  written under ``"devices": {class: [{"nodes": [...]}, ...]}``.

Any problem raises :class:`InputError` naming the file and the field.

**Every JSON file pipesim writes is strict JSON** (:func:`dumps`): JSON has no
``Infinity`` or ``NaN``, so a non-finite number is written as ``null``, and
the readers take ``null`` as what it stood for (unlimited memory, no bound,
not measured).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipesim.errors import InputError
from pipesim.output import write_text
from pipesim.placement.devices import ACCELERATOR, CPU, paper_devices
from pipesim.placement.evaluate import SplitEvaluation
from pipesim.placement.graph import Edge, Graph, GraphError, Node
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload

__all__ = [
    "InputError",
    "dumps",
    "json_safe",
    "load_json",
    "read_paper_workload",
    "read_split",
    "split_to_json",
    "workload_to_json",
    "write_json",
    "write_paper_workload",
    "write_split",
]




def load_json(path: str | Path) -> Any:
    """The parsed JSON of ``path``.

    Raises
    ------
    InputError
        The file is missing, a folder, unreadable, not JSON or nested too
        deeply to parse; the message names the file.  Every JSON file
        pipesim reads (workloads, splits, plans, profiles) goes through here.

    Examples
    --------
    >>> load_json("/no/such/file.json")
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: /no/such/file.json: no such file
    """
    path = Path(path)
    try:
        with path.open() as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, not a JSON file") from None
    except PermissionError:
        raise InputError(path, None, "cannot be read (permission denied)") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"not valid JSON ({exc})") from None
    except RecursionError:  # [[[[…]]]] deeper than Python's stack: no pipesim file nests more than a few levels
        raise InputError(path, None, "nested too deeply to be a pipesim file (arrays or objects inside each "
                         "other thousands of levels deep)") from None


#: A list longer than this is written one entry per line (json's C encoder) rather than indented
#: (json's pure-Python encoder, about 10x slower: 7 s for a 4,000-layer workload's two files).
LONG_LIST = 1000


def dumps_json(data: Any) -> str:
    """``data`` as indented strict JSON (:func:`dumps`); long lists of a top-level object one entry per line.

    Examples
    --------
    >>> print(dumps_json({"a": 1, "b": [1, 2]}))
    {
      "a": 1,
      "b": [
        1,
        2
      ]
    }
    >>> print("\\n".join(dumps_json({"a": 1, "nodes": [{"id": i} for i in range(LONG_LIST + 1)]}).splitlines()[:5]))
    {
      "a": 1,
      "nodes": [
        {"id": 0},
        {"id": 1},
    """
    if not (isinstance(data, dict) and any(isinstance(v, list) and len(v) > LONG_LIST for v in data.values())):
        return dumps(data, indent=2) + "\n"

    def value(v: Any) -> str:
        if isinstance(v, list) and len(v) > LONG_LIST:
            return "[\n" + ",\n".join("    " + dumps(item) for item in v) + "\n  ]"
        return dumps(v, indent=2).replace("\n", "\n  ")

    return "{\n" + ",\n".join(f"  {dumps(str(k))}: {value(v)}" for k, v in data.items()) + "\n}\n"


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float replaced by ``None`` (JSON ``null``); tuples become lists.

    Examples
    --------
    >>> json_safe({"memory": float("inf"), "loads": (1.0, float("nan")), "n": 2})
    {'memory': None, 'loads': [1.0, None], 'n': 2}
    """
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    if hasattr(data, "dtype") and hasattr(data, "item"):  # numpy scalars
        return json_safe(data.item())
    return data


def dumps(data: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``data`` (non-finite numbers as ``null``, see the module docstring).

    Examples
    --------
    >>> dumps({"maxSizePerFPGA": float("inf")})
    '{"maxSizePerFPGA": null}'
    """
    return json.dumps(json_safe(data), allow_nan=False, **kwargs)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as strict JSON (:func:`dumps`) to ``path``, creating missing parent folders.

    Raises
    ------
    InputError
        ``path`` is a folder or cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(path, None, "is a directory: give a file name")
    write_text(path, dumps_json(data))  # all or nothing (pipesim.output)


class _Reader:
    """Typed field access that reports ``file: field: problem``."""

    def __init__(self, source: Path | str | None):
        self.source = source

    def fail(self, field: str, problem: str) -> InputError:
        return InputError(self.source, field, problem)

    def get(self, obj: Mapping, key: str, where: str, default: Any = ...) -> Any:
        if not isinstance(obj, Mapping):
            raise self.fail(where, f"must be a JSON object, got {type(obj).__name__}")
        if key not in obj:
            if default is ...:
                raise self.fail(f"{where}.{key}" if where else key, "missing")
            return default
        return obj[key]

    def number(self, obj: Mapping, key: str, where: str, default: Any = ...) -> float:
        value = self.get(obj, key, where, default)
        field = f"{where}.{key}" if where else key
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(field, f"must be a number, got {value!r}")
        if math.isnan(value) or math.isinf(value) or value < 0:
            raise self.fail(field, f"must be a finite non-negative number, got {value!r}")
        return float(value)

    def integer(self, obj: Mapping, key: str, where: str, default: Any = ..., minimum: int | None = None) -> int:
        value = self.get(obj, key, where, default)
        field = f"{where}.{key}" if where else key
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(field, f"must be at least {minimum}, got {value}")
        return value

    def flag(self, obj: Mapping, key: str, where: str, default: Any = ...) -> bool:
        value = self.get(obj, key, where, default)
        if value in (0, 1) or isinstance(value, bool):
            return bool(value)
        raise self.fail(f"{where}.{key}", f"must be true/false or 0/1, got {value!r}")

    def array(self, obj: Mapping, key: str, where: str) -> list:
        value = self.get(obj, key, where)
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key}" if where else key, f"must be a JSON array, got {type(value).__name__}")
        return value


def read_paper_workload(path: str | Path, data: Any = None) -> Workload:
    """Read a workload in the paper's input format (docs/model.md §7.1).

    Parameters
    ----------
    path : str or Path
        The file; also the source named in errors and the workload's name.
    data : optional
        The file's already-parsed JSON (then ``path`` is not read).

    Returns
    -------
    Workload
        Classes ``accelerator`` (``maxFPGAs`` devices of ``maxSizePerFPGA``
        bytes) and ``cpu`` (``maxCPUs`` cores); each edge's ``cost`` is its
        source's accelerator transfer time.

    Raises
    ------
    InputError
        A missing or ill-typed field, out-edges of one node with different
        costs, or a graph the model rejects; the message names the file and
        the field.

    Examples
    --------
    >>> data = {"maxSizePerFPGA": 8e9, "maxFPGAs": 2, "maxCPUs": 1,
    ...         "nodes": [{"id": 1, "supportedOnFpga": 1, "cpuLatency": 20.0, "fpgaLatency": 2.0,
    ...                    "isBackwardNode": 0, "size": 1e6},
    ...                   {"id": 2, "supportedOnFpga": 0, "cpuLatency": 5.0, "fpgaLatency": 0.0,
    ...                    "isBackwardNode": 0}],
    ...         "edges": [{"sourceId": 1, "destId": 2, "cost": 0.5}]}
    >>> w = read_paper_workload("tiny.json", data)
    >>> w.name, w.graph.nodes[1].transfer, w.graph.nodes[2].supports("accelerator")
    ('tiny', {'accelerator': 0.5}, False)
    >>> data["edges"][0]["cost"] = -1
    >>> read_paper_workload("tiny.json", data)
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: tiny.json: edges[0].cost: must be a finite non-negative number, got -1
    """
    path = Path(path)
    if data is None:
        data = load_json(path)
    r = _Reader(path)
    # null: unlimited; Infinity: the same, in files written before pipesim wrote strict JSON
    unlimited = isinstance(data, Mapping) and "maxSizePerFPGA" in data and (
        data["maxSizePerFPGA"] is None or data["maxSizePerFPGA"] == math.inf)
    memory = math.inf if unlimited else r.number(data, "maxSizePerFPGA", "")
    k = r.integer(data, "maxFPGAs", "", minimum=0)
    cpus = r.integer(data, "maxCPUs", "", minimum=0)

    raw_edges = r.array(data, "edges", "")
    # the node ids first: an edge to a missing node is that, not "out-edges with different costs"
    known: set[int] = set()
    for i, raw in enumerate(r.array(data, "nodes", "")):
        node_id = r.integer(raw, "id", f"nodes[{i}]")
        if node_id in known:
            raise r.fail(f"nodes[{i}].id", f"node {node_id}: duplicate node id")
        known.add(node_id)
    transfer: dict[int, float] = {}
    edges: list[Edge] = []
    for i, raw in enumerate(raw_edges):
        where = f"edges[{i}]"
        source = r.integer(raw, "sourceId", where)
        dest = r.integer(raw, "destId", where)
        for key, node in (("sourceId", source), ("destId", dest)):
            if node not in known:
                raise r.fail(f"{where}.{key}", f"unknown node id {node} (no node has it)")
        cost = r.number(raw, "cost", where)
        size = r.number(raw, "size", where, None) if raw.get("size") is not None else None
        if source in transfer and not math.isclose(transfer[source], cost, rel_tol=1e-9, abs_tol=1e-12):
            raise r.fail(
                f"{where}.cost",
                f"node {source} has out-edges with different costs ({transfer[source]!r} and {cost!r}); "
                "all out-edges of a node must carry the same cost",
            )
        transfer.setdefault(source, cost)
        edges.append(Edge(source, dest, size))

    nodes: list[Node] = []
    for i, raw in enumerate(r.array(data, "nodes", "")):
        where = f"nodes[{i}]"
        node_id = r.integer(raw, "id", where)
        where = f"nodes[{i}] (id {node_id})"
        name = raw.get("name")
        layer_id = raw.get("layerId")
        nodes.append(
            Node(
                id=node_id,
                time={ACCELERATOR: r.number(raw, "fpgaLatency", where), CPU: r.number(raw, "cpuLatency", where)},
                memory=r.number(raw, "size", where, 0.0),
                unsupported=frozenset() if r.flag(raw, "supportedOnFpga", where) else frozenset({ACCELERATOR}),
                transfer={ACCELERATOR: transfer[node_id]} if node_id in transfer else {},
                is_backward=r.flag(raw, "isBackwardNode", where),
                color_class=r.integer(raw, "colorClass", where) if raw.get("colorClass") is not None else None,
                name=str(name) if name is not None else None,
                layer_id=r.integer(raw, "layerId", where) if layer_id is not None else None,
            )
        )
    try:
        graph = Graph(nodes, edges)
    except GraphError as exc:
        raise InputError(path, "nodes/edges", str(exc)) from None
    return Workload(graph, paper_devices(k, cpus, memory), source=path)


def workload_to_json(workload: Workload) -> dict:
    """The paper's input format for a workload on the paper's two device classes.

    Parameters
    ----------
    workload : Workload
        With classes ``accelerator`` and ``cpu``.

    Returns
    -------
    dict
        JSON-ready; :func:`read_paper_workload` reads it back.

    Raises
    ------
    KeyError
        The workload lacks one of the two classes (a workload with other
        classes is written in the native format, docs/model.md §7.3).

    Examples
    --------
    >>> from pipesim.placement.devices import paper_devices
    >>> from pipesim.placement.graph import Edge, Graph, Node
    >>> from pipesim.placement.workload import Workload
    >>> w = Workload(Graph([Node(1, {"accelerator": 2.0, "cpu": 20.0})], []), paper_devices(2, 1, 8e9))
    >>> workload_to_json(w)["nodes"]
    [{'id': 1, 'supportedOnFpga': 1, 'cpuLatency': 20.0, 'fpgaLatency': 2.0, 'isBackwardNode': 0, 'size': 0.0}]
    """
    graph = workload.graph
    acc, cpu = workload.device_class(ACCELERATOR), workload.device_class(CPU)
    nodes = []
    for node in graph.nodes.values():
        entry: dict[str, Any] = {
            "id": node.id,
            "supportedOnFpga": int(node.supports(ACCELERATOR)),
            "cpuLatency": node.time.get(CPU, 0.0),
            "fpgaLatency": node.time.get(ACCELERATOR, 0.0),
            "isBackwardNode": int(node.is_backward),
            "size": node.memory,
        }
        if node.color_class is not None:
            entry["colorClass"] = node.color_class
        if node.name is not None:
            entry["name"] = node.name
        if node.layer_id is not None:
            entry["layerId"] = node.layer_id
        nodes.append(entry)
    edges = []
    for e in graph.edges:
        entry = {"sourceId": e.source, "destId": e.dest, "cost": graph.nodes[e.source].transfer.get(ACCELERATOR, 0.0)}
        if e.size is not None:
            entry["size"] = e.size
        edges.append(entry)
    return {
        "maxSizePerFPGA": acc.memory,
        "maxFPGAs": acc.count,
        "maxCPUs": cpu.count,
        "nodes": nodes,
        "edges": edges,
    }


def write_paper_workload(path: str | Path, workload: Workload) -> None:
    """Write :func:`workload_to_json` of ``workload`` to ``path`` (see :func:`write_json`)."""
    write_json(path, workload_to_json(workload))


def read_split(path: str | Path, data: Any = None) -> Split:
    """Read a split file (docs/model.md §7.2: ``fpgas``, ``cpus`` and optionally ``devices``).

    Parameters
    ----------
    path : str or Path
    data : optional
        The file's already-parsed JSON (then ``path`` is not read).

    Returns
    -------
    Split
        Not yet checked against a workload (:func:`pipesim.load_split` does that).

    Raises
    ------
    InputError
        Not a split, or a section or node id of the wrong type.

    Examples
    --------
    >>> read_split("s.json", {"fpgas": [{"nodes": [1]}], "cpus": [{"nodes": [2, 3]}], "maxLoad": 2.5})
    Split(assignment={'accelerator': (frozenset({1}),), 'cpu': (frozenset({2, 3}),)})
    """
    path = Path(path)
    if data is None:
        data = load_json(path)
    r = _Reader(path)
    if not isinstance(data, Mapping):
        raise r.fail("", "a split must be a JSON object with 'fpgas' and 'cpus'")
    sections: dict[str, Any] = {}
    if "fpgas" in data:
        sections[ACCELERATOR] = (data["fpgas"], "fpgas")
    if "cpus" in data:
        sections[CPU] = (data["cpus"], "cpus")
    extra = data.get("devices", {})
    if not isinstance(extra, Mapping):
        raise r.fail("devices", "must be an object mapping a device class to its devices")
    for name, devices in extra.items():
        sections[str(name)] = (devices, f"devices.{name}")
    if not sections:
        raise r.fail("", "a split needs 'fpgas' and/or 'cpus' (or 'devices')")
    assignment: dict[str, list[list[int]]] = {}
    for name, (devices, where) in sections.items():
        if not isinstance(devices, list):
            raise r.fail(where, f"must be a JSON array of devices, got {type(devices).__name__}")
        assignment[name] = []
        for i, device in enumerate(devices):
            ids = r.array(device, "nodes", f"{where}[{i}]")
            for j, v in enumerate(ids):
                if isinstance(v, bool) or not isinstance(v, int):
                    raise r.fail(f"{where}[{i}].nodes[{j}]", f"must be a node id (integer), got {v!r}")
            assignment[name].append(ids)
    return Split.from_lists(assignment)


def split_to_json(split: SplitEvaluation | Split) -> dict:
    """The split format; from an evaluation, with each device's load and the max-load filled in.

    Parameters
    ----------
    split : Split or SplitEvaluation

    Returns
    -------
    dict
        ``fpgas`` and ``cpus`` (always both for the paper's classes), and
        ``devices`` for other classes; ``maxLoad`` from an evaluation.

    Examples
    --------
    >>> from pipesim.placement.split import Split
    >>> split_to_json(Split.from_lists({"accelerator": [[2, 1]], "gpu": [[3]]}))
    {'fpgas': [{'nodes': [1, 2]}], 'devices': {'gpu': [{'nodes': [3]}]}}
    """
    sections: dict[str, list] = {}
    if isinstance(split, SplitEvaluation):
        for d in split.devices:
            sections.setdefault(d.device_class, []).append({"nodes": list(d.nodes), "load": d.load})
    else:
        for cls, _, nodes in split.devices():
            sections.setdefault(cls, []).append({"nodes": sorted(nodes)})
    # A paper-model split always has both of the paper's keys; a split with other classes has them only
    # for classes it uses (an empty "fpgas": [] would name a class a native workload does not have).
    paper = set(sections) <= {ACCELERATOR, CPU}
    out: dict[str, Any] = {key: sections.pop(cls, []) for key, cls in (("fpgas", ACCELERATOR), ("cpus", CPU))
                           if paper or cls in sections}
    if sections:
        out["devices"] = sections
    if isinstance(split, SplitEvaluation):
        out["maxLoad"] = split.max_load
    return out


def write_split(path: str | Path, split: SplitEvaluation | Split) -> None:
    """Write a split file (with loads when given an evaluation); missing folders are created.

    Raises
    ------
    InputError
        The file cannot be written.
    """
    write_json(path, split_to_json(split))
