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
reports both and their difference (docs/model.md §11.10).  What is not
simulated separately: TP and CP collectives and DP overlap are inside the
stage times and the after-flush term as the estimate prices them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipesim.errors import InputError
from pipesim.placement.devices import DeviceClass
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.plan.megatron import Estimate
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
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

    @property
    def difference(self) -> float:
        """``simulated / estimated − 1``."""
        return self.simulated_iteration_time / self.estimated_iteration_time - 1

    def to_dict(self) -> dict:
        return {"simulated_iteration_time": self.simulated_iteration_time,
                "estimated_iteration_time": self.estimated_iteration_time,
                "relative_difference": self.difference, "pipeline": self.pipeline, "after_flush": self.after_flush}


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
    forward = [estimate.stage_forward[k % p] / v for k in range(p * v)]
    backward = [estimate.stage_backward[k % p] / v for k in range(p * v)]
    workload, split = _chain(forward, backward, v)
    schedule = "interleaved-1f1b" if v > 1 else "1f1b-flush"
    result = simulate(workload, split, schedule=schedule, microbatches=m, minibatch=m, virtual_stages=v)
    pipeline = result.run.makespan
    return MegatronSimulation(pipeline + estimate.after_flush, estimate.iteration_time, pipeline,
                              estimate.after_flush)
