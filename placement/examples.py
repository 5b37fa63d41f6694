"""Tiny workloads for examples and experiments (networkx's ``path_graph`` is the model).

The docstring examples of pipesim build their workloads here, so that every
example is two lines and every number in it can be checked by hand:

* :func:`chain` — layers in a row;
* :func:`diamond` — a fork and a join (``1 -> 2, 1 -> 3, 2 -> 4, 3 -> 4``),
  the smallest graph where contiguity and the stage order matter;
* :func:`uniform_planning_chain` — equal layers for the hybrid-parallel planners.

Both are paper-model workloads (classes ``accelerator`` and ``cpu``,
docs/model.md §2): a node's CPU time is ten times its accelerator time.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipesim.placement.devices import paper_devices
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.workload import Workload

__all__ = ["chain", "diamond", "uniform_planning_chain"]


def _layer(v: int, time: float, memory: float, transfer: float) -> Node:
    return Node(v, {"accelerator": time, "cpu": 10 * time}, memory=memory, transfer={"accelerator": transfer})


def chain(times: Sequence[float] = (2.0, 1.0), *, accelerators: int = 2, cpus: int = 0, memory: float = 100.0,
          node_memory: float = 1.0, transfer: float = 0.0) -> Workload:
    """Layers ``1 -> 2 -> … -> n`` with the given accelerator times.

    Parameters
    ----------
    times : sequence of float
        Accelerator time of each layer (CPU time: ten times it).
    accelerators, cpus : int
        Device counts.
    memory : float
        Bytes per accelerator.
    node_memory : float
        Bytes of each layer.
    transfer : float
        Every layer's transfer time ``c(u)`` on an accelerator.

    Returns
    -------
    Workload

    Examples
    --------
    >>> w = chain((2.0, 1.0, 1.0))
    >>> w.graph, w.graph.total_time("accelerator"), [(d.name, d.count) for d in w.devices]
    (Graph(3 nodes, 2 edges), 4.0, [('accelerator', 2), ('cpu', 0)])
    """
    nodes = [_layer(v, t, node_memory, transfer) for v, t in enumerate(times, start=1)]
    edges = [Edge(v, v + 1) for v in range(1, len(nodes))]
    return Workload(Graph(nodes, edges), paper_devices(accelerators, cpus, memory))


def diamond(*, accelerators: int = 2, cpus: int = 0, memory: float = 10.0) -> Workload:
    """A fork and a join: ``1 -> 2, 1 -> 3, 2 -> 4, 3 -> 4``.

    Accelerator times 2, 1, 1, 2; every node takes 1 byte and has a transfer
    time of 0.5 on an accelerator.

    Parameters
    ----------
    accelerators, cpus : int
        Device counts.
    memory : float
        Bytes per accelerator.

    Returns
    -------
    Workload

    Examples
    --------
    >>> w = diamond()
    >>> w.graph.successors(1), w.graph.predecessors(4), w.graph.total_memory
    ([2, 3], [2, 3], 4.0)
    """
    nodes = [_layer(v, t, 1.0, 0.5) for v, t in ((1, 2.0), (2, 1.0), (3, 1.0), (4, 2.0))]
    edges = [Edge(1, 2), Edge(1, 3), Edge(2, 4), Edge(3, 4)]
    return Workload(Graph(nodes, edges), paper_devices(accelerators, cpus, memory))


def uniform_planning_chain(layers: int, *, time: float = 2.0, parameters: float = 0.0, edge: float = 0.0,
                           devices: int = 4, memory: float = 100.0, bandwidth: float = 1.0,
                           microbatches: int = 8):
    """A chain of equal layers for the hybrid-parallel planners: one ``vanilla`` configuration at ``t = 1``.

    Each layer takes ``time`` per microbatch, has ``parameters`` bytes and
    stashes 1 byte per microbatch in flight; each edge carries ``edge`` bytes.

    Examples
    --------
    >>> w = uniform_planning_chain(3)
    >>> len(w.layers), len(w.edges), w.degrees
    (3, 2, (1,))
    """
    from pipesim.placement.plan.workload import Configuration, Layer, LayerEdge, PlanningWorkload

    c = Configuration("vanilla", time=time, parameters=parameters, memory_a=1.0, memory_b=0.0)
    return PlanningWorkload(tuple(Layer(i, {1: (c,)}) for i in range(layers)),
                            tuple(LayerEdge(i, i + 1, edge) for i in range(layers - 1)),
                            devices=devices, memory=memory, bandwidth=bandwidth, microbatches=microbatches)
