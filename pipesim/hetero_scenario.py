"""Heterogeneous-cluster scenarios: plan a Sailor training config across GPU types and zones, simulate it.

Problem: a scenario whose ``solve`` is ``{method: plan, options: {objective: time | cost, …}}`` and whose
``model`` names a Sailor training config (``model: {sailor: CONFIG.json[, profiles: DIR]}``) asks for the
least iteration time (or cost per iteration) of that job on a heterogeneous cluster
(``hardware: {cluster: PRESET | FILE}``); return the planner's plan (docs/model.md §12.4) and its run
as events (§12.6)::

    name: opt350-gh200-a100
    model:
      sailor: ../../shared/workloads/sailor/training_config_opt_350.json   # relative to this file
      # profiles: DIR                      # profiles_tmp.json, llm_info.json, …; default: the config's folder
    hardware: {cluster: gh200-a100}        # a preset or a cluster YAML (relative to this file)
    solve:
      method: plan
      options: {objective: time, budget: 40, min_throughput: 0.5, max_stages: 3, max_kinds: 1, mbs: 4}
    output: {dir: out/opt350-gh200-a100}   # pipesim run writes result.json there

Guarantee: ``pipesim plan SCENARIO.yaml`` (the plan; its flags override the scenario's options),
``pipesim run SCENARIO.yaml`` and :func:`pipesim.run_scenario` (plan and simulation) read the file with
:func:`read_hetero_scenario` and give one answer; a bad field raises
:class:`~pipesim.errors.InputError` naming the file and the field.

Reference: docs/model.md §12.4–12.6.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pipesim.errors import InputError
from pipesim.llm_scenario import only_fields, write_result, yaml_mapping

__all__ = ["HeteroOutcome", "HeteroScenario", "hetero_scenario_data", "read_hetero_scenario", "run_hetero_scenario"]

FIELDS = ("name", "description", "model", "hardware", "solve", "output")
OBJECTIVES = ("time", "cost")
OPTIONS = ("objective", "budget", "min_throughput", "max_stages", "max_kinds", "mbs")


def hetero_scenario_data(path: str | Path) -> dict | None:
    """The parsed scenario if ``path`` is a YAML scenario planning a Sailor training config, else ``None``."""
    data = yaml_mapping(path)
    if data is None or not isinstance(data.get("model"), dict) or "sailor" not in data["model"]:
        return None
    return data


@dataclass(frozen=True)
class HeteroScenario:
    """A checked heterogeneous scenario: files resolved against the scenario's folder."""

    name: str
    config: Path  # the Sailor training config
    profiles: Path | None  # None: the config's folder
    cluster: str  # a preset name or a cluster YAML path
    objective: str = "time"
    budget: float | None = None  # $ per hour
    min_throughput: float | None = None  # iterations per second
    max_stages: int = 3
    max_kinds: int | None = None
    mbs: int | None = None
    output_dir: Path | None = None


def _number(path, where: str, value, integer: bool = False):
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise InputError(path, where, f"must be {kind}, got {value!r}")
    return value


def read_hetero_scenario(path: str | Path, data: dict | None = None) -> HeteroScenario:
    """Check the scenario at ``path`` (``data``: already parsed) and resolve its files.

    Raises
    ------
    InputError
        A field that is not one of a heterogeneous scenario, a missing training config or cluster, an
        objective other than time or cost, a bad option (each names the file and the field).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "job.json").write_text("{}")
    >>> _ = (folder / "s.yaml").write_text("model: {sailor: job.json}\\nhardware: {cluster: gh200-a100}\\n"
    ...                                  "solve: {method: plan, options: {objective: cost, budget: 40}}\\n")
    >>> s = read_hetero_scenario(folder / "s.yaml")
    >>> s.name, s.config == folder / "job.json", s.cluster, s.objective, s.budget
    ('s', True, 'gh200-a100', 'cost', 40)
    """
    path = Path(path)
    data = data if data is not None else hetero_scenario_data(path)
    if data is None:
        raise InputError(path, "model.sailor", "not a heterogeneous scenario (model: {sailor: TRAINING_CONFIG.json})")
    only_fields(path, data, FIELDS, "a heterogeneous scenario")
    base = path.parent
    model = data["model"]
    extra = set(model) - {"sailor", "profiles"}
    if extra:
        raise InputError(path, f"model.{sorted(extra)[0]}", "not a field of model (sailor, profiles)")
    if not isinstance(model.get("sailor"), str):
        raise InputError(path, "model.sailor", "must be the path of a Sailor training config")
    config = base / model["sailor"]
    if not config.is_file():
        raise InputError(path, "model.sailor", f"no file {config}")
    profiles = None
    if model.get("profiles") is not None:
        if not isinstance(model["profiles"], str) or not (base / model["profiles"]).is_dir():
            raise InputError(path, "model.profiles", f"must be a folder, got {model['profiles']!r}")
        profiles = base / model["profiles"]
    hardware = data.get("hardware")
    cluster = hardware.get("cluster") if isinstance(hardware, dict) else None
    if not isinstance(cluster, str) or not cluster:
        raise InputError(path, "hardware.cluster", "needed: a cluster preset or YAML file")
    if set(hardware) - {"cluster"}:
        raise InputError(path, f"hardware.{sorted(set(hardware) - {'cluster'})[0]}", "not a field here (cluster)")
    if cluster.endswith((".yaml", ".yml")):
        cluster = str(base / cluster)
    solve = data.get("solve") if data.get("solve") is not None else {"method": "plan"}
    if not isinstance(solve, dict) or solve.get("method", "plan") != "plan":
        raise InputError(path, "solve.method", "a heterogeneous scenario is planned (method: plan)")
    options = solve.get("options") or {}
    if not isinstance(options, dict):
        raise InputError(path, "solve.options", "must be a mapping")
    extra = set(options) - set(OPTIONS)
    if extra:
        raise InputError(path, f"solve.options.{sorted(extra)[0]}", f"not an option here ({', '.join(OPTIONS)})")
    objective = options.get("objective", "time")
    if objective not in OBJECTIVES:
        raise InputError(path, "solve.options.objective", f"must be time or cost, got {objective!r}")
    out = data.get("output")
    out_dir = None
    if out is not None:
        if not isinstance(out, dict) or set(out) - {"dir"} or not isinstance(out.get("dir"), str):
            raise InputError(path, "output", "must be {dir: FOLDER}")
        out_dir = base / out["dir"]
    name = data.get("name") or path.stem
    if not isinstance(name, str):
        raise InputError(path, "name", f"must be a string, got {name!r}")
    return HeteroScenario(
        name=name, config=config, profiles=profiles, cluster=cluster, objective=objective,
        budget=_number(path, "solve.options.budget", options.get("budget")),
        min_throughput=_number(path, "solve.options.min_throughput", options.get("min_throughput")),
        max_stages=_number(path, "solve.options.max_stages", options.get("max_stages", 3), integer=True),
        max_kinds=_number(path, "solve.options.max_kinds", options.get("max_kinds"), integer=True),
        mbs=_number(path, "solve.options.mbs", options.get("mbs"), integer=True),
        output_dir=out_dir)


@dataclass
class HeteroOutcome:
    """What :func:`run_hetero_scenario` returns: the plan, its simulation and the files written."""

    scenario: str
    plan: Any  # pipesim.placement.plan.hetero.HeteroPlan
    simulation: Any  # pipesim.simulation.hetero_sim.HeteroSimulation
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """``result.json``'s content: ``scenario``, ``plan`` (the planner's JSON; ``plan.plan`` in Sailor's
        format, which ``pipesim estimate CONFIG --sailor-plan`` reads), ``simulation``."""
        return {"scenario": self.scenario, "plan": self.plan.to_dict(), "simulation": self.simulation.to_dict()}

    def summary(self) -> dict:
        """The model's and the simulator's iteration time, their difference, and the plan's money."""
        return {"iteration_time": self.plan.iteration_time,
                "simulated_iteration_time": self.simulation.simulated_iteration_time,
                "difference": self.simulation.difference, "price_per_hour": self.plan.price_per_hour,
                "cost_per_iteration": self.plan.cost_per_iteration,
                "memory_per_gpu": self.plan.estimate.memory_per_gpu}


def run_hetero_scenario(path: str | Path, out_dir: str | Path | bool | None = None, *, data: dict | None = None,
                        step: Callable[[str], Any] | None = None) -> HeteroOutcome:
    """Plan and simulate the heterogeneous scenario at ``path``; with ``out_dir`` (or the scenario's
    ``output.dir`` when ``out_dir`` is ``True``), write ``result.json`` there.

    Raises
    ------
    InputError
        What :func:`read_hetero_scenario` rejects, and bad Sailor files or cluster (named).
    InfeasibleError
        No plan fits the cluster, the budget or the throughput floor.
    """
    from pipesim.hardware.clusters import load_cluster
    from pipesim.placement.plan.hetero import ClusterNetwork, plan_hetero
    from pipesim.placement.plan.sailor import load_sailor_inputs
    from pipesim.simulation.hetero_sim import simulate_hetero_plan

    s = read_hetero_scenario(path, data)
    inputs = load_sailor_inputs(s.config, s.profiles)
    cluster = load_cluster(s.cluster)
    step = step or (lambda _label: contextlib.nullcontext())
    with step(f"planning ({s.objective})"):
        plan = plan_hetero(inputs, cluster, s.objective, budget=s.budget, min_throughput=s.min_throughput,
                           mbs=s.mbs, max_stages=s.max_stages, max_kinds=s.max_kinds)
    with step("simulating the plan"):
        simulation = simulate_hetero_plan(plan.plan, inputs, ClusterNetwork(cluster))
    outcome = HeteroOutcome(s.name, plan, simulation)
    if out_dir is True:  # the scenario's output.dir, else out/<name> as every scenario
        out_dir = s.output_dir or Path("out") / s.name
    write_result(outcome, out_dir)
    return outcome
