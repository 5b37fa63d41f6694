"""Hybrid-parallel plans for 1F1B with a flush per batch, on nodes of a cluster (docs/model.md §10).

Problem: as in :mod:`pipesim.placement.plan.solve` (stages, each with ``t``, ``d``
and a configuration per layer, ``d | N``, memory ``Σ a·y + b ≤ M``), but the
objective is the **iteration time** of 1F1B with a flush (PipeDream-Flush,
Megatron-LM's default) on a cluster of nodes of ``n`` devices, an intra-node
fabric of bandwidth ``B_f`` and a network of ``B_n`` per device.  Each stage
occupies ``t·d`` devices; its ``d`` replicas take the ``N`` microbatches of a
batch round-robin (``N/d`` each), each replica's ``t`` devices sit in one node.
For stage ``i`` (one replica, one microbatch, forward and backward)::

    P_i  = Σ_{v∈S_i} p_v  +  E_in(i) / B_in(i)  +  E_out(i) / B_out(i)
    g_i  = (N/d_i − 1) · P_i
    h_i  = 2 (d_i − 1)/d_i · W_i / B_ar(i)          (ring all-reduce of the stage's gradients)
    iteration = Σ_i P_i  +  max_i g_i  +  max_i h_i

``E_in`` / ``E_out`` are the bytes of the edges entering / leaving the stage
(forward activations and backward gradients, ``2·(c + sync)`` each, as in
Piper's model); a boundary between consecutive stages is priced at ``B_f``
when both stages lie in one node (the same one), at ``B_n`` otherwise (a
stage's receives at its incoming boundary's price, its sends at its outgoing
one's); ``W_i`` is the parameter bytes per device of the stage, all-reduced
over ``B_f`` when the whole stage is in one node, over ``B_n`` otherwise.
The all-reduces of all stages run after the flush, concurrently; the next
iteration starts when the last one ends.  Memory per device is
``Σ a·y + b`` with ``y = min(⌈Σ_{j≥i} d_j / d_i⌉, N/d_i)`` microbatches in
flight (1F1B's warm-up depth, never more than the replica's microbatches).

For ``d`` equal on every stage this is the issue's formula, Σ stage times +
(m − 1) · max stage time + the all-reduce, with ``m = N/d`` microbatches per
pipeline.  :func:`evaluate_flush_plan` is the one cost model for it.

Guarantee: :func:`solve_flush_plan` returns a plan of least iteration time
**among plans packed by its rule** (within a relative 1e-9): stages are laid
contiguously, the pipeline's last stage on the highest device ids, each stage
either right after the next one (padded only so that each replica starts at a
multiple of ``t``) or padded to the end of a node; ``t`` divides ``n``.  The
packing rule is the heuristic: a plan that interleaves stages differently on
the nodes is not considered.  Everything else (stage boundaries, ``t``, ``d``,
recomputation by an exact knapsack as in :mod:`~pipesim.placement.plan.solve`, the
link each transfer uses) is exact.

How: a DP over (tail ``X`` of the graph, devices ``k`` the tail occupies from
the end, data-parallel sum ``s``, pricing state of the tail's first stage)
gives the least ``Σ P_i`` with every ``g_i ≤ Γ`` and ``h_i ≤ Η``, call it
``F(Γ, Η)``; the optimum is ``min F + Γ + Η``.  Both thresholds are searched
by branch and bound on intervals (:func:`_branch_and_bound`): ``F`` does not
increase with a threshold, a run at ``Γ`` returns a plan whose largest ``g``
``c ≤ Γ`` shows ``F`` constant on ``[c, Γ]``, and an interval ``[lo, hi)`` is
bounded below by ``F(hi) + lo``; the inner search (``Γ``) runs per outer
value ``Η``, and intervals that cannot beat the best iteration found are dropped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numba
import numpy as np
from pipesim.hardware.clusters import Cluster
from pipesim.placement.plan.solve import (
    _KNAPSACK_NODE_LIMIT,
    _cover,
    _divisors,
    _last_fitting,
    _prepare_layers,
    _stage_items,
    _tables,
    _why_infeasible,
)
from pipesim.placement.plan.evaluate import MEMORY_TOLERANCE, edge_lists, stage_sums, structure_problems
from pipesim.placement.interrupt import INTERRUPTED, stop_requested
from pipesim.placement.plan.result import FEASIBLE, INFEASIBLE, OPTIMAL, Plan, PlanStage
from pipesim.placement.plan.workload import PlanningWorkload

from pipesim.errors import InputError, InternalError

__all__ = ["FABRIC", "NETWORK", "Geometry", "evaluate_flush_plan", "pack_stages", "solve_flush_plan"]

FABRIC, NETWORK = "fabric", "network"
_RELATIVE = 1e-9  # two iteration times closer than this are equal
_RUN_LIMIT = 3000  # DP runs before the search gives up proving optimality
_HALVE = 1e-2      # intervals narrower than this (relative) are searched from the top, one plan at a time


@dataclass(frozen=True)
class Geometry:
    """The cluster as the flush model sees it: ``devices`` in nodes of ``per_node``, two link speeds.

    ``fabric`` and ``network`` are bytes/s per device per direction (the
    network's share when a node's devices share its adapters).

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> g = Geometry.of(load_cluster("dgx-a100x4"))
    >>> g.devices, g.per_node, g.fabric, g.network
    (32, 8, 300000000000.0, 25000000000.0)
    >>> g.node(9)
    1
    """

    devices: int
    per_node: int
    fabric: float
    network: float
    nic_shared: bool = False  # the node's devices share its adapters (``network`` is then their share)

    def __post_init__(self) -> None:
        if self.devices < 1 or self.per_node < 1 or not self.fabric > 0 or not self.network > 0:
            raise InputError(None, "hardware", f"a cluster needs devices, nodes and positive link speeds, got {self}")

    @classmethod
    def of(cls, cluster: Cluster, devices: int | None = None) -> Geometry:
        """The geometry of a homogeneous cluster (its first ``devices`` devices, default all)."""
        if not cluster.homogeneous:
            raise InputError(
                None, "hardware",
                f"{cluster.name} mixes node types; the flush planner needs one node type "
                "(plan each node type's part on its own, see README)",
            )
        node = cluster.nodes[0][0]
        return cls(devices or cluster.device_count, node.devices, node.fabric.bandwidth,
                   node.network_bandwidth_per_device, not node.nic_per_device)

    @classmethod
    def flat(cls, workload: PlanningWorkload) -> Geometry:
        """All of the workload's devices in one node, both links at its bandwidth (no cluster given)."""
        return cls(workload.devices, workload.devices, workload.bandwidth, workload.bandwidth)

    def node(self, device: int) -> int:
        return device // self.per_node

    def link(self, intra: bool) -> float:
        return self.fabric if intra else self.network


def pack_stages(stages: list[PlanStage] | tuple[PlanStage, ...], geometry: Geometry) -> list[tuple[int, ...]]:
    """Device ids for stages that have none: contiguous from device 0, each replica aligned to ``t``.

    Examples
    --------
    >>> g = Geometry(16, 8, 2.0, 1.0)
    >>> pack_stages([PlanStage((0,), 1, 3, {}), PlanStage((1,), 2, 2, {})], g)
    [(0, 1, 2), (4, 5, 6, 7)]
    """
    out, next_free = [], 0
    for s in stages:
        if len(s.devices) == s.device_count:
            out.append(tuple(s.devices))
            next_free = max(next_free, max(s.devices) + 1)
            continue
        start = -(-next_free // s.tensor_parallel) * s.tensor_parallel
        out.append(tuple(range(start, start + s.device_count)))
        next_free = start + s.device_count
    return out


def _flush_stats(stages: list[PlanStage], N: int) -> tuple[float, float, float]:
    """(Σ P, max g, max h) of evaluated stages."""
    total = sum(s.time for s in stages)
    g = max(((N // s.data_parallel - 1) * s.time for s in stages), default=0.0)
    h = max((s.allreduce for s in stages), default=0.0)
    return total, g, h


def evaluate_flush_plan(workload: PlanningWorkload, plan: Plan | list[PlanStage], geometry: Geometry) -> Plan:
    """``plan`` evaluated under the flush model (see the module docstring), with its violations.

    Stages without device ids are packed by :func:`pack_stages`.  The plan's
    ``iteration_time`` is the model's; ``time_per_sample`` is that over ``N``.

    Examples
    --------
    >>> from pipesim.placement.plan.workload import Configuration, Layer, LayerEdge, PlanningWorkload
    >>> c = Configuration("vanilla", time=2.0, parameters=8.0, memory_a=1.0, memory_b=0.0)
    >>> w = PlanningWorkload((Layer(0, {1: (c,)}), Layer(1, {1: (c,)})), (LayerEdge(0, 1, 5.0),),
    ...                      devices=4, memory=10.0, bandwidth=10.0, microbatches=4)
    >>> g = Geometry(4, 2, fabric=10.0, network=5.0)
    >>> p = evaluate_flush_plan(w, [PlanStage((0,), 1, 2, {0: "vanilla"}), PlanStage((1,), 1, 2, {1: "vanilla"})], g)
    >>> [(s.compute, s.communication, s.allreduce, s.link_out) for s in p.stages]
    [(2.0, 2.0, 0.8, 'network'), (2.0, 2.0, 0.8, None)]
    >>> p.iteration_time    # (4 + 4) + (4/2 - 1)·4 + 0.8
    12.8
    """
    stages = list(plan.stages if isinstance(plan, Plan) else plan)
    base = plan if isinstance(plan, Plan) else Plan(FEASIBLE)
    problems = structure_problems(workload, stages)
    layers = {layer.id: layer for layer in workload.layers}
    N = workload.microbatches
    if any(s.tensor_parallel < 1 or s.data_parallel < 1 for s in stages):
        problems.append("degrees must be at least 1")
        return replace(base, status=INFEASIBLE, reason="; ".join(problems), stages=tuple(stages))
    devices = pack_stages(stages, geometry)
    used = [x for ds in devices for x in ds]
    if len(set(used)) != len(used):
        problems.append("a device is in two stages")
    if used and (min(used) < 0 or max(used) >= geometry.devices):
        problems.append(f"the plan uses device ids outside 0..{geometry.devices - 1}")
    if sum(s.data_parallel for s in stages) > N:
        problems.append(f"the data-parallel degrees sum to more than the {N} microbatches per batch")
    inside, node_of = [], []
    for i, (s, ds) in enumerate(zip(stages, devices)):
        t = s.tensor_parallel
        for r in range(s.data_parallel):
            replica = ds[r * t : (r + 1) * t]
            if len({geometry.node(x) for x in replica}) != 1:
                problems.append(f"stage {i}: replica {r} spans nodes (tensor parallelism stays in a node)")
                break
        nodes = {geometry.node(x) for x in ds}
        inside.append(len(nodes) == 1)
        node_of.append(min(nodes) if nodes else -1)
    intra = [inside[i] and inside[i + 1] and node_of[i] == node_of[i + 1] for i in range(len(stages) - 1)]

    incoming, outgoing = edge_lists(workload)
    evaluated: list[PlanStage] = []
    suffix = sum(s.data_parallel for s in stages)
    for i, stage in enumerate(stages):
        d = stage.data_parallel
        if N % d:
            problems.append(f"stage {i}: data-parallel degree {d} does not divide {N} microbatches")
        y = min(-(-suffix // d), max(1, N // d))
        suffix -= d
        sums = stage_sums(workload, layers, incoming, outgoing, i, stage, y, problems)
        compute, bytes_in, bytes_out, params, memory = (sums.compute, sums.bytes_in, sums.bytes_out, sums.parameters,
                                                        sums.memory)
        link_in = None if i == 0 else (FABRIC if intra[i - 1] else NETWORK)
        link_out = None if i == len(stages) - 1 else (FABRIC if intra[i] else NETWORK)
        comm = (bytes_in / geometry.link(link_in == FABRIC) if bytes_in else 0.0) + (
            bytes_out / geometry.link(link_out == FABRIC) if bytes_out else 0.0)
        allreduce = 2.0 * (d - 1) / d * params / geometry.link(inside[i]) if d > 1 else 0.0
        evaluated.append(replace(
            stage, compute=compute, communication=comm, resync=0.0, allreduce=allreduce, memory=memory,
            bytes_in=bytes_in, bytes_out=bytes_out, gradient_bytes=params,
            in_flight=y, devices=devices[i], link_in=link_in, link_out=link_out,
            cluster_nodes=tuple(f"node{geometry.node(x)}" for x in devices[i]),
        ))
    if not stages:
        problems.append("the plan has no stages")
    total, g, h = _flush_stats(evaluated, N)
    iteration = total + g + h if stages else math.inf
    status, reason = base.status, base.reason
    if problems:
        status, reason = INFEASIBLE, "; ".join(problems)
    return replace(
        base, status=status, reason=reason, stages=tuple(evaluated), objective="flush",
        iteration_time=iteration, time_per_sample=iteration / N, devices_used=len(used),
    )


# --------------------------------------------------------------------------- the DP


@numba.njit(cache=True, nogil=True)  # nogil: the Ctrl-C watchdog thread runs beside it
def _flush_run(gamma, eta, px, py, n_ideals, sizes, sup_cnt, P, A, B, W, IN, OUT, entering_ptr, entering_src,
               entering_edge, win, wout, member, has_alt, extra, less_a, more_b, cap, degrees, dvals, K, npn, N,
               smax, bw_fab, bw_net, qcache, use_cache, record, node_limit):  # pragma: no cover - compiled
    """Least Σ P per (tail, devices from the end, data-parallel sum, pricing state) with g ≤ gamma, h ≤ eta.

    Pricing state ``c`` of a tail's first stage: 0 — it does not lie in one node
    or starts at a node's first device, so its incoming boundary is the network;
    1 — it lies mid-node and was priced for the fabric (the stage before must
    end in that node); 2 — it lies mid-node and was priced for the network (the
    stage before must not).  ``ch`` records (pair, t index, d, gap, k of the tail, c of the tail).
    """
    T = P.shape[1]
    f = np.full((n_ideals, K + 1, smax + 1, 3), np.inf)
    f[0, 0, 0, 0] = 0.0
    live = np.zeros((n_ideals, K + 1), dtype=np.bool_)
    live[0, 0] = True
    if record:
        ch = np.full((n_ideals, K + 1, smax + 1, 3, 6), -1, dtype=np.int32)
    else:
        ch = np.full((1, 1, 1, 1, 6), -1, dtype=np.int32)
    knapsacks = 0
    inexact = 0
    next_g = np.inf  # the least g a transition was refused for (the next threshold at which f may change)
    next_h = np.inf
    for p in range(px.shape[0]):
        x, y = px[p], py[p]
        size = sizes[x] - sizes[y]
        for ti in range(T):
            if sup_cnt[x, ti] - sup_cnt[y, ti] != size:
                continue
            t = degrees[ti]
            if npn % t != 0:
                continue
            p0 = P[x, ti] - P[y, ti]
            a0 = A[x, ti] - A[y, ti]
            b0 = B[x, ti] - B[y, ti]
            w0 = W[x, ti] - W[y, ti]
            by_in = 0.0
            by_out = 0.0
            for k in range(entering_ptr[y], entering_ptr[y + 1]):
                if not member[x, entering_src[k]]:
                    e = entering_edge[k]
                    by_in += win[e, ti]
                    by_out += wout[e, ti]
            in_c = IN[x, ti] - by_in
            out_c = OUT[y, ti] - by_out
            if in_c < 0.0:
                in_c = 0.0
            if out_c < 0.0:
                out_c = 0.0
            fast_fit = _last_fitting(a0, b0, cap, 1, smax)
            stamp = p * T + ti
            for ky in range(K + 1):
                if not live[y, ky]:
                    continue
                end = K - ky
                for gi in range(2):
                    gap = end % t
                    if gi == 1:
                        if end % npn == gap:
                            continue
                        gap = end % npn
                    for d in dvals:
                        ext = t * d
                        start = end - gap - ext
                        if start < 0:
                            break
                        kx = K - start
                        last = start + ext - 1
                        inside = (start // npn) == (last // npn)
                        h = 0.0
                        if d > 1:
                            h = 2.0 * (d - 1) / d * w0 / (bw_fab if inside else bw_net)
                        if h > eta:
                            if h < next_h:
                                next_h = h
                            continue
                        same = inside and ky > 0 and (last // npn) == (end // npn)
                        mine = inside and (start % npn) != 0  # this stage may be priced for the fabric
                        mb = N // d
                        for cy in range(3):
                            if (cy == 1 and not same) or (cy == 2 and same):
                                continue
                            out_t = 0.0
                            if out_c > 0.0:
                                out_t = out_c / (bw_fab if cy == 1 else bw_net)
                            for sy in range(0, smax - d + 1):
                                fy = f[y, ky, sy, cy]
                                if fy == np.inf:
                                    continue
                                s = sy + d
                                level = (s + d - 1) // d
                                if level > mb:
                                    level = mb
                                if level < 1:
                                    level = 1
                                q = 0.0
                                if level > fast_fit:
                                    known = False
                                    if use_cache:
                                        q = qcache[stamp, level]
                                        known = not math.isnan(q)
                                    if not known:
                                        idx, cost, save = _stage_items(x, y, ti, member, has_alt, extra, less_a,
                                                                       more_b, level)
                                        q, chosen, exact = _cover(cost, save, level * a0 + b0 - cap, node_limit)
                                        knapsacks += 1
                                        if not exact:
                                            inexact += 1
                                        if use_cache:
                                            qcache[stamp, level] = q
                                    if math.isinf(q):
                                        break  # more in flight: no fit either
                                base = fy + p0 + q + out_t
                                for cx in range(3):
                                    if (cx == 0) == mine:
                                        continue
                                    in_t = 0.0
                                    if in_c > 0.0:
                                        in_t = in_c / (bw_fab if cx == 1 else bw_net)
                                    stage = p0 + q + out_t + in_t
                                    if (mb - 1) * stage > gamma:
                                        if (mb - 1) * stage < next_g:
                                            next_g = (mb - 1) * stage
                                        continue
                                    value = base + in_t
                                    if value < f[x, kx, s, cx]:
                                        f[x, kx, s, cx] = value
                                        live[x, kx] = True
                                        if record:
                                            ch[x, kx, s, cx, 0] = p
                                            ch[x, kx, s, cx, 1] = ti
                                            ch[x, kx, s, cx, 2] = d
                                            ch[x, kx, s, cx, 3] = gap
                                            ch[x, kx, s, cx, 4] = ky
                                            ch[x, kx, s, cx, 5] = cy
    return f, ch, knapsacks, inexact, next_g, next_h


def solve_flush_plan(
    workload: PlanningWorkload,
    geometry: Geometry | None = None,
    *,
    data_parallel: bool = True,
    tensor_parallel: bool = True,
    recompute: bool = True,
    ideal_limit: int = 2_000_000,
    run_limit: int = _RUN_LIMIT,
) -> Plan:
    """The plan of least 1F1B-with-flush iteration time (see the module docstring).

    Parameters
    ----------
    workload : PlanningWorkload
        Layers, edges, memory M and microbatches N (``devices`` and
        ``bandwidth`` are taken from ``geometry`` when it is given).
    geometry : Geometry, optional
        The cluster; default :meth:`Geometry.flat` (one node).
    data_parallel, tensor_parallel, recompute : bool
        Allow ``d > 1``, ``t > 1`` and recomputation.
    run_limit : int
        DP runs allowed to the threshold search; past it the best plan found
        is returned as ``feasible`` with the reason.

    Returns
    -------
    Plan
        ``objective="flush"``, ``iteration_time`` set.

    Examples
    --------
    Four layers of 2 s and 1 byte of parameters, 8 microbatches, one node of
    4 devices: one stage of 4 replicas (8 + 1·8 + 2·3/4·4/10) beats a 4-stage
    pipeline (8 + 7·2):

    >>> from pipesim.placement.examples import uniform_planning_chain
    >>> w = uniform_planning_chain(4, time=2.0, parameters=1.0, microbatches=8)
    >>> p = solve_flush_plan(w, Geometry(4, 4, 10.0, 1.0))
    >>> p.status, p.iteration_time, [(s.tensor_parallel, s.data_parallel) for s in p.stages]
    ('optimal', 16.6, [(1, 4)])
    """
    started = time.perf_counter()
    geometry = geometry or Geometry.flat(workload)
    K, N, n = geometry.devices, workload.microbatches, geometry.per_node
    workload = workload.with_limits(devices=K)
    degrees = [t for t in workload.degrees if n % t == 0 and (tensor_parallel or t == 1)]
    smax = min(N, K)
    dvals = [d for d in _divisors(N, smax)] if data_parallel else [1]
    stats: dict = {}

    def infeasible(reason: str) -> Plan:
        return Plan(INFEASIBLE, objective="flush", reason=reason, seconds=time.perf_counter() - started, stats=stats)

    if not degrees:
        return infeasible(f"no tensor-parallel degree divides the {n} devices of a node")
    layers = _prepare_layers(workload, degrees, recompute)
    T = len(degrees)
    tb = _tables(workload, layers, T, ideal_limit)
    ideals, member, sup_cnt, P, A, B, W = tb.ideals, tb.member, tb.sup_cnt, tb.P, tb.A, tb.B, tb.W
    IN, OUT, cap, px, py = tb.IN, tb.OUT, tb.cap, tb.px, tb.py
    entering_ptr, entering_edge, entering_src = tb.entering_ptr, tb.entering_edge, tb.entering_src
    stats.update(ideals=len(ideals), pairs=len(px))
    use_cache = len(px) * T * (smax + 1) <= 32_000_000
    qcache = np.full((len(px) * T, smax + 1) if use_cache else (1, 1), np.nan)
    degrees_arr, dv = np.array(degrees, dtype=np.int64), np.array(dvals, dtype=np.int64)
    last = len(ideals) - 1
    counters = {"dp_runs": 0, "knapsacks": 0, "inexact": 0}
    state = {"best": None, "complete": True}

    def consider(plan: Plan) -> None:
        best = state["best"]
        if best is None or plan.iteration_time < best.iteration_time * (1 - _RELATIVE):
            state["best"] = plan

    def best_time() -> float:
        return state["best"].iteration_time if state["best"] is not None else math.inf

    def run(gamma: float, eta: float, record: bool = False):
        f, ch, kn, inexact, next_g, next_h = _flush_run(
            gamma, eta, px, py, len(ideals), ideals.sizes.astype(np.int64), sup_cnt, P, A, B, W, IN, OUT,
            entering_ptr, entering_src, entering_edge, layers.win, layers.wout, member, layers.has_alt, layers.extra,
            layers.less_a, layers.more_b, cap, degrees_arr, dv, K, n, N, smax, geometry.fabric, geometry.network,
            qcache, use_cache, record, _KNAPSACK_NODE_LIMIT,
        )
        counters["dp_runs"] += 1
        counters["knapsacks"] += int(kn)
        counters["inexact"] += int(inexact)
        return f, ch, (float(next_g), float(next_h))

    def best_plan(gamma: float, eta: float) -> tuple[float, Plan | None, tuple[float, float]]:
        if counters["dp_runs"] >= run_limit:
            state["complete"] = False
            raise _Stop
        if stop_requested():  # Ctrl-C (pipesim.placement.interrupt): the best plan so far
            state["complete"], state["interrupted"] = False, True
            raise _Stop
        f, ch, nexts = run(gamma, eta, record=True)
        value = float(f[last].min())
        if math.isinf(value):
            return value, None, nexts
        kx, s, c = (int(i) for i in np.unravel_index(int(np.argmin(f[last])), f[last].shape))
        stages = _backtrack(ch, last, kx, s, c, py, member, layers, A, B, workload, degrees, geometry)
        plan = evaluate_flush_plan(workload, stages, geometry)
        total = sum(st.time for st in plan.stages)
        if plan.status == INFEASIBLE or not math.isclose(total, value, rel_tol=1e-9, abs_tol=1e-15):
            raise InternalError(f"flush planner: Σ stage times {value!r} but the evaluator gives {total!r} ({plan.reason})")
        consider(plan)
        return value, plan, nexts

    try:
        _search(best_plan, lambda plan: _flush_stats(list(plan.stages), N), best_time)
    except _Stop:
        pass
    best, complete = state["best"], state["complete"]
    stats.update(counters, seconds=time.perf_counter() - started)
    if best is None:
        if state.get("interrupted"):
            raise KeyboardInterrupt  # stopped before any plan: nothing to return
        if not complete:
            return infeasible(f"no plan found within {run_limit} DP runs")
        return infeasible(_why_infeasible(workload, layers, degrees))
    status, reason = OPTIMAL, None
    if state.get("interrupted"):
        status, reason = INTERRUPTED, "interrupted: best plan found so far (optimality not proved)"
    elif not complete:
        status, reason = FEASIBLE, f"the threshold search stopped after {run_limit} DP runs: optimality not proved"
    elif counters["inexact"]:
        status, reason = FEASIBLE, f"{counters['inexact']} stage knapsacks hit the search limit: optimality not proved"
    return replace(best, status=status, reason=reason, stats=stats, seconds=time.perf_counter() - started)


class _Stop(Exception):
    """The DP-run budget is spent."""


def _least_feasible(solve, coordinate) -> tuple[float, float, Plan | None]:
    """The least threshold x at which ``solve(x)`` is feasible, and (value, plan) there.

    ``solve(x)`` returns (value, plan or None, next) where ``next`` is the least
    refused stage value above ``x``: when infeasible at ``x`` no threshold below
    ``next`` is feasible (as in :func:`pipesim.placement.plan._search`).
    """
    value, plan, _ = solve(math.inf)
    if plan is None:
        return math.inf, math.inf, None
    upper, lower = coordinate(plan), 0.0
    found = (value, plan)
    while lower < upper:
        x = lower if upper - lower <= _RELATIVE * upper else (lower + upper) / 2
        value, plan, nxt = solve(x)
        if plan is not None:  # (min: the evaluator's rounding may differ from the DP's in the last bit)
            upper, found = min(coordinate(plan), x), (value, plan)
        else:
            lower = max(lower, min(nxt, upper))
    return upper, *found


def _bisect(solve, coordinate, start: float, first: tuple[float, Plan], top: tuple[float, Plan], limit,
            exact: bool = True):
    """min over x ≥ start of F(x) + x for a non-increasing F, by branch and bound on intervals.

    ``solve(x, lo) -> (F(x), plan, _)`` (``lo``: the interval's lower end); the plan's ``coordinate`` c ≤ x shows F
    constant on [c, x].  ``first`` is (F, plan) at ``start`` (the least
    feasible x), ``top`` at x = ∞.  An interval (lo, hi) is bounded below by
    F(hi) + lo.  Returns (a lower bound on the minimum — exact when it is
    below ``limit()`` — and the plan attaining it).  With ``exact=False``
    (``solve`` returns lower bounds of F) intervals are pruned by ``limit()`` only.
    """
    best_value, best_plan = first[0] + coordinate(first[1]), first[1]
    c = coordinate(top[1])
    if top[0] + c < best_value:
        best_value, best_plan = top[0] + c, top[1]
    if not exact:
        best_value = math.inf
    pruned = math.inf
    intervals = [(start, c, top[0])]
    while intervals:
        intervals.sort(key=lambda iv: iv[2] + iv[0], reverse=True)
        lo, hi, f_hi = intervals.pop()
        bound = f_hi + lo
        if bound >= best_value * (1 - _RELATIVE) or hi - lo <= _RELATIVE * hi:
            continue
        if bound >= limit() * (1 - _RELATIVE):
            pruned = min(pruned, bound)
            continue
        mid = (lo + hi) / 2 if hi - lo > _HALVE * hi else hi * (1 - _RELATIVE)
        value, plan, _ = solve(mid, lo)
        if plan is None:
            raise InternalError("flush planner: infeasible above the least feasible threshold")
        c = min(coordinate(plan), mid)
        if exact and value + c < best_value:
            best_value, best_plan = value + c, plan
        intervals.append((lo, c, value))
        intervals.append((mid, hi, f_hi))
    return min(best_value, pruned), best_plan


def _search(best_plan, stats, best_time) -> None:
    """Minimise Σ P + max g + max h; every plan met is offered to the caller by ``best_plan``.

    Outer: over Η, V(Η) = min over plans with h ≤ Η of Σ P + max g, searched by
    :func:`_bisect` from the least feasible Η; each V(Η) is itself a
    :func:`_bisect` over Γ from the least feasible Γ.  The inner search may stop
    early once nothing it could find beats the best iteration minus the outer
    interval's lower end.
    """
    def inner(eta: float, slack: float):
        solve = lambda gamma, lo=0.0: best_plan(gamma, eta)  # noqa: E731
        g_of = lambda plan: stats(plan)[1]  # noqa: E731
        top = solve(math.inf)
        if top[1] is None:
            return math.inf, None, top[2]
        start, value, plan = _least_feasible(lambda x: _nexts(solve(x), 0), g_of)
        v, p = _bisect(solve, g_of, start, (value, plan), top[:2], lambda: best_time() - slack)
        return v, p, top[2]

    h_of = lambda plan: stats(plan)[2]  # noqa: E731
    start, _, _ = _least_feasible(lambda eta: _nexts(best_plan(math.inf, eta), 1), h_of)
    if math.isinf(start):
        return
    outer = {}

    def level(eta: float, slack: float = 0.0):
        v, p, nxt = inner(eta, slack)
        outer[eta] = (v, p)
        return v, p, nxt

    first = level(start)
    top = level(math.inf)
    if first[1] is None or top[1] is None:
        return
    # the outer bound is a lower bound when an inner search stopped early: prune on real plans only
    _bisect(level, h_of, start, first[:2], top[:2], best_time, exact=False)


def _nexts(result, which: int):
    value, plan, nexts = result
    return value, plan, nexts[which]


def _backtrack(ch, x, kx, s, c, py, member, layers, A, B, workload: PlanningWorkload, degrees, geometry: Geometry):
    K, N = geometry.devices, workload.microbatches
    cap = workload.memory * (1 + MEMORY_TOLERANCE / 2)
    stages = []
    while x != 0:
        p, ti, d, gap, ky, cy = (int(v) for v in ch[x, kx, s, c])
        if p < 0:
            raise InternalError(f"flush planner: cannot retrace the plan at tail {x}")
        y = int(py[p])
        t = int(degrees[ti])
        level = max(1, min(-(-s // d), N // d))
        nodes = np.flatnonzero(member[x] & ~member[y])
        a0, b0 = A[x, ti] - A[y, ti], B[x, ti] - B[y, ti]
        idx, cost, save = _stage_items(x, y, ti, member, layers.has_alt, layers.extra, layers.less_a, layers.more_b, level)
        _, chosen, _ = _cover(cost, save, level * a0 + b0 - cap, _KNAPSACK_NODE_LIMIT)
        alt = {int(v) for v, on in zip(idx, chosen) if on}
        start = K - ky - gap - t * d
        stages.append(PlanStage(
            nodes=tuple(workload.layers[v].id for v in nodes),
            tensor_parallel=t,
            data_parallel=d,
            configuration={workload.layers[v].id: (layers.alt_id[v][ti] if v in alt else layers.base_id[v][ti])
                           for v in nodes},
            devices=tuple(range(start, start + t * d)),
        ))
        x, kx, s, c = y, ky, s - d, cy
    # unused devices sit before the first stage: move whole nodes of them to the end
    first = min(stages[0].devices)
    shift = first // geometry.per_node * geometry.per_node
    return [replace(st, devices=tuple(v - shift for v in st.devices)) for st in stages]
