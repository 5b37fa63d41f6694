"""Baseline: a PipeDream-style planner — biconnected components fused, then a chain.

Problem: PipeDream's planner (Narayanan et al., SOSP 2019) only splits a
*chain* of layers.  The paper (Tarnawski et al., NeurIPS 2020, §6; its code's
``dp.cpp -pipeDream``) emulates it on a general DAG by

1. fusing each biconnected component of the forward graph (taken as
   undirected, after colour-class contraction): for every biconnected
   component, the classes that are the *tail* of one of its edges become one
   class — so a fork-join block stays on one device while its sink, the
   articulation point that starts the next block, stays free;
2. linearising: adding ordering-only edges between consecutive classes of one
   topological order (depth-first: a branch's classes stay adjacent), so the
   only contiguous sets left are segments of that order;
3. running the exact DP (:func:`pipesim.placement.dp.solve_dp`) under these
   constraints, expressed through its ``fuse`` (forced co-location) and
   ``order`` (precedence that carries no data) options.

The DP charges communication on the original nodes and the returned split is
scored by the evaluator on the original graph, so the artificial edges cost
nothing.

``ignore_sources`` leaves the out-edges of the given nodes out of step 1: the
paper's code does so for input and zero-work layers that PipeDream's profiler
does not see (for its BERT-24 and GNMT files: nodes 4, and 2, 40, 46).

Guarantee: a contiguous split (each device a segment of the chain), so its
max-load is never below the DP's optimum; ``infeasible`` when no segmentation
of the chain satisfies memory and support.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable

import networkx as nx
from networkx.utils import UnionFind

from pipesim.placement.dp.solve import ProgressCallback, solve_dp
from pipesim.placement.graph import Graph
from pipesim.placement.result import FEASIBLE, OPTIMAL, PlacementResult
from pipesim.placement.workload import Workload

__all__ = ["chain_constraints", "solve_pipedream"]


def _fused_classes(graph: Graph, ignore_sources: Collection[int]) -> UnionFind:
    """Union-find over colour classes after step 1 and the fusion of any cycle it creates."""
    cls = graph.color_class
    fused = UnionFind(graph.color_classes)
    directed = {
        (cls(e.source), cls(e.dest))
        for e in graph.edges
        if e.source not in ignore_sources
        and not graph.nodes[e.source].is_backward
        and not graph.nodes[e.dest].is_backward
        and cls(e.source) != cls(e.dest)
    }
    for component in nx.biconnected_component_edges(nx.Graph(directed)):
        tails = [a for x, y in component for a, b in ((x, y), (y, x)) if (a, b) in directed]
        fused.union(*tails)
    # Fusing may close a cycle among classes: fuse every strongly connected component too.
    while True:
        g = _class_graph(graph, fused)
        cycles = [c for c in nx.strongly_connected_components(g) if len(c) > 1]
        if not cycles:
            return fused
        for component in cycles:
            fused.union(*component)


def _class_graph(graph: Graph, fused: UnionFind) -> nx.DiGraph:
    """The forward graph on fused classes (classes with forward nodes only)."""
    g = nx.DiGraph()
    g.add_nodes_from(fused[graph.color_class(v)] for v in graph.forward_nodes)
    for e in graph.edges:
        if not graph.nodes[e.dest].is_backward:
            a, b = fused[graph.color_class(e.source)], fused[graph.color_class(e.dest)]
            if a != b:
                g.add_edge(a, b)
    return g


def _depth_first_order(g: nx.DiGraph, rank: dict[Hashable, int]) -> list[Hashable]:
    """A topological order that, like the paper's, follows one branch to its end first."""
    indegree = {v: g.in_degree(v) for v in g}
    stack = sorted((v for v, d in indegree.items() if d == 0), key=rank.__getitem__, reverse=True)
    order = []
    while stack:
        v = stack.pop()
        order.append(v)
        for w in sorted(g.successors(v), key=rank.__getitem__, reverse=True):
            indegree[w] -= 1
            if indegree[w] == 0:
                stack.append(w)
    return order


def chain_constraints(
    graph: Graph, ignore_sources: Collection[int] = ()
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """The DP constraints that make ``graph`` a chain: ``(fuse groups, order edges)``.

    Fuse groups are lists of original nodes to co-locate (one per fused colour
    class); order edges join a forward node of each fused class to one of the
    next class in the chain.

    Parameters
    ----------
    graph : Graph
    ignore_sources : collection of int
        Nodes whose out-edges the fusion ignores.

    Returns
    -------
    (list of list of int, list of (int, int))
        For :func:`~pipesim.placement.dp.solve_dp`'s ``fuse`` and ``order``.

    Examples
    --------
    A fork-join block (1 -> 2, 3 -> 4) is fused up to its join node:

    >>> from pipesim.placement.examples import diamond
    >>> w = diamond()
    >>> chain_constraints(w.graph)
    ([[1, 2, 3]], [(1, 4)])
    """
    fused = _fused_classes(graph, set(ignore_sources))
    groups: dict[Hashable, list[int]] = {}
    for c, members in graph.color_classes.items():
        groups.setdefault(fused[c], []).append(members[0])
    first_forward: dict[Hashable, int] = {}
    for v in graph.forward_nodes:
        first_forward.setdefault(fused[graph.color_class(v)], v)
    position = {v: i for i, v in enumerate(graph.nodes)}
    rank = {c: position[v] for c, v in first_forward.items()}
    chain = _depth_first_order(_class_graph(graph, fused), rank)
    order = [(first_forward[a], first_forward[b]) for a, b in zip(chain, chain[1:])]
    return [g for g in groups.values() if len(g) > 1], order


def solve_pipedream(
    workload: Workload, *, ignore_sources: Collection[int] = (), progress: ProgressCallback | None = None
) -> PlacementResult:
    """The optimal split of the chain obtained by fusing biconnected components and linearising.

    Parameters
    ----------
    workload : Workload
    ignore_sources : collection of int
        Nodes whose out-edges the fusion ignores (input layers).
    progress : optional
        Handed to the DP.

    Returns
    -------
    PlacementResult
        ``feasible`` (optimal for the chain only, so no bound) or ``infeasible``.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond()
    >>> r = solve_pipedream(w)
    >>> r.status, r.max_load
    ('feasible', 5.0)
    """
    fuse, order = chain_constraints(workload.graph, ignore_sources)
    result = solve_dp(workload, fuse=fuse, order=order, progress=progress, method="pipedream")
    # Optimal for the chain, only a heuristic for the original graph.
    if result.status in (OPTIMAL, FEASIBLE):
        result.status = FEASIBLE
        result.message = "optimal for the chain (biconnected components fused, linearised), not for the graph"
    result.bound = None
    result.stats.update(fused_groups=len(fuse), chain_length=len(order) + 1 if order else 0)
    return result
