"""The discrete-event engine: lanes as SimPy processes replaying their units.

Problem: execute a :class:`~pipesim.simulation.program.Program` on a stream of
microbatches (docs/model.md §6): each lane is an exclusive executor that runs its tasks
in its schedule's order; a task starts when the lane is free, when the signals
it waits for have fired for its microbatch and, for the first task of a gated
unit, when enough microbatches have completed; a task on a shared link also
queues for the link (a ``simpy.Resource``, first come first served).

Speed: the per-microbatch structure is precomputed, so the engine does one
``timeout`` per task and creates a wait event only when a signal has not fired
yet.  Signals fired are kept in one flat ``bytearray`` (signal x microbatch).

Guarantee: the run is deterministic; if lanes end up waiting for each other
forever (possible only for training schedules on non-contiguous splits) a
:class:`SimulationError` names the stuck lanes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import simpy

from pipesim.errors import SimulationError
from pipesim.simulation.program import Lane, Op, Program, Task
from pipesim.simulation.schedules import Unit

__all__ = ["Run", "SimulationError", "run_program"]




@dataclass
class Run:
    """What happened: per-lane task starts and per-microbatch completion times."""

    program: Program
    microbatches: int
    completion: list[float]
    # records[lane] = flat [start, microbatch, task index, start, microbatch, ...]
    records: list[list[float]]
    makespan: float
    wall_seconds: float
    tasks_run: int

    def operations(self, microbatches: int | None = None) -> Iterator[tuple[Lane, int, Task, Op, float]]:
        """``(lane, microbatch, task, op, start)`` of every timed operation of microbatches below ``microbatches``.

        A task runs its operations back to back, so each starts where the one before ended.
        """
        limit = self.microbatches if microbatches is None else microbatches
        for lane in self.program.lanes:
            rec = self.records[lane.index]
            for k in range(0, len(rec), 3):
                start, j = rec[k], int(rec[k + 1])
                if j >= limit:
                    continue
                task = lane.tasks[int(rec[k + 2])]
                for op in task.ops:
                    if op.duration > 0:
                        yield lane, j, task, op, start
                    start += op.duration


def run_program(program: Program, units: Sequence[Iterable[Unit]], microbatches: int) -> Run:
    """Simulate ``program`` with ``units[lane]`` giving each lane's order."""
    env = simpy.Environment()
    n = microbatches
    fired = bytearray(program.signals * n)
    waiting: dict[int, simpy.Event] = {}  # signal * n + microbatch -> event its waiters share
    tasks_per_microbatch = sum(len(lane.tasks) for lane in program.lanes)
    remaining = [tasks_per_microbatch] * n
    completion = [0.0] * n
    completed = [0]
    gates: dict[int, list[simpy.Event]] = {}  # completed count -> events
    resources: dict[str, simpy.Resource] = {}
    records: list[list[float]] = [[] for _ in program.lanes]
    blocked: dict[int, str] = {}  # lane -> what it last waited for (reported on deadlock)
    timeout, event = env.timeout, env.event

    def complete(j: int) -> None:
        completion[j] = env.now
        completed[0] += 1
        for ev in gates.pop(completed[0], ()):
            ev.succeed()

    def lane_process(index: int, unit_order: Iterable[Unit]):
        lane = program.lanes[index]
        specs = [
            (tuple(s * n for s in t.waits), t.duration, tuple(s * n for s in t.fires)) for t in lane.tasks
        ]
        link = resources.setdefault(lane.resource, simpy.Resource(env)) if lane.resource else None
        record = records[index].extend
        for j, first, end, gate in unit_order:
            if completed[0] < gate:
                ev = event()
                gates.setdefault(gate, []).append(ev)
                blocked[index] = f"microbatch {j} waits for {gate} completed microbatches"
                yield ev
            for i in range(first, end):
                waits, duration, fires = specs[i]
                for s in waits:
                    if not fired[s + j]:
                        ev = waiting.get(s + j)
                        if ev is None:  # several lanes may wait for one signal: they share the event
                            ev = waiting[s + j] = event()
                        blocked[index] = f"microbatch {j} task {i} waits for signal {s // n}"
                        yield ev
                if link is not None and duration:
                    with link.request() as request:
                        yield request
                        record((env.now, j, i))
                        yield timeout(duration)
                else:
                    record((env.now, j, i))
                    if duration:
                        yield timeout(duration)
                for s in fires:
                    fired[s + j] = 1
                    ev = waiting.pop(s + j, None)
                    if ev is not None:
                        ev.succeed()
            remaining[j] -= end - first
            if not remaining[j]:
                complete(j)

    started = time.perf_counter()
    processes = [env.process(lane_process(index, order)) for index, order in enumerate(units)]
    env.run()
    wall = time.perf_counter() - started
    if completed[0] < n:
        stuck = "; ".join(f"{program.lanes[i].name}: {blocked[i]}" for i, p in enumerate(processes) if p.is_alive)
        raise SimulationError(
            f"the schedule deadlocks on this split after {completed[0]} of {n} microbatches ({stuck}); "
            "streaming never deadlocks: try --schedule stream"
        )
    return Run(
        program=program,
        microbatches=n,
        completion=completion,
        records=records,
        makespan=max(completion, default=0.0),
        wall_seconds=wall,
        tasks_run=sum(len(r) for r in records) // 3,
    )
