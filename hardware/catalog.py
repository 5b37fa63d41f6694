"""Reading hardware descriptions from YAML: the built-in presets and user files.

A description has up to three sections, each a mapping from a name to an
entry::

    devices: {a100-80gb: {kind: accelerator, peak_flops: {fp16: 312TFLOPS}, memory_bandwidth: 2039GB/s,
                          memory: 80GB, compute_efficiency: 0.7, memory_efficiency: 0.8, launch_overhead: 5us}}
    links:   {pcie4-x16: {bandwidth: 31.5GB/s, latency: 10us}}
    systems: {a100x8: {description: ..., classes: [{name: a100, device: a100-80gb, count: 8,
                                                    host_link: pcie4-x16, peer_link: nvlink3}]}}

A system may set ``transfers: host | peer | auto`` (default ``auto``: see
:meth:`~pipesim.hardware.devices.System.transfer_links`).  A class's
``device`` and links are names from the same or an earlier file, or
inline mappings.  The built-in presets (``hardware/presets/*.yaml``) cite a
datasheet for every value.  :func:`load_system` accepts a preset name or the
path of a YAML file (which may use the built-in devices and links).  Unknown
fields, missing values, bad units and unknown names raise
:class:`~pipesim.hardware.units.HardwareError` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipesim.hardware.devices import Device, DeviceGroup, Link, System
from pipesim.hardware.units import BANDWIDTH, BYTES, FLOPS, TIME, HardwareError, parse

__all__ = ["Catalog", "MAX_YAML_NESTING", "PRESETS", "builtin_catalog", "flow_nesting", "load_system", "preset_names",
           "read_yaml", "safe_load_text"]

PRESETS = Path(__file__).with_name("presets")
_PRESET_FILES = ("devices.yaml", "links.yaml", "systems.yaml")

_DEVICE_FIELDS = {
    "description",
    "kind",
    "peak_flops",
    "memory_bandwidth",
    "memory",
    "compute_efficiency",
    "memory_efficiency",
    "launch_overhead",
    "efficiency_by_class",
}
_LINK_FIELDS = {"description", "bandwidth", "latency"}
_SYSTEM_FIELDS = {"description", "classes", "transfers"}
_CLASS_FIELDS = {"name", "device", "count", "host_link", "peer_link"}


def _mapping(value: Any, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise HardwareError(where, f"must be a mapping, got {type(value).__name__}")
    return value


def _check_fields(entry: Mapping, allowed: set[str], required: set[str], where: str) -> None:
    unknown = sorted(set(map(str, entry)) - allowed)
    if unknown:
        raise HardwareError(f"{where}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(allowed))})")
    for name in sorted(required):
        if entry.get(name) is None:
            raise HardwareError(f"{where}.{name}", "missing")


def _fraction(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HardwareError(where, f"must be a number between 0 and 1, got {value!r}")
    return float(value)


def _device(name: str, entry: Any, where: str) -> Device:
    entry = _mapping(entry, where)
    _check_fields(entry, _DEVICE_FIELDS, {"kind", "peak_flops", "memory_bandwidth"}, where)
    peaks = _mapping(entry["peak_flops"], f"{where}.peak_flops")
    memory = entry.get("memory", "unlimited")
    return Device(
        name=name,
        kind=entry["kind"],
        peak_flops={str(t): parse(v, FLOPS, f"{where}.peak_flops.{t}") for t, v in peaks.items()},
        memory_bandwidth=parse(entry["memory_bandwidth"], BANDWIDTH, f"{where}.memory_bandwidth"),
        memory=math.inf if memory in ("unlimited", None) else parse(memory, BYTES, f"{where}.memory"),
        compute_efficiency=_fraction(entry.get("compute_efficiency", 1.0), f"{where}.compute_efficiency"),
        memory_efficiency=_fraction(entry.get("memory_efficiency", 1.0), f"{where}.memory_efficiency"),
        launch_overhead=parse(entry.get("launch_overhead", 0.0), TIME, f"{where}.launch_overhead"),
        description=str(entry.get("description", "")),
        class_efficiency=_class_efficiency(entry.get("efficiency_by_class", {}), f"{where}.efficiency_by_class"),
    )


def _class_efficiency(raw: Any, where: str) -> dict[str, tuple[float, float]]:
    """``{matmul: {compute: 0.6, memory: 0.9}, ...}``: per operator class, fractions of the peaks."""
    out = {}
    for op_class, pair in _mapping(raw, where).items():
        pair = _mapping(pair, f"{where}.{op_class}")
        _check_fields(pair, {"compute", "memory"}, set(), f"{where}.{op_class}")
        out[str(op_class)] = (_fraction(pair.get("compute", 1.0), f"{where}.{op_class}.compute"),
                              _fraction(pair.get("memory", 1.0), f"{where}.{op_class}.memory"))
    return out


def _link(name: str, entry: Any, where: str) -> Link:
    entry = _mapping(entry, where)
    _check_fields(entry, _LINK_FIELDS, {"bandwidth"}, where)
    return Link(
        name=name,
        bandwidth=parse(entry["bandwidth"], BANDWIDTH, f"{where}.bandwidth"),
        latency=parse(entry.get("latency", 0.0), TIME, f"{where}.latency"),
        description=str(entry.get("description", "")),
    )


#: Deeper ``[``/``{`` nesting than this is refused before PyYAML parses it: its scanner slows down with
#: the square of the depth (2,000 levels: 1.2 s of CPU; 200,000 would run for hours) and its composer
#: recurses.  No pipesim file nests more than a few levels.
MAX_YAML_NESTING = 100


def flow_nesting(text: str) -> int:
    """The deepest nesting of YAML flow collections (``[``, ``{``) in ``text``, outside quotes and comments.

    Linear in the text; plain scalars that contain brackets (``a[1]``) count too, which can only
    overstate the depth of ordinary files by a level or two.

    Examples
    --------
    >>> flow_nesting("a: [1, {b: [2]}]  # [[[ not counted\\nc: '[[['"), flow_nesting("[" * 5 + "]" * 5)
    (3, 5)
    """
    depth = deepest = 0
    quote = None
    previous = "\n"
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote == "'":
            if c == "'":
                if i + 1 < n and text[i + 1] == "'":  # '' is an escaped quote
                    i += 1
                else:
                    quote = None
        elif quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and previous in " \t\n":
            end = text.find("\n", i)
            i = n if end < 0 else end
            previous = "\n"
            continue
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth = max(0, depth - 1)
        previous = c
        i += 1
    return deepest


def safe_load_text(text: str, source: str) -> Any:
    """``yaml.safe_load(text)``, refusing hostile nesting first (:data:`MAX_YAML_NESTING`).

    Raises
    ------
    HardwareError
        Nested too deeply (the message names ``source``); PyYAML's own errors pass through.
    """
    if flow_nesting(text) > MAX_YAML_NESTING:
        raise HardwareError(source, f"nested more than {MAX_YAML_NESTING} levels deep ([[[…]]]): not a pipesim file")
    return yaml.safe_load(text)


def yaml_problem(exc: Exception) -> str:
    """PyYAML's error on one line: ``not valid YAML (line L, column C: problem)``.

    PyYAML's own text spans several lines (the offending line drawn with a
    caret); an error message is one line.

    Examples
    --------
    >>> import yaml
    >>> try:
    ...     yaml.safe_load("a: [1, 2")
    ... except yaml.YAMLError as exc:
    ...     print(yaml_problem(exc))
    not valid YAML (line 1, column 9: expected ',' or ']', but got '<stream end>')
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML ({where}{problem})"


def read_yaml(path: Path) -> Any:
    """A YAML file's data; a missing or malformed file is a :class:`HardwareError` naming it."""
    try:
        return safe_load_text(Path(path).read_text(), str(path))
    except FileNotFoundError:
        raise HardwareError(str(path), "no such file") from None
    except yaml.YAMLError as exc:
        raise HardwareError(str(path), yaml_problem(exc)) from None
    except RecursionError:  # lists inside lists thousands deep: PyYAML's composer recurses
        raise HardwareError(str(path), "nested too deeply to be a hardware file (thousands of levels)") from None


@dataclass
class Catalog:
    """Named devices, links and systems; later files may use earlier names.

    Parameters
    ----------
    devices, links, systems : dict, optional
        Entries already known (by name).

    Examples
    --------
    >>> catalog = Catalog()
    >>> catalog.add({"links": {"pcie": {"bandwidth": "32GB/s", "latency": "10us"}}})
    >>> catalog.link("pcie", "host_link").bandwidth
    32000000000.0
    >>> catalog.link("nvlink", "host_link")
    Traceback (most recent call last):
    ...
    pipesim.errors.HardwareError: host_link: unknown link 'nvlink' (known: pcie)
    """

    devices: dict[str, Device] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    systems: dict[str, System] = field(default_factory=dict)

    def add_file(self, path: Path) -> None:
        """Add the devices, links and systems of a YAML file.

        Raises
        ------
        HardwareError
            The file is missing or not YAML, or an entry is wrong; the field
            is prefixed with the file's path.
        """
        data = read_yaml(path)
        try:
            self.add(data or {}, source=str(path))
        except HardwareError as exc:
            raise HardwareError(f"{path}: {exc.field}", exc.problem) from None

    def add(self, data: Any, source: str = "") -> None:
        """Add the ``devices``, ``links`` and ``systems`` of an already-parsed description.

        ``source`` is recorded as the systems' origin.  Raises
        :class:`HardwareError` naming the first wrong field.
        """
        data = _mapping(data, "")
        _check_fields(data, {"devices", "links", "systems"}, set(), "")
        for name, entry in _mapping(data.get("devices") or {}, "devices").items():
            self.devices[str(name)] = _device(str(name), entry, f"devices.{name}")
        for name, entry in _mapping(data.get("links") or {}, "links").items():
            self.links[str(name)] = _link(str(name), entry, f"links.{name}")
        for name, entry in _mapping(data.get("systems") or {}, "systems").items():
            self.systems[str(name)] = self._system(str(name), entry, f"systems.{name}", source)

    def device(self, ref: Any, where: str) -> Device:
        """The device named ``ref``, or built from ``ref`` when it is an inline mapping.

        ``where`` is the field named in a :class:`HardwareError`.
        """
        if isinstance(ref, Mapping):
            return _device(where.rsplit(".", 1)[0], ref, where)
        if ref not in self.devices:
            raise HardwareError(where, f"unknown device {ref!r} (known: {', '.join(sorted(self.devices))})")
        return self.devices[ref]

    def link(self, ref: Any, where: str) -> Link | None:
        """The link named ``ref``, built from an inline mapping, or ``None`` for ``None``."""
        if ref is None:
            return None
        if isinstance(ref, Mapping):
            return _link(where, ref, where)
        if ref not in self.links:
            raise HardwareError(where, f"unknown link {ref!r} (known: {', '.join(sorted(self.links))})")
        return self.links[ref]

    def _system(self, name: str, entry: Any, where: str, source: str) -> System:
        entry = _mapping(entry, where)
        _check_fields(entry, _SYSTEM_FIELDS, {"classes"}, where)
        classes = entry["classes"]
        if not isinstance(classes, list) or not classes:
            raise HardwareError(f"{where}.classes", "must be a non-empty list of device classes")
        groups = []
        for i, raw in enumerate(classes):
            at = f"{where}.classes[{i}]"
            raw = _mapping(raw, at)
            _check_fields(raw, _CLASS_FIELDS, {"name", "device", "count"}, at)
            count = raw["count"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise HardwareError(f"{at}.count", f"must be a non-negative integer, got {count!r}")
            groups.append(
                DeviceGroup(
                    name=str(raw["name"]),
                    device=self.device(raw["device"], f"{at}.device"),
                    count=count,
                    host_link=self.link(raw.get("host_link"), f"{at}.host_link"),
                    peer_link=self.link(raw.get("peer_link"), f"{at}.peer_link"),
                )
            )
        return System(name, tuple(groups), str(entry.get("description", "")), (source,) if source else (),
                      transfers=entry.get("transfers", "auto"))

    def system(self, name: str) -> System:
        """The system called ``name``; :class:`HardwareError` listing the known ones otherwise."""
        if name not in self.systems:
            raise HardwareError("hardware", f"unknown preset {name!r} (known: {', '.join(sorted(self.systems))})")
        return self.systems[name]


@lru_cache(maxsize=1)
def builtin_catalog() -> Catalog:
    """The presets shipped in ``hardware/presets`` (read once, then cached).

    Returns
    -------
    Catalog

    Examples
    --------
    >>> "a100-80gb" in builtin_catalog().devices
    True
    """
    catalog = Catalog()
    for filename in _PRESET_FILES:
        catalog.add_file(PRESETS / filename)
    return catalog


def preset_names() -> list[str]:
    """The names of the built-in systems, sorted.

    Examples
    --------
    >>> "a100x8" in preset_names()
    True
    """
    return sorted(builtin_catalog().systems)


def load_system(name_or_path: str | Path) -> System:
    """A built-in system by name, or the (only or named-as-the-file) system of a YAML file.

    Parameters
    ----------
    name_or_path : str or Path
        A preset name (:func:`preset_names`) or a ``.yaml``/``.yml`` file; the
        file may use the built-in devices and links by name.

    Returns
    -------
    System

    Raises
    ------
    HardwareError
        Unknown preset, unreadable file, a wrong entry, or a file that
        defines several systems none of which is named like the file.

    Examples
    --------
    >>> system = load_system("a100x8")
    >>> system.class_names
    ('a100', 'cpu')
    >>> system.group("a100").count
    8
    """
    text = str(name_or_path)
    if not text.endswith((".yaml", ".yml")):
        return builtin_catalog().system(text)
    builtin = builtin_catalog()
    catalog = Catalog(dict(builtin.devices), dict(builtin.links))  # the file's own systems only
    path = Path(text)
    catalog.add_file(path)
    if path.stem in catalog.systems:
        return catalog.systems[path.stem]
    if len(catalog.systems) != 1:
        raise HardwareError(f"{path}: systems", "must define exactly one system (or one named like the file)")
    return next(iter(catalog.systems.values()))
