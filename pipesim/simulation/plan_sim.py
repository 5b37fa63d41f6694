"""Simulating a hybrid-parallel plan on a cluster: 1F1B with a flush, replicas, rings (docs/model.md §10).

Problem: check the flush model of :mod:`pipesim.placement.plan.flush` by
running the plan as events, with the cluster's links as shared resources:

* each stage's ``d`` replicas take the batch's ``N`` microbatches round-robin
  (microbatch ``j`` goes to replica ``j mod d``); a replica (its ``t`` devices
  computing together, the plan's times) runs PipeDream-Flush's 1F1B order: as
  many forwards as the plan's microbatches in flight, then one backward, one
  forward, …, then the remaining backwards;
* the forward of a microbatch is split from its backward as
  ``1 : BACKWARD_FACTOR`` (:data:`pipesim.hardware.costs.BACKWARD_FACTOR`);
* activations (forward) and gradients (backward) move between consecutive
  stages as in the paper's model: the sender spends ``bytes / bandwidth``
  writing, then the receiver the same reading; the bandwidth is the fabric's
  when the two devices share a node, the network's otherwise, and a network
  send holds the sender's network adapter (one per device, or one per node
  when the node's devices share it);
* after the last backward of the batch every stage all-reduces its gradients
  as ``t`` rings of ``d`` devices (``2(d−1)`` steps, each moving ``W/d``
  bytes from every device to the next one, on the fabric inside a node and
  the adapter across nodes; a step ends when its slowest transfer does); the
  next iteration starts when every stage is done (the optimizer step).

Guarantee: where no link is shared (one adapter per device, rings and
pipeline transfers on different devices) and the stages are uniform, the
simulated iteration equals the model's (the model is exact for 1F1B on equal
stages); stages of different times, replicas of different counts and shared
adapters show as differences, which :class:`PlanSimulation` reports with the
per-device peak memory the run reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import simpy

from pipesim.errors import InternalError, SimulationError
from pipesim.hardware.costs import BACKWARD_FACTOR
from pipesim.placement.plan.flush import Geometry, evaluate_flush_plan
from pipesim.placement.plan.result import INFEASIBLE, Plan
from pipesim.placement.plan.workload import PlanningWorkload

__all__ = ["PlanSimulation", "simulate_plan"]


@dataclass
class PlanSimulation:
    """Predicted against simulated: iteration time, per-stage all-reduce and per-device peak memory."""

    predicted_iteration_time: float
    simulated_iteration_time: float
    iterations: int
    microbatches: int
    predicted_memory: list[float]                     # per stage, bytes per device
    simulated_memory: list[float]                     # per stage, the largest a replica reached
    predicted_allreduce: list[float]
    simulated_allreduce: list[float]                  # per stage, the longest ring
    busy: list[float]                                 # per stage, a replica's own work per iteration (no waits)
    contention: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def difference(self) -> float:
        """(simulated − predicted) / predicted iteration time."""
        return (self.simulated_iteration_time - self.predicted_iteration_time) / self.predicted_iteration_time

    def to_dict(self) -> dict[str, Any]:
        return {
            "predicted_iteration_time": self.predicted_iteration_time,
            "simulated_iteration_time": self.simulated_iteration_time,
            "relative_difference": self.difference,
            "iterations": self.iterations,
            "microbatches": self.microbatches,
            "stages": [
                {"predicted_memory": pm, "simulated_memory": sm, "predicted_allreduce": pa, "simulated_allreduce": sa,
                 "busy": b}
                for pm, sm, pa, sa, b in zip(self.predicted_memory, self.simulated_memory, self.predicted_allreduce,
                                              self.simulated_allreduce, self.busy)
            ],
            "contention": list(self.contention),
        }


def _order(microbatches: int, warmup: int) -> list[tuple[str, int]]:
    """PipeDream-Flush on one replica: ``warmup`` forwards, then B/F pairs, then the last backwards."""
    warmup = max(1, min(warmup, microbatches))
    order = [("F", k) for k in range(warmup)]
    f, b = warmup, 0
    while b < microbatches:
        order.append(("B", b))
        b += 1
        if f < microbatches:
            order.append(("F", f))
            f += 1
    return order


def simulate_plan(
    workload: PlanningWorkload,
    plan: Plan,
    geometry: Geometry,
    *,
    iterations: int = 2,
) -> PlanSimulation:
    """Run ``plan`` (evaluated again under the flush model) for ``iterations`` batches.

    Parameters
    ----------
    workload : PlanningWorkload
    plan : Plan
        Its stages (with device ids, as the flush planner gives them).
    geometry : Geometry
        The cluster's nodes and links.
    iterations : int
        Batches to run; the last one's time is reported.

    Returns
    -------
    PlanSimulation

    Raises
    ------
    SimulationError
        The plan is infeasible, or the replicas wait for each other forever.

    Examples
    --------
    >>> from pipesim.placement.plan.workload import Configuration, Layer, LayerEdge, PlanningWorkload
    >>> from pipesim.placement.plan.result import PlanStage
    >>> c = Configuration("vanilla", time=3.0, parameters=8.0, memory_a=1.0, memory_b=0.0)
    >>> w = PlanningWorkload(tuple(Layer(i, {1: (c,)}) for i in range(2)), (LayerEdge(0, 1, 0.0),),
    ...                      devices=4, memory=100.0, bandwidth=1.0, microbatches=8)
    >>> g = Geometry(4, 4, fabric=8.0, network=1.0)
    >>> p = evaluate_flush_plan(w, [PlanStage((0,), 1, 2, {0: "vanilla"}), PlanStage((1,), 1, 2, {1: "vanilla"})], g)
    >>> sim = simulate_plan(w, p, g)
    >>> p.iteration_time, sim.simulated_iteration_time, sim.simulated_memory
    (16.0, 16.0, [2.0, 1.0])
    """
    import time as _time

    started = _time.perf_counter()
    plan = evaluate_flush_plan(workload, plan, geometry)
    if plan.status == INFEASIBLE:
        raise SimulationError(f"the plan cannot run: {plan.reason}")
    stages = plan.stages
    S, N = len(stages), workload.microbatches
    layers = {layer.id: layer for layer in workload.layers}
    env = simpy.Environment()
    n = geometry.per_node
    adapters: dict[Any, simpy.Resource] = {}

    def adapter(device: int) -> simpy.Resource:
        key = ("node", device // n) if geometry.nic_shared else ("device", device)
        if key not in adapters:
            adapters[key] = simpy.Resource(env)
        return adapters[key]

    nic_rate = geometry.network * (n if geometry.nic_shared else 1)  # an adapter's own bandwidth

    def replica_devices(i: int, r: int) -> tuple[int, ...]:
        t = stages[i].tensor_parallel
        return stages[i].devices[r * t : (r + 1) * t]

    def transfer(src: int, dst: int, nbytes: float, stage: int | None = None):
        """The sender's part of a transfer: the fabric within a node, the adapter across nodes.

        The time spent sending counts as ``stage``'s busy time; waiting for a shared adapter does not.
        """
        if nbytes <= 0:
            return
        if src // n == dst // n:
            took = nbytes / geometry.fabric
            yield env.timeout(took)
        else:
            with adapter(src).request() as req:
                yield req
                took = nbytes / nic_rate
                yield env.timeout(took)
        if stage is not None:
            busy[stage] += took

    def read_time(src: int, dst: int, nbytes: float) -> float:
        return 0.0 if nbytes <= 0 else nbytes / (geometry.fabric if src // n == dst // n else geometry.network)

    forward_share = 1.0 / (1.0 + BACKWARD_FACTOR)
    # arrivals[(kind, stage, microbatch)]: the event that the data reached the stage's replica
    arrivals: dict[tuple[str, int, int], simpy.Event] = {}

    def arrival(kind: str, i: int, j: int) -> simpy.Event:
        key = (kind, i, j)
        if key not in arrivals:
            arrivals[key] = env.event()
        return arrivals[key]

    peak = [0] * S
    busy = [0.0] * S
    ring_time = [0.0] * S
    done_count = [0] * S
    stage_done = [env.event() for _ in range(S)]

    def memory_of(i: int, in_flight: int) -> float:
        s = stages[i]
        total = 0.0
        for v in s.nodes:
            config = layers[v].configuration(s.tensor_parallel, s.configuration[v])
            total += config.memory(in_flight)
        return total

    def replica(i: int, r: int, offset: int):
        s = stages[i]
        d = s.data_parallel
        mine = list(range(r, N, d))
        head = replica_devices(i, r)[0]
        f_time, b_time = s.compute * forward_share, s.compute * (1 - forward_share)
        half_in, half_out = s.bytes_in / 2, s.bytes_out / 2
        stash = 0
        # busy: the replica's own work (reading its inputs, computing, sending), never the waits for inputs
        for kind, k in _order(len(mine), s.in_flight):
            j = offset + mine[k]
            if kind == "F":
                if i > 0:
                    prev = stages[i - 1]
                    src = replica_devices(i - 1, mine[k] % prev.data_parallel)[0]
                    yield arrival("F", i, j)
                    yield env.timeout(read_time(src, head, half_in))
                    busy[i] += read_time(src, head, half_in)
                yield env.timeout(f_time)
                busy[i] += f_time
                stash += 1
                peak[i] = max(peak[i], stash)
                if i < S - 1:
                    nxt = stages[i + 1]
                    dst = replica_devices(i + 1, mine[k] % nxt.data_parallel)[0]
                    yield from transfer(head, dst, half_out, i)
                    arrival("F", i + 1, j).succeed()
            else:
                if i < S - 1:
                    nxt = stages[i + 1]
                    src = replica_devices(i + 1, mine[k] % nxt.data_parallel)[0]
                    yield arrival("B", i, j)
                    yield env.timeout(read_time(src, head, half_out))
                    busy[i] += read_time(src, head, half_out)
                yield env.timeout(b_time)
                busy[i] += b_time
                stash -= 1
                if i > 0:
                    prev = stages[i - 1]
                    dst = replica_devices(i - 1, mine[k] % prev.data_parallel)[0]
                    yield from transfer(head, dst, half_in, i)
                    arrival("B", i - 1, j).succeed()
        done_count[i] += 1
        if done_count[i] == d:
            stage_done[i].succeed()

    def ring(i: int):
        """The stage's gradient all-reduce: t rings of d devices, 2(d-1) lock-step steps."""
        s = stages[i]
        yield stage_done[i]
        d, t = s.data_parallel, s.tensor_parallel
        start = env.now
        if d > 1 and s.gradient_bytes > 0:
            chunk = s.gradient_bytes / d
            for _ in range(2 * (d - 1)):
                steps = []
                for k in range(t):
                    for r in range(d):
                        src = s.devices[r * t + k]
                        dst = s.devices[((r + 1) % d) * t + k]
                        steps.append(env.process(transfer(src, dst, chunk)))
                yield simpy.AllOf(env, steps)
        ring_time[i] = max(ring_time[i], env.now - start)

    iteration_times = []
    for it in range(iterations):
        t0 = env.now
        arrivals.clear()
        stage_done = [env.event() for _ in range(S)]
        done_count = [0] * S
        rings = []
        for i, s in enumerate(stages):
            for r in range(s.data_parallel):
                env.process(replica(i, r, it * N))
            rings.append(env.process(ring(i)))
        try:
            env.run(until=simpy.AllOf(env, rings))
        except RuntimeError:  # simpy: no events left before the iteration ended
            raise SimulationError("the plan's replicas wait for each other forever (a 1F1B order deadlocks)") from None
        iteration_times.append(env.now - t0)
    if not iteration_times:
        raise InternalError("simulate_plan: no iteration ran")
    predicted_memory = [st.memory for st in stages]
    simulated_memory = [memory_of(i, peak[i]) for i in range(S)]
    contention = []
    if geometry.nic_shared:
        contention.append("the devices of a node share its network adapters: transfers queue on them")
    return PlanSimulation(
        predicted_iteration_time=plan.iteration_time,
        simulated_iteration_time=iteration_times[-1],
        iterations=iterations,
        microbatches=N,
        predicted_memory=predicted_memory,
        simulated_memory=simulated_memory,
        predicted_allreduce=[st.allreduce for st in stages],
        simulated_allreduce=ring_time,
        busy=[b / iterations / max(1, st.data_parallel) for b, st in zip(busy, stages)],
        contention=contention,
        wall_seconds=_time.perf_counter() - started,
    )
