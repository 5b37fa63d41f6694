"""Multi-node clusters: nodes of devices, a fabric inside each node, a network between nodes.

A :class:`NodeType` is a server: ``devices`` identical accelerators joined by
an intra-node ``fabric`` (NVLink / NVSwitch: per-device bandwidth per
direction and a latency) and reaching other nodes through a network interface
``nic`` whose bandwidth is either each device's own (``per: device``, one
adapter per GPU as in a DGX A100) or the node's, shared by its devices
(``per: node``).  A :class:`Cluster` is a list of node types with counts, so
heterogeneous clusters (A100 nodes beside V100 nodes) are described as they
are.

Heterogeneous and geo-distributed clusters (docs/model.md §12.3): a node type
may name its ``gpu_type`` as profiles name it (Sailor's ``GH-96``, ``A100-40``)
and a ``price_per_gpu_hour`` ($); each ``nodes`` entry may sit in a ``zone``
(and override the price there); the cluster's ``network`` lists the bandwidth
(per device, per direction) and latency between (zone, node type) pairs —
``from``/``to`` are ``zone/type`` or a whole ``zone`` — and ``egress`` the $
per GB crossing from one zone to another.  Pairs in one zone default to the
slower NIC; every pair of zones must have a ``network`` entry.

Presets live in ``hardware/presets/clusters.yaml`` with a datasheet
source for every figure; :func:`load_cluster` reads a preset or a YAML file
(which may use the built-in devices).  Problems raise
:class:`~pipesim.hardware.units.HardwareError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipesim.hardware.catalog import (
    PRESETS,
    _check_fields,
    _link,
    _mapping,
    builtin_catalog,
    read_yaml,
)
from pipesim.hardware.devices import ACCELERATOR_KIND, Device, Link
from pipesim.hardware.units import HardwareError

__all__ = ["DEFAULT_ZONE", "Cluster", "NodeType", "cluster_names", "load_cluster"]

_NODE_FIELDS = {"description", "device", "devices", "fabric", "nic", "gpu_type", "price_per_gpu_hour"}
_NIC_FIELDS = {"bandwidth", "latency", "per"}
_CLUSTER_FIELDS = {"description", "nodes", "network", "egress"}
_ENTRY_FIELDS = {"type", "count", "zone", "price_per_gpu_hour"}
_NETWORK_FIELDS = {"from", "to", "bandwidth", "latency", "description"}
_EGRESS_FIELDS = {"from", "to", "price_per_gb"}
DEFAULT_ZONE = "local"


@dataclass(frozen=True)
class NodeType:
    """A server of ``devices`` accelerators, its intra-node ``fabric`` and its network ``nic``."""

    name: str
    device: Device
    devices: int
    fabric: Link
    nic: Link
    nic_per_device: bool = True
    description: str = ""
    gpu_type: str = ""  # the name profiles use for this GPU (Sailor's "GH-96"); "" = the device's name
    price_per_gpu_hour: float | None = None  # $

    @property
    def gpu(self) -> str:
        """The GPU type as profiles name it."""
        return self.gpu_type or self.device.name

    def __post_init__(self) -> None:
        if self.device.kind != ACCELERATOR_KIND:
            raise HardwareError(f"node_types.{self.name}.device", "must be an accelerator")
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise HardwareError(f"node_types.{self.name}.devices", f"must be a positive integer, got {self.devices!r}")

    @property
    def network_bandwidth_per_device(self) -> float:
        """Bytes/s one device can send to other nodes when all its node's devices send at once."""
        return self.nic.bandwidth if self.nic_per_device else self.nic.bandwidth / self.devices


@dataclass(frozen=True)
class Cluster:
    """Nodes of one or more types; device ids run node by node in this order."""

    name: str
    nodes: tuple[tuple[NodeType, int], ...]
    description: str = ""
    sources: tuple[str, ...] = field(default=(), compare=False)
    zones: tuple[str, ...] = ()  # the zone of each ``nodes`` entry; () = all in DEFAULT_ZONE
    prices: tuple[float | None, ...] = ()  # $ per GPU-hour of each ``nodes`` entry; () = the node types'
    network: tuple[tuple[str, str, Link], ...] = ()  # (from, to, link); from/to: "zone/type" or "zone"
    egress: tuple[tuple[str, str, float], ...] = ()  # (from zone, to zone, $ per GB)

    def __post_init__(self) -> None:
        if not self.nodes or sum(count for _, count in self.nodes) < 1:
            raise HardwareError(f"clusters.{self.name}.nodes", "a cluster needs at least one node")
        for name, value in (("zones", self.zones), ("prices", self.prices)):
            if value and len(value) != len(self.nodes):
                raise HardwareError(f"clusters.{self.name}.{name}", "needs one entry per nodes entry")
        zones = sorted(set(self.zone_list()))
        for i, a in enumerate(zones):  # every pair of zones needs a measured or stated link
            for b in zones[i + 1:]:
                for ta in {t.name for t, _, z in self.entries() if z == a}:
                    for tb in {t.name for t, _, z in self.entries() if z == b}:
                        if self._network_entry(a, ta, b, tb) is None:
                            raise HardwareError(f"clusters.{self.name}.network",
                                                f"no bandwidth between {a}/{ta} and {b}/{tb} (zones differ)")

    def zone_list(self) -> list[str]:
        """The zone of each ``nodes`` entry."""
        return list(self.zones) if self.zones else [DEFAULT_ZONE] * len(self.nodes)

    def entries(self) -> list[tuple[NodeType, int, str]]:
        """``(node type, count, zone)`` per ``nodes`` entry."""
        return [(t, n, z) for (t, n), z in zip(self.nodes, self.zone_list())]

    @property
    def zone_names(self) -> list[str]:
        return sorted(set(self.zone_list()))

    @property
    def gpu_types(self) -> list[str]:
        """The GPU types (as profiles name them) present, in first-seen order."""
        return list(dict.fromkeys(t.gpu for t, n in self.nodes if n))

    def price_per_gpu_hour(self, entry: int) -> float | None:
        """$ per GPU-hour of ``nodes[entry]`` (its own price, else its node type's), or None if unknown."""
        own = self.prices[entry] if self.prices else None
        return own if own is not None else self.nodes[entry][0].price_per_gpu_hour

    @property
    def price_per_hour(self) -> float | None:
        """$ per hour of every GPU of the cluster, or None when a price is missing."""
        total = 0.0
        for i, (t, n) in enumerate(self.nodes):
            price = self.price_per_gpu_hour(i)
            if price is None and n:
                return None
            total += (price or 0.0) * t.devices * n
        return total

    def _network_entry(self, zone_a: str, type_a: str, zone_b: str, type_b: str) -> Link | None:
        ends_a = (f"{zone_a}/{type_a}", zone_a)
        ends_b = (f"{zone_b}/{type_b}", zone_b)
        for a in ends_a:  # the most specific entry first, either direction
            for b in ends_b:
                for src, dst, link in self.network:
                    if (src, dst) in ((a, b), (b, a)):
                        return link
        return None

    def link(self, zone_a: str, type_a: str, zone_b: str, type_b: str) -> Link:
        """Per-device link between a node of ``type_a`` in ``zone_a`` and one of ``type_b`` in ``zone_b``.

        The ``network`` entry for the pair (``zone/type`` before ``zone``), else,
        inside one zone, the slower of the two NICs' per-device bandwidth and the
        larger latency.

        Examples
        --------
        >>> c = load_cluster("two-zone-a100-v100")
        >>> c.link("us-central1-a", "gcp-a100-40gbx4", "us-west1-b", "gcp-v100-16gbx4").bandwidth / 1e9
        0.62
        >>> c.link("us-central1-a", "gcp-a100-40gbx4", "us-central1-a", "gcp-a100-40gbx4").bandwidth / 1e9
        1.5625
        """
        found = self._network_entry(zone_a, type_a, zone_b, type_b)
        if found is not None:
            return found
        if zone_a != zone_b:
            raise HardwareError(f"clusters.{self.name}.network", f"no bandwidth between {zone_a} and {zone_b}")
        types = {t.name: t for t, _ in self.nodes}
        if type_a not in types or type_b not in types:
            raise HardwareError("node_type", f"{self.name} has no {type_a if type_a not in types else type_b!r} nodes")
        a, b = types[type_a], types[type_b]
        return Link(f"{zone_a}:{type_a}-{type_b}", min(a.network_bandwidth_per_device, b.network_bandwidth_per_device),
                    max(a.nic.latency, b.nic.latency))

    def egress_price_per_gb(self, zone_a: str, zone_b: str) -> float:
        """$ per GB sent from ``zone_a`` to ``zone_b`` (0 inside a zone or when not stated)."""
        if zone_a == zone_b:
            return 0.0
        for src, dst, price in self.egress:
            if (src, dst) == (zone_a, zone_b):
                return price
        for src, dst, price in self.egress:  # a price stated one way holds both ways unless both are given
            if (src, dst) == (zone_b, zone_a):
                return price
        return 0.0

    @property
    def node_count(self) -> int:
        return sum(count for _, count in self.nodes)

    @property
    def device_count(self) -> int:
        return sum(t.devices * count for t, count in self.nodes)

    @property
    def homogeneous(self) -> bool:
        return len({t.name for t, _ in self.nodes}) == 1

    def part(self, node_type: str) -> Cluster:
        """The cluster of this one's nodes of type ``node_type`` (a homogeneous part of a mixed cluster).

        Examples
        --------
        >>> part = load_cluster("mixed-a100-v100").part("dgx1-v100")
        >>> part.name, part.device_count, part.homogeneous
        ('mixed-a100-v100/dgx1-v100', 16, True)
        """
        keep = [i for i, (t, count) in enumerate(self.nodes) if t.name == node_type and count]
        if not keep:
            known = ", ".join(sorted({t.name for t, _ in self.nodes}))
            raise HardwareError("node_type", f"{self.name} has no {node_type!r} nodes (its node types: {known})")
        return Cluster(f"{self.name}/{node_type}", tuple(self.nodes[i] for i in keep),
                       f"the {node_type} nodes of {self.name}", self.sources,
                       tuple(self.zone_list()[i] for i in keep) if self.zones else (),
                       tuple(self.prices[i] for i in keep) if self.prices else (), self.network, self.egress)

    def node_list(self) -> list[NodeType]:
        """One entry per node, in device-id order."""
        return [t for t, count in self.nodes for _ in range(count)]

    def node_of_device(self, device: int) -> int:
        """Index of the node holding device ``device``.

        Examples
        --------
        >>> c = load_cluster("dgx-a100x4")
        >>> c.device_count, c.node_of_device(0), c.node_of_device(8), c.node_of_device(31)
        (32, 0, 1, 3)
        """
        start = 0
        for i, node in enumerate(self.node_list()):
            if device < start + node.devices:
                return i
            start += node.devices
        raise HardwareError("device", f"device {device} is beyond the cluster's {self.device_count}")


def _node_type(name: str, entry: Any, where: str) -> NodeType:
    entry = _mapping(entry, where)
    _check_fields(entry, _NODE_FIELDS, {"device", "devices", "fabric", "nic"}, where)
    catalog = builtin_catalog()
    device = catalog.device(entry["device"], f"{where}.device")
    fabric = catalog.link(entry["fabric"], f"{where}.fabric")
    nic_entry = _mapping(entry["nic"], f"{where}.nic")
    _check_fields(nic_entry, _NIC_FIELDS, {"bandwidth"}, f"{where}.nic")
    per = nic_entry.get("per", "device")
    if per not in ("device", "node"):
        raise HardwareError(f"{where}.nic.per", f"must be 'device' or 'node', got {per!r}")
    nic = _link(f"{name}-nic", {k: v for k, v in nic_entry.items() if k != "per"}, f"{where}.nic")
    gpu_type = entry.get("gpu_type", "")
    if not isinstance(gpu_type, str):
        raise HardwareError(f"{where}.gpu_type", f"must be a name, got {gpu_type!r}")
    return NodeType(name, device, entry["devices"], fabric, nic, per == "device", str(entry.get("description", "")),
                    gpu_type, _price(entry.get("price_per_gpu_hour"), f"{where}.price_per_gpu_hour"))


def _price(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise HardwareError(where, f"must be a non-negative number of dollars, got {value!r}")
    return float(value)


def _zone(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise HardwareError(where, f"must be a zone name without '/', got {value!r}")
    return value



def _between(entry: dict, key: str, fields, values: str, ends: set, what: str, where: str):
    """Yield ``(path, entry)`` for each item of the list ``entry[key]`` of {from, to, values...} between known ``ends``."""
    items = entry.get(key) or []
    if not isinstance(items, list):
        raise HardwareError(f"{where}.{key}", f"must be a list of {{from, to, {values}}}")
    for i, raw in enumerate(items):
        at = f"{where}.{key}[{i}]"
        raw = _mapping(raw, at)
        _check_fields(raw, fields, {"from", "to", values.split(",")[0]}, at)
        for end in ("from", "to"):
            if raw[end] not in ends:
                raise HardwareError(f"{at}.{end}", f"{raw[end]!r} is no {what} of this cluster "
                                                   f"(known: {', '.join(sorted(ends))})")
        yield at, raw

def _read(data: Any, source: str, known: dict[str, NodeType]) -> tuple[dict[str, NodeType], dict[str, Cluster]]:
    data = _mapping(data or {}, "")
    _check_fields(data, {"node_types", "clusters"}, set(), "")
    types = dict(known)
    for name, entry in _mapping(data.get("node_types") or {}, "node_types").items():
        types[str(name)] = _node_type(str(name), entry, f"node_types.{name}")
    clusters = {}
    for name, entry in _mapping(data.get("clusters") or {}, "clusters").items():
        where = f"clusters.{name}"
        entry = _mapping(entry, where)
        _check_fields(entry, _CLUSTER_FIELDS, {"nodes"}, where)
        if not isinstance(entry["nodes"], list):
            raise HardwareError(f"{where}.nodes", "must be a list of {type, count}")
        nodes, zones, prices = [], [], []
        for i, raw in enumerate(entry["nodes"]):
            at = f"{where}.nodes[{i}]"
            raw = _mapping(raw, at)
            _check_fields(raw, _ENTRY_FIELDS, {"type", "count"}, at)
            if raw["type"] not in types:
                raise HardwareError(f"{at}.type", f"unknown node type {raw['type']!r} (known: {', '.join(sorted(types))})")
            count = raw["count"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise HardwareError(f"{at}.count", f"must be a non-negative integer, got {count!r}")
            nodes.append((types[raw["type"]], count))
            zones.append(_zone(raw.get("zone", DEFAULT_ZONE), f"{at}.zone"))
            prices.append(_price(raw.get("price_per_gpu_hour"), f"{at}.price_per_gpu_hour"))
        known_ends = {z for z in zones} | {f"{z}/{t.name}" for (t, _), z in zip(nodes, zones)}
        network = [(raw["from"], raw["to"], _link(f"{raw['from']}-{raw['to']}",
                                                  {k: v for k, v in raw.items() if k not in ("from", "to")}, at))
                   for at, raw in _between(entry, "network", _NETWORK_FIELDS, "bandwidth, latency", known_ends,
                                           "zone or zone/node type", where)]
        egress = [(raw["from"], raw["to"], _price(raw["price_per_gb"], f"{at}.price_per_gb"))
                  for at, raw in _between(entry, "egress", _EGRESS_FIELDS, "price_per_gb", set(zones), "zone", where)]
        plain = all(z == DEFAULT_ZONE for z in zones) and all(p is None for p in prices)
        clusters[str(name)] = Cluster(
            str(name), tuple(nodes), str(entry.get("description", "")), (source,),
            () if plain else tuple(zones), () if plain else tuple(prices), tuple(network), tuple(egress))
    return types, clusters


@lru_cache(maxsize=1)
def _builtin() -> tuple[dict[str, NodeType], dict[str, Cluster]]:
    path = PRESETS / "clusters.yaml"
    return _read(read_yaml(path), str(path), {})


def cluster_names() -> list[str]:
    return sorted(_builtin()[1])


def builtin_clusters() -> Mapping[str, Cluster]:
    return dict(_builtin()[1])


def load_cluster(name_or_path: str | Path) -> Cluster:
    """A built-in cluster by name, or the (only or named-as-the-file) cluster of a YAML file.

    Examples
    --------
    >>> c = load_cluster("mixed-a100-v100")
    >>> [(t.name, n) for t, n in c.nodes], c.homogeneous
    ([('dgx-a100', 2), ('dgx1-v100', 2)], False)
    """
    text = str(name_or_path)
    types, clusters = _builtin()
    if not text.endswith((".yaml", ".yml")):
        if text not in clusters:
            raise HardwareError("hardware", f"unknown cluster {text!r} (known: {', '.join(sorted(clusters))})")
        return clusters[text]
    path = Path(text)
    data = read_yaml(path)
    try:
        _, mine = _read(data, str(path), types)
    except HardwareError as exc:
        raise HardwareError(f"{path}: {exc.field}", exc.problem) from None
    if path.stem in mine:
        return mine[path.stem]
    if len(mine) != 1:
        raise HardwareError(f"{path}: clusters", "must define exactly one cluster (or one named like the file)")
    return next(iter(mine.values()))
