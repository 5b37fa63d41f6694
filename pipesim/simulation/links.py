"""The simulator's link model for the ``overlap`` communication mode.

Problem: in ``overlap`` mode a transfer runs on a link (a DMA engine between a
device and host memory) instead of on the device, so it overlaps compute, and
devices behind one shared link contend for it (ISSUE 6, docs/model.md §6).  The
workload gives each node ``u`` a transfer time ``c(u)`` per device class; a
link turns that into the time one transfer takes on one device's link.

Guarantee: the default :class:`LinkModel` makes every transfer take exactly the
workload's ``c(u)`` (the paper's number) on a private link per device, so
``overlap`` differs from ``paper`` only by overlapping; a ``time_scale`` of
``s`` on a device multiplies its transfer times by ``s``; a ``bandwidth`` (bytes
per time unit) replaces ``c(u)`` by ``bytes / bandwidth`` where the graph gives
the tensor's size; ``shared`` lists groups of devices whose transfers queue on
one link (first come, first served).

This is the simulator's own small model, kept apart from the ``hardware``
package so that ``pipesim`` does not depend on how systems are described.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipesim.errors import InputError

__all__ = ["LinkModel"]


@dataclass(frozen=True)
class LinkModel:
    """Per-device link speed and which devices share a link.

    Devices are named as the evaluator names them: ``"accelerator[0]"``.
    """

    time_scale: Mapping[str, float] = field(default_factory=dict)
    bandwidth: Mapping[str, float] = field(default_factory=dict)
    shared: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        for what, values in (("time_scale", self.time_scale), ("bandwidth", self.bandwidth)):
            for device, value in values.items():
                if not value > 0:
                    raise InputError(None, "links", f"link {what} of {device} must be positive, got {value!r}")
        seen: set[str] = set()
        for group in self.shared:
            for device in group:
                if device in seen:
                    raise InputError(None, "links", f"device {device} is in two shared-link groups")
                seen.add(device)

    def transfer_time(self, device: str, cost: float, size: float | None) -> float:
        """Time ``device``'s link takes for a transfer of workload cost ``cost`` and ``size`` bytes."""
        if cost == 0.0:
            return 0.0  # the model says this device pays nothing (e.g. a CPU reading host memory)
        bandwidth = self.bandwidth.get(device)
        if bandwidth is not None and size is not None:
            return size / bandwidth
        return cost * self.time_scale.get(device, 1.0)

    def link_of(self, device: str) -> str:
        """The name of the link ``device`` transfers on (its own unless shared)."""
        for group in self.shared:
            if device in group:
                return "link[" + ",".join(group) + "]"
        return f"link[{device}]"
