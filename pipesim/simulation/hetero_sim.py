"""Simulating a heterogeneous plan as events: mixed stages and replicas, zone links shared, what-ifs (docs/model.md §12.6).

Problem: check the §12.2 closed form of a plan over GPU types and zones
(:func:`~pipesim.placement.plan.sailor.estimate_sailor_plan`, the one cost
model every heterogeneous planner is scored by) by running the plan as
events, and ask what a straggler or a slower link would do to it.

The run (simpy):

* every stage ``s`` has ``D`` replicas; replica ``j`` of one stage talks to
  replica ``j`` of the next (the planner's pairing, §12.4); each replica runs
  ``M = ⌈gbs / (mbs·D)⌉`` microbatches in DeepSpeed's 1F1B order (``S − s − 1``
  forwards in flight, then one forward one backward, then the backwards);
* a replica's forward and backward take its GPU type's profiled times at its
  TP degree (Sailor's profiles) for its layers;
* an activation (forward) or gradient (backward) crossing a boundary keeps
  the sender busy for ``P(link, bytes)`` writing it (§12.2's ``p2p_time``: the
  tensor split over the tensor-parallel ranks), then the receiver the same
  reading it (the cost §12.2 charges both ends, without a rendezvous, so the
  order cannot deadlock), then rebuilds it (§12.2's ``rebuild_time``: a host
  buffer filled and copied to the GPU, the parts all-gathered) before the
  forward or backward that uses it; a write from one zone to another holds one of that
  direction's ``link_streams`` channels (a shared resource, default 1: Sailor
  measured the cross-zone bandwidth one GPU pair at a time, so the run takes
  it as the zones' capacity per direction): concurrent cross-zone writes queue;
* when a stage's ``D`` replicas have run their last backward, its gradients
  go round the ring (§12.2's ring time; a ring crossing zones holds their
  link), then every replica steps its optimizer; the iteration ends when
  every stage has.

What-ifs (:class:`WhatIf`): a GPU type or one replica computing ``k`` times
slower (a straggler), a zone pair's link (or the links inside a zone)
``k`` times slower.  The result holds the prediction (no what-if), the
simulated time with and without the what-ifs, and the timeline, drawn as a
Gantt chart with one panel per GPU type (:func:`draw_gantt`).

Guarantee: one stage (no transfers) gives the closed form exactly; on
pipelines the closed form charges every stage its transfers at the
slowest stage's pace and every stage the slowest ring and optimizer, so
where no zone link is contended the run is at most the closed form (tested);
queueing on a shared zone link is what the closed form does not see: it
shows as the run exceeding it, with the seconds queued per link
(``link_wait``).

Reference: docs/model.md §12.2 (the closed form), §12.6 (this run);
DeepSpeed's 1F1B TrainSchedule (instruction order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simpy

from pipesim.errors import InputError
from pipesim.placement.plan.sailor import (
    PRECISION_BYTES,
    Network,
    SailorInputs,
    estimate_sailor_plan,
    optimizer_time,
    p2p_time,
    profiled_params,
    rebuild_time,
    ring_allreduce_time,
)
from pipesim.placement.plan.sailor_format import SailorPlan

__all__ = ["HeteroSimulation", "WhatIf", "draw_gantt", "parse_whatif", "simulate_hetero_plan"]


@dataclass(frozen=True)
class WhatIf:
    """Slow-downs applied to the run: factors ≥ 1 multiply times (``< 1``: faster)."""

    gpu: Mapping[str, float] = field(default_factory=dict)  # GPU type -> compute factor
    replica: Mapping[tuple[int, int], float] = field(default_factory=dict)  # (stage, replica) -> compute factor
    link: Mapping[frozenset, float] = field(default_factory=dict)  # {zone} or {zone, zone} -> transfer factor

    def compute_factor(self, stage: int, replica: int, gpu: str) -> float:
        return self.gpu.get(gpu, 1.0) * self.replica.get((stage, replica), 1.0)

    def link_factor(self, zone_a: str, zone_b: str) -> float:
        return self.link.get(frozenset((zone_a, zone_b)), 1.0)

    def __bool__(self) -> bool:
        return bool(self.gpu or self.replica or self.link)


def parse_whatif(texts: Iterable[str], source: str = "--whatif") -> WhatIf:
    """``gpu:TYPE=K``, ``replica:STAGE.REPLICA=K``, ``link:ZONE/ZONE=K`` or ``link:ZONE=K`` (inside a zone).

    Examples
    --------
    >>> w = parse_whatif(["gpu:V100-16=1.5", "replica:1.0=2", "link:us-central1-a/us-west1-b=4"])
    >>> w.compute_factor(1, 0, "V100-16"), w.link_factor("us-west1-b", "us-central1-a")
    (3.0, 4.0)
    >>> parse_whatif(["gpu:A100=0"])
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: --whatif: gpu:A100=0: the factor must be a positive number
    """
    gpu: dict[str, float] = {}
    replica: dict[tuple[int, int], float] = {}
    link: dict[frozenset, float] = {}
    for text in texts:
        what, _, rest = text.partition(":")
        target, eq, value = rest.rpartition("=")
        try:
            factor = float(value)
        except ValueError:
            factor = math.nan
        if not eq or not target:
            raise InputError(None, source, f"{text}: expected gpu:TYPE=K, replica:STAGE.REPLICA=K or link:ZONE/ZONE=K")
        if not (factor > 0 and math.isfinite(factor)):
            raise InputError(None, source, f"{text}: the factor must be a positive number")
        if what == "gpu":
            gpu[target] = factor
        elif what == "replica":
            parts = target.split(".")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise InputError(None, source, f"{text}: a replica is STAGE.REPLICA, e.g. replica:1.0=2")
            replica[(int(parts[0]), int(parts[1]))] = factor
        elif what == "link":
            link[frozenset(target.split("/"))] = factor
        else:
            raise InputError(None, source, f"{text}: unknown what-if {what!r} (gpu, replica or link)")
    return WhatIf(gpu, replica, link)


@dataclass(frozen=True)
class Span:
    """One busy interval of one replica (``kind``: forward, backward, send, receive, rebuild, sync, optimizer)."""

    stage: int
    replica: int
    gpu: str
    kind: str
    microbatch: int
    start: float
    end: float


@dataclass
class HeteroSimulation:
    """Predicted (§12.2) against simulated iteration time, per stage, and the timeline."""

    predicted_iteration_time: float
    simulated_iteration_time: float  # with the what-ifs
    simulated_without_whatif: float
    microbatches: int
    stage_finish: list[float]  # per stage: when its optimizer step ended
    link_wait: dict[str, float]  # per zone link direction ("a->b"): seconds writes spent queueing
    spans: list[Span]
    whatif: WhatIf

    @property
    def difference(self) -> float:
        """(simulated without what-ifs − predicted) / predicted."""
        return (self.simulated_without_whatif - self.predicted_iteration_time) / self.predicted_iteration_time

    @property
    def whatif_slowdown(self) -> float:
        """Simulated with the what-ifs over without."""
        return self.simulated_iteration_time / self.simulated_without_whatif

    def to_dict(self) -> dict[str, Any]:
        return {
            "predicted_iteration_time": self.predicted_iteration_time,
            "simulated_iteration_time": self.simulated_iteration_time,
            "simulated_without_whatif": self.simulated_without_whatif,
            "relative_difference": self.difference,
            "whatif_slowdown": self.whatif_slowdown,
            "microbatches": self.microbatches,
            "stage_finish": self.stage_finish,
            "link_wait": self.link_wait,
            "whatif": {
                "gpu": dict(self.whatif.gpu),
                "replica": {f"{s}.{r}": k for (s, r), k in self.whatif.replica.items()},
                "link": {"/".join(sorted(z)): k for z, k in self.whatif.link.items()},
            },
        }


def _order(microbatches: int, warmup: int) -> list[tuple[str, int]]:
    """DeepSpeed's 1F1B order for one replica: ``warmup`` forwards, then alternate, then the backwards.

    >>> _order(3, 1)
    [('F', 0), ('F', 1), ('B', 0), ('F', 2), ('B', 1), ('B', 2)]
    """
    order = [("F", i) for i in range(min(warmup, microbatches))]
    f, b = len(order), 0
    while f < microbatches:
        order += [("F", f), ("B", b)]
        f, b = f + 1, b + 1
    order += [("B", i) for i in range(b, microbatches)]
    return order


def _run(plan: SailorPlan, inputs: SailorInputs, network: Network, whatif: WhatIf, precision: str,
         record: bool, link_streams: int) -> tuple[float, list[float], dict[str, float], list[Span], int]:
    elem = PRECISION_BYTES[precision]
    model = inputs.config.model
    pipe = plan.pipelines[0]
    n_stages = len(pipe.stages)
    dp = len(pipe.replicas[0])
    gbs = plan.gbs if plan.gbs is not None else inputs.config.global_batch_size
    micro = math.ceil(gbs / (plan.mbs * dp))
    unsplit = inputs.layer_info.of(model, 1)
    env = simpy.Environment()
    links: dict[tuple[str, str], simpy.Resource] = {}  # (from zone, to zone): links are per direction
    link_wait: dict[str, float] = {}
    spans: list[Span] = []
    arrived: dict[tuple, simpy.Event] = {}  # (kind, stage receiving, replica, microbatch) -> written

    def arrival(key):
        if key not in arrived:
            arrived[key] = env.event()
        return arrived[key]

    def transfer_time(src, dst, nbytes):
        return p2p_time(src, dst, nbytes, network) * whatif.link_factor(src.zone, dst.zone)

    def busy(s, j, gpu, kind, i, duration):
        start = env.now
        yield env.timeout(duration)
        if record:
            spans.append(Span(s, j, gpu, kind, i, start, env.now))

    def write(s, j, rep, peer, kind, i, nbytes, key):
        if rep.zone != peer.zone:  # a cross-zone write holds a channel of the link in its direction
            direction = (rep.zone, peer.zone)
            res = links.setdefault(direction, simpy.Resource(env, capacity=link_streams))
            asked = env.now
            with res.request() as req:
                yield req
                name = "->".join(direction)
                link_wait[name] = link_wait.get(name, 0.0) + env.now - asked
                yield from busy(s, j, rep.gpu, "send", i, transfer_time(rep, peer, nbytes))
        else:
            yield from busy(s, j, rep.gpu, "send", i, transfer_time(rep, peer, nbytes))
        arrival(key).succeed()

    done_backward = [[env.event() for _ in range(dp)] for _ in range(n_stages)]
    stage_finish = [0.0] * n_stages

    def replica(s, j):
        rep = pipe.replicas[s][j]
        layers = pipe.stages[s]
        times = inputs.profiles.layers(model, rep.gpu, plan.mbs, rep.tp)
        factor = whatif.compute_factor(s, j, rep.gpu)
        fwd = sum(times[l].forward for l in layers) * factor
        bwd = sum(times[l].backward for l in layers) * factor
        act_in = unsplit[pipe.stages[s - 1][-1]].output_elements * plan.mbs * elem if s > 0 else 0.0
        act_out = unsplit[layers[-1]].output_elements * plan.mbs * elem
        rebuild_in, rebuild_out = rebuild_time(rep, act_in, elem), rebuild_time(rep, act_out, elem)
        for kind, i in _order(micro, n_stages - s - 1):
            if kind == "F":
                if s > 0:
                    yield arrival(("act", s, j, i))
                    yield from busy(s, j, rep.gpu, "receive", i, transfer_time(pipe.replicas[s - 1][j], rep, act_in))
                    if rebuild_in > 0:
                        yield from busy(s, j, rep.gpu, "rebuild", i, rebuild_in)
                yield from busy(s, j, rep.gpu, "forward", i, fwd)
                if s < n_stages - 1:
                    yield from write(s, j, rep, pipe.replicas[s + 1][j], "act", i, act_out, ("act", s + 1, j, i))
            else:
                if s < n_stages - 1:
                    yield arrival(("grad", s, j, i))
                    yield from busy(s, j, rep.gpu, "receive", i, transfer_time(pipe.replicas[s + 1][j], rep, act_out))
                    if rebuild_out > 0:
                        yield from busy(s, j, rep.gpu, "rebuild", i, rebuild_out)
                yield from busy(s, j, rep.gpu, "backward", i, bwd)
                if s > 0:
                    yield from write(s, j, rep, pipe.replicas[s - 1][j], "grad", i, act_in, ("grad", s - 1, j, i))
        done_backward[s][j].succeed()

    def finish(s):
        reps = pipe.replicas[s]
        layers = pipe.stages[s]
        yield env.all_of(done_backward[s])
        grad_bytes = max(sum(inputs.layer_info.of(model, r.tp)[l].params for l in layers) for r in reps) * elem
        sync = ring_allreduce_time(grad_bytes, list(reps), network, elem)
        if sync > 0:
            zones = {r.zone for r in reps}
            sync *= max(whatif.link_factor(a, b) for a in zones for b in zones)
            held = []
            if len(zones) > 1:  # the ring crosses zones: it holds their links
                for direction in sorted({(a.zone, b.zone) for a, b in zip(reps, (*reps[1:], reps[0]))
                                         if a.zone != b.zone}):
                    res = links.setdefault(direction, simpy.Resource(env, capacity=link_streams))
                    req = res.request()
                    asked = env.now
                    yield req
                    name = "->".join(direction)
                    link_wait[name] = link_wait.get(name, 0.0) + env.now - asked
                    held.append((res, req))
            start = env.now
            yield env.timeout(sync)
            for res, req in held:
                res.release(req)
            if record:
                spans.extend(Span(s, j, r.gpu, "sync", -1, start, env.now) for j, r in enumerate(reps))
        start = env.now
        steps = []
        for j, r in enumerate(reps):
            times = inputs.profiles.layers(model, r.gpu, plan.mbs, r.tp)
            sizes = inputs.layer_info.of(model, r.tp)
            step = optimizer_time(times[layers[0]].optimizer, sum(sizes[l].params for l in layers),
                                  profiled_params(sizes))
            steps.append(step * whatif.compute_factor(s, j, r.gpu))
        yield env.timeout(max(steps))
        if record:
            spans.extend(Span(s, j, r.gpu, "optimizer", -1, start, start + steps[j]) for j, r in enumerate(reps))
        stage_finish[s] = env.now

    for s in range(n_stages):
        for j in range(dp):
            env.process(replica(s, j))
        env.process(finish(s))
    env.run()
    if not all(ev.triggered for row in done_backward for ev in row):
        raise InputError(plan.source, "pipeline_list", "the simulated pipeline did not finish (a stage waits forever)")
    return max(stage_finish), stage_finish, link_wait, spans, micro


def simulate_hetero_plan(plan: SailorPlan, inputs: SailorInputs, network: Network | None = None,
                         whatif: WhatIf | None = None, precision: str = "fp32",
                         link_streams: int = 1) -> HeteroSimulation:
    """Run ``plan`` as events and put it against its §12.2 prediction (docs/model.md §12.6).

    Parameters
    ----------
    plan : SailorPlan
        One pipeline whose stages have the same number of replicas (the
        planner's plans; Sailor's validation plans).
    inputs : SailorInputs
    network : optional
        Transfer times (a :class:`~pipesim.placement.plan.hetero.ClusterNetwork`
        for a cluster, default Sailor's measured bandwidths in ``inputs``).
    whatif : WhatIf, optional
        Stragglers and slower links for the run (the prediction stays the plan's).
    precision : {"fp32", "fp16", "bf16"}
    link_streams : int
        Transfers a link between two zones carries at once in each direction,
        each at the link's per-GPU bandwidth (default 1).

    Raises
    ------
    InputError
        Several pipelines, stages with different replica counts, or what
        :func:`~pipesim.placement.plan.sailor.estimate_sailor_plan` rejects.
    """
    whatif = whatif or WhatIf()
    if not (isinstance(link_streams, int) and link_streams >= 1):
        raise InputError(None, "--link-streams", f"must be a positive integer, got {link_streams!r}")
    network = network if network is not None else inputs.bandwidths
    estimate = estimate_sailor_plan(plan, inputs, precision, network)  # validates the plan against the inputs
    pipe = plan.pipelines[0]
    if len({len(r) for r in pipe.replicas}) > 1:
        raise InputError(plan.source, "pipeline_list[0].dp", "stages with different replica counts: the run pairs "
                         "replica j of a stage with replica j of the next (§12.6)")
    for (s, j) in whatif.replica:
        if not (0 <= s < len(pipe.stages) and 0 <= j < len(pipe.replicas[s])):
            raise InputError(None, "--whatif", f"replica:{s}.{j}: the plan has no such stage.replica")
    base, finish, waits, spans, micro = _run(plan, inputs, network, WhatIf(), precision, not whatif, link_streams)
    total = base
    if whatif:
        total, finish, waits, spans, _ = _run(plan, inputs, network, whatif, precision, True, link_streams)
    return HeteroSimulation(estimate.iteration_time, total, base, micro, finish, waits, spans, whatif)


_COLOURS = {"forward": "#4C72B0", "backward": "#DD8452", "send": "#55A868", "receive": "#8172B3",
            "rebuild": "#DA8BC3", "sync": "#C44E52", "optimizer": "#937860"}


def draw_gantt(result: HeteroSimulation, path: str | Path, title: str = "") -> Path:
    """A Gantt chart of the run, one panel per GPU type, one row per replica (``stage.replica``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    by_gpu: dict[str, list[Span]] = {}
    for sp in result.spans:
        by_gpu.setdefault(sp.gpu, []).append(sp)
    gpus = sorted(by_gpu)
    rows = {g: sorted({(sp.stage, sp.replica) for sp in by_gpu[g]}) for g in gpus}
    fig, axes = plt.subplots(len(gpus), 1, sharex=True, squeeze=False,
                             figsize=(11, 1.2 + 0.35 * sum(len(r) for r in rows.values()) + 0.6 * len(gpus)))
    for ax, g in zip(axes[:, 0], gpus):
        index = {key: n for n, key in enumerate(rows[g])}
        for kind, colour in _COLOURS.items():
            bars: dict[int, list] = {}
            for sp in by_gpu[g]:
                if sp.kind == kind:
                    bars.setdefault(index[(sp.stage, sp.replica)], []).append((sp.start, sp.end - sp.start))
            for row, xs in bars.items():
                ax.broken_barh(xs, (row - 0.4, 0.8), facecolors=colour)
        ax.set_yticks(range(len(rows[g])))
        ax.set_yticklabels([f"stage {s}.{j}" for s, j in rows[g]])
        ax.set_ylim(-0.6, len(rows[g]) - 0.4)
        ax.invert_yaxis()
        ax.set_title(g, loc="left", fontsize=9)
    axes[-1, 0].set_xlabel("seconds")
    fig.legend(handles=[Patch(color=c, label=k) for k, c in _COLOURS.items()], loc="upper right", ncol=7, fontsize=8)
    fig.suptitle(title or f"simulated {result.simulated_iteration_time:.3f} s, "
                          f"predicted {result.predicted_iteration_time:.3f} s", fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
