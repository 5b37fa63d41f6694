"""The operator graph: a DAG of operators with per-device-class costs.

This is the model of docs/model.md §2 (Tarnawski et al., NeurIPS 2020, §3), generalised
to any number of device classes (docs/model.md §5):

* every node ``v`` has a compute time per device class (``time[cls]``), a
  memory footprint ``memory`` (bytes it takes on a device with finite memory),
  the set of device classes that cannot run it, a backward flag and a colour
  class (nodes sharing a colour class must share a device);
* every node ``u`` with out-edges has one transfer time per device class
  (``transfer[cls]``): the time a device of that class spends moving ``u``'s
  output to or from host memory.  A class absent from ``transfer`` pays
  nothing (the paper's CPU cores).

A :class:`Graph` is immutable once built and validated: duplicate ids, edges to
unknown nodes, self-loops, cycles, negative or non-finite numbers and edges
from a backward node to a forward node are rejected with a :class:`GraphError`
that names the offending id.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from pipesim.errors import GraphError

__all__ = ["Edge", "Graph", "GraphError", "Node"]




@dataclass(frozen=True, slots=True)
class Node:
    """One operator (or layer).

    ``time`` maps a device-class name to the node's compute time on one device
    of that class; a class missing from ``time`` cannot run the node.
    ``transfer`` maps a device-class name to the time that a device of that
    class spends writing this node's output to host memory or reading it back
    (docs/model.md §2.1: ``c(u)``); a class missing from ``transfer`` pays nothing.

    Parameters
    ----------
    id : int
    time : mapping of str to float
        Compute time per device class.
    memory : float
        Bytes the node takes on a device with finite memory.
    unsupported : frozenset of str
        Classes that cannot run the node even though ``time`` names them.
    transfer : mapping of str to float
        ``c(u)`` per device class.
    is_backward : bool
        Whether the node belongs to a training graph's backward pass.
    color_class : int, optional
        Nodes sharing a colour class share a device; ``None``: a class of its own.
    name : str, optional
    layer_id : int, optional
        Used by the DP's optional layer fusion (docs/model.md §3).
    flops : float, optional
        Informative (generated workloads keep it).

    Examples
    --------
    >>> node = Node(1, {"accelerator": 2.0, "cpu": 20.0}, memory=1e6, unsupported=frozenset({"cpu"}))
    >>> node.supports("accelerator"), node.supports("cpu"), node.supports("tpu")
    (True, False, False)
    """

    id: int
    time: Mapping[str, float]
    memory: float = 0.0
    unsupported: frozenset[str] = frozenset()
    transfer: Mapping[str, float] = field(default_factory=dict)
    is_backward: bool = False
    color_class: int | None = None
    name: str | None = None
    layer_id: int | None = None
    flops: float | None = None
    #: generated workloads: per class, the node's kernels as ``(launch, compute, memory, repeat)`` in the
    #: time unit (the roofline before its max), so compute and memory-bandwidth edits re-price it exactly
    kernels: Mapping[str, tuple[tuple[float, float, float, float], ...]] | None = None

    def supports(self, device_class: str) -> bool:
        """Whether a device of ``device_class`` can run the node (a time given, not unsupported)."""
        return device_class in self.time and device_class not in self.unsupported


@dataclass(frozen=True, slots=True)
class Edge:
    """A data dependency ``source -> dest``; ``size`` is the tensor's bytes.

    The transfer cost is the source node's (:attr:`Node.transfer`), not the
    edge's; ``size`` is used by the simulator's bandwidth links and memory
    estimate.

    Examples
    --------
    >>> Edge(1, 2, size=4096.0)
    Edge(source=1, dest=2, size=4096.0)
    """

    source: int
    dest: int
    size: float | None = None


def _check_number(value: float, what: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise GraphError(f"{what} must be a number, got {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise GraphError(f"{what} must be a finite non-negative number, got {value!r}")


class Graph:
    """A validated DAG of :class:`Node` objects joined by :class:`Edge` objects.

    Node ids are kept in input order; ``topological_order`` is deterministic.
    Parallel edges are kept once.

    Parameters
    ----------
    nodes : iterable of Node
    edges : iterable of Edge

    Raises
    ------
    GraphError
        Duplicate ids, edges to unknown nodes, self-loops, cycles, negative or
        non-finite numbers, or an edge from a backward node to a forward node;
        the message names the culprit.

    Examples
    --------
    >>> g = Graph([Node(1, {"accelerator": 2.0}, memory=1.0, transfer={"accelerator": 0.5}),
    ...            Node(2, {"accelerator": 1.0}, memory=1.0),
    ...            Node(3, {"accelerator": 1.0})], [Edge(1, 2), Edge(1, 3)])
    >>> g
    Graph(3 nodes, 2 edges)
    >>> g.topological_order, g.successors(1), g.predecessors(3)
    ([1, 2, 3], [2, 3], [1])
    >>> g.total_time("accelerator"), g.total_memory, g.is_training
    (4.0, 2.0, False)
    >>> Graph([Node(1, {"cpu": 1.0}), Node(2, {"cpu": 1.0})], [Edge(1, 2), Edge(2, 1)])
    Traceback (most recent call last):
    ...
    pipesim.errors.GraphError: graph has a cycle: 1 -> 2 -> 1
    """

    def __init__(self, nodes: Iterable[Node], edges: Iterable[Edge]):
        self.nodes: dict[int, Node] = {}
        for node in nodes:
            if node.id in self.nodes:
                raise GraphError(f"node {node.id}: duplicate node id")
            for cls, value in node.time.items():
                _check_number(value, f"node {node.id}: time on {cls!r}")
            for cls, value in node.transfer.items():
                _check_number(value, f"node {node.id}: transfer time on {cls!r}")
            _check_number(node.memory, f"node {node.id}: memory")
            if node.flops is not None:
                _check_number(node.flops, f"node {node.id}: flops")
            self.nodes[node.id] = node

        seen: set[tuple[int, int]] = set()
        self.edges: list[Edge] = []
        for edge in edges:
            for end in (edge.source, edge.dest):
                if end not in self.nodes:
                    raise GraphError(f"edge {edge.source} -> {edge.dest}: unknown node id {end}")
            if edge.source == edge.dest:
                raise GraphError(f"edge {edge.source} -> {edge.dest}: self-loop")
            if edge.size is not None:
                _check_number(edge.size, f"edge {edge.source} -> {edge.dest}: size")
            if self.nodes[edge.source].is_backward and not self.nodes[edge.dest].is_backward:
                raise GraphError(
                    f"edge {edge.source} -> {edge.dest}: goes from backward node "
                    f"{edge.source} to forward node {edge.dest}"
                )
            if (edge.source, edge.dest) not in seen:  # parallel edges carry nothing new
                seen.add((edge.source, edge.dest))
                self.edges.append(edge)

        self.dag = nx.DiGraph()
        self.dag.add_nodes_from(self.nodes)
        self.dag.add_edges_from((e.source, e.dest) for e in self.edges)
        if not nx.is_directed_acyclic_graph(self.dag):  # fast; find_cycle only to name the cycle
            cycle = nx.find_cycle(self.dag)
            path = " -> ".join(str(u) for u, _ in cycle) + f" -> {cycle[0][0]}"
            raise GraphError(f"graph has a cycle: {path}")

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self.nodes == other.nodes and set(self.edges) == set(other.edges)

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, {len(self.edges)} edges)"

    def successors(self, v: int) -> list[int]:
        """The nodes ``v`` has an edge to."""
        return list(self.dag.successors(v))

    def predecessors(self, v: int) -> list[int]:
        """The nodes with an edge to ``v``."""
        return list(self.dag.predecessors(v))

    @cached_property
    def topological_order(self) -> list[int]:
        """Every node, predecessors first; ties in input order (deterministic)."""
        index = {v: i for i, v in enumerate(self.nodes)}
        return list(nx.lexicographical_topological_sort(self.dag, key=index.__getitem__))

    @cached_property
    def device_classes(self) -> frozenset[str]:
        """Every device-class name that some node gives a time for."""
        return frozenset(cls for node in self.nodes.values() for cls in node.time)

    @cached_property
    def forward_nodes(self) -> list[int]:
        """The nodes that are not backward, in input order."""
        return [v for v, node in self.nodes.items() if not node.is_backward]

    @cached_property
    def backward_nodes(self) -> list[int]:
        """The backward nodes, in input order."""
        return [v for v, node in self.nodes.items() if node.is_backward]

    @property
    def is_training(self) -> bool:
        """Whether the graph has backward nodes (docs/model.md §2.4)."""
        return bool(self.backward_nodes)

    def color_class(self, v: int) -> Hashable:
        """The colour class of ``v``; a node without one is a class of its own."""
        node = self.nodes[v]
        return node.color_class if node.color_class is not None else ("node", v)

    @cached_property
    def color_classes(self) -> dict[Hashable, list[int]]:
        """Colour class -> its nodes (see :meth:`color_class`), in input order."""
        classes: dict[Hashable, list[int]] = {}
        for v in self.nodes:
            classes.setdefault(self.color_class(v), []).append(v)
        return classes

    def total_time(self, device_class: str) -> float:
        """Total compute of the graph on one device of ``device_class``."""
        return sum(node.time.get(device_class, math.inf) for node in self.nodes.values())

    @property
    def total_memory(self) -> float:
        """The bytes of all nodes together."""
        return sum(node.memory for node in self.nodes.values())
