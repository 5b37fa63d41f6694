"""Latency of inference: of a given split, by a greedy, and by an integer program (SPEC §4 "Latency").

Problem: one sample goes through an inference graph with nothing else in
flight; how long until every node is done?  The model (the paper's §6):

* CPU cores (the class named ``cpu``) are unlimited and pay no transfers: a
  CPU node finishes ``p_cpu(v)`` after its last predecessor;
* every other device runs contiguous *subgraphs* ("pieces"), one after the
  other.  A piece starts when every node outside it with an edge into it is
  done (and the device's previous piece is finished); it takes incoming
  transfers + compute + outgoing transfers, and all its nodes finish together;
* latency = the latest finish.

A split's accelerator sets need not be contiguous: :func:`contiguous_pieces`
cuts each into contiguous pieces first (a node's piece is one more than the
number of times a path into it left the set), as the paper's tooling does.
Contiguous pieces of two devices can still feed each other in a cycle
(``a -> d``, ``c -> b`` with ``{a, b}`` and ``{c, d}``), which no schedule can run
as whole pieces; such splits are cut at every change of device instead.

Guarantees: :func:`latency_of_split` is exact for the model;
:func:`solve_latency_greedy` is a heuristic (fill devices with the inseparable
blocks — colour classes fused with the cycles they create — in topological
order while memory allows; each device gets a consecutive run of blocks, hence
a contiguous set); :func:`solve_latency_ip` is optimal within the solver's gap
over splits with at most ``q`` pieces per device, memory counted per device,
and never returns worse than its warm start (the greedy's split by default).

Result shape: every function returns a :class:`LatencyResult` whose
``to_dict()`` has the top-level ``latency`` (seconds of the model's unit),
``bound``, ``gap``, ``status``, the ``pieces`` schedule and the ``split``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx
import pulp

from pipesim.placement.devices import CPU
from pipesim.placement.evaluate import SplitEvaluation, evaluate
from pipesim.placement.formats import InputError, split_to_json
from pipesim.placement.graph import Graph
from pipesim.placement.mip_backend import DEFAULT_SOLVER, run_model, stop_message
from pipesim.placement.result import (
    FEASIBLE,
    INFEASIBLE,
    OPTIMAL,
    TIME_LIMIT,
    SolverResult,
)
from pipesim.placement.split import Split, complete_split
from pipesim.placement.workload import Workload

__all__ = [
    "LatencyEvaluation",
    "LatencyResult",
    "Piece",
    "contiguous_pieces",
    "greedy_split",
    "latency_of_pieces",
    "latency_of_split",
    "solve_latency_greedy",
    "solve_latency_ip",
]

Device = tuple[str, int]


@dataclass(frozen=True)
class Piece:
    """One contiguous subgraph run on a device: when it starts and what it costs."""

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
        return self.start + self.receive + self.compute + self.send

    def to_dict(self) -> dict[str, Any]:
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
    """The schedule of one sample: pieces, each node's finish time, the latency."""

    evaluation: SplitEvaluation  # memory, support, colour classes (CPU cores unlimited)
    pieces: tuple[Piece, ...]
    finish: Mapping[int, float]

    @property
    def latency(self) -> float:
        return max(self.finish.values(), default=0.0)

    @property
    def feasible(self) -> bool:
        return self.evaluation.feasible


@dataclass
class LatencyResult(SolverResult):
    """A latency solver's answer (the latency twin of :class:`pipesim.placement.result.PlacementResult`)."""

    schedule: LatencyEvaluation | None = None

    @property
    def latency(self) -> float:
        return self.schedule.latency if self.schedule is not None else math.inf

    @property
    def objective(self) -> float:
        return self.latency

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"latency": None if self.schedule is None else self.latency, **super().to_dict()}
        if self.schedule is not None:
            out["feasible"] = self.schedule.feasible
            out["violations"] = list(self.schedule.evaluation.violations)
            out["pieces"] = [p.to_dict() for p in self.schedule.pieces]
            split = split_to_json(self.schedule.evaluation)
            split.pop("maxLoad", None)
            out["split"] = split
        return out


# ----------------------------------------------------------------- the model
def _check_inference(graph: Graph) -> None:
    if graph.is_training:
        raise InputError(None, "workload", "latency is defined for inference graphs; this one has backward nodes")


def _unlimited_cpus(workload: Workload) -> tuple:
    """The workload's devices with as many CPU cores as nodes (the latency model's "unlimited")."""
    return tuple(replace(dc, count=max(dc.count, len(workload.graph))) if dc.name == CPU else dc for dc in workload.devices)


def contiguous_pieces(graph: Graph, nodes: frozenset[int] | set[int]) -> list[frozenset[int]]:
    """Cut ``nodes`` into contiguous pieces, in an order in which they can run.

    A node of the set lies in piece ``1 +`` (the most times a path into it
    left the set); a path that leaves piece ``k`` and comes back lands in a
    later piece, so every piece is contiguous, and edges only go to later or
    equal pieces.  A contiguous set stays one piece.
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
    ``split`` into contiguous sets.  Raises ``ValueError`` if the pieces
    depend on each other in a cycle.
    """
    graph = workload.graph
    evaluation = evaluate(graph, _unlimited_cpus(workload), split)
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
        raise ValueError("the pieces depend on each other in a cycle")

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
    """The latency of ``split``: each non-CPU device's nodes are cut into contiguous pieces first."""
    graph = workload.graph
    _check_inference(graph)
    split = complete_split(graph, split)
    pieces = {(cls, i): contiguous_pieces(graph, nodes) for cls, i, nodes in split.devices() if cls != CPU and nodes}
    try:
        return latency_of_pieces(workload, split, pieces)
    except ValueError:  # pieces of different devices feed each other in a cycle
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


# ------------------------------------------------------------------ greedy
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


def _accelerators(workload: Workload) -> list[tuple[Device, float]]:
    return [((dc.name, i), dc.memory) for dc in workload.devices if dc.name != CPU for i in range(dc.count)]


def greedy_split(workload: Workload) -> Split | None:
    """Fill devices in order with consecutive blocks; a block no device can take goes to the CPUs."""
    graph = workload.graph
    has_cpu = any(dc.name == CPU for dc in workload.devices)
    devices = _accelerators(workload)
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
    """The paper's latency greedy (heuristic); status ``feasible`` or ``infeasible``."""
    _check_inference(workload.graph)
    start = time.perf_counter()
    split = greedy_split(workload)
    if split is None:
        return LatencyResult("latency-greedy", INFEASIBLE, None, seconds=time.perf_counter() - start,
                             message="some inseparable block fits on no device (support or memory)")
    schedule = latency_of_split(workload, split)
    return LatencyResult("latency-greedy", FEASIBLE, schedule, seconds=time.perf_counter() - start)


# -------------------------------------------------------------- latency IP
class _LatencyModel:
    """The latency IP of the paper's §6 with ``q`` pieces ("slots") per device."""

    def __init__(self, workload: Workload, q: int, horizon: float):
        graph = workload.graph
        self.graph = graph
        self.q = q
        self.horizon = horizon
        self.problem = pulp.LpProblem("latency", pulp.LpMinimize)
        devices = _accelerators(workload)
        self.slots: list[tuple[Device, int]] = [(d, j) for d, _ in devices for j in range(q)]
        has_cpu = any(dc.name == CPU for dc in workload.devices)
        ids = {v: n for n, v in enumerate(graph.nodes)}
        self.unplaceable: list[int] = []

        self.x: dict[tuple[int, tuple[Device, int]], pulp.LpVariable] = {}
        self.host: dict[int, pulp.LpVariable] = {}
        for v, node in graph.nodes.items():
            options = []
            for s, ((cls, i), j) in enumerate(self.slots):
                if node.supports(cls) and node.memory <= workload.device_class(cls).memory:
                    options.append(self.x.setdefault((v, self.slots[s]), self.problem.add_variable(f"x_{ids[v]}_{s}", cat="Binary")))
            if has_cpu and node.supports(CPU):
                options.append(self.host.setdefault(v, self.problem.add_variable(f"h_{ids[v]}", cat="Binary")))
            if options:
                self.problem += pulp.lpSum(options) == 1
            else:
                self.unplaceable.append(v)

        for d, capacity in devices:
            here = [(graph.nodes[v].memory, var) for (v, (dev, _)), var in self.x.items() if dev == d]
            if sum(m for m, _ in here) > capacity:
                self.problem += pulp.lpSum(m * var for m, var in here) <= capacity

        # Colour classes: same device (any of its slots), or all on the CPUs.
        for members in graph.color_classes.values():
            for a, b in zip(members, members[1:]):
                self.problem += self.host.get(a, 0) == self.host.get(b, 0)
                for d, _ in devices:
                    self.problem += pulp.lpSum(self.at(a, (d, j)) for j in range(q)) == pulp.lpSum(
                        self.at(b, (d, j)) for j in range(q)
                    )

        self.finish_of = {v: self.problem.add_variable(f"L_{ids[v]}", lowBound=0) for v in graph.nodes}
        self.start: dict[tuple[Device, int], pulp.LpVariable] = {}
        self.end: dict[tuple[Device, int], pulp.LpVariable] = {}
        self.z: dict[tuple[int, tuple[Device, int]], pulp.LpVariable] = {}
        self.comm: dict[tuple[int, tuple[Device, int], str], pulp.LpVariable] = {}
        for s, slot in enumerate(self.slots):
            if not any(sl == slot for _, sl in self.x):
                continue
            cls = slot[0][0]
            start = self.start[slot] = self.problem.add_variable(f"start_{s}", lowBound=0)
            end = self.end[slot] = self.problem.add_variable(f"end_{s}", lowBound=0)
            for v in graph.nodes:  # contiguity of the slot
                z = self.z[v, slot] = self.problem.add_variable(f"z_{ids[v]}_{s}", lowBound=0, upBound=1)
                if (v, slot) in self.x:
                    self.problem += z >= self.x[v, slot]
            load = []
            for e in graph.edges:
                u, v = e.source, e.dest
                self.problem += self.z[v, slot] <= self.z[u, slot]
                self.problem += self.z[v, slot] <= self.at(v, slot) - self.at(u, slot) + 1
                # a slot starts once every node feeding it is done (big-M linearisation)
                self.problem += start >= self.finish_of[u] - horizon * (1 - self.at(v, slot) + self.at(u, slot))
            for u, node in graph.nodes.items():
                cost = node.transfer.get(cls, 0.0)
                if (u, slot) in self.x:
                    load.append(node.time[cls] * self.x[u, slot])
                    self.problem += self.finish_of[u] >= end - horizon * (1 - self.x[u, slot])
                if cost <= 0 or not graph.successors(u):
                    continue
                for kind, sign in (("in", 1), ("out", -1)):
                    terms = [sign * (self.at(v, slot) - self.at(u, slot)) for v in graph.successors(u)]
                    if all(isinstance(t, int) for t in terms):
                        continue
                    var = self.comm[u, slot, kind] = self.problem.add_variable(f"{kind}_{ids[u]}_{s}", lowBound=0)
                    for t in terms:
                        self.problem += var >= t
                    load.append(cost * var)
            self.problem += end == start + pulp.lpSum(load)
            if slot[1] > 0 and (slot[0], slot[1] - 1) in self.end:
                self.problem += start >= self.end[slot[0], slot[1] - 1]  # one piece after another

        for v, node in graph.nodes.items():
            cpu_time = node.time.get(CPU, 0.0) * self.host[v] if v in self.host else 0
            self.problem += self.finish_of[v] >= cpu_time
            for u in graph.predecessors(v):
                self.problem += self.finish_of[v] >= self.finish_of[u] + cpu_time
        self.latency = self.problem.add_variable("latency", lowBound=0, upBound=horizon)
        for v in graph.nodes:
            self.problem += self.latency >= self.finish_of[v]
        # A valid cut that the big-M constraints hide from the LP: a path runs its nodes one after
        # another, so latency >= the sum of the path's compute times wherever they are placed.
        self.path: dict[int, pulp.LpVariable] = {}
        for v in graph.topological_order:
            node = graph.nodes[v]
            own = pulp.lpSum(node.time[slot[0][0]] * var for (u, slot), var in self.x.items() if u == v)
            if v in self.host:
                own += node.time[CPU] * self.host[v]
            path = self.path[v] = self.problem.add_variable(f"path_{ids[v]}", lowBound=0)
            self.problem += path >= own
            for u in graph.predecessors(v):
                self.problem += path >= self.path[u] + own
            self.problem += self.latency >= path
        self.problem += self.latency

    def at(self, v: int, slot: tuple[Device, int]):
        return self.x.get((v, slot), 0)

    def seed(self, schedule: LatencyEvaluation) -> bool:
        """Start from ``schedule`` if it has at most ``q`` pieces per device; say whether it did."""
        graph = self.graph
        slot_of: dict[int, tuple[Device, int]] = {}
        for piece in schedule.pieces:
            same = sorted(p.order for p in schedule.pieces if (p.device_class, p.index) == (piece.device_class, piece.index))
            j = same.index(piece.order)
            if j >= self.q:
                return False
            slot_of.update({v: ((piece.device_class, piece.index), j) for v in piece.nodes})
        if any((v, slot) not in self.x for v, slot in slot_of.items()):
            return False
        for (v, slot), var in self.x.items():
            var.setInitialValue(int(slot_of.get(v) == slot))
        for v, var in self.host.items():
            var.setInitialValue(int(v not in slot_of))
        for (v, slot), var in self.z.items():
            later = nx.descendants(graph.dag, v) | {v}
            var.setInitialValue(int(any(slot_of.get(w) == slot for w in later)))
        for (u, slot, kind), var in self.comm.items():
            inside = slot_of.get(u) == slot
            reached = [slot_of.get(v) == slot for v in graph.successors(u)]
            var.setInitialValue(int(inside and not all(reached)) if kind == "out" else int(not inside and any(reached)))
        starts = {((p.device_class, p.index), slot_of[p.nodes[0]][1]): p for p in schedule.pieces}
        for slot, var in self.start.items():
            previous = [p.finish for sl, p in starts.items() if sl[0] == slot[0] and sl[1] < slot[1]]
            var.setInitialValue(starts[slot].start if slot in starts else max(previous, default=0.0))
            self.end[slot].setInitialValue(starts[slot].finish if slot in starts else max(previous, default=0.0))
        for v, var in self.finish_of.items():
            var.setInitialValue(schedule.finish[v])
        for v in graph.topological_order:
            node = graph.nodes[v]
            own = node.time[slot_of[v][0][0]] if v in slot_of else node.time[CPU]
            self.path[v].setInitialValue(own + max((self.path[u].varValue for u in graph.predecessors(v)), default=0.0))
        self.latency.setInitialValue(schedule.latency)
        return True

    def extract(self, workload: Workload) -> tuple[Split, dict[Device, list[frozenset[int]]]]:
        """The split and, per device, its slots' node sets in slot order."""
        slot_sets: dict[tuple[Device, int], set[int]] = {}
        host: set[int] = set()
        for v in self.graph.nodes:
            options = [(var.value() or 0.0, slot) for (u, slot), var in self.x.items() if u == v]
            if v in self.host:
                options.append((self.host[v].value() or 0.0, None))
            _, best = max(options, key=lambda t: t[0])
            (host if best is None else slot_sets.setdefault(best, set())).add(v)
        lists: dict[str, list[set[int]]] = {dc.name: [set() for _ in range(dc.count)] for dc in workload.devices}
        pieces: dict[Device, list[frozenset[int]]] = {}
        for (device, j), nodes in sorted(slot_sets.items(), key=lambda t: (t[0][0], t[0][1])):
            lists[device[0]][device[1]] |= nodes
            pieces.setdefault(device, []).append(frozenset(nodes))
        if CPU in lists:
            lists[CPU] = [host]
        return Split.from_lists(lists), pieces


def _horizon(workload: Workload, start: LatencyEvaluation | None) -> float:
    """An upper bound on the optimal latency: the big-M of the start-time constraints."""
    if start is not None and start.feasible:
        return start.latency * (1 + 1e-6) + 1e-9
    graph = workload.graph
    slots = sum(dc.count for dc in workload.devices if dc.name != CPU)
    worst = sum(max(node.time.values(), default=0.0) for node in graph.nodes.values())
    worst += sum((1 + slots) * max(node.transfer.values(), default=0.0) for node in graph.nodes.values())
    return worst + 1.0


def solve_latency_ip(
    workload: Workload,
    *,
    q: int = 1,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = None,
    gap: float | None = None,
    warm_start: Split | None = None,
    progress: bool = False,
    threads: int = 1,
) -> LatencyResult:
    """Minimise latency over splits with at most ``q`` contiguous pieces per device.

    ``warm_start`` defaults to the greedy's split; the result is never worse
    than it.  Status ``optimal`` (within ``gap``), ``time_limit`` (best split
    when stopped) or ``infeasible``.
    """
    _check_inference(workload.graph)
    if q < 1:
        raise InputError(None, "q", f"must be at least 1, got {q}")
    began = time.perf_counter()
    method = f"latency-ip(q={q})"
    if warm_start is None:
        greedy = greedy_split(workload)
        start = latency_of_split(workload, greedy) if greedy is not None else None
    else:
        start = latency_of_split(workload, warm_start)
    if start is not None and not start.feasible:
        start = None
    model = _LatencyModel(workload, q, _horizon(workload, start))
    stats: dict[str, Any] = {"solver": solver, "q": q, "variables": len(model.problem.variables()),
                             "constraints": model.problem.numConstraints()}
    if model.unplaceable:
        return LatencyResult(method, INFEASIBLE, None, seconds=time.perf_counter() - began, stats=stats,
                             message=f"node {model.unplaceable[0]} can run on no device (support or memory)")
    seeded = start is not None and model.seed(start)
    stats["warm_start"] = start.latency if seeded else None
    outcome = run_model(model.problem, solver=solver, time_limit=time_limit, gap=gap, warm_start=seeded,
                        progress=progress, threads=threads)
    stats.update(solver_objective=outcome.objective, solver_bound=outcome.bound, interrupted=outcome.interrupted)
    if outcome.status == "infeasible":
        return LatencyResult(method, INFEASIBLE, None, seconds=time.perf_counter() - began, stats=stats,
                             message="no split fits the devices' memory with the support constraints")
    schedule = None
    if outcome.objective is not None:
        split, pieces = model.extract(workload)
        try:
            schedule = latency_of_pieces(workload, split, pieces)
        except ValueError:  # zero-length pieces ordered against their dependencies: re-cut instead
            schedule = latency_of_split(workload, split)
        assert schedule.feasible, f"the latency IP's split violates the model: {schedule.evaluation.violations}"
        # integrality tolerance (1e-6) times the big-M can shave that much off the IP's objective
        tolerance = 1e-6 * max(1.0, abs(outcome.objective)) + 1e-5 * model.horizon
        assert schedule.latency <= outcome.objective + tolerance, (
            f"the schedule's latency {schedule.latency} exceeds the IP objective {outcome.objective}"
        )
    if start is not None and (schedule is None or schedule.latency > start.latency):
        schedule = start
        stats["kept_warm_start"] = True
    status = OPTIMAL if outcome.status == "optimal" else TIME_LIMIT
    bound = None if outcome.bound is None or schedule is None else min(outcome.bound, schedule.latency)
    message = stop_message(outcome, schedule is not None, status == OPTIMAL, time_limit)
    return LatencyResult(method, status, schedule, bound=bound, seconds=time.perf_counter() - began,
                         stats=stats, message=message)
