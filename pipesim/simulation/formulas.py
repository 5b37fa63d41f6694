"""Closed-form iteration times of the flushed pipeline schedules.

Problem: before simulating, predict how long one training iteration (``m``
microbatches, then the flush) takes under a schedule, from each device's
per-microbatch forward time ``F_r``, backward time ``B_r`` (input and weight
gradients) and weight-gradient share ``W_r``, and the per-chunk times.

Formulas (``p`` devices, ``v`` chunks each, ``T_r = F_r + B_r``, ``T`` the
largest ``T_r``; on a uniform chain ``F, B, W`` are one device's
per-microbatch times):

* ``gpipe``: ``Σ_r F_r + (m - 1)·max F_r + Σ_r B_r + (m - 1)·max B_r``
  (all forwards, then all backwards); uniform: as 1F1B-flush.
* ``1f1b-flush``: ``Σ_r T_r + (m - 1)·T`` — the first microbatch
  crosses every stage forward and back, the bottleneck does the other
  ``m - 1`` (Narayanan et al. 2019, PipeDream-Flush).  Uniform:
  ``(m + p - 1)(F + B)``.
* ``interleaved-1f1b``, ``looped-bfs``: ``m·T + (Σ_r T_r - T)/v``: the fill
  and drain shrink ``v`` times, a bubble of ``(p - 1)/(v·m)`` of the ideal
  ``m·T`` (Narayanan et al. 2021).
* ``zb-h1``, ``zb-h2``, ``interleaved-zb``, ``zbv``, ``dualpipev``: the same
  with ``T'_r = F_r + B_r - 2 W_r`` in the fill: ``m·T + (Σ_r T'_r - T'_b)/v``
  (``b`` the bottleneck device): each weight pass fills the drain instead of
  lengthening it.  Uniform: ``m(F + B) + (p - 1)(F + B - 2W)/v``, the
  zero-bubble paper's ZB-H1 bubble ``(p - 1)(T_F + T_B - T_W)`` with its
  ``T_B`` the input-gradient part ``B - W``.  ZB-H2's extra warm-up does not
  shorten a list-scheduled uniform chain below this (the paper's smaller
  ZB-H2 bubble leaves out the last rank's wait for its first forward), and
  ZB-V and DualPipe-V are interleaved zero bubble with ``v = 2`` on the V
  placement.

A weight pass can hide at most what the forward leaves: a device's fill
term is never below ``F_r`` (``max(T_r - 2W_r, F_r)``), and with fewer
microbatches than devices (``m < p``) a round cannot fill the loop of
chunks, adding ``(p - m)·T·(1 - 1/v)``.

Guarantee: on a uniform chain with zero communication the simulator's
iteration time equals these exactly for GPipe, 1F1B-flush, interleaved 1F1B
and looped BFS at every ``m``; for the zero-bubble schedules when ``W ≤ B/2``
(the default ``weight_fraction`` 0.5 and below) and ``m ≥ p`` (ZB-H1, ZB-H2,
interleaved zero bubble) or ``m ≥ 2p`` (ZB-V; DualPipe-V at ``W = B/2``,
within 2.5% below it).  ``tests/pipesim/test_schedules.py`` checks it over
``p ≤ 8``, ``m ≤ 16``.  On uneven stages the closed forms are only
approximate (looped BFS and the interleaved zero-bubble schedules by 2–14% on
the paper's ResNet-50 and GNMT: their fill term assumes the bottleneck's
chunks are the slowest in every round), so the prediction the reports use,
:func:`predicted_iteration_time`, is :func:`order_iteration_time`: the longest
path through the schedule's own orders with each stage's times, equal to the
closed forms on uniform chains.  A stage hands its output or gradient on when
the node producing it (and its send) is done, not at the end of its whole
forward or backward (:func:`handed_over`: optimizer-update nodes run after a
stage's gradient has left).  Measured (paper communication; not timings, so
the machine's load does not matter): equal to the simulation (0.00%) for
every flushed schedule on the bundled transformer scenarios
(``schedules-gpt-medium``, ``bert24-training``, ``memory-bound``) and on the
DP splits (4 devices, 16 microbatches) of the paper's BERT-24 and GNMT
training graphs; above it by at most 0.64% on Inception-v3 and 1.02% on
ResNet-50 (interleaved schedules; 1F1B-flush 0.12% and 0.00%), and by 0.1–0.9%
on ``resnet50-training`` (branches overlap inside a stage).

Reference: Qi et al., "Zero Bubble Pipeline Parallelism", ICLR 2024, Table 2.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipesim.errors import InputError, InternalError
from pipesim.simulation.program import BACKWARD, FORWARD, WEIGHT, Program

__all__ = ["iteration_time", "order_iteration_time", "predicted_iteration_time", "stage_times"]


def iteration_time(
    schedule: str,
    forward: Sequence[float],
    backward: Sequence[float],
    weight: Sequence[float],
    microbatches: int,
    virtual: int = 1,
) -> float:
    """The closed-form iteration time of ``schedule`` (see the module docstring).

    Parameters
    ----------
    schedule : str
        A flushed schedule name.
    forward, backward, weight : sequence of float
        Per device, one microbatch's forward, full backward and weight-gradient
        time (over all of its chunks).
    microbatches : int
        Microbatches per iteration ``m``.
    virtual : int
        Chunks per device ``v``.

    Returns
    -------
    float

    Examples
    --------
    >>> iteration_time("1f1b-flush", [1] * 4, [2] * 4, [0] * 4, 8)
    33.0
    >>> iteration_time("interleaved-1f1b", [1] * 4, [2] * 4, [0] * 4, 8, 2)
    28.5
    >>> iteration_time("zbv", [1] * 4, [2] * 4, [1] * 4, 8, 2)
    25.5
    """
    m, v = microbatches, virtual
    totals = [f + b for f, b in zip(forward, backward)]
    top = max(totals)
    bottleneck = totals.index(top)
    p = len(totals)
    # Fewer microbatches than devices: a round of m cannot fill the p-stage loop, each chunk waits (p - m) steps.
    short = (p - m) * top * (1 - 1 / v) if m < p else 0.0
    if schedule == "gpipe" and v == 1:
        # all forwards, then all backwards: two fill-and-drain passes, each paced by its own bottleneck
        return sum(forward) + (m - 1) * max(forward) + sum(backward) + (m - 1) * max(backward)
    if schedule in ("gpipe", "1f1b-flush", "interleaved-1f1b", "looped-bfs"):
        return m * top + (sum(totals) - top) / v + short
    if schedule in ("zb-h1", "zb-h2", "interleaved-zb", "zbv", "dualpipev"):
        filled = [max(t - 2 * w, f) for t, w, f in zip(totals, weight, forward)]
        return m * top + (sum(filled) - filled[bottleneck]) / v + short
    raise InputError(None, "schedule", f"no closed form for {schedule!r}")


def stage_times(program: Program) -> tuple[list[float], list[float], list[float]]:
    """Per virtual stage (pipeline order): one microbatch's forward, input-gradient and weight time.

    What occupies the stage's device: compute and, in ``paper`` mode, transfers (the evaluator's load).
    A schedule that does not split the backward has all of it as input gradient.
    """
    per: dict[tuple[int, int, str], float] = {}
    for lane in program.lanes:
        if lane.kind != "device":
            continue
        rank = program.devices.index(lane.device)
        for task in lane.tasks:
            key = (rank, task.chunk, task.phase)
            per[key] = per.get(key, 0.0) + task.duration
    stages = list(zip(program.stage_rank, program.stage_chunk))
    return ([per.get((r, c, FORWARD), 0.0) for r, c in stages], [per.get((r, c, BACKWARD), 0.0) for r, c in stages],
            [per.get((r, c, WEIGHT), 0.0) for r, c in stages])


def handed_over(program: Program, phases: tuple[str, ...] = (BACKWARD, WEIGHT)) -> list[float]:
    """Per virtual stage, how long into its ``phases`` (default: the full backward ``B``) its last signal
    to another lane is sent.

    A stage hands its output (forward) or input gradient (backward) on as soon as the node that produces
    it (and, in ``paper`` mode, its send) is done; what follows on the device (optimizer-update nodes,
    nodes no other stage waits for) delays only the stage itself.  A stage that signals no one hands
    over at the end.
    """
    waited: dict[int, set[int]] = {}
    for lane in program.lanes:
        for task in lane.tasks:
            for signal in task.waits:
                waited.setdefault(signal, set()).add(lane.index)
    ready: dict[tuple[int, int], float] = {}
    full: dict[tuple[int, int], float] = {}
    for lane in program.lanes:
        if lane.kind != "device":
            continue
        rank = program.devices.index(lane.device)
        for task in lane.tasks:
            if task.phase not in phases:
                continue
            key = (rank, task.chunk)
            full[key] = full.get(key, 0.0) + task.duration
            if any(waited.get(signal, set()) - {lane.index} for signal in task.fires):
                ready[key] = full[key]
    return [ready.get(key, full.get(key, 0.0)) for key in zip(program.stage_rank, program.stage_chunk)]


def order_iteration_time(program: Program, schedule: str, microbatches: int) -> float:
    """The iteration time of ``schedule``'s own per-rank orders, each action taking its stage's time.

    Each rank runs its actions in order; an action starts when its rank is
    free and its inputs are done — ``F(s, j)`` after ``F(s-1, j)``; ``B`` or
    ``I`` of ``(s, j)`` after the input gradient of ``(s+1, j)`` (the last
    stage: after its own forward); ``W(s, j)`` after ``I(s, j)``.  This is the
    longest path through the schedule, exact for the stage times when
    transfers do not contend (``paper`` mode: they are part of the stage's
    time): the closed forms of :func:`iteration_time` are its value on uniform
    chains, and on uneven splits it follows the order where they cannot (looped
    BFS and the interleaved zero-bubble schedules, whose fill the closed forms
    only approximate there).

    Examples
    --------
    >>> from pipesim.simulation.explorer import uniform_chain
    >>> from pipesim.simulation.program import build_program
    >>> workload, split = uniform_chain(4, forward=1.0, backward=2.0)
    >>> program = build_program(workload.graph, split, "paper", mirror_backward=True)
    >>> order_iteration_time(program, "1f1b-flush", 8)
    33.0
    """
    from pipesim.simulation.orders import rank_orders  # orders import this module's neighbours

    forward, gradient, weight = stage_times(program)
    ready, forwarded = handed_over(program), handed_over(program, (FORWARD,))
    last = len(forward) - 1
    orders = rank_orders(schedule, len(program.devices), microbatches, program.virtual)
    done: dict[tuple[str, int, int], float] = {}  # ("F" | "G" (input gradient) | "W", stage, microbatch) -> end
    free = [0.0] * len(orders)
    position = [0] * len(orders)
    left = sum(len(o) for o in orders)
    while left:
        moved = False
        for rank, order in enumerate(orders):
            while position[rank] < len(order):
                a = order[position[rank]]
                s, j = a.stage, a.microbatch
                if a.kind == "F":
                    needs, took, marks = ([("F", s - 1, j)] if s else []), forward[s], ("F",)
                elif a.kind in ("B", "I"):
                    needs = [("F", s, j), ("G", s + 1, j) if s < last else ("F", s, j)]
                    took = gradient[s] + (weight[s] if a.kind == "B" else 0.0)
                    marks = ("G", "W") if a.kind == "B" else ("G",)
                else:
                    needs, took, marks = [("G", s, j)], weight[s], ("W",)
                if any(n not in done for n in needs):
                    break
                begin = max([free[rank], *(done[n] for n in needs)])
                end = begin + took
                for mark in marks:
                    done[(mark, s, j)] = end
                if a.kind in ("B", "I"):  # the stage before gets its gradient once it is sent, not after the rest
                    done[("G", s, j)] = begin + min(ready[s], took)
                elif a.kind == "F":  # ... and the stage after its input once that is sent
                    done[("F", s, j)] = begin + min(forwarded[s], took)
                free[rank] = end
                position[rank] += 1
                left -= 1
                moved = True
        if not moved:
            raise InternalError(f"{schedule}'s order waits on itself (ranks at {position})")
    return max(free)


def predicted_iteration_time(program: Program, schedule: str, microbatches: int) -> float:
    """The predicted iteration time of ``schedule`` on ``program``: :func:`order_iteration_time`."""
    return order_iteration_time(program, schedule, microbatches)
