"""Pipeline actions: what one rank does next, in PyTorch's action grammar.

Problem: a modern pipeline schedule is a per-rank list of *actions*, each one
operation of one virtual stage on one microbatch: ``F`` (forward), ``B``
(full backward), ``I`` (input-gradient part of the backward), ``W``
(weight-gradient part).  A model cut into ``p·v`` virtual stages puts ``v`` of
them (*chunks*) on each of ``p`` ranks, either round-robin (rank ``r`` holds
stages ``r, r + p, …``: Megatron-LM's interleaving) or in a V (rank ``r`` holds
stages ``r`` and ``2p - 1 - r``: ZB-V, DualPipe-V).

Guarantee: :func:`format_action` and :func:`parse_action` are inverse and
follow the grammar of ``torch.distributed.pipelining`` (``_Action.__repr__`` /
``_Action.from_str``: stage index, kind, microbatch — ``"0F1"``, ``"5B3"``);
:func:`write_torch_csv` writes one row per rank, one action per cell, the
"compute_only" format that ``_PipelineScheduleRuntime._load_csv`` reads;
:func:`check_orders` accepts exactly the orders PyTorch's
``_validate_schedule`` accepts (every stage on one rank, every microbatch
forwarded once, ``I`` before ``W``, each backward after its forward, one
backward per microbatch: ``B`` or ``I`` + ``W``).

Reference: PyTorch ``torch/distributed/pipelining/schedules.py`` (2.14) and
``_utils.generate_stage_to_rank_mapping``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipesim.errors import InputError
from pipesim.output import write_text

__all__ = [
    "KINDS",
    "PLACEMENTS",
    "Action",
    "check_orders",
    "format_action",
    "parse_action",
    "read_torch_csv",
    "stage_ranks",
    "torch_csv",
    "write_torch_csv",
]

#: Forward, full backward, input-gradient backward, weight-gradient backward.
KINDS = ("F", "B", "I", "W")
PLACEMENTS = ("round-robin", "v")
_ACTION = re.compile(r"^(\d+)(F|B|I|W)(\d+)$")


@dataclass(frozen=True, slots=True, order=True)
class Action:
    """One operation of virtual stage ``stage`` on ``microbatch``; ``kind`` is F, B, I or W."""

    stage: int
    kind: str
    microbatch: int

    def __str__(self) -> str:
        return format_action(self)


def format_action(action: Action) -> str:
    """PyTorch's string for ``action``.

    Examples
    --------
    >>> format_action(Action(5, "B", 3))
    '5B3'
    """
    return f"{action.stage}{action.kind}{action.microbatch}"


def parse_action(text: str) -> Action:
    """The action PyTorch's string ``text`` names; raises :class:`ValueError` otherwise.

    Examples
    --------
    >>> parse_action(" 3W0")
    Action(stage=3, kind='W', microbatch=0)
    """
    match = _ACTION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an action (stage, F/B/I/W, microbatch, e.g. 2F0)")
    return Action(int(match.group(1)), match.group(2), int(match.group(3)))


def stage_ranks(ranks: int, virtual: int, placement: str = "round-robin") -> list[int]:
    """``result[s]`` is the rank of virtual stage ``s`` of ``ranks × virtual``.

    Examples
    --------
    >>> stage_ranks(2, 2)
    [0, 1, 0, 1]
    >>> stage_ranks(2, 2, "v")
    [0, 1, 1, 0]
    """
    if placement not in PLACEMENTS:
        raise InputError(None, "placement", f"unknown placement {placement!r}; expected one of {', '.join(PLACEMENTS)}")
    if placement == "round-robin":
        return [s % ranks for s in range(ranks * virtual)]
    # V: chunk c runs down the ranks when c is even and back up when it is odd.
    return [(s % ranks) if (s // ranks) % 2 == 0 else ranks - 1 - s % ranks for s in range(ranks * virtual)]


def check_orders(orders: Sequence[Sequence[Action]], stages: int, microbatches: int) -> list[int]:
    """Check per-rank ``orders`` as PyTorch's runtime does; return each stage's rank.

    Raises :class:`InputError` naming the first offending rank and step.

    Examples
    --------
    >>> check_orders([[Action(0, "F", 0), Action(0, "B", 0)]], 1, 1)
    [0]
    """
    rank_of: dict[int, int] = {}
    done: dict[tuple[int, str], set[int]] = {}
    for rank, order in enumerate(orders):
        for step, a in enumerate(order):
            where = f"rank {rank}, step {step} ({a})"
            if not 0 <= a.stage < stages:
                raise InputError(None, where, f"stage {a.stage} is outside 0..{stages - 1}")
            if not 0 <= a.microbatch < microbatches:
                raise InputError(None, where, f"microbatch {a.microbatch} is outside 0..{microbatches - 1}")
            if rank_of.setdefault(a.stage, rank) != rank:
                raise InputError(None, where, f"stage {a.stage} is on rank {rank_of[a.stage]} too")
            need = {"B": "F", "I": "F", "W": "I"}.get(a.kind)
            if need and a.microbatch not in done.get((a.stage, need), ()):
                raise InputError(None, where, f"{a.kind} before {need} of stage {a.stage}, microbatch {a.microbatch}")
            seen = done.setdefault((a.stage, a.kind), set())
            if a.microbatch in seen:
                raise InputError(None, where, "the action is repeated")
            seen.add(a.microbatch)
    for s in range(stages):
        if s not in rank_of:
            raise InputError(None, f"stage {s}", "no rank runs it")
        forward = done.get((s, "F"), set())
        backward = done.get((s, "B"), set()) | done.get((s, "W"), set())
        if len(forward) != microbatches:
            raise InputError(None, f"stage {s}", f"{len(forward)} of {microbatches} microbatches are forwarded")
        if len(done.get((s, "I"), ())) != len(done.get((s, "W"), ())):
            raise InputError(None, f"stage {s}", "every I needs its W")
        if backward and len(backward) != microbatches:
            raise InputError(None, f"stage {s}", f"{len(backward)} of {microbatches} microbatches are backwarded")
    return [rank_of[s] for s in range(stages)]


def torch_csv(orders: Iterable[Iterable[Action]]) -> str:
    """The orders as PyTorch's compute-only schedule CSV (one row per rank).

    Examples
    --------
    >>> torch_csv([[Action(0, "F", 0), Action(0, "B", 0)], [Action(1, "F", 0), Action(1, "B", 0)]])
    '0F0,0B0\\r\\n1F0,1B0\\r\\n'
    """
    out = io.StringIO()
    writer = csv.writer(out)  # the csv module's default dialect, as PyTorch's _dump_csv writes
    for order in orders:
        writer.writerow([format_action(a) for a in order])
    return out.getvalue()


def write_torch_csv(orders: Iterable[Iterable[Action]], path: str | Path) -> None:
    """Write :func:`torch_csv` of ``orders`` to ``path``."""
    write_text(path, torch_csv(orders))


def read_torch_csv(path: str | Path) -> list[list[Action]]:
    """Read a compute-only schedule CSV as ``_load_csv`` does (empty cells are idle steps)."""
    orders: list[list[Action]] = []
    with open(path, newline="") as f:
        for rank, row in enumerate(csv.reader(f)):
            order = []
            for column, cell in enumerate(row):
                if not cell.strip():
                    continue
                try:
                    order.append(parse_action(cell))
                except ValueError as exc:
                    raise InputError(path, f"row {rank + 1}, column {column + 1}", str(exc)) from None
            orders.append(order)
    return orders
