"""What-if edits to a system, as data: "twice the link bandwidth", "6 V100s".

An edit names a device class and says what changes::

    {"a100": {"speed": 2, "link": 0.5}, "v100": {"count": 6, "device": "h100-sxm"}}

* ``speed`` scales peak FLOP/s *and* memory bandwidth (every kernel gets
  ``speed`` times faster); ``compute`` scales only the FLOP/s,
  ``memory_bandwidth`` only the memory bandwidth;
* ``link`` scales the bandwidth of the class's links (host and peer), or
  with a bandwidth (``link=25GB/s``) sets it;
* ``memory`` scales the memory capacity, or with a size (``memory=16GiB``)
  sets it;
* ``count`` sets the number of devices; ``device`` swaps in another device
  preset (applied before the scale factors).

Edits come from YAML/JSON mappings or from ``CLASS.FIELD=VALUE`` texts on the
command line; bad class names, fields or values raise
:class:`~pipesim.hardware.units.HardwareError` naming them.  The same
:class:`ClassEdit` applies to workloads whose times are given rather than
derived (``pipesim.workloads.whatif``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from pipesim.hardware.catalog import Catalog, builtin_catalog
from pipesim.hardware.devices import Link, System
from pipesim.hardware.units import BANDWIDTH, BYTES, HardwareError, is_number, parse

__all__ = ["ClassEdit", "apply_edits", "parse_assignments", "parse_edits"]

_FACTORS = ("speed", "compute", "memory_bandwidth", "link", "memory")


@dataclass(frozen=True)
class ClassEdit:
    """What changes in one device class (see the module docstring for each field).

    Scale factors multiply (1 leaves a value as it is); ``count`` and
    ``device`` replace (``None`` leaves them).

    Raises
    ------
    HardwareError
        A scale factor that is not a positive finite number, or a negative count.

    Examples
    --------
    >>> edit = ClassEdit(speed=2, count=6)
    >>> edit.speed, edit.link, edit.count, edit.device
    (2, 1.0, 6, None)
    """

    speed: float = 1.0
    compute: float = 1.0
    memory_bandwidth: float = 1.0
    link: float = 1.0
    memory: float = 1.0
    count: int | None = None
    device: str | None = None
    #: absolute values, from ``memory=16GiB`` / ``link=25GB/s`` (the factors then stay 1)
    memory_size: float | None = None
    link_bandwidth: float | None = None

    def __post_init__(self) -> None:
        for name in _FACTORS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
                raise HardwareError(name, f"a scale factor must be a positive finite number, got {value!r}")
        if self.count is not None and (isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0):
            raise HardwareError("count", f"must be a non-negative integer, got {self.count!r}")


def parse_edits(data: Mapping[str, Any]) -> dict[str, ClassEdit]:
    """``{class: {field: value}}`` -> ``{class: ClassEdit}``.

    Parameters
    ----------
    data : mapping
        Class name -> mapping of :class:`ClassEdit` fields (YAML or JSON).

    Returns
    -------
    dict of str to ClassEdit

    Raises
    ------
    HardwareError
        An entry that is not a mapping, an unknown field or a bad value;
        the field is named ``what-if.CLASS.FIELD``.

    Examples
    --------
    >>> parse_edits({"a100": {"link": 0.5}})["a100"].link
    0.5
    >>> parse_edits({"a100": {"sped": 2}})
    Traceback (most recent call last):
    ...
    pipesim.errors.HardwareError: what-if.a100.sped: unknown field (known: ...)
    """
    known = {f.name for f in fields(ClassEdit)}
    edits = {}
    for cls, entry in data.items():
        if not isinstance(entry, Mapping):
            raise HardwareError(f"what-if.{cls}", f"must be a mapping of fields, got {entry!r}")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise HardwareError(f"what-if.{cls}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(known))})")
        entry = dict(entry)
        for name, kind, absolute in (("memory", BYTES, "memory_size"), ("link", BANDWIDTH, "link_bandwidth")):
            value = entry.get(name)
            if isinstance(value, str) and not is_number(value):  # a quantity with a unit: set, not scale
                quantity = parse(value, kind, f"what-if.{cls}.{name}")
                if not quantity > 0:
                    raise HardwareError(f"what-if.{cls}.{name}", f"must be positive, got {value!r}")
                entry[absolute] = quantity
                del entry[name]
        try:
            edits[str(cls)] = ClassEdit(**entry)
        except HardwareError as exc:
            raise HardwareError(f"what-if.{cls}.{exc.field}", exc.problem) from None
    return edits


def _value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_assignments(texts: Iterable[str]) -> dict[str, ClassEdit]:
    """``["a100.speed=2", "cpu.count=4"]`` -> edits (the command line's ``CLASS.FIELD=VALUE``).

    Parameters
    ----------
    texts : iterable of str

    Returns
    -------
    dict of str to ClassEdit
        By class name, as :func:`parse_edits` returns them.

    Raises
    ------
    HardwareError
        A text not of the form ``CLASS.FIELD=VALUE``, or what :func:`parse_edits` rejects.

    Examples
    --------
    >>> edits = parse_assignments(["a100.speed=2", "cpu.count=4"])
    >>> edits["a100"].speed, edits["cpu"].count
    (2.0, 4)
    """
    data: dict[str, dict[str, Any]] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        cls, dot, name = key.strip().rpartition(".")
        if not sep or not dot or not cls or not name:
            raise HardwareError("what-if", f"expected CLASS.FIELD=VALUE (e.g. a100.speed=2), got {text!r}")
        value = _value(value.strip())
        data.setdefault(cls, {})[name] = float(value) if name in _FACTORS and isinstance(value, int) else value
    return parse_edits(data)


def _scaled_link(link: Link | None, factor: float, bandwidth: float | None = None) -> Link | None:
    if link is None or (factor == 1 and bandwidth is None):
        return None
    return replace(link, bandwidth=bandwidth if bandwidth is not None else link.bandwidth * factor)


def apply_edits(system: System, edits: Mapping[str, ClassEdit], catalog: Catalog | None = None) -> System:
    """``system`` with ``edits`` applied (the original is unchanged).

    Parameters
    ----------
    system : System
    edits : mapping of str to ClassEdit
        By class name; every name must be a class of ``system``.
    catalog : Catalog, optional
        Where ``device`` swaps are looked up (default: the built-in presets).

    Returns
    -------
    System
        A new system; ``system`` itself is unchanged.

    Raises
    ------
    HardwareError
        An unknown class or device name.

    Examples
    --------
    >>> from pipesim.hardware.catalog import load_system
    >>> system = apply_edits(load_system("a100x8"), parse_assignments(["a100.count=6", "a100.link=2"]))
    >>> system.group("a100").count, system.group("a100").host_link.bandwidth
    (6, 63000000000.0)
    """
    catalog = catalog or builtin_catalog()
    for cls in edits:
        system.group(cls)  # unknown class names are an error, not a silent no-op
    groups = []
    for group in system.groups:
        edit = edits.get(group.name)
        if edit is None:
            groups.append(group)
            continue
        device = catalog.device(edit.device, f"what-if.{group.name}.device") if edit.device else group.device
        device = replace(
            device,
            peak_flops={t: r * edit.speed * edit.compute for t, r in device.peak_flops.items()},
            memory_bandwidth=device.memory_bandwidth * edit.speed * edit.memory_bandwidth,
            memory=edit.memory_size if edit.memory_size is not None else device.memory * edit.memory,
        )
        groups.append(
            replace(
                group,
                device=device,
                count=group.count if edit.count is None else edit.count,
                host_link=_scaled_link(group.host_link, edit.link, edit.link_bandwidth) or group.host_link,
                peer_link=_scaled_link(group.peer_link, edit.link, edit.link_bandwidth) or group.peer_link,
            )
        )
    return replace(system, groups=tuple(groups))
