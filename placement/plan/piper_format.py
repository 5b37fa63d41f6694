"""Reading Piper's input files as they are (docs/model.md §10; msr-fiddle/piper, README "Input format").

Top level: ``maxDevices`` K, ``maxMemoryPerDevice`` M (bytes), ``bandwidth``
(bytes/s), ``mbsInBatch`` N (some copies call it ``maxBatchSize``), ``nodes``
and ``edges``.  A node has ``id``, optional ``name`` and ``TMPCs``: for each
tensor-parallel degree (a JSON key) a list of configurations with ``id``,
``timePerSample``, ``parameterSize``, ``memoryUsageA``, ``memoryUsageB``,
``syncTimeFw`` {predecessor id: bytes} and ``syncTimeBw`` {successor id:
bytes}.  An edge has ``sourceId``, ``destId`` and ``communicationCost``
(bytes).  Piper's own checks are kept: a DAG, no duplicate edges, distinct
configuration ids per node and degree, and sync maps naming exactly the
node's in- and out-edges.

Any problem raises :class:`~pipesim.errors.InputError` naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from pipesim.placement.formats import _Reader, load_json
from pipesim.placement.plan.workload import (
    Configuration,
    Layer,
    LayerEdge,
    PlanningWorkload,
)

__all__ = ["is_piper_format", "read_piper_workload"]


def is_piper_format(data: Any) -> bool:
    """Whether parsed JSON looks like Piper's input (nodes carry ``TMPCs``).

    Examples
    --------
    >>> is_piper_format({"nodes": [{"id": 0, "TMPCs": {}}], "edges": []})
    True
    >>> is_piper_format({"nodes": [{"id": 0, "fpgaLatency": 1.0}], "edges": []})
    False
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        return False
    first = data["nodes"][0]
    return isinstance(first, Mapping) and "TMPCs" in first


def _key_int(r: _Reader, key: Any, field: str) -> int:
    try:
        return int(str(key))
    except ValueError:
        raise r.fail(field, f"key {key!r} is not an integer") from None


def read_piper_workload(path: str | Path, data: Any = None) -> PlanningWorkload:
    """Read a Piper input file (or its already parsed ``data``).

    Raises
    ------
    InputError
        When a field is missing or wrong; the message names the file and the field.
    """
    source = Path(path)
    data = load_json(source) if data is None else data
    r = _Reader(source)
    if not is_piper_format(data):
        raise r.fail("nodes", "not Piper's format (nodes need TMPCs)")
    devices = r.integer(data, "maxDevices", "", minimum=1)
    memory = r.number(data, "maxMemoryPerDevice", "")
    bandwidth = r.number(data, "bandwidth", "")
    key = "mbsInBatch" if "mbsInBatch" in data or "maxBatchSize" not in data else "maxBatchSize"
    microbatches = r.integer(data, key, "", minimum=1)
    if bandwidth <= 0 or memory <= 0:
        raise r.fail("bandwidth" if bandwidth <= 0 else "maxMemoryPerDevice", "must be positive")

    edges: list[LayerEdge] = []
    seen: set[tuple[int, int]] = set()
    for i, e in enumerate(r.array(data, "edges", "")):
        where = f"edges[{i}]"
        edge = LayerEdge(
            r.integer(e, "sourceId", where), r.integer(e, "destId", where), r.number(e, "communicationCost", where)
        )
        if (edge.source, edge.dest) in seen:
            raise r.fail(where, f"duplicate edge {edge.source} -> {edge.dest}")
        seen.add((edge.source, edge.dest))
        edges.append(edge)
    preds: dict[int, set[int]] = {}
    succs: dict[int, set[int]] = {}
    for e in edges:
        preds.setdefault(e.dest, set()).add(e.source)
        succs.setdefault(e.source, set()).add(e.dest)

    layers: list[Layer] = []
    ids: set[int] = set()
    for i, node in enumerate(r.array(data, "nodes", "")):
        where = f"nodes[{i}]"
        vid = r.integer(node, "id", where)
        if vid in ids:
            raise r.fail(f"{where}.id", f"duplicate node id {vid}")
        ids.add(vid)
        tmpcs = r.get(node, "TMPCs", where)
        if not isinstance(tmpcs, Mapping):
            raise r.fail(f"{where}.TMPCs", "must be a JSON object")
        options: dict[int, tuple[Configuration, ...]] = {}
        for degree_key, configs in tmpcs.items():
            field = f"{where}.TMPCs.{degree_key}"
            degree = _key_int(r, degree_key, field)
            if degree < 1:
                raise r.fail(field, "a tensor-parallel degree must be at least 1")
            if not isinstance(configs, list):
                raise r.fail(field, "must be a JSON array")
            parsed = []
            for j, c in enumerate(configs):
                cw = f"{field}[{j}]"
                cid = r.get(c, "id", cw)
                if not isinstance(cid, str) or not cid:
                    raise r.fail(f"{cw}.id", "must be a non-empty string")
                sync = {}
                for name, expected in (("syncTimeFw", preds.get(vid, set())), ("syncTimeBw", succs.get(vid, set()))):
                    raw = r.get(c, name, cw)
                    if not isinstance(raw, Mapping):
                        raise r.fail(f"{cw}.{name}", "must be a JSON object")
                    values = {_key_int(r, k, f"{cw}.{name}"): r.number(raw, k, f"{cw}.{name}") for k in raw}
                    if set(values) != expected:
                        raise r.fail(
                            f"{cw}.{name}",
                            f"must name exactly the node's {'predecessors' if name == 'syncTimeFw' else 'successors'} "
                            f"{sorted(expected)}, got {sorted(values)}",
                        )
                    sync[name] = values
                parsed.append(
                    Configuration(
                        id=cid,
                        time=r.number(c, "timePerSample", cw),
                        parameters=r.number(c, "parameterSize", cw),
                        memory_a=r.number(c, "memoryUsageA", cw),
                        memory_b=r.number(c, "memoryUsageB", cw),
                        sync_fw=sync["syncTimeFw"],
                        sync_bw=sync["syncTimeBw"],
                    )
                )
            if len({c.id for c in parsed}) != len(parsed):
                raise r.fail(field, "configuration ids must be distinct")
            if parsed:
                options[degree] = tuple(parsed)
        name = node.get("name") if isinstance(node, Mapping) else None
        layers.append(Layer(vid, options, name if isinstance(name, str) else None))

    for i, e in enumerate(edges):
        if e.source not in ids or e.dest not in ids:
            raise r.fail(f"edges[{i}]", f"endpoint {e.source if e.source not in ids else e.dest} is not a node")
    dag = nx.DiGraph()
    dag.add_nodes_from(ids)
    dag.add_edges_from((e.source, e.dest) for e in edges)
    if not nx.is_directed_acyclic_graph(dag):
        raise r.fail("edges", "the graph has a cycle")
    return PlanningWorkload(
        layers=tuple(layers),
        edges=tuple(edges),
        devices=devices,
        memory=memory,
        bandwidth=bandwidth,
        microbatches=microbatches,
        source=source,
    )
