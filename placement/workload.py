"""A workload: an operator graph together with the devices it may use (docs/model.md §2)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pipesim.errors import InputError
from pipesim.placement.devices import DeviceClass
from pipesim.placement.graph import Graph

__all__ = ["Workload"]


@dataclass(frozen=True)
class Workload:
    """``graph`` to be placed on ``devices``; ``source`` is the file it came from, if any.

    Parameters
    ----------
    graph : Graph
    devices : tuple of DeviceClass
    source : Path, optional

    Examples
    --------
    >>> from pipesim.placement.devices import paper_devices
    >>> from pipesim.placement.graph import Graph, Node
    >>> w = Workload(Graph([Node(1, {"accelerator": 1.0, "cpu": 4.0})], []), paper_devices(2, 1, 16e9))
    >>> w.name, w.device_class("accelerator").count
    ('workload', 2)
    >>> w.with_devices(cpu={"count": 4}).device_class("cpu").count
    4
    """

    graph: Graph
    devices: tuple[DeviceClass, ...]
    source: Path | None = None

    def device_class(self, name: str) -> DeviceClass:
        """The device class called ``name``; :class:`KeyError` if there is none."""
        for dc in self.devices:
            if dc.name == name:
                return dc
        raise InputError(self.source, "devices", f"no device class named {name!r} (classes: {', '.join(dc.name for dc in self.devices)})")

    def with_devices(self, **changes: dict) -> "Workload":
        """A copy with some classes changed: ``with_devices(cpu={"count": 2})``.

        Parameters
        ----------
        **changes : dict
            Class name -> :class:`DeviceClass` fields to replace.

        Returns
        -------
        Workload

        Raises
        ------
        KeyError
            A class the workload does not have.
        """
        devices = tuple(replace(dc, **changes[dc.name]) if dc.name in changes else dc for dc in self.devices)
        unknown = set(changes) - {dc.name for dc in self.devices}
        if unknown:
            known = ", ".join(dc.name for dc in self.devices)
            raise InputError(self.source, "devices", f"no device class named {sorted(unknown)[0]!r} (classes: {known})")
        return replace(self, devices=devices)

    @property
    def name(self) -> str:
        """The source file's stem, or ``"workload"``."""
        return self.source.stem if self.source else "workload"
