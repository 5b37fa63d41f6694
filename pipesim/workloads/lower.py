"""From an operator graph and a hardware system to a placement workload.

For every operator ``i`` of an :class:`~pipesim.workloads.opgraph.OpGraph`
and every device class ``K`` of the system (docs/model.md §5):

* node ``i`` (forward) gets ``time[K] = Σ_kernels repeat · kernel_time(K)``
  (the roofline of :mod:`pipesim.hardware.costs`), ``flops`` its FLOPs, and
  ``transfer[K] = transfer_time(output_bytes, link of K)`` with the link of
  :meth:`~pipesim.hardware.devices.System.transfer_links`: the host link in
  the paper's model (CPU cores sit on the host and pay nothing, docs/model.md §2),
  the NVLink/NVSwitch peer link where the accelerators share one domain;
  its memory is :func:`pipesim.hardware.costs.node_memory` of its parameters
  (own and tied) plus, when training, gradients, master copy and optimizer
  states of the ``optimizer`` recipe (default ``mixed-adam``: 16 bytes per
  parameter) and the activations stashed for one microbatch (times
  ``microbatches_in_flight``);
* training adds backward node ``n + i`` (same colour class ``i``, kernels
  with :data:`~pipesim.hardware.costs.BACKWARD_FACTOR` times the FLOPs and bytes,
  output = the gradients of its inputs) with edges mirroring the forward ones,
  an edge ``i → n + i`` (stashed activations), and for operators with
  parameters an optimizer-update node ``2n + i`` after its backward node, in
  the same colour class.

Operators attached to another (:attr:`~pipesim.workloads.opgraph.OpGraph.attached`:
an imported model's input branches) take that operator's colour class, so the
DP places them together (docs/model.md §3, step 1) and every split keeps them
together.

Times are in milliseconds (:data:`TIME_UNIT`), like the paper's inputs; bytes
are bytes.  Each device class becomes a
:class:`~pipesim.placement.devices.DeviceClass` with the group's count and its
device's memory capacity.
"""

from __future__ import annotations

from pipesim.hardware.costs import (
    BACKWARD_FACTOR,
    DEFAULT_TRAINING_OPTIMIZER,
    kernel_parts,
    node_memory,
    optimizer_bytes,
    optimizer_flops,
    roofline_time,
    transfer_time,
)
from pipesim.hardware.devices import DeviceGroup, System
from pipesim.placement.devices import DeviceClass
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.workload import Workload
from pipesim.workloads.opgraph import Kernel, Op, OpGraph

__all__ = ["TIME_UNIT", "colour_classes", "device_classes", "lower"]

#: Seconds per unit of node time: node times are in milliseconds.
TIME_UNIT = 1e-3


def _roofline(kernels: tuple[Kernel, ...], groups: tuple[DeviceGroup, ...], dtype: str, scale: float = 1.0) -> dict:
    """Per class, each kernel's ``(launch, compute, memory, repeat)`` in the time unit."""
    return {
        g.name: tuple((*(part / TIME_UNIT for part in kernel_parts(k.flops * scale, k.bytes * scale, g.device, dtype,
                                                                   k.op_class)), k.repeat) for k in kernels)
        for g in groups
    }


def node_times(roofline: dict, compute_speed: dict | None = None, memory_speed: dict | None = None) -> dict:
    """A node's time per class from its kernels' roofline parts (``speed``: per-class factors, default 1)."""
    compute_speed, memory_speed = compute_speed or {}, memory_speed or {}
    return {
        cls: sum(r * roofline_time(l, c, m, compute_speed.get(cls, 1.0), memory_speed.get(cls, 1.0)) for l, c, m, r in parts)
        for cls, parts in roofline.items()
    }


def _priced(kernels: tuple[Kernel, ...], groups: tuple[DeviceGroup, ...], dtype: str, scale: float = 1.0) -> dict:
    """``time`` and ``roofline`` fields of a node running ``kernels``."""
    roofline = _roofline(kernels, groups, dtype, scale)
    return {"time": node_times(roofline), "kernels": roofline}


def _transfers(nbytes: float, links: dict) -> dict:
    return {name: sum(transfer_time(nbytes, link) for link in path) / TIME_UNIT for name, path in links.items() if path}


def device_classes(system: System) -> tuple[DeviceClass, ...]:
    return tuple(DeviceClass(g.name, g.count, g.device.memory) for g in system.groups)


def colour_classes(ops: OpGraph) -> list[int]:
    """Each operator's colour class: its own index, or that of the operator it is attached to (transitively).

    Examples
    --------
    >>> g = OpGraph("m", "fp32", attached={0: 2, 1: 0})
    >>> for name in "abc":
    ...     _ = g.add(Op(name, (Kernel(1.0, 1.0),)))
    >>> colour_classes(g)
    [2, 2, 2]
    """
    parent = list(range(len(ops.ops)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in sorted(ops.attached.items()):
        ra, rb = find(a), find(b)
        if ra != rb:  # the root is the larger index: the consumer an input branch is attached to
            parent[min(ra, rb)] = max(ra, rb)
    return [find(i) for i in range(len(ops.ops))]


def lower(
    ops: OpGraph, system: System, *, training: bool = False, optimizer: str = DEFAULT_TRAINING_OPTIMIZER,
    microbatches_in_flight: int = 1,
) -> Workload:
    """The workload of ``ops`` on ``system`` (see the module docstring)."""
    groups, dtype, n = system.groups, ops.dtype, len(ops.ops)
    links = system.transfer_links()
    # a model's layers repeat the same kernels: price each distinct (kernels, scale) once, not once per node
    # (100,000 equal layers: one roofline per distinct operator instead of 10^6)
    prices: dict[tuple, dict] = {}

    def priced(kernels: tuple[Kernel, ...], scale: float = 1.0) -> dict:
        key = (kernels, scale)
        if key not in prices:
            prices[key] = _priced(kernels, groups, dtype, scale)
        known = prices[key]
        return {"time": dict(known["time"]), "kernels": dict(known["kernels"])}  # each node owns its dicts

    producers: dict[int, list[int]] = {i: [] for i in range(n)}
    has_consumer = set()
    for s, d in ops.edges:
        producers[d].append(s)
        has_consumer.add(s)

    color = colour_classes(ops)
    nodes: list[Node] = []
    edges: list[Edge] = []
    for i, op in enumerate(ops.ops):
        nodes.append(
            Node(
                id=i,
                **priced(op.kernels),
                memory=node_memory(
                    op.resident_params, dtype, training=training, optimizer=optimizer, stashed_activations=op.stash_bytes,
                    microbatches_in_flight=microbatches_in_flight,
                ),
                transfer=_transfers(op.output_bytes, links) if i in has_consumer else {},
                color_class=color[i],
                name=op.name,
                layer_id=op.layer,
                flops=op.flops,
            )
        )
    edges.extend(Edge(s, d, ops.ops[s].output_bytes) for s, d in ops.edges)

    if training:
        for i, op in enumerate(ops.ops):
            grad_bytes = sum(ops.ops[s].output_bytes for s in producers[i])
            nodes.append(
                Node(
                    id=n + i,
                    **priced(op.kernels, BACKWARD_FACTOR),
                    transfer=_transfers(grad_bytes, links) if producers[i] else {},
                    is_backward=True,
                    color_class=color[i],
                    name=f"{op.name}.backward",
                    layer_id=op.layer,
                    flops=op.flops * BACKWARD_FACTOR,
                )
            )
            edges.append(Edge(i, n + i, op.stash_bytes))
            edges.extend(Edge(n + i, n + s, ops.ops[s].output_bytes) for s in producers[i])
            if op.params:
                update = Kernel(optimizer_flops(op.params, optimizer), optimizer_bytes(op.params, dtype, optimizer))
                nodes.append(
                    Node(
                        id=2 * n + i,
                        **priced((update,)),
                        is_backward=True,
                        color_class=color[i],
                        name=f"{op.name}.update",
                        layer_id=op.layer,
                        flops=update.flops,
                    )
                )
                edges.append(Edge(n + i, 2 * n + i, 0.0))
    return Workload(Graph(nodes, edges), device_classes(system))
