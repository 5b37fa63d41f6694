"""LLM scenarios end to end: plan a Megatron-Core configuration, simulate it, write ``result.json``.

Problem: a scenario whose ``solve`` is ``{method: plan, options: {objective: megatron, gbs: G[, precision: P]}}``
names a transformer (``model:``, a ``generator: transformer`` section or a preset) and a cluster
(``hardware: {cluster: …}``); return the planner's pick for the least iteration time that fits
(docs/model.md §11.9) and its run through the discrete-event simulator (§11.10).

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
    """The parsed scenario if ``path`` is a YAML scenario whose plan objective is ``megatron``, else ``None``."""
    data = yaml_mapping(path)
    solve = data.get("solve") if isinstance(data, dict) else None
    options = solve.get("options") if isinstance(solve, dict) else None
    if isinstance(solve, dict) and solve.get("method") == "plan" and isinstance(options, dict) \
            and options.get("objective") == "megatron":
        return data
    return None


@dataclass
class LLMOutcome:
    """What :func:`run_llm_scenario` returns: the plan, its simulation and the files written."""

    scenario: str
    plan: Any                 # pipesim.placement.plan.megatron_plan.MegatronPlan
    simulation: Any           # pipesim.simulation.megatron_sim result
    files: dict[str, str] = field(default_factory=dict)

    @property
    def best(self):
        """The picked configuration's :class:`~pipesim.placement.plan.megatron.Estimate`."""
        return self.plan.best

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
        raise InputError(path, "solve", "not an LLM scenario (solve: {method: plan, options: {objective: megatron}})")
    only_fields(path, data, FIELDS, "an LLM scenario")
    options = data["solve"]["options"]
    extra = set(options) - set(OPTIONS)
    if extra:
        raise InputError(path, f"solve.options.{sorted(extra)[0]}", "not an option of objective megatron "
                         "(gbs, precision)")
    gbs = options.get("gbs")
    if isinstance(gbs, bool) or not isinstance(gbs, int) or gbs < 1:
        raise InputError(path, "solve.options.gbs", f"must be a positive integer, got {gbs!r}")
    precision = options.get("precision", "bf16")
    if precision not in ("bf16", "fp16", "fp8"):
        raise InputError(path, "solve.options.precision", f"must be bf16, fp16 or fp8, got {precision!r}")
    hardware = (data.get("hardware") or {}).get("cluster") if isinstance(data.get("hardware"), dict) else None
    if not hardware:
        raise InputError(path, "hardware.cluster", "needed: a cluster preset or YAML file")
    model = load_llm(str(path))
    cluster = load_cluster(hardware)
    step = step or (lambda _label: contextlib.nullcontext())
    with step("planning (megatron)"):
        plan = plan_megatron(model, cluster, gbs, precision)
    with step("simulating the plan"):
        simulation = simulate_estimate(plan.best)
    outcome = LLMOutcome(data.get("name") or path.stem, plan, simulation)
    if out_dir is True:
        section = data.get("output") if isinstance(data.get("output"), dict) else {}
        out_dir = section.get("dir")
    if out_dir:
        folder = Path(out_dir)
        if folder.exists() and not folder.is_dir():
            raise InputError(folder, None, "is a file: the output must be a folder")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(json.dumps(outcome.to_dict(), indent=2) + "\n")
        outcome.files["result"] = str(folder / "result.json")
    return outcome
