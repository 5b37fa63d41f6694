"""A workload: an operator graph together with the devices it may use."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pipesim.errors import InputError
from pipesim.placement.devices import DeviceClass
from pipesim.placement.graph import Graph

__all__ = ["Workload"]


@dataclass(frozen=True)
class Workload:
    """``graph`` to be placed on ``devices``; ``source`` is the file it came from, if any."""

    graph: Graph
    devices: tuple[DeviceClass, ...]
    source: Path | None = None

    def device_class(self, name: str) -> DeviceClass:
        for dc in self.devices:
            if dc.name == name:
                return dc
        raise InputError(self.source, "devices", f"no device class named {name!r} (classes: {', '.join(dc.name for dc in self.devices)})")

    def with_devices(self, **changes: dict) -> "Workload":
        """A copy with some classes changed: ``with_devices(cpu={"count": 2})``."""
        devices = tuple(replace(dc, **changes[dc.name]) if dc.name in changes else dc for dc in self.devices)
        unknown = set(changes) - {dc.name for dc in self.devices}
        if unknown:
            known = ", ".join(dc.name for dc in self.devices)
            raise InputError(self.source, "devices", f"no device class named {sorted(unknown)[0]!r} (classes: {known})")
        return replace(self, devices=devices)

    @property
    def name(self) -> str:
        return self.source.stem if self.source else "workload"
