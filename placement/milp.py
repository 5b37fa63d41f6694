"""The throughput integer program: minimise max-load with a MILP solver (docs/model.md §4.3).

Problem: place every node on one device (any number of device classes,
``workload.devices``) so that the largest per-sample load (docs/model.md §2) is
minimal, optionally only over contiguous splits.

Formulation (the paper's §5 IP, generalised to device classes):

* one binary ``y[c][d]`` per colour class ``c`` and device ``d`` — substituting
  the class for its nodes keeps colour classes together by construction; the
  pair exists only if every node of ``c`` is supported on ``d``'s class and
  ``c`` fits in ``d``'s memory;
* memory knapsack per device of finite memory;
* contiguity (optional): ``z[v][d] >= x[v][d]``, and for each edge ``u -> v``
  between forward nodes ``z[v][d] <= z[u][d]``, ``z[v][d] <= x[v][d] - x[u][d] + 1``:
  once a path leaves ``d`` it never returns.  It applies to every device,
  CPU cores included, as in the DP; backward nodes follow their colour class.
  The paper's IP stops there, which admits devices feeding each other in a
  cycle; a pipeline (the DP's and the evaluator's "contiguous") needs an
  acyclic stage graph, so each device also gets a rank and an edge from
  ``d`` to ``d'`` forces ``rank(d) < rank(d')`` (big-M on the two placements);
* ``comm_out[u][d] >= x[u][d] - x[v][d]``, ``comm_in[u][d] >= x[v][d] - x[u][d]``
  per edge, only for devices whose class pays a transfer for ``u``
  (``u.transfer`` names that class);
* ``MaxLoad >= load(d)`` (forward plus backward work), or, with
  ``objective="diffmaxima"``, ``max_d FW(d) + max_d BW(d)`` (communication of a
  forward node counts as forward work, of a backward node as backward work);
* symmetry among identical devices of one class: HiGHS detects it itself
  (orbitopes) and explicit constraints only slow it down (bert24_inference:
  16 s to optimality without them, not proven in 30 s with them), so by
  default they are added for CBC only: colour classes are ranked in
  topological order, and class ``j`` may sit on device ``i`` of a class only
  if a class ranked before ``j`` sits on device ``i - 1``.

Guarantee: with status ``optimal`` the split is optimal within the relative
gap.  The reported max-load is always the evaluator's
(:func:`pipesim.placement.evaluate.evaluate`) on the extracted split: the IP's load
variables are upper bounds on the true loads, so the evaluator's max-load
never exceeds the IP objective (checked).  A warm start (e.g. the DP's split)
is handed to the solver, and kept if the solver finds nothing better in time;
without one, the latency greedy's split (memory-aware, one run of blocks per
device) is used when it is a valid start, so that stopping early still
returns a split.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Hashable

import networkx as nx
import pulp

from pipesim.errors import InputError, InternalError
from pipesim.placement.activations import in_flight, memory_in_flight, node_stash
from pipesim.placement.devices import cap_counts
from pipesim.placement.evaluate import SplitEvaluation, evaluate
from pipesim.placement.interrupt import INTERRUPTED, stop_raises, stop_requested
from pipesim.placement.latency import greedy_split
from pipesim.placement.mip_backend import (
    DEFAULT_SOLVER,
    NO_SOLUTION,
    MipOutcome,
    run_model,
    stop_message,
)
from pipesim.placement.result import FEASIBLE, INFEASIBLE, OPTIMAL, TIME_LIMIT, PlacementResult
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload

__all__ = ["OBJECTIVES", "solve_ip"]

OBJECTIVES = ("maxload", "diffmaxima")

Device = tuple[str, int]


class _Model:
    """The PuLP model and the variables needed to read a split back or seed a start."""

    def __init__(self, workload: Workload, contiguous: bool, objective: str, symmetry: bool, ranks: bool,
                 stash: dict[int, float] | None = None, charge: dict[Device, int] | None = None):
        graph = workload.graph
        stash, charge = stash or {}, charge or {}

        def need(v: int, d: Device) -> float:
            """Bytes of ``v`` on ``d``: its memory, plus its activations for the further microbatches in flight."""
            return graph.nodes[v].memory + (charge.get(d, 1) - 1) * stash.get(v, 0.0)

        self.graph = graph
        self.classes: dict[Hashable, list[int]] = graph.color_classes
        self.class_of = {v: graph.color_class(v) for v in graph.nodes}
        self.ids = {v: n for n, v in enumerate(graph.nodes)}  # variable names stay valid for any node id
        # each colour class takes one device, so devices beyond their number stay empty (cap_counts)
        usable = cap_counts(workload.devices, len(self.classes))
        self.devices: list[Device] = [(dc.name, i) for dc in usable for i in range(dc.count)]
        capacity = {dc.name: dc.memory for dc in workload.devices}
        self.problem = pulp.LpProblem("max_load", pulp.LpMinimize)
        self.unplaceable: list[Hashable] = []

        class_index = {c: n for n, c in enumerate(self.classes)}
        self.y: dict[tuple[Hashable, Device], pulp.LpVariable] = {}
        for c, members in self.classes.items():
            for n, d in enumerate(self.devices):
                if sum(need(v, d) for v in members) <= capacity[d[0]] and all(graph.nodes[v].supports(d[0]) for v in members):
                    self.y[c, d] = self.problem.add_variable(f"y_{class_index[c]}_{n}", cat="Binary")
            options = [self.y[c, d] for d in self.devices if (c, d) in self.y]
            if not options:
                self.unplaceable.append(c)
            else:
                self.problem += pulp.lpSum(options) == 1

        for d in self.devices:
            terms = [(need(v, d), self.x(v, d)) for v in graph.nodes]
            if sum(m for m, x in terms if not isinstance(x, int)) > capacity[d[0]]:
                self.problem += pulp.lpSum(m * x for m, x in terms) <= capacity[d[0]]

        self.z: dict[tuple[int, Device], pulp.LpVariable] = {}
        self.rank: dict[Device, pulp.LpVariable] = {}
        if contiguous:
            self._contiguity(ranks)

        self.comm_in: dict[tuple[int, Device], pulp.LpVariable] = {}
        self.comm_out: dict[tuple[int, Device], pulp.LpVariable] = {}
        forward: dict[Device, list] = {d: [] for d in self.devices}
        backward: dict[Device, list] = {d: [] for d in self.devices}
        for d in self.devices:
            for v, node in graph.nodes.items():
                x = self.x(v, d)
                if not isinstance(x, int):
                    (backward if node.is_backward else forward)[d].append(node.time[d[0]] * x)
            for u, node in graph.nodes.items():
                cost = node.transfer.get(d[0], 0.0)
                if cost > 0 and graph.successors(u):
                    comm = self._communication(u, d)
                    (backward if node.is_backward else forward)[d].append(cost * comm)

        self.loads = {d: (pulp.lpSum(forward[d]), pulp.lpSum(backward[d])) for d in self.devices}
        self.max_load = self.problem.add_variable("max_load", lowBound=0)
        self.fw_max = self.bw_max = None
        if objective == "maxload":
            for d in self.devices:
                self.problem += self.max_load >= pulp.lpSum(forward[d]) + pulp.lpSum(backward[d])
            self.problem += self.max_load
        else:
            self.fw_max = self.problem.add_variable("fw_max", lowBound=0)
            self.bw_max = self.problem.add_variable("bw_max", lowBound=0)
            for d in self.devices:
                self.problem += self.fw_max >= pulp.lpSum(forward[d])
                self.problem += self.bw_max >= pulp.lpSum(backward[d])
            self.problem += self.max_load == self.fw_max + self.bw_max
            self.problem += self.max_load

        if symmetry:
            self._break_symmetry()

    def x(self, v: int, d: Device):
        """``x[v][d]``: the colour class's variable, or the constant 0 where ``v`` cannot go."""
        return self.y.get((self.class_of[v], d), 0)

    def _break_symmetry(self) -> None:
        """Devices of one class are identical: fix their order among the permutations.

        Number colour classes by their first node in topological order.  Any
        split can be permuted so each class's devices are ordered by the lowest
        colour class they hold (empty devices last); so class ``j`` may sit on
        device ``i`` only if some class before ``j`` sits on device ``i - 1``.
        """
        order = {c: n for n, c in enumerate(dict.fromkeys(self.class_of[v] for v in self.graph.topological_order))}
        ranked = sorted(self.classes, key=order.__getitem__)
        for previous, d in zip(self.devices, self.devices[1:]):
            if previous[0] != d[0]:
                continue
            earlier: list[pulp.LpVariable] = []
            for c in ranked:
                if (c, d) in self.y:
                    self.problem += self.y[c, d] <= pulp.lpSum(earlier)
                if (c, previous) in self.y:
                    earlier.append(self.y[c, previous])

    def _contiguity(self, ranks: bool) -> None:
        graph = self.graph
        forward_edges = [
            (e.source, e.dest)
            for e in graph.edges
            if not graph.nodes[e.source].is_backward and not graph.nodes[e.dest].is_backward
        ]
        for n, d in enumerate(self.devices):
            if not any(dev == d for _, dev in self.y):
                continue
            for v in graph.forward_nodes:
                self.z[v, d] = self.problem.add_variable(f"z_{self.ids[v]}_{n}", lowBound=0, upBound=1)
                if not isinstance(self.x(v, d), int):
                    self.problem += self.z[v, d] >= self.x(v, d)
            for u, v in forward_edges:
                self.problem += self.z[v, d] <= self.z[u, d]
                self.problem += self.z[v, d] <= self.x(v, d) - self.x(u, d) + 1
        # Devices that are each contiguous can still feed each other in a cycle (a -> d, c -> b with
        # {a, b} and {c, d} on two devices); a pipeline needs an acyclic stage graph, which is what
        # the DP and the evaluator call contiguous.  Ranks: u on d feeding v on d' means rank d < rank d'.
        if not ranks:
            return
        n_devices = len(self.devices)
        self.rank = {d: self.problem.add_variable(f"rank_{n}", lowBound=0, upBound=n_devices - 1)
                     for n, d in enumerate(self.devices)}
        feeds = {(self.class_of[u], self.class_of[v]) for u, v in forward_edges} - {(c, c) for c in self.classes}
        for cu, cv in feeds:
            for d in self.devices:
                for d2 in self.devices:
                    if d2 != d and (cu, d) in self.y and (cv, d2) in self.y:
                        self.problem += self.rank[d2] >= self.rank[d] + 1 - n_devices * (
                            2 - self.y[cu, d] - self.y[cv, d2]
                        )

    def _communication(self, u: int, d: Device) -> pulp.LpAffineExpression:
        """``comm_in[u][d] + comm_out[u][d]``: 1 when ``u``'s output crosses ``d``'s boundary."""
        n = self.devices.index(d)
        xu = self.x(u, d)
        targets = {self.class_of[v] for v in self.graph.successors(u)} - {self.class_of[u]}
        total = pulp.LpAffineExpression()
        if not targets:
            return total
        if not isinstance(xu, int):
            out = self.comm_out[u, d] = self.problem.add_variable(f"out_{self.ids[u]}_{n}", lowBound=0)
            for c in targets:
                self.problem += out >= xu - self.y.get((c, d), 0)
            total += out
        receivers = [self.y[c, d] for c in targets if (c, d) in self.y]
        if receivers:
            into = self.comm_in[u, d] = self.problem.add_variable(f"in_{self.ids[u]}_{n}", lowBound=0)
            for y in receivers:
                self.problem += into >= y - xu
            total += into
        return total

    # ------------------------------------------------------------ warm start
    def seed(self, split: Split) -> None:
        """Give every variable its (tight) value under the feasible ``split``.

        Devices of a class are re-ordered by their first colour class to satisfy the symmetry
        breaking; auxiliaries get their smallest feasible values.
        """
        graph = self.graph
        device_of: dict[int, Device] = {}
        by_class: dict[str, list[frozenset[int]]] = {}
        for name, _, nodes in split.devices():
            by_class.setdefault(name, []).append(nodes)
        rank = {v: n for n, v in enumerate(graph.topological_order)}
        first = {c: min(rank[v] for v in members) for c, members in self.classes.items()}
        for name, sets in by_class.items():
            sets.sort(key=lambda s: min((first[self.class_of[v]] for v in s), default=math.inf))
            for i, nodes in enumerate(sets):
                device_of.update({v: (name, i) for v in nodes})
        for (c, d), var in self.y.items():
            var.setInitialValue(int(device_of[self.classes[c][0]] == d))
        # z[v, d]: some forward node at or after v is on d; the devices reachable from v, once per node
        # in reverse topological order (not one descendants() walk per variable)
        reach: dict[int, set[Device]] = {}
        for v in reversed(graph.topological_order):
            here = set() if graph.nodes[v].is_backward else {device_of[v]}
            reach[v] = here.union(*(reach[w] for w in graph.dag.successors(v)))
        for (v, d), var in self.z.items():
            var.setInitialValue(int(d in reach[v]))
        if self.rank:
            stages = nx.DiGraph()
            stages.add_nodes_from(self.devices)
            stages.add_edges_from(
                (device_of[e.source], device_of[e.dest])
                for e in graph.edges
                if device_of[e.source] != device_of[e.dest] and not graph.nodes[e.dest].is_backward
            )
            for position, d in enumerate(nx.topological_sort(stages)):
                self.rank[d].setInitialValue(position)
        for (u, d), var in self.comm_out.items():
            var.setInitialValue(int(device_of[u] == d and any(device_of[v] != d for v in graph.successors(u))))
        for (u, d), var in self.comm_in.items():
            var.setInitialValue(int(device_of[u] != d and any(device_of[v] == d for v in graph.successors(u))))
        fw = max((pulp.value(f) or 0.0 for f, _ in self.loads.values()), default=0.0)
        bw = max((pulp.value(b) or 0.0 for _, b in self.loads.values()), default=0.0)
        if self.fw_max is None:
            self.max_load.setInitialValue(max((pulp.value(f + b) or 0.0 for f, b in self.loads.values()), default=0.0))
        else:
            self.fw_max.setInitialValue(fw)
            self.bw_max.setInitialValue(bw)
            self.max_load.setInitialValue(fw + bw)

    def extract(self) -> Split:
        device_of = {}
        for c, members in self.classes.items():
            best = max((d for d in self.devices if (c, d) in self.y), key=lambda d: self.y[c, d].value() or 0.0)
            device_of.update({v: best for v in members})
        counts: dict[str, int] = {}
        for name, i in self.devices:
            counts[name] = max(counts.get(name, 0), i + 1)
        return Split.from_mapping(device_of, counts)


def _infeasibility(workload: Workload, model: _Model) -> str:
    """Why no placement exists, in words the user can act on."""
    graph = workload.graph
    if model.unplaceable:
        members = sorted(model.classes[model.unplaceable[0]])
        memory = sum(graph.nodes[v].memory for v in members)
        return (
            f"no device can hold nodes {members} (colour class using {memory:.6g} bytes): "
            "each device class either cannot run one of them or has too little memory"
        )
    finite = [dc for dc in workload.devices if math.isfinite(dc.memory)]
    summary = ", ".join(f"{dc.count} x {dc.name} of {dc.memory:.6g} bytes" for dc in finite)
    return (
        f"the nodes' memory ({graph.total_memory:.6g} bytes) cannot be packed onto the devices "
        f"({summary}) together with the support{' and contiguity' if model.z else ''} constraints"
    )


def _in_flight_needs(evaluation: SplitEvaluation, schedule: str, microbatches: int | None) -> dict[Device, int]:
    """Microbatches each used device holds under ``schedule`` at its place in the split's pipeline order
    (a split that is not a pipeline: the most any stage holds, on every device)."""
    used = [d for d in evaluation.devices if d.nodes]
    by_name = {d.name: (d.device_class, d.index) for d in used}
    order = [name for name in (evaluation.stage_order or ()) if name in by_name]
    if len(order) != len(used):
        worst = max(in_flight(schedule, q, len(used), microbatches) for q in range(len(used)))
        return {device: worst for device in by_name.values()}
    return {by_name[name]: in_flight(schedule, q, len(order), microbatches) for q, name in enumerate(order)}


def _holds(evaluation: SplitEvaluation, stash: dict[int, float] | None, schedule: str | None,
           microbatches: int | None) -> bool:
    """Whether every device of ``evaluation`` holds its activations in flight under ``schedule``."""
    if stash is None:
        return True
    needs = _in_flight_needs(evaluation, schedule, microbatches)
    return all(memory_in_flight(d.memory, sum(stash.get(v, 0.0) for v in d.nodes), needs[(d.device_class, d.index)])
               <= d.capacity * (1 + 1e-12) for d in evaluation.devices if d.nodes)


def _usable_start(workload: Workload, split: Split | None, contiguous: bool) -> SplitEvaluation | None:
    if split is None:
        return None
    evaluation = evaluate(workload.graph, workload.devices, split)
    if not evaluation.feasible or (contiguous and not evaluation.contiguous):
        return None
    return evaluation


def solve_ip(
    workload: Workload,
    *,
    contiguous: bool = True,
    objective: str = "maxload",
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = None,
    gap: float | None = None,
    warm_start: Split | None = None,
    progress: bool = False,
    threads: int = 1,
    symmetry: bool | None = None,
    schedule: str | None = None,
    microbatches: int | None = None,
) -> PlacementResult:
    """Minimise max-load (or ``max FW + max BW``) with a MILP solver; see the module docstring.

    ``symmetry``: add the symmetry-breaking constraints (default: for CBC
    only, see the module docstring).  The stage ranks are added lazily: the
    contiguous IP is first solved without them (a relaxation, so its bound is
    valid) and re-solved with them only if its split has a stage cycle.

    Returns status ``optimal`` (within ``gap``), ``time_limit`` (the best
    split found when the time limit stopped the search, with the solver's
    bound), ``interrupted`` (the same, stopped by Ctrl-C inside
    :func:`pipesim.placement.interrupt.interruptible` or by
    :func:`~pipesim.placement.interrupt.request_stop`; the split is the warm
    or greedy start if the solver had found nothing better, and ``None`` with
    a message if there was none) or ``infeasible`` (with a message saying why).

    ``schedule`` (default ``None``: the paper's static memory) makes the
    split hold the activations that schedule keeps in flight
    (:mod:`pipesim.placement.activations`).  The IP has no stage order, so
    each device is charged a number of microbatches in flight, first 1 (the
    static model); while the split's devices need more at their places in
    its pipeline, the class's largest needs are charged to its first devices
    (or, when that changes nothing, to the devices that overflowed) and the
    IP is solved again.  The split returned always holds its activations; it
    is ``optimal`` when the static optimum already did, otherwise
    ``feasible`` (not proven: the DP's ``schedule`` option is exact, and
    ``warm_start="dp"`` hands its split to the IP).
    The time limit and a stop request are honoured within about
    :data:`pipesim.placement.mip_backend.GRACE` seconds of the solver's run.
    """
    if objective not in OBJECTIVES:
        raise InputError(None, "objective", f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    began = time.perf_counter()
    method = "ip" if contiguous else "ip-noncontiguous"
    if symmetry is None:
        symmetry = solver != "highs"
    stash = node_stash(workload.graph) if schedule is not None else None
    if stash is not None and not any(stash.values()):
        stash = None  # nothing stashed: the static model is the same
    start = _usable_start(workload, warm_start, contiguous)
    if start is not None and not _holds(start, stash, schedule, microbatches):
        start = None  # a start must hold the in-flight activations too
    stats: dict = {"solver": solver, "contiguous": contiguous, "objective": objective,
                   "warm_start": None if warm_start is None else start is not None}
    if start is None:  # so that a stop before the first incumbent still returns a split
        # the greedy builds one list per device: give it only the devices a split can use
        capped = Workload(workload.graph, cap_counts(workload.devices, len(workload.graph.color_classes)), workload.source)
        start = _usable_start(workload, greedy_split(capped), contiguous)
        if start is not None and not _holds(start, stash, schedule, microbatches):
            start = None
        stats["greedy_start"] = None if start is None else start.max_load
    bound: float | None = None
    evaluation = None
    outcome = MipOutcome(solver, NO_SOLUTION, None, None, 0.0, interrupted=True)  # if stopped before solving
    # In-flight activations: the IP has no stage order, so each device is charged a number of microbatches
    # in flight, first 1 (the static model); a split whose devices hold more at their places in its pipeline
    # raises their charges and is solved again, until a split holds them (the charges only grow).
    charge: dict[Device, int] = {}
    while True:
        for ranks in ((False, True) if contiguous else (False,)):
            if stop_requested():  # Ctrl-C (see pipesim.placement.interrupt) while the start was being built
                break
            try:
                # building the model is seconds of pure Python with nothing to poll: with a start to give
                # back, a Ctrl-C raises at once and the start is the answer so far
                with stop_raises() if start is not None else contextlib.nullcontext():
                    # devices charged differently are no longer alike: no symmetry breaking among them
                    model = _Model(workload, contiguous, objective, symmetry and not charge, ranks, stash, charge)
                    stats.update(variables=len(model.problem.variables()), constraints=model.problem.numConstraints())
            except KeyboardInterrupt:
                if start is None or not stop_requested():
                    raise
                break
            if model.unplaceable:
                return PlacementResult(method, INFEASIBLE, None, seconds=time.perf_counter() - began,
                                       stats=stats, message=_infeasibility(workload, model))
            if stop_requested():  # ... or while the model was being built
                break
            if start is not None:
                model.seed(start.split)
            remaining = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - began))
            # a stop before the solver has its model returns no solution (interrupted): the start is the answer
            outcome = run_model(model.problem, solver=solver, time_limit=remaining, gap=gap,
                                warm_start=start is not None, progress=progress, threads=threads)
            # a terminal's Ctrl-C reaches CBC too: it may stop (and be read back) before this process saw it
            outcome.interrupted = outcome.interrupted or stop_requested()
            stats.update(solver_objective=outcome.objective, solver_bound=outcome.bound, interrupted=outcome.interrupted)
            if outcome.status == "infeasible":
                return PlacementResult(method, INFEASIBLE, None, seconds=time.perf_counter() - began, stats=stats,
                                       message=_infeasibility(workload, model))
            if outcome.bound is not None and objective == "maxload" and not charge:  # charged: not a relaxation
                bound = outcome.bound if bound is None else max(bound, outcome.bound)
            evaluation = None
            if outcome.objective is not None:
                evaluation = evaluate(workload.graph, workload.devices, model.extract())
                if not evaluation.feasible:
                    raise InternalError(f"the IP's split violates the model: {evaluation.violations}")
                tolerance = 1e-6 * max(1.0, abs(outcome.objective))
                # max over d of FW(d) + BW(d) <= max FW + max BW, and the IP's loads bound the true ones.
                if not evaluation.max_load <= outcome.objective + tolerance:
                    raise InternalError(
                        f"the evaluator's max-load {evaluation.max_load} exceeds the IP objective {outcome.objective}"
                    )
                if contiguous and not evaluation.contiguous:
                    if ranks:
                        raise InternalError("the contiguous IP with stage ranks returned a stage cycle")
                    stats["stage_cycle"] = True
                    evaluation = None  # not a pipeline: solve again with the ranks
                    if not outcome.interrupted and (time_limit is None or time_limit > time.perf_counter() - began):
                        continue
            break
        if stash is None or evaluation is None or _holds(evaluation, stash, schedule, microbatches):
            break
        # devices of a class are alike: charge the class's largest needs to its first devices, so that the
        # charges describe positions to fill rather than pinning them on the devices this split happened to use
        needs = _in_flight_needs(evaluation, schedule, microbatches)
        before = dict(charge)
        for cls in {c for c, _ in needs}:
            wanted = sorted((k for (c, _), k in needs.items() if c == cls), reverse=True)
            for i, k in enumerate(wanted):
                if k > charge.get((cls, i), 1):
                    charge[(cls, i)] = k
        if charge == before:  # the profile holds already but this split put a stage elsewhere: pin its needs
            charge.update({d: k for d, k in needs.items() if k > charge.get(d, 1)})
        stats["in_flight_rounds"] = stats.get("in_flight_rounds", 1) + 1
        evaluation = None  # this split overflows under the schedule
        if outcome.interrupted or (time_limit is not None and time_limit <= time.perf_counter() - began):
            break

    worse = evaluation is None or (objective == "maxload" and start is not None and evaluation.max_load > start.max_load)
    if start is not None and worse:
        evaluation = start  # the solver found nothing better than the warm start in time
        stats["kept_warm_start"] = True
    optimal = outcome.status == "optimal" and evaluation is not None
    if stats.get("kept_warm_start"):  # proven only if the warm start meets the bound
        optimal = optimal and bound is not None and objective == "maxload" and start.max_load <= bound + 1e-9 * max(1.0, bound)
    status = OPTIMAL if optimal else INTERRUPTED if outcome.interrupted else TIME_LIMIT
    if stash is not None:
        stats["in_flight"] = {"schedule": schedule, "microbatches": microbatches, "charged": {
            f"{cls}[{i}]": k for (cls, i), k in charge.items()}}
        if (status == OPTIMAL and charge) or (status == TIME_LIMIT and outcome.status == "optimal"):
            status = FEASIBLE  # solved for the charges it needed (or kept the start): not proven for the schedule
    if objective != "maxload":
        bound = None
    if bound is not None and evaluation is not None:
        bound = min(bound, evaluation.max_load)
    message = stop_message(outcome, evaluation is not None, optimal, time_limit)
    if stash is not None and status == FEASIBLE:
        message = ""  # the solver finished: what is unproven is said below
    if stash is not None:
        message = (f"{message}; " if message else "") + (
            f"memory holds the activations {schedule} keeps in flight"
            + ("" if not charge else " (charged per device where the static optimum overflowed: not proven optimal; "
               "the DP's schedule option is exact)"))
    if objective == "diffmaxima":
        stats["diff_maxima"] = outcome.objective  # the IP's max FW + max BW (the evaluator's max-load is below it)
    return PlacementResult(method, status, evaluation, bound=bound, seconds=time.perf_counter() - began,
                           stats=stats, message=message)
