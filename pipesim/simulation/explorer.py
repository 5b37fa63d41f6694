"""The schedule explorer: a schedule's orders, timed on a uniform chain or on a real split.

Problem: before choosing a pipeline schedule a user wants to see what each
rank does, how long an iteration takes, how much of it is idle and how many
microbatches each rank stashes.  :func:`explore` runs one iteration of ``m``
microbatches of a schedule on a uniform chain of ``p·v`` virtual stages
(each: forward ``F``, backward ``B`` of which ``x·B`` is the weight-gradient
part for zero-bubble schedules; no communication), the setting of PyTorch's
schedule visualiser; :func:`executed_orders` reads back the per-rank action
order a simulated run actually executed (for any schedule, also ``stream``
and PipeDream ``1f1b``), so the orders shown and exported are the ones timed.

Guarantee: for the flushed schedules the executed orders equal
:func:`~pipesim.simulation.orders.rank_orders` (tested; a ``B`` among split
backwards is recorded as its ``I`` and ``W`` run back to back); makespan is the run's end,
bubble fraction is idle time / (``p`` × makespan); ``peak_in_flight`` counts
microbatches with activations stashed on a rank at once and
``peak_activations`` the stashed activations in units of one microbatch of
the rank (all its chunks).

Reference figures (PyTorch's orders, list-scheduled): 4 ranks, 8
microbatches, F = 1, B = 2: ``gpipe`` and ``1f1b-flush`` 33.0 (27.3% idle);
two chunks of F = 0.5, B = 1: ``interleaved-1f1b`` and ``looped-bfs`` 28.5
(15.8%), ``interleaved-zb``, ``zbv``, ``dualpipev`` 25.5 (5.9%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipesim.errors import InputError
from pipesim.placement.devices import DeviceClass
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from pipesim.simulation.actions import Action, format_action
from pipesim.simulation.engine import Run
from pipesim.simulation.orders import SCHEDULE_SPECS, rank_orders
from pipesim.simulation.program import BACKWARD, FORWARD, WEIGHT
from pipesim.simulation.simulator import SimulationResult, reserve_simulation, simulate

__all__ = ["ScheduleRun", "executed_orders", "explore", "uniform_chain"]

CHAIN_DEVICE = "device"


@dataclass(frozen=True)
class ScheduleRun:
    """One timed iteration of a schedule; ``orders[r]`` is rank ``r``'s executed actions."""

    schedule: str
    ranks: int
    microbatches: int
    virtual: int
    orders: list[list[Action]]
    makespan: float
    bubble_fraction: float
    peak_in_flight: list[int]
    peak_activations: list[float]
    predicted_iteration_time: float | None
    result: SimulationResult

    def to_dict(self) -> dict:
        return {
            "schedule": self.schedule,
            "stages": self.ranks,
            "microbatches": self.microbatches,
            "virtual_stages": self.virtual,
            "placement": self.result.placement,
            "weight_fraction": self.result.weight_fraction,
            "makespan": self.makespan,
            "predicted_iteration_time": self.predicted_iteration_time,
            "bubble_fraction": self.bubble_fraction,
            "peak_in_flight": self.peak_in_flight,
            "peak_activations": self.peak_activations,
            "ranks": [[format_action(a) for a in order] for order in self.orders],
        }


def uniform_chain(stages: int, forward: float = 1.0, backward: float = 2.0, virtual: int = 1) -> tuple[Workload, Split]:
    """A training chain of ``stages`` equal stages on as many devices, one stage each.

    Stage ``k`` is a forward node of time ``forward`` and its backward node of
    time ``backward``; the forward output a backward node reads is ``1/virtual``
    bytes, so a device's ``virtual`` chunks stash one byte per microbatch.
    Nothing costs communication time.

    Examples
    --------
    >>> workload, split = uniform_chain(3)
    >>> len(workload.graph), workload.graph.is_training
    (6, True)
    """
    if stages < 1:
        raise InputError(None, "stages", "must be at least 1")
    for name, value in (("forward", forward), ("backward", backward)):
        if not (value >= 0 and math.isfinite(value)):
            raise InputError(None, name, f"must be a non-negative number, got {value!r}")
    nodes = [Node(k, {CHAIN_DEVICE: forward}, color_class=k, name=f"stage{k}") for k in range(stages)]
    nodes += [Node(stages + k, {CHAIN_DEVICE: backward}, is_backward=True, color_class=k, name=f"stage{k}grad") for k in range(stages)]
    edges = [Edge(k, k + 1, 0.0) for k in range(stages - 1)]
    edges += [Edge(stages + k + 1, stages + k, 0.0) for k in range(stages - 1)]
    edges += [Edge(k, stages + k, 1.0 / virtual) for k in range(stages)]  # the stashed activations
    graph = Graph(nodes, edges)
    split = Split.from_lists({CHAIN_DEVICE: [[k] for k in range(stages)]})
    return Workload(graph, (DeviceClass(CHAIN_DEVICE, stages),)), split


def executed_orders(run: Run, split_backward: bool) -> list[list[Action]]:
    """Each device's actions in the order the run executed them.

    Consecutive tasks of one chunk, phase and microbatch are one action; a
    backward directly followed by its weight-gradient part is one ``B``
    unless ``split_backward``.
    """
    program = run.program
    stage_of = {(program.stage_rank[k], program.stage_chunk[k]): k for k in range(len(program.stage_rank))}
    kinds = {FORWARD: "F", BACKWARD: "I" if split_backward else "B", WEIGHT: "W"}
    orders: list[list[Action]] = []
    for rank, d in enumerate(program.devices):
        lane = next(lane for lane in program.lanes if lane.device == d and lane.kind == "device")
        rec = run.records[lane.index]
        order: list[Action] = []
        for k in range(0, len(rec), 3):
            task = lane.tasks[int(rec[k + 2])]
            action = Action(stage_of.get((rank, task.chunk), rank), kinds[task.phase], int(rec[k + 1]))
            if order and order[-1] == action:
                continue
            if not split_backward and action.kind == "W" and order and order[-1] == Action(action.stage, "B", action.microbatch):
                continue
            order.append(action)
        orders.append(order)
    return orders


def explore(
    schedule: str,
    ranks: int,
    microbatches: int,
    virtual: int | None = None,
    forward: float = 1.0,
    backward: float = 2.0,
    weight_fraction: float = 0.5,
) -> ScheduleRun:
    """Run one iteration of ``schedule`` on a uniform chain of ``ranks × virtual`` stages.

    Parameters
    ----------
    schedule : str
        A flushed schedule, ``1f1b`` or ``stream``.
    ranks, microbatches : int
        Devices ``p`` and microbatches ``m``.
    virtual : int, optional
        Chunks per device (default: the schedule's own, 1 or 2).
    forward, backward : float
        One virtual stage's forward and backward time.
    weight_fraction : float
        Share of the backward in the weight-gradient part (zero-bubble schedules).

    Returns
    -------
    ScheduleRun

    Raises
    ------
    InputError
        Sizes the schedule is not defined for.

    Examples
    --------
    >>> run = explore("1f1b-flush", 4, 8)
    >>> run.makespan, round(run.bubble_fraction, 3)
    (33.0, 0.273)
    >>> explore("zbv", 4, 8, forward=0.5, backward=1.0).makespan
    25.5
    """
    spec = SCHEDULE_SPECS.get(schedule)
    v = virtual if virtual is not None else (spec.default_virtual if spec else 1)
    if ranks < 1 or microbatches < 1 or v < 1:
        raise InputError(None, "schedule", "ranks, microbatches and chunks per rank must be at least 1")
    # before the chain is built: 10^8 ranks would fill the machine long before the simulation refuses
    reserve_simulation(ranks * v, microbatches, f"schedule {schedule}")
    workload, split = uniform_chain(ranks * v, forward, backward, v)
    result = simulate(
        workload, split, schedule=schedule, microbatches=microbatches, minibatch=microbatches,
        virtual_stages=v, weight_fraction=weight_fraction,
    )
    run = result.run
    makespan = run.makespan
    busy = sum(d.busy for d in result.measurements.devices)
    bubble = 1.0 - busy / (ranks * makespan) if makespan > 0 else 0.0
    return ScheduleRun(
        schedule=schedule,
        ranks=ranks,
        microbatches=microbatches,
        virtual=v,
        # A flushed schedule runs its orders exactly (the run records a B of split backwards as its I and W).
        orders=rank_orders(schedule, ranks, microbatches, v) if spec else executed_orders(run, False),
        makespan=makespan,
        bubble_fraction=bubble,
        peak_in_flight=[d.peak_in_flight for d in result.measurements.devices],
        peak_activations=[d.peak_activation for d in result.measurements.devices],
        predicted_iteration_time=result.predicted_iteration_time,
        result=result,
    )
