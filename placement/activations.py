"""Activations stashed for the backward pass, and how many microbatches a schedule keeps in flight.

Problem: a training pipeline keeps the forward activations of every
microbatch in flight on a device until that microbatch's backward pass has
used them, so a device's memory under a schedule is more than the static sum
of its node memories.  The solvers (the DP of :mod:`pipesim.placement.dp` and
the IPs of :mod:`pipesim.placement.milp`) and the simulator's memory
accounting (:mod:`pipesim.simulation.measure`) must count these bytes the same
way; this module is the one definition (docs/model.md §2.6).

Definitions:

* the **stash** of a forward node ``u`` is the largest tensor a backward node
  reads from it (the largest ``size`` of the edges ``u -> b`` with ``b``
  backward; an edge without a size counts 0 bytes), charged to ``u``'s device;
  the stash of a device is the sum over its forward nodes (:func:`stash_bytes`),
  one microbatch's worth;
* a node's ``memory`` already counts **one** microbatch's stash (the paper's
  model; :func:`pipesim.workloads.lower.lower` puts ``1 x`` the stash into
  every forward node's memory), so a device holding ``y`` microbatches in
  flight needs ``memory + (y - 1) x stash`` (:func:`memory_in_flight`);
* **in flight under a schedule** (:func:`in_flight`): the most microbatches
  whose activations a stage holds at once, for the stage at ``stage``
  (0-based, pipeline order) of ``stages`` with ``microbatches`` per flush.
  The counts follow from each schedule's per-rank order (a rank runs its
  order one action at a time, so the peak does not depend on the stage
  times): ``1f1b`` and ``1f1b-flush`` ``min(stages - stage, m)`` (PipeDream
  and PipeDream-Flush, Narayanan et al. 2019/2021), ``gpipe`` ``m``, ``zb-h1``
  ``min(stages, m)`` and ``zb-h2`` ``min(2·stages - stage - 1, m)`` (Qi et
  al., ICLR 2024; activations held until the weight pass).  The
  simulator's measured peaks equal them (``tests/pipesim/test_activations.py``).
  Schedules with several chunks per device are not covered: the solvers place
  one stage per device.

Guarantee: with ``schedule=None`` the solvers keep the paper's static model
exactly; with a schedule, the memory a solver checks for a stage is
:func:`memory_in_flight` of its nodes at its position, which is what the
simulator measures at the peak (for a chain of stages, whose pipeline order
is unique).

Examples
--------
>>> [in_flight("1f1b", s, 4, 80) for s in range(4)]
[4, 3, 2, 1]
>>> memory_in_flight(10.0, 2.0, 4)   # one microbatch is in the node memories already
16.0
"""

from __future__ import annotations

from collections.abc import Iterable

from pipesim.errors import InputError
from pipesim.placement.graph import Graph

__all__ = ["IN_FLIGHT_SCHEDULES", "MICROBATCHES_PER_STAGE", "in_flight", "memory_in_flight", "node_stash",
           "stash_bytes", "stash_sizes_known"]

#: Schedules whose in-flight counts :func:`in_flight` knows (one stage per device).
IN_FLIGHT_SCHEDULES = ("1f1b", "1f1b-flush", "gpipe", "zb-h1", "zb-h2")
#: Microbatches per flush when none is given: this many per stage (the simulator's default too).
MICROBATCHES_PER_STAGE = 4


def node_stash(graph: Graph) -> dict[int, float]:
    """Per forward node, the bytes it stashes for the backward pass (0 for nodes that stash nothing).

    Examples
    --------
    >>> from pipesim.placement.graph import Edge, Graph, Node
    >>> g = Graph([Node(0, {"a": 1.0}), Node(1, {"a": 1.0}, is_backward=True)], [Edge(0, 1, 8.0)])
    >>> node_stash(g)
    {0: 8.0}
    """
    stash: dict[int, float] = {}
    for e in graph.edges:
        if not graph.nodes[e.source].is_backward and graph.nodes[e.dest].is_backward:
            stash[e.source] = max(stash.get(e.source, 0.0), e.size or 0.0)
    return stash


def stash_sizes_known(graph: Graph) -> bool:
    """Whether ``graph`` says what its backward pass stashes: forward-to-backward edges, every one with a size.

    The paper's files have none (their node sizes hold the activations), so a peak stash is unknown there.

    Examples
    --------
    >>> from pipesim.placement.graph import Edge, Graph, Node
    >>> nodes = [Node(0, {"a": 1.0}), Node(1, {"a": 1.0}, is_backward=True)]
    >>> stash_sizes_known(Graph(nodes, [Edge(0, 1, 8.0)])), stash_sizes_known(Graph(nodes, [Edge(0, 1)]))
    (True, False)
    """
    sizes = [e.size for e in graph.edges if not graph.nodes[e.source].is_backward and graph.nodes[e.dest].is_backward]
    return bool(sizes) and all(size is not None for size in sizes)


def stash_bytes(graph: Graph, nodes: Iterable[int], stash: dict[int, float] | None = None) -> tuple[float, bool]:
    """One microbatch's stashed bytes on a device holding ``nodes``; whether every size was known.

    ``stash`` is :func:`node_stash` of ``graph`` when the caller has it already.
    """
    stash = node_stash(graph) if stash is None else stash
    members = set(nodes)
    known = all(e.size is not None for e in graph.edges
                if e.source in members and not graph.nodes[e.source].is_backward and graph.nodes[e.dest].is_backward)
    return sum(stash.get(v, 0.0) for v in members), known


def memory_in_flight(memory: float, stash: float, microbatches_in_flight: int) -> float:
    """Bytes of a device whose node memories are ``memory`` and stash ``stash`` per microbatch, with
    ``microbatches_in_flight`` microbatches in flight (the node memories count one of them already)."""
    return memory + max(microbatches_in_flight - 1, 0) * stash


def in_flight(schedule: str, stage: int, stages: int, microbatches: int | None = None) -> int:
    """Microbatches whose activations stage ``stage`` of ``stages`` holds at once under ``schedule``.

    Parameters
    ----------
    schedule : str
        One of :data:`IN_FLIGHT_SCHEDULES`.
    stage, stages : int
        The stage's position in pipeline order (0-based) and the number of stages.
    microbatches : int, optional
        Microbatches per flush (for ``1f1b``, the microbatches run); default
        :data:`MICROBATCHES_PER_STAGE` x ``stages``, the simulator's default.

    Returns
    -------
    int

    Examples
    --------
    >>> in_flight("gpipe", 0, 4, 8), in_flight("zb-h2", 0, 4, 8), in_flight("1f1b-flush", 0, 4, 2)
    (8, 7, 2)
    """
    m = MICROBATCHES_PER_STAGE * stages if microbatches is None else max(int(microbatches), 1)
    if schedule in ("1f1b", "1f1b-flush"):
        return min(stages - stage, m)
    if schedule == "gpipe":
        return m
    if schedule == "zb-h1":
        return min(stages, m)
    if schedule == "zb-h2":
        return min(2 * stages - stage - 1, m)
    raise InputError(None, "schedule", f"in-flight activations are known for {', '.join(IN_FLIGHT_SCHEDULES)} "
                                       f"(one stage per device), not {schedule!r}")
