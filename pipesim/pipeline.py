"""One scenario, end to end: build the workload, solve, evaluate, simulate, summarise.

Problem: ``pipesim run`` and every point of ``pipesim sweep`` answer the same
question — where does each operator go, what time-per-sample, throughput and
latency does that give, and does the simulation agree? — so both call
:func:`execute` and read the same :class:`Outcome`.

Guarantees: the split is scored by the one evaluator (the solver's
``evaluation``); the latency is the model's (:func:`pipesim.placement.latency.
latency_of_split`) for inference graphs, the simulated one otherwise; the
simulated figures come from :func:`pipesim.simulation.simulate` with the
scenario's settings.  Times are in the workloads' unit, milliseconds
(:data:`pipesim.workloads.lower.TIME_UNIT`); one *pass* of the graph carries
``samples_per_pass`` samples (the model's batch), so throughput in samples/s
is ``samples_per_pass / (time-per-pass · TIME_UNIT)``.  Cost per sample, when
prices are given, is the provisioned devices' price per hour over the samples
that hour processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipesim.errors import InputError, PipesimError
from pipesim.hardware.units import format_bytes
from pipesim.placement.activations import IN_FLIGHT_SCHEDULES
from pipesim.placement.latency import latency_of_split
from pipesim.placement.methods import get_method
from pipesim.placement.result import PlacementResult
from pipesim.placement.workload import Workload
from pipesim.placement.plan.result import Plan
from pipesim.placement.plan.workload import PlanningWorkload
from pipesim.scenario import PLAN_METHOD, Scenario, load_scenario
from pipesim.simulation.plan_sim import PlanSimulation
from pipesim.simulation import SimulationError, SimulationResult, simulate
from pipesim.workloads.lower import TIME_UNIT

__all__ = ["Outcome", "Step", "execute", "load_for_compare", "no_step", "solve_scenario", "solver_options"]

#: A step reporter: ``with step("solving"):`` shows progress for a long step.
Step = Callable[[str], AbstractContextManager]


def no_step(_: str) -> AbstractContextManager:
    """A step reporter that shows nothing."""
    return nullcontext()


@dataclass
class Outcome:
    """Everything one scenario run produced.

    Attributes
    ----------
    scenario : Scenario
    workload : Workload
        The workload that was solved.
    result : PlacementResult
    latency : float or None
        The latency model's one-sample latency of the split (inference graphs).
    latency_error : str or None
        Why that latency could not be computed.
    simulation : SimulationResult or None
    seconds : dict of str to float
        Wall time per step (``build``, ``solve``, ``latency``, ``simulate``).
    files : dict of str to Path
        Artefacts written (:func:`pipesim.artefacts.write_artefacts`).

    See :func:`execute` for an example.
    """

    scenario: Scenario
    workload: Workload | None
    result: PlacementResult | None
    latency: float | None = None                       # the model's one-sample latency (inference)
    latency_error: str | None = None
    simulation: SimulationResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # artefacts written (pipesim.artefacts)
    schedules: list = field(default_factory=list)         # ScheduleRow per compared schedule (simulate.compare_schedules)
    plan: Plan | None = None                              # solve.method plan: the hybrid-parallel plan
    planning: PlanningWorkload | None = None              # ... the workload it was planned on
    plan_simulation: PlanSimulation | None = None         # ... and its simulation

    @property
    def ok(self) -> bool:
        """Whether the run produced a split (or a feasible plan)."""
        if self.plan is not None:
            return self.plan.feasible
        return self.result.evaluation is not None

    @property
    def problem(self) -> str | None:
        """Why the run produced nothing (``None`` when :attr:`ok`)."""
        if self.ok:
            return None
        return self.plan.reason if self.plan is not None else self.result.message

    def summary(self) -> dict[str, Any]:
        """The headline figures, flat (one sweep row)."""
        if self.plan is not None:
            return self._plan_summary()
        s, ev, sim = self.scenario, self.result.evaluation, self.simulation
        # like with like: a flushed schedule's prediction is its iteration time per microbatch (the flush's
        # bubble included), beside the simulated one; otherwise the max-load, the steady state it predicts
        flushed = sim is not None and sim.predicted_iteration_time is not None and sim.minibatch
        predicted = sim.predicted_iteration_time / sim.minibatch if flushed else self.result.max_load
        simulated = sim.simulated_time_per_sample if sim else None
        out: dict[str, Any] = {
            "workload": self.workload.name,
            "method": self.result.method,
            "status": self.result.status,
            "feasible": None if ev is None else ev.feasible,
            "predicted_time_per_sample": None if ev is None else predicted,
            "max_load": None if ev is None else self.result.max_load,
            "simulated_time_per_sample": simulated,
            "relative_difference": sim.difference if sim else None,
            "settled": sim.measurements.settled if sim else None,
            "samples_per_pass": s.samples_per_pass,
            "predicted_throughput": _throughput(predicted, s.samples_per_pass),
            "simulated_throughput": _throughput(simulated, s.samples_per_pass),
            "latency": self.latency if self.latency is not None else (sim.measurements.latency_mean if sim else None),
            "latency_source": "model" if self.latency is not None else ("simulation" if sim else None),
            "bottleneck": None,
            "bottleneck_load": None,
            "devices_used": None,
            "bubble_fraction": sim.measurements.bubble_fraction if sim else None,
            "schedule": sim.schedule if sim else None,
            "minibatch": sim.minibatch if sim else None,
            "predicted_iteration_time": sim.predicted_iteration_time if sim else None,
            "simulated_iteration_time": sim.simulated_iteration_time if sim else None,
            "mean_utilisation": None,
            "cost_per_hour": None,
            "cost_per_million_samples": None,
            "memory_model": (self.result.stats or {}).get("in_flight", {}).get("schedule") or "static",
            "memory_overflows": None,
            "runnable": None,  # whether the simulation held the split in memory (None: not simulated)
        }
        if ev is not None:
            used = [d for d in ev.devices if d.nodes]
            out["devices_used"] = len(used)
            if ev.bottleneck is not None:
                out["bottleneck"], out["bottleneck_load"] = ev.bottleneck.name, ev.bottleneck.load
        if sim is not None:
            out["memory_overflows"] = [o.to_dict() for o in sim.measurements.overflows]
            out["runnable"] = not sim.measurements.overflows
            if sim.measurements.overflows:
                out["warning"] = not_runnable(sim)
        if sim and sim.measurements.devices:
            utilisations = [d.utilisation for d in sim.measurements.devices]
            out["mean_utilisation"] = sum(utilisations) / len(utilisations)
        if s.prices:
            per_hour = sum(s.prices.get(dc.name, 0.0) * dc.count for dc in self.workload.devices)
            out["cost_per_hour"] = per_hour
            rate = out["simulated_throughput"] or out["predicted_throughput"]
            if rate:
                out["cost_per_million_samples"] = per_hour / 3600.0 / rate * 1e6
        return out

    def _plan_summary(self) -> dict[str, Any]:
        plan, sim, w = self.plan, self.plan_simulation, self.planning
        samples = self.scenario.samples_per_pass
        iteration = plan.iteration_time if plan.feasible else None
        simulated = sim.simulated_iteration_time if sim else None
        per_batch = w.microbatches * samples
        return {
            "workload": w.name,
            "method": PLAN_METHOD,
            "objective": plan.objective,
            "status": plan.status,
            "feasible": plan.feasible,
            "reason": plan.reason,
            "predicted_time_per_sample": plan.time_per_sample if plan.feasible else None,
            "predicted_iteration_time": iteration,
            "simulated_iteration_time": simulated,
            "relative_difference": sim.difference if sim else None,
            "microbatches": w.microbatches,
            "samples_per_pass": samples,
            "predicted_throughput": per_batch / iteration if iteration else None,
            "simulated_throughput": per_batch / simulated if simulated else None,
            "devices": w.devices,
            "devices_used": plan.devices_used,
            "stages": len(plan.stages),
            "shape": " | ".join(f"{len(st.nodes)}L t{st.tensor_parallel}xd{st.data_parallel}" for st in plan.stages),
            "peak_memory_predicted": max((st.memory for st in plan.stages), default=None),
            "peak_memory_simulated": max(sim.simulated_memory, default=None) if sim else None,
            "plan_seconds": plan.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        """``result.json``: the scenario as run, the summary, the solver's result and the simulation."""
        if self.plan is not None:
            return {
                "scenario": {"name": self.scenario.name, "source": str(self.scenario.source), "data": self.scenario.data},
                "summary": self.summary(),
                "plan": self.plan.to_dict(),
                "simulation": None if self.plan_simulation is None else self.plan_simulation.to_dict(),
                "seconds": self.seconds,
            }
        return {
            "scenario": {"name": self.scenario.name, "source": str(self.scenario.source), "data": self.scenario.data},
            "summary": self.summary(),
            "max_load": self.result.max_load if self.result.evaluation is not None else None,
            "solve": self.result.to_dict(),
            "latency": {"model": self.latency, "error": self.latency_error},
            "simulation": None if self.simulation is None else self.simulation.to_dict(),
            "schedules": [row.to_dict() for row in self.schedules],
            "seconds": self.seconds,
        }


def _throughput(time_per_pass: float | None, samples_per_pass: int) -> float | None:
    if time_per_pass is None or not math.isfinite(time_per_pass) or time_per_pass <= 0:
        return None
    return samples_per_pass / (time_per_pass * TIME_UNIT)


def not_runnable(simulation: SimulationResult) -> str | None:
    """One line saying that ``simulation``'s split overflows memory under its schedule, or ``None``.

    The solvers' memory model may be the paper's static one (node memories
    only); the simulation holds every in-flight microbatch's activations, so a
    split the solver accepted can still overflow: this is the warning every
    report shows beside that split.
    """
    overflows = simulation.measurements.overflows
    if not overflows:
        return None
    parts = ", ".join(f"{o.device} needs {format_bytes(o.memory)} of {format_bytes(o.capacity)}" for o in overflows)
    return (f"NOT RUNNABLE under {simulation.schedule}: memory overflow ({parts}) with the activations of the "
            "microbatches in flight; solve with the schedule's in-flight activations (solve.options.schedule) "
            "or give the devices more memory")


def solve_scenario(scenario: Scenario, workload: Workload, *, progress=None) -> PlacementResult:
    """The scenario's method on ``workload``, with its options (checked when the scenario was loaded).

    Parameters
    ----------
    scenario : Scenario
    workload : Workload
        Usually ``scenario.workload()``.
    progress : optional
        Handed to the method (see :func:`pipesim.solve`).

    Returns
    -------
    PlacementResult
    """
    return get_method(scenario.method)(workload, progress=progress, **solver_options(scenario, workload))


def solver_options(scenario: Scenario, workload: Workload) -> dict[str, Any]:
    """The scenario's solve options, with the in-flight activations of its schedule where it names one.

    A scenario whose ``simulate.schedule`` is a training schedule with one stage
    per device (:data:`~pipesim.placement.activations.IN_FLIGHT_SCHEDULES`)
    has the DP and the IPs count the activations that schedule keeps in flight
    (``schedule`` and ``microbatches`` options, :mod:`pipesim.placement.activations`),
    so the split they return is one the simulation can hold; ``solve.options.schedule:
    none`` keeps the paper's static model.

    Examples
    --------
    >>> from pipesim.scenario import scenario_from_data
    >>> s = scenario_from_data({"model": {"generator": "transformer", "training": True},
    ...                         "hardware": {"preset": "a100x8"}, "simulate": {"schedule": "1f1b"}}, "s.yaml")
    >>> solver_options(s, s.workload())
    {'schedule': '1f1b'}
    """
    options = dict(scenario.options)
    sim = scenario.simulate or {}
    schedule = sim.get("schedule")
    if ("schedule" in get_method(scenario.method).options and "schedule" not in options
            and schedule in IN_FLIGHT_SCHEDULES and workload.graph.is_training and sim.get("virtual_stages", 1) == 1):
        options["schedule"] = schedule
        per_flush = sim.get("microbatches") if schedule == "1f1b" else sim.get("minibatch")
        if per_flush:
            options["microbatches"] = per_flush
    return options


def _latency(workload: Workload, result: PlacementResult) -> tuple[float | None, str | None]:
    if result.evaluation is None:
        return None, None
    try:
        return latency_of_split(workload, result.evaluation.split).latency, None
    except PipesimError as exc:
        return None, str(exc)


def execute(scenario: Scenario, *, step: Step = no_step, progress=None) -> Outcome:
    """Build, solve, evaluate and (if the scenario asks) simulate; ``step`` reports each long step.

    Writes nothing (:func:`pipesim.artefacts.write_artefacts` does);
    :func:`pipesim.run_scenario` is this plus the artefacts.

    Parameters
    ----------
    scenario : Scenario
    step : callable
        ``with step(label):`` around each long step (default: shows nothing).
    progress : optional
        Handed to the method.

    Returns
    -------
    Outcome

    Raises
    ------
    PipesimError
        The workload cannot be built, the method fails on purpose, or the
        simulation cannot run (an :class:`InputError` naming ``simulate``).

    Examples
    --------
    >>> from pipesim.scenario import scenario_from_data
    >>> scenario = scenario_from_data({"model": {"generator": "transformer",
    ...                                          "params": {"layers": 2, "hidden": 64, "heads": 4, "seq": 16}},
    ...                                "hardware": {"preset": "a100x8"}, "simulate": {"microbatches": 10}}, "tiny.yaml")
    >>> outcome = execute(scenario)
    >>> outcome.result.status, outcome.simulation.microbatches
    ('optimal', 10)
    >>> outcome.summary()["predicted_time_per_sample"] == outcome.result.max_load
    True
    >>> {"max_load", "solve", "simulation", "summary"} <= set(outcome.to_dict())
    True
    """
    seconds: dict[str, float] = {}

    def timed(name: str, label: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        with step(label):
            value = work()
        seconds[name] = time.perf_counter() - started
        return value

    if scenario.plans:
        return _execute_plan(scenario, timed, seconds)
    workload = timed("build", f"building the {scenario.name} graph", scenario.workload)
    result = timed("solve", f"solving ({scenario.method}, {len(workload.graph.nodes)} nodes)",
                   lambda: solve_scenario(scenario, workload, progress=progress))
    latency, latency_error = None, None
    if not workload.graph.is_training:  # the latency model is for inference (docs/model.md §4.4)
        latency, latency_error = timed("latency", "latency of the split", lambda: _latency(workload, result))
    outcome = Outcome(scenario, workload, result, latency, latency_error, seconds=seconds)
    if scenario.simulate_enabled and result.evaluation is not None:
        settings = scenario.simulate
        label = f"simulating ({settings.get('microbatches') or 'default'} microbatches, {settings.get('schedule') or 'default schedule'})"
        try:
            outcome.simulation = timed("simulate", label,
                                       lambda: simulate(workload, result.evaluation.split, **settings))
        except SimulationError as exc:
            raise InputError(scenario.source, "simulate", str(exc)) from None
    if scenario.compare_schedules and result.evaluation is not None:
        from pipesim.simulation.schedule_comparison import compare_schedules

        devices = sum(1 for d in result.evaluation.devices if d.nodes)
        m = scenario.simulate.get("minibatch") or 4 * devices
        outcome.schedules = timed("schedules", f"comparing {len(scenario.compare_schedules)} schedules on {devices} devices",
                                  lambda: compare_schedules(workload, devices, m, schedules=scenario.compare_schedules,
                                                            weight_fraction=scenario.simulate.get("weight_fraction"),
                                                            comm=scenario.simulate["comm"]))
    return outcome


def _execute_plan(scenario: Scenario, timed, seconds: dict[str, float]) -> Outcome:
    """``solve.method: plan``: plan on the cluster, simulate the plan (the flush model's simulator)."""
    from pipesim.placement.plan.solve import cluster_limits, plan
    from pipesim.placement.plan.flush import Geometry
    from pipesim.simulation.plan_sim import simulate_plan

    options = dict(scenario.options)
    options.pop("microbatches", None)
    objective = options.get("objective", "flush")
    options["objective"] = objective
    planning = timed("build", f"building the {scenario.name} planning workload", scenario.planning_workload)
    result = timed("solve", f"planning ({objective}, {len(planning.layers)} layers)",
                   lambda: plan(planning, hardware=scenario.cluster, **options))
    # the limits plan() used (the cluster's, then the options'), for the simulation and the report
    if scenario.cluster is not None:
        limits = cluster_limits(scenario.cluster)
        limits.pop("max_tensor_parallel")
        planning = planning.with_limits(**limits)
    planning = planning.with_limits(devices=options.get("devices"), memory=options.get("memory"))
    outcome = Outcome(scenario, None, None, seconds=seconds, plan=result, planning=planning)
    if scenario.simulate_enabled and result.feasible and result.stages:
        geometry = Geometry.of(scenario.cluster, planning.devices) if scenario.cluster else Geometry.flat(planning)
        try:
            outcome.plan_simulation = timed("simulate", f"simulating the plan ({planning.microbatches} microbatches)",
                                            lambda: simulate_plan(planning, result, geometry))
        except SimulationError as exc:
            raise InputError(scenario.source, "simulate", str(exc)) from None
    return outcome


def load_for_compare(path: Path) -> tuple[Workload, dict[str, Any]]:
    """``pipesim compare SCENARIO.yaml``: the scenario's workload, and its method's options.

    Raises
    ------
    ScenarioError
        The scenario is invalid.
    """
    scenario = load_scenario(path)
    return scenario.workload(), dict(scenario.options)
