"""Latency of inference: of a given split, by a greedy, and by an integer program (docs/model.md §4.4).

Problem: one sample goes through an inference graph with nothing else in
flight; how long until every node is done?  The model (the paper's §6):

* CPU cores (the class named ``cpu``) are unlimited and pay no transfers: a
  CPU node finishes ``p_cpu(v)`` after its last predecessor;
* every other device runs contiguous *subgraphs* ("pieces"), one after the
  other.  A piece starts when every node outside it with an edge into it is
  done (and the device's previous piece is finished); it takes incoming
  transfers + compute + outgoing transfers, and all its nodes finish together;
* latency = the latest finish.

A split's accelerator sets need not be contiguous: :func:`contiguous_pieces`
cuts each into contiguous pieces first (a node's piece is one more than the
number of times a path into it left the set), as the paper's tooling does.
Contiguous pieces of two devices can still feed each other in a cycle
(``a -> d``, ``c -> b`` with ``{a, b}`` and ``{c, d}``), which no schedule can run
as whole pieces; such splits are cut at every change of device instead.

Guarantees: :func:`latency_of_split` is exact for the model;
:func:`solve_latency_greedy` is a heuristic (fill devices with the inseparable
blocks — colour classes fused with the cycles they create — in topological
order while memory allows; each device gets a consecutive run of blocks, hence
a contiguous set); :func:`solve_latency_ip` is optimal within the solver's gap
over splits with at most ``q`` pieces per device, memory counted per device,
and never returns worse than its warm start (the greedy's split by default).

Result shape: every function returns a :class:`LatencyResult` whose
``to_dict()`` has the top-level ``latency`` (seconds of the model's unit),
``bound``, ``gap``, ``status``, the ``pieces`` schedule and the ``split``.
"""

from pipesim.placement.latency.greedy import greedy_split, solve_latency_greedy
from pipesim.placement.latency.ip import solve_latency_ip
from pipesim.placement.latency.model import (
    LatencyEvaluation,
    LatencyResult,
    Piece,
    PieceCycleError,
    contiguous_pieces,
    latency_of_pieces,
    latency_of_split,
)

__all__ = [
    "LatencyEvaluation",
    "LatencyResult",
    "Piece",
    "PieceCycleError",
    "contiguous_pieces",
    "greedy_split",
    "latency_of_pieces",
    "latency_of_split",
    "solve_latency_greedy",
    "solve_latency_ip",
]
