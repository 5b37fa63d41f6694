"""The optimal contiguous split by dynamic programming over ideals.

Problem (docs/model.md §2, §4; Tarnawski et al., NeurIPS 2020, §4): place every node of
an operator graph on one of the available devices so that each device runs a
contiguous set of forward nodes (with their backward partners) and the
max-load is least.  Guarantee: the split returned is optimal among contiguous
splits, for any number of device classes (docs/model.md §5).

Let ``dp[I][n]`` be the least max-load placing ideal ``I`` on at most ``n``
devices (``n`` a vector of counts per class).  Then ``dp[∅][n] = 0`` and::

    dp[I][n] = min over classes K with n_K > 0, over ideals J ⊊ I of
               max(dp[J][n - e_K], cost_K(I \\ J))

where ``cost_K(S)`` is the load of ``S`` (plus backward partners) on one
device of class ``K`` (docs/model.md §2), infinite when memory or support forbids.  The
answer is ``dp[V][counts]``.

Where the time goes, and what this implementation does about it:

* costs are derived per ideal, not per pair: compute, memory and support are
  differences of per-ideal sums, and communication comes from per-ideal
  counts of each transfer group's nodes (see :func:`_push`);
* the DP is filled in one pass over ideals in inclusion order, *pushing* each
  finished ``dp[J]`` (all device-count vectors at once) to its supersets;
* a pair whose compute alone exceeds an upper bound on the optimum (the best
  split that follows one topological order, found first) can never be in the
  optimal answer, so only supersets within that compute window are visited;
  the supersets of ``J`` are the ideals holding ``J``'s maximal elements; a
  pair whose compute plus ``A(I) - A(J)`` (a lower bound on its
  communication) exceeds the bound is dropped before its communication is
  computed, and so is a state whose remaining work cannot fit in the devices
  left;
* per-ideal data is built with vectorised numpy; the push loop itself is one
  compiled kernel (numba), because per-ideal numpy calls on a few hundred
  candidates cost more in call overhead than in arithmetic (measured: GNMT
  5-12 s in numpy, see the benchmark notes); the split is recovered afterwards
  by recomputing the few winning transitions instead of storing
  back-pointers for every state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from pipesim.errors import IdealLimitError, InternalError, ResourceLimitError
from pipesim.hardware.units import format_bytes
from pipesim.placement.activations import in_flight, node_stash
from pipesim.placement.dp.contract import ContractedGraph, contract
from pipesim.placement.devices import cap_counts
from pipesim.placement.evaluate import evaluate
from pipesim.placement.interrupt import raise_if_stopped
from pipesim.placement.graph import Graph
from pipesim.placement.dp.ideals import Ideals, enumerate_ideals, unpack
from pipesim.placement.dp.kernels import kernel
from pipesim.placement.memory import MemoryBudget
from pipesim.placement.result import FEASIBLE, INFEASIBLE, OPTIMAL, PlacementResult
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload

__all__ = ["DPError", "ProgressCallback", "alternatives", "solve_dp"]

#: ``progress(stage, done, total)``, called as the DP's long stages advance: stage ``"ideals"``
#: (done = ideal sizes enumerated, total = super-nodes) and ``"dp"`` (done = ideals pushed,
#: total = ideals).  The command line draws it (the command line's progress bars); the DP draws nothing.
ProgressCallback = Callable[[str, int, int], None]


class DPError(InternalError):
    """The DP's own value disagrees with the evaluator (a bug, never expected)."""


@dataclass
class _Problem:
    """Per-ideal data of the DP, for the device classes that have devices.

    A *transfer group* ``g`` gathers the original nodes ``u`` whose super-node
    together with their successors' super-nodes form the same set ``Y_g``;
    a device holding ``S`` pays ``c_g`` iff ``S`` splits ``Y_g``.
    """

    classes: list[str]          # device classes with at least one device
    counts: tuple[int, ...]     # devices per class
    grid: _DeviceGrid           # the device-count vectors the DP table is indexed by
    capacity: np.ndarray        # (m,) memory per device of each class
    ideals: Ideals
    maximal: tuple[np.ndarray, np.ndarray]     # CSR (pointer, nodes): each ideal's maximal super-nodes
    features: np.ndarray        # (N, 2m+1): compute+A(I) per class | memory | unsupported per class
    alone: np.ndarray           # (N, m) communication of each ideal on its own: A(I)
    inside: np.ndarray          # (N, G) how many super-nodes of Y_g lie in I
    straddling: tuple[np.ndarray, np.ndarray]  # CSR (pointer, groups): the groups each ideal splits
    group_size: np.ndarray      # (G,) |Y_g|
    group_cost: np.ndarray      # (G, m) transfer cost of each group per class
    min_compute: np.ndarray     # (N,) per-ideal compute, each node on its cheapest class
    slowdown: np.ndarray        # (m,) ρ_K: compute_K(S) >= ρ_K * min_compute(S) for every S
    lower_bound: float = 0.0    # no split has a smaller max-load (see _lower_bound)
    # In-flight activations (placement.activations), off in the paper's model: per-ideal stash of one
    # microbatch, and per device-count vector n the microbatches beyond one that a stage pushed from n
    # (at pipeline position |n|) holds; -1 forbids a stage there.  With ``stages`` set, the table counts
    # devices exactly (dp[∅][n] = 0 only for n = 0) and the answer uses exactly that many stages.
    stash: np.ndarray | None = None
    extra: np.ndarray | None = None
    stages: int | None = None

    @property
    def m(self) -> int:
        return len(self.classes)


def _build_problem(graph: Graph, devices, contracted: ContractedGraph, ideals: Ideals, budget: MemoryBudget) -> _Problem:
    usable = [dc for dc in devices if dc.count > 0]
    classes = [dc.name for dc in usable]
    m, n = len(classes), len(contracted)
    # A split has at most one device per super-node, so devices beyond n can never be used:
    # capping the counts at n (cap_counts) leaves every answer unchanged and keeps the table finite.
    counts = tuple(dc.count for dc in cap_counts(usable, n))
    time_ = np.zeros((n, m))
    memory = np.zeros(n)
    unsupported = np.zeros((n, m))
    for v, node in graph.nodes.items():
        s = contracted.super_of[v]
        memory[s] += node.memory
        for k, cls in enumerate(classes):
            if node.supports(cls):
                time_[s, k] += node.time[cls]
            else:
                unsupported[s, k] += 1

    groups: dict[frozenset[int], np.ndarray] = {}
    for u, node in graph.nodes.items():
        y = {contracted.super_of[u]} | {contracted.super_of[w] for w in graph.dag.successors(u)}
        cost = np.array([node.transfer.get(cls, 0.0) for cls in classes])
        if len(y) > 1 and cost.any():
            key = frozenset(y)
            groups[key] = groups.get(key, 0.0) + cost
    group_sets = list(groups)
    group_member = np.zeros((len(group_sets), n), dtype=np.float32)
    for g, y in enumerate(group_sets):
        group_member[g, list(y)] = 1.0
    group_cost = np.array([groups[y] for y in group_sets]).reshape(len(group_sets), m)
    group_size = group_member.sum(axis=1).astype(np.int32)
    # |Y ∩ I| <= |Y|: the smallest integer type that holds the largest group keeps `inside` small.
    kind = next(t for t in (np.uint8, np.uint16, np.int32) if group_size.max(initial=0) <= np.iinfo(t).max)
    N, G = len(ideals), len(group_sets)
    budget.reserve(_table_bytes(N, n, G, m, np.dtype(kind).itemsize, _grid_size(counts)),
                   f"the DP's tables for {N:,} ideals of {n} super-nodes")

    # Per-ideal sums, accumulated from each ideal's parent (no ideal x node matmuls).
    cheapest = _cheapest_time(time_, unsupported)
    per_node = np.hstack([time_, memory[:, None], unsupported, cheapest[:, None]])
    sums = ideals.accumulate(per_node)
    compute, mem, uns, min_compute = sums[:, :m], sums[:, m], sums[:, m + 1 : 2 * m + 1], sums[:, -1]
    inside = ideals.accumulate(group_member.T.astype(kind))
    alone = np.empty((N, m))
    straddling = []
    for rows in _chunks(N, G):  # the ideal x group matrices in slices, never whole
        straddles = (inside[rows] > 0) & (inside[rows] < group_size)
        alone[rows] = straddles.astype(np.float64) @ group_cost
        straddling.append((straddles.sum(axis=1), np.nonzero(straddles)[1]))
    features = np.hstack([compute + alone, mem[:, None], uns])
    del sums, compute, uns

    # J ⊆ I iff I holds J's maximal super-nodes (kept by the enumeration).
    maximal = [(np.bitwise_count(ideals.maximal[rows]).sum(axis=1), np.nonzero(unpack(ideals.maximal[rows], n))[1])
               for rows in _chunks(N, n)]
    problem = _Problem(
        classes=classes,
        counts=counts,
        grid=_DeviceGrid.of(counts),
        capacity=np.array([dc.memory for dc in usable]),
        ideals=ideals,
        maximal=_join_csr(maximal),
        features=features,
        alone=alone,
        inside=inside,
        straddling=_join_csr(straddling),
        group_size=group_size,
        group_cost=group_cost,
        min_compute=min_compute,
        slowdown=_slowdown(time_, unsupported, cheapest),
    )
    problem.lower_bound = _lower_bound(problem, time_, memory, unsupported)
    return problem


def _cheapest_time(time_: np.ndarray, unsupported: np.ndarray) -> np.ndarray:
    """Each super-node's time on the cheapest class that supports it (0 if none does)."""
    best = np.where(unsupported > 0, np.inf, time_).min(axis=1, initial=np.inf)
    return np.where(np.isinf(best), 0.0, best)


def _slowdown(time_: np.ndarray, unsupported: np.ndarray, cheapest: np.ndarray) -> np.ndarray:
    """ρ_K = min over super-nodes of time_K / cheapest time (at least 1): how much slower K is at best."""
    positive = cheapest > 0
    if not positive.any():
        return np.ones(time_.shape[1])
    ratio = np.where(unsupported[positive] > 0, np.inf, time_[positive] / cheapest[positive, None])
    return np.maximum(ratio.min(axis=0), 1.0)


@dataclass(frozen=True)
class _DeviceGrid:
    """Device-count vectors ``n`` (0..count per class), flattened to indices ``0..L-1``.

    ``down[k][n]`` is the index of ``n - e_k`` and ``up[k][n]`` that of
    ``n + e_k``; both are ``L`` (an always-infinite DP column) where the move
    leaves the grid.
    """

    counts: tuple[int, ...]
    strides: np.ndarray
    vectors: np.ndarray  # (m, L): vectors[k][n] = n_k
    down: np.ndarray
    up: np.ndarray

    @classmethod
    def of(cls, counts: tuple[int, ...]) -> "_DeviceGrid":
        shape = tuple(c + 1 for c in counts)
        L = int(np.prod(shape))
        vectors = np.indices(shape).reshape(len(shape), L)
        strides = np.array([int(np.prod(shape[k + 1 :])) for k in range(len(shape))])
        flat = np.arange(L)
        down = np.array([np.where(vectors[k] > 0, flat - strides[k], L) for k in range(len(shape))], int).reshape(-1, L)
        up = np.array([np.where(vectors[k] < counts[k], flat + strides[k], L) for k in range(len(shape))], int).reshape(-1, L)
        return cls(counts, strides, vectors, down, up)

    @property
    def size(self) -> int:
        return self.vectors.shape[1]


def _chunks(rows: int, width: int, size: int = 1 << 24):
    """Slices of ``rows`` such that a (slice x width) temporary has about ``size`` cells."""
    step = max(1, size // max(1, width))
    return [slice(start, min(rows, start + step)) for start in range(0, rows, step)]


def _join_csr(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """CSR (pointer, columns) from per-slice (row lengths, columns)."""
    lengths = np.concatenate([length for length, _ in parts]) if parts else np.zeros(0, np.int64)
    pointer = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=pointer[1:])
    columns = np.concatenate([cols for _, cols in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    return pointer, columns


def _grid_size(counts: tuple[int, ...]) -> int:
    return math.prod(c + 1 for c in counts)


def _table_bytes(N: int, n: int, G: int, m: int, inside_bytes: int, L: int) -> int:
    """Peak bytes of the DP's per-ideal data (an estimate that errs high).

    Per ideal: sums and features (about 6m+4 floats), ``inside`` and the
    accumulation's temporaries (3 x G small integers), the maximal and
    straddling lists (at most n + G indices, 8 bytes each, counted at a quarter:
    they are sparse), the order arrays of :func:`_run` (4 x 8 bytes plus the
    packed bits), and two DP tables of L + 1 floats (the one-order bound's and
    the full run's).
    """
    words = max(1, -(-n // 64))
    per_ideal = 8 * (6 * m + 4) + 3 * G * inside_bytes + 2 * (n + G) + 32 + 8 * words + 2 * 8 * (L + 1)
    return N * per_ideal


def _run(p: _Problem, upper_bound: float, allowed: np.ndarray | None = None, progress=None,
         budget: MemoryBudget | None = None):
    """Fill the DP table, pushing each finished ideal to its supersets within the compute window.

    ``allowed`` restricts the ideals used (for the one-order upper bound).
    Returns the table ``dp`` (N, L + 1; the last column is an always-infinite
    sentinel) and the numbers of ideal pairs examined and costed.
    """
    N = len(p.ideals)
    L = p.grid.size
    if budget is not None:
        budget.reserve(N * (L + 1) * 8, f"a DP table of {N:,} ideals x {L + 1:,} device-count vectors")
    dp = np.full((N, L + 1), np.inf)
    if p.stages is None:
        dp[0, :L] = 0.0  # any devices may stay unused
    else:
        dp[0, 0] = 0.0  # dp[I][n]: exactly n devices, so a stage pushed from n sits at position |n|
    stash = np.zeros(N) if p.stash is None else p.stash
    extra = np.zeros(L + 1) if p.extra is None else p.extra
    allowed = np.ones(N, dtype=bool) if allowed is None else allowed

    # Candidates I ⊋ J have compute in [c(J), c(J) + bound]: sort ideals by compute and
    # keep each word of the ideals' packed bits as a row over that order, so the supersets
    # of J within its window are the positions where the bits of J's maximal elements are set.
    order = np.argsort(p.min_compute, kind="stable")
    order = order[allowed[order]]
    key = p.min_compute[order]
    total = float(p.min_compute[-1])
    slack = 1e-9 * max(1.0, total)
    window_hi = np.searchsorted(key, p.min_compute + upper_bound + slack, side="right")
    rows = np.ascontiguousarray(p.ideals.bits[order].T)

    # A state (X, n) can lead to a split within the bound only if the rest of the graph
    # fits in the devices left: each device of class K takes at most bound/ρ_K of
    # cheapest-class compute.  need[n] is the least compute X must hold at n devices.
    if math.isinf(upper_bound):
        need = np.full(L, -np.inf)
    else:
        left = ((np.array(p.counts)[:, None] - p.grid.vectors) * (upper_bound / p.slowdown)[:, None]).sum(axis=0)
        need = total - left - slack
    need = np.append(need, np.inf)
    max_ptr, max_idx = p.maximal
    # each maximal element as (word, bit) of the packed rows, so the kernel tests it with one load
    max_word, max_mask = max_idx // 64, np.left_shift(np.uint64(1), (max_idx % 64).astype(np.uint64))
    str_ptr, str_idx = p.straddling
    pairs = np.zeros(2, dtype=np.int64)
    # an estimate of the pairs the kernel looks at: plain Python below kernels.SMALL_WORK
    work = int(np.clip(window_hi - np.arange(N), 0, None).sum()) * (L + 1) + N * L  # pairs x device-count states
    step = 2048
    for start in range(0, N, step):  # chunks to report progress and to see Ctrl-C (no answer before the end)
        raise_if_stopped()
        if progress is not None:
            progress(start, N)
        pairs += _push(
            start, min(N, start + step), dp, upper_bound, slack, allowed, order, key, window_hi, rows,
            p.ideals.sizes, p.ideals.sizes[order], max_ptr, max_word, max_mask, str_ptr, str_idx, p.inside,
            p.group_size, p.group_cost, p.features, p.alone, p.capacity, p.min_compute, need, p.grid.up, stash, extra,
            work=work,
        )
    if progress is not None:
        progress(N, N)
    return dp, pairs


@kernel
def _push(
    first, last, dp, bound, slack, allowed, order, key, window_hi, rows, sizes, sorted_sizes,
    max_ptr, max_word, max_mask, str_ptr, str_idx, inside, group_size, group_cost, features, alone,
    capacity, min_compute, need, up, stash, extra,
):  # pragma: no cover - compiled; exercised through solve_dp
    """The DP's inner loop for ideals ``first..last-1`` (see :func:`_run`).

    Returns the number of (J, I) pairs examined and of those whose cost was computed.

    For a candidate ``I ⊋ J`` the cost on class K is ``compute_K(I) - compute_K(J)``
    plus the communication of ``S = I \\ J``.  A transfer group ``Y`` is paid iff
    ``0 < |Y ∩ S| < |Y|`` with ``|Y ∩ S| = inside(I) - inside(J)``; a group split by
    ``S`` but not by ``I`` must straddle ``J``, so ``comm(S) = A(I)`` plus, over the
    groups straddling ``J``, ``+c_g`` where ``Y ⊆ I`` and ``-c_g`` where
    ``inside(I) = inside(J)``.  ``features[:, :m]`` already holds compute + A.
    """
    m = capacity.shape[0]
    L = up.shape[1]
    examined = 0
    costed = 0
    live = np.zeros(L, dtype=np.int64)
    cost = np.zeros(m)
    for j in range(first, last):
        if not allowed[j]:
            continue
        n_live = 0
        floor = np.inf
        for n in range(L):
            if dp[j, n] <= bound and min_compute[j] >= need[n]:
                live[n_live] = n
                n_live += 1
                for k in range(m):
                    floor = min(floor, need[up[k, n]])
        if n_live == 0:
            continue  # no state of J can lead to a split within the bound
        floor = max(floor, min_compute[j] - slack)
        lo = np.searchsorted(key, floor)
        for pos in range(lo, window_hi[j]):
            if sorted_sizes[pos] <= sizes[j]:
                continue
            superset = True
            for t in range(max_ptr[j], max_ptr[j + 1]):
                if not rows[max_word[t], pos] & max_mask[t]:
                    superset = False
                    break
            if not superset:
                continue
            examined += 1
            i = order[pos]
            # comm(I \\ J) >= A(I) - A(J) (the correction below is at least -A(J)), so
            # features (compute + A) bound the cost from below: skip pairs over the bound.
            # ... and so is a pair that cannot improve any target state even at that bound.
            useful = False
            memory = features[i, m] - features[j, m]
            for k in range(m):
                lower = features[i, k] - features[j, k]
                if lower > bound + slack or memory > capacity[k] * (1 + 1e-12):
                    continue
                if features[i, m + 1 + k] - features[j, m + 1 + k] > 0.5:
                    continue  # a node of the pair cannot run on class k
                for t in range(n_live):
                    target = up[k, live[t]]
                    if target < L and max(dp[j, live[t]], lower) < dp[i, target]:
                        useful = True
                        break
            if not useful:
                continue
            costed += 1
            for k in range(m):
                cost[k] = features[i, k] - features[j, k] + alone[j, k]
            for t in range(str_ptr[j], str_ptr[j + 1]):
                g = str_idx[t]
                count = inside[i, g]
                if count == group_size[g]:
                    for k in range(m):
                        cost[k] += group_cost[g, k]
                elif count == inside[j, g]:
                    for k in range(m):
                        cost[k] -= group_cost[g, k]
            for k in range(m):
                if memory > capacity[k] * (1 + 1e-12) or features[i, m + 1 + k] - features[j, m + 1 + k] > 0.5:
                    cost[k] = np.inf
            stashed = stash[i] - stash[j]
            for t in range(n_live):
                n = live[t]
                if extra[n] < 0:
                    continue  # no stage at this pipeline position
                held = memory + extra[n] * stashed  # the further microbatches in flight at this position
                for k in range(m):
                    target = up[k, n]
                    if target < L and held <= capacity[k] * (1 + 1e-12):
                        value = max(dp[j, n], cost[k])
                        if value < dp[i, target]:
                            dp[i, target] = value
    return examined, costed


def _answer(p: _Problem, dp: np.ndarray) -> tuple[float, int]:
    """The DP's value for the whole graph and the device-count vector (index) it is read at."""
    if p.stages is None:
        return float(dp[-1, p.grid.size - 1]), p.grid.size - 1
    exact = np.flatnonzero(p.grid.vectors.sum(axis=0) == p.stages)
    if not len(exact):
        return math.inf, p.grid.size - 1
    best = int(exact[np.argmin(dp[-1, exact])])
    return float(dp[-1, best]), best


def _backtrack(p: _Problem, contracted: ContractedGraph, dp: np.ndarray, n: int) -> Split:
    """Recover an optimal split by re-finding, stage by stage, a transition that attains dp (from ``n``)."""
    i = len(p.ideals) - 1
    stages: list[tuple[str, frozenset[int]]] = []
    while i != 0:
        target = dp[i, n]
        window = p.min_compute >= p.min_compute[i] - target - 1e-9 * max(1.0, float(p.min_compute[-1]))
        window[i:] = False  # sub-ideals come before i
        subs = np.flatnonzero(window)
        bits = p.ideals.bits
        subs = subs[~(bits[subs] & ~bits[i]).any(axis=1)]
        # comm(I \ J) straight from group counts: split iff 0 < |Y ∩ S| < |Y|
        in_s = p.inside[i].astype(np.int32) - p.inside[subs]
        comm = ((in_s > 0) & (in_s < p.group_size)).astype(np.float64) @ p.group_cost
        diff = p.features[i] - p.features[subs]
        cost = diff[:, : p.m] - (p.alone[i] - p.alone[subs]) + comm
        forbidden = (diff[:, p.m : p.m + 1] > p.capacity * (1 + 1e-12)) | (diff[:, p.m + 1 :] > 0.5)
        if p.extra is not None:  # the stage sits at position |n| - 1, pushed from n - e_K
            extra = p.extra[p.grid.down[:, n]][None, :]
            held = diff[:, p.m : p.m + 1] + extra * (p.stash[i] - p.stash[subs])[:, None]
            forbidden |= (extra < 0) | (held > p.capacity * (1 + 1e-12))
        cost[forbidden] = np.inf
        value = np.maximum(dp[subs][:, p.grid.down[:, n]], cost)  # (nJ, m)
        flat = int(np.argmin(value))
        j, k = int(subs[flat // p.m]), flat % p.m
        if not value.flat[flat] <= target * (1 + 1e-9) + 1e-12:
            raise DPError(f"cannot retrace the DP at ideal {i} (best {value.flat[flat]!r}, table {target!r})")
        supers = np.flatnonzero(unpack((bits[i] & ~bits[j])[None, :], p.ideals.n)[0])
        stages.append((p.classes[k], frozenset(v for s in supers for v in contracted.members[s])))
        i, n = j, n - int(p.grid.strides[k])
    stages.reverse()  # pipeline order: the first stage holds the graph's inputs
    assignment: dict[str, list[frozenset[int]]] = {cls: [] for cls in p.classes}
    for cls, nodes in stages:
        assignment[cls].append(nodes)
    return Split({cls: tuple(devs) for cls, devs in assignment.items()})


def _one_order_ideals(p: _Problem, contracted: ContractedGraph) -> np.ndarray:
    """Mask of the ideals that are prefixes of the super-nodes' topological numbering."""
    n = len(contracted)
    words = max(1, -(-n // 64))
    # prefixes[s] = {0, ..., s-1}, packed: full words below s // 64, then the low s % 64 bits
    size = np.arange(n + 1)[:, None]
    word = np.arange(words)[None, :]
    low = np.left_shift(np.uint64(1), (size % 64).astype(np.uint64)) - np.uint64(1)
    prefixes = np.where(word < size // 64, ~np.uint64(0), np.where(word == size // 64, low, np.uint64(0)))
    ideals = p.ideals
    mask = np.empty(len(ideals), dtype=bool)
    for rows in _chunks(len(ideals), prefixes.shape[1]):
        mask[rows] = (ideals.bits[rows] == prefixes[ideals.sizes[rows]]).all(axis=1)
    return mask


def _upper_bound(p: _Problem, contracted: ContractedGraph, budget: MemoryBudget | None = None,
                 cap: float = math.inf) -> tuple[float, np.ndarray | None]:
    """A max-load some contiguous split achieves (``inf`` if none exists), with its DP table.

    First the best split along one topological order (cheap: ``n + 1`` ideals);
    its table is returned so that, when it meets :func:`_lower_bound`, the split
    can be read from it directly.  If that is infeasible (memory can bind),
    grow a compute window until a run finds a split: any value found is
    achieved by a real split.
    """
    one_order = _one_order_ideals(p, contracted)
    table = _run(p, math.inf, one_order, budget=budget)[0]
    bound = _answer(p, table)[0]
    if not math.isinf(bound) and bound <= cap:
        return bound, table
    if not math.isinf(cap):  # only a split better than ``cap`` matters (a split found already)
        return cap, None
    total = float(p.min_compute[-1])
    window = max(total / max(1, sum(p.counts)), 1e-12)
    while math.isinf(bound) and window <= 4 * total:
        bound = _answer(p, _run(p, window, budget=budget)[0])[0]
        window *= 4
    return (bound if not math.isinf(bound) else _answer(p, _run(p, math.inf, budget=budget)[0])[0]), None


def _lower_bound(p: _Problem, time_: np.ndarray, memory: np.ndarray, unsupported: np.ndarray) -> float:
    """A max-load no split can beat, the largest of three relaxations:

    * the heaviest super-node on its best class (where it is supported and fits);
    * all cheapest-class work spread over all devices at their best rates (ρ_K);
    * memory: the bytes that cannot fit on the finite-memory devices go to the
      unlimited ones, at the least time per byte (a fractional knapsack),
      spread over those devices.
    """
    fits = (unsupported == 0) & (memory[:, None] <= p.capacity[None, :])
    alone = np.where(fits, time_, np.inf).min(axis=1, initial=np.inf)
    capacity = float(np.sum(np.array(p.counts) / p.slowdown))
    spread = float(p.min_compute[-1]) / capacity if capacity > 0 else math.inf
    bound = max(float(alone.max(initial=0.0)), spread)
    unlimited = np.isinf(p.capacity)
    finite_bytes = float(np.sum(np.array(p.counts)[~unlimited] * p.capacity[~unlimited]))
    overflow = float(memory.sum()) - finite_bytes
    if overflow > 0 and unlimited.any():
        host_time = np.where(unsupported[:, unlimited] > 0, np.inf, time_[:, unlimited]).min(axis=1)
        heavy = memory > 0
        per_byte = host_time[heavy] / memory[heavy]
        order = np.argsort(per_byte)
        taken = np.cumsum(memory[heavy][order])
        last = int(np.searchsorted(taken, overflow))
        if last < len(order):
            before = float(taken[last - 1]) if last > 0 else 0.0
            work = float(host_time[heavy][order][:last].sum()) + per_byte[order][last] * (overflow - before)
            bound = max(bound, work / float(np.sum(np.array(p.counts)[unlimited])))
    return bound


def solve_dp(
    workload: Workload,
    *,
    merge: str = "exact",
    fuse_layers: bool = False,
    fuse: Iterable[Iterable[int]] = (),
    order: Iterable[tuple[int, int]] = (),
    ideal_limit: int = 2_000_000,
    progress: ProgressCallback | None = None,
    method: str = "dp",
    memory_budget: float | None = None,
    schedule: str | None = None,
    microbatches: int | None = None,
) -> PlacementResult:
    """Optimal contiguous split of ``workload`` (least max-load).

    Parameters
    ----------
    workload : Workload
        The graph and its devices.  Device counts above the number of
        super-nodes are treated as that number (a split cannot use more).
    merge, fuse_layers, fuse, order
        Preprocessing options of :func:`pipesim.placement.dp.contract.contract`
        (``merge="paper"`` reproduces the paper's inexact merging); with any
        of them the split is optimal only for the restricted problem.
    ideal_limit : int
        Most ideals enumerated.
    progress : ProgressCallback, optional
        ``progress(stage, done, total)`` as the stages advance (see
        :data:`ProgressCallback`); the DP itself draws nothing.
    method : str
        Name put in the result (baselines built on the DP pass theirs).
    memory_budget : float, optional
        Bytes the solve may add to the process's memory (default: a share
        of the available memory, see :mod:`pipesim.placement.memory`).
    schedule : str, optional
        Count the activations this pipeline schedule keeps in flight in the
        memory constraint: the stage at position ``q`` of ``P`` needs
        ``memory + (in_flight(schedule, q, P, microbatches) - 1) x stash``
        (:mod:`pipesim.placement.activations`).  The split is then optimal among
        contiguous splits (in any pipeline order of their stages) that fit
        under that stricter constraint.  ``None`` (default): the paper's static
        memory model, exactly as before.
    microbatches : int, optional
        Microbatches per flush (``gpipe`` keeps all of them in flight;
        default: :data:`~pipesim.placement.activations.MICROBATCHES_PER_STAGE`
        per stage, the simulator's default).

    Returns
    -------
    PlacementResult
        Status ``optimal`` (``feasible`` when restricted) or ``infeasible``;
        the max-load is the evaluator's, checked against the DP's value.

    Raises
    ------
    IdealLimitError
        Past ``ideal_limit`` ideals.
    ResourceLimitError
        When the ideals or the DP's tables would not fit in the memory
        budget.  Both messages end with what can still solve this graph
        (paper merging, layer fusion where the graph has layers, the IP).

    Examples
    --------
    >>> from pipesim.placement import Edge, Graph, Node, Workload, paper_devices
    >>> chain = Graph([Node(i, {"accelerator": 1.0, "cpu": 4.0}) for i in range(4)],
    ...               [Edge(i, i + 1) for i in range(3)])
    >>> solve_dp(Workload(chain, paper_devices(2, 1, 1e9))).max_load
    2.0
    """
    if isinstance(progress, bool):  # the former on/off switch: drawing is the caller's
        progress = None
    fuse, order = [list(group) for group in fuse], list(order)
    budget = MemoryBudget(memory_budget)
    try:
        if schedule is not None:
            in_flight(schedule, 0, 1, microbatches)  # an unknown schedule is refused before any work
        return _solve(workload, merge, fuse_layers, fuse, order, ideal_limit, progress, method, budget, schedule,
                      microbatches)
    except MemoryError:  # an allocation the estimates missed (under ulimit -v): still one line
        raise ResourceLimitError(
            f"out of memory{_address_space_note()}; {alternatives(workload, merge, fuse_layers)}"
        ) from None
    except ResourceLimitError as exc:
        tries = alternatives(workload, merge, fuse_layers)
        if isinstance(exc, IdealLimitError):  # the memory budget still guards a higher limit
            tries = tries.replace("try ", "try --ideal-limit above this (the memory budget still applies), ", 1)
        raise type(exc)(f"{exc}; {tries}") from None


def _address_space_note() -> str:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return "" if soft == resource.RLIM_INFINITY else f" (address-space limit {format_bytes(soft)})"


def alternatives(workload: Workload, merge: str = "exact", fuse_layers: bool = False) -> str:
    """What can still solve ``workload`` when the exact DP is too big for it, as one clause.

    Suggests paper merging and layer fusion only where they shrink this
    graph (layer fusion needs nodes with layer ids, which imported graphs
    lack), and always the IP, which needs no ideals.

    Examples
    --------
    >>> from pipesim.placement import Edge, Graph, Node, Workload, paper_devices
    >>> chain = Graph([Node(i, {"accelerator": 1.0}) for i in range(3)], [Edge(0, 1), Edge(1, 2)])
    >>> alternatives(Workload(chain, paper_devices(2, 0, 1e9)))
    'try --method ip (no ideals; stops at --time-limit with the best split so far)'
    """
    graph, devices = workload.graph, workload.devices
    tries = []
    now = len(contract(graph, devices, merge=merge, fuse_layers=fuse_layers))
    if merge != "paper":
        merged = len(contract(graph, devices, merge="paper", fuse_layers=fuse_layers))
        if merged < now:
            tries.append(f"--merge paper ({merged} super-nodes instead of {now}; inexact when memory binds)")
    if not fuse_layers and any(node.layer_id is not None for node in graph.nodes.values()):
        fused = len(contract(graph, devices, merge=merge, fuse_layers=True))
        if fused < now:
            tries.append(f"--fuse-layers ({fused} super-nodes instead of {now})")
    tries.append("--method ip (no ideals; stops at --time-limit with the best split so far)")
    return "try " + ", or ".join(tries)


def _set_stages(problem: _Problem, schedule: str, stages: int, microbatches: int) -> None:
    """Make ``problem`` count exactly ``stages`` stages, each holding its in-flight activations."""
    sizes = problem.grid.vectors.sum(axis=0)  # a stage pushed from n sits at pipeline position |n|
    problem.stages = stages
    problem.extra = np.array([in_flight(schedule, int(q), stages, microbatches) - 1 if q < stages else -1
                              for q in sizes] + [-1], dtype=np.float64)


def _fill(problem: _Problem, contracted: ContractedGraph, progress, budget, cap: float = math.inf):
    """Bound, then fill the DP: (value, table, the answer's device-count index, pairs, upper bound, time).

    With ``cap`` (the value of a split found already) only splits at most that good are searched for.
    """
    bound, one_order_table = _upper_bound(problem, contracted, budget, cap)
    prepared = time.perf_counter()
    if math.isinf(bound):
        return math.inf, None, 0, (0, 0), bound, prepared
    if one_order_table is not None and bound <= problem.lower_bound * (1 + 1e-12):
        # the one-order split meets the lower bound: optimal
        value, final = _answer(problem, one_order_table)
        return value, one_order_table, final, (0, 0), bound, prepared
    del one_order_table
    dp, pairs = _run(problem, bound, None, None if progress is None else lambda done, total: progress("dp", done, total),
                     budget)
    value, final = _answer(problem, dp)
    return value, dp, final, pairs, bound, prepared


def _solve(workload: Workload, merge, fuse_layers, fuse, order, ideal_limit, progress, method, budget,
           schedule=None, microbatches=None) -> PlacementResult:
    graph, devices = workload.graph, workload.devices
    started = time.perf_counter()
    # Paper-style merging, layer fusion and extra constraints restrict the problem: the split
    # is then optimal for the restricted problem only, so no optimality is claimed.
    restricted = merge == "paper" or fuse_layers or bool(fuse) or bool(order)
    contracted = contract(graph, devices, merge=merge, fuse_layers=fuse_layers, fuse=fuse, order=order)
    stats: dict = {"super_nodes": len(contracted)}
    ideals = enumerate_ideals(
        len(contracted), contracted.predecessors(), limit=ideal_limit, budget=budget,
        progress=None if progress is None else lambda level, _count: progress("ideals", level, len(contracted)),
    )
    stats["ideals"] = len(ideals)
    enumerated = time.perf_counter()
    problem = _build_problem(graph, devices, contracted, ideals, budget)
    if not problem.classes:
        return PlacementResult(method, INFEASIBLE, None, stats=stats, message="the system has no devices")
    stash = np.zeros(len(contracted))
    if schedule is not None:
        for v, size in node_stash(graph).items():
            stash[contracted.super_of[v]] += size
    counted = schedule is not None and stash.any()  # no stash (inference): the paper's model is the same
    if schedule is not None and not counted:
        stats["in_flight"] = {"schedule": schedule, "microbatches": microbatches,
                              "note": "no forward-to-backward tensor sizes: nothing stashed, the static model"}
    if not counted:
        value, dp, final, pairs, bound, prepared = _fill(problem, contracted, progress, budget)
    else:
        stats["in_flight"] = {"schedule": schedule, "microbatches": microbatches}
        problem.stash = ideals.accumulate(stash[:, None])[:, 0]
        sizes = problem.grid.vectors.sum(axis=0)
        value, dp, final, pairs, bound, prepared = math.inf, None, 0, np.zeros(2, np.int64), math.inf, enumerated
        # the in-flight count of a stage depends on its position and on the number of stages: one exact
        # DP per number of stages, the best of them
        # most stages first: their split is usually the best, and its value caps the other searches
        for stages in range(min(int(sizes.max(initial=0)), len(contracted)), 0, -1):
            _set_stages(problem, schedule, stages, microbatches)
            found = _fill(problem, contracted, progress, budget, value)
            pairs = pairs + np.asarray(found[3])
            if found[0] < value:
                value, dp, final, _, bound, prepared = found
                stats["in_flight"]["stages"] = stages
                best_stages = stages
        if dp is not None:
            _set_stages(problem, schedule, best_stages, microbatches)
    stats.update(upper_bound=bound, lower_bound=problem.lower_bound)
    stats.update(
        ideal_pairs=int(pairs[0]),
        ideal_pairs_costed=int(pairs[1]),
        seconds_ideals=enumerated - started,
        seconds_prepare=prepared - enumerated,
        seconds_dp=time.perf_counter() - prepared,
    )
    held = stats.get("in_flight")
    note = "" if held is None else held.get("note") or (
        f"memory holds the activations {schedule} keeps in flight "
        f"({held['stages']} stages; the first holds {in_flight(schedule, 0, held['stages'], microbatches)} microbatches)"
        if "stages" in held else f"with the activations {schedule} keeps in flight")

    def noted(message: str) -> str:
        return "; ".join(m for m in (message, note) if m)

    if math.isinf(value):
        return PlacementResult(
            method,
            INFEASIBLE,
            None,
            bound=math.inf,
            seconds=time.perf_counter() - started,
            stats=stats,
            message=noted("no contiguous split satisfies the memory and support constraints"),
        )
    split = _backtrack(problem, contracted, dp, final)
    evaluation = evaluate(graph, devices, split)
    if evaluation.violations or not math.isclose(evaluation.max_load, value, rel_tol=1e-9, abs_tol=1e-12):
        raise DPError(f"DP value {value!r} but the evaluator gives {evaluation.max_load!r} {evaluation.violations}")
    if restricted:
        return PlacementResult(
            method, FEASIBLE, evaluation, seconds=time.perf_counter() - started, stats=stats,
            message=noted("optimal under the requested merging/fusion/ordering, not necessarily for the graph itself"),
        )
    return PlacementResult(
        method, OPTIMAL, evaluation, bound=evaluation.max_load, seconds=time.perf_counter() - started, stats=stats,
        message=note,
    )
