"""pipesim's own models as hybrid-parallel planning workloads (docs/model.md §10).

Problem: :func:`pipesim.placement.plan.plan` plans on a
:class:`~pipesim.placement.plan.workload.PlanningWorkload` — per layer and
tensor-parallel degree ``t``, a time per microbatch (forward and backward),
parameter bytes, and memory ``a·y + b`` for ``y`` microbatches in flight.
Piper's files give these; for a model pipesim generates (an
:class:`~pipesim.workloads.opgraph.OpGraph`, e.g. ``build_model("transformer",
...)``) this module derives them from the hardware of a cluster node:

* **time** at ``t``: the roofline time of the layer's kernels with FLOPs and
  bytes split ``t`` ways (:func:`pipesim.hardware.costs.kernel_time`), forward
  plus :data:`~pipesim.hardware.costs.BACKWARD_FACTOR` times it backward, plus
  Megatron-style tensor-parallel all-reduces of the layer's activations on the
  intra-node fabric (Shoeybi et al. 2019, §3): a transformer layer does two in
  the forward pass and two in the backward pass, the embedding and the head one
  each; a ring all-reduce of ``A`` bytes over ``t`` devices takes
  ``2(t−1)/t · A / B_fabric + 2(t−1) · latency``;
* **degrees**: ``t`` divides the devices of a node and, for transformers, the
  attention heads (each device keeps whole heads); other models get ``t = 1``;
* **memory** per device: ``b`` = 16 bytes per parameter ÷ ``t`` (mixed-precision
  Adam, :data:`OPTIMIZER`: fp16 weights and gradients, fp32 master weights and
  two moments; Rajbhandari et al. 2020, §3.1), ``a`` = the activations the layer
  stashes per microbatch ÷ ``t``;
* **recomputation** (configuration ``"activation recomp"``): the layer keeps only
  its input (``a`` = input bytes, not split) and runs its forward pass again
  in the backward pass;
* **parameters** (what data parallelism all-reduces): gradient bytes per device,
  parameters ÷ ``t`` at the model's data type;
* **edges**: a layer's output bytes per microbatch.

A microbatch is the model's ``batch`` (samples in one pass).  Times are in
seconds.  The limits are the cluster's: K devices, the device's memory, the
network's bandwidth per device.
"""

from __future__ import annotations

from pipesim.errors import InputError
from pipesim.hardware.clusters import Cluster, NodeType
from pipesim.hardware.costs import BACKWARD_FACTOR, kernel_time, training_bytes_per_param
from pipesim.hardware.devices import dtype_bytes
from pipesim.placement.plan.workload import Configuration, Layer, LayerEdge, PlanningWorkload
from pipesim.workloads.opgraph import Op, OpGraph

__all__ = ["OPTIMIZER", "VANILLA", "RECOMPUTE", "planning_workload", "tensor_parallel_degrees"]

#: the training recipe of the states: mixed-precision Adam, 16 bytes per parameter
#: (:func:`pipesim.hardware.costs.training_bytes_per_param`)
OPTIMIZER = "mixed-adam"
VANILLA, RECOMPUTE = "vanilla", "activation recomp"


def tensor_parallel_degrees(ops: OpGraph, node: NodeType) -> list[int]:
    """The ``t`` a model may use on ``node``: divisors of its devices that divide the heads.

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> from pipesim.workloads.models import build_model
    >>> node = load_cluster("dgx-a100x4").nodes[0][0]
    >>> tensor_parallel_degrees(build_model("transformer", layers=2, hidden=96, heads=12, seq=16), node)
    [1, 2, 4]
    """
    heads = ops.attrs.get("heads") if ops.attrs.get("kind") == "transformer" else None
    if not isinstance(heads, int):
        return [1]
    return [t for t in range(1, node.devices + 1) if node.devices % t == 0 and heads % t == 0]


def _time(op: Op, device, dtype: str, t: int, scale: float = 1.0) -> float:
    return sum(k.repeat * kernel_time(k.flops * scale / t, k.bytes * scale / t, device, dtype, k.op_class)
               for k in op.kernels)


def _ring(nbytes: float, t: int, link) -> float:
    if t == 1 or nbytes <= 0:
        return 0.0
    return 2 * (t - 1) / t * nbytes / link.bandwidth + 2 * (t - 1) * link.latency


def planning_workload(
    ops: OpGraph,
    cluster: Cluster,
    *,
    microbatches: int,
    recompute: bool = True,
    name: str | None = None,
) -> PlanningWorkload:
    """The planning workload of ``ops`` on ``cluster`` (see the module docstring).

    Parameters
    ----------
    ops : OpGraph
        The model, fused per layer if it is not already.
    cluster : Cluster
        A homogeneous cluster (its node type gives the device, the fabric and
        the degrees; its size and network the limits).
    microbatches : int
        N, microbatches per batch (a microbatch is one pass of ``ops``).
    recompute : bool
        Offer activation recomputation for layers that stash activations.
    name : str, optional
        The workload's name (default: the model's).

    Returns
    -------
    PlanningWorkload

    Raises
    ------
    InputError
        A heterogeneous cluster, or a model with no layers.

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> from pipesim.workloads.models import build_model
    >>> ops = build_model("transformer", layers=2, hidden=256, heads=8, seq=128, decoder=True, vocab=1000)
    >>> w = planning_workload(ops, load_cluster("dgx-a100x4"), microbatches=8)
    >>> len(w.layers), w.degrees, w.devices, w.microbatches
    (4, (1, 2, 4, 8), 32, 8)
    >>> layer = w.layers[1]
    >>> [c.id for c in layer.options[2]]
    ['vanilla', 'activation recomp']
    >>> layer.options[1][0].memory_b == 16 * ops.by_layer().ops[1].params
    True
    """
    if not cluster.homogeneous:
        raise InputError(None, "hardware", f"{cluster.name} mixes node types: plan on one node type's part")
    fused = ops.by_layer() if any(op.layer is None for op in ops.ops) or len({op.layer for op in ops.ops}) != len(ops.ops) else ops
    if not fused.ops:
        raise InputError(None, "model", "the model has no layers")
    node = cluster.nodes[0][0]
    device, fabric, dtype = node.device, node.fabric, fused.dtype
    e = dtype_bytes(dtype)
    per_param = training_bytes_per_param(dtype, OPTIMIZER)
    degrees = tensor_parallel_degrees(fused, node)
    inputs: dict[int, float] = {i: 0.0 for i in range(len(fused.ops))}
    for s, d in fused.edges:
        inputs[d] += fused.ops[s].output_bytes
    layers = []
    for i, op in enumerate(fused.ops):
        # the activation a tensor-parallel layer all-reduces: the narrower of its input and output
        width = min(x for x in (inputs[i], op.output_bytes) if x > 0) if (inputs[i] or op.output_bytes) else 0.0
        transformer_layer = fused.attrs.get("kind") == "transformer" and (fused.layer_names.get(op.layer) or "").startswith("layer")
        reductions = 4 if transformer_layer else 2
        options = {}
        for t in degrees:
            forward = _time(op, device, dtype, t)
            time = forward * (1 + BACKWARD_FACTOR) + (reductions * _ring(width, t, fabric) if op.params else 0.0)
            grads = op.params / t * e
            states = per_param * op.params / t
            configs = [Configuration(VANILLA, time, grads, op.stash_bytes / t, states)]
            keep = inputs[i] or op.output_bytes
            if recompute and op.stash_bytes / t > keep:
                configs.append(Configuration(RECOMPUTE, time + forward, grads, keep, states))
            options[t] = tuple(configs)
        layers.append(Layer(i, options, name=op.name))
    edges = tuple(LayerEdge(s, d, fused.ops[s].output_bytes) for s, d in fused.edges)
    return PlanningWorkload(
        tuple(layers), edges, devices=cluster.device_count, memory=device.memory,
        bandwidth=node.network_bandwidth_per_device, microbatches=microbatches, source=None,
    ).with_name(name or fused.name)
