"""Baseline planners for heterogeneous clusters, scored by the one §12.2 model (docs/model.md §12.5).

Problem: compare pipesim's exact planner (:func:`~pipesim.placement.plan.hetero.plan_hetero`)
with the search rules other planners publish, on the same inputs (Sailor's
profiles and layer sizes, a :class:`~pipesim.hardware.clusters.Cluster`) and
the same cost model.  Each baseline here is pipesim's own code following a
paper's *search rule* (which candidates it generates and how it splits the
layers); every candidate it generates is scored by
:func:`~pipesim.placement.plan.hetero.score_plan` (§12.2 time on the
cluster's links, $/h, egress $), never by a cost model of its own, and the
baseline returns its best candidate for the objective.

* :func:`plan_uniform` — homogeneous, uniform split (Megatron-LM practice):
  one (node type, zone), one TP degree, layers split as evenly as possible
  over ``S`` stages, grid over (mbs, TP, D, S).
* :func:`plan_metis` — Metis (Um et al., USENIX ATC'24, §4 "Search
  algorithm"): inter-stage plans assign a device group of one GPU type to each
  stage, enumerating the order of GPU types over the stages; intra-stage plans
  prefer data parallelism over tensor parallelism (TP is raised only when a
  stage's memory does not fit); layers are split by heterogeneity-aware load
  balancing — each stage gets a share of the (normalised) layer work
  proportional to its device group's compute power — then layers move off a
  stage that runs out of memory.
* :func:`plan_amp` — AMP (Li et al., NeurIPS'22, §3): the strategy is the
  uniform degree triple (pipeline, data, tensor) plus microbatch size; ranks
  are placed on devices in the cluster's order (tensor-parallel ranks inside a
  node, then data-parallel, then pipeline), so a stage takes whatever GPU
  types its rank range covers; the layers are split by AMP's pipeline-layer
  dynamic program, which minimises its pipeline estimate
  ``Σ_s t_s + (gas − 1) · max_s t_s`` (``t_s``: the stage's slowest replica's
  compute plus its point-to-point transfers) over contiguous splits.

All three stay inside pipesim's plan space (one pipeline; every stage ``D``
replicas; ``mbs·D`` dividing the global batch; at most ``max_stages`` stages;
at most ``max_kinds`` replica kinds per stage; memory per GPU type), so
pipesim's exact planner is never worse by the model — tested
(``tests/placement/test_baselines_hetero.py``) on random small clusters and
on the bundled scenarios, and measured in ``python -m benchmarks.planners``.
A candidate a rule generates outside that space (an AMP stage whose ranks
straddle more node types than ``max_kinds``) is skipped, not repaired.

Reference: Um et al., "Metis: Fast Automatic Distributed Training on
Heterogeneous GPUs", USENIX ATC 2024, §4; Li et al., "AMP: Automatically
Finding Model Parallel Strategies with Heterogeneity Awareness", NeurIPS
2022, §3; docs/model.md §12.5.  The rules are re-implemented from the papers;
no code is taken from either project.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from pipesim.errors import InfeasibleError, InputError
from pipesim.hardware.clusters import Cluster
from pipesim.placement.plan.hetero import (
    OBJECTIVES,
    ClusterNetwork,
    HeteroPlan,
    ReplicaKind,
    plan_hetero,
    replica_kinds,
    score_plan,
)
from pipesim.placement.plan.sailor import PRECISION_BYTES, SailorInputs, boundary_time, replica_memory
from pipesim.placement.plan.sailor_format import SailorPipeline, SailorPlan

__all__ = ["BASELINES", "PLANNERS", "PlannerRow", "compare_planners", "plan_amp", "plan_metis", "plan_uniform"]


@dataclass
class _Context:
    """What every rule reads: the job, the cluster, per mbs the replica kinds and their prefix sums."""

    inputs: SailorInputs
    cluster: Cluster
    objective: str
    precision: str
    max_stages: int
    max_kinds: int
    gbs: int
    network: ClusterNetwork
    capacity: tuple[int, ...]
    n_layers: int

    def kinds(self, mbs: int) -> list[ReplicaKind]:
        return replica_kinds(self.inputs, self.cluster, mbs)

    def mbs_values(self) -> list[int]:
        profiled = self.inputs.profiles.times.get(self.inputs.config.model, {})
        return sorted({m for t, n, _ in self.cluster.entries() if n for m in profiled.get(t.gpu, {})})

    def dps(self, mbs: int, min_gpus: int) -> list[int]:
        """Data-parallel degrees with whole microbatches (``mbs·D`` divides the global batch), as pipesim's space."""
        total = sum(self.capacity)
        return [d for d in range(1, total // min_gpus + 1) if self.gbs % (mbs * d) == 0]

    def compute(self, kind: ReplicaKind, mbs: int, layers: Sequence[int]) -> float:
        times = self.inputs.profiles.layers(self.inputs.config.model, kind.gpu, mbs, kind.tp)
        return sum(times[l].forward + times[l].backward for l in layers)

    def free(self, kind: ReplicaKind, mbs: int, layers: Sequence[int], in_flight: int) -> float:
        """Bytes left on a GPU of ``kind`` holding ``layers`` (negative: it does not fit)."""
        sizes = self.inputs.layer_info.of(self.inputs.config.model, kind.tp)
        return kind.memory - replica_memory(sizes, layers, mbs, in_flight, kind.gpu)

    def fits(self, kind: ReplicaKind, mbs: int, layers: Sequence[int], in_flight: int) -> bool:
        return self.free(kind, mbs, layers, in_flight) >= 0

    def memory_ok(self, stages: Sequence[tuple[Sequence[int], Sequence[ReplicaKind]]], mbs: int, micro: int) -> bool:
        n = len(stages)
        return all(self.fits(k, mbs, layers, min(n - s, micro))
                   for s, (layers, ks) in enumerate(stages) for k in set(ks))

    def gpus_ok(self, stages: Sequence[tuple[Sequence[int], Sequence[ReplicaKind]]]) -> bool:
        used = [0] * len(self.capacity)
        for _, ks in stages:
            for k in ks:
                used[k.entry] += k.tp
        return all(u <= c for u, c in zip(used, self.capacity))

    def plan(self, mbs: int, stages: Sequence[tuple[Sequence[int], Sequence[ReplicaKind]]]) -> SailorPlan:
        pipe = SailorPipeline(tuple(tuple(layers) for layers, _ in stages),
                              tuple(tuple(k.replica() for k in ks) for _, ks in stages))
        return SailorPlan((pipe,), mbs, self.gbs)

    def boundary_bytes(self, first: int, mbs: int) -> float:
        """Bytes of the activation entering layer ``first`` (one microbatch)."""
        unsplit = self.inputs.layer_info.of(self.inputs.config.model, 1)
        return unsplit[first - 1].output_elements * mbs * PRECISION_BYTES[self.precision]


def _context(inputs: SailorInputs, cluster: Cluster, objective: str, precision: str, max_stages: int,
             max_kinds: int, gbs: int | None) -> _Context:
    if objective not in OBJECTIVES:
        raise InputError(None, "--objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if precision not in PRECISION_BYTES:
        raise InputError(None, "precision", f"must be one of {sorted(PRECISION_BYTES)}, got {precision!r}")
    if objective == "cost":
        missing = [t.name for i, (t, n, _) in enumerate(cluster.entries()) if n and cluster.price_per_gpu_hour(i) is None]
        if missing:
            raise InputError(None, "--hardware", f"{cluster.name}: no price_per_gpu_hour for {', '.join(missing)}")
    capacity = tuple(t.devices * count for t, count, _ in cluster.entries())
    return _Context(inputs, cluster, objective, precision, max_stages, max_kinds,
                    gbs if gbs is not None else inputs.config.global_batch_size, ClusterNetwork(cluster),
                    capacity, inputs.config.num_layers)


def _best(ctx: _Context, name: str, candidates: Iterator[tuple[int, list]], started: float) -> HeteroPlan:
    """Score every candidate (mbs, stages) with the one model; the best for the objective."""
    best, best_key, seen, scored = None, None, set(), 0
    for mbs, stages in candidates:
        plan = ctx.plan(mbs, stages)
        key_plan = (plan.mbs, plan.pipelines)
        if key_plan in seen:
            continue
        seen.add(key_plan)
        r = score_plan(plan, ctx.inputs, ctx.cluster, ctx.objective, ctx.precision, network=ctx.network)
        scored += 1
        value = r.iteration_time if ctx.objective == "time" else r.cost_per_iteration
        key = (value, r.iteration_time, sum(r.gpus_used.values()))
        if best_key is None or key < best_key:
            best, best_key = r, key
    if best is None:
        raise InfeasibleError(f"{name}: no plan of {ctx.inputs.config.model} fits {ctx.cluster.name}")
    return replace(best, search_seconds=time.perf_counter() - started, labels=scored)


def _search(name: str, stages_at: Callable[[_Context, int, list[ReplicaKind]], Iterator[list]],
            inputs: SailorInputs, cluster: Cluster, objective: str, precision: str, max_stages: int,
            max_kinds: int, gbs: int | None) -> HeteroPlan:
    """Run a planner's search rule: ``stages_at(ctx, mbs, kinds)`` yields the stages it proposes at
    microbatch size ``mbs`` (``kinds``: the replica kinds profiled there); :func:`_best` scores them all."""
    started = time.perf_counter()
    ctx = _context(inputs, cluster, objective, precision, max_stages, max_kinds, gbs)
    candidates = ((mbs, stages) for mbs in ctx.mbs_values() for stages in stages_at(ctx, mbs, ctx.kinds(mbs)))
    return _best(ctx, name, candidates, started)


def _even_split(n_layers: int, n_stages: int) -> list[range]:
    """Layers as evenly as possible, the first ``n_layers mod S`` stages one more (Megatron-LM's uniform split)."""
    base, extra = divmod(n_layers, n_stages)
    out, first = [], 0
    for s in range(n_stages):
        size = base + (1 if s < extra else 0)
        out.append(range(first, first + size))
        first += size
    return out


def plan_uniform(inputs: SailorInputs, cluster: Cluster, objective: str = "time", *, max_stages: int = 3,
                 max_kinds: int = 1, precision: str = "fp32", gbs: int | None = None) -> HeteroPlan:
    """Homogeneous baseline: one (node type, zone), one TP degree, an even layer split; best by the model.

    ``max_kinds`` is accepted for a uniform call signature (one kind is used).

    Raises
    ------
    InputError
        An unknown objective or precision; a cost objective without prices.
    InfeasibleError
        No homogeneous plan fits.
    """
    def stages_at(ctx, mbs, kinds):
        for kind in kinds:
            for dp in ctx.dps(mbs, kind.tp):
                micro = ctx.gbs // (mbs * dp)
                for n_stages in range(1, min(max_stages, ctx.n_layers) + 1):
                    if n_stages * dp * kind.tp > ctx.capacity[kind.entry]:
                        break
                    stages = [(layers, [kind] * dp) for layers in _even_split(ctx.n_layers, n_stages)]
                    if ctx.memory_ok(stages, mbs, micro):
                        yield stages

    return _search("uniform", stages_at, inputs, cluster, objective, precision, max_stages, max_kinds, gbs)


def _balanced_split(work: Sequence[float], power: Sequence[float]) -> list[range] | None:
    """Metis-style load balance: stage ``s`` gets a share of the normalised layer work ∝ ``power[s]``.

    ``work[l]``: layer ``l``'s share of the model's work (Metis normalises
    layer durations to one profile; they sum to 1).  The cut after stage ``s``
    is where the cumulative work comes closest to the cumulative share of the
    stages so far, at least one layer per stage.

    Examples
    --------
    >>> [list(r) for r in _balanced_split([0.25] * 4, [1.0, 3.0])]
    [[0], [1, 2, 3]]
    """
    n_stages, n_layers = len(power), len(work)
    if n_layers < n_stages:
        return None
    total = sum(power)
    cum = [0.0]
    for w in work:
        cum.append(cum[-1] + w)
    bounds, target = [0], 0.0
    for s in range(n_stages - 1):
        target += power[s] / total
        lo, hi = bounds[-1] + 1, n_layers - (n_stages - s - 1)
        bounds.append(min(range(lo, hi + 1), key=lambda e: (abs(cum[e] - target), e)))
    bounds.append(n_layers)
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


def _metis_split(ctx: _Context, kinds: Sequence[ReplicaKind], mbs: int, micro: int) -> list[range] | None:
    """Metis's load balance, then its memory repair: move a boundary layer off a stage out of memory."""
    model = ctx.inputs.config.model
    per_layer = []
    for k in kinds:
        times = ctx.inputs.profiles.layers(model, k.gpu, mbs, k.tp)
        per_layer.append([t.forward + t.backward for t in times])
    # the normalised work of a layer: its share of the whole model on the reference (first) group
    ref = per_layer[0]
    ref_total = sum(ref)
    norm = [x / ref_total for x in ref]
    # a group's compute power: how fast it runs the whole model, relative to the reference
    power = [ref_total / sum(t) for t in per_layer]
    split = _balanced_split(norm, power)
    if split is None:
        return None
    bounds = [r.start for r in split] + [ctx.n_layers]
    n = len(kinds)
    for _ in range(ctx.n_layers * n):  # each move shrinks an overfull stage; bounded
        over = [s for s in range(n)
                if not ctx.fits(kinds[s], mbs, range(bounds[s], bounds[s + 1]), min(n - s, micro))]
        if not over:
            return [range(a, b) for a, b in zip(bounds, bounds[1:])]
        s = over[0]
        if bounds[s + 1] - bounds[s] <= 1:
            return None
        # give a layer to the neighbour with more free memory (Metis moves layers to where they fit)
        left_ok = s > 0
        right_ok = s < n - 1
        if not left_ok and not right_ok:
            return None
        if right_ok and (not left_ok or _free(ctx, kinds, s + 1, bounds, mbs, micro) >= _free(ctx, kinds, s - 1, bounds, mbs, micro)):
            bounds[s + 1] -= 1
        else:
            bounds[s] += 1
    return None


def _free(ctx: _Context, kinds, s: int, bounds, mbs: int, micro: int) -> float:
    return ctx.free(kinds[s], mbs, range(bounds[s], bounds[s + 1]), min(len(kinds) - s, micro))


def plan_metis(inputs: SailorInputs, cluster: Cluster, objective: str = "time", *, max_stages: int = 3,
               max_kinds: int = 1, precision: str = "fp32", gbs: int | None = None) -> HeteroPlan:
    """Metis's search rule (USENIX ATC'24 §4) on pipesim's space, scored by the §12.2 model.

    For each (mbs, D, S) and each sequence of (node type, zone) groups over
    the ``S`` stages (Metis's inter-stage plans: the order of GPU types
    through the pipeline), each stage starts at its smallest profiled TP
    degree (Metis prefers data over tensor parallelism) and the layers are
    split in proportion to the groups' compute power; a stage out of memory
    hands layers to its neighbours, and when that fails the out-of-memory
    stages move to their next TP degree.  Every stage's replicas are of one
    kind (``max_kinds`` is accepted for a uniform call signature).

    Raises
    ------
    InputError, InfeasibleError
        As :func:`plan_uniform`.
    """
    def stages_at(ctx, mbs, kinds):
        by_entry: dict[int, list[ReplicaKind]] = {}
        for k in kinds:
            by_entry.setdefault(k.entry, []).append(k)
        for ks in by_entry.values():
            ks.sort(key=lambda k: k.tp)
        entries = sorted(by_entry)
        min_tp = min(k.tp for k in kinds) if kinds else 1
        for dp in ctx.dps(mbs, min_tp):
            micro = ctx.gbs // (mbs * dp)
            for n_stages in range(1, min(max_stages, ctx.n_layers) + 1):
                for groups in itertools.product(entries, repeat=n_stages):
                    level = [0] * n_stages  # index into the group's TP degrees
                    while True:
                        stage_kinds = [by_entry[g][level[s]] for s, g in enumerate(groups)]
                        split = _metis_split(ctx, stage_kinds, mbs, micro)
                        if split is not None:
                            stages = [(layers, [k] * dp) for layers, k in zip(split, stage_kinds)]
                            if ctx.gpus_ok(stages):
                                yield stages
                            break
                        # no split fits: raise TP on the stages that do not fit on their even share
                        even = _even_split(ctx.n_layers, n_stages)
                        raised = False
                        for s, g in enumerate(groups):
                            if (not ctx.fits(stage_kinds[s], mbs, even[s], min(n_stages - s, micro))
                                    and level[s] + 1 < len(by_entry[g])):
                                level[s] += 1
                                raised = True
                        if not raised:
                            break

    return _search("Metis", stages_at, inputs, cluster, objective, precision, max_stages, max_kinds, gbs)


def _amp_split(ctx: _Context, stage_reps: Sequence[Sequence[ReplicaKind]], mbs: int, micro: int) -> list[range] | None:
    """AMP's pipeline-layer assignment: contiguous split minimising Σ t_s + (gas − 1)·max t_s, memory permitting.

    ``t_s`` = the stage's slowest replica's compute plus its blocking sends and
    receives at its boundaries.  Exact over contiguous splits: a DP over
    (stage, end) keeping the Pareto set of (Σ, max) pairs.
    """
    n, L = len(stage_reps), ctx.n_layers
    if L < n:
        return None
    reps = [[k.replica() for k in ks] for ks in stage_reps]
    uniq = [list(dict.fromkeys(ks)) for ks in stage_reps]
    model = ctx.inputs.config.model
    pre = []
    for ks in uniq:
        rows = []
        for k in ks:
            times = ctx.inputs.profiles.layers(model, k.gpu, mbs, k.tp)
            acc = [0.0]
            for t in times:
                acc.append(acc[-1] + t.forward + t.backward)
            rows.append(acc)
        pre.append(rows)

    elem = PRECISION_BYTES[ctx.precision]

    def cost(s, a, b):
        c = max(row[b] - row[a] for row in pre[s])
        if s > 0:
            c += boundary_time(reps[s], reps[s - 1], ctx.boundary_bytes(a, mbs), ctx.network, elem)
        if s < n - 1:
            c += boundary_time(reps[s], reps[s + 1], ctx.boundary_bytes(b, mbs), ctx.network, elem)
        return c

    # labels[end] = {(sum, max): split}
    labels: dict[int, dict[tuple[float, float], tuple[int, ...]]] = {0: {(0.0, 0.0): ()}}
    for s in range(n):
        nxt: dict[int, dict] = {}
        for a, labs in labels.items():
            ends = [L] if s == n - 1 else range(a + 1, L - (n - s - 1) + 1)
            for b in ends:
                if not all(ctx.fits(k, mbs, range(a, b), min(n - s, micro)) for k in uniq[s]):
                    continue
                c = cost(s, a, b)
                bucket = nxt.setdefault(b, {})
                for (sm, mx), cuts in labs.items():
                    key = (sm + c, max(mx, c))
                    if key not in bucket:
                        bucket[key] = (*cuts, b)
        for b, bucket in nxt.items():  # keep the Pareto (Σ, max) pairs
            keep = {}
            for key in sorted(bucket):
                if not keep or key[1] < min(k[1] for k in keep):
                    keep[key] = bucket[key]
            nxt[b] = keep
        labels = nxt
    if L not in labels or not labels[L]:
        return None
    (_, _), cuts = min(labels[L].items(), key=lambda kv: kv[0][0] + (micro - 1) * kv[0][1])
    bounds = [0, *cuts]
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


def plan_amp(inputs: SailorInputs, cluster: Cluster, objective: str = "time", *, max_stages: int = 3,
             max_kinds: int = 1, precision: str = "fp32", gbs: int | None = None) -> HeteroPlan:
    """AMP's search rule (NeurIPS'22 §3) on pipesim's space, scored by the §12.2 model.

    For each microbatch size and uniform degrees (TP ``t``, data ``D``,
    pipeline ``S``), ranks take the cluster's GPUs in order (its nodes entries
    in the order given; a replica is ``t`` consecutive GPUs of one node;
    stage ``s`` replica ``j`` is the ``(s·D + j)``-th block), and AMP's
    dynamic program splits the layers.  A stage whose blocks cover more than
    ``max_kinds`` node types is outside pipesim's space and skipped.

    Raises
    ------
    InputError, InfeasibleError
        As :func:`plan_uniform`.
    """
    entries = cluster.entries()

    def stages_at(ctx, mbs, kinds):
        kind_of = {(k.entry, k.tp): k for k in kinds}
        for tp in sorted({k.tp for k in kinds}):
            # the device list in the cluster's order, in tp-sized blocks (each inside one node)
            blocks = []
            for e, (t, count, _) in enumerate(entries):
                if t.devices % tp:
                    continue
                blocks.extend([kind_of.get((e, tp))] * (t.devices * count // tp))
            for dp in ctx.dps(mbs, tp):
                micro = ctx.gbs // (mbs * dp)
                for n_stages in range(1, min(max_stages, ctx.n_layers) + 1):
                    if n_stages * dp > len(blocks):
                        break
                    stage_reps = [blocks[s * dp:(s + 1) * dp] for s in range(n_stages)]
                    if any(k is None for ks in stage_reps for k in ks):
                        continue  # a block on a GPU type without a profile at this tp
                    if any(len(set(ks)) > max_kinds for ks in stage_reps):
                        continue
                    split = _amp_split(ctx, stage_reps, mbs, micro)
                    if split is not None:
                        # pipesim orders a stage's replicas canonically (kind by kind): same multiset
                        yield [(layers, sorted(ks, key=lambda k: (k.entry, k.tp)))
                               for layers, ks in zip(split, stage_reps)]

    return _search("AMP", stages_at, inputs, cluster, objective, precision, max_stages, max_kinds, gbs)


BASELINES: dict[str, Callable[..., HeteroPlan]] = {"uniform": plan_uniform, "metis": plan_metis, "amp": plan_amp}

#: every planner by name, pipesim's first; all take (inputs, cluster, objective, *, max_stages, max_kinds, precision, gbs)
PLANNERS: dict[str, Callable[..., HeteroPlan]] = {"pipesim": plan_hetero, **BASELINES}


@dataclass(frozen=True)
class PlannerRow:
    """One planner's plan on one job, scored by the one model, against pipesim's (``None``: infeasible)."""

    planner: str
    result: HeteroPlan | None
    reason: str = ""

    def value(self, objective: str) -> float | None:
        if self.result is None:
            return None
        return self.result.iteration_time if objective == "time" else self.result.cost_per_iteration


def compare_planners(inputs: SailorInputs, cluster: Cluster, objective: str = "time", *,
                     planners: Sequence[str] | None = None, max_stages: int = 3, max_kinds: int = 1,
                     precision: str = "fp32", gbs: int | None = None) -> list[PlannerRow]:
    """Plan one job with pipesim and the baselines, same bounds, all scored by :func:`score_plan`.

    Raises
    ------
    InputError
        An unknown planner name (and what the planners raise for bad arguments).
    """
    names = list(planners) if planners is not None else list(PLANNERS)
    unknown = [n for n in names if n not in PLANNERS]
    if unknown:
        raise InputError(None, "--planner", f"unknown planner {unknown[0]!r} (known: {', '.join(PLANNERS)})")
    rows = []
    for name in names:
        try:
            r = PLANNERS[name](inputs, cluster, objective, max_stages=max_stages, max_kinds=max_kinds,
                               precision=precision, gbs=gbs)
        except InfeasibleError as exc:
            rows.append(PlannerRow(name, None, str(exc)))
            continue
        rows.append(PlannerRow(name, r))
    return rows
