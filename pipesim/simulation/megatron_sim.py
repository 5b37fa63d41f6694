"""Simulating a Megatron-Core estimate: its pipeline run by the discrete-event simulator.

Problem: :func:`pipesim.placement.plan.megatron.estimate` prices the pipeline
by a closed form (docs/model.md §11.5).  This module runs the same
configuration through the simulator (§6): a chain of ``p·v`` virtual stages,
virtual stage ``k`` on rank ``k mod p`` as chunk ``⌊k/p⌋`` (Megatron's
interleaving), each with ``1/v`` of its rank's per-microbatch forward and
backward time (compute, exposed TP/CP communication and pipeline transfers, as
the estimate has them), ``m`` microbatches under ``1f1b-flush`` (``v = 1``) or
``interleaved-1f1b`` (PyTorch's orders, §6.3), then the exposed DP
communication and the optimizer step after the flush.

Guarantee: on equal stages the simulated iteration equals the estimate's (the
closed form is exact there, §6.3); on uneven stages (the first and last
stages' embedding and output layer, Megatron's shorter end stages) it is the
list-scheduled truth the closed form approximates; :class:`MegatronSimulation`
reports both and their difference (docs/model.md §11.10).  The TP and CP
collectives of a layer and the DP reduction run as events on their streams
(:mod:`pipesim.placement.plan.megatron_layer`, overlap where the model says so);
each stage's time takes its layers as those events run them, the after-flush
term the DP exposure as they give it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipesim.errors import InputError
from pipesim.placement.devices import DeviceClass
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.plan.megatron import Estimate, stage_layers
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from pipesim.placement.plan.megatron_layer import dp_exposed, layer_events
from pipesim.simulation.simulator import simulate

__all__ = ["MegatronSimulation", "simulate_estimate"]

_DEVICE = "gpu"
#: the simulator's task count this module allows (p·v·m·2 tasks)
MAX_TASKS = 2_000_000


@dataclass(frozen=True)
class MegatronSimulation:
    """The simulated and the estimated iteration of one configuration."""

    simulated_iteration_time: float
    estimated_iteration_time: float
    pipeline: float
    after_flush: float
    #: one layer's forward and backward as events (TP/CP collectives on their streams), and the closed form's
    layer_forward: float = 0.0
    layer_backward: float = 0.0
    model_layer_forward: float = 0.0
    model_layer_backward: float = 0.0
    #: the exposed DP communication as events, and the closed form's
    dp_exposed: float = 0.0
    model_dp_exposed: float = 0.0

    @property
    def difference(self) -> float:
        """``simulated / estimated − 1``."""
        return self.simulated_iteration_time / self.estimated_iteration_time - 1

    def to_dict(self) -> dict:
        return {"simulated_iteration_time": self.simulated_iteration_time,
                "estimated_iteration_time": self.estimated_iteration_time,
                "relative_difference": self.difference, "pipeline": self.pipeline, "after_flush": self.after_flush,
                "layer": {"forward": self.layer_forward, "backward": self.layer_backward,
                          "model_forward": self.model_layer_forward, "model_backward": self.model_layer_backward},
                "dp_exposed": self.dp_exposed, "model_dp_exposed": self.model_dp_exposed}


def _chain(forward: list[float], backward: list[float], virtual: int) -> tuple[Workload, Split]:
    n = len(forward)
    nodes = [Node(k, {_DEVICE: forward[k]}, color_class=k, name=f"stage{k}") for k in range(n)]
    nodes += [Node(n + k, {_DEVICE: backward[k]}, is_backward=True, color_class=k, name=f"stage{k}grad")
              for k in range(n)]
    edges = [Edge(k, k + 1, 0.0) for k in range(n - 1)]
    edges += [Edge(n + k + 1, n + k, 0.0) for k in range(n - 1)]
    edges += [Edge(k, n + k, 1.0 / virtual) for k in range(n)]
    return Workload(Graph(nodes, edges), (DeviceClass(_DEVICE, n),)), Split.from_lists({_DEVICE: [[k] for k in range(n)]})


def simulate_estimate(estimate: Estimate) -> MegatronSimulation:
    """Run ``estimate``'s pipeline in the simulator (see the module docstring).

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> from pipesim.placement.plan.megatron import ParallelConfig, estimate, with_nodes
    >>> from pipesim.workloads.llms import preset
    >>> e = estimate(preset("llama3.1-70b"), with_nodes(load_cluster("dgx-h100x16"), 8),
    ...              ParallelConfig(tp=4, pp=4, cp=2, vp=5, gbs=128))
    >>> abs(simulate_estimate(e).difference) < 0.02
    True
    """
    p, v, m = estimate.config.pp, estimate.config.vp, estimate.microbatches
    if not estimate.stage_forward:
        raise InputError(None, "estimate", "has no stage times (made by an older pipesim)")
    if 2 * p * v * m > MAX_TASKS:
        raise InputError(None, "estimate", f"{2 * p * v * m:,} tasks exceed the simulator's budget ({MAX_TASKS:,})")
    stage_f, stage_b = list(estimate.stage_forward), list(estimate.stage_backward)
    after_flush = estimate.after_flush
    layer = None
    dp_sim = dp_model = estimate.breakdown.dp_comm
    if estimate.layer_ops:
        # the layer's TP and CP collectives as events; the stage times take the layers as the events run them
        layer = layer_events(estimate.layer_ops)
        model_f, model_b = estimate.layer_ops["model_forward"], estimate.layer_ops["model_backward"]
        dfwd, dbwd = layer.forward - model_f, layer.backward - model_b
        recompute = estimate.stage_recompute or (estimate.recompute,) * p
        for r, n in enumerate(stage_layers(estimate.model.layers, p)):
            stage_f[r] += n * dfwd
            stage_b[r] += n * (dbwd + (dfwd if recompute[r] == "full" else 0.0))
    if estimate.dp_ops:
        # a later stage's reduction that outlasts the drain (``drain``, per-stage degrees only) is exposed instead
        dp_sim = max(dp_exposed(estimate.dp_ops), estimate.dp_ops.get("drain", 0.0))
        after_flush += dp_sim - dp_model
    forward = [stage_f[k % p] / v for k in range(p * v)]
    backward = [stage_b[k % p] / v for k in range(p * v)]
    workload, split = _chain(forward, backward, v)
    schedule = "interleaved-1f1b" if v > 1 else "1f1b-flush"
    result = simulate(workload, split, schedule=schedule, microbatches=m, minibatch=m, virtual_stages=v)
    pipeline = result.run.makespan
    extra = {} if layer is None else dict(layer_forward=layer.forward, layer_backward=layer.backward,
                                          model_layer_forward=model_f, model_layer_backward=model_b)
    return MegatronSimulation(pipeline + after_flush, estimate.iteration_time, pipeline, after_flush,
                              dp_exposed=dp_sim, model_dp_exposed=dp_model, **extra)
