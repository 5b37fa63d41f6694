"""Throughput against device count and memory: the planner beside two baselines (Piper's figure).

Problem: how does throughput grow with the devices, and what do tensor and
data parallelism add over a pure pipeline?  For each device count ``K`` (the
first ``K`` GPUs of a cluster, whole nodes first) and each memory ``M`` this
plans the workload three ways, all scored by the same flush model
(:func:`pipesim.placement.plan.flush.evaluate_flush_plan`):

* ``plan``: :func:`~pipesim.placement.plan.flush.solve_flush_plan` (stages,
  ``t``, ``d``, recomputation, placement on the nodes);
* ``pipeline DP (t=d=1)``: the same planner with ``t = d = 1`` (the 2020
  paper's question: one pipeline, one device per stage, still with
  recomputation);
* ``equal split``: ``K`` stages of equal layer counts in topological order,
  ``t = d = 1``, no recomputation (what a user would try by hand).

Throughput is samples per second: ``N × samples per microbatch / iteration``;
an infeasible point (out of memory) has none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipesim.hardware.clusters import Cluster
from pipesim.placement.plan.flush import Geometry, evaluate_flush_plan, solve_flush_plan
from pipesim.placement.plan.result import INFEASIBLE, Plan, PlanStage
from pipesim.placement.plan.workload import PlanningWorkload

__all__ = ["PLANNERS", "SweepPoint", "equal_split", "plan_sweep", "write_sweep_plot"]

PLANNERS = ("plan", "pipeline DP (t=d=1)", "equal split")


@dataclass(frozen=True)
class SweepPoint:
    """One planner at one (devices, memory)."""

    planner: str
    devices: int
    memory: float
    status: str
    iteration_time: float | None
    throughput: float | None
    shape: str
    seconds: float | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def equal_split(workload: PlanningWorkload, stages: int) -> list[PlanStage]:
    """``stages`` stages of (nearly) equal layer counts in the workload's layer order, ``t = d = 1``.

    Examples
    --------
    >>> from pipesim.placement.plan.workload import Configuration, Layer, PlanningWorkload
    >>> c = Configuration("vanilla", 1.0, 0.0, 0.0, 0.0)
    >>> w = PlanningWorkload(tuple(Layer(i, {1: (c,)}) for i in range(5)), (), 4, 1.0, 1.0, 2)
    >>> [s.nodes for s in equal_split(w, 2)]
    [(0, 1, 2), (3, 4)]
    """
    layers = list(workload.layers)
    stages = max(1, min(stages, len(layers)))
    out, start = [], 0
    for i in range(stages):
        size = len(layers) // stages + (1 if i < len(layers) % stages else 0)
        chunk = layers[start : start + size]
        start += size
        config = {}
        for layer in chunk:
            options = layer.options.get(1, ())
            vanilla = [c for c in options if not c.recomputes] or list(options)
            config[layer.id] = vanilla[0].id if vanilla else ""
        out.append(PlanStage(tuple(layer.id for layer in chunk), 1, 1, config))
    return out


def _shape(stages) -> str:
    """Stages as ``layers L tT dD``, equal neighbours run together (``6x 4L t1d1``)."""
    runs: list[list] = []
    for s in stages:
        text = f"{len(s.nodes)}L t{s.tensor_parallel}d{s.data_parallel}"
        if runs and runs[-1][0] == text:
            runs[-1][1] += 1
        else:
            runs.append([text, 1])
    return " | ".join(text if n == 1 else f"{n}x {text}" for text, n in runs)


def _point(planner: str, plan: Plan, devices: int, memory: float, samples: float) -> SweepPoint:
    ok = plan.status != INFEASIBLE and plan.iteration_time is not None and math.isfinite(plan.iteration_time)
    shape = _shape(plan.stages) if ok else ""
    return SweepPoint(planner, devices, memory, plan.status, plan.iteration_time if ok else None,
                      samples / plan.iteration_time if ok else None, shape, plan.seconds)


def plan_sweep(
    workload: PlanningWorkload,
    cluster: Cluster,
    devices: Sequence[int],
    memories: Sequence[float] | None = None,
    *,
    samples_per_microbatch: int = 1,
    planners: Sequence[str] = PLANNERS,
) -> list[SweepPoint]:
    """Every planner at every (devices, memory): the rows of Piper's figure.

    Parameters
    ----------
    workload : PlanningWorkload
        Its ``microbatches`` N stays; ``devices`` and ``memory`` vary.
    cluster : Cluster
        Homogeneous; ``K`` devices are its first ``K`` (node by node).
    devices : sequence of int
    memories : sequence of float, optional
        Bytes per device (default: the workload's).
    samples_per_microbatch : int
    planners : sequence of str
        Drawn from :data:`PLANNERS`.

    Returns
    -------
    list of SweepPoint
    """
    points = []
    for memory in memories or [workload.memory]:
        for k in devices:
            w = workload.with_limits(devices=k, memory=memory)
            geometry = Geometry.of(cluster, k)
            samples = w.microbatches * samples_per_microbatch
            for planner in planners:
                if planner == "plan":
                    plan = solve_flush_plan(w, geometry)
                elif planner == "pipeline DP (t=d=1)":
                    plan = solve_flush_plan(w, geometry, data_parallel=False, tensor_parallel=False)
                elif planner == "equal split":
                    plan = evaluate_flush_plan(w, equal_split(w, k), geometry)
                else:
                    raise ValueError(f"unknown planner {planner!r}")
                points.append(_point(planner, plan, k, memory, samples))
    return points


def write_sweep_plot(points: Sequence[SweepPoint], path: str | Path, title: str) -> None:
    """Throughput against devices, one line per planner and memory (:func:`pipesim.report.plots.throughput_plot`)."""
    from pipesim.report.plots import throughput_plot

    memories = sorted({p.memory for p in points})
    series: dict[str, list] = {}
    for p in points:
        label = p.planner + (f", {p.memory / 1e9:g} GB" if len(memories) > 1 else "")
        series.setdefault(label, []).append((p.devices, p.throughput))
    throughput_plot(series, path, title)
