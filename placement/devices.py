"""Device classes as the solvers see them: how many, how much memory.

A :class:`DeviceClass` is a pool of identical devices.  The paper has two
(docs/model.md §2.2): ``k`` accelerators with memory ``M`` each, and ``ℓ`` CPU cores with
no memory limit.  Heterogeneous systems (docs/model.md §5) simply list more classes.
Per-node compute and transfer times live on the graph's nodes, keyed by the
class name; physical descriptors (FLOP/s, bandwidth) live in ``hardware``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipesim.errors import InputError

__all__ = ["ACCELERATOR", "CPU", "DeviceClass", "cap_counts", "paper_devices"]

#: Names of the paper's two device classes ("FPGA" in its files means any accelerator).
ACCELERATOR = "accelerator"
CPU = "cpu"


@dataclass(frozen=True, slots=True)
class DeviceClass:
    """``count`` identical devices, each with ``memory`` bytes (``inf``: unlimited).

    Parameters
    ----------
    name : str
        The class name; node times and transfers are keyed by it.
    count : int
        How many devices (0 allowed: the class is unused).
    memory : float
        Bytes per device.

    Raises
    ------
    ValueError
        No name, a negative or non-integer count, or a negative memory.

    Examples
    --------
    >>> DeviceClass("gpu", 2, 16e9).device_names()
    ['gpu[0]', 'gpu[1]']
    """

    name: str
    count: int
    memory: float = math.inf

    def __post_init__(self) -> None:
        if not self.name:
            raise InputError(None, "devices", "a device class needs a name")
        if not isinstance(self.count, int) or self.count < 0:
            raise InputError(None, f"devices.{self.name}.count", f"must be a non-negative integer, got {self.count!r}")
        if math.isnan(self.memory) or self.memory < 0:
            raise InputError(None, f"devices.{self.name}.memory", f"must be non-negative, got {self.memory!r}")

    def device_names(self) -> list[str]:
        """``class[index]`` for each device, as the evaluator names them."""
        return [f"{self.name}[{i}]" for i in range(self.count)]


def paper_devices(accelerators: int, cpus: int, memory: float) -> tuple[DeviceClass, ...]:
    """The paper's system: ``accelerators`` devices of ``memory`` bytes and ``cpus`` cores.

    Parameters
    ----------
    accelerators : int
        ``k``: devices of class :data:`ACCELERATOR`.
    cpus : int
        ``ℓ``: devices of class :data:`CPU`, with unlimited memory.
    memory : float
        ``M``: bytes per accelerator.

    Returns
    -------
    tuple of DeviceClass

    Examples
    --------
    >>> paper_devices(6, 1, 8e9)
    (DeviceClass(name='accelerator', count=6, memory=8000000000.0), DeviceClass(name='cpu', count=1, memory=inf))
    """
    return (DeviceClass(ACCELERATOR, accelerators, memory), DeviceClass(CPU, cpus))


def cap_counts(devices: tuple[DeviceClass, ...] | list[DeviceClass], groups: int) -> tuple[DeviceClass, ...]:
    """``devices`` with every count capped at ``groups``.

    A split puts each of ``groups`` indivisible groups (colour classes, or the
    DP's super-nodes) on one device, so it uses at most ``groups`` devices of
    any class: further devices stay empty and cannot change any answer.
    Solvers that build something per device use the capped counts, so a count
    of ``10**9`` costs no more than ``groups``.

    Examples
    --------
    >>> [dc.count for dc in cap_counts(paper_devices(10**9, 2, 1e9), 5)]
    [5, 2]
    """
    return tuple(DeviceClass(dc.name, min(dc.count, groups), dc.memory) for dc in devices)
