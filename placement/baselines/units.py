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
    """One colour class: its nodes and what it costs as a whole on each device class."""

    key: Hashable
    nodes: tuple[int, ...]
    time: Mapping[str, float]
    memory: float
    supported: frozenset[str]

    def fits(self, device_class: str) -> bool:
        return device_class in self.supported


def units_of(graph: Graph, device_classes: Sequence[str]) -> list[Unit]:
    """One :class:`Unit` per colour class, in the graph's node order."""
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
    """Every device of the workload, class by class."""
    return [(dc.name, i) for dc in workload.devices for i in range(dc.count)]


def result_from_assignment(
    method: str,
    workload: Workload,
    placement: Mapping[int, Device],
    started: float,
    stats: dict[str, Any] | None = None,
    message: str = "",
) -> PlacementResult:
    """Score ``node -> device`` with the evaluator; ``started`` is a ``perf_counter`` reading."""
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
    """Score ``split`` with the evaluator; ``started`` is a ``perf_counter`` reading."""
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
