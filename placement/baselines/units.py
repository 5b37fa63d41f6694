"""Colour classes as the units that heuristic baselines move between devices.

Problem: a colour class must sit on one device (docs/model.md §2.2), so every heuristic
(local search, graph partitioner, single device) really places colour
classes, not nodes.  This module turns a workload into its list of
:class:`Unit` objects (one per colour class: summed times and memory, the
device classes that can run all of it) and its list of devices, and turns a
unit-to-device assignment back into a :class:`PlacementResult` scored by the
one evaluator (:func:`pipesim.placement.evaluate.evaluate`).

Guarantee: the result's numbers are always the evaluator's; its status is
``feasible`` exactly when the evaluator finds no violation, ``infeasible``
otherwise (the evaluation is then still returned, so a caller can see why).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipesim.placement.devices import cap_counts
from pipesim.placement.evaluate import evaluate
from pipesim.placement.graph import Graph
from pipesim.placement.result import FEASIBLE, INFEASIBLE, PlacementResult
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload

__all__ = ["Device", "Unit", "devices_of", "result_from_assignment", "result_from_split", "units_of"]

#: A device: (class name, index within the class).
Device = tuple[str, int]


@dataclass(frozen=True)
class Unit:
    """One colour class: its nodes and what it costs as a whole on each device class.

    Attributes
    ----------
    key : hashable
        The colour class.
    nodes : tuple of int
    time : mapping of str to float
        Summed compute time per device class (``inf`` where a node cannot run).
    memory : float
    supported : frozenset of str
        The device classes that can run every node of the class.
    """

    key: Hashable
    nodes: tuple[int, ...]
    time: Mapping[str, float]
    memory: float
    supported: frozenset[str]

    def fits(self, device_class: str) -> bool:
        """Whether ``device_class`` can run every node of the unit."""
        return device_class in self.supported


def units_of(graph: Graph, device_classes: Sequence[str]) -> list[Unit]:
    """One :class:`Unit` per colour class, in the graph's node order.

    Parameters
    ----------
    graph : Graph
    device_classes : sequence of str
        The classes to cost the units on.

    Returns
    -------
    list of Unit

    Examples
    --------
    >>> from pipesim.placement.graph import Graph, Node
    >>> g = Graph([Node(1, {"gpu": 1.0}, color_class=0), Node(2, {"gpu": 2.0, "cpu": 5.0}, color_class=0)], [])
    >>> (unit,) = units_of(g, ["gpu", "cpu"])
    >>> unit.nodes, unit.time, unit.fits("cpu")
    ((1, 2), {'gpu': 3.0, 'cpu': inf}, False)
    """
    units = []
    for key, members in graph.color_classes.items():
        nodes = [graph.nodes[v] for v in members]
        units.append(
            Unit(
                key=key,
                nodes=tuple(members),
                time={cls: sum(n.time.get(cls, math.inf) for n in nodes) for cls in device_classes},
                memory=sum(n.memory for n in nodes),
                supported=frozenset(cls for cls in device_classes if all(n.supports(cls) for n in nodes)),
            )
        )
    return units


def devices_of(workload: Workload) -> list[Device]:
    """Every device of the workload that a placement can use, class by class, as ``(class, index)``.

    Counts are capped at the number of colour classes (:func:`~pipesim.placement.devices.cap_counts`).

    Examples
    --------
    >>> from pipesim.placement.devices import paper_devices
    >>> from pipesim.placement.graph import Graph, Node
    >>> from pipesim.placement.workload import Workload
    >>> devices_of(Workload(Graph([Node(1, {"cpu": 1.0}), Node(2, {"cpu": 1.0})], []), paper_devices(2, 1, 8.0)))
    [('accelerator', 0), ('accelerator', 1), ('cpu', 0)]
    >>> devices_of(Workload(Graph([Node(1, {"cpu": 1.0})], []), paper_devices(10**9, 1, 8.0)))  # one class: one device each
    [('accelerator', 0), ('cpu', 0)]
    """
    return [(dc.name, i) for dc in cap_counts(workload.devices, len(workload.graph.color_classes)) for i in range(dc.count)]


def result_from_assignment(
    method: str,
    workload: Workload,
    placement: Mapping[int, Device],
    started: float,
    stats: dict[str, Any] | None = None,
    message: str = "",
) -> PlacementResult:
    """Score ``node -> device`` with the evaluator; ``started`` is a ``perf_counter`` reading.

    Parameters
    ----------
    method : str
        The name the result carries.
    workload : Workload
    placement : mapping of int to (str, int)
        Every node's device.
    started : float
        ``time.perf_counter()`` when the method started (for ``seconds``).
    stats : dict, optional
    message : str
        Default: the first violation, if any.

    Returns
    -------
    PlacementResult
        ``feasible`` exactly when the evaluator finds no violation.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> where = {1: ("accelerator", 0), 2: ("accelerator", 0), 3: ("accelerator", 1), 4: ("accelerator", 1)}
    >>> r = result_from_assignment("mine", diamond(), where, started=0.0)
    >>> r.status, r.max_load
    ('feasible', 4.0)
    """
    counts = {dc.name: dc.count for dc in workload.devices}
    return result_from_split(method, workload, Split.from_mapping(placement, counts), started, stats, message)


def result_from_split(
    method: str,
    workload: Workload,
    split: Split,
    started: float,
    stats: dict[str, Any] | None = None,
    message: str = "",
) -> PlacementResult:
    """Score ``split`` with the evaluator; ``started`` is a ``perf_counter`` reading.

    As :func:`result_from_assignment`, from a :class:`~pipesim.placement.split.Split`.

    Raises
    ------
    SplitError
        The split cannot be evaluated at all.
    """
    evaluation = evaluate(workload.graph, workload.devices, split)
    status = FEASIBLE if evaluation.feasible else INFEASIBLE
    if not evaluation.feasible and not message:
        message = evaluation.violations[0]
    return PlacementResult(
        method=method,
        status=status,
        evaluation=evaluation,
        seconds=time.perf_counter() - started,
        stats=stats or {},
        message=message,
    )
