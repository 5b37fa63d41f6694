"""Baseline: a balanced k-way graph partition (METIS), repaired for the model.

Problem: a general-purpose graph partitioner, as practitioners would use it
(the paper ran Scotch, ``dp.cpp -scotch``): cut the graph into ``k`` parts of
balanced compute while minimising the communication cut, one part per
accelerator.  As in the paper's code the partitioned graph has one vertex
per colour class (so classes are never split), weighted by its accelerator
time, and one edge per pair of classes that exchange data, weighted by the
transfer costs of the source nodes that cross (each source counted once per
pair).

Library: METIS through ``pymetis`` (maintained, binary wheels on PyPI, no
system library or executable needed); Scotch's Python bindings (``pyscotch``)
need a separately built Scotch and are not maintained.  The paper treats both
as the same kind of baseline.

The partition is then repaired so the evaluator finds no violation:

* classes that the partitioned device class cannot run go to the other
  device classes (the paper's CPUs), least-loaded device first;
* a part over its memory capacity sheds its classes, smallest first, to the
  partitioned devices with the most free memory that can take them, and
  otherwise to the other device classes.

Guarantee: a split scored by the evaluator, ``feasible`` when repair
succeeds; deterministic for a given ``seed``.  The split need not be
contiguous.
"""

from __future__ import annotations

import time
from collections import defaultdict

from pipesim.errors import InfeasibleError, require_extra
from pipesim.placement.baselines.units import (
    Device,
    Unit,
    result_from_assignment,
    units_of,
)
from pipesim.placement.devices import cap_counts
from pipesim.placement.graph import Graph
from pipesim.placement.result import PlacementResult
from pipesim.placement.workload import Workload

__all__ = ["solve_partitioner"]

#: Integer scale of METIS weights (METIS takes integers; this keeps 7 significant digits).
_SCALE = 10_000_000


def _cut_weights(graph: Graph, units: list[Unit]) -> dict[tuple[int, int], float]:
    """Symmetric cut weight between pairs of units (``a < b``)."""
    unit_of = {v: u for u, unit in enumerate(units) for v in unit.nodes}
    crossing: dict[tuple[int, int], set[int]] = defaultdict(set)
    for e in graph.edges:
        a, b = unit_of[e.source], unit_of[e.dest]
        if a != b:
            crossing[(a, b)].add(e.source)
    weights: dict[tuple[int, int], float] = defaultdict(float)
    for (a, b), sources in crossing.items():
        # The paper prices a cut edge by the accelerator transfer of each crossing source.
        cost = sum(max(graph.nodes[v].transfer.values(), default=0.0) for v in sources)
        weights[(min(a, b), max(a, b))] += cost
    return weights


def _metis_parts(graph: Graph, units: list[Unit], target: str, parts: int, seed: int) -> list[int]:
    """METIS part (0..parts-1) of each unit; units the target class cannot run get -1."""
    runnable = [u for u, unit in enumerate(units) if unit.fits(target)]
    if parts <= 1 or len(runnable) <= 1:
        return [0 if unit.fits(target) else -1 for unit in units]
    local = {u: i for i, u in enumerate(runnable)}
    adjacency: list[list[tuple[int, float]]] = [[] for _ in runnable]
    weights = _cut_weights(graph, units)
    top_cut = max(weights.values(), default=0.0)
    for (a, b), w in weights.items():
        scaled = round(w / top_cut * _SCALE) if top_cut > 0 else 0
        if a in local and b in local and scaled > 0:  # METIS takes positive edge weights only
            adjacency[local[a]].append((local[b], scaled))
            adjacency[local[b]].append((local[a], scaled))
    total = sum(units[u].time[target] for u in runnable)
    vweights = [round(units[u].time[target] / total * _SCALE) if total > 0 else 1 for u in runnable]
    xadj, adjncy, eweights = [0], [], []
    for row in adjacency:
        for v, w in row:
            adjncy.append(v)
            eweights.append(w)
        xadj.append(len(adjncy))
    pymetis = require_extra("pymetis", "metis")
    partition = pymetis.part_graph(
        parts,
        pymetis.CSRAdjacency(xadj, adjncy),
        vweights=vweights,
        eweights=eweights or None,
        options=pymetis.Options(seed=seed),
    )
    where = [-1] * len(units)
    for u, part in zip(runnable, partition.vertex_part):
        where[u] = int(part)
    return where


def _repair(units: list[Unit], devices: list[Device], where: list[int], workload: Workload, target: str) -> list[int]:
    """Move units off devices that cannot run them or lack memory; ``where`` holds device indices or -1."""
    capacity = [workload.device_class(cls).memory for cls, _ in devices]
    memory = [0.0] * len(devices)
    load = [0.0] * len(devices)
    for u, d in enumerate(where):
        if d >= 0:
            memory[d] += units[u].memory
            load[d] += units[u].time[devices[d][0]]

    def place(u: int, options: list[int]) -> bool:
        fitting = [d for d in options if units[u].fits(devices[d][0]) and memory[d] + units[u].memory <= capacity[d]]
        if not fitting:
            return False
        # Most free memory first (room for what follows), then least loaded.
        d = min(fitting, key=lambda d: (-(capacity[d] - memory[d]), load[d], d))
        where[u] = d
        memory[d] += units[u].memory
        load[d] += units[u].time[devices[d][0]]
        return True

    primary = [d for d, (cls, _) in enumerate(devices) if cls == target]
    others = [d for d, (cls, _) in enumerate(devices) if cls != target]
    for d in primary:
        shed = sorted((u for u, e in enumerate(where) if e == d), key=lambda u: (units[u].memory, u))
        while memory[d] > capacity[d] and shed:
            u = shed.pop(0)
            where[u] = -1
            memory[d] -= units[u].memory
            load[d] -= units[u].time[target]
    for u in sorted((u for u, d in enumerate(where) if d < 0), key=lambda u: -units[u].memory):
        # Classes METIS could not take prefer other device classes; shed ones try the partition first.
        if not (place(u, primary + others) if units[u].fits(target) else place(u, others)):
            where[u] = 0  # nowhere fits: leave it where the evaluator will report why
    return where


def solve_partitioner(workload: Workload, *, seed: int = 0, device_class: str | None = None) -> PlacementResult:
    """METIS k-way partition of the colour classes over ``device_class`` (default: the first class).

    Parameters
    ----------
    workload : Workload
    seed : int
        METIS's seed; the same seed gives the same partition.
    device_class : str, optional
        The class whose devices are the parts; classes it cannot run, or
        that overflow memory, go to the other classes.

    Returns
    -------
    PlacementResult
        ``feasible`` when repair succeeds, else ``infeasible`` (message: the
        first violation); no bound.

    Raises
    ------
    ValueError
        The workload has no devices.
    KeyError
        ``device_class`` is not a class of the workload.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> r = solve_partitioner(diamond(), seed=0)
    >>> r.status, r.max_load
    ('feasible', 4.0)
    """
    started = time.perf_counter()
    target = device_class if device_class is not None else workload.devices[0].name
    ordered = [workload.device_class(target)] + [dc for dc in workload.devices if dc.name != target]
    ordered = list(cap_counts(ordered, len(workload.graph.color_classes)))  # more devices than classes stay empty
    devices = [(dc.name, i) for dc in ordered for i in range(dc.count)]
    if not devices:
        raise InfeasibleError("the workload has no devices")
    units = units_of(workload.graph, [dc.name for dc in workload.devices])
    parts = ordered[0].count
    where = _metis_parts(workload.graph, units, target, parts, seed) if parts > 0 else [-1] * len(units)
    where = _repair(units, devices, where, workload, target)
    placement = {v: devices[where[u]] for u, unit in enumerate(units) for v in unit.nodes}
    stats = {"library": "pymetis", "parts": parts, "seed": seed}
    return result_from_assignment("partitioner", workload, placement, started, stats=stats)
