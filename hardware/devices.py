"""Hardware as data: device types, interconnect links and systems.

* A :class:`Device` is one physical device type (an A100, one server CPU
  core): its kind (``accelerator`` or ``cpu``), peak FLOP/s per data type,
  memory bandwidth and capacity, the fraction of those peaks that real kernels
  achieve, and the fixed overhead of launching one kernel.
* A :class:`Link` moves bytes one way at ``bandwidth`` after ``latency``.
* A :class:`DeviceGroup` is ``count`` identical devices with their link to
  host memory (and optionally to each other): one *device class* of docs/model.md §5.
* A :class:`System` is a named tuple of groups (``a100x8``…).

All values are in SI base units (bytes, bytes/s, FLOP/s, seconds); presets
write them with units (:mod:`pipesim.hardware.units`).  Every constructor validates
and raises :class:`~pipesim.hardware.units.HardwareError` naming the field.  This
package imports nothing from ``placement`` or ``pipesim``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipesim.hardware.units import HardwareError

__all__ = ["ACCELERATOR_KIND", "CPU_KIND", "DTYPE_BYTES", "TRANSFER_MODES", "Device", "DeviceGroup", "Link", "System", "dtype_bytes"]

ACCELERATOR_KIND, CPU_KIND = "accelerator", "cpu"

#: Bytes per element of the data types the cost model knows.
DTYPE_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}

#: How a system's transfers are priced (see :meth:`System.transfer_links`).
TRANSFER_MODES = ("auto", "host", "peer")

#: A device without a rate for a data type computes it at this type's rate (upcast).
FALLBACK_DTYPE = "fp32"


def dtype_bytes(dtype: str, field_name: str = "dtype") -> int:
    """Bytes per element of ``dtype``; :class:`HardwareError` naming ``field_name`` if unknown.

    Examples
    --------
    >>> dtype_bytes("bf16")
    2
    """
    if dtype not in DTYPE_BYTES:
        raise HardwareError(field_name, f"unknown data type {dtype!r} (known: {', '.join(DTYPE_BYTES)})")
    return DTYPE_BYTES[dtype]


def _non_negative(value: float, field_name: str, *, positive: bool = False, allow_inf: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise HardwareError(field_name, f"must be a number, got {value!r}")
    if math.isinf(value) and not allow_inf:
        raise HardwareError(field_name, f"must be finite, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise HardwareError(field_name, f"must be {'positive' if positive else 'non-negative'}, got {value!r}")


@dataclass(frozen=True)
class Link:
    """A one-directional path: moving ``b`` bytes takes ``latency + b / bandwidth``.

    Parameters
    ----------
    name : str
    bandwidth : float
        Bytes per second, positive.
    latency : float
        Seconds per transfer, non-negative.
    description : str

    Raises
    ------
    HardwareError
        A bandwidth that is not positive or a negative latency.

    Examples
    --------
    >>> Link("pcie4-x16", 31.5e9, latency=1e-5).bandwidth
    31500000000.0
    """

    name: str
    bandwidth: float
    latency: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        _non_negative(self.bandwidth, f"links.{self.name}.bandwidth", positive=True)
        _non_negative(self.latency, f"links.{self.name}.latency")


@dataclass(frozen=True)
class Device:
    """One physical device type.

    ``peak_flops`` maps a data type (``fp32``, ``fp16``…) to dense peak FLOP/s;
    ``memory`` is the capacity in bytes (``inf`` for host memory);
    ``compute_efficiency`` and ``memory_efficiency`` are the achievable
    fractions of the FLOP/s and bandwidth peaks; ``launch_overhead`` is the
    fixed cost of one kernel (seconds).

    Raises
    ------
    HardwareError
        A field out of range (unknown kind or data type, a rate that is not
        positive, an efficiency above 1…), naming it.

    Examples
    --------
    >>> gpu = Device("toy", "accelerator", {"fp32": 1e12, "fp16": 4e12}, memory_bandwidth=1e11, memory=8e9)
    >>> gpu.peak("fp16"), gpu.peak("bf16")   # bf16 has no rate: the fp32 one
    (4000000000000.0, 1000000000000.0)
    """

    name: str
    kind: str
    peak_flops: Mapping[str, float]
    memory_bandwidth: float
    memory: float = math.inf
    compute_efficiency: float = 1.0
    memory_efficiency: float = 1.0
    launch_overhead: float = 0.0
    description: str = ""
    class_efficiency: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"devices.{self.name}"
        for op_class, pair in self.class_efficiency.items():
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise HardwareError(f"{where}.efficiency_by_class.{op_class}", "must be (compute, memory) fractions")
            for value, part in zip(pair, ("compute", "memory")):
                _non_negative(value, f"{where}.efficiency_by_class.{op_class}.{part}", positive=True)
                if value > 1:
                    raise HardwareError(f"{where}.efficiency_by_class.{op_class}.{part}",
                                        f"is a fraction of the peak and must be at most 1, got {value!r}")
        if self.kind not in (ACCELERATOR_KIND, CPU_KIND):
            raise HardwareError(f"{where}.kind", f"must be {ACCELERATOR_KIND!r} or {CPU_KIND!r}, got {self.kind!r}")
        if not self.peak_flops:
            raise HardwareError(f"{where}.peak_flops", "needs at least one data type")
        for dtype, rate in self.peak_flops.items():
            dtype_bytes(dtype, f"{where}.peak_flops.{dtype}")
            _non_negative(rate, f"{where}.peak_flops.{dtype}", positive=True)
        _non_negative(self.memory_bandwidth, f"{where}.memory_bandwidth", positive=True)
        _non_negative(self.memory, f"{where}.memory", positive=True, allow_inf=True)
        for name in ("compute_efficiency", "memory_efficiency"):
            value = getattr(self, name)
            _non_negative(value, f"{where}.{name}", positive=True)
            if value > 1:
                raise HardwareError(f"{where}.{name}", f"is a fraction of the peak and must be at most 1, got {value!r}")
        _non_negative(self.launch_overhead, f"{where}.launch_overhead")

    def efficiencies(self, op_class: str | None = None) -> tuple[float, float]:
        """(compute, memory) efficiency for kernels of ``op_class`` (the device's defaults if not fitted)."""
        return self.class_efficiency.get(op_class, (self.compute_efficiency, self.memory_efficiency))

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s for ``dtype``; a type the device lacks runs at its fp32 rate."""
        dtype_bytes(dtype)
        if dtype in self.peak_flops:
            return self.peak_flops[dtype]
        if FALLBACK_DTYPE in self.peak_flops:
            return self.peak_flops[FALLBACK_DTYPE]
        raise HardwareError(f"devices.{self.name}.peak_flops", f"has no rate for {dtype!r} nor {FALLBACK_DTYPE!r}")


@dataclass(frozen=True)
class DeviceGroup:
    """``count`` devices of one type: a device class of docs/model.md §5.

    ``host_link`` carries tensors between a device and host memory (the
    paper's transfer model, docs/model.md §2.3); ``None`` means the device *is* on the
    host (CPU cores) and pays nothing.  ``peer_link`` optionally joins the
    group's devices directly (NVLink, an NVSwitch domain, or for CPU cores
    the measured hand-off between two stage processes): see
    :meth:`System.transfer_links` for when transfers use it.

    Raises
    ------
    HardwareError
        No name, a negative count, or an accelerator without a host link.

    Examples
    --------
    >>> gpu = Device("toy", "accelerator", {"fp32": 1e12}, memory_bandwidth=1e11)
    >>> group = DeviceGroup("gpu", gpu, 4, host_link=Link("pcie", 32e9))
    >>> group.kind, group.count
    ('accelerator', 4)
    """

    name: str
    device: Device
    count: int
    host_link: Link | None = None
    peer_link: Link | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise HardwareError("classes[].name", "a device class needs a name")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise HardwareError(f"classes.{self.name}.count", f"must be a non-negative integer, got {self.count!r}")
        if self.device.kind == ACCELERATOR_KIND and self.host_link is None:
            raise HardwareError(f"classes.{self.name}.host_link", "an accelerator needs a link to host memory")

    @property
    def kind(self) -> str:
        """The device's kind: ``accelerator`` or ``cpu``."""
        return self.device.kind


@dataclass(frozen=True)
class System:
    """A named set of device classes (no two with the same name).

    Parameters
    ----------
    name : str
    groups : tuple of DeviceGroup
        At least one.
    description : str
    sources : tuple of str
        Where the description came from (files), for reports.

    Raises
    ------
    HardwareError
        No groups, or a class name used twice.

    Examples
    --------
    >>> gpu = Device("toy", "accelerator", {"fp32": 1e12}, memory_bandwidth=1e11)
    >>> box = System("box", (DeviceGroup("gpu", gpu, 4, host_link=Link("pcie", 32e9)),))
    >>> box.class_names, box.group("gpu").count, box.is_paper_shaped
    (('gpu',), 4, True)
    """

    name: str
    groups: tuple[DeviceGroup, ...]
    description: str = ""
    sources: tuple[str, ...] = field(default=(), compare=False)
    transfers: str = "auto"

    def __post_init__(self) -> None:
        if self.transfers not in TRANSFER_MODES:
            raise HardwareError(f"systems.{self.name}.transfers",
                                f"must be one of {', '.join(TRANSFER_MODES)}, got {self.transfers!r}")
        if not self.groups:
            raise HardwareError(f"systems.{self.name}.classes", "a system needs at least one device class")
        names = [g.name for g in self.groups]
        for name in names:
            if names.count(name) > 1:
                raise HardwareError(f"systems.{self.name}.classes", f"device class {name!r} appears twice")

    def group(self, name: str) -> DeviceGroup:
        """The class called ``name``; :class:`HardwareError` listing the classes otherwise."""
        for g in self.groups:
            if g.name == name:
                return g
        raise HardwareError(f"systems.{self.name}", f"no device class {name!r} (classes: {', '.join(self.class_names)})")

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes' names, in order."""
        return tuple(g.name for g in self.groups)

    @property
    def peer_domain(self) -> bool:
        """Whether stage-to-stage transfers stay inside one peer domain.

        True when the system has at most one accelerator class, that class has
        a ``peer_link`` (NVLink/NVSwitch), and every other class is CPU cores;
        or it has no accelerator and its CPU class has a ``peer_link``.  Two
        accelerator classes (a mixed box) exchange tensors through the host.
        """
        accelerators = [g for g in self.groups if g.kind == ACCELERATOR_KIND]
        if len(accelerators) > 1:
            return False
        if accelerators:
            return accelerators[0].peer_link is not None
        return any(g.peer_link is not None for g in self.groups)

    def transfer_links(self) -> dict[str, tuple[Link | None, ...]]:
        """For each class, the links a device of it pays for moving one tensor to or from another stage.

        * ``transfers: host`` (the paper's model, docs/model.md §2): every accelerator
          writes each tensor to host memory and reads it back over its
          ``host_link``; CPU cores pay nothing.
        * ``transfers: peer``: a class with a ``peer_link`` uses it (GPU to GPU
          over NVLink, core to core over the measured process hand-off); a CPU
          class without one, beside an accelerator, pays the accelerator's
          ``host_link`` (a tensor it exchanges crosses PCIe, and an
          accelerator's NVLink price does not include that crossing).
        * ``transfers: auto`` (default): ``peer`` when :attr:`peer_domain`,
          else ``host``.

        Examples
        --------
        >>> from pipesim.hardware.catalog import load_system
        >>> {k: [l.name for l in v] for k, v in load_system("a100x8").transfer_links().items()}
        {'a100': ['nvlink3'], 'cpu': ['pcie4-x16']}
        >>> {k: [l.name for l in v] for k, v in load_system("mixed-a100x4-v100x4").transfer_links().items()}
        {'a100': ['pcie4-x16'], 'v100': ['pcie3-x16'], 'cpu': []}
        """
        mode = self.transfers
        if mode == "auto":
            mode = "peer" if self.peer_domain else "host"
        links: dict[str, tuple[Link | None, ...]] = {}
        accelerator_host = [g.host_link for g in self.groups if g.kind == ACCELERATOR_KIND and g.host_link]
        for g in self.groups:
            if mode == "peer" and g.peer_link is not None:
                links[g.name] = (g.peer_link,)
            elif mode == "peer" and g.kind == CPU_KIND:
                links[g.name] = tuple(accelerator_host[:1])
            else:
                links[g.name] = (g.host_link,) if g.host_link is not None else ()
        return links

    @property
    def is_paper_shaped(self) -> bool:
        """At most one accelerator class and at most one CPU class (the paper's two classes, docs/model.md §2.2)."""
        kinds = [g.kind for g in self.groups]
        return kinds.count(ACCELERATOR_KIND) <= 1 and kinds.count(CPU_KIND) <= 1
