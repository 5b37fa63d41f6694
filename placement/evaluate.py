"""The one cost model: the load of every device under a split (docs/model.md §2.3).

Every solver, baseline, report and the simulator's prediction uses
:func:`evaluate`.  For a device ``d`` of class ``K`` (the paper's "calls"
model: communication does not overlap compute)::

    load(d) = Σ_{v on d} time_K(v)
            + Σ_{u on d, some successor of u not on d} transfer_K(u)   (send, once per u)
            + Σ_{u not on d, some successor of u on d} transfer_K(u)   (receive, once per u and d)

A class that gives no transfer time for ``u`` (the paper's CPU cores) pays
nothing for it.  max-load is the largest load; for training graphs a device's
load holds both its forward and its backward work.

The evaluation also lists what makes a split infeasible (split colour classes,
unsupported nodes, memory over capacity, too many devices) and whether each
device's forward set is contiguous: ``S`` is contiguous iff no path of the
forward graph leaves ``S`` and re-enters it (docs/model.md §2.7).

Per-device contiguity does not make a pipeline: devices X = {a, b} and
Y = {c, d} with edges a -> d and c -> b are each contiguous, yet X feeds Y and
Y feeds X.  A *split* is contiguous when its stage graph (devices, joined by
the forward edges between them) is acyclic; then the unions of its stages in
pipeline order are ideals, which is exactly the family the DP searches, and
every device is contiguous too.  ``stage_order`` gives that pipeline order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import networkx as nx

from pipesim.hardware.units import format_bytes
from pipesim.placement.devices import DeviceClass
from pipesim.placement.graph import Graph
from pipesim.placement.split import Split, SplitError, complete_split

__all__ = ["DeviceLoad", "SplitEvaluation", "evaluate", "is_contiguous", "stage_order"]


@dataclass(frozen=True)
class DeviceLoad:
    """What one device runs and what that costs it per sample (docs/model.md §2.3).

    Attributes
    ----------
    device_class, index : str, int
        The device (:attr:`name` is ``class[index]``).
    nodes : tuple of int
        Its nodes, sorted.
    compute, send, receive : float
        Compute time (``forward_compute + backward_compute``), and the
        transfers it sends and receives; :attr:`load` is their sum.
    memory, capacity : float
        Bytes of its nodes, and the class's capacity.
    contiguous : bool
        Whether its forward nodes form a contiguous set.
    """

    device_class: str
    index: int
    nodes: tuple[int, ...]
    compute: float
    send: float
    receive: float
    memory: float
    capacity: float
    contiguous: bool
    forward_compute: float = 0.0
    backward_compute: float = 0.0

    @property
    def name(self) -> str:
        """``class[index]``, e.g. ``accelerator[0]``."""
        return f"{self.device_class}[{self.index}]"

    @property
    def load(self) -> float:
        """Time per sample on this device: compute + send + receive."""
        return self.compute + self.send + self.receive

    def to_dict(self) -> dict:
        """JSON-ready fields, with ``load``; an unlimited capacity is ``None``."""
        return {
            "device": self.name,
            "device_class": self.device_class,
            "index": self.index,
            "nodes": list(self.nodes),
            "compute": self.compute,
            "forward_compute": self.forward_compute,
            "backward_compute": self.backward_compute,
            "send": self.send,
            "receive": self.receive,
            "load": self.load,
            "memory": self.memory,
            "capacity": None if math.isinf(self.capacity) else self.capacity,
            "contiguous": self.contiguous,
        }


@dataclass(frozen=True)
class SplitEvaluation:
    """Per-device loads of a (completed) split, its max-load and its violations.

    Attributes
    ----------
    split : Split
        The split, completed (every node placed).
    devices : tuple of DeviceLoad
        One per device the split lists, empty ones included.
    violations : tuple of str
        What makes the split infeasible (docs/model.md §2.2); empty if nothing.
    stage_order : tuple of str or None
        The non-empty devices in pipeline order, ``None`` when the stage graph
        has a cycle (docs/model.md §2.7).
    """

    split: Split
    devices: tuple[DeviceLoad, ...]
    violations: tuple[str, ...] = field(default=())
    stage_order: tuple[str, ...] | None = None

    @property
    def max_load(self) -> float:
        """The largest device load: the predicted time per sample."""
        return max((d.load for d in self.devices), default=0.0)

    @property
    def feasible(self) -> bool:
        """Whether nothing is violated."""
        return not self.violations

    @property
    def contiguous(self) -> bool:
        """Whether the split is a pipeline: its stage graph is acyclic (see module docstring)."""
        return self.stage_order is not None

    @property
    def bottleneck(self) -> DeviceLoad | None:
        """A most-loaded device (the first), ``None`` without devices."""
        return max(self.devices, key=lambda d: d.load, default=None)

    def to_dict(self) -> dict:
        """JSON-ready: ``max_load``, ``feasible``, ``contiguous``, ``violations``, ``stage_order``, ``devices``."""
        return {
            "max_load": self.max_load,
            "feasible": self.feasible,
            "contiguous": self.contiguous,
            "violations": list(self.violations),
            "stage_order": None if self.stage_order is None else list(self.stage_order),
            "devices": [d.to_dict() for d in self.devices],
        }


def is_contiguous(graph: Graph, nodes: frozenset[int] | set[int]) -> bool:
    """Whether the forward nodes of ``nodes`` form a contiguous set.

    Walks forward from the set's out-neighbours through forward nodes outside
    the set; reaching the set again means a path leaves and re-enters it.

    Parameters
    ----------
    graph : Graph
    nodes : set of int
        Backward nodes among them are ignored.

    Returns
    -------
    bool

    Examples
    --------
    >>> from pipesim.placement.graph import Edge, Graph, Node
    >>> g = Graph([Node(v, {"cpu": 1.0}) for v in (1, 2, 3)], [Edge(1, 2), Edge(2, 3)])
    >>> is_contiguous(g, {1, 2}), is_contiguous(g, {1, 3})
    (True, False)
    """
    inside = {v for v in nodes if not graph.nodes[v].is_backward}
    stack = [w for v in inside for w in graph.dag.successors(v) if w not in inside and not graph.nodes[w].is_backward]
    seen = set(stack)
    while stack:
        u = stack.pop()
        for w in graph.dag.successors(u):
            if graph.nodes[w].is_backward:
                continue
            if w in inside:
                return False
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return True


def evaluate(graph: Graph, devices: Sequence[DeviceClass], split: Split) -> SplitEvaluation:
    """Evaluate ``split`` on ``graph`` with the given device classes.

    Nodes the split omits are placed with their colour class (docs/model.md §2.2).
    ``pipesim.evaluate(workload, split)`` is this function for a workload.

    Parameters
    ----------
    graph : Graph
    devices : sequence of DeviceClass
    split : Split

    Returns
    -------
    SplitEvaluation
        Every device's compute, send, receive, load and memory, the max-load,
        the violations and the pipeline order.

    Raises
    ------
    SplitError
        The split cannot be read as a placement (unknown, repeated or
        unplaceable nodes, a device class the system lacks).

    Examples
    --------
    Three layers on two accelerators: the first sends its output once, the
    second device receives it once.

    >>> from pipesim.placement.devices import paper_devices
    >>> from pipesim.placement.graph import Edge, Graph, Node
    >>> from pipesim.placement.split import Split
    >>> g = Graph([Node(1, {"accelerator": 2.0}, transfer={"accelerator": 0.5}),
    ...            Node(2, {"accelerator": 1.0}, transfer={"accelerator": 0.5}),
    ...            Node(3, {"accelerator": 1.0})], [Edge(1, 2), Edge(2, 3)])
    >>> e = evaluate(g, paper_devices(2, 0, 10.0), Split.from_lists({"accelerator": [[1], [2, 3]]}))
    >>> [(d.name, d.compute, d.send, d.receive, d.load) for d in e.devices]
    [('accelerator[0]', 2.0, 0.5, 0.0, 2.5), ('accelerator[1]', 2.0, 0.0, 0.5, 2.5)]
    >>> e.max_load, e.feasible, e.stage_order
    (2.5, True, ('accelerator[0]', 'accelerator[1]'))
    """
    classes = {dc.name: dc for dc in devices}
    # An empty section for a class the system lacks ("cpus": [] beside a native split) places nothing.
    split = Split({k: v for k, v in split.assignment.items() if k in classes or any(v)})
    for name in split.assignment:
        if name not in classes:
            raise SplitError(f"the split uses device class {name!r}, which the system does not have "
                             f"(classes: {', '.join(classes)})")
    split = complete_split(graph, split)
    where = split.device_of()

    send: dict[tuple[str, int], float] = defaultdict(float)
    receive: dict[tuple[str, int], float] = defaultdict(float)
    for u in graph.nodes:
        home = where[u]
        targets = {where[w] for w in graph.dag.successors(u)}
        targets.discard(home)
        if not targets:
            continue
        transfer = graph.nodes[u].transfer
        send[home] += transfer.get(home[0], 0.0)
        for target in targets:
            receive[target] += transfer.get(target[0], 0.0)

    violations: list[str] = []
    loads: list[DeviceLoad] = []
    for name, index, nodes in split.devices():
        dc = classes[name]
        forward = backward = memory = 0.0
        for v in nodes:
            node = graph.nodes[v]
            if not node.supports(name):
                violations.append(f"node {v} is not supported on {name} but is placed on {name}[{index}]")
            t = node.time.get(name, math.inf)
            if node.is_backward:
                backward += t
            else:
                forward += t
            memory += node.memory
        if memory > dc.memory:
            violations.append(f"{name}[{index}] uses {format_bytes(memory)} of memory, more than its {format_bytes(dc.memory)}")
        loads.append(
            DeviceLoad(
                device_class=name,
                index=index,
                nodes=tuple(sorted(nodes)),
                compute=forward + backward,
                send=send[(name, index)],
                receive=receive[(name, index)],
                memory=memory,
                capacity=dc.memory,
                contiguous=is_contiguous(graph, nodes),
                forward_compute=forward,
                backward_compute=backward,
            )
        )

    for name, dc in classes.items():
        used = sum(1 for nodes in split.assignment.get(name, ()) if nodes)
        if used > dc.count:
            violations.append(f"the split uses {used} devices of class {name}, more than the {dc.count} available")
    for members in graph.color_classes.values():
        homes = {where[v] for v in members}
        if len(homes) > 1:
            spread = ", ".join(f"{n}[{i}]" for n, i in sorted(homes))
            violations.append(f"colour class of nodes {sorted(members)} is split over {spread}")
    return SplitEvaluation(
        split=split, devices=tuple(loads), violations=tuple(violations), stage_order=stage_order(graph, split)
    )


def stage_order(graph: Graph, split: Split) -> tuple[str, ...] | None:
    """Non-empty devices in pipeline order, or ``None`` if forward edges join them in a cycle.

    Parameters
    ----------
    graph : Graph
    split : Split
        Must place every node (see :func:`~pipesim.placement.split.complete_split`).

    Returns
    -------
    tuple of str or None
        Device names; ties in the split's order.

    Examples
    --------
    >>> from pipesim.placement.graph import Edge, Graph, Node
    >>> from pipesim.placement.split import Split
    >>> g = Graph([Node(v, {"cpu": 1.0}) for v in (1, 2, 3, 4)], [Edge(1, 4), Edge(3, 2)])
    >>> stage_order(g, Split.from_lists({"cpu": [[2, 4], [1, 3]]}))
    ('cpu[1]', 'cpu[0]')
    >>> stage_order(g, Split.from_lists({"cpu": [[1, 2], [3, 4]]})) is None   # each feeds the other
    True
    """
    where = split.device_of()
    stages = nx.DiGraph()
    names = {(name, i): f"{name}[{i}]" for name, i, nodes in split.devices() if nodes}
    stages.add_nodes_from(names)
    for e in graph.edges:
        if graph.nodes[e.source].is_backward or graph.nodes[e.dest].is_backward:
            continue
        a, b = where[e.source], where[e.dest]
        if a != b:
            stages.add_edge(a, b)
    position = {key: k for k, key in enumerate(names)}
    try:
        order = nx.lexicographical_topological_sort(stages, key=position.__getitem__)
        return tuple(names[key] for key in order)
    except nx.NetworkXUnfeasible:
        return None
