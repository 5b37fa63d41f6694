"""Measurements of a simulated run (ISSUE 6, docs/model.md §6).

* **Steady-state time-per-sample.**  Streaming and asynchronous 1F1B: sort the
  microbatch completion times ``C``; the first quarter of the microbatches is
  warm-up (the pipeline filling), the last quarter is drain (it emptying), and
  the time-per-sample is the slope over the rest:
  ``(C[N - 1 - N//4] - C[N//4]) / (N - 1 - 2*(N//4))``.  Flushed schedules
  restart from an empty pipeline every minibatch, so every full minibatch is
  alike: time-per-sample is a full minibatch's duration (flush to flush)
  divided by its ``m`` microbatches.
* **Never below the bottleneck.**  Every lane (a device, or a link in
  ``overlap`` mode) must do its busy time per microbatch, so no schedule runs
  faster than the busiest lane: a window estimate below that bound (a window
  that caught work done during the warm-up) is raised to it, and the run is
  marked unsettled.
* **Settled?**  The estimate has settled when the slopes of the two halves of
  the steady window agree within :data:`SETTLED` (flushed schedules: when the
  full minibatches last the same within it) and the window holds at least
  ``2 × stages`` microbatches; otherwise ``settled`` is false and a warning
  says how many microbatches would help.
* **Latency** of a microbatch: from the start of its first task to its
  completion (mean, p50, p99 over the steady-state microbatches; all of them
  for flushed schedules) — latency *under load*, which by Little's law is
  about the number in flight × the time per sample.  ``latency_alone`` is
  the first microbatch's, through an empty pipeline.  In ``overlap`` mode
  every link is a lane of its own, so the stream keeps more microbatches in
  flight (depth + 1 counts the link hops) to keep them all busy, and the
  loaded latency grows with that window (on imported GPT-2 and ResNet-50
  splits, whose many transfers make the overlap program deep, 2.4–2.6× the
  paper mode's) while the time per sample does not; ``latency_alone``
  compares the modes like for like.
* **Per device**: compute time, communication time (on the device in ``paper``
  mode, on its link in ``overlap`` mode), busy time (what occupies the device
  itself), idle = makespan - busy, utilisation = busy / makespan.
* **Bubble fraction**: the share of the run lost to filling and draining the
  pipeline, measured against the bottleneck lane's busy time ``T`` per
  microbatch: ``(span - m·T) / span`` for each flushed minibatch of ``m``
  microbatches, ``(makespan - N·T) / makespan`` for the other schedules.  It is
  never negative, counts fill and drain for every schedule, and does not
  charge imbalance (a device with little work, e.g. a host core holding one
  small node, idles by design: that is its utilisation, not a bubble).  On a
  uniform chain it is the usual ``(P-1)/(M+P-1)``.
* **In flight / memory**: a microbatch is in flight on a device from the start
  of its first task there to the end of its last (for zero-bubble schedules
  that is its last weight-gradient task: activations are held until ``W``).
  Memory = resident memory (the sum of the device's node memories: weights
  and whatever else the workload counts per node, which includes one
  microbatch's stashed activations) + the stashed activations of every
  further chunk and microbatch in flight (per forward node the largest tensor
  its backward nodes read, :mod:`pipesim.placement.activations`, the one
  definition the solvers share; a chunk holds them from its first forward
  task to its last backward or weight task), at its peak over the run.  Where the total exceeds the
  device's capacity the first such time is flagged.
* **Iteration time** (flushed schedules): the mean duration of a full
  minibatch, flush to flush.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipesim.placement.activations import node_stash, stash_bytes
from pipesim.placement.devices import DeviceClass
from pipesim.placement.evaluate import SplitEvaluation
from pipesim.placement.graph import Graph
from pipesim.simulation.engine import Run
from pipesim.simulation.schedules import FLUSHED

__all__ = ["SETTLED", "DeviceStats", "Measurements", "Overflow", "measure"]

#: Relative agreement of the two halves of the steady window for a settled estimate.
SETTLED = 5e-3


@dataclass(frozen=True)
class Overflow:
    """Memory above capacity on ``device`` from ``time`` on."""

    device: str
    time: float
    memory: float
    capacity: float

    def to_dict(self) -> dict:
        """The fields as a JSON object."""
        return {"device": self.device, "time": self.time, "memory": self.memory, "capacity": self.capacity}


@dataclass(frozen=True)
class DeviceStats:
    """One device's figures over a run: loads per microbatch, totals, utilisation, in flight and memory."""

    device: str
    stage: int
    predicted_load: float
    simulated_load: float  # busy time per microbatch
    compute: float
    comm: float
    busy: float
    idle: float
    utilisation: float
    peak_in_flight: int
    resident_memory: float
    activation_memory: float  # stashed bytes of one microbatch over all of the device's chunks
    peak_memory: float
    capacity: float
    peak_activation: float = 0.0  # the most stashed bytes at one time


    def to_dict(self) -> dict:
        """The fields as JSON values (an unlimited capacity is ``None``)."""
        data = dict(self.__dict__)
        data["capacity"] = None if math.isinf(self.capacity) else self.capacity
        return data


@dataclass(frozen=True)
class Measurements:
    """What a run measured: steady-state time per sample (never below ``bottleneck_time``), latency
    under load and alone, bubble (fill and drain), per-device statistics, memory overflows, whether the
    estimate ``settled`` and the ``warnings`` that say why not; see the module docstring."""

    time_per_sample: float
    latency_mean: float
    latency_p50: float
    latency_p99: float
    makespan: float
    bubble_fraction: float
    minibatch_times: tuple[float, ...]
    minibatch_bubble_fractions: tuple[float, ...]
    devices: tuple[DeviceStats, ...]
    overflows: tuple[Overflow, ...]
    assumptions: tuple[str, ...]
    iteration_time: float | None = None
    latency_alone: float = 0.0
    settled: bool = True
    bottleneck_time: float = 0.0  # the busiest lane's busy time per microbatch: a lower bound on time per sample
    warnings: tuple[str, ...] = ()


def _window(n: int) -> tuple[int, int]:
    """The steady-state microbatches: warm-up (first quarter) and drain (last quarter) excluded."""
    lo, hi = n // 4, n - 1 - n // 4
    return (lo, hi) if hi > lo else (0, n - 1)


def _device_intervals(run: Run, lanes: Sequence[int], chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per microbatch, the first start and the last end of its tasks (of ``chunk``, or all) on these lanes."""
    first = np.full(run.microbatches, np.inf)
    last = np.zeros(run.microbatches)
    for index in lanes:
        rec = np.asarray(run.records[index], dtype=float).reshape(-1, 3)
        tasks = run.program.lanes[index].tasks
        if chunk is not None and len(rec):
            rec = rec[np.array([tasks[int(i)].chunk == chunk for i in rec[:, 2]])]
        if not len(rec):
            continue
        durations = np.array([t.duration for t in tasks])
        mb = rec[:, 1].astype(int)
        np.minimum.at(first, mb, rec[:, 0])
        np.maximum.at(last, mb, rec[:, 0] + durations[rec[:, 2].astype(int)])
    return first, last


def _stash_profile(intervals: Sequence[tuple[np.ndarray, np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Times and stashed bytes after each change, for chunks holding ``size`` bytes per microbatch in flight."""
    times, deltas = [], []
    for first, last, size in intervals:
        held = np.isfinite(first)
        times += [first[held], last[held]]
        deltas += [np.full(held.sum(), size), np.full(held.sum(), -size)]
    if not times:
        return np.zeros(0), np.zeros(0)
    t, d = np.concatenate(times), np.concatenate(deltas)
    order = np.lexsort((d, t))  # at equal times a release comes before a new stash
    return t[order], np.cumsum(d[order])


def _in_flight(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Times and in-flight counts after each change (an end before a start at equal times)."""
    times = np.concatenate([first, last])
    deltas = np.concatenate([np.ones(len(first), int), -np.ones(len(last), int)])
    order = np.lexsort((deltas, times))
    return times[order], np.cumsum(deltas[order])


def measure(run: Run, schedule: str, minibatch: int, graph: Graph, devices: Sequence[DeviceClass],
            evaluation: SplitEvaluation) -> Measurements:
    """The measurements of ``run`` (definitions in the module docstring).

    Parameters
    ----------
    run : Run
        The engine's record of every task.
    schedule : str
        The schedule it ran (flushed schedules are measured per minibatch).
    minibatch : int
        Microbatches per minibatch (flushed schedules; else the run's count).
    graph : Graph
        The graph, for node memories and the stashed activations' sizes.
    devices : sequence of DeviceClass
        The device classes, for capacities.
    evaluation : SplitEvaluation
        The evaluator's per-device loads (the prediction beside each device).

    Returns
    -------
    Measurements
    """
    program, n = run.program, run.microbatches
    completion = np.asarray(run.completion)
    starts = np.full(n, np.inf)
    for rec in run.records:
        rec = np.asarray(rec, dtype=float).reshape(-1, 3)
        np.minimum.at(starts, rec[:, 1].astype(int), rec[:, 0])
    latency = completion - starts

    minibatch_times: list[float] = []
    busy_per_microbatch = {
        d: sum(t.duration if lane.kind == "device" else 0.0 for lane in program.lanes if lane.device == d for t in lane.tasks)
        for d in program.devices
    }
    # every lane (device or link) does its tasks once per microbatch: the busiest bounds the period
    bottleneck = max((sum(t.duration for t in lane.tasks) for lane in program.lanes), default=0.0)
    stages = program.stages
    warnings: list[str] = []
    tolerance = SETTLED * max(bottleneck, 1e-300)
    if schedule in FLUSHED:
        ends = [completion[b : b + minibatch].max() for b in range(0, n, minibatch)]
        minibatch_times = [end - begin for begin, end in zip([0.0, *ends[:-1]], ends)]
        sizes = [min(minibatch, n - b) for b in range(0, n, minibatch)]
        full = [t for t, size in zip(minibatch_times, sizes) if size == minibatch] or minibatch_times[:1]
        iteration = float(np.mean(full))
        tps = iteration / min(minibatch, n)
        bubbles = [max(0.0, 1.0 - size * bottleneck / t) if t > 0 else 0.0 for t, size in zip(minibatch_times, sizes)]
        bubble = max(0.0, 1.0 - min(minibatch, n) * bottleneck / iteration) if iteration > 0 else 0.0
        steady = latency
        settled = len(full) >= 2 and max(full) - min(full) <= SETTLED * iteration
        if not settled:
            warnings.append(f"not settled: {len(full)} full minibatch(es) of {minibatch}"
                            + ("" if len(full) < 2 else f" lasting {min(full):.6g} to {max(full):.6g}")
                            + f"; run at least {max(2, len(full) + 1) * minibatch} microbatches")
    else:
        ordered = np.sort(completion)
        lo, hi = _window(n)
        tps = float((ordered[hi] - ordered[lo]) / (hi - lo)) if hi > lo else float(ordered[-1]) / max(n, 1)
        mid = (lo + hi) // 2
        halves = [(ordered[b] - ordered[a]) / (b - a) for a, b in ((lo, mid), (mid, hi)) if b > a]
        settled = hi - lo >= 2 * stages and len(halves) == 2 and abs(halves[0] - halves[1]) <= SETTLED * max(halves)
        if tps < bottleneck - tolerance:
            warnings.append(f"the window's estimate {tps:.6g} is below the busiest lane's {bottleneck:.6g} per "
                            "microbatch, which no run can beat: reported at that bound")
            settled = False
        tps = max(tps, bottleneck)
        if not settled:
            warnings.append(f"not settled over {n} microbatches (steady-window halves: "
                            + ", ".join(f"{h:.6g}" for h in halves) + f"); run more, e.g. {max(4 * n, 40 * stages)}")
        bubbles = []
        steady = latency[lo : hi + 1]
        iteration = None
        bubble = max(0.0, 1.0 - n * bottleneck / run.makespan) if run.makespan > 0 else 0.0

    capacity = {dc.name: dc.memory for dc in devices}
    predicted = {d.name: d.load for d in evaluation.devices}
    sizes_known = True
    stash_of = node_stash(graph)
    stats: list[DeviceStats] = []
    overflows: list[Overflow] = []
    makespan = run.makespan
    for d in program.devices:
        lanes = [lane for lane in program.lanes if lane.device == d]
        compute = n * sum(t.compute for lane in lanes for t in lane.tasks)
        comm = n * sum(t.comm for lane in lanes for t in lane.tasks)
        busy = n * busy_per_microbatch[d]
        indices = [lane.index for lane in lanes]
        first, last = _device_intervals(run, indices)
        times, counts = _in_flight(first, last)
        peak = int(counts.max()) if len(counts) else 0
        nodes = set(program.device_nodes[d])
        resident = sum(graph.nodes[v].memory for v in nodes)
        rank = program.devices.index(d)
        chunks = [k for k, r in enumerate(program.stage_rank) if r == rank] or [None]
        stashes = []
        activation = 0.0
        for c, k in enumerate(chunks):
            members = set(program.stage_nodes[k]) if k is not None else nodes
            size, known = stash_bytes(graph, members, stash_of)
            sizes_known &= known
            activation += size
            if size > 0:
                stashes.append((*(_device_intervals(run, indices, c) if len(chunks) > 1 else (first, last)), size))
        stash_times, stashed = _stash_profile(stashes)
        peak_activation = float(stashed.max()) if len(stashed) else 0.0
        # the node memories count one microbatch's stash already (placement.activations): memory over time
        # is the resident part plus what is stashed beyond that one microbatch
        beyond = np.maximum(stashed - activation, 0.0)
        peak_memory = resident + (float(beyond.max()) if len(beyond) else 0.0)
        cap = capacity[program.device_class[d]]
        if resident > cap:
            overflows.append(Overflow(d, float(first.min()), resident, cap))
        elif peak_memory > cap:
            at = int(np.argmax(resident + beyond > cap))
            overflows.append(Overflow(d, float(stash_times[at]), resident + float(beyond[at]), cap))
        stats.append(
            DeviceStats(
                device=d,
                stage=lanes[0].stage,
                predicted_load=predicted.get(d, 0.0),
                simulated_load=busy_per_microbatch[d],
                compute=compute,
                comm=comm,
                busy=busy,
                idle=makespan - busy,
                utilisation=busy / makespan if makespan > 0 else 0.0,
                peak_in_flight=peak,
                resident_memory=resident,
                activation_memory=activation,
                peak_memory=peak_memory,
                capacity=cap,
                peak_activation=peak_activation,
            )
        )

    assumptions = [
        "memory = the device's node memories (resident; they count one microbatch's stashed activations) + the "
        "stashed activations of each further microbatch in flight (per forward node the largest tensor a backward "
        "node reads, sized by the edges' tensor sizes: pipesim.placement.activations)"
    ]
    if not graph.is_training:
        assumptions.append("inference stashes nothing: transfers go through host memory, so memory is the resident part")
    elif not sizes_known:
        assumptions.append("some forward-to-backward edges give no tensor size: those activations count as 0 bytes")

    def pct(q: float) -> float:
        return float(np.percentile(steady, q)) if len(steady) else 0.0

    return Measurements(
        time_per_sample=tps,
        latency_mean=float(np.mean(steady)) if len(steady) else 0.0,
        latency_p50=pct(50),
        latency_p99=pct(99),
        makespan=makespan,
        bubble_fraction=bubble,
        minibatch_times=tuple(float(t) for t in minibatch_times),
        minibatch_bubble_fractions=tuple(float(b) for b in bubbles),
        devices=tuple(stats),
        overflows=tuple(overflows),
        assumptions=tuple(assumptions),
        iteration_time=iteration,
        latency_alone=float(latency[0]) if len(latency) else 0.0,
        settled=bool(settled),
        bottleneck_time=float(bottleneck),
        warnings=tuple(warnings),
    )
