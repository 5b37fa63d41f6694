"""pipesim: place DNN operator graphs on device pipelines, prove the placement, simulate it.

One namespace, SimPy-style: the whole Python API is importable from here, and
each function takes the workload first.

>>> import pipesim
>>> sorted(pipesim.METHODS)
['dp', 'expert', 'ip', 'ip_noncontiguous', 'local_search', 'partitioner', 'pipedream', 'single']

* :func:`load_workload`, :func:`load_split`, :func:`save_split` — files;
* :func:`evaluate` — the one cost model (per-device loads, ``max_load``);
* :func:`solve` — every placement method by name (:data:`METHODS`);
* :func:`latency` — one sample's latency (IP, greedy, or of a split);
* :func:`simulate` — a discrete-event run of a split under a schedule;
* :func:`compare` — the paper's table of methods against the optimum;
* :func:`plan`, :func:`evaluate_plan`, :func:`load_planning_workload` — pipeline × data × tensor
  parallelism (Piper's model); both take a path as well as a loaded workload;
* :func:`estimate`, :func:`plan_megatron`, :func:`simulate_estimate` — LLM training under Megatron-Core (docs/model.md §11);
* :func:`estimate_sailor_plan`, :func:`plan_hetero`, :func:`compare_planners`, :func:`simulate_hetero_plan` — Sailor's
  plans, one plan across GPU types and zones, against the uniform/Metis/AMP baselines, run as events (docs/model.md §12);
  :func:`transformer_inputs` — the planner's per-layer profiles from the §11 model, for GPUs nobody profiled (§12.7);
* :func:`load_scenario`, :func:`run_scenario` — scenario files end to end;
* :class:`PipesimError` and its subclasses — every error raised on purpose.

Subpackages: :mod:`pipesim.hardware` (devices, links, systems),
:mod:`pipesim.placement` (graph model, formats, evaluator, solvers),
:mod:`pipesim.simulation`, :mod:`pipesim.workloads`, :mod:`pipesim.comparison`.
Names load on first use, so ``import pipesim`` (and the command line) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

#: public name -> module that defines it (imported on first use: PEP 562)
_LAZY = {
    **{name: "pipesim.api" for name in (
        "estimate", "evaluate", "latency", "load_planning_workload", "load_scenario", "load_split", "load_workload",
        "plan_megatron", "run_scenario", "save_split", "simulate", "solve")},
    **{name: "pipesim.errors" for name in (
        "GraphError", "HardwareError", "IdealLimitError", "InfeasibleError", "InputError", "InternalError",
        "MissingExtraError", "ModelSpecError", "PipesimError", "ResourceLimitError", "SimulationError", "SplitError",
        "UnitError")},
    "plan": "pipesim.placement.plan.solve",
    "simulate_estimate": "pipesim.simulation.megatron_sim",
    "evaluate_plan": "pipesim.placement.plan.evaluate",
    "estimate_sailor_plan": "pipesim.placement.plan.sailor",
    "estimate_sailor_files": "pipesim.placement.plan.sailor",
    "load_sailor_inputs": "pipesim.placement.plan.sailor",
    "read_sailor_plan": "pipesim.placement.plan.sailor_format",
    "SailorEstimate": "pipesim.placement.plan.sailor",
    "plan_hetero": "pipesim.placement.plan.hetero",
    "transformer_inputs": "pipesim.placement.plan.layer_profiles",
    "HeteroPlan": "pipesim.placement.plan.hetero",
    "compare_planners": "pipesim.placement.plan.baselines_hetero",
    "simulate_hetero_plan": "pipesim.simulation.hetero_sim",
    "Plan": "pipesim.placement.plan.result",
    "METHODS": "pipesim.placement.methods",
    "LATENCY_METHODS": "pipesim.placement.methods",
    "compare": "pipesim.comparison",
    "Comparison": "pipesim.comparison",
    "Workload": "pipesim.placement.workload",
    "Graph": "pipesim.placement.graph",
    "Node": "pipesim.placement.graph",
    "Edge": "pipesim.placement.graph",
    "Split": "pipesim.placement.split",
    "SplitEvaluation": "pipesim.placement.evaluate",
    "PlacementResult": "pipesim.placement.result",
    "SimulationResult": "pipesim.simulation",
    "Scenario": "pipesim.scenario",
    "Outcome": "pipesim.pipeline",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pipesim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
