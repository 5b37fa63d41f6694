"""One training plan across GPU types and zones, optimal for the §12.2 cost model (docs/model.md §12.4).

Problem: given a model's Sailor profiles and layer sizes, a global batch and a
heterogeneous cluster (:class:`~pipesim.hardware.clusters.Cluster`: node types
with GPU types as the profiles name them, counts, zones, a bandwidth matrix and
prices), choose

* a microbatch size ``mbs`` (one the profiles have for every GPU type used),
* a data-parallel degree ``D`` (every stage has ``D`` replicas) with ``mbs·D``
  dividing the global batch, so every replica runs ``M = gbs / (mbs·D)`` whole microbatches,
* a number of stages ``S`` and a contiguous, possibly uneven, split of the layers,
* per stage ``D`` replicas, each ``tp`` GPUs of one node type in one zone, where
  ``tp`` is a power of two dividing the node's GPUs and profiled for that GPU
  type; a stage mixes at most ``max_kinds`` distinct (node type, zone, tp) kinds
  (Sailor-style: replicas of one stage may differ in GPU type and TP degree),

using no more GPUs of a (node type, zone) than the cluster has (a plan may leave
GPUs idle) and fitting every GPU's memory (§12.2 memory per GPU against its
device's memory), to minimise one objective:

* ``time``: the iteration time of §12.2 (the same function scores Sailor's plans);
* ``cost``: $ per iteration = iteration time × the used GPUs' $/hour / 3600 +
  $ of the bytes crossing zones (activations, gradients and gradient rings);

optionally subject to a budget (the used GPUs' $/hour ≤ ``budget``) and a
throughput floor (iterations per second ≥ ``min_throughput``, Sailor's unit).

Guarantee: the returned plan is optimal over that space for the objective,
under the constraints (tested against exhaustive enumeration on small
clusters).  Algorithm: for each (mbs, D, S), a dynamic program over stages
whose state is (stage, first layer, GPUs used per (node type, zone), the
previous stage's replicas) and whose labels are the non-dominated tuples
(finished Σ stage times, finished max stage time, the previous stage's time
so far, max optimizer step, max gradient sync, $ of egress); the objective and
the constraints are monotone in every component, so dropping dominated labels
loses no optimum.  Packing replicas into nodes needs no state: every ``tp`` is
a power of two dividing the node's GPU count, so replicas fit whenever their
GPU total does.

Reference: Strati et al., Sailor, SOSP'25 (§4: per-replica GPU types and TP,
zones, $ budgets); Um et al., Metis, USENIX ATC'24 (per-stage GPU types,
uneven layer split); pipesim's own code.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from pipesim.errors import InfeasibleError, InputError
from pipesim.hardware.clusters import Cluster
from pipesim.placement.plan.sailor import (
    PRECISION_BYTES,
    SailorEstimate,
    SailorInputs,
    boundary_time,
    estimate_sailor_plan,
    optimizer_time,
    profiled_params,
    replica_memory,
    ring_allreduce_time,
)
from pipesim.placement.plan.sailor_format import SailorPipeline, SailorPlan, SailorReplica

__all__ = ["OBJECTIVES", "ClusterNetwork", "HeteroPlan", "ReplicaKind", "egress_cost", "plan_hetero", "replica_kinds", "score_plan"]

OBJECTIVES = ("time", "cost")


@dataclass(frozen=True)
class ReplicaKind:
    """``tp`` GPUs of one node type (nodes entry ``entry``) in one zone: one possible replica."""

    entry: int
    node_type: str
    gpu: str
    zone: str
    gpus_per_node: int
    tp: int
    memory: float  # bytes per GPU
    price: float | None  # $ per GPU-hour

    def replica(self) -> SailorReplica:
        return SailorReplica(self.gpu, self.gpus_per_node, self.zone, self.tp)


class ClusterNetwork:
    """:class:`~pipesim.placement.plan.sailor.Network` of a cluster: its (zone, node type) links.

    A transfer between GPUs of one replica's node and another's costs the
    link's latency plus bytes over its per-device bandwidth (§12.3); the
    bandwidth is each device's share already, so GPUs sending at once
    (``streams``) do not slow each other further.
    """

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self._type_of = {}
        for t, _, zone in cluster.entries():
            self._type_of.setdefault((zone, t.gpu), t.name)
        self._cache: dict = {}

    def node_type(self, replica: SailorReplica) -> str:
        try:
            return self._type_of[(replica.zone, replica.gpu)]
        except KeyError:
            raise InputError(None, "plan", f"no {replica.gpu} nodes in zone {replica.zone} of {self.cluster.name}") from None

    def transfer_time(self, sender: SailorReplica, receiver: SailorReplica, nbytes: float,
                      streams: int = 1) -> float:
        if nbytes <= 0:
            return 0.0
        key = (sender.zone, sender.gpu, receiver.zone, receiver.gpu)
        link = self._cache.get(key)
        if link is None:
            link = self._cache[key] = self.cluster.link(sender.zone, self.node_type(sender),
                                                        receiver.zone, self.node_type(receiver))
        return link.latency + nbytes / link.bandwidth


def replica_kinds(inputs: SailorInputs, cluster: Cluster, mbs: int) -> list[ReplicaKind]:
    """Every (nodes entry, tp) a replica can be at microbatch size ``mbs``.

    ``tp`` must be profiled for the GPU type at ``mbs`` and be a power of two
    dividing the node's GPUs.
    """
    model = inputs.config.model
    by_gpu = inputs.profiles.times.get(model, {})
    kinds = []
    for i, (t, count, zone) in enumerate(cluster.entries()):
        if not count:
            continue
        tps = by_gpu.get(t.gpu, {}).get(mbs, {})
        for tp in sorted(tps):
            if tp & (tp - 1) == 0 and t.devices % tp == 0 and inputs.layer_info.layers.get(model, {}).get(tp):
                kinds.append(ReplicaKind(i, t.name, t.gpu, zone, t.devices, tp, t.device.memory,
                                         cluster.price_per_gpu_hour(i)))
    return kinds


def egress_cost(plan: SailorPlan, inputs: SailorInputs, cluster: Cluster, precision: str = "fp32") -> float:
    """$ per iteration of the bytes a plan sends across zones (§12.4).

    Per microbatch each replica pair across a stage boundary moves the
    activation one way and its gradient back; each gradient ring link moves
    ``2 (D − 1) / D`` of the stage's gradients; bytes leaving a zone cost the
    cluster's ``egress`` price.
    """
    elem = PRECISION_BYTES[precision]
    model = inputs.config.model
    gbs = plan.gbs if plan.gbs is not None else inputs.config.global_batch_size
    unsplit = inputs.layer_info.of(model, 1)
    total = 0.0
    for pipe in plan.pipelines:
        d0 = len(pipe.replicas[0])
        micro = math.ceil(gbs / (plan.mbs * d0 * len(plan.pipelines)))
        for s, layers in enumerate(pipe.stages):
            reps = pipe.replicas[s]
            if s + 1 < len(pipe.stages):
                nbytes = unsplit[layers[-1]].output_elements * plan.mbs * elem * micro
                nxt = pipe.replicas[s + 1]
                for j, rep in enumerate(reps):
                    peer = nxt[j % len(nxt)]
                    total += nbytes * (cluster.egress_price_per_gb(rep.zone, peer.zone)
                                       + cluster.egress_price_per_gb(peer.zone, rep.zone)) / 1e9
            d = len(reps)
            if d > 1:
                grads = sum(unsplit[l].params for l in layers) * elem * 2 * (d - 1) / d
                for j in range(d):
                    total += grads * cluster.egress_price_per_gb(reps[j].zone, reps[(j + 1) % d].zone) / 1e9
    return total


@dataclass(frozen=True)
class HeteroPlan:
    """The chosen plan, its §12.2 estimate, its $ and how the search went."""

    plan: SailorPlan
    estimate: SailorEstimate
    objective: str
    price_per_hour: float | None  # $ per hour of the GPUs the plan uses
    egress_per_iteration: float  # $
    cost_per_iteration: float | None  # $
    gpus_used: Mapping[str, int]  # per "zone/node type"
    gpus_available: int
    search_seconds: float
    labels: int = field(default=0, compare=False)  # labels the search kept, summed

    @property
    def iteration_time(self) -> float:
        return self.estimate.iteration_time

    @property
    def throughput(self) -> float:
        """Iterations per second."""
        return 1.0 / self.estimate.iteration_time

    def sailor_json(self) -> dict:
        """The plan in Sailor's plan format (``pipesim estimate --sailor-plan`` reads it back)."""
        pipelines = []
        for pipe in self.plan.pipelines:
            pipelines.append({
                "num_stages": len(pipe.stages),
                "layers_per_stage": [list(s) for s in pipe.stages],
                "tmp_per_stage": [[[[[r.gpu, r.gpus_per_node, r.zone]], r.tp] for r in reps] for reps in pipe.replicas],
                "dp": [len(reps) for reps in pipe.replicas],
            })
        return {"pipeline_list": pipelines, "mbs": self.plan.mbs, "gbs": self.plan.gbs}

    def to_dict(self) -> dict:
        return {
            "objective": self.objective,
            "iteration_time": self.iteration_time,
            "throughput": self.throughput,
            "memory_per_gpu": self.estimate.memory_per_gpu,
            "price_per_hour": self.price_per_hour,
            "egress_per_iteration": self.egress_per_iteration,
            "cost_per_iteration": self.cost_per_iteration,
            "gpus_used": dict(self.gpus_used),
            "gpus_available": self.gpus_available,
            "search_seconds": self.search_seconds,
            "plan": self.sailor_json(),
            "estimate": self.estimate.to_dict(),
        }


def _stage_kinds(n_kinds: int, dp: int, max_kinds: int):
    """Multisets of ``dp`` replicas over ``n_kinds`` kinds with at most ``max_kinds`` distinct: ((kind, count), ...)."""
    for k in range(1, min(max_kinds, n_kinds, dp) + 1):
        for chosen in itertools.combinations(range(n_kinds), k):
            # compositions of dp into k positive parts
            for cuts in itertools.combinations(range(1, dp), k - 1):
                parts = [b - a for a, b in zip((0, *cuts), (*cuts, dp))]
                yield tuple(zip(chosen, parts))


class _Labels:
    """Non-dominated labels of one DP state (all components: smaller is better), with back-pointers."""

    __slots__ = ("arr", "backs")

    def __init__(self):
        self.arr = np.empty((0, 6))
        self.backs: list = []

    def add(self, label: tuple, back) -> None:
        arr = self.arr
        if len(arr):
            new = np.asarray(label)
            if np.any(np.all(arr <= new, axis=1)):
                return  # dominated by (or equal to) a kept label
            keep = ~np.all(arr >= new, axis=1)
            if not keep.all():
                arr = arr[keep]
                self.backs = [b for b, k in zip(self.backs, keep) if k]
        self.arr = np.vstack([arr, label]) if len(arr) else np.asarray([label], dtype=float)
        self.backs.append(back)

    def items(self):
        return zip(map(tuple, self.arr.tolist()), self.backs)

    def __len__(self):
        return len(self.backs)


def plan_hetero(inputs: SailorInputs, cluster: Cluster, objective: str = "time", *, budget: float | None = None,
                min_throughput: float | None = None, mbs: int | None = None, max_stages: int = 3,
                max_kinds: int | None = None, max_dp: int | None = None, precision: str = "fp32",
                gbs: int | None = None) -> HeteroPlan:
    """The optimal plan on ``cluster`` for the §12.2 model (docs/model.md §12.4).

    Parameters
    ----------
    inputs : SailorInputs
        The model's profiles, layer sizes and training config (its global batch
        unless ``gbs`` is given).  The bandwidths in it are not used: the
        cluster's network is.
    cluster : Cluster
        Node types name their ``gpu_type`` as the profiles do.
    objective : {"time", "cost"}
    budget : float, optional
        Most $ per hour the used GPUs may cost.
    min_throughput : float, optional
        Fewest iterations per second.
    mbs : int, optional
        Only this microbatch size (default: every one profiled).
    max_stages, max_kinds, max_dp : int
        Bounds of the search space: stages (default 3); distinct replica kinds
        (node type, zone, TP) per stage (default 1: stages differ in GPU type,
        Metis/AMP style; 2 lets a stage's replicas differ, Sailor style, exact
        too but far more search: 16 GPUs of 2 types ~4 s, 64 GPUs ~70 s of CPU
        against ~1 s); data-parallel degree (default unbounded).
    precision : {"fp32", "fp16", "bf16"}

    Raises
    ------
    InputError
        An unknown objective or precision, or a cost objective / budget on a
        cluster without prices.
    InfeasibleError
        No plan fits the cluster's GPUs and memory under the constraints.
    """
    if objective not in OBJECTIVES:
        raise InputError(None, "--objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if precision not in PRECISION_BYTES:
        raise InputError(None, "precision", f"must be one of {sorted(PRECISION_BYTES)}, got {precision!r}")
    needs_price = objective == "cost" or budget is not None
    for name, value in (("--budget", budget), ("--min-throughput", min_throughput)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise InputError(None, name, f"must be a positive number, got {value!r}")
    started = time.perf_counter()
    if max_kinds is None:
        max_kinds = 1
    elem = PRECISION_BYTES[precision]
    model = inputs.config.model
    n_layers = inputs.config.num_layers
    gbs = gbs if gbs is not None else inputs.config.global_batch_size
    network = ClusterNetwork(cluster)
    unsplit = inputs.layer_info.of(model, 1)
    entries = cluster.entries()
    capacity = tuple(t.devices * count for t, count, _ in entries)
    if needs_price:
        missing = [t.name for i, (t, n, _) in enumerate(entries) if n and cluster.price_per_gpu_hour(i) is None]
        if missing:
            raise InputError(None, "--hardware", f"{cluster.name}: no price_per_gpu_hour for {', '.join(missing)}")
    if n_layers != len(unsplit):
        raise InputError(inputs.layer_info.source, f"{model}.1", f"has {len(unsplit)} layers, the config {n_layers}")
    sizes_of = {}

    def sizes(tp):
        if tp not in sizes_of:
            sizes_of[tp] = inputs.layer_info.of(model, tp)
        return sizes_of[tp]

    profiled_of = {}  # parameters the profile's optimizer step was timed on, per TP degree
    kept = 0
    prices = [cluster.price_per_gpu_hour(i) for i in range(len(entries))]

    capacity_arr = np.asarray(capacity, dtype=np.int64)
    price_arr = np.asarray([p or 0.0 for p in prices])  # a missing price only matters with a budget (checked)

    def price_of(used):
        if any(p is None and u for p, u in zip(prices, used)):
            return None
        return sum((p or 0.0) * u for p, u in zip(prices, used))

    profiled = inputs.profiles.times.get(model, {})
    if not any(t.gpu in profiled for t, n, _ in entries if n):
        raise InputError(inputs.profiles.source, model, f"profiles none of {cluster.name}'s GPU types "
                         f"({', '.join(cluster.gpu_types)}; profiled: {', '.join(sorted(profiled))}); "
                         f"name them with the node types' gpu_type")
    mbs_values = sorted({m for t, n, _ in entries if n for m in profiled.get(t.gpu, {})})
    if mbs is not None:
        mbs_values = [m for m in mbs_values if m == mbs]
    max_gpus = sum(capacity)
    contexts = []  # one per (mbs, D): the replica kinds and the stage kinds
    for m in mbs_values:
        kinds = replica_kinds(inputs, cluster, m)
        if not kinds:
            continue
        reps = [k.replica() for k in kinds]
        times = [inputs.profiles.layers(model, k.gpu, m, k.tp) for k in kinds]
        if any(len(t) != n_layers for t in times):
            raise InputError(inputs.profiles.source, f"{model}.*.{m}", f"profiles do not have {n_layers} layers")
        pre_c = []  # prefix sums per kind of forward + backward
        for t in times:
            acc = [0.0]
            for lt in t:
                acc.append(acc[-1] + lt.forward + lt.backward)
            pre_c.append(acc)
        pre_p = {}
        for k in kinds:
            if k.tp not in pre_p:
                acc = [0]
                for x in sizes(k.tp):
                    acc.append(acc[-1] + x.params)
                pre_p[k.tp] = acc
                profiled_of[k.tp] = profiled_params(sizes(k.tp))
        # whole microbatches only: mbs x D divides the global batch (no padded microbatch)
        dps = [d for d in range(1, (max_dp or max_gpus) + 1)
               if d * min(k.tp for k in kinds) <= max_gpus and gbs % (m * d) == 0]
        for dp in dps:
            stage_kinds = list(_stage_kinds(len(kinds), dp, max_kinds))
            usage, ordered = [], []
            for sk in stage_kinds:
                use = [0] * len(entries)
                for ki, cnt in sk:
                    use[kinds[ki].entry] += kinds[ki].tp * cnt
                usage.append(tuple(use))
                ordered.append(tuple(reps[ki] for ki, cnt in sk for _ in range(cnt)))
            fits = [all(u <= c for u, c in zip(use, capacity)) for use in usage]
            contexts.append((m, dp, kinds, times, pre_c, pre_p, stage_kinds, usage, ordered, fits))

    best = None  # (objective value, tie-break, what rebuilds the plan)
    for n_stages in range(1, min(max_stages, n_layers) + 1):  # few stages first: a good bound early
        for m, dp, kinds, times, pre_c, pre_p, stage_kinds, usage, ordered, fits in contexts:
            if n_stages * dp * min(k.tp for k in kinds) > max_gpus:
                continue
            micro = gbs // (m * dp)
            stage_cache: dict = {}

            def stage_terms(si, first, end, in_flight):
                """(compute, optimizer, sync, egress of the ring) of stage kind si on layers [first, end), or None."""
                key = (si, first, end, in_flight)
                if key in stage_cache:
                    return stage_cache[key]
                layers = range(first, end)
                compute = opt = grad_bytes = 0.0
                result = None
                for ki, _ in stage_kinds[si]:
                    k = kinds[ki]
                    if replica_memory(sizes(k.tp), layers, m, in_flight, k.gpu) > k.memory:
                        break
                    compute = max(compute, pre_c[ki][end] - pre_c[ki][first])
                    params = pre_p[k.tp][end] - pre_p[k.tp][first]
                    opt = max(opt, optimizer_time(times[ki][first].optimizer, params, profiled_of[k.tp]))
                    grad_bytes = max(grad_bytes, params * elem)
                else:
                    mine = ordered[si]
                    egress = 0.0
                    if dp > 1 and cluster.egress:
                        ring_bytes = sum(unsplit[l].params for l in layers) * elem * 2 * (dp - 1) / dp
                        egress = sum(ring_bytes * cluster.egress_price_per_gb(mine[j].zone, mine[(j + 1) % dp].zone)
                                     for j in range(dp)) / 1e9
                    result = (compute, opt, ring_allreduce_time(grad_bytes, mine, network, elem), egress)
                stage_cache[key] = result
                return result

            boundary_cache: dict = {}

            def boundary_terms(prev, si, first):
                """(this stage's side, the previous stage's side, egress) of the boundary before layer ``first``."""
                key = (prev, si, first)
                if key not in boundary_cache:
                    mine, theirs = ordered[si], ordered[prev]
                    nbytes = unsplit[first - 1].output_elements * m * elem
                    egress = 0.0
                    if cluster.egress:
                        egress = sum(nbytes * micro * (cluster.egress_price_per_gb(theirs[j].zone, mine[j].zone)
                                                       + cluster.egress_price_per_gb(mine[j].zone, theirs[j].zone))
                                     for j in range(dp)) / 1e9
                    boundary_cache[key] = (boundary_time(mine, theirs, nbytes, network, elem),
                                           boundary_time(theirs, mine, nbytes, network, elem), egress)
                return boundary_cache[key]

            def lower_bound(label, used):
                """The objective of any completion of this partial plan is at least this."""
                sum_a, max_a, pending, max_o, max_y, eg = label
                t_lb = sum_a + pending + (micro - 1) * max(max_a, pending) + max_o + max_y
                if objective == "time":
                    return t_lb
                price = price_of(used)
                return t_lb * (price or 0.0) / 3600 + eg

            usage_arr = np.asarray(usage, dtype=np.int64).reshape(len(usage), len(entries))
            start = _Labels()
            start.add((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), None)
            frontier = {(0, tuple([0] * len(entries)), None): start}
            history = []
            for s in range(n_stages):
                nxt: dict = {}
                in_flight = min(n_stages - s, micro)
                for (first, used, prev), labels in frontier.items():
                    ends = [n_layers] if s == n_stages - 1 else range(first + 1, n_layers - (n_stages - s - 1) + 1)
                    # the stage kinds that still fit the GPUs left (and the budget), with what they leave used
                    after = usage_arr + np.asarray(used)
                    ok = np.all(after <= capacity_arr, axis=1)
                    if budget is not None:
                        ok &= after @ price_arr <= budget * (1 + 1e-12)
                    candidates = [(si, tuple(after[si].tolist())) for si in np.flatnonzero(ok).tolist()]
                    for end in ends:
                        for si, new_used in candidates:
                            terms = stage_terms(si, first, end, in_flight)
                            if terms is None:
                                continue  # a replica's GPU memory is exceeded
                            compute, opt, sync, egress = terms
                            own = their = 0.0
                            if prev is not None:
                                own, their, eg_b = boundary_terms(prev, si, first)
                                egress += eg_b
                            key = (end, new_used, si)
                            bucket = nxt.get(key)
                            for label, _ in labels.items():
                                sum_a, max_a, pending, max_o, max_y, eg = label
                                if prev is not None:
                                    done = pending + their
                                    sum_a, max_a = sum_a + done, max(max_a, done)
                                new = (sum_a, max_a, compute + own, max(max_o, opt), max(max_y, sync), eg + egress)
                                if best is not None and lower_bound(new, new_used) > best[0] * (1 + 1e-12):
                                    continue
                                if bucket is None:
                                    bucket = nxt[key] = _Labels()
                                bucket.add(new, ((first, used, prev), label))
                history.append(nxt)
                frontier = nxt
                kept += sum(len(v) for v in nxt.values())
            for (end, used, last), labels in frontier.items():  # the last stage's pending time is final
                price = price_of(used)
                if budget is not None and (price is None or price > budget * (1 + 1e-12)):
                    continue
                for label, _ in labels.items():
                    sum_a, max_a, pending, max_o, max_y, eg = label
                    sum_a, max_a = sum_a + pending, max(max_a, pending)
                    t_iter = sum_a + (micro - 1) * max_a + max_o + max_y
                    if min_throughput is not None and 1.0 / t_iter < min_throughput * (1 - 1e-12):
                        continue
                    cost = None if price is None else t_iter * price / 3600 + eg
                    value = t_iter if objective == "time" else cost
                    tie = (t_iter, sum(used), m, dp, n_stages)
                    if best is None or (value, tie) < (best[0], best[1]):
                        best = (value, tie, (m, dp, n_stages, history, (end, used, last), label, ordered))
    if best is None:
        raise InfeasibleError(f"no plan of {model} fits {cluster.name} (its GPUs' memory, the profiled microbatch "
                              f"sizes and TP degrees{', the budget' if budget is not None else ''}"
                              f"{', the throughput floor' if min_throughput is not None else ''})")
    m, dp, n_stages, history, key, label, ordered = best[2]
    # walk the back-pointers from the last stage to the first
    stages = []
    state, lab = key, label
    for s in range(n_stages - 1, -1, -1):
        end, used, si = state
        back = next(bp for lb, bp in history[s][state].items() if lb == lab)
        (first, prev_used, prev_si), prev_label = back
        stages.append((tuple(range(first, end)), ordered[si]))
        state, lab = (first, prev_used, prev_si), prev_label
    stages.reverse()
    plan = SailorPlan((SailorPipeline(tuple(s[0] for s in stages), tuple(s[1] for s in stages)),), m, gbs)
    return score_plan(plan, inputs, cluster, objective, precision, network=network,
                      search_seconds=time.perf_counter() - started, labels=kept)


def score_plan(plan: SailorPlan, inputs: SailorInputs, cluster: Cluster, objective: str = "time",
               precision: str = "fp32", *, network: ClusterNetwork | None = None, search_seconds: float = 0.0,
               labels: int = 0) -> HeteroPlan:
    """A plan on ``cluster`` scored by the one cost model: §12.2 time on the cluster's links, $/h, egress, $/iteration.

    Every planner (pipesim's and the baselines of
    :mod:`~pipesim.placement.plan.baselines_hetero`) is scored by this function.
    """
    network = network or ClusterNetwork(cluster)
    estimate = estimate_sailor_plan(plan, inputs, precision, network)
    used: dict[str, int] = {}
    for pipe in plan.pipelines:
        for reps_ in pipe.replicas:
            for r in reps_:
                name = f"{r.zone}/{network.node_type(r)}"
                used[name] = used.get(name, 0) + r.tp
    price = None
    entries = cluster.entries()
    prices = {f"{z}/{t.name}": cluster.price_per_gpu_hour(i) for i, (t, _, z) in enumerate(entries)}
    if all(prices.get(k) is not None for k in used):
        price = sum(prices[k] * n for k, n in used.items())
    egress = egress_cost(plan, inputs, cluster, precision)
    cost = None if price is None else estimate.iteration_time * price / 3600 + egress
    return HeteroPlan(plan, estimate, objective, price, egress, cost, used,
                      sum(t.devices * count for t, count, _ in entries), search_seconds, labels)
