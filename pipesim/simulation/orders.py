"""Per-rank action orders of the flushed pipeline schedules.

Problem: for ``p`` ranks, ``m`` microbatches and ``v`` chunks per rank, list
what each rank does, in order, during one training iteration (one flush):
forwards ``F``, full backwards ``B``, and — for the zero-bubble schedules — the
input-gradient ``I`` and weight-gradient ``W`` halves of the backward (Qi et
al., "Zero Bubble Pipeline Parallelism", ICLR 2024), whose ``W`` can wait to
fill what would otherwise be idle time.

Guarantee: where ``torch.distributed.pipelining`` defines the schedule, the
order of every rank is PyTorch's for the same ``p``, ``m``, ``v`` (2.14, with
its idle steps dropped): ``gpipe`` = ``ScheduleGPipe`` (backwards B0…B(m-1)),
``1f1b-flush`` = ``Schedule1F1B`` (the order it executes), ``interleaved-1f1b``
= ``ScheduleInterleaved1F1B``, ``looped-bfs`` = ``ScheduleLoopedBFS``,
``interleaved-zb`` = ``ScheduleInterleavedZeroBubble``, ``zbv`` =
``ScheduleZBVZeroBubble``, ``dualpipev`` = ``ScheduleDualPipeV`` (its
overlapped forward+backward pairs are listed as the forward, then the
backward).  ``zb-h1`` is the zero-bubble paper's ZB-H1, which is PyTorch's
interleaved zero-bubble order with one chunk; ``zb-h2`` is after the paper's
ZB-H2 (``2(p - r) - 1`` warm-up forwards, ``W`` deferred to the tail).  Every order passes
:func:`~pipesim.simulation.actions.check_orders`.

Reference: PyTorch ``torch/distributed/pipelining/schedules.py``; Narayanan
et al. 2021 (interleaved 1F1B); Lamy-Poirier 2023 (breadth-first); Qi et al.
2024 (ZB-H1, ZB-H2, ZB-V); DeepSeek-V3 report 2024 (DualPipe).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from pipesim.errors import InputError
from pipesim.simulation.actions import Action

__all__ = ["FLUSHED_SCHEDULES", "ScheduleSpec", "SCHEDULE_SPECS", "rank_orders", "schedule_spec"]


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule needs and promises.

    ``virtual`` is the required chunks per rank (``None``: any); ``default_virtual``
    what ``schedule show`` uses without ``--virtual``; ``splits_backward``:
    whether it runs ``I`` and ``W`` separately; ``torch``: PyTorch's class.
    ``bubble`` and ``memory`` are the one-line summaries the README and the
    command line show (``p`` ranks, ``m`` microbatches, ``v`` chunks; F, B, W
    the times of one microbatch's forward, full backward and weight-gradient
    part on one rank).
    """

    name: str
    placement: str
    virtual: int | None
    default_virtual: int
    splits_backward: bool
    torch: str | None
    bubble: str
    memory: str


SCHEDULE_SPECS: dict[str, ScheduleSpec] = {
    spec.name: spec
    for spec in (
        ScheduleSpec("gpipe", "round-robin", 1, 1, False, "ScheduleGPipe",
                     "(p-1)/(m+p-1) of the iteration", "m microbatches stashed on every rank"),
        ScheduleSpec("1f1b-flush", "round-robin", 1, 1, False, "Schedule1F1B",
                     "(p-1)/(m+p-1), as GPipe", "p - r microbatches on rank r (p on the first)"),
        ScheduleSpec("interleaved-1f1b", "round-robin", None, 2, False, "ScheduleInterleaved1F1B",
                     "(p-1)/(v·m) of the ideal: v times less than 1F1B", "about p + (v-1)·p/v microbatches on the first rank"),
        ScheduleSpec("looped-bfs", "round-robin", None, 2, False, "ScheduleLoopedBFS",
                     "(p-1)/(v·m) of the ideal, as interleaved 1F1B", "m microbatches in every chunk: all of them, as GPipe"),
        ScheduleSpec("zb-h1", "round-robin", 1, 1, True, None,
                     "(p-1)(F+B-2W) idle per rank: W fills the drain", "as 1F1B: p - r microbatches on rank r, held until W"),
        ScheduleSpec("zb-h2", "round-robin", 1, 1, True, None,
                     "as ZB-H1 when list-scheduled (the extra warm-up pays when the first gradient is late)", "2(p - r) - 1 microbatches on rank r: about twice 1F1B"),
        ScheduleSpec("interleaved-zb", "round-robin", None, 2, True, "ScheduleInterleavedZeroBubble",
                     "(p-1)(F+B-2W)/v idle per rank", "about p + (v-1)·p/v microbatches, held until W"),
        ScheduleSpec("zbv", "v", 2, 2, True, "ScheduleZBVZeroBubble",
                     "(p-1)(F+B-2W)/2 idle per rank (V placement, 2 chunks)", "about p microbatches (2p chunk-stashes), as 1F1B"),
        ScheduleSpec("dualpipev", "v", 2, 2, True, "ScheduleDualPipeV",
                     "(p-1)(F+B-2W)/2 idle per rank, as ZB-V", "about p microbatches (2p chunk-stashes), as 1F1B"),
    )
}
FLUSHED_SCHEDULES = tuple(SCHEDULE_SPECS)


def schedule_spec(name: str) -> ScheduleSpec:
    """The :class:`ScheduleSpec` of ``name``; raises :class:`InputError` for an unknown one."""
    try:
        return SCHEDULE_SPECS[name]
    except KeyError:
        raise InputError(None, "schedule", f"unknown flushed schedule {name!r}; expected one of {', '.join(SCHEDULE_SPECS)}") from None


def rank_orders(name: str, ranks: int, microbatches: int, virtual: int | None = None) -> list[list[Action]]:
    """Each rank's actions for one iteration of schedule ``name``.

    Parameters
    ----------
    name : str
        One of :data:`FLUSHED_SCHEDULES`.
    ranks, microbatches : int
        Pipeline ranks ``p`` and microbatches ``m`` per iteration.
    virtual : int, optional
        Chunks per rank ``v`` (default: the schedule's own, 1 or 2).

    Returns
    -------
    list of list of Action
        ``result[r]`` is rank ``r``'s order; stages number ``0 … p·v - 1``.

    Raises
    ------
    InputError
        An unknown schedule, or sizes the schedule is not defined for.

    Examples
    --------
    >>> [str(a) for a in rank_orders("1f1b-flush", 2, 3)[0]]
    ['0F0', '0F1', '0B0', '0F2', '0B1', '0B2']
    >>> [str(a) for a in rank_orders("zbv", 1, 2)[0]]
    ['0F0', '1F0', '1I0', '1W0', '0F1', '0I0', '0W0', '1F1', '1I1', '1W1', '0I1', '0W1']
    """
    spec = schedule_spec(name)
    v = spec.default_virtual if virtual is None else virtual
    if ranks < 1 or microbatches < 1 or v < 1:
        raise InputError(None, "schedule", "ranks, microbatches and chunks per rank must be at least 1")
    if spec.virtual is not None and v != spec.virtual:
        raise InputError(None, "virtual_stages", f"{name} runs {spec.virtual} chunk(s) per rank, not {v}")
    if name == "dualpipev" and microbatches < 2 * ranks:
        raise InputError(None, "microbatches", f"dualpipev needs at least as many microbatches as stages ({2 * ranks}), got {microbatches}")
    return [_GENERATORS[name](ranks, microbatches, v, r) for r in range(ranks)]


def _gpipe(p: int, m: int, v: int, r: int) -> list[Action]:
    return [Action(r, "F", j) for j in range(m)] + [Action(r, "B", j) for j in range(m)]


def _one_f_one_b(p: int, m: int, v: int, r: int) -> list[Action]:
    warmup = min(m, p - r)
    order = [Action(r, "F", j) for j in range(warmup)]
    for j in range(m):
        order.append(Action(r, "B", j))
        if warmup + j < m:
            order.append(Action(r, "F", warmup + j))
    return order


def _looped_bfs(p: int, m: int, v: int, r: int) -> list[Action]:
    stages = range(r, p * v, p)
    order = [Action(s, "F", j) for s in stages for j in range(m)]
    return order + [Action(s, "B", j) for s in reversed(stages) for j in reversed(range(m))]


def _rounds(p: int, m: int, what: str) -> int:
    """Microbatches per round of the interleaved schedules (PyTorch's flexible rounds)."""
    rounds = max(1, m // p)
    if m % rounds:
        raise InputError(None, "microbatches", f"{what} needs the microbatches to be a multiple of the rounds ({rounds}), got {m}")
    return m // rounds


def _interleaved(p: int, m: int, v: int, r: int, zero_bubble: bool, strict: bool = True) -> list[Action]:
    """Depth-first interleaving: rounds of ``per_round`` microbatches visit the chunks in turn.

    Warm-up forwards are those of the last rank's first ``v - 1`` chunk rounds
    plus ``factor`` per hop from the last rank (2 for 1F1B, 1 for zero
    bubble, whose ``I`` returns faster); then one forward and one backward
    alternate; zero bubble delays rank ``r``'s first ``r`` weight passes.
    ``strict``: PyTorch's rule that the microbatches divide into rounds (with
    one chunk the rounds change nothing: ZB-H1 does without it).
    """
    per_round = _rounds(p, m, "interleaved-zb" if zero_bubble else "interleaved-1f1b") if strict else m
    factor = 1 if zero_bubble else 2
    warmup = min((v - 1) * per_round + factor * (p - 1 - r), m * v)
    total = m * v

    def forward_stage(step: int) -> int:
        return (step // per_round) % v * p + r

    def backward_stage(step: int) -> int:
        return (v - 1 - (step - warmup) // per_round % v) * p + r

    count: dict[tuple[int, str], int] = defaultdict(int)
    order: list[Action] = []

    def emit(stage: int, kind: str) -> None:
        order.append(Action(stage, kind, count[stage, kind]))
        count[stage, kind] += 1

    backward_kind = "I" if zero_bubble else "B"
    backward_steps: list[int] = []
    weights = 0
    for step in range(warmup + total):
        if step < total:
            emit(forward_stage(step), "F")
        if step >= warmup:
            emit(backward_stage(step), backward_kind)
            backward_steps.append(step)
            if zero_bubble and step - warmup >= r:
                emit(backward_stage(backward_steps[weights]), "W")
                weights += 1
    while zero_bubble and weights < len(backward_steps):
        emit(backward_stage(backward_steps[weights]), "W")
        weights += 1
    return order


def _zb_h2(p: int, m: int, v: int, r: int) -> list[Action]:
    """ZB-H2: ``2(p - r) - 1`` warm-up forwards, then I, W, F in turn, rank ``r`` deferring ``r`` weight passes.

    The warm-up fills rank ``r``'s wait for its first input gradient with
    forwards (the paper's ZB-H2 warm-up: about twice 1F1B's stash); the
    deferred ``W`` passes form the tail.  With its ``I`` and ``W`` list-scheduled
    at their own times (no communication) it takes as long as ZB-H1 on a
    uniform chain: the extra forwards pay only where the first gradient is
    late (communication, slower later stages).
    """
    warmup = min(m, 2 * (p - r) - 1)
    order = [Action(r, "F", j) for j in range(warmup)]
    forwards, weights = warmup, 0
    for j in range(m):
        order.append(Action(r, "I", j))
        if j >= r:
            order.append(Action(r, "W", weights))
            weights += 1
        if forwards < m:
            order.append(Action(r, "F", forwards))
            forwards += 1
    return order + [Action(r, "W", j) for j in range(weights, m)]


def _zbv(p: int, m: int, v: int, r: int) -> list[Action]:
    """ZB-V on the V placement: chunk 0 is stage ``r``, chunk 1 stage ``2p - 1 - r``."""
    n = max(2 * p - 1, m)  # PyTorch plans at least 2p - 1 microbatches, then drops the extra ones
    first, second = r, 2 * p - 1 - r
    count: dict[tuple[int, str], int] = defaultdict(int)
    order: list[Action] = []

    def emit(stage: int, kind: str) -> None:
        order.append(Action(stage, kind, count[stage, kind]))
        count[stage, kind] += 1

    for _ in range(2 * (p - r) - 1):
        emit(first, "F")
    for _ in range(r):
        emit(second, "F")
        emit(first, "F")
    for _ in range(p - r):
        emit(second, "F")
        emit(second, "I")
        emit(second, "W")
    while count[second, "F"] < count[first, "F"] or count[first, "F"] < n:
        if count[first, "F"] < n:
            emit(first, "F")
        emit(first, "I")
        emit(first, "W")
        emit(second, "F")
        emit(second, "I")
        emit(second, "W")
    for _ in range(r):
        emit(first, "I")
        emit(second, "I")
    for _ in range(p - r):
        emit(first, "I")
        emit(first, "W")
    while count[second, "W"] < count[second, "I"]:
        emit(second, "W")
    while count[first, "W"] < count[first, "I"]:
        emit(first, "W")
    return [a for a in order if a.microbatch < m]


def _dualpipev(p: int, m: int, v: int, r: int) -> list[Action]:
    """DualPipe-V: two V chunks whose forward of one overlaps the backward of the other.

    An overlapped pair is listed as its forward, then its backward (a rank
    computes them one after the other).  ``I`` queues its ``W``; ``W`` passes
    fill the steps the schedule marks for them, oldest first.
    """
    first, second = r, 2 * p - 1 - r
    count: dict[tuple[int, str], int] = defaultdict(int)
    pending: deque[tuple[int, int]] = deque()
    order: list[Action] = []

    def emit(stage: int, kind: str) -> None:
        j = count[stage, "I" if kind == "B" else kind]
        order.append(Action(stage, kind, j))
        if kind == "B":
            count[stage, "I"] += 1
            count[stage, "W"] += 1
            return
        if kind == "I":
            pending.append((stage, j))
        count[stage, kind] += 1

    def weight() -> None:
        if pending:
            stage, j = pending.popleft()
            order.append(Action(stage, "W", j))
            count[stage, "W"] += 1

    for _ in range(2 * (p - r - 1)):
        emit(first, "F")
    for _ in range(r + 1):
        emit(first, "F")
        emit(second, "F")
    for _ in range(p - r - 1):
        emit(second, "I")
        weight()
        emit(second, "F")
    for i in range(m - 2 * p + r + 1):
        emit(first, "F")  # with the backward of the second chunk (not overlapped on the last rank's first)
        emit(second, "B")
        emit(second, "F")
        emit(first, "B")
    for _ in range(p - r - 1):
        emit(second, "B")
        emit(second, "F")
        emit(first, "B")
    zero_bubble = False
    steps = r + 1
    for i in range(steps):
        if i == steps // 2 and r % 2 == 1:
            zero_bubble = True
        emit(second, "I" if zero_bubble else "B")
        if i == steps // 2 and r % 2 == 0:
            zero_bubble = True
        emit(first, "I" if zero_bubble else "B")
    for _ in range(p - r - 1):
        weight()
        emit(first, "I" if zero_bubble else "B")
    for _ in range(r + 1):
        weight()
    return order


_GENERATORS: dict[str, Callable[[int, int, int, int], list[Action]]] = {
    "gpipe": _gpipe,
    "1f1b-flush": _one_f_one_b,
    "interleaved-1f1b": lambda p, m, v, r: _interleaved(p, m, v, r, zero_bubble=False),
    "looped-bfs": _looped_bfs,
    "zb-h1": lambda p, m, v, r: _interleaved(p, m, v, r, zero_bubble=True, strict=False),
    "zb-h2": _zb_h2,
    "interleaved-zb": lambda p, m, v, r: _interleaved(p, m, v, r, zero_bubble=True),
    "zbv": _zbv,
    "dualpipev": _dualpipev,
}
