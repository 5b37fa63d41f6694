"""LLM scenarios end to end: plan a transformer's training on a cluster, simulate it, write ``result.json``.

Problem: a scenario whose ``solve`` is ``{method: plan, options: {objective: O, gbs: G, …}}`` names a
transformer (``model:``, a ``generator: transformer`` section or a preset) and a cluster
(``hardware: {cluster: …}``).  With ``objective: megatron``, return the Megatron-Core planner's pick for the
least iteration time that fits (docs/model.md §11.9) and its run through the discrete-event simulator
(§11.10).  With ``objective: time`` or ``cost`` (a cluster of several GPU types, zones, prices), return the
heterogeneous planner's plan (§12.4) on per-layer profiles from the §11 cost model (§12.7) and its
event simulation (§12.6).

Guarantee: the same result from Python (:func:`pipesim.run_scenario`, :func:`run_llm_scenario`) as from
``pipesim run`` (which calls this module); bad fields raise :class:`~pipesim.errors.InputError` naming the file and
the field.

Reference: docs/model.md §11.9–11.10.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pipesim.errors import HardwareError, InputError

__all__ = ["LLMOutcome", "llm_scenario_data", "run_llm_scenario"]

FIELDS = ("name", "description", "model", "hardware", "solve", "output")
OPTIONS = ("objective", "gbs", "precision")
#: objective time|cost: the heterogeneous planner's options (as ``pipesim plan``'s flags)
HETERO_OPTIONS = OPTIONS + ("budget", "min_throughput", "max_stages", "max_kinds", "mbs")
#: objective megatron also takes per_stage: the best plan with per-stage degrees beside the pick (§11.9)
MEGATRON_OPTIONS = OPTIONS + ("per_stage",)
OBJECTIVES = ("megatron", "time", "cost")


def yaml_mapping(path: str | Path) -> dict | None:
    """The YAML mapping in ``path`` if it is a readable ``.yaml``/``.yml`` file, else ``None`` (the scenario
    reader that takes it says why it is not a scenario)."""
    if not str(path).endswith((".yaml", ".yml")):
        return None
    import yaml

    from pipesim.hardware.catalog import safe_load_text

    try:
        data = safe_load_text(Path(path).read_text(), str(path))
    except (OSError, ValueError, yaml.YAMLError, HardwareError):
        return None
    return data if isinstance(data, dict) else None


def only_fields(path: Path, data: dict, fields, what: str) -> None:
    """:class:`InputError` naming the first top-level field of ``data`` that is not one of ``fields``."""
    unknown = set(data) - set(fields)
    if unknown:
        raise InputError(path, sorted(unknown)[0], f"not a field of {what} ({', '.join(fields)})")


def llm_scenario_data(path: str | Path) -> dict | None:
    """The parsed scenario if ``path`` is a YAML scenario planning a transformer with objective megatron, time or
    cost, else ``None`` (a scenario naming a Sailor training config, ``model: {sailor: …}``, is
    :mod:`pipesim.hetero_scenario`'s)."""
    data = yaml_mapping(path)
    if isinstance(data, dict) and isinstance(data.get("model"), dict) and "sailor" in data["model"]:
        return None
    solve = data.get("solve") if isinstance(data, dict) else None
    options = solve.get("options") if isinstance(solve, dict) else None
    if isinstance(solve, dict) and solve.get("method") == "plan" and isinstance(options, dict) \
            and options.get("objective") in OBJECTIVES:
        return data
    return None


@dataclass
class LLMOutcome:
    """What :func:`run_llm_scenario` returns: the plan, its simulation and the files written."""

    scenario: str
    plan: Any                 # MegatronPlan (objective megatron) or HeteroPlan (time, cost)
    simulation: Any           # MegatronSimulation or HeteroSimulation
    files: dict[str, str] = field(default_factory=dict)

    @property
    def best(self):
        """The picked configuration's estimate (Megatron-Core's :class:`~pipesim.placement.plan.megatron.Estimate`,
        or the heterogeneous plan's :class:`~pipesim.placement.plan.sailor.SailorEstimate`)."""
        return getattr(self.plan, "best", None) or self.plan.estimate

    def to_dict(self) -> dict:
        """``result.json``'s content: ``scenario``, ``plan`` (the planner's JSON), ``simulation``."""
        return {"scenario": self.scenario, "plan": self.plan.to_dict(), "simulation": self.simulation.to_dict()}

    def summary(self) -> dict:
        """The model's and the simulator's iteration time and their difference."""
        return {"iteration_time": self.plan.iteration_time,
                "simulated_iteration_time": self.simulation.simulated_iteration_time,
                "difference": self.simulation.difference, "memory_per_gpu": self.best.memory_per_gpu}


def run_llm_scenario(path: str | Path, out_dir: str | Path | None = None, *, data: dict | None = None,
                     step: Callable[[str], Any] | None = None) -> LLMOutcome:
    """Plan and simulate the LLM scenario at ``path``; with ``out_dir`` (or the scenario's ``output.dir`` when
    ``out_dir`` is ``True``), write ``result.json`` there.

    Parameters
    ----------
    path : str or Path
        The scenario file.
    out_dir : str, Path or None
        Where to write ``result.json``; ``None`` writes nothing.
    data : dict, optional
        The already parsed scenario (:func:`llm_scenario_data`).
    step : callable, optional
        A context-manager factory reporting progress (the CLI's ``step_reporter``).

    Raises
    ------
    InputError
        A field that is not one of an LLM scenario, a bad ``gbs`` or ``precision``, no cluster.
    InfeasibleError
        Objective time|cost: no plan fits the cluster under the scenario's limits.

    Examples
    --------
    >>> import pipesim
    >>> out = pipesim.run_scenario("scenarios/llm/llama3.1-70b-dgx-h100x8.yaml")   # doctest: +SKIP
    >>> abs(out.summary()["difference"]) < 0.02                                      # doctest: +SKIP
    True
    """
    import contextlib

    from pipesim.hardware.clusters import load_cluster
    from pipesim.placement.plan.megatron_plan import plan_megatron
    from pipesim.simulation.megatron_sim import simulate_estimate
    from pipesim.workloads.llms import load_llm

    path = Path(path)
    data = data if data is not None else llm_scenario_data(path)
    if data is None:
        raise InputError(path, "solve", "not an LLM scenario (solve: {method: plan, options: {objective: "
                         "megatron|time|cost}})")
    options, objective = _checked(path, data)
    step = step or (lambda _label: contextlib.nullcontext())
    name = data.get("name") or path.stem
    if objective == "megatron":
        model, cluster = load_llm(str(path)), load_cluster(data["hardware"]["cluster"])
        with step("planning (megatron)"):
            plan = plan_megatron(model, cluster, options["gbs"], options.get("precision", "bf16"),
                                 per_stage=options.get("per_stage", False))
        with step("simulating the plan"):
            simulation = simulate_estimate(plan.best)
    else:
        from pipesim.placement.plan.hetero import ClusterNetwork
        from pipesim.simulation.hetero_sim import simulate_hetero_plan

        plan, inputs, cluster = hetero_plan_of(path, data, step)
        with step("simulating the plan"):
            simulation = simulate_hetero_plan(plan.plan, inputs, ClusterNetwork(cluster),
                                              precision=link_precision(options))
    outcome = LLMOutcome(name, plan, simulation)
    if out_dir is True:  # the scenario's output.dir, else out/<name> as every scenario
        section = data.get("output") if isinstance(data.get("output"), dict) else {}
        out_dir = section.get("dir") or Path("out") / name
    write_result(outcome, out_dir)
    return outcome


def write_result(outcome, out_dir: str | Path | None) -> None:
    """``result.json`` (``outcome.to_dict()``) in ``out_dir``, all or nothing; noted in ``outcome.files``."""
    if out_dir:
        from pipesim.output import output_folder, write_text

        target = output_folder(out_dir, "output") / "result.json"
        write_text(target, json.dumps(outcome.to_dict(), indent=2) + "\n")
        outcome.files["result"] = str(target)


def _checked(path: Path, data: dict) -> tuple[dict, str]:
    """The scenario's ``solve.options`` and objective, checked (one line naming the field otherwise)."""
    only_fields(path, data, FIELDS, "an LLM scenario")
    options = data["solve"]["options"]
    objective = options.get("objective")
    allowed = MEGATRON_OPTIONS if objective == "megatron" else HETERO_OPTIONS
    extra = set(options) - set(allowed)
    if extra:
        raise InputError(path, f"solve.options.{sorted(extra)[0]}", f"not an option of objective {objective} "
                         f"({', '.join(allowed[1:])})")
    gbs = options.get("gbs")
    if isinstance(gbs, bool) or not isinstance(gbs, int) or gbs < 1:
        raise InputError(path, "solve.options.gbs", f"must be a positive integer, got {gbs!r}")
    precision = options.get("precision", "bf16")
    if precision not in ("bf16", "fp16", "fp8"):
        raise InputError(path, "solve.options.precision", f"must be bf16, fp16 or fp8, got {precision!r}")
    if not isinstance(options.get("per_stage", False), bool):
        raise InputError(path, "solve.options.per_stage", f"must be true or false, got {options['per_stage']!r}")
    hardware = data.get("hardware")
    if not isinstance(hardware, dict) or not hardware.get("cluster"):
        raise InputError(path, "hardware.cluster", "needed: a cluster preset or YAML file")
    return options, objective


def hetero_plan_of(path: str | Path, data: dict, step: Callable[[str], Any] | None = None) -> tuple[Any, Any, Any]:
    """Objective time|cost: the heterogeneous plan (§12.4) on §11's per-layer profiles (§12.7).

    Returns ``(plan, inputs, cluster)``: the :class:`~pipesim.placement.plan.hetero.HeteroPlan`, the
    :class:`~pipesim.placement.plan.sailor.SailorInputs` it was planned on and the cluster.
    """
    import contextlib

    from pipesim.hardware.clusters import load_cluster
    from pipesim.placement.plan.hetero import plan_hetero
    from pipesim.placement.plan.layer_profiles import transformer_inputs
    from pipesim.workloads.llms import load_llm

    path = Path(path)
    options, _ = _checked(path, data)
    limits = {}
    for key, kind in (("budget", float), ("min_throughput", float), ("max_stages", int), ("max_kinds", int),
                      ("mbs", int)):
        value = options.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)) \
                or not value > 0:
            raise InputError(path, f"solve.options.{key}", f"must be a positive {'integer' if kind is int else 'number'}, "
                             f"got {value!r}")
        limits[key] = value
    name = data.get("name") or path.stem
    model, cluster = load_llm(str(path)), load_cluster(data["hardware"]["cluster"])
    step = step or (lambda _label: contextlib.nullcontext())
    with step(f"pricing {name}'s layers on {cluster.name}'s GPU types"):
        inputs = transformer_inputs(model, cluster, gbs=options["gbs"], precision=options.get("precision", "bf16"),
                                    name=name)
    with step(f"planning (objective {options['objective']})"):
        plan = plan_hetero(inputs, cluster, options["objective"], budget=limits.get("budget"),
                           min_throughput=limits.get("min_throughput"), mbs=limits.get("mbs"),
                           max_stages=limits.get("max_stages", 3), max_kinds=limits.get("max_kinds"),
                           precision=link_precision(options))
    return plan, inputs, cluster


def link_precision(options: dict) -> str:
    """Bytes on the links: FP8 runs its GEMMs in FP8 and keeps activations and gradients in BF16."""
    precision = options.get("precision", "bf16")
    return "bf16" if precision == "fp8" else precision
