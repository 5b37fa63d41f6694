"""What-if edits applied to a workload whose times are given, not derived.

For a paper-format workload (profiled times, no FLOPs or bytes) the edits of
:mod:`pipesim.hardware.whatif` mean, per device class ``K``:

* ``speed``: every ``time[K]`` is divided by it;
* ``link``: every ``transfer[K]`` is divided by it (latency and bandwidth
  are not separated in given times, so both scale);
* ``memory``: the class's capacity is multiplied by it (or set, given a
  size such as ``16GiB``);
* ``count``: the class's device count.

``compute``, ``memory_bandwidth`` and ``device`` need the FLOPs and bytes
behind the times: regenerate such workloads from hardware instead
(``pipesim graph generate --set``); asking for them here is an error naming
the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from pipesim.hardware.whatif import ClassEdit
from pipesim.placement.formats import InputError
from pipesim.placement.graph import Graph
from pipesim.placement.workload import Workload

__all__ = ["scale_workload"]


def _scaled(mapping: Mapping[str, float], factors: Mapping[str, float]) -> dict[str, float]:
    return {cls: value / factors.get(cls, 1.0) for cls, value in mapping.items()}


def scale_workload(workload: Workload, edits: Mapping[str, ClassEdit]) -> Workload:
    names = {dc.name for dc in workload.devices}
    for cls, edit in edits.items():
        if cls not in names:
            raise InputError(workload.source, f"what-if.{cls}", f"no device class {cls!r} (classes: {', '.join(sorted(names))})")
        for field in ("compute", "memory_bandwidth"):
            if getattr(edit, field) != 1:
                raise InputError(workload.source, f"what-if.{cls}.{field}", "needs FLOPs and bytes: use speed, or regenerate the workload from hardware")
        if edit.link_bandwidth is not None:
            raise InputError(workload.source, f"what-if.{cls}.link", "given transfer times have no bytes: give a factor (link=0.5), not a bandwidth")
        if edit.device is not None:
            raise InputError(workload.source, f"what-if.{cls}.device", "swapping a device needs FLOPs and bytes: regenerate the workload from hardware")
    speed = {cls: e.speed for cls, e in edits.items()}
    link = {cls: e.link for cls, e in edits.items()}
    nodes = [
        replace(n, time=_scaled(n.time, speed), transfer=_scaled(n.transfer, link)) for n in workload.graph.nodes.values()
    ]
    devices = tuple(
        replace(
            dc,
            memory=edits[dc.name].memory_size if edits[dc.name].memory_size is not None else dc.memory * edits[dc.name].memory,
            count=dc.count if edits[dc.name].count is None else edits[dc.name].count,
        )
        if dc.name in edits
        else dc
        for dc in workload.devices
    )
    return Workload(Graph(nodes, workload.graph.edges), devices, workload.source)
