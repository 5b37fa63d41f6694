"""The one cost model for hybrid-parallel plans (docs/model.md §10, Piper's model).

Problem: given a :class:`~pipesim.placement.plan.workload.PlanningWorkload`
and the stages of a plan (layers, ``t``, ``d``, a configuration per layer),
compute each stage's time per sample and memory per device, and list every
rule the plan breaks.  The planner checks its own answer with this function
and ``pipesim plan --evaluate`` re-evaluates a saved plan with it.

For stage ``S`` with degrees ``t, d`` (Piper, ``getTPSForResult``)::

    compute       = Σ_{v∈S} p_v / d
    communication = E(S) / (d · BW)
    resync        = Σ_{v∈S} 4·(d−1)·w_v / (d·N) / BW
    E(S) = Σ_{u→v, u∉S, v∈S} 2·(c_uv + sync_fw_v[u]) + Σ_{v→x, v∈S, x∉S} 2·(c_vx + sync_bw_v[x])
    memory = Σ_{v∈S} a_v · y + b_v,   y = ⌈(Σ_{j ≥ i} d_j) / d_i⌉

and the plan's time per sample is the largest stage time.  Rules: every layer
in exactly one stage, every edge going to the same or a later stage, a
configuration of degree ``t`` for every layer, ``d | N``, ``Σ t·d ≤ K``,
``Σ d ≤ N`` and memory within ``M`` (relative tolerance 1e-9).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipesim.placement.plan.result import FEASIBLE, INFEASIBLE, Plan, PlanStage, read_plan
from pipesim.placement.plan.workload import PlanningWorkload

__all__ = ["MEMORY_TOLERANCE", "StageSums", "evaluate_plan", "resync_bytes", "edge_lists", "stage_sums", "structure_problems"]

MEMORY_TOLERANCE = 1e-9  # relative slack on the memory limit, shared with the planner


def resync_bytes(parameters: float, data_parallel: int, microbatches: int) -> float:
    """Bytes per sample a layer of ``parameters`` bytes moves to resynchronise ``d`` replicas.

    The factor 4 models a parameter-server all-reduce, as in PipeDream's planner
    (Piper, ``getDataParallelResyncCost``).

    Examples
    --------
    >>> resync_bytes(100.0, 1, 10)
    0.0
    >>> resync_bytes(100.0, 2, 10)
    20.0
    """
    return 4 * (data_parallel - 1) * parameters / data_parallel / microbatches


def structure_problems(workload: PlanningWorkload, stages: Sequence[PlanStage]) -> list[str]:
    """The rules every plan keeps whatever its objective: each layer in one stage, edges going forward.

    Examples
    --------
    >>> from pipesim.placement.plan.workload import Configuration, Layer, LayerEdge, PlanningWorkload
    >>> c = Configuration("vanilla", 1.0, 0.0, 0.0, 0.0)
    >>> w = PlanningWorkload((Layer(0, {1: (c,)}), Layer(1, {1: (c,)})), (LayerEdge(0, 1, 0.0),), 2, 1.0, 1.0, 1)
    >>> structure_problems(w, [PlanStage((1,), 1, 1, {}), PlanStage((0, 7), 1, 1, {})])
    ['stage 1: unknown node 7', 'edge 0 -> 1 goes back from stage 1 to 0']
    """
    problems: list[str] = []
    layers = {layer.id for layer in workload.layers}
    stage_of: dict[int, int] = {}
    for i, stage in enumerate(stages):
        for v in stage.nodes:
            if v not in layers:
                problems.append(f"stage {i}: unknown node {v}")
            elif v in stage_of:
                problems.append(f"node {v} is in stages {stage_of[v]} and {i}")
            else:
                stage_of[v] = i
    missing = sorted(layers - set(stage_of))
    if missing:
        problems.append(f"nodes {missing[:8]} are in no stage")
    for e in workload.edges:
        if e.source in stage_of and e.dest in stage_of and stage_of[e.source] > stage_of[e.dest]:
            problems.append(f"edge {e.source} -> {e.dest} goes back from stage {stage_of[e.source]} to {stage_of[e.dest]}")
    return problems


@dataclass(frozen=True)
class StageSums:
    """A stage's per-layer sums: time, bytes of the edges entering and leaving it (both directions),
    parameter bytes per device, memory per device with ``y`` in flight."""

    compute: float
    bytes_in: float
    bytes_out: float
    parameters: float
    memory: float


def stage_sums(workload: PlanningWorkload, layers: dict, incoming: dict, outgoing: dict, i: int, stage: PlanStage,
               y: int, problems: list[str]) -> StageSums:
    """Sum the configurations ``stage`` chose; missing configurations and memory overflow go to ``problems``."""
    t = stage.tensor_parallel
    members = set(stage.nodes)
    compute = bytes_in = bytes_out = params = memory = 0.0
    for v in stage.nodes:
        layer = layers.get(v)
        if layer is None:
            continue
        config = layer.configuration(t, stage.configuration.get(v, ""))
        if config is None:
            problems.append(f"stage {i}: node {v} has no configuration {stage.configuration.get(v)!r} at t={t}")
            continue
        compute += config.time
        for e in incoming[v]:
            if e.source not in members:
                bytes_in += 2 * (e.bytes + config.sync_fw.get(e.source, 0.0))
        for e in outgoing[v]:
            if e.dest not in members:
                bytes_out += 2 * (e.bytes + config.sync_bw.get(e.dest, 0.0))
        params += config.parameters
        memory += config.memory(y)
    if memory > workload.memory * (1 + MEMORY_TOLERANCE):
        problems.append(
            f"stage {i}: out of memory ({memory / 2**30:.3f} GiB per device with {y} microbatches in flight, "
            f"limit {workload.memory / 2**30:.3f} GiB)"
        )
    return StageSums(compute, bytes_in, bytes_out, params, memory)


def edge_lists(workload: PlanningWorkload) -> tuple[dict, dict]:
    """Each layer's incoming and outgoing edges."""
    incoming: dict[int, list] = {layer.id: [] for layer in workload.layers}
    outgoing: dict[int, list] = {layer.id: [] for layer in workload.layers}
    for e in workload.edges:
        incoming[e.dest].append(e)
        outgoing[e.source].append(e)
    return incoming, outgoing


def evaluate_plan(workload: PlanningWorkload | str | Path, plan: Plan | Sequence[PlanStage] | str | Path | Mapping) -> Plan:
    """``plan`` with every stage's times, memory and device ids computed, and its violations.

    The status is kept (``feasible`` for bare stages) unless a rule is broken:
    then it is ``infeasible`` and ``reason`` lists the broken rules.

    Parameters
    ----------
    workload : PlanningWorkload, str or Path
        Or Piper's JSON file, as :func:`pipesim.placement.plan.solve.plan` takes it.
    plan : Plan, sequence of PlanStage, str, Path or mapping
        Or a saved plan (``pipesim plan -o`` writes one) or its parsed JSON
        (:func:`~pipesim.placement.plan.result.read_plan`).

    Examples
    --------
    >>> from pipesim.placement.plan.workload import Configuration, Layer, LayerEdge, PlanningWorkload
    >>> c = Configuration("vanilla", time=2.0, parameters=0.0, memory_a=1.0, memory_b=0.0)
    >>> w = PlanningWorkload((Layer(0, {1: (c,)}), Layer(1, {1: (c,)})), (LayerEdge(0, 1, 5.0),),
    ...                      devices=2, memory=10.0, bandwidth=10.0, microbatches=4)
    >>> p = evaluate_plan(w, [PlanStage((0,), 1, 1, {0: "vanilla"}), PlanStage((1,), 1, 1, {1: "vanilla"})])
    >>> p.time_per_sample, p.stages[0].communication, p.stages[0].in_flight
    (3.0, 1.0, 2)
    """
    if not isinstance(workload, PlanningWorkload):  # a path, as plan() takes it
        from pipesim.placement.plan.piper_format import read_piper_workload

        workload = read_piper_workload(Path(workload))
    if isinstance(plan, (str, Path, Mapping)):
        plan = read_plan(plan)
    stages = tuple(plan.stages if isinstance(plan, Plan) else plan)
    base = plan if isinstance(plan, Plan) else Plan(FEASIBLE)
    problems = structure_problems(workload, stages)
    layers = {layer.id: layer for layer in workload.layers}
    N, K = workload.microbatches, workload.devices
    total_d = sum(s.data_parallel for s in stages)
    devices_used = sum(s.device_count for s in stages)
    if devices_used > K:
        problems.append(f"the plan uses {devices_used} devices, more than the {K} available")
    if total_d > N:
        problems.append(f"the data-parallel degrees sum to {total_d}, more than the {N} microbatches per batch")

    incoming, outgoing = edge_lists(workload)
    evaluated: list[PlanStage] = []
    suffix, next_device = total_d, 0
    for i, stage in enumerate(stages):
        t, d = stage.tensor_parallel, stage.data_parallel
        if t < 1 or d < 1:
            problems.append(f"stage {i}: degrees must be at least 1 (t={t}, d={d})")
            evaluated.append(stage)
            continue
        if N % d:
            problems.append(f"stage {i}: data-parallel degree {d} does not divide {N} microbatches")
        y = -(-suffix // d)
        suffix -= d
        sums = stage_sums(workload, layers, incoming, outgoing, i, stage, y, problems)
        compute, memory = sums.compute, sums.memory
        edge_bytes = sums.bytes_in + sums.bytes_out
        resync = resync_bytes(sums.parameters, d, N)
        devices = stage.devices if len(stage.devices) == t * d else tuple(range(next_device, next_device + t * d))
        next_device += t * d
        evaluated.append(
            replace(
                stage,
                compute=compute / d,
                communication=edge_bytes / d / workload.bandwidth,
                resync=resync / workload.bandwidth,
                memory=memory,
                in_flight=y,
                devices=devices,
            )
        )
    if not stages:
        problems.append("the plan has no stages")
    tps = max((s.time for s in evaluated if not math.isnan(s.time)), default=math.inf)
    status, reason = base.status, base.reason
    if problems:
        status, reason = INFEASIBLE, "; ".join(problems)
    return replace(
        base,
        status=status,
        reason=reason,
        stages=tuple(evaluated),
        time_per_sample=tps if not problems else math.inf if not stages else tps,
        devices_used=devices_used,
    )
