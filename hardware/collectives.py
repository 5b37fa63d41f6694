"""NCCL collectives on a cluster of nodes: ring and tree times for a group of GPUs.

Problem: price all-reduce, all-gather, reduce-scatter and point-to-point
transfers of a group of ``n`` GPUs laid out ``k`` per node, on the node's
NVLink/NVSwitch fabric and the network (docs/model.md §11.3).

* **Bandwidth of a group.**  Inside one node the group runs at the fabric's
  per-GPU bandwidth ``B_f``.  Spanning nodes with ``k`` members per node,
  NCCL builds one ring per NIC (rail-optimised DGX topology, one adapter per
  GPU): each of the ``k`` rings carries ``1/k`` of the data through its own
  adapter, so the bus bandwidth is ``min(B_f, k·B_nic)`` (``B_nic`` the
  adapter's, or the node's shared adapters ÷ devices).
* **Achieved fraction.**  nccl-tests' bus bandwidth on DGX systems reaches
  about 80% of NVLink's per-direction rate (DGX A100: ≈ 230–240 of 300 GB/s;
  DGX H100: ≈ 360 of 450 GB/s without NVLS) and about 90% of an InfiniBand
  port (≈ 45 of 50 GB/s on NDR 400 Gb/s): :data:`FABRIC_EFFICIENCY`,
  :data:`NETWORK_EFFICIENCY`.
* **Ring** (NCCL's algorithm for large messages; Patarasuk & Yuan 2009):
  all-reduce ``2(n−1)/n · S/B + 2(n−1)·α``, all-gather and reduce-scatter
  ``(n−1)/n · S/B + (n−1)·α`` for a gathered size ``S``; ``α`` the link's
  latency (the network's when the group spans nodes).
* **Tree** (NCCL's double binary tree, used for all-reduce across many nodes
  when it is faster, Sanders et al. 2009): ``2·S/B + 2·⌈log₂ n⌉·α``.
  :func:`all_reduce` takes the faster of the two, as NCCL's tuner does.
* **Point to point**: ``α + S/B`` on the fabric (same node) or one adapter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipesim.hardware.clusters import NodeType

__all__ = ["FABRIC_EFFICIENCY", "NETWORK_EFFICIENCY", "Group", "all_gather", "all_reduce", "p2p", "reduce_scatter"]

#: nccl-tests bus bandwidth / NVLink per-direction rate on DGX nodes (see the module docstring)
FABRIC_EFFICIENCY = 0.80
#: nccl-tests bus bandwidth / InfiniBand port rate
NETWORK_EFFICIENCY = 0.90


@dataclass(frozen=True)
class Group:
    """``size`` GPUs of a communicator, ``per_node`` of them in each node they occupy, on ``node``'s hardware."""

    size: int
    per_node: int
    node: NodeType

    @classmethod
    def strided(cls, size: int, stride: int, node: NodeType) -> Group:
        """The group of ranks ``r, r + stride, …`` (``size`` of them) with ranks filling nodes in order.

        >>> from pipesim.hardware.clusters import load_cluster
        >>> node = load_cluster("dgx-h100x16").nodes[0][0]
        >>> Group.strided(4, 2, node).per_node, Group.strided(4, 8, node).per_node, Group.strided(8, 4, node).per_node
        (4, 1, 2)
        """
        if stride * size <= node.devices:
            return cls(size, size, node)
        return cls(size, max(1, min(size, node.devices // stride)), node)

    @property
    def intra_node(self) -> bool:
        return self.per_node >= self.size

    @property
    def bandwidth(self) -> float:
        fabric = self.node.fabric.bandwidth * FABRIC_EFFICIENCY
        if self.intra_node:
            return fabric
        return min(fabric, self.per_node * self.node.network_bandwidth_per_device * NETWORK_EFFICIENCY)

    @property
    def latency(self) -> float:
        return self.node.fabric.latency if self.intra_node else self.node.nic.latency


def all_reduce(nbytes: float, group: Group) -> float:
    """Seconds of an all-reduce of ``nbytes`` per GPU: the faster of ring and tree."""
    n = group.size
    if n <= 1 or nbytes <= 0:
        return 0.0
    ring = 2 * (n - 1) / n * nbytes / group.bandwidth + 2 * (n - 1) * group.latency
    if group.intra_node:
        return ring
    tree = 2 * nbytes / group.bandwidth + 2 * math.ceil(math.log2(n)) * group.latency
    return min(ring, tree)


def all_gather(nbytes: float, group: Group) -> float:
    """Seconds of a ring all-gather whose result is ``nbytes`` per GPU."""
    n = group.size
    if n <= 1 or nbytes <= 0:
        return 0.0
    return (n - 1) / n * nbytes / group.bandwidth + (n - 1) * group.latency


def reduce_scatter(nbytes: float, group: Group) -> float:
    """Seconds of a ring reduce-scatter of ``nbytes`` per GPU (each keeps ``nbytes / n``): as all-gather."""
    return all_gather(nbytes, group)


def p2p(nbytes: float, node: NodeType, *, same_node: bool) -> float:
    """Seconds of one point-to-point transfer of ``nbytes``."""
    if nbytes <= 0:
        return 0.0
    if same_node:
        return node.fabric.latency + nbytes / (node.fabric.bandwidth * FABRIC_EFFICIENCY)
    return node.nic.latency + nbytes / (node.network_bandwidth_per_device * NETWORK_EFFICIENCY)
