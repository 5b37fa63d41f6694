"""Builders shared by the simulator tests: pipelines of stages and contiguous splits."""

from __future__ import annotations

import dataclasses
import math

from pipesim.placement.devices import ACCELERATOR, paper_devices
from pipesim.placement.graph import Edge, Graph
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from tests.strategies import node


def chain(forward, backward=None, transfer=0.0, memory=0.0, activation=None, capacity=math.inf):
    """One node per stage, stage ``i`` on accelerator ``i``; with ``backward``, its mirror.

    Forward ``i -> i+1``; backward node ``S+i`` of stage ``i`` follows ``S+i+1``
    and reads forward ``i``'s output (an edge of ``activation`` bytes).
    """
    s = len(forward)
    nodes = [node(i, acc=f, memory=memory, transfer=transfer, color=i) for i, f in enumerate(forward)]
    edges = [Edge(i, i + 1) for i in range(s - 1)]
    if backward is not None:
        nodes += [node(s + i, acc=b, transfer=transfer, backward=True, color=i) for i, b in enumerate(backward)]
        edges += [Edge(s + i + 1, s + i) for i in range(s - 1)]
        edges += [Edge(i, s + i, size=activation) for i in range(s)]
    workload = Workload(Graph(nodes, edges), paper_devices(s, 1, capacity))
    return workload, Split.from_lists({ACCELERATOR: [[i] for i in range(s)]})


def all_supported(workload: Workload) -> Workload:
    """The same workload with every node allowed on accelerators (random splits ignore support)."""
    nodes = [dataclasses.replace(v, unsupported=frozenset()) for v in workload.graph.nodes.values()]
    return dataclasses.replace(workload, graph=Graph(nodes, workload.graph.edges))


def by_colour_class(workload: Workload, home: dict[int, int]) -> Split:
    """Each forward node on the accelerator ``home`` gives the first forward node of its colour class."""
    g = workload.graph
    first = {}
    for v in g.forward_nodes:
        first.setdefault(g.color_class(v), home[v])
    where = {v: first[g.color_class(v)] for v in g.forward_nodes}
    return Split.from_lists({ACCELERATOR: [[v for v in where if where[v] == d] for d in sorted(set(where.values()))]})


def topological_chunks(workload: Workload, cuts: list[int]) -> Split:
    """Cut the forward topological order at ``cuts`` (one accelerator per piece), then keep colour
    classes whole: contiguous unless a colour class straddles a cut."""
    order = [v for v in workload.graph.topological_order if not workload.graph.nodes[v].is_backward]
    bounds = sorted({min(max(c, 0), len(order)) for c in cuts})
    return by_colour_class(workload, {v: sum(i >= b for b in bounds) for i, v in enumerate(order)})
