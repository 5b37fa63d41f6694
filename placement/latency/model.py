"""The latency model: one sample through an inference graph, of a given split (docs/model.md §4.4).

CPU cores (the class named ``cpu``) are unlimited and pay no transfers; every
other device runs contiguous *pieces* one after the other, each taking its
incoming transfers + compute + outgoing transfers; latency = the latest finish.
:func:`latency_of_split` is exact for the model; the greedy
(:mod:`~pipesim.placement.latency.greedy`) and the IP
(:mod:`~pipesim.placement.latency.ip`) search over splits with it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import networkx as nx

from pipesim.errors import InputError, PipesimError
from pipesim.placement.devices import CPU, cap_counts
from pipesim.placement.evaluate import SplitEvaluation, evaluate
from pipesim.placement.formats import split_to_json
from pipesim.placement.graph import Graph
from pipesim.placement.result import SolverResult
from pipesim.placement.split import Split, complete_split
from pipesim.placement.workload import Workload

__all__ = ["Device", "LatencyEvaluation", "LatencyResult", "Piece", "PieceCycleError", "contiguous_pieces",
           "latency_of_pieces", "latency_of_split"]


class PieceCycleError(PipesimError, ValueError):
    """Pieces of two devices feed each other in a cycle: no schedule runs them as whole pieces."""


Device = tuple[str, int]


@dataclass(frozen=True)
class Piece:
    """One contiguous subgraph run on a device: when it starts and what it costs.

    Attributes
    ----------
    device_class, index : str, int
        The device.
    order : int
        Its position among the device's pieces.
    nodes : tuple of int
    start : float
        When every node feeding it has finished (and the device's previous piece).
    receive, compute, send : float
        Its incoming transfers, compute and outgoing transfers;
        :attr:`finish` is ``start`` plus all three.
    """

    device_class: str
    index: int
    order: int
    nodes: tuple[int, ...]
    start: float
    receive: float
    compute: float
    send: float

    @property
    def finish(self) -> float:
        """When the piece, and each of its nodes, is done."""
        return self.start + self.receive + self.compute + self.send

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``device`` as ``class[index]`` and ``finish``."""
        return {
            "device": f"{self.device_class}[{self.index}]",
            "order": self.order,
            "nodes": list(self.nodes),
            "start": self.start,
            "receive": self.receive,
            "compute": self.compute,
            "send": self.send,
            "finish": self.finish,
        }


@dataclass(frozen=True)
class LatencyEvaluation:
    """The schedule of one sample: pieces, each node's finish time, the latency.

    Attributes
    ----------
    evaluation : SplitEvaluation
        Memory, support and colour classes of the split (CPU cores unlimited).
    pieces : tuple of Piece
        By start time.
    finish : mapping of int to float
        Every node's finish time.
    """

    evaluation: SplitEvaluation  # memory, support, colour classes (CPU cores unlimited)
    pieces: tuple[Piece, ...]
    finish: Mapping[int, float]

    @property
    def latency(self) -> float:
        """The latest finish."""
        return max(self.finish.values(), default=0.0)

    @property
    def feasible(self) -> bool:
        """Whether the split violates nothing (memory, support, colour classes)."""
        return self.evaluation.feasible


@dataclass(repr=False)
class LatencyResult(SolverResult):
    """A latency solver's answer (the latency twin of :class:`pipesim.placement.result.PlacementResult`).

    ``schedule`` is ``None`` only when no split was found; :attr:`latency` is
    then ``inf``.
    """

    objective_name: ClassVar[str] = "latency"

    schedule: LatencyEvaluation | None = None

    @property
    def latency(self) -> float:
        """The schedule's latency (``inf`` without one)."""
        return self.schedule.latency if self.schedule is not None else math.inf

    @property
    def objective(self) -> float:
        """The latency."""
        return self.latency

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``latency``, the common fields, and ``feasible``, ``violations``, ``pieces``, ``split``."""
        out: dict[str, Any] = {"latency": None if self.schedule is None else self.latency, **super().to_dict()}
        if self.schedule is not None:
            out["feasible"] = self.schedule.feasible
            out["violations"] = list(self.schedule.evaluation.violations)
            out["pieces"] = [p.to_dict() for p in self.schedule.pieces]
            split = split_to_json(self.schedule.evaluation)
            split.pop("maxLoad", None)
            out["split"] = split
        return out


def capped(workload: Workload) -> Workload:
    """``workload`` with device counts capped at its colour classes (more devices change no latency)."""
    return replace(workload, devices=cap_counts(workload.devices, len(workload.graph.color_classes)))


def check_inference(graph: Graph) -> None:
    """Raise :class:`InputError` when ``graph`` is a training graph (latency is for inference)."""
    if graph.is_training:
        raise InputError(None, "workload", "latency is defined for inference graphs; this one has backward nodes")


def unlimited_cpus(workload: Workload) -> tuple:
    """The workload's devices with as many CPU cores as nodes (the latency model's "unlimited").

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond(cpus=1, memory=2.0)   # two nodes fit on an accelerator
    >>> unlimited_cpus(w)[1]
    DeviceClass(name='cpu', count=4, memory=inf)
    """
    return tuple(replace(dc, count=max(dc.count, len(workload.graph))) if dc.name == CPU else dc for dc in workload.devices)


def contiguous_pieces(graph: Graph, nodes: frozenset[int] | set[int]) -> list[frozenset[int]]:
    """Cut ``nodes`` into contiguous pieces, in an order in which they can run.

    A node of the set lies in piece ``1 +`` (the most times a path into it
    left the set); a path that leaves piece ``k`` and comes back lands in a
    later piece, so every piece is contiguous, and edges only go to later or
    equal pieces.  A contiguous set stays one piece.

    Parameters
    ----------
    graph : Graph
    nodes : set of int

    Returns
    -------
    list of frozenset of int
        In an order in which they can run.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond(cpus=1, memory=2.0)   # two nodes fit on an accelerator
    >>> contiguous_pieces(w.graph, {1, 4})   # a path leaves after 1 and returns at 4
    [frozenset({1}), frozenset({4})]
    >>> contiguous_pieces(w.graph, {1, 2})
    [frozenset({1, 2})]
    """
    level: dict[int, int] = {}
    for v in graph.topological_order:
        preds = graph.predecessors(v)
        if v in nodes:
            level[v] = max([1] + [level[u] + (u not in nodes) for u in preds])
        else:
            level[v] = max([0] + [level[u] for u in preds])
    pieces: dict[int, set[int]] = {}
    for v in nodes:
        pieces.setdefault(level[v], set()).add(v)
    return [frozenset(pieces[k]) for k in sorted(pieces)]


def latency_of_pieces(
    workload: Workload, split: Split, pieces: Mapping[Device, Sequence[frozenset[int]]]
) -> LatencyEvaluation:
    """Schedule one sample when each non-CPU device runs the given pieces in the given order.

    ``pieces[(cls, i)]`` must partition device ``(cls, i)``'s nodes of
    ``split`` into contiguous sets.

    Parameters
    ----------
    workload : Workload
        An inference graph.
    split : Split
    pieces : mapping of (str, int) to sequence of frozenset of int
        For every non-CPU device, its pieces in the order it runs them.

    Returns
    -------
    LatencyEvaluation

    Raises
    ------
    PieceCycleError
        The pieces depend on each other in a cycle.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond(cpus=1, memory=2.0)   # two nodes fit on an accelerator
    >>> from pipesim.placement.split import Split
    >>> split = Split.from_lists({"accelerator": [[1, 4], [2, 3]]})
    >>> pieces = {("accelerator", 0): [frozenset({1}), frozenset({4})], ("accelerator", 1): [frozenset({2, 3})]}
    >>> latency_of_pieces(w, split, pieces).latency
    9.0
    """
    graph = workload.graph
    evaluation = evaluate(graph, unlimited_cpus(workload), split)
    block_of: dict[int, Hashable] = {v: ("node", v) for v in graph.nodes}
    order = nx.DiGraph()
    order.add_nodes_from(block_of.values())
    members: dict[Hashable, frozenset[int]] = {}
    for device, sets in pieces.items():
        previous = None
        for k, nodes in enumerate(sets):
            if not nodes:
                continue
            block = ("piece", device, k)
            members[block] = nodes
            order.add_node(block)
            for v in nodes:
                order.remove_node(("node", v))
                block_of[v] = block
            if previous is not None:
                order.add_edge(previous, block)  # a device runs its pieces one after another
            previous = block
    for e in graph.edges:
        a, b = block_of[e.source], block_of[e.dest]
        if a != b:
            order.add_edge(a, b)
    if not nx.is_directed_acyclic_graph(order):
        raise PieceCycleError("the pieces depend on each other in a cycle")

    finish: dict[int, float] = {}
    done: dict[Hashable, float] = {}
    scheduled: list[Piece] = []
    for block in nx.lexicographical_topological_sort(order, key=str):
        ready = max((done[p] for p in order.predecessors(block)), default=0.0)
        if block[0] == "node":
            v = block[1]
            done[block] = finish[v] = ready + graph.nodes[v].time[CPU]
            continue
        (cls, index), k = block[1], block[2]
        nodes = members[block]
        feeders = {u for v in nodes for u in graph.predecessors(v) if u not in nodes}
        senders = {u for u in nodes if any(w not in nodes for w in graph.successors(u))}
        piece = Piece(
            device_class=cls,
            index=index,
            order=k,
            nodes=tuple(sorted(nodes)),
            start=ready,
            receive=sum(graph.nodes[u].transfer.get(cls, 0.0) for u in feeders),
            compute=sum(graph.nodes[v].time.get(cls, math.inf) for v in nodes),
            send=sum(graph.nodes[u].transfer.get(cls, 0.0) for u in senders),
        )
        scheduled.append(piece)
        done[block] = piece.finish
        finish.update({v: piece.finish for v in nodes})
    scheduled.sort(key=lambda p: (p.start, p.device_class, p.index, p.order))
    return LatencyEvaluation(evaluation, tuple(scheduled), finish)


def latency_of_split(workload: Workload, split: Split) -> LatencyEvaluation:
    """The latency of ``split``: each non-CPU device's nodes are cut into contiguous pieces first.

    Parameters
    ----------
    workload : Workload
        An inference graph.
    split : Split
        May omit nodes placed by their colour class.

    Returns
    -------
    LatencyEvaluation

    Raises
    ------
    InputError
        A training graph.
    SplitError
        The split cannot be evaluated.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond(cpus=1, memory=2.0)   # two nodes fit on an accelerator
    >>> from pipesim.placement.split import Split
    >>> e = latency_of_split(w, Split.from_lists({"accelerator": [[1, 4], [2, 3]]}))
    >>> [(p.index, p.nodes, p.start, p.finish) for p in e.pieces]
    [(0, (1,), 0.0, 2.5), (1, (2, 3), 2.5, 6.0), (0, (4,), 6.0, 9.0)]
    >>> e.latency, e.feasible
    (9.0, True)
    """
    graph = workload.graph
    check_inference(graph)
    split = complete_split(graph, split)
    pieces = {(cls, i): contiguous_pieces(graph, nodes) for cls, i, nodes in split.devices() if cls != CPU and nodes}
    try:
        return latency_of_pieces(workload, split, pieces)
    except PieceCycleError:  # pieces of different devices feed each other in a cycle
        return latency_of_pieces(workload, split, _pieces_by_device_changes(graph, split))


def _pieces_by_device_changes(graph: Graph, split: Split) -> dict[Device, list[frozenset[int]]]:
    """A finer cut that is always acyclic: a node's piece counts the device changes on paths into it.

    Edges never go to a lower count, and only stay at the same count within a
    device, so pieces of different devices cannot feed each other in a cycle.
    """
    where = split.device_of()
    level: dict[int, int] = {}
    for v in graph.topological_order:
        level[v] = max([0] + [level[u] + (where[u] != where[v]) for u in graph.predecessors(v)])
    pieces: dict[Device, dict[int, set[int]]] = {}
    for v, device in where.items():
        if device[0] != CPU:
            pieces.setdefault(device, {}).setdefault(level[v], set()).add(v)
    return {device: [frozenset(by_level[k]) for k in sorted(by_level)] for device, by_level in pieces.items()}

