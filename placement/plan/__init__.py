"""Hybrid-parallel plans: pipeline stages, each replicated (data) and split (tensor) over devices.

docs/model.md §10.  One sub-system, one module per idea:

* :mod:`~pipesim.placement.plan.workload` — the layer DAG with per-layer configurations;
* :mod:`~pipesim.placement.plan.result` — :class:`Plan` and :class:`PlanStage`;
* :mod:`~pipesim.placement.plan.evaluate` — the one cost model (Piper's objective);
* :mod:`~pipesim.placement.plan.solve` — :func:`plan`, the optimal planner (Piper's objective,
  and the entry point for every objective);
* :mod:`~pipesim.placement.plan.flush` — the 1F1B-with-flush objective on a cluster's nodes;
* :mod:`~pipesim.placement.plan.piper_format` — Piper's input files, read as they are;
* :mod:`~pipesim.placement.plan.sailor_format` — Sailor's profiles, bandwidths, configs and plans, read as they are;
* :mod:`~pipesim.placement.plan.sailor` — a Sailor plan's iteration time and memory per GPU (§12.2);
* :mod:`~pipesim.placement.plan.hetero` — the optimal plan across GPU types and zones (§12.4);
* :mod:`~pipesim.placement.plan.baselines_hetero` — uniform, Metis and AMP search rules on the same model (§12.5).
* :mod:`~pipesim.placement.plan.megatron` — one Megatron-Core configuration of an LLM: step time and
  memory (docs/model.md §11);
* :mod:`~pipesim.placement.plan.megatron_layer` — a layer's TP/CP collectives and the DP reduction as events on
  a GPU's compute and communication streams: the exposed communication of §11.4–11.5;
* :mod:`~pipesim.placement.plan.megatron_plan` — the fastest such configuration that fits (§11.9).

The planner's modules load numba; they are imported on first use, so reading a
workload or a plan stays cheap.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Configuration": "workload", "Layer": "workload", "LayerEdge": "workload", "PlanningWorkload": "workload",
    "Plan": "result", "PlanStage": "result",
    "evaluate_plan": "evaluate",
    "OBJECTIVES": "solve", "PLAN_OPTIONS": "solve", "cluster_limits": "solve", "plan": "solve", "solve_plan": "solve",
    "Geometry": "flush", "evaluate_flush_plan": "flush", "solve_flush_plan": "flush",
    "is_piper_format": "piper_format", "read_piper_workload": "piper_format",
    "SailorEstimate": "sailor", "estimate_sailor_files": "sailor", "estimate_sailor_plan": "sailor",
    "load_sailor_inputs": "sailor", "read_sailor_plan": "sailor_format",
    "HeteroPlan": "hetero", "plan_hetero": "hetero",
    "ParallelConfig": "megatron", "Estimate": "megatron", "estimate": "megatron", "with_nodes": "megatron",
    "MegatronPlan": "megatron_plan", "plan_megatron": "megatron_plan",
    "score_plan": "hetero",
    "compare_planners": "baselines_hetero", "plan_amp": "baselines_hetero", "plan_metis": "baselines_hetero",
    "plan_uniform": "baselines_hetero",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
