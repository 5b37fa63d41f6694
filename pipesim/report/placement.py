"""Which nodes sit on each device, said briefly: layer ranges where the graph has them.

A split of a 48-layer model is read at a glance as ``layers 0–11`` /
``layers 12–23`` …, not as 300 node ids.  :func:`describe_nodes` says what a
set of nodes holds (forward nodes only: backward nodes follow their colour
class): by ``layer_id`` ranges when nodes have them, else by numbered names
(``encoder.3–7.attn``), else by id ranges.  :func:`pipeline_order` lists the
devices of an evaluation in pipeline order (then the unused ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipesim.placement.evaluate import DeviceLoad, SplitEvaluation
from pipesim.placement.graph import Graph

__all__ = ["describe_nodes", "pipeline_order", "ranges"]

_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")


def ranges(numbers: Iterable[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0–2, 5, 7–8"``.

    >>> ranges([0, 1, 2, 5, 7, 8])
    '0–2, 5, 7–8'
    """
    values = sorted(set(numbers))
    parts: list[str] = []
    start = prev = None
    for v in values + [None]:
        if start is not None and (v is None or v != prev + 1):
            parts.append(str(start) if start == prev else f"{start}–{prev}")
            start = None
        if v is not None and start is None:
            start = v
        prev = v
    return ", ".join(parts)


def describe_nodes(graph: Graph, nodes: Iterable[int], limit: int = 48) -> str:
    """What ``nodes`` hold, in at most about ``limit`` characters.

    >>> from pipesim.placement.graph import Graph, Node
    >>> g = Graph([Node(i, {"a": 1.0}, layer_id=i // 2) for i in range(8)], [])
    >>> describe_nodes(g, [2, 3, 4, 5])
    'layers 1–2'
    >>> g = Graph([Node(i, {"a": 1.0}, name=f"block{i}.conv") for i in range(4)], [])
    >>> describe_nodes(g, [0, 1, 3])
    'block0–1, 3.conv'
    """
    forward = [v for v in sorted(nodes) if not graph.nodes[v].is_backward] or sorted(nodes)
    if not forward:
        return ""
    layers = [graph.nodes[v].layer_id for v in forward]
    if all(layer is not None for layer in layers):
        text = f"layer{'s' if len(set(layers)) > 1 else ''} {ranges(layers)}"
    else:
        names = [graph.nodes[v].name for v in forward]
        groups: dict[tuple[str, str], list[int]] = {}
        plain: list[str] = []
        for name in names:
            match = _NUMBERED.match(name) if name else None
            if match:
                groups.setdefault((match.group(1), match.group(3)), []).append(int(match.group(2)))
            elif name:
                plain.append(name)
        if names and all(names) and len(groups) + len(plain) <= 4:
            text = "; ".join([f"{pre}{ranges(nums)}{post}" for (pre, post), nums in groups.items()] + plain)
        else:
            text = f"nodes {ranges(forward)}"
    if len(text) > limit:
        text = text[: limit - 1].rstrip(", ") + "…"
    return text


def pipeline_order(evaluation: SplitEvaluation) -> list[DeviceLoad]:
    """The devices in pipeline order (the stage order when the split is a pipeline), unused ones last."""
    by_name = {d.name: d for d in evaluation.devices}
    order = [by_name[n] for n in evaluation.stage_order or () if n in by_name]
    seen = {d.name for d in order}
    used = [d for d in evaluation.devices if d.nodes and d.name not in seen]
    return order + used + [d for d in evaluation.devices if not d.nodes]
