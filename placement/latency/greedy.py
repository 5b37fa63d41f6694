"""The paper's latency greedy (docs/model.md §4.4): a heuristic, fast, always contiguous.

Fill devices with the inseparable blocks — colour classes fused with the
cycles they create — in topological order while memory allows; each device
gets a consecutive run of blocks, hence a contiguous set.  No optimality claim.
"""

from __future__ import annotations

import time

import networkx as nx

from pipesim.placement.devices import CPU
from pipesim.placement.graph import Graph
from pipesim.placement.latency.model import (
    Device,
    LatencyResult,
    capped,
    check_inference,
    latency_of_split,
)
from pipesim.placement.result import FEASIBLE, INFEASIBLE
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload

__all__ = ["accelerators", "greedy_split", "solve_latency_greedy"]


def _inseparable_blocks(graph: Graph) -> list[frozenset[int]]:
    """Colour classes, fused where they form cycles, in topological order."""
    quotient = nx.DiGraph()
    quotient.add_nodes_from(graph.color_classes)
    quotient.add_edges_from((graph.color_class(e.source), graph.color_class(e.dest)) for e in graph.edges)
    quotient.remove_edges_from(nx.selfloop_edges(quotient))
    condensed = nx.condensation(quotient)
    position = {v: n for n, v in enumerate(graph.topological_order)}
    blocks = {
        c: frozenset(v for cc in condensed.nodes[c]["members"] for v in graph.color_classes[cc]) for c in condensed
    }
    first = {c: min(position[v] for v in nodes) for c, nodes in blocks.items()}
    return [blocks[c] for c in nx.lexicographical_topological_sort(condensed, key=first.__getitem__)]


def accelerators(workload: Workload) -> list[tuple[Device, float]]:
    """Every non-CPU device with its memory capacity, class by class.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond(cpus=1, memory=2.0)   # two nodes fit on an accelerator
    >>> accelerators(w)
    [(('accelerator', 0), 2.0), (('accelerator', 1), 2.0)]
    """
    return [((dc.name, i), dc.memory) for dc in workload.devices if dc.name != CPU for i in range(dc.count)]


def greedy_split(workload: Workload) -> Split | None:
    """Fill devices in order with consecutive blocks; a block no device can take goes to the CPUs.

    Parameters
    ----------
    workload : Workload

    Returns
    -------
    Split or None
        ``None`` when some block fits nowhere (memory or support).

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond(cpus=1, memory=2.0)   # two nodes fit on an accelerator
    >>> greedy_split(w)
    Split(assignment={'accelerator': (frozenset({1, 2}), frozenset({3, 4})), 'cpu': (frozenset(),)})
    """
    graph = workload.graph
    has_cpu = any(dc.name == CPU for dc in workload.devices)
    devices = accelerators(workload)
    assignment: dict[Device, set[int]] = {}
    host: set[int] = set()
    filling: int | None = None  # index into devices of the open device
    next_free = 0
    used = 0.0
    for block in _inseparable_blocks(graph):
        memory = sum(graph.nodes[v].memory for v in block)

        def fits(n: int, already: float) -> bool:
            (cls, _), capacity = devices[n]
            return already + memory <= capacity and all(graph.nodes[v].supports(cls) for v in block)

        if filling is not None and fits(filling, used):
            assignment[devices[filling][0]] |= block
            used += memory
            continue
        candidate = next((n for n in range(next_free, len(devices)) if fits(n, 0.0)), None)
        on_host = has_cpu and all(graph.nodes[v].supports(CPU) for v in block)
        if candidate is not None and (not on_host or candidate == next_free):
            filling, next_free, used = candidate, candidate + 1, memory
            assignment[devices[filling][0]] = set(block)
        elif on_host:
            host |= block
            filling = None  # close the device: its nodes stay one consecutive run of blocks
        else:
            return None
    lists: dict[str, list[set[int]]] = {dc.name: [] for dc in workload.devices}
    for (cls, _), _capacity in devices:
        lists[cls].append(set())
    for (cls, i), nodes in assignment.items():
        lists[cls][i] = nodes
    if has_cpu:
        lists[CPU] = [host]
    return Split.from_lists(lists)


def solve_latency_greedy(workload: Workload) -> LatencyResult:
    """The paper's latency greedy (heuristic); status ``feasible`` or ``infeasible``.

    Parameters
    ----------
    workload : Workload
        An inference graph.

    Returns
    -------
    LatencyResult
        No bound.

    Raises
    ------
    InputError
        A training graph.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond(cpus=1, memory=2.0)   # two nodes fit on an accelerator
    >>> r = solve_latency_greedy(w)
    >>> r.status, r.latency
    ('feasible', 8.0)
    """
    check_inference(workload.graph)
    workload = capped(workload)  # "maxFPGAs": 1e9 must not build a billion device slots
    start = time.perf_counter()
    split = greedy_split(workload)
    if split is None:
        return LatencyResult("latency-greedy", INFEASIBLE, None, seconds=time.perf_counter() - start,
                             message="some inseparable block fits on no device (support or memory)")
    schedule = latency_of_split(workload, split)
    return LatencyResult("latency-greedy", FEASIBLE, schedule, seconds=time.perf_counter() - start)

