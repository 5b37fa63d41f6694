"""Schedules: in which order each lane runs its work across microbatches.

Problem: a device runs many microbatches; the order in which it takes their
forward and backward work decides throughput, bubbles and memory (ISSUE 6,
SPEC §6).  A schedule here is a fixed order per lane, a sequence of *units*
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
* ``gpipe``: within each minibatch all forwards, then all backwards (newest
  first), then the flush.  For ``S`` uniform stages the flushed schedules take
  ``(m + S - 1)(f + b)`` per minibatch.

Stages are the devices in pipeline order (a topological order of the device
graph); a device's lanes share its stage.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from pipesim.errors import InputError
from pipesim.simulation.program import BACKWARD, FORWARD, Lane, Program

__all__ = ["SCHEDULES", "TRAINING_SCHEDULES", "Unit", "default_in_flight", "lane_units"]

SCHEDULES = ("stream", "1f1b", "gpipe", "1f1b-flush")
TRAINING_SCHEDULES = ("1f1b", "gpipe", "1f1b-flush")
FLUSHED = ("gpipe", "1f1b-flush")

#: ``(microbatch, first task index, end task index, completed microbatches required first)``
Unit = tuple[int, int, int, int]


def default_in_flight(program: Program) -> int:
    """The least stream bound for which the steady state reaches max-load: depth + 1."""
    return program.depth + 1


def lane_units(program: Program, lane: Lane, schedule: str, microbatches: int, minibatch: int, in_flight: int) -> Iterator[Unit]:
    """The units ``lane`` runs, in order, under ``schedule``."""
    if schedule == "stream":
        return _stream(lane, microbatches, in_flight, program.depth)
    forward, backward = lane.phase_range(FORWARD), lane.phase_range(BACKWARD)
    if schedule == "1f1b":
        return _drop_empty(_one_f_one_b(program.stages - lane.stage - 1, 0, microbatches, forward, backward))
    if schedule in FLUSHED:
        return _flushed(schedule, program.stages - lane.stage - 1, microbatches, minibatch, forward, backward)
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


def _gpipe(base: int, count: int, forward: range, backward: range) -> Iterator[Unit]:
    for j in range(count):
        yield (base + j, forward.start, forward.stop, 0)
    for j in reversed(range(count)):
        yield (base + j, backward.start, backward.stop, 0)


def _drop_empty(units: Iterator[Unit]) -> Iterator[Unit]:
    return (u for u in units if u[2] > u[1])


def _flushed(schedule: str, warmup: int, microbatches: int, minibatch: int, forward: range, backward: range) -> Iterator[Unit]:
    for base in range(0, microbatches, minibatch):
        count = min(minibatch, microbatches - base)
        units = _gpipe(base, count, forward, backward) if schedule == "gpipe" else _one_f_one_b(warmup, base, count, forward, backward)
        gate = base  # the flush: every earlier microbatch has completed
        for j, first, end, _ in _drop_empty(units):
            yield (j, first, end, gate)
            gate = 0
