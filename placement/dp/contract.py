"""Preparing a graph for the DP over ideals (docs/model.md §3; Tarnawski et al. 2020, §4 and App. B).

The DP works on a *contracted forward graph*: one super-node per colour class,
standing for the class's forward nodes together with their backward partners,
so that choosing a contiguous set of super-nodes places both.  The steps:

1. **Colour-class contraction.**  Nodes sharing a colour class become one
   super-node.  Communication is never charged on super-nodes: the DP keeps
   the map from original node to super-node and charges each *original*
   source node's transfer cost (docs/model.md §2.3).
2. **Orphan backward nodes.**  A class with backward nodes but no forward node
   gets an artificial forward super-node (zero cost), wired as the mirror image
   of the backward edges, so every backward node has a forward partner.
3. **Strongly connected components.**  Contraction can create cycles among
   forward super-nodes; every SCC is fused into one class.
4. **Zero-cost merging.**  A forward super-node with zero time on every class,
   no backward work, no edge to a backward node and exactly one forward
   neighbour is merged into that neighbour.  Moving such a node next to its
   only neighbour never raises a load nor breaks contiguity, so the merge is
   exact — provided memory and support cannot object: we merge only when the
   class holds no memory (or the whole graph fits in every memory-limited
   device) and the node is supported wherever its neighbour is.  The paper's
   code merges regardless (``merge="paper"``), and then misses the optimum
   when memory binds (docs/model.md §3, step 4).

Options: fusing all nodes sharing a ``layer_id`` (``fuse_layers``), fusing
given node groups (``fuse``) and adding ordering-only edges between forward
nodes (``order``), which carry no data; the PipeDream-style baseline uses the
last two.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import networkx as nx

from pipesim.errors import GraphError, InputError
from pipesim.placement.devices import DeviceClass
from pipesim.placement.graph import Graph

__all__ = ["ContractedGraph", "contract", "MERGE_MODES"]

MERGE_MODES = ("exact", "paper", "none")


class _UnionFind:
    def __init__(self, items: Iterable[Hashable]):
        self.parent = {x: x for x in items}

    def find(self, x: Hashable) -> Hashable:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


@dataclass(frozen=True)
class ContractedGraph:
    """The forward super-node DAG the DP enumerates ideals of.

    ``members[s]`` are the original nodes (forward and backward) of super-node
    ``s``; a super-node may have no forward member (an orphan's artificial
    partner).  ``super_of`` maps every original node to its super-node.
    ``edges`` are the super-node precedence edges (from forward data edges,
    orphan mirrors and ordering constraints); they form a DAG whose
    super-nodes are numbered in a topological order.

    Examples
    --------
    >>> c = ContractedGraph(members=((1, 2), (3,)), super_of={1: 0, 2: 0, 3: 1}, edges=((0, 1),))
    >>> len(c), c.predecessors()
    (2, [[], [0]])
    """

    members: tuple[tuple[int, ...], ...]
    super_of: dict[int, int]
    edges: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.members)

    def predecessors(self) -> list[list[int]]:
        """For every super-node, the super-nodes with an edge to it."""
        preds: list[list[int]] = [[] for _ in self.members]
        for a, b in self.edges:
            preds[b].append(a)
        return preds


def contract(
    graph: Graph,
    devices: Sequence[DeviceClass] = (),
    *,
    merge: str = "exact",
    fuse_layers: bool = False,
    fuse: Iterable[Iterable[int]] = (),
    order: Iterable[tuple[int, int]] = (),
) -> ContractedGraph:
    """Contract ``graph`` for the DP (steps 1–4 of the module docstring).

    Parameters
    ----------
    graph : Graph
    devices : sequence of DeviceClass
        Decide whether memory can ever bind (for exact merging) and which
        classes must support a merged node.
    merge : {"exact", "paper", "none"}
        Zero-cost merging (step 4): exact, the paper's (inexact when memory
        binds), or none.
    fuse_layers : bool
        Also fuse all nodes that share a ``layer_id``.
    fuse : iterable of iterables of int
        Groups of original nodes forced onto one device.
    order : iterable of (int, int)
        Extra precedence ``u -> v`` between forward nodes, carrying no data.

    Returns
    -------
    ContractedGraph

    Raises
    ------
    ValueError
        An unknown ``merge`` mode, or an ``order`` pair with a backward node.

    Examples
    --------
    A zero-cost input node that holds memory: merged only when memory can
    never bind (here 100 bytes per accelerator), always by the paper's rule.

    >>> from pipesim.placement.devices import paper_devices
    >>> from pipesim.placement.graph import Edge, Graph, Node
    >>> g = Graph([Node(0, {"accelerator": 0.0, "cpu": 0.0}, memory=5.0),
    ...            Node(1, {"accelerator": 2.0, "cpu": 20.0}),
    ...            Node(2, {"accelerator": 1.0, "cpu": 10.0})], [Edge(0, 1), Edge(1, 2)])
    >>> contract(g, paper_devices(2, 1, 100.0)).members
    ((0, 1), (2,))
    >>> contract(g, paper_devices(2, 1, 4.0)).members
    ((0,), (1,), (2,))
    >>> contract(g, paper_devices(2, 1, 4.0), merge="paper").members
    ((0, 1), (2,))
    """
    if merge not in MERGE_MODES:
        raise InputError(None, "merge", f"must be one of {', '.join(MERGE_MODES)}, got {merge!r}")
    uf = _UnionFind(graph.color_classes)  # union-find over colour classes
    if fuse_layers:
        first_of_layer: dict[int, Hashable] = {}
        for v, node in graph.nodes.items():
            if node.layer_id is not None:
                uf.union(graph.color_class(v), first_of_layer.setdefault(node.layer_id, graph.color_class(v)))
    for group in fuse:
        group = list(group)
        for v in group[1:]:
            uf.union(graph.color_class(v), graph.color_class(group[0]))
    order = list(order)
    for u, v in order:
        if graph.nodes[u].is_backward or graph.nodes[v].is_backward:
            raise GraphError(f"ordering constraint {u} -> {v} must join forward nodes")

    # Step 2's mirrored edges, recorded on original backward nodes so that they
    # follow every later fusion: backward edge ub -> vb gives forward vf -> uf.
    def has_forward(classes: dict[Hashable, list[int]], c: Hashable) -> bool:
        return any(not graph.nodes[v].is_backward for v in classes[c])

    def super_edges(cls_of) -> set[tuple[Hashable, Hashable]]:
        classes = _members(graph, cls_of)
        edges = set()
        for e in graph.edges:
            a, b = cls_of(e.source), cls_of(e.dest)
            if a == b:
                continue
            if not graph.nodes[e.source].is_backward and not graph.nodes[e.dest].is_backward:
                edges.add((a, b))
            elif graph.nodes[e.source].is_backward and graph.nodes[e.dest].is_backward:
                if not has_forward(classes, a) or not has_forward(classes, b):
                    edges.add((b, a))  # mirror for an orphan (step 2)
        edges.update((cls_of(u), cls_of(v)) for u, v in order if cls_of(u) != cls_of(v))
        return edges

    def cls_of(v: int) -> Hashable:
        return uf.find(graph.color_class(v))

    # Step 3: fuse strongly connected components until the super-graph is a DAG.
    while _fuse_cycles(graph, uf, cls_of, super_edges):
        pass

    # Step 4: zero-cost merging, repeated until nothing merges.
    if merge != "none":
        while _merge_zero_cost(graph, devices, uf, cls_of, super_edges, exact=(merge == "exact")):
            pass

    classes = _members(graph, cls_of)
    g = nx.DiGraph()
    g.add_nodes_from(classes)
    g.add_edges_from(super_edges(cls_of))
    position = {v: i for i, v in enumerate(graph.nodes)}
    # number super-nodes in a deterministic topological order
    topo = list(nx.lexicographical_topological_sort(g, key=lambda c: min(position[v] for v in classes[c])))
    index = {c: i for i, c in enumerate(topo)}
    members = tuple(tuple(sorted(classes[c], key=position.__getitem__)) for c in topo)
    super_of = {v: index[cls_of(v)] for v in graph.nodes}
    edges = tuple(sorted((index[a], index[b]) for a, b in g.edges))
    return ContractedGraph(members=members, super_of=super_of, edges=edges)


def _fuse_cycles(graph: Graph, uf: _UnionFind, cls_of, super_edges) -> bool:
    """One round of docs/model.md §3 step 3: fuse each strongly connected component; whether any fused."""
    g = nx.DiGraph()
    g.add_nodes_from({cls_of(v) for v in graph.nodes})
    g.add_edges_from(super_edges(cls_of))
    fused = False
    for component in nx.strongly_connected_components(g):
        if len(component) > 1:
            first, *rest = component
            for c in rest:
                uf.union(c, first)
            fused = True
    return fused


def _members(graph: Graph, cls_of) -> dict[Hashable, list[int]]:
    classes: dict[Hashable, list[int]] = {}
    for v in graph.nodes:
        classes.setdefault(cls_of(v), []).append(v)
    return classes


def _merge_zero_cost(graph, devices, uf, cls_of, super_edges, exact: bool) -> bool:
    """One round of docs/model.md §3 step 4; returns whether anything merged."""
    classes = _members(graph, cls_of)
    limits = [dc.memory for dc in devices if dc.count > 0 and not math.isinf(dc.memory)]
    memory_never_binds = not limits or graph.total_memory <= min(limits)
    neighbours: dict[Hashable, set[Hashable]] = {c: set() for c in classes}
    for a, b in super_edges(cls_of):
        neighbours[a].add(b)
        neighbours[b].add(a)
    touches_backward = set()
    for e in graph.edges:
        s, d = graph.nodes[e.source], graph.nodes[e.dest]
        if s.is_backward != d.is_backward:  # forward -> backward data edge
            touches_backward.add(cls_of(e.source))

    def zero(nodes) -> bool:
        return all(t == 0 for v in nodes for t in graph.nodes[v].time.values())

    def unsupported(c) -> set[str]:
        return {cls for v in classes[c] for cls in graph.nodes[v].unsupported} | {
            dc.name for v in classes[c] for dc in devices if dc.name not in graph.nodes[v].time
        }

    merged = False
    for c, nodes in classes.items():
        if len(neighbours[c]) != 1 or c in touches_backward or not zero(nodes):
            continue
        if not any(not graph.nodes[v].is_backward for v in nodes) and any(graph.nodes[v].is_backward for v in nodes):
            continue  # an orphan's class: its mirrored edges matter
        (m,) = neighbours[c]
        if exact:
            if not memory_never_binds and any(graph.nodes[v].memory > 0 for v in nodes):
                continue
            if not unsupported(c) <= unsupported(m):
                continue
        if uf.find(c) != uf.find(m):
            uf.union(c, m)
            merged = True
    return merged
