"""Multi-node clusters: nodes of devices, a fabric inside each node, a network between nodes.

A :class:`NodeType` is a server: ``devices`` identical accelerators joined by
an intra-node ``fabric`` (NVLink / NVSwitch: per-device bandwidth per
direction and a latency) and reaching other nodes through a network interface
``nic`` whose bandwidth is either each device's own (``per: device``, one
adapter per GPU as in a DGX A100) or the node's, shared by its devices
(``per: node``).  A :class:`Cluster` is a list of node types with counts, so
heterogeneous clusters (A100 nodes beside V100 nodes) are described as they
are.  Presets live in ``hardware/presets/clusters.yaml`` with a datasheet
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

__all__ = ["Cluster", "NodeType", "cluster_names", "load_cluster"]

_NODE_FIELDS = {"description", "device", "devices", "fabric", "nic"}
_NIC_FIELDS = {"bandwidth", "latency", "per"}
_CLUSTER_FIELDS = {"description", "nodes"}


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

    def __post_init__(self) -> None:
        if not self.nodes or sum(count for _, count in self.nodes) < 1:
            raise HardwareError(f"clusters.{self.name}.nodes", "a cluster needs at least one node")

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
        nodes = tuple((t, count) for t, count in self.nodes if t.name == node_type and count)
        if not nodes:
            known = ", ".join(sorted({t.name for t, _ in self.nodes}))
            raise HardwareError("node_type", f"{self.name} has no {node_type!r} nodes (its node types: {known})")
        return Cluster(f"{self.name}/{node_type}", nodes, f"the {node_type} nodes of {self.name}", self.sources)

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
    return NodeType(name, device, entry["devices"], fabric, nic, per == "device", str(entry.get("description", "")))


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
        nodes = []
        for i, raw in enumerate(entry["nodes"]):
            at = f"{where}.nodes[{i}]"
            raw = _mapping(raw, at)
            _check_fields(raw, {"type", "count"}, {"type", "count"}, at)
            if raw["type"] not in types:
                raise HardwareError(f"{at}.type", f"unknown node type {raw['type']!r} (known: {', '.join(sorted(types))})")
            count = raw["count"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise HardwareError(f"{at}.count", f"must be a non-negative integer, got {count!r}")
            nodes.append((types[raw["type"]], count))
        clusters[str(name)] = Cluster(str(name), tuple(nodes), str(entry.get("description", "")), (source,))
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
