"""What-if edits applied to a workload file, without regenerating it.

The edits of :mod:`pipesim.hardware.whatif` mean, per device class ``K``:

* ``speed``: for a node with given times (the paper's workloads: profiled,
  no FLOPs or bytes) every ``time[K]`` is divided by it; for a node of a
  generated workload, which carries its kernels' roofline parts
  (``Node.kernels``: launch, compute and memory time), compute and memory
  time are divided by it and the launch overhead stays, exactly as
  regenerating on a ``speed`` times faster device would;
* ``compute`` / ``memory_bandwidth``: the compute or the memory part of each
  kernel is divided by it — generated workloads only (given times do not
  say which part bounds a node: an error naming the field);
* ``link``: every ``transfer[K]`` is divided by it (latency and bandwidth
  are not separated in given times, so both scale);
* ``memory``: the class's capacity is multiplied by it (or set, given a
  size such as ``16GiB``);
* ``count``: the class's device count.

``device`` (swapping in another preset) needs the model itself: regenerate
with ``pipesim graph generate --whatif``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from pipesim.hardware.whatif import ClassEdit
from pipesim.placement.formats import InputError
from pipesim.placement.graph import Graph
from pipesim.placement.workload import Workload
from pipesim.workloads.lower import node_times

__all__ = ["scale_workload"]


def _scaled(mapping: Mapping[str, float], factors: Mapping[str, float]) -> dict[str, float]:
    return {cls: value / factors.get(cls, 1.0) for cls, value in mapping.items()}


def scale_workload(workload: Workload, edits: Mapping[str, ClassEdit]) -> Workload:
    names = {dc.name for dc in workload.devices}
    for cls, edit in edits.items():
        if cls not in names:
            raise InputError(workload.source, f"what-if.{cls}", f"no device class {cls!r} (classes: {', '.join(sorted(names))})")
        for field in ("compute", "memory_bandwidth"):
            priced = all(n.kernels and cls in n.kernels for n in workload.graph.nodes.values() if cls in n.time)
            if getattr(edit, field) != 1 and not priced:
                raise InputError(workload.source, f"what-if.{cls}.{field}",
                                 "needs each node's FLOPs and bytes (the roofline parts that workloads from "
                                 "pipesim graph generate/import carry): use speed for given times")
        if edit.link_bandwidth is not None:
            raise InputError(workload.source, f"what-if.{cls}.link", "given transfer times have no bytes: give a factor (link=0.5), not a bandwidth")
        if edit.device is not None:
            raise InputError(workload.source, f"what-if.{cls}.device", "swapping a device needs FLOPs and bytes: regenerate the workload from hardware")
    speed = {cls: e.speed for cls, e in edits.items()}
    link = {cls: e.link for cls, e in edits.items()}
    compute = {cls: e.speed * e.compute for cls, e in edits.items()}
    memory = {cls: e.speed * e.memory_bandwidth for cls, e in edits.items()}
    nodes = []
    for n in workload.graph.nodes.values():
        if n.kernels:  # generated: re-price each kernel exactly (the launch overhead does not scale)
            kernels = {cls: tuple((l, c / compute.get(cls, 1.0), m / memory.get(cls, 1.0), r) for l, c, m, r in parts)
                       for cls, parts in n.kernels.items()}
            time = {**_scaled(n.time, speed), **node_times(kernels)}
            nodes.append(replace(n, time=time, kernels=kernels, transfer=_scaled(n.transfer, link)))
        else:  # given times: the whole time scales with speed
            nodes.append(replace(n, time=_scaled(n.time, speed), transfer=_scaled(n.transfer, link)))
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
