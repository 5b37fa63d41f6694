"""Per-layer profiles from the cost model: heterogeneous planning for GPUs nobody profiled.

Problem: the heterogeneous planner (docs/model.md §12.4) reads a model's
per-layer times per (GPU type, microbatch size, TP degree) and its per-layer
sizes, as Sailor's profiler measures them (``profiles_tmp.json``,
``llm_info.json``).  A transformer on GPUs without such measurements (H100s
beside A100s, any preset of ``pipesim hardware list``) needs the same inputs
from a model instead.

Guarantee: the inputs are those of the Megatron-Core cost model of §11, so
the heterogeneous plan and ``pipesim estimate`` price a layer alike: layer
``0`` is the embedding, layers ``1..L`` the transformer layers
(:func:`~pipesim.placement.plan.megatron.layer_cost`: GEMMs at their
achievable rate, fused attention, memory-bound kernels, the exposed TP
communication on the node's NVLink), layer ``L + 1`` the final norm, logits
and loss (:func:`~pipesim.placement.plan.megatron.end_costs`); each layer's
optimizer entry is the whole model's mixed-precision Adam step on one GPU at
that TP degree (Sailor's convention, §12.2).  Sizes: parameters per GPU at
each TP degree, the boundary activation (``s·h`` elements per sample) and the
activations a layer keeps for its backward pass (§11.6, no recomputation).

Reference: docs/model.md §12.6; Strati et al., Sailor, SOSP'25 (the profile
layout).
"""

from __future__ import annotations

from pipesim.errors import InputError
from pipesim.hardware.clusters import Cluster, NodeType
from pipesim.placement.plan.megatron import (ParallelConfig, TransformerConfig, end_costs, layer_cost, optimizer_step,
                                             padded_vocab, tensor_parallel_degrees)
from pipesim.placement.plan.sailor import SailorInputs
from pipesim.placement.plan.sailor_format import (
    LayerMemory,
    LayerTimes,
    SailorBandwidths,
    SailorLayerInfo,
    SailorProfiles,
    SailorTrainingConfig,
)

__all__ = ["MICROBATCH_SIZES", "transformer_inputs"]

#: Microbatch sizes profiled (those dividing the global batch are kept), as Sailor profiles them.
MICROBATCH_SIZES = (1, 2, 4, 8)


def _tp_degrees(model: TransformerConfig, node: NodeType) -> list[int]:
    """Powers of two dividing the node's GPUs and the attention heads (Megatron's TP constraints, §11.3)."""
    return [t for t in tensor_parallel_degrees(model, node.devices) if t & (t - 1) == 0]


def _optimizer_step(model: TransformerConfig, tp: int, node: NodeType) -> float:
    """The whole model's mixed-precision Adam step on one GPU holding ``1/tp`` of it (seconds)."""
    return optimizer_step(model.params() / tp, node)


def _layer_times(model: TransformerConfig, node: NodeType, mbs: int, tp: int, precision: str) -> tuple[LayerTimes, ...]:
    cfg = ParallelConfig(tp=tp, mbs=mbs, precision=precision)
    layer = layer_cost(model, cfg, node)
    embed, head, head_forward = end_costs(model, cfg, node.device)
    opt = _optimizer_step(model, tp, node)
    body = LayerTimes(layer.forward + layer.tp_forward, layer.backward + layer.tp_backward, opt)
    return (LayerTimes(embed / 3, 2 * embed / 3, opt), *(body,) * model.layers,
            LayerTimes(head_forward, head - head_forward, opt))


def _layer_sizes(model: TransformerConfig, node: NodeType, tp: int, precision: str) -> tuple[LayerMemory, ...]:
    layer = layer_cost(model, ParallelConfig(tp=tp, mbs=1, precision=precision), node)
    s, h, e = model.seq, model.hidden, 2
    vocab = padded_vocab(model, tp)
    # the last stage holds the output layer (its own weights, or a copy of tied embeddings, as Megatron does)
    head_params = vocab * h / tp + model.norm_params
    embedding = LayerMemory(round(model.embedding_params() / tp), s * h, e * s * h)
    body = LayerMemory(round(model.layer_params() / tp), s * h, round(layer.activations))
    # bf16 logits and their fp32 softmax for one sequence, and the final norm's input
    head = LayerMemory(round(head_params), 1, round(s * vocab / tp * (2 + 4) + e * s * h))
    return (embedding, *(body,) * model.layers, head)


def transformer_inputs(model: TransformerConfig, cluster: Cluster, *, gbs: int, precision: str = "bf16",
                       name: str = "transformer", microbatch_sizes: tuple[int, ...] = MICROBATCH_SIZES
                       ) -> SailorInputs:
    """The heterogeneous planner's inputs for ``model`` on every GPU type of ``cluster``, from §11's model.

    Parameters
    ----------
    model : TransformerConfig
        The transformer (``pipesim.workloads.transformer``; presets by name).
    cluster : Cluster
        Its node types' GPUs are priced (the GPU type named as the node type
        names it, :attr:`~pipesim.hardware.clusters.NodeType.gpu`).
    gbs : int
        The global batch in sequences.
    precision : {"bf16", "fp16", "fp8"}
        Of the GEMMs (§11.2).
    name : str
        The model's name in the inputs.
    microbatch_sizes : tuple of int
        Those dividing ``gbs`` are priced.

    Returns
    -------
    SailorInputs
        With no measured bandwidths: the planner uses the cluster's links (§12.3).

    Raises
    ------
    InputError
        No microbatch size divides ``gbs``.

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> from pipesim.workloads.llms import preset
    >>> inputs = transformer_inputs(preset("llama3.1-8b"), load_cluster("dgx-h100x8"), gbs=64)
    >>> inputs.config.num_layers   # embedding, 32 transformer layers, head
    34
    >>> times = inputs.profiles.layers("transformer", "h100-sxm", 1, 8)
    >>> times[1].forward < times[1].backward
    True
    """
    if isinstance(gbs, bool) or not isinstance(gbs, int) or gbs < 1:
        raise InputError(None, "gbs", f"must be a positive integer, got {gbs!r}")
    sizes = [b for b in microbatch_sizes if gbs % b == 0]
    if not sizes:
        raise InputError(None, "gbs", f"no microbatch size of {microbatch_sizes} divides the global batch {gbs}")
    times: dict = {}
    layer_info: dict = {}
    for node, count, _zone in cluster.entries():
        if not count or node.gpu in times:
            continue
        degrees = _tp_degrees(model, node)
        times[node.gpu] = {b: {tp: _layer_times(model, node, b, tp, precision) for tp in degrees} for b in sizes}
        for tp in degrees:  # sizes per GPU do not depend on the GPU, but stashes follow its kernels' choices
            layer_info.setdefault(tp, _layer_sizes(model, node, tp, precision))
    config = SailorTrainingConfig(name, gbs, model.layers + 2, "Adam", source="the §11 cost model")
    return SailorInputs(config, SailorProfiles({name: times}, "the §11 cost model"),
                        SailorLayerInfo({name: layer_info}, "the §11 cost model"), SailorBandwidths({}, ""))
