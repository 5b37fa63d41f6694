"""``simulate``: run a placement on a microbatch stream and compare with the prediction.

Problem: the solvers predict a time-per-sample, the evaluator's max-load of
the split (docs/model.md §1-2); the simulator executes the split (docs/model.md §6) and reports
what it measured beside that prediction, so a user can see where the model
and the execution agree (``paper`` mode, contiguous split, streaming or 1F1B:
within 0.5%, in practice to rounding) and where they part (overlapped
transfers, shared links, flushes, memory of in-flight microbatches).

Defaults: ``stream`` for inference graphs and ``1f1b`` for training graphs;
``20 × stages`` microbatches (enough for the steady state to settle, see
:mod:`pipesim.simulation.measure`); minibatches of ``4 × stages`` microbatches
for the flushed schedules; at most ``depth + 1`` microbatches in flight when
streaming (see :mod:`pipesim.simulation.schedules`).

Virtual stages: ``virtual_stages = v`` folds the split's ``p·v`` stages onto
``p`` devices (``placement``: ``round-robin``, or ``v`` for ZB-V and
DualPipe-V, the schedule's own by default); zero-bubble schedules split each
backward into input- and weight-gradient parts, ``weight_fraction`` (default
0.5) of it in the weight part.  For flushed schedules the result also holds
the closed-form iteration time (:mod:`pipesim.simulation.formulas`) beside the
simulated one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pipesim.placement.activations import MICROBATCHES_PER_STAGE
from pipesim.placement.display import Display, number, size
from pipesim.placement.evaluate import SplitEvaluation, evaluate
from pipesim.placement.formats import InputError
from pipesim.placement.memory import MemoryBudget
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from pipesim.simulation.actions import PLACEMENTS
from pipesim.simulation.engine import Run, run_program
from pipesim.simulation.formulas import predicted_iteration_time
from pipesim.simulation.gantt import write_gantt
from pipesim.simulation.links import LinkModel
from pipesim.simulation.measure import Measurements, measure
from pipesim.simulation.orders import SCHEDULE_SPECS
from pipesim.simulation.program import COMM_MODES, build_program, folded_split
from pipesim.simulation.schedules import (
    FLUSHED,
    SCHEDULES,
    TRAINING_SCHEDULES,
    default_in_flight,
    lane_units,
    minibatch_orders,
)

__all__ = ["BYTES_PER_LANE_MICROBATCH", "MAX_DEFAULT_TASKS", "SimulationResult", "reserve_simulation", "simulate"]

#: With the default microbatch count, runs double until the estimate settles, up to about this many
#: lane-microbatches (a few seconds of simulation).
MAX_DEFAULT_TASKS = 200_000

#: Memory one lane-microbatch (a lane's forward, backward and transfers of one microbatch: events, records,
#: measurements) takes while a run is simulated.  Measured about 1 KiB (schedule show 1f1b-flush, 256 ranks x
#: 1024 microbatches: 265 MB above start-up; zbv 128 x 256 x 2 chunks: 72 MB); twice that leaves room for
#: transfers and the measurements' copies.
BYTES_PER_LANE_MICROBATCH = 2048


def reserve_simulation(lanes: int, microbatches: int, what: str = "simulating") -> None:
    """Refuse (before allocating) a run of ``lanes x microbatches`` that cannot fit in memory.

    Raises
    ------
    ResourceLimitError
        The run's estimate (:data:`BYTES_PER_LANE_MICROBATCH` each) exceeds
        the memory budget (:class:`~pipesim.placement.memory.MemoryBudget`).

    Examples
    --------
    >>> reserve_simulation(4, 8)
    >>> reserve_simulation(100_000_000, 8, "schedule show")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipesim.errors.ResourceLimitError: schedule show: 100,000,000 lanes x 8 microbatches: about 1.49 TiB needed, ...
    """
    MemoryBudget().reserve(lanes * microbatches * BYTES_PER_LANE_MICROBATCH,
                           f"{what}: {lanes:,} lanes x {microbatches:,} microbatches")


@dataclass(frozen=True, repr=False)
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
    virtual_stages: int = 1
    placement: str = "round-robin"
    weight_fraction: float | None = None
    predicted_iteration_time: float | None = None  # flushed schedules: the closed form

    @property
    def simulated_iteration_time(self) -> float | None:
        """Flushed schedules: the mean time of a full minibatch, flush to flush."""
        return self.measurements.iteration_time

    @property
    def predicted_time_per_sample(self) -> float:
        """The evaluator's max-load of the (folded) split: the model's time per sample."""
        return self.evaluation.max_load

    @property
    def simulated_time_per_sample(self) -> float:
        """The simulated steady-state time per sample (never below the busiest lane's work)."""
        return self.measurements.time_per_sample

    @property
    def time_per_sample(self) -> float:
        """The simulated steady-state time per sample (the headline figure)."""
        return self.measurements.time_per_sample

    @property
    def difference(self) -> float:
        """Simulated minus predicted, relative to predicted, like with like: for a flushed schedule the
        iteration time (flush and bubble included on both sides), otherwise the time per sample against
        the max-load (the steady state the max-load predicts)."""
        if self.predicted_iteration_time is not None and self.simulated_iteration_time is not None:
            p = self.predicted_iteration_time
            return (self.simulated_iteration_time - p) / p if p else 0.0
        p = self.predicted_time_per_sample
        return (self.simulated_time_per_sample - p) / p if p else 0.0

    def display(self, gantt: bool = True) -> Display:
        """Predicted against simulated time per sample, one row per device, and (``gantt``) the Gantt chart
        of the first microbatches as an inline picture.

        ``repr(result)`` is its text (no picture) and Jupyter shows its HTML (``_repr_html_``).
        """
        m = self.measurements
        title = (f"{self.workload}: {self.schedule}, {self.microbatches} microbatches — time per sample predicted "
                 f"{number(self.predicted_time_per_sample)}, simulated {number(self.simulated_time_per_sample)} "
                 f"({self.difference:+.2%})")
        rows = [(d.device, str(d.stage), number(d.predicted_load), number(d.simulated_load), f"{d.utilisation:.0%}",
                 str(d.peak_in_flight), f"{size(d.peak_memory)} / {size(d.capacity)}") for d in m.devices]
        notes = list(m.warnings) + [f"memory overflow: {o.to_dict()}" for o in m.overflows]
        if not m.settled:
            notes.insert(0, "the simulated time per sample has not settled: see the warnings")
        out = Display(title, ("device", "stage", "predicted load", "simulated load", "utilisation", "peak in flight",
                              "peak memory"), rows, notes=notes)
        if gantt:
            picture = io.BytesIO()
            write_gantt(self.run, picture, microbatches=min(self.run.microbatches, 2 * len(self.run.program.lanes) + 4))
            out.images.append(picture.getvalue())
        return out

    def __repr__(self) -> str:
        return self.display(gantt=False).text()

    def _repr_html_(self) -> str:
        return self.display().html()

    def to_dict(self) -> dict:
        """Everything as JSON, with ``predicted_time_per_sample``, ``simulated_time_per_sample`` and
        ``settled`` at top level."""
        m = self.measurements
        return {
            "workload": self.workload,
            "schedule": self.schedule,
            "comm": self.comm,
            "microbatches": self.microbatches,
            "minibatch": self.minibatch,
            "in_flight": self.in_flight,
            "virtual_stages": self.virtual_stages,
            "placement": self.placement,
            "weight_fraction": self.weight_fraction,
            "predicted_iteration_time": self.predicted_iteration_time,
            "simulated_iteration_time": self.simulated_iteration_time,
            "predicted_time_per_sample": self.predicted_time_per_sample,
            "simulated_time_per_sample": self.simulated_time_per_sample,
            "relative_difference": self.difference,
            "latency": {"mean": m.latency_mean, "p50": m.latency_p50, "p99": m.latency_p99, "alone": m.latency_alone},
            "makespan": m.makespan,
            "bubble_fraction": m.bubble_fraction,
            "settled": m.settled,
            "warnings": list(m.warnings),
            "bottleneck_time": m.bottleneck_time,
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
    virtual_stages: int = 1,
    weight_fraction: float | None = None,
    placement: str | None = None,
) -> SimulationResult:
    """Simulate ``split`` of ``workload``; raises :class:`InputError` for impossible requests.

    Parameters
    ----------
    workload, split : Workload, Split
        What to run and where (``p·virtual_stages`` stages when ``virtual_stages > 1``).
    schedule : str, optional
        One of :data:`SCHEDULES` (default: ``stream`` for inference, ``1f1b`` for training).
    microbatches, minibatch, in_flight : int, optional
        Microbatches to run, per flushed minibatch, and in flight when streaming.
    comm : str
        ``paper`` or ``overlap``; ``links`` times the ``overlap`` transfers.
    virtual_stages : int
        Chunks per device.
    weight_fraction : float, optional
        Zero-bubble schedules: the weight-gradient share of each backward (default 0.5).
    placement : str, optional
        ``round-robin`` or ``v`` (default: the schedule's).

    Returns
    -------
    SimulationResult

    Raises
    ------
    InputError
        An unknown schedule or mode, a schedule the graph or chunk count does
        not allow, or a placement the schedule is not defined for.
    SimulationError
        The schedule deadlocks on this split.
    """
    graph = workload.graph
    schedule = schedule or ("1f1b" if graph.is_training else "stream")
    if schedule not in SCHEDULES:
        raise InputError(None, "schedule", f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    if comm not in COMM_MODES:
        raise InputError(None, "comm", f"unknown communication mode {comm!r}; expected one of {', '.join(COMM_MODES)}")
    if schedule in TRAINING_SCHEDULES and not graph.is_training:
        raise InputError(None, "schedule", f"{schedule} needs a training graph (with backward nodes); use stream")
    spec = SCHEDULE_SPECS.get(schedule)
    if not isinstance(virtual_stages, int) or virtual_stages < 1:
        raise InputError(None, "virtual_stages", f"must be a whole number of at least 1, got {virtual_stages!r}")
    if placement is not None and placement not in PLACEMENTS:
        raise InputError(None, "placement", f"unknown placement {placement!r}; expected one of {', '.join(PLACEMENTS)}")
    if spec is not None:
        if spec.virtual is not None and virtual_stages != spec.virtual:
            raise InputError(None, "virtual_stages", f"{schedule} runs {spec.virtual} chunk(s) per device, not {virtual_stages}")
        if placement is not None and placement != spec.placement and virtual_stages > 1:
            raise InputError(None, "placement", f"{schedule} is defined for the {spec.placement} placement, not {placement}")
        placement = spec.placement
    elif schedule == "1f1b" and virtual_stages > 1:
        raise InputError(None, "virtual_stages", "PipeDream's 1f1b runs one chunk per device; use interleaved-1f1b")
    placement = placement or "round-robin"
    splits_backward = spec is not None and spec.splits_backward
    if weight_fraction is not None and not 0.0 <= weight_fraction <= 1.0:
        raise InputError(None, "weight_fraction", f"must be between 0 and 1, got {weight_fraction!r}")
    fraction = (0.5 if weight_fraction is None else weight_fraction) if splits_backward else None
    flushed = schedule in FLUSHED
    program = build_program(
        graph, split, comm, links, virtual=virtual_stages, placement=placement, weight_fraction=fraction, mirror_backward=flushed,
    )
    evaluation = evaluate(graph, workload.devices, folded_split(graph, split, program))
    m = (MICROBATCHES_PER_STAGE * program.stages if minibatch is None else minibatch) if flushed else None
    n = (20 * program.stages if not flushed else 5 * m) if microbatches is None else microbatches
    if n < 1:
        raise InputError(None, "microbatches", "must be at least 1")
    w = (default_in_flight(program) if in_flight is None else in_flight) if schedule == "stream" else None
    for name, value in (("minibatch", m), ("in_flight", w)):
        if value is not None and value < 1:
            raise InputError(None, name, "must be at least 1")
    while True:
        reserve_simulation(len(program.lanes), n)
        orders = minibatch_orders(program, schedule, n, m) if flushed else None
        units = [lane_units(program, lane, schedule, n, m or n, w or n, orders) for lane in program.lanes]
        run = run_program(program, units, n)
        measurements = measure(run, schedule, m or n, graph, workload.devices, evaluation)
        # the default count grows until the estimate settles (a given count is honoured, flagged if unsettled)
        if measurements.settled or microbatches is not None or n * len(program.lanes) > MAX_DEFAULT_TASKS:
            break
        n *= 2
    predicted = predicted_iteration_time(program, schedule, m) if flushed else None
    return SimulationResult(
        workload.name, schedule, comm, n, m, w, evaluation, measurements, run,
        virtual_stages=virtual_stages, placement=placement, weight_fraction=fraction, predicted_iteration_time=predicted,
    )
