"""``simulate``: run a placement on a microbatch stream and compare with the prediction.

Problem: the solvers predict a time-per-sample, the evaluator's max-load of
the split (SPEC §1-2); the simulator executes the split (SPEC §6) and reports
what it measured beside that prediction, so a user can see where the model
and the execution agree (``paper`` mode, contiguous split, streaming or 1F1B:
within 0.5%, in practice to rounding) and where they part (overlapped
transfers, shared links, flushes, memory of in-flight microbatches).

Defaults: ``stream`` for inference graphs and ``1f1b`` for training graphs;
``20 × stages`` microbatches (enough for the steady state to settle, see
:mod:`pipesim.simulation.measure`); minibatches of ``4 × stages`` microbatches
for the flushed schedules; at most ``depth + 1`` microbatches in flight when
streaming (see :mod:`pipesim.simulation.schedules`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipesim.placement.evaluate import SplitEvaluation, evaluate
from pipesim.placement.formats import InputError
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from pipesim.simulation.engine import Run, run_program
from pipesim.simulation.links import LinkModel
from pipesim.simulation.measure import Measurements, measure
from pipesim.simulation.program import COMM_MODES, build_program
from pipesim.simulation.schedules import (
    SCHEDULES,
    TRAINING_SCHEDULES,
    default_in_flight,
    lane_units,
)

__all__ = ["SimulationResult", "simulate"]


@dataclass(frozen=True)
class SimulationResult:
    """Predicted and simulated figures of one run; ``run`` keeps every task for traces."""

    workload: str
    schedule: str
    comm: str
    microbatches: int
    minibatch: int | None
    in_flight: int | None
    evaluation: SplitEvaluation
    measurements: Measurements
    run: Run

    @property
    def predicted_time_per_sample(self) -> float:
        return self.evaluation.max_load

    @property
    def simulated_time_per_sample(self) -> float:
        return self.measurements.time_per_sample

    @property
    def time_per_sample(self) -> float:
        """The simulated steady-state time per sample (the headline figure)."""
        return self.measurements.time_per_sample

    @property
    def difference(self) -> float:
        """Simulated minus predicted, relative to predicted."""
        p = self.predicted_time_per_sample
        return (self.simulated_time_per_sample - p) / p if p else 0.0

    def to_dict(self) -> dict:
        m = self.measurements
        return {
            "workload": self.workload,
            "schedule": self.schedule,
            "comm": self.comm,
            "microbatches": self.microbatches,
            "minibatch": self.minibatch,
            "in_flight": self.in_flight,
            "predicted_time_per_sample": self.predicted_time_per_sample,
            "simulated_time_per_sample": self.simulated_time_per_sample,
            "relative_difference": self.difference,
            "latency": {"mean": m.latency_mean, "p50": m.latency_p50, "p99": m.latency_p99},
            "makespan": m.makespan,
            "bubble_fraction": m.bubble_fraction,
            "minibatch_times": list(m.minibatch_times),
            "minibatch_bubble_fractions": list(m.minibatch_bubble_fractions),
            "devices": [d.to_dict() for d in m.devices],
            "memory_overflows": [o.to_dict() for o in m.overflows],
            "assumptions": list(m.assumptions),
            "contiguous": self.evaluation.contiguous,
            "violations": list(self.evaluation.violations),
            "tasks_simulated": self.run.tasks_run,
            "wall_seconds": self.run.wall_seconds,
        }


def simulate(
    workload: Workload,
    split: Split,
    *,
    schedule: str | None = None,
    microbatches: int | None = None,
    minibatch: int | None = None,
    in_flight: int | None = None,
    comm: str = "paper",
    links: LinkModel | None = None,
) -> SimulationResult:
    """Simulate ``split`` of ``workload``; raises :class:`InputError` for impossible requests."""
    graph = workload.graph
    schedule = schedule or ("1f1b" if graph.is_training else "stream")
    if schedule not in SCHEDULES:
        raise InputError(None, "schedule", f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    if comm not in COMM_MODES:
        raise InputError(None, "comm", f"unknown communication mode {comm!r}; expected one of {', '.join(COMM_MODES)}")
    if schedule in TRAINING_SCHEDULES and not graph.is_training:
        raise InputError(None, "schedule", f"{schedule} needs a training graph (with backward nodes); use stream")
    evaluation = evaluate(graph, workload.devices, split)
    program = build_program(graph, split, comm, links)
    n = 20 * program.stages if microbatches is None else microbatches
    if n < 1:
        raise InputError(None, "microbatches", "must be at least 1")
    flushed = schedule in ("gpipe", "1f1b-flush")
    m = (4 * program.stages if minibatch is None else minibatch) if flushed else None
    w = (default_in_flight(program) if in_flight is None else in_flight) if schedule == "stream" else None
    for name, value in (("minibatch", m), ("in_flight", w)):
        if value is not None and value < 1:
            raise InputError(None, name, "must be at least 1")
    units = [lane_units(program, lane, schedule, n, m or n, w or n) for lane in program.lanes]
    run = run_program(program, units, n)
    measurements = measure(run, schedule, m or n, graph, workload.devices, evaluation)
    return SimulationResult(workload.name, schedule, comm, n, m, w, evaluation, measurements, run)
