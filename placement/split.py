"""A split: which nodes each device runs.

A :class:`Split` maps each device-class name to a list of node sets, one per
device of that class (a device may be empty).  Training splits may list only
forward nodes; :func:`complete_split` places every unlisted node with its
colour class (docs/model.md §2.2, §7.2), as the paper's tooling does for expert splits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipesim.errors import SplitError
from pipesim.placement.graph import Graph

__all__ = ["Split", "SplitError", "complete_split"]




@dataclass(frozen=True)
class Split:
    """``assignment[cls][i]`` is the set of node ids on device ``i`` of class ``cls``.

    A split says nothing about costs; :func:`pipesim.placement.evaluate.evaluate`
    scores it.  Devices may be empty; a class may list fewer devices than it has.

    Parameters
    ----------
    assignment : mapping of str to tuple of frozenset of int

    Examples
    --------
    >>> split = Split.from_lists({"accelerator": [[1, 2], [3]], "cpu": [[]]})
    >>> split.devices()
    [('accelerator', 0, frozenset({1, 2})), ('accelerator', 1, frozenset({3})), ('cpu', 0, frozenset())]
    >>> split.device_of()[3]
    ('accelerator', 1)
    >>> split.nonempty()
    Split(assignment={'accelerator': (frozenset({1, 2}), frozenset({3})), 'cpu': ()})
    """

    assignment: Mapping[str, tuple[frozenset[int], ...]]

    @classmethod
    def from_lists(cls, assignment: Mapping[str, Iterable[Iterable[int]]]) -> "Split":
        """Build from ``class -> [nodes of device 0, nodes of device 1, …]``."""
        return cls({name: tuple(frozenset(nodes) for nodes in devices) for name, devices in assignment.items()})

    @classmethod
    def from_mapping(cls, device_of: Mapping[int, tuple[str, int]], counts: Mapping[str, int]) -> "Split":
        """Build from ``node -> (class, index)``; ``counts`` sizes each class's device list.

        Examples
        --------
        >>> Split.from_mapping({1: ("accelerator", 1)}, {"accelerator": 2})
        Split(assignment={'accelerator': (frozenset(), frozenset({1}))})
        """
        lists: dict[str, list[set[int]]] = {name: [set() for _ in range(n)] for name, n in counts.items()}
        for v, (name, index) in device_of.items():
            devices = lists.setdefault(name, [])
            while len(devices) <= index:
                devices.append(set())
            devices[index].add(v)
        return cls.from_lists(lists)

    def devices(self) -> list[tuple[str, int, frozenset[int]]]:
        """``(class, index, nodes)`` for every device, in a stable order."""
        return [(name, i, nodes) for name, devices in self.assignment.items() for i, nodes in enumerate(devices)]

    def device_of(self) -> dict[int, tuple[str, int]]:
        """``node -> (class, index)``; raises :class:`SplitError` on a repeated node."""
        where: dict[int, tuple[str, int]] = {}
        for name, i, nodes in self.devices():
            for v in nodes:
                if v in where:
                    other = where[v]
                    raise SplitError(f"node {v} is placed twice: on {other[0]}[{other[1]}] and on {name}[{i}]")
                where[v] = (name, i)
        return where

    def nonempty(self) -> "Split":
        """The same split without empty devices (indices renumbered)."""
        return Split({name: tuple(n for n in devices if n) for name, devices in self.assignment.items()})


def complete_split(graph: Graph, split: Split) -> Split:
    """Place every node the split omits on the device of its colour class.

    This is how a split that lists only forward nodes places a training
    graph's backward nodes (docs/model.md §2.2).

    Parameters
    ----------
    graph : Graph
    split : Split

    Returns
    -------
    Split
        ``split`` itself when it places every node.

    Raises
    ------
    SplitError
        Unknown ids, repeated nodes, and omitted nodes whose colour class is
        absent from the split or spread over devices.

    Examples
    --------
    >>> from pipesim.placement.graph import Edge, Graph, Node
    >>> g = Graph([Node(1, {"cpu": 1.0}, color_class=0),
    ...            Node(2, {"cpu": 1.0}, is_backward=True, color_class=0)], [Edge(1, 2)])
    >>> complete_split(g, Split.from_lists({"cpu": [[1]]}))
    Split(assignment={'cpu': (frozenset({1, 2}),)})
    >>> complete_split(g, Split.from_lists({"cpu": [[7]]}))
    Traceback (most recent call last):
    ...
    pipesim.errors.SplitError: node 7 in the split is not in the graph
    """
    where = split.device_of()
    for v in where:
        if v not in graph.nodes:
            raise SplitError(f"node {v} in the split is not in the graph")
    missing = [v for v in graph.nodes if v not in where]
    if not missing:
        return split
    completed = dict(where)
    for v in missing:
        homes = {where[u] for u in graph.color_classes[graph.color_class(v)] if u in where}
        if not homes:
            raise SplitError(f"node {v} is not placed and no node of its colour class is")
        if len(homes) > 1:
            raise SplitError(f"node {v} is not placed and its colour class spans several devices")
        completed[v] = homes.pop()
    counts = {name: len(devices) for name, devices in split.assignment.items()}
    return Split.from_mapping(completed, counts)
