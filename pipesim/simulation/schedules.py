"""Schedules: in which order each lane runs its work across microbatches.

Problem: a device runs many microbatches; the order in which it takes their
forward and backward work decides throughput, bubbles and memory (ISSUE 6,
docs/model.md §6).  A schedule here is a fixed order per lane, a sequence of *units*
``(microbatch, first task, end task, gate)``: the lane runs those tasks of that
microbatch, after at least ``gate`` microbatches have completed.

* ``stream`` (inference, or training with no 1F1B discipline): software
  pipelining.  Microbatch ``j`` is admitted (its depth-0 tasks may start) once
  ``j - W + 1`` microbatches have completed (at most ``W`` in flight).  A task
  of depth ``k`` (lane hops on the longest chain of waits before it, see
  :mod:`pipesim.simulation.program`) of microbatch ``j`` runs in slot
  ``j (D + 1) / w + k`` with ``D`` the largest depth and ``w = min(W, D + 1)``;
  within a slot older microbatches go first.  Every wait (on another lane, on
  an admission) then points to an earlier slot or to an earlier task of the
  same slot and lane, so no order deadlocks.  With ``W ≥ D + 1`` slots are
  ``j + k``, each lane does one microbatch's worth of work per slot and every
  cycle of the run holds at most one slot of work per microbatch of delay, so
  the steady-state time-per-sample is exactly the largest per-microbatch lane
  work: the evaluator's max-load in ``paper`` mode.
* ``1f1b`` (PipeDream's asynchronous 1F1B): stage ``s`` of ``S`` runs
  ``w = S - s - 1`` forwards, then alternates one forward and one backward,
  then drains its backwards; stage ``s`` holds at most ``S - s`` microbatches.
* ``1f1b-flush`` (PipeDream-Flush): the same within each minibatch of ``m``
  microbatches, and a minibatch starts only when the previous one has
  completed everywhere (the weight update).
* the flushed schedules of :mod:`pipesim.simulation.orders` (``gpipe``,
  ``1f1b-flush``, ``interleaved-1f1b``, ``looped-bfs``, ``zb-h1``, ``zb-h2``,
  ``interleaved-zb``, ``zbv``, ``dualpipev``): within each minibatch of ``m``
  microbatches every lane runs its rank's action order (PyTorch's), an action
  ``(stage, kind, microbatch)`` being the lane's tasks of that chunk and
  phase; a minibatch starts only when the previous one has completed
  everywhere (the flush: the weight update).  For ``S`` uniform stages GPipe
  and 1F1B-flush take ``(m + S - 1)(f + b)`` per minibatch.

Stages are the devices in pipeline order (a topological order of the device
graph); a device's lanes share its stage.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from pipesim.errors import InputError
from pipesim.simulation.actions import Action
from pipesim.simulation.orders import FLUSHED_SCHEDULES, rank_orders
from pipesim.simulation.program import BACKWARD, FORWARD, Lane, Program

__all__ = ["FLUSHED", "SCHEDULES", "TRAINING_SCHEDULES", "Unit", "default_in_flight", "lane_units", "minibatch_orders"]

FLUSHED = FLUSHED_SCHEDULES
SCHEDULES = ("stream", "1f1b", *FLUSHED)
TRAINING_SCHEDULES = ("1f1b", *FLUSHED)

#: ``(microbatch, first task index, end task index, completed microbatches required first)``
Unit = tuple[int, int, int, int]


def default_in_flight(program: Program) -> int:
    """The least stream bound for which the steady state reaches max-load: depth + 1."""
    return program.depth + 1


def minibatch_orders(program: Program, schedule: str, microbatches: int, minibatch: int) -> dict[int, list[list[Action]]]:
    """The rank orders of ``schedule`` for each minibatch size the run has (the last may be partial)."""
    sizes = {min(minibatch, microbatches - base) for base in range(0, microbatches, minibatch)}
    orders = {}
    for size in sorted(sizes):
        try:
            orders[size] = rank_orders(schedule, program.stages, size, program.virtual)
        except InputError as exc:
            partial = " (the last, partial minibatch)" if size < minibatch else ""
            raise InputError(None, "microbatches", f"{size} microbatches per minibatch{partial}: {exc.problem}") from None
    return orders


def lane_units(
    program: Program,
    lane: Lane,
    schedule: str,
    microbatches: int,
    minibatch: int,
    in_flight: int,
    orders: dict[int, list[list[Action]]] | None = None,
) -> Iterator[Unit]:
    """The units ``lane`` runs, in order, under ``schedule``.

    ``orders`` (flushed schedules): :func:`minibatch_orders`, computed once for all lanes.
    """
    if schedule == "stream":
        return _stream(lane, microbatches, in_flight, program.depth)
    if schedule == "1f1b":
        if program.virtual > 1:
            raise InputError(None, "schedule", "PipeDream's 1f1b runs one chunk per device; use interleaved-1f1b")
        forward, backward = lane.phase_range(FORWARD), lane.phase_range(BACKWARD)
        return _drop_empty(_one_f_one_b(program.stages - lane.stage - 1, 0, microbatches, forward, backward))
    if schedule in FLUSHED:
        orders = orders or minibatch_orders(program, schedule, microbatches, minibatch)
        return _flushed(program, lane, orders, microbatches, minibatch)
    raise InputError(None, "schedule", f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")


def _stream(lane: Lane, microbatches: int, in_flight: int, depth: int) -> Iterator[Unit]:
    groups: list[tuple[int, int, int]] = []  # (depth, first, end): a lane's depths never decrease
    for task in lane.tasks:
        if groups and groups[-1][0] == task.depth:
            groups[-1] = (task.depth, groups[-1][1], task.index + 1)
        else:
            groups.append((task.depth, task.index, task.index + 1))
    # Slot of (j, k) is j·(D+1)/w + k, scaled by w to stay integral; w = min(W, D+1) so that a
    # microbatch admitted after microbatch j - W completes sits in a later slot than all of j - W.
    w = min(in_flight, depth + 1)

    def stream(k: int, first: int, end: int) -> Iterator[tuple[int, int, int, int, int, int]]:
        for j in range(microbatches):
            gate = max(0, j - in_flight + 1) if k == 0 else 0
            yield (j * (depth + 1) + k * w, -k, j, first, end, gate)

    for _, _, j, first, end, gate in heapq.merge(*(stream(*g) for g in groups)):
        yield (j, first, end, gate)


def _one_f_one_b(warmup: int, base: int, count: int, forward: range, backward: range) -> Iterator[Unit]:
    w = min(max(warmup, 0), count)
    f = (forward.start, forward.stop)
    b = (backward.start, backward.stop)
    for j in range(w):
        yield (base + j, *f, 0)
    for j in range(count - w):
        yield (base + w + j, *f, 0)
        yield (base + j, *b, 0)
    for j in range(count - w, count):
        yield (base + j, *b, 0)


def _drop_empty(units: Iterator[Unit]) -> Iterator[Unit]:
    return (u for u in units if u[2] > u[1])


def _flushed(program: Program, lane: Lane, orders: dict[int, list[list[Action]]], microbatches: int, minibatch: int) -> Iterator[Unit]:
    ranges: dict[tuple[int, str], range] = {}
    for base in range(0, microbatches, minibatch):
        count = min(minibatch, microbatches - base)
        gate = base  # the flush: every earlier microbatch has completed
        for a in orders[count][lane.stage]:
            key = (a.stage, a.kind)
            tasks = ranges.get(key)
            if tasks is None:
                tasks = ranges[key] = lane.action_range(program.stage_chunk[a.stage], a.kind)
            if tasks:
                yield (base + a.microbatch, tasks.start, tasks.stop, gate)
                gate = 0
