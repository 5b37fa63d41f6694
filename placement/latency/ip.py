"""The latency integer program (docs/model.md §4.4): optimal within the solver's gap.

Minimises latency over splits with at most ``q`` contiguous pieces per
device, memory counted per device, and never returns worse than its warm
start (the greedy's split by default).
"""

from __future__ import annotations

import time
from typing import Any

import networkx as nx
import pulp

from pipesim.errors import InputError, InternalError
from pipesim.placement.devices import CPU
from pipesim.placement.latency.greedy import accelerators, greedy_split
from pipesim.placement.latency.model import (
    Device,
    LatencyEvaluation,
    LatencyResult,
    PieceCycleError,
    capped,
    check_inference,
    latency_of_pieces,
    latency_of_split,
)
from pipesim.placement.mip_backend import DEFAULT_SOLVER, run_model, stop_message
from pipesim.placement.result import INFEASIBLE, INTERRUPTED, OPTIMAL, TIME_LIMIT
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload

__all__ = ["solve_latency_ip"]


class _LatencyModel:
    """The latency IP of the paper's §6 with ``q`` pieces ("slots") per device."""

    def __init__(self, workload: Workload, q: int, horizon: float):
        graph = workload.graph
        self.graph = graph
        self.q = q
        self.horizon = horizon
        self.problem = pulp.LpProblem("latency", pulp.LpMinimize)
        devices = accelerators(workload)
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

    Parameters
    ----------
    workload : Workload
        An inference graph; CPU cores are unlimited.
    q : int
        Contiguous pieces per accelerator (at least 1).
    solver : str
        The MILP backend (:data:`pipesim.placement.mip_backend.SOLVERS`).
    time_limit : float, optional
        Seconds.
    gap : float, optional
        Relative gap at which to stop.
    warm_start : Split, optional
        Default: the greedy's split.
    progress : bool
        Stream the solver's log to stderr.
    threads : int

    Returns
    -------
    LatencyResult
        With ``bound`` and ``gap``.

    Raises
    ------
    InputError
        A training graph, or ``q < 1``.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond(cpus=1, memory=2.0)   # two nodes fit on an accelerator
    >>> r = solve_latency_ip(w)
    >>> r.status, r.latency, round(r.bound, 6)
    ('optimal', 8.0, 8.0)
    """
    check_inference(workload.graph)
    workload = capped(workload)  # "maxFPGAs": 1e9 must not build a billion device slots
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
        except PieceCycleError:  # zero-length pieces ordered against their dependencies: re-cut instead
            schedule = latency_of_split(workload, split)
        if not schedule.feasible:
            raise InternalError(f"the latency IP's split violates the model: {schedule.evaluation.violations}")
        # integrality tolerance (1e-6) times the big-M can shave that much off the IP's objective
        tolerance = 1e-6 * max(1.0, abs(outcome.objective)) + 1e-5 * model.horizon
        if schedule.latency > outcome.objective + tolerance:
            raise InternalError(f"the schedule's latency {schedule.latency} exceeds the IP objective {outcome.objective}")
    if start is not None and (schedule is None or schedule.latency > start.latency):
        schedule = start
        stats["kept_warm_start"] = True
    status = OPTIMAL if outcome.status == "optimal" else INTERRUPTED if outcome.interrupted else TIME_LIMIT
    bound = None if outcome.bound is None or schedule is None else min(outcome.bound, schedule.latency)
    message = stop_message(outcome, schedule is not None, status == OPTIMAL, time_limit)
    return LatencyResult(method, status, schedule, bound=bound, seconds=time.perf_counter() - began,
                         stats=stats, message=message)
