"""Optimal hybrid-parallel plans: pipeline × data × tensor parallelism under memory (docs/model.md §10).

Problem (Piper: Tarnawski et al., NeurIPS 2021, §3-4): split a layer DAG into
pipeline stages; give each stage a tensor-parallel degree ``t``, a
data-parallel degree ``d`` with ``d | N``, and one configuration per layer,
with ``Σ t·d ≤ K``, ``Σ d ≤ N`` and each stage's memory
``Σ a·y + b ≤ M`` for ``y = ⌈(Σ_{j≥i} d_j)/d_i⌉`` microbatches in flight;
minimise the largest stage time per sample (the model of
:mod:`pipesim.placement.plan.evaluate`).

Guarantee: the plan returned is optimal for that model.  Piper picks each
stage's configurations with a greedy knapsack heuristic; here the knapsack is
solved exactly (branch and bound), so the time is never higher than Piper's
and lower where its heuristic misses.  The answer is re-evaluated by
:func:`~pipesim.placement.plan.evaluate.evaluate_plan` and must agree.

How, and why it is fast where Piper's DP is slow:

* Piper's table is ``dp[tail][k][s]`` (devices ``k ≤ K``, data-parallel sum
  ``s``): for BERT on 2,048 devices that is 170 million entries.  Here the
  objective is handled parametrically: for a threshold ``τ``,
  ``f[X][s]`` = fewest devices running the tail ``X`` (a successor-closed
  set: the pipeline's last stages) with data-parallel degrees summing to
  ``s``, using only stages of time ``≤ τ``.  ``τ`` is feasible iff some
  ``f[V][s] ≤ K``, and the optimum is the least feasible ``τ`` among the
  finitely many stage times, found by bisection over their sorted list
  (about 20 runs of a table of ``tails × s`` integers).
* A stage's time is ``(P + Q(y))/d + (E/d + 4(d−1)W/(dN))/BW`` where ``P``,
  ``E``, ``W`` are per-tail sums (differences of per-ideal accumulations, as
  in :mod:`pipesim.placement.dp.solve`) and ``Q(y)`` is the least extra time of
  recomputation that fits ``y`` microbatches: a step function of ``y``,
  computed once per (stage, t) with one exact knapsack per step, shared by
  every ``d`` (configurations of a layer differ only in time and memory —
  checked on input) and by every threshold.
* Pairs of tails whose least possible memory exceeds ``M`` are never formed
  (a window over tails sorted by that memory).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numba
import numpy as np

from pipesim.errors import InputError, InternalError
from pipesim.hardware.clusters import Cluster, load_cluster
from pipesim.hardware.units import BANDWIDTH, BYTES, parse
from pipesim.placement.dp.ideals import Ideals, enumerate_ideals, pack
from pipesim.placement.interrupt import raise_if_stopped
from pipesim.placement.options import Bool, Choice, Int, Size
from pipesim.placement.plan.piper_format import read_piper_workload
from pipesim.placement.plan.evaluate import MEMORY_TOLERANCE, evaluate_plan
from pipesim.placement.plan.result import FEASIBLE, INFEASIBLE, OPTIMAL, Plan, PlanStage
from pipesim.placement.plan.workload import Configuration, PlanningWorkload

__all__ = ["OBJECTIVES", "PLAN_OPTIONS", "cluster_limits", "plan", "solve_plan"]

OBJECTIVES = ("piper", "flush")

#: The options of ``plan`` as a scenario's ``solve: {method: plan, options: ...}`` takes them (typed, checked).
PLAN_OPTIONS = {
    "objective": Choice(OBJECTIVES, help="piper: time per sample (Piper's model); flush: 1F1B-with-flush iteration time"),
    "microbatches": Int(help="N, microbatches per batch (default 32)"),
    "devices": Int(help="K, devices to plan on (default: the cluster's)"),
    "memory": Size(help="M, memory per device (default: the device's)"),
    "data_parallel": Bool(help="allow d > 1 (default true)"),
    "tensor_parallel": Bool(help="allow t > 1 (default true)"),
    "recompute": Bool(help="allow activation recomputation (default true)"),
}

_BIG = np.int32(2**30)
_KNAPSACK_NODE_LIMIT = 2_000_000
_CACHE_ENTRIES = 32_000_000  # knapsack answers kept across threshold runs (8 bytes each)


@dataclass
class _Layers:
    """Per-layer arrays, one column per tensor-parallel degree, for the kernels."""

    degrees: np.ndarray      # (T,) the degrees t considered
    supported: np.ndarray    # (n, T) layer has a configuration at t
    time: np.ndarray         # (n, T) fastest configuration's time p
    mem_a: np.ndarray        # (n, T) its a
    mem_b: np.ndarray        # (n, T) its b
    params: np.ndarray       # (n, T) w (equal for every configuration of the layer at t)
    has_alt: np.ndarray      # (n, T) a second (less memory) configuration exists
    extra: np.ndarray        # (n, T) its extra time
    less_a: np.ndarray       # (n, T) its saving on a (a_fast - a_alt)
    more_b: np.ndarray       # (n, T) its extra b (b_alt - b_fast)
    min_memory: np.ndarray   # (n,) least a + b over every degree and configuration
    base_id: list            # [v][ti] configuration id of the fastest
    alt_id: list             # [v][ti] configuration id of the alternative (or None)
    win: np.ndarray          # (E, T) bytes an edge costs the stage it enters
    wout: np.ndarray         # (E, T) bytes an edge costs the stage it leaves


def _prepare_layers(w: PlanningWorkload, degrees: list[int], recompute: bool) -> _Layers:
    n, T = len(w.layers), len(degrees)
    index = {layer.id: i for i, layer in enumerate(w.layers)}
    arr = {name: np.zeros((n, T)) for name in ("time", "mem_a", "mem_b", "params", "extra", "less_a", "more_b")}
    supported = np.zeros((n, T), dtype=bool)
    has_alt = np.zeros((n, T), dtype=bool)
    min_memory = np.full(n, np.inf)
    base_id = [[None] * T for _ in range(n)]
    alt_id = [[None] * T for _ in range(n)]
    chosen: dict[tuple[int, int], Configuration] = {}
    for v, layer in enumerate(w.layers):
        for ti, t in enumerate(degrees):
            configs = [c for c in layer.options.get(t, ()) if recompute or not c.recomputes]
            if not configs:
                continue
            field = f"nodes[{v}].TMPCs.{t}"
            first = configs[0]
            for c in configs[1:]:
                if c.parameters != first.parameters or dict(c.sync_fw) != dict(first.sync_fw) or dict(c.sync_bw) != dict(first.sync_bw):
                    raise InputError(
                        w.source, field,
                        "configurations of one layer and degree differ in parameterSize or sync times; "
                        "the exact planner supports configurations that differ in time and memory only",
                    )
            # drop dominated configurations (no faster, no smaller a, no smaller b)
            kept = [
                c for c in configs
                if not any(
                    o is not c and o.time <= c.time and o.memory_a <= c.memory_a and o.memory_b <= c.memory_b
                    and (o.time, o.memory_a, o.memory_b) != (c.time, c.memory_a, c.memory_b)
                    for o in configs
                )
            ]
            kept = [c for i, c in enumerate(kept) if all((o.time, o.memory_a, o.memory_b) != (c.time, c.memory_a, c.memory_b) for o in kept[:i])]
            if len(kept) > 2:
                raise InputError(w.source, field, "more than two non-dominated configurations per layer and degree are not supported")
            fast = min(kept, key=lambda c: c.time)
            supported[v, ti] = True
            base_id[v][ti] = fast.id
            chosen[v, ti] = fast
            arr["time"][v, ti], arr["mem_a"][v, ti], arr["mem_b"][v, ti] = fast.time, fast.memory_a, fast.memory_b
            arr["params"][v, ti] = fast.parameters
            min_memory[v] = min(min_memory[v], *(c.memory_a + c.memory_b for c in kept))
            if len(kept) == 2:
                alt = kept[0] if kept[1] is fast else kept[1]
                has_alt[v, ti] = True
                alt_id[v][ti] = alt.id
                arr["extra"][v, ti] = alt.time - fast.time
                arr["less_a"][v, ti] = fast.memory_a - alt.memory_a
                arr["more_b"][v, ti] = alt.memory_b - fast.memory_b
    E = len(w.edges)
    win, wout = np.zeros((E, T)), np.zeros((E, T))
    for e, edge in enumerate(w.edges):
        u, v = index[edge.source], index[edge.dest]
        for ti in range(T):
            if (v, ti) in chosen:
                win[e, ti] = 2 * (edge.bytes + chosen[v, ti].sync_fw.get(edge.source, 0.0))
            if (u, ti) in chosen:
                wout[e, ti] = 2 * (edge.bytes + chosen[u, ti].sync_bw.get(edge.dest, 0.0))
    min_memory[np.isinf(min_memory)] = 0.0  # a layer with no configuration is caught by `supported`
    return _Layers(np.array(degrees), supported, **arr, has_alt=has_alt, min_memory=min_memory,
                   base_id=base_id, alt_id=alt_id, win=win, wout=wout)


@dataclass
class _Tables:
    """Per-tail sums and the (tail, sub-tail) pairs the DPs run over (shared by both objectives)."""

    successors: list
    ideals: Ideals
    member: np.ndarray
    sup_cnt: np.ndarray   # (tails, T) layers with a configuration at t
    P: np.ndarray         # (tails, T) Σ fastest time
    A: np.ndarray         # Σ a
    B: np.ndarray         # Σ b
    W: np.ndarray         # Σ parameter bytes
    IN: np.ndarray        # bytes of the edges entering the tail, priced by their heads
    OUT: np.ndarray       # ... priced by their tails
    entering_ptr: np.ndarray
    entering_edge: np.ndarray
    entering_src: np.ndarray
    cap: float            # the memory limit with its tolerance
    px: np.ndarray        # pairs (X, Y), Y ⊊ X, sorted by X
    py: np.ndarray


def _tables(workload: PlanningWorkload, layers: _Layers, T: int, ideal_limit: int) -> _Tables:
    n = len(workload.layers)
    index = {layer.id: i for i, layer in enumerate(workload.layers)}
    successors: list[list[int]] = [[] for _ in range(n)]
    for e in workload.edges:
        successors[index[e.source]].append(index[e.dest])
    # Tails (successor-closed sets) are the ideals of the reversed graph.
    ideals: Ideals = enumerate_ideals(n, successors, limit=ideal_limit)
    member = ideals.membership()
    sums = ideals.accumulate(
        np.concatenate([layers.supported.astype(float), layers.time, layers.mem_a, layers.mem_b, layers.params], axis=1)
    )
    sup_cnt = np.rint(sums[:, :T]).astype(np.int64)
    P, A, B, W = (np.ascontiguousarray(sums[:, T * k : T * (k + 1)]) for k in range(1, 5))
    # entering-edge sums of a tail: Σ_{v∈X} (in-weights) − Σ_{u∈X} (out-weights)
    src = np.array([index[e.source] for e in workload.edges], dtype=np.int64)
    dst = np.array([index[e.dest] for e in workload.edges], dtype=np.int64)
    per_node_in = np.zeros((n, T))
    per_node_out = np.zeros((n, T))
    np.add.at(per_node_in, dst, layers.win)
    np.add.at(per_node_in, src, -layers.win)
    np.add.at(per_node_out, dst, layers.wout)
    np.add.at(per_node_out, src, -layers.wout)
    entering = member[:, dst] & ~member[:, src]  # (ideals, edges): edge enters the tail
    entering_ptr, entering_edge = _csr(entering)
    cap = workload.memory * (1 + MEMORY_TOLERANCE / 2)
    key_all = ideals.accumulate(layers.min_memory[:, None])[:, 0]
    # a tail's least memory can exceed a sub-tail's by rounding only when equal: widen by a hair
    px, py = _pairs(ideals.bits, key_all, cap * (1 + 1e-12))
    return _Tables(successors, ideals, member, sup_cnt, P, A, B, W, ideals.accumulate(per_node_in),
                   ideals.accumulate(per_node_out), entering_ptr, entering_edge, src[entering_edge], cap, px, py)


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True)  # nogil: the Ctrl-C watchdog thread runs beside it
def _cover(cost, save, need, node_limit):  # pragma: no cover - compiled
    """Exact min-cost cover: choose items (cost ≥ 0, save > 0) with Σ save ≥ need, least Σ cost.

    Items of equal ``save`` form a group in which only "the k cheapest" choices
    matter (any other k-subset costs more and saves the same); branch and bound
    over the count per group, with the fractional (LP) cover of the undecided
    groups as the bound.  Returns (best cost, chosen mask, exact?), best = inf
    when no cover exists.
    """
    n = cost.shape[0]
    chosen = np.zeros(n, dtype=np.bool_)
    if need <= 0:
        return 0.0, chosen, True
    if save.sum() < need:
        return np.inf, chosen, True
    # groups of equal save, members by cost
    by_save = np.argsort(save, kind="mergesort")
    members = np.empty(n, dtype=np.int64)
    gstart = np.zeros(n + 1, dtype=np.int64)
    G = 0
    i = 0
    while i < n:
        j = i
        while j < n and save[by_save[j]] == save[by_save[i]]:
            j += 1
        block = by_save[i:j]
        block = block[np.argsort(cost[block], kind="mergesort")]
        members[i:j] = block
        gstart[G] = i
        G += 1
        i = j
    gstart[G] = n
    gsave = np.empty(G)
    gfirst = np.empty(G)
    for g in range(G):
        gsave[g] = save[members[gstart[g]]]
        gfirst[g] = cost[members[gstart[g]]] / gsave[g]
    border = np.argsort(gfirst, kind="mergesort")  # branch on groups by their best ratio
    rank = np.empty(G, dtype=np.int64)
    for k in range(G):
        rank[border[k]] = k
    # prefix costs per group (in branch order) and suffix saves
    pc = np.zeros(n + G)
    pstart = np.zeros(G + 1, dtype=np.int64)
    suffix = np.zeros(G + 1)
    for k in range(G):
        g = border[k]
        size = gstart[g + 1] - gstart[g]
        pstart[k + 1] = pstart[k] + size + 1
        acc = 0.0
        pc[pstart[k]] = 0.0
        for m in range(size):
            acc += cost[members[gstart[g] + m]]
            pc[pstart[k] + m + 1] = acc
    for k in range(G - 1, -1, -1):
        g = border[k]
        suffix[k] = suffix[k + 1] + gsave[g] * (gstart[g + 1] - gstart[g])
    # all items by ratio, with the branch rank of their group (for the LP bound)
    ratio = cost / save
    glob = np.argsort(ratio, kind="mergesort")
    item_rank = np.empty(n, dtype=np.int64)
    for g in range(G):
        for m in range(gstart[g], gstart[g + 1]):
            item_rank[members[m]] = rank[g]
    # greedy incumbent: items by ratio until covered
    best = 0.0
    best_k = np.zeros(G, dtype=np.int64)
    r = need
    for idx in glob:
        if r <= 0:
            break
        best += cost[idx]
        r -= save[idx]
        best_k[item_rank[idx]] += 1
    kk = np.zeros(G, dtype=np.int64)
    R = np.zeros(G + 1)
    C = np.zeros(G + 1)
    R[0] = need
    level = 0
    g0 = border[0]
    kk[0] = min(gstart[g0 + 1] - gstart[g0], math.ceil(need / gsave[g0])) + 1
    nodes = 0
    exact = True
    while level >= 0:
        nodes += 1
        if nodes > node_limit:
            exact = False
            break
        kk[level] -= 1
        if kk[level] < 0:
            level -= 1
            continue
        g = border[level]
        r_new = R[level] - kk[level] * gsave[g]
        c_new = C[level] + pc[pstart[level] + kk[level]]
        if c_new >= best:
            continue  # fewer items here cost less: try them
        if r_new <= 0:
            best = c_new
            best_k[: level + 1] = kk[: level + 1]
            best_k[level + 1 :] = 0
            continue
        if level + 1 == G or suffix[level + 1] < r_new:
            level -= 1  # fewer items here cover even less
            continue
        lb = c_new
        rr = r_new
        for idx in glob:
            if item_rank[idx] <= level:
                continue
            if save[idx] >= rr:
                lb += rr * ratio[idx]
                rr = 0.0
                break
            lb += cost[idx]
            rr -= save[idx]
        if lb >= best * (1 - 1e-12):
            continue
        level += 1
        R[level] = r_new
        C[level] = c_new
        g = border[level]
        kk[level] = min(gstart[g + 1] - gstart[g], math.ceil(r_new / gsave[g])) + 1
    for k in range(G):
        g = border[k]
        for m in range(best_k[k]):
            chosen[members[gstart[g] + m]] = True
    return best, chosen, exact


@numba.njit(cache=True, nogil=True)  # nogil: the Ctrl-C watchdog thread runs beside it
def _stage_items(x, y, ti, member, has_alt, extra, less_a, more_b, level):  # pragma: no cover - compiled
    """Recomputation items of stage X \\ Y at degree ti for ``level`` microbatches in flight."""
    n = member.shape[1]
    cnt = 0
    for v in range(n):
        if member[x, v] and not member[y, v] and has_alt[v, ti] and level * less_a[v, ti] - more_b[v, ti] > 0:
            cnt += 1
    idx = np.empty(cnt, dtype=np.int64)
    cost = np.empty(cnt)
    save = np.empty(cnt)
    c = 0
    for v in range(n):
        if member[x, v] and not member[y, v] and has_alt[v, ti]:
            s = level * less_a[v, ti] - more_b[v, ti]
            if s > 0:
                idx[c] = v
                cost[c] = extra[v, ti]
                save[c] = s
                c += 1
    return idx, cost, save


@numba.njit(cache=True, nogil=True)  # nogil: the Ctrl-C watchdog thread runs beside it
def _last_fitting(a, b, cap, lo, hi):  # pragma: no cover - compiled
    """Largest y in [lo, hi] with a·y + b ≤ cap (lo - 1 if none)."""
    if a <= 0:
        return hi if lo * a + b <= cap else lo - 1
    y = math.floor((cap - b) / a)
    y = min(max(y, lo - 1), hi)
    while y >= lo and y * a + b > cap:
        y -= 1
    while y + 1 <= hi and (y + 1) * a + b <= cap:
        y += 1
    return y


@numba.njit(cache=True, nogil=True, inline="always")
def _tps(base, q, comm, wsum, d, N, bw):  # pragma: no cover - compiled
    """Stage time per sample (the formula of :mod:`~pipesim.placement.plan.evaluate`)."""
    return (base + q) / d + (comm / d + 4.0 * (d - 1) * wsum / d / N) / bw


@numba.njit(cache=True, nogil=True, inline="always")
def _devices_needed(work, tau):  # pragma: no cover - compiled
    """A lower bound on the devices that run ``work`` (device-seconds per sample) within tau."""
    if work <= 0.0:
        return 0
    if math.isinf(tau):
        return 1
    return math.ceil(work / tau * (1 - 1e-12))


@numba.njit(cache=True, nogil=True)  # nogil: the Ctrl-C watchdog thread runs beside it
def _run(tau, px, py, n_ideals, sizes, sup_cnt, P, A, B, W, IN, OUT, entering_ptr, entering_src,
         entering_edge, win, wout, member, has_alt, extra, less_a, more_b, cap, work, degrees, dvals, K, N,
         smax, bw, qcache, use_cache, record, node_limit):  # pragma: no cover - compiled
    """One threshold run: fewest devices per (tail, data-parallel sum) with every stage ≤ tau.

    ``f[X][s]`` is that number (``_BIG`` if none), ``g[X][s]`` the largest stage time on
    the path that achieves it.  Pairs come sorted by their larger tail, so a row is final
    before it is read.  A transition is skipped when the layers before the stage cannot
    fit in the devices left (``work``: per-tail least device-seconds per sample).

    Also returns ``next_change``: no plan has a time in (tau, next_change), because
    every transition this run rejected would be rejected below that value (the
    rejections are by stage time or by the device bound, whose threshold is recorded).
    Knapsack answers Q(y) are cached in ``qcache[pair*T + t, y]`` (NaN: unknown) when
    ``use_cache``, else per pair for this run only.
    """
    T = P.shape[1]
    f = np.full((n_ideals, smax + 1), _BIG, dtype=np.int32)
    g = np.full((n_ideals, smax + 1), np.inf)
    f[0, 0] = 0
    g[0, 0] = 0.0
    fmin = np.full(n_ideals, _BIG, dtype=np.int32)
    fmin[0] = 0
    if record:
        ch = np.full((n_ideals, smax + 1, 3), -1, dtype=np.int32)
    else:
        ch = np.full((1, 1, 3), -1, dtype=np.int32)
    local_q = np.zeros(smax + 2)
    local_stamp = np.full(smax + 2, -1, dtype=np.int64)
    next_change = np.inf
    knapsacks = 0
    inexact = 0
    total_work = work[n_ideals - 1]
    for p in range(px.shape[0]):
        x, y = px[p], py[p]
        if fmin[y] >= _BIG:
            continue
        before = _devices_needed(total_work - work[x], tau)
        if fmin[y] + 1 + before > K:
            rem = K - fmin[y] - 1
            if rem > 0:
                next_change = min(next_change, (total_work - work[x]) / rem)
            continue
        size = sizes[x] - sizes[y]
        for ti in range(T):
            if sup_cnt[x, ti] - sup_cnt[y, ti] != size:
                continue
            t = degrees[ti]
            p0 = P[x, ti] - P[y, ti]
            a0 = A[x, ti] - A[y, ti]
            b0 = B[x, ti] - B[y, ti]
            w0 = W[x, ti] - W[y, ti]
            bypass = 0.0
            for k in range(entering_ptr[y], entering_ptr[y + 1]):
                if not member[x, entering_src[k]]:
                    e = entering_edge[k]
                    bypass += win[e, ti] + wout[e, ti]
            comm = IN[x, ti] + OUT[y, ti] - bypass
            fast_fit = _last_fitting(a0, b0, cap, 1, smax)
            no_fit = smax + 1  # first level known not to fit at all
            stamp = p * T + ti
            for d in dvals:
                td = t * d
                if td > K:
                    break
                if fmin[y] + td + before > K:
                    rem = K - fmin[y] - td
                    if rem > 0:
                        next_change = min(next_change, (total_work - work[x]) / rem)
                    continue
                low = _tps(p0, 0.0, comm, w0, d, N, bw)
                if low > tau:
                    next_change = min(next_change, low)
                    continue
                for s in range(d, smax + 1):
                    fy = f[y, s - d]
                    if fy >= _BIG:
                        continue
                    if fy + td + before > K:
                        rem = K - fy - td
                        if rem > 0:
                            next_change = min(next_change, (total_work - work[x]) / rem)
                        continue
                    level = (s + d - 1) // d
                    if level >= no_fit:
                        break
                    if level <= fast_fit:
                        q = 0.0
                    else:
                        if use_cache:
                            q = qcache[stamp, level]
                            known = not math.isnan(q)
                        else:
                            known = local_stamp[level] == stamp
                            q = local_q[level]
                        if not known:
                            idx, cost, save = _stage_items(x, y, ti, member, has_alt, extra, less_a, more_b, level)
                            q, chosen, exact = _cover(cost, save, level * a0 + b0 - cap, node_limit)
                            knapsacks += 1
                            if not exact:
                                inexact += 1
                            if math.isinf(q):
                                last = smax
                            else:
                                a_r, b_r = a0, b0
                                for i in range(idx.shape[0]):
                                    if chosen[i]:
                                        a_r -= less_a[idx[i], ti]
                                        b_r += more_b[idx[i], ti]
                                last = max(level, _last_fitting(a_r, b_r, cap, level, smax))
                            for lv in range(level, last + 1):
                                if use_cache:
                                    qcache[stamp, lv] = q
                                else:
                                    local_stamp[lv] = stamp
                                    local_q[lv] = q
                        if math.isinf(q):
                            no_fit = level
                            break
                    value = _tps(p0, q, comm, w0, d, N, bw)
                    if value > tau:
                        next_change = min(next_change, value)
                        break  # larger s: more in flight, no faster
                    c = fy + td
                    bottleneck = max(g[y, s - d], value)
                    if c < f[x, s] or (c == f[x, s] and bottleneck < g[x, s]):
                        f[x, s] = c
                        g[x, s] = bottleneck
                        fmin[x] = min(fmin[x], c)
                        if record:
                            ch[x, s, 0] = p
                            ch[x, s, 1] = ti
                            ch[x, s, 2] = d
    return f, g, ch, next_change, knapsacks, inexact


@numba.njit(cache=True, nogil=True)  # nogil: the Ctrl-C watchdog thread runs beside it
def _pairs(bits, key, window):  # pragma: no cover - compiled
    """All (X, Y) with Y ⊊ X and key(X) - key(Y) ≤ window, sorted by X.

    Tails are numbered by size, so a proper sub-tail of X has a smaller number;
    inclusion is tested on the packed bit rows.
    """
    N, words = bits.shape
    capacity = 1024
    px = np.empty(capacity, dtype=np.int32)
    py = np.empty(capacity, dtype=np.int32)
    used = 0
    for i in range(N):
        floor = key[i] - window
        for j in range(i):
            if key[j] < floor:
                continue
            inside = True
            for w in range(words):
                if bits[j, w] & ~bits[i, w]:
                    inside = False
                    break
            if not inside or j == i:
                continue
            if used == capacity:
                capacity *= 2
                nx_ = np.empty(capacity, dtype=np.int32)
                ny_ = np.empty(capacity, dtype=np.int32)
                nx_[:used] = px[:used]
                ny_[:used] = py[:used]
                px, py = nx_, ny_
            px[used] = i
            py[used] = j
            used += 1
    return px[:used].copy(), py[:used].copy()


# --------------------------------------------------------------------------- driver


def _csr(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(matrix)
    return np.searchsorted(rows, np.arange(matrix.shape[0] + 1)).astype(np.int64), cols.astype(np.int64)


def _divisors(N: int, limit: int) -> list[int]:
    return [d for d in range(1, min(N, limit) + 1) if N % d == 0]


def solve_plan(
    workload: PlanningWorkload,
    *,
    data_parallel: bool = True,
    tensor_parallel: bool = True,
    recompute: bool = True,
    max_tensor_parallel: int | None = None,
    ideal_limit: int = 2_000_000,
) -> Plan:
    """The plan of least time per sample for ``workload`` under Piper's model (docs/model.md §10).

    Parameters
    ----------
    workload : PlanningWorkload
        Layers, edges and the limits K (``devices``), M (``memory``), BW
        (``bandwidth``) and N (``microbatches``).
    data_parallel, tensor_parallel, recompute : bool
        Allow ``d > 1``, ``t > 1`` and configurations that recompute activations.
    max_tensor_parallel : int, optional
        Largest ``t`` allowed (e.g. the devices of one cluster node).
    ideal_limit : int
        Raise :class:`~pipesim.errors.IdealLimitError` past this many tails.

    Returns
    -------
    Plan
        ``optimal`` with its stages (evaluated by :func:`evaluate_plan`), or
        ``infeasible`` with the reason.

    Raises
    ------
    InputError
        When a layer's configurations differ in more than time and memory, or
        offer more than two non-dominated choices.
    InternalError
        When the planner's value and the evaluator's disagree (a bug).

    Examples
    --------
    >>> from pipesim.placement.plan.workload import Configuration, Layer, LayerEdge, PlanningWorkload
    >>> c = Configuration("vanilla", time=2.0, parameters=0.0, memory_a=1.0, memory_b=0.0)
    >>> layers = tuple(Layer(i, {1: (c,)}) for i in range(4))
    >>> w = PlanningWorkload(layers, tuple(LayerEdge(i, i + 1, 0.0) for i in range(3)),
    ...                      devices=4, memory=100.0, bandwidth=1.0, microbatches=4)
    >>> p = solve_plan(w)
    >>> p.status, p.time_per_sample, p.devices_used
    ('optimal', 2.0, 4)
    """
    started = time.perf_counter()
    K, N, BW = workload.devices, workload.microbatches, workload.bandwidth
    tmax = K if max_tensor_parallel is None else min(K, max_tensor_parallel)
    degrees = [t for t in workload.degrees if t <= tmax and (tensor_parallel or t == 1)]
    smax = min(N, K)
    dvals = _divisors(N, smax) if data_parallel else [1]
    stats: dict = {}

    def infeasible(reason: str) -> Plan:
        return Plan(INFEASIBLE, reason=reason, seconds=time.perf_counter() - started, stats=stats)

    if not degrees:
        return infeasible("no tensor-parallel degree is allowed")
    layers = _prepare_layers(workload, degrees, recompute)
    T = len(degrees)
    tb = _tables(workload, layers, T, ideal_limit)
    successors, ideals, member = tb.successors, tb.ideals, tb.member
    sup_cnt, P, A, B, W, IN, OUT = tb.sup_cnt, tb.P, tb.A, tb.B, tb.W, tb.IN, tb.OUT
    entering_ptr, entering_edge, entering_src = tb.entering_ptr, tb.entering_edge, tb.entering_src
    cap, px, py = tb.cap, tb.px, tb.py
    stats.update(ideals=len(ideals), pairs=len(px))
    prepared = time.perf_counter()

    work_node = np.where(layers.supported, layers.time * layers.degrees[None, :], np.inf).min(axis=1)
    work = ideals.accumulate(np.where(np.isinf(work_node), 0.0, work_node)[:, None])[:, 0]
    degrees_arr = np.array(degrees, dtype=np.int64)
    dv = np.array(dvals, dtype=np.int64)
    last = len(ideals) - 1
    counters = {"threshold_runs": 0, "knapsacks": 0, "inexact": 0}

    def runner(px_, py_):
        use_cache = len(px_) * T * (smax + 1) <= _CACHE_ENTRIES
        qcache = np.full((len(px_) * T, smax + 1) if use_cache else (1, 1), np.nan)

        def run(tau: float, record: bool = False):
            raise_if_stopped()  # Ctrl-C between DP runs (no plan before the search ends)
            f, g, ch, nc, kn, inexact = _run(
                tau, px_, py_, len(ideals), ideals.sizes.astype(np.int64), sup_cnt, P, A, B, W, IN, OUT,
                entering_ptr, entering_src, entering_edge, layers.win, layers.wout, member, layers.has_alt,
                layers.extra, layers.less_a, layers.more_b, cap, work, degrees_arr, dv, K, N, smax, BW,
                qcache, use_cache, record, _KNAPSACK_NODE_LIMIT,
            )
            counters["threshold_runs"] += 1
            counters["knapsacks"] += int(kn)
            counters["inexact"] += int(inexact)
            feasible = f[last] <= K
            value = float(g[last][feasible].min()) if feasible.any() else math.inf
            return value, float(nc), (f, g, ch)

        return run

    lower = float(work[last]) / K * (1 - 1e-12)  # every plan: Σ devices ≥ work / time per sample
    # An achievable value first, from the tails that are suffixes of one topological order.
    one_order = _one_order_pairs(ideals, successors, px, py)
    upper = _search(runner(px[one_order], py[one_order]), lower, math.inf)
    run = runner(px, py)
    if math.isinf(upper):
        upper, _, _ = run(math.inf)  # the full problem (memory may only fit other orders)
    if math.isinf(upper):
        stats.update(counters, seconds_prepare=prepared - started)
        return infeasible(_why_infeasible(workload, layers, degrees))
    tau = _search(run, lower, upper)
    _, _, (f, g, ch) = run(tau, record=True)
    inexact = counters["inexact"]
    stats.update(counters, seconds_prepare=prepared - started, seconds_search=time.perf_counter() - prepared)
    stages = _backtrack(f, g, ch, py, member, layers, A, B, workload, degrees, K)
    plan = evaluate_plan(
        workload,
        Plan(OPTIMAL if inexact == 0 else FEASIBLE, stages=tuple(stages), objective="piper", stats=stats),
    )
    if plan.status == INFEASIBLE or not math.isclose(plan.time_per_sample, tau, rel_tol=1e-9, abs_tol=1e-15):
        raise InternalError(f"planner value {tau!r} but the evaluator gives {plan.time_per_sample!r} ({plan.reason})")
    reason = None if inexact == 0 else f"{inexact} stage knapsacks hit the search limit: optimality not proved"
    return replace(plan, reason=reason, seconds=time.perf_counter() - started)


def _search(run, lower: float, upper: float) -> float:
    """Least achievable time per sample, given ``run(tau) -> (value ≤ tau or inf, next_change, _)``.

    Invariant: no plan is faster than ``lower``; some plan takes ``upper``.  Bisect,
    moving ``upper`` to the value found and ``lower`` to the next value at which an
    infeasible run could change; near the end test ``lower`` itself.
    """
    if math.isinf(upper):
        upper, _, _ = run(math.inf)
        if math.isinf(upper):
            return math.inf
    while lower < upper:
        if upper - lower <= 1e-7 * upper:
            tau = lower
        elif lower > 0:
            tau = math.sqrt(lower * upper)
        else:
            tau = upper / 2
        value, next_change, _ = run(tau)
        if value <= tau:
            upper = value
        else:
            lower = max(lower, min(next_change, upper))
    return upper


def _one_order_pairs(ideals: Ideals, successors: list[list[int]], px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Mask of the pairs whose two tails are suffixes of one topological order."""
    n = ideals.n
    indegree = [0] * n
    for vs in successors:
        for v in vs:
            indegree[v] += 1
    ready = [v for v in range(n) if indegree[v] == 0]
    order = []
    while ready:
        u = ready.pop()
        order.append(u)
        for v in successors[u]:
            indegree[v] -= 1
            if indegree[v] == 0:
                ready.append(v)
    rows = np.zeros((n + 1, n), dtype=bool)
    for k in range(n):
        rows[k + 1] = rows[k]
        rows[k + 1, order[n - 1 - k]] = True
    suffixes = {r.tobytes() for r in pack(rows)}
    is_suffix = np.array([r.tobytes() in suffixes for r in ideals.bits])
    return is_suffix[px] & is_suffix[py]


def _backtrack(f, g, ch, py, member, layers: _Layers, A, B, workload: PlanningWorkload, degrees, K) -> list[PlanStage]:
    last = len(f) - 1
    s = int(np.argmin(np.where(f[last] <= K, g[last], np.inf)))
    x = last
    stages = []
    while x != 0:
        p, ti, d = (int(v) for v in ch[x, s])
        if p < 0:
            raise InternalError(f"cannot retrace the plan at tail {x}, s={s}")
        y = int(py[p])
        level = -(-s // d)
        nodes = np.flatnonzero(member[x] & ~member[y])
        a0 = A[x, ti] - A[y, ti]  # as the DP computed them
        b0 = B[x, ti] - B[y, ti]
        cap = workload.memory * (1 + MEMORY_TOLERANCE / 2)
        idx, cost, save = _stage_items(x, y, ti, member, layers.has_alt, layers.extra, layers.less_a, layers.more_b, level)
        _, chosen, _ = _cover(cost, save, level * a0 + b0 - cap, _KNAPSACK_NODE_LIMIT)
        alt = {int(v) for v, c in zip(idx, chosen) if c}
        config = {
            workload.layers[v].id: (layers.alt_id[v][ti] if v in alt else layers.base_id[v][ti]) for v in nodes
        }
        stages.append(
            PlanStage(
                nodes=tuple(workload.layers[v].id for v in nodes),
                tensor_parallel=int(degrees[ti]),
                data_parallel=d,
                configuration=config,
            )
        )
        x, s = y, s - d
    return stages


def _why_infeasible(workload: PlanningWorkload, layers: _Layers, degrees) -> str:
    if not layers.supported.any(axis=1).all():
        missing = [workload.layers[v].id for v in np.flatnonzero(~layers.supported.any(axis=1))]
        return f"layers {missing[:8]} have no configuration at the allowed tensor-parallel degrees {list(degrees)}"
    return (
        f"out of memory: no plan fits {workload.memory / 2**30:.3g} GiB per device "
        f"on {workload.devices} devices with {workload.microbatches} microbatches per batch"
    )


def cluster_limits(cluster: Cluster) -> dict:
    """K, M, BW and the largest t that a homogeneous cluster gives Piper's model.

    Piper's model has one bandwidth from each device to the rest: the network's
    share per device (the slower of the two links a stage boundary may cross).
    Tensor parallelism stays inside a node (t ≤ devices per node).

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> limits = cluster_limits(load_cluster("dgx-a100x4"))
    >>> limits["devices"], limits["memory"], limits["bandwidth"], limits["max_tensor_parallel"]
    (32, 80000000000.0, 25000000000.0, 8)
    """
    if not cluster.homogeneous:
        raise InputError(None, "hardware", f"{cluster.name} mixes node types; Piper's model needs one device type")
    node = cluster.nodes[0][0]
    return {
        "devices": cluster.device_count,
        "memory": node.device.memory,
        "bandwidth": node.network_bandwidth_per_device,
        "max_tensor_parallel": node.devices,
    }


def plan(
    workload: PlanningWorkload | str | Path,
    *,
    devices: int | None = None,
    memory: float | str | None = None,
    bandwidth: float | str | None = None,
    microbatches: int | None = None,
    hardware: Cluster | str | Path | None = None,
    objective: str = "piper",
    data_parallel: bool = True,
    tensor_parallel: bool = True,
    recompute: bool = True,
) -> Plan:
    """The best hybrid-parallel plan for a workload (a file or a :class:`PlanningWorkload`).

    Parameters
    ----------
    workload : PlanningWorkload, str or Path
        Piper's JSON file, or a workload built by
        :func:`pipesim.workloads.planning.planning_workload` (pipesim's own models).
    devices, memory, bandwidth, microbatches
        K, M (bytes, or text such as ``"8GiB"``), BW (bytes/s, or
        ``"25GiB/s"``) and N; they override the file's and the cluster's.
    hardware : Cluster, str or Path, optional
        A cluster preset, YAML file or :class:`~pipesim.hardware.clusters.Cluster`:
        sets K, M, BW and the largest ``t`` (:func:`cluster_limits`) and, for
        ``objective="flush"``, the nodes and their two links.
    objective : {"piper", "flush"}
        Piper's time per sample (:func:`solve_plan`), or the iteration time
        of 1F1B with a flush (:func:`pipesim.placement.plan.flush.solve_flush_plan`).
    data_parallel, tensor_parallel, recompute : bool
        Allow ``d > 1``, ``t > 1`` and recomputation.

    Returns
    -------
    Plan

    Raises
    ------
    InputError
        An unknown objective, a bad file, or a cluster the model cannot use.

    Examples
    --------
    >>> from pipesim.placement.examples import uniform_planning_chain
    >>> w = uniform_planning_chain(4, time=2.0, parameters=1.0, microbatches=8)
    >>> plan(w).time_per_sample, plan(w, objective="flush").iteration_time
    (2.0, 22.0)
    """
    from pipesim.placement.plan.flush import Geometry, solve_flush_plan

    if objective not in OBJECTIVES:
        raise InputError(None, "objective", f"must be 'piper' or 'flush', got {objective!r}")
    if not isinstance(workload, PlanningWorkload):
        workload = read_piper_workload(Path(workload))
    max_t = None
    cluster = None
    if hardware is not None:
        cluster = hardware if isinstance(hardware, Cluster) else load_cluster(hardware)
        limits = cluster_limits(cluster)
        max_t = limits.pop("max_tensor_parallel")
        workload = workload.with_limits(**limits)
    workload = workload.with_limits(
        devices=devices,
        memory=parse(memory, BYTES, "memory") if isinstance(memory, str) else memory,
        bandwidth=parse(bandwidth, BANDWIDTH, "bandwidth") if isinstance(bandwidth, str) else bandwidth,
        microbatches=microbatches,
    )
    switches = {"data_parallel": data_parallel, "tensor_parallel": tensor_parallel, "recompute": recompute}
    if objective == "flush":
        geometry = Geometry.of(cluster, workload.devices) if cluster is not None else Geometry.flat(workload)
        return solve_flush_plan(workload, geometry, **switches)
    return solve_plan(workload, max_tensor_parallel=max_t, **switches)
