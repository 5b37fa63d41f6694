"""What every lane of the pipeline runs for one microbatch.

Problem: the engine must replay a placement (docs/model.md §6) with as little per-event
work as possible.  Everything that is the same for every microbatch is worked
out here, once: for every device, the ordered list of operations it performs
per microbatch (its nodes in topological order, forward nodes before backward
ones, with the transfers of the communication mode), cut into *tasks*, the
longest runs of operations that can run back to back without waiting for
another lane.  A task waits for *signals* (numbered) and fires signals when it
ends; the engine then only needs one timeout per task.

Communication modes (docs/model.md §2, §6):

* ``paper``: one lane per device.  Before the first node that needs ``u``'s
  output, the device spends ``c(u)`` reading it in (after the sender has
  written it out); right after computing ``u`` with a successor elsewhere, the
  sender spends ``c(u)`` writing it out, once.  Per microbatch a device is thus
  busy for exactly its evaluator load.
* ``overlap``: two lanes per device, compute and link.  The link lane performs
  the same transfers in the same order, timed by a :class:`LinkModel`, while
  the compute lane only computes.  With the default links ``overlap`` is never
  slower than ``paper``: under the training schedules every lane order is the
  ``paper`` device order restricted to that lane, so only constraints are
  dropped and, the run being a max-plus system with fixed orders, every event
  is as early or earlier; when streaming (with the default bound on
  microbatches in flight) both reach their largest per-microbatch lane work,
  and a lane's work in ``overlap`` mode (compute only, or transfers only) is
  at most the device's ``paper`` load.

Virtual stages (chunks): with ``virtual = v`` the split's non-empty devices,
in pipeline order, are ``p·v`` *stages* (the DP's chain of ``p·v`` stages, or
any split with that many), and stage ``s`` runs on rank ``stage_ranks(p, v,
placement)[s]`` (round-robin or V, see :mod:`pipesim.simulation.actions`), the
device of stage ``r`` for rank ``r``.  A rank's lane holds its chunks'
forward tasks (chunk order), then per chunk in reverse order the backward
tasks and, when the backward is split, the weight-gradient tasks: every
``(chunk, phase)`` is a contiguous range (:attr:`Lane.segments`), so a
schedule's action ``(stage, kind, microbatch)`` is one unit of tasks.  An
edge between two stages of one rank moves nothing but is still a signal, so
an order that runs a stage before its input is ready deadlocks (and is
reported) instead of silently running early.

Split backward (zero-bubble schedules): with ``weight_fraction = x`` every
backward node of time ``t`` becomes an input-gradient operation of
``(1 - x)·t`` (phase ``backward``: it sends the gradient on) and a
weight-gradient operation of ``x·t`` (phase ``weight``: it sends nothing and
may run any time later).

Gradient direction: a pipeline schedule needs a stage's backward to wait for
the next stage's.  Training graphs whose backward nodes no forward node
feeds (the paper's LayerGraphs list the gradient chain in the forward
direction) are read with their backward-to-backward edges reversed
(``mirror_backward``), each reversed edge's transfer still timed by the
original sender's ``c(u)``, so a device's load is unchanged on chains.

The guarantee: the tasks of a lane, concatenated, are exactly its operations
in order, and every task's duration is the sum of its operations' durations.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import networkx as nx

from pipesim.errors import InputError, InternalError
from pipesim.placement.graph import Graph
from pipesim.placement.split import Split, SplitError, complete_split
from pipesim.simulation.actions import stage_ranks
from pipesim.simulation.links import LinkModel

__all__ = ["COMM_MODES", "Lane", "Op", "Program", "Task", "build_program"]

COMM_MODES = ("paper", "overlap")
FORWARD, BACKWARD, WEIGHT = "forward", "backward", "weight"
#: The phases of each action kind: a full backward is its input-gradient and weight-gradient parts.
KIND_PHASES = {"F": (FORWARD,), "B": (BACKWARD, WEIGHT), "I": (BACKWARD,), "W": (WEIGHT,)}


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: ``compute`` a node, ``send`` its output or ``receive`` it."""

    kind: str
    node: int
    duration: float


@dataclass(slots=True)
class Task:
    """Operations a lane runs without a break, once per microbatch."""

    lane: int
    index: int
    phase: str
    ops: list[Op] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)
    fires: list[int] = field(default_factory=list)
    depth: int = 0
    chunk: int = 0  # which of the lane's device's chunks (virtual stages) the task belongs to

    @property
    def duration(self) -> float:
        return sum(op.duration for op in self.ops)

    @property
    def compute(self) -> float:
        return sum(op.duration for op in self.ops if op.kind == "compute")

    @property
    def comm(self) -> float:
        return sum(op.duration for op in self.ops if op.kind != "compute")


@dataclass
class Lane:
    """A sequential executor: a device's compute (and, in ``paper`` mode, its transfers) or its link."""

    index: int
    name: str
    device: str
    kind: str  # "device" or "link"
    stage: int
    tasks: list[Task]
    resource: str | None = None  # a shared link's name: transfers queue on it

    def phase_range(self, phase: str, chunk: int | None = None) -> range:
        """Indices of the lane's tasks of ``phase`` (of ``chunk``, or of every chunk); they are consecutive.

        With one chunk, ``backward`` includes the weight-gradient tasks.
        """
        phases = (phase,) if chunk is not None or phase != BACKWARD else (BACKWARD, WEIGHT)
        picked = [t.index for t in self.tasks if t.phase in phases and (chunk is None or t.chunk == chunk)]
        if picked and picked[-1] - picked[0] + 1 != len(picked):
            raise InternalError(f"lane {self.name}: the {phase} tasks are not consecutive")
        return range(picked[0], picked[-1] + 1) if picked else range(0)

    def action_range(self, chunk: int, kind: str) -> range:
        """The tasks an action of ``kind`` (F, B, I, W) on ``chunk`` runs."""
        ranges = [r for r in (self.phase_range(p, chunk) for p in KIND_PHASES[kind]) if r]
        if not ranges:
            return range(0)
        return range(ranges[0].start, ranges[-1].stop)


@dataclass
class Program:
    """The per-microbatch work of every lane, and how lanes wait for each other."""

    lanes: list[Lane]
    signals: int
    devices: list[str]  # non-empty devices, in stage order
    device_nodes: dict[str, tuple[int, ...]]
    device_class: dict[str, str]
    mode: str
    training: bool
    stage_rank: list[int] = field(default_factory=list)  # rank (index into devices) of each virtual stage
    stage_chunk: list[int] = field(default_factory=list)  # chunk of each virtual stage on its rank
    stage_nodes: list[tuple[int, ...]] = field(default_factory=list)  # nodes of each virtual stage
    weight_fraction: float | None = None  # the weight-gradient share of split backwards (None: not split)

    @property
    def virtual(self) -> int:
        """Chunks (virtual stages) per device."""
        return max(1, len(self.stage_rank) // max(1, len(self.devices)))

    @property
    def stages(self) -> int:
        return len(self.devices)

    @property
    def depth(self) -> int:
        """The largest task depth: lane hops on the longest chain of one microbatch."""
        return max((t.depth for lane in self.lanes for t in lane.tasks), default=0)

    @property
    def ops_per_microbatch(self) -> int:
        return sum(len(t.ops) for lane in self.lanes for t in lane.tasks)


def _device_name(home: tuple[str, int]) -> str:
    return f"{home[0]}[{home[1]}]"


def _stage_order(graph: Graph, device_nodes: dict[str, list[int]], where: dict[int, str], rank: dict[int, int]) -> list[str]:
    """Devices in pipeline order: a topological order of the device graph of forward edges.

    Ties (and, for non-contiguous splits, cycles) are broken by each device's
    first node in the graph's topological order.
    """
    first = {d: min(rank[v] for v in nodes) for d, nodes in device_nodes.items()}
    quotient = nx.DiGraph()
    quotient.add_nodes_from(device_nodes)
    for e in graph.edges:
        a, b = where[e.source], where[e.dest]
        if a != b and not graph.nodes[e.source].is_backward and not graph.nodes[e.dest].is_backward:
            quotient.add_edge(a, b)
    try:
        return list(nx.lexicographical_topological_sort(quotient, key=first.__getitem__))
    except nx.NetworkXUnfeasible:
        return sorted(device_nodes, key=first.__getitem__)


def build_program(
    graph: Graph,
    split: Split,
    mode: str = "paper",
    links: LinkModel | None = None,
    *,
    virtual: int = 1,
    placement: str = "round-robin",
    weight_fraction: float | None = None,
    mirror_backward: bool = False,
) -> Program:
    """Cut the placement ``split`` of ``graph`` into lanes and tasks for ``mode``.

    Parameters
    ----------
    graph, split : Graph, Split
        The workload's graph and its placement (``p·virtual`` non-empty devices
        when ``virtual > 1``: the stages, in pipeline order).
    mode : str
        ``paper`` or ``overlap`` communication.
    links : LinkModel, optional
        Link speeds for ``overlap``.
    virtual : int
        Chunks per device; the split's stages are folded onto ``p`` devices.
    placement : str
        ``round-robin`` or ``v``: which stages share a device.
    weight_fraction : float, optional
        Split every backward node into input- and weight-gradient parts, this
        share of its time in the weight part (zero-bubble schedules).
    mirror_backward : bool
        Reverse the backward edges of graphs whose backward no forward node
        feeds (see :func:`needs_mirroring`).

    Raises
    ------
    SplitError
        Nodes a device cannot run; a stage count that is not a multiple of
        ``virtual``; lanes that wait for each other within one microbatch.
    """
    if mode not in COMM_MODES:
        raise InputError(None, "comm", f"unknown communication mode {mode!r}; expected one of {', '.join(COMM_MODES)}")
    if weight_fraction is not None and not 0.0 <= weight_fraction <= 1.0:
        raise InputError(None, "weight_fraction", f"must be between 0 and 1, got {weight_fraction!r}")
    links = links or LinkModel()
    homes = complete_split(graph, split).device_of()
    stage_of = {v: _device_name(home) for v, home in homes.items()}  # the split's devices are the stages
    dag, owner = _pipeline_dag(graph) if mirror_backward and needs_mirroring(graph) else (graph.dag, {})
    index = {v: i for i, v in enumerate(graph.nodes)}
    topological = list(nx.lexicographical_topological_sort(dag, key=index.__getitem__)) if owner else graph.topological_order
    rank = {v: i for i, v in enumerate(topological)}
    stage_members: dict[str, list[int]] = {}
    for v in topological:
        stage_members.setdefault(stage_of[v], []).append(v)
    stages = _stage_order(graph, stage_members, stage_of, rank)
    if len(stages) % virtual:
        raise SplitError(f"{len(stages)} stages cannot be {virtual} chunks on each of a whole number of devices")
    p = len(stages) // virtual
    stage_rank = stage_ranks(p, virtual, placement) if virtual > 1 else list(range(p))
    order = stages[:p]  # rank r is the device of stage r (in both placements)
    chunk_of_stage: dict[str, int] = {}
    seen_chunks = [0] * p
    for k, name in enumerate(stages):
        chunk_of_stage[name] = seen_chunks[stage_rank[k]]
        seen_chunks[stage_rank[k]] += 1
    stage_index = {name: k for k, name in enumerate(stages)}
    where = {v: order[stage_rank[stage_index[stage_of[v]]]] for v in graph.nodes}  # the device (rank) of each node
    chunk = {v: chunk_of_stage[stage_of[v]] for v in graph.nodes}
    cls_of = {d: homes[stage_members[d][0]][0] for d in order}
    device_nodes: dict[str, list[int]] = {d: [] for d in order}
    for v in topological:
        device_nodes[where[v]].append(v)
    for d, nodes in device_nodes.items():
        # Forward nodes first (chunk order), then backward ones (reverse chunk order): a
        # forward node never waits for a backward one and every (chunk, phase) is contiguous.
        nodes.sort(key=lambda v: (1, -chunk[v], rank[v]) if graph.nodes[v].is_backward else (0, chunk[v], rank[v]))
    for v, node in graph.nodes.items():
        if cls_of[where[v]] not in node.time or not node.supports(cls_of[where[v]]):
            raise SplitError(f"node {v} cannot run on {where[v]}")
    stage = {d: i for i, d in enumerate(order)}

    remote = {u: any(where[w] != where[u] for w in dag.successors(u)) for u in graph.nodes}
    local_out = {u: any(where[w] == where[u] and chunk[w] != chunk[u] for w in dag.successors(u)) for u in graph.nodes}
    size: dict[int, float] = {}  # bytes of u's output: its largest out-edge tensor
    for e in graph.edges:
        if e.size is not None:
            source = e.dest if owner and graph.nodes[e.source].is_backward else e.source
            size[source] = max(size.get(source, 0.0), e.size)
    signal_ids: dict[Hashable, int] = {}

    def signal(key: Hashable) -> int:
        return signal_ids.setdefault(key, len(signal_ids))

    def cost(u: int, cls: str) -> float:
        return graph.nodes[owner.get(u, u)].transfer.get(cls, 0.0)

    lanes: list[Lane] = []

    def new_lane(name: str, device: str, kind: str, resource: str | None = None) -> Lane:
        lane = Lane(len(lanes), name, device, kind, stage[device], [], resource)
        lanes.append(lane)
        return lane

    def add(lane: Lane, phase: str, part: int, op: Op, waits: tuple[int, ...] = (), fires: tuple[int, ...] = ()) -> None:
        """Append ``op`` of chunk ``part``: a wait starts a new task, a fired signal ends one.

        A wait may join a task that has taken no time yet: waiting longer before
        nothing changes no time.
        """
        tasks = lane.tasks
        if (
            not tasks
            or tasks[-1].phase != phase
            or tasks[-1].chunk != part
            or (waits and tasks[-1].duration > 0)
            or tasks[-1].fires
        ):
            tasks.append(Task(lane.index, len(tasks), phase, chunk=part))
        task = tasks[-1]
        task.ops.append(op)
        task.waits.extend(waits)
        task.fires.extend(fires)

    split_backward = weight_fraction is not None
    for d in order:
        cls = cls_of[d]
        device = new_lane(d, d, "device")
        link = None
        if mode == "overlap":
            shared = any(d in group for group in links.shared)
            link = new_lane(f"link[{d}]", d, "link", links.link_of(d) if shared else None)
        received: set[tuple[int, int]] = set()
        weights: list[tuple[int, int]] = []  # (node, chunk) of split backwards whose weight part is pending

        def flush_weights() -> None:
            for w, part in weights:
                add(device, WEIGHT, part, Op("compute", w, graph.nodes[w].time[cls] * weight_fraction))
            weights.clear()

        for v in device_nodes[d]:
            backward = graph.nodes[v].is_backward
            phase = BACKWARD if backward else FORWARD
            part = chunk[v]
            if weights and weights[-1][1] != part:
                flush_weights()  # a chunk's weight part follows its input-gradient part
            inputs: list[int] = []  # overlap mode: the link lane's receives this node waits for
            local: list[int] = []  # outputs of this device's other chunks this node needs
            for u in sorted(dag.predecessors(v), key=rank.__getitem__):
                if where[u] == d:
                    if chunk[u] != part:
                        local.append(signal(("computed", u)))
                    continue
                if (u, part) in received:
                    continue
                received.add((u, part))
                sent = signal(("sent", u))
                if link is None:
                    add(device, phase, part, Op("receive", u, cost(u, cls)), waits=(sent,))
                else:
                    inputs.append(signal(("received", u, d, part)))
                    add(link, phase, part, Op("receive", u, links.transfer_time(d, cost(u, cls), size.get(u))),
                        waits=(sent,), fires=(inputs[-1],))
            time = graph.nodes[v].time[cls]
            if backward and split_backward:
                weights.append((v, part))
                time *= 1.0 - weight_fraction
            compute = Op("compute", v, time)
            done = (signal(("computed", v)),) if local_out[v] or (remote[v] and link is not None) else ()
            waits = tuple(inputs) + tuple(local)
            if not remote[v]:
                add(device, phase, part, compute, waits=waits, fires=done)
            elif link is None:
                add(device, phase, part, compute, waits=waits, fires=done)
                add(device, phase, part, Op("send", v, cost(v, cls)), fires=(signal(("sent", v)),))
            else:
                add(device, phase, part, compute, waits=waits, fires=done)
                add(link, phase, part, Op("send", v, links.transfer_time(d, cost(v, cls), size.get(v))),
                    waits=done, fires=(signal(("sent", v)),))
        flush_weights()

    lanes = [lane for lane in lanes if lane.tasks]  # a link with nothing to move
    for i, lane in enumerate(lanes):
        lane.index = i
        for task in lane.tasks:
            task.lane = i
    _set_depths(lanes)
    return Program(
        lanes=lanes,
        signals=len(signal_ids),
        devices=order,
        device_nodes={d: tuple(device_nodes[d]) for d in order},
        device_class={d: cls_of[d] for d in order},
        mode=mode,
        training=graph.is_training,
        stage_rank=[stage[order[stage_rank[k]]] for k in range(len(stages))],
        stage_chunk=[chunk_of_stage[name] for name in stages],
        stage_nodes=[tuple(stage_members[name]) for name in stages],
        weight_fraction=weight_fraction,
    )


def needs_mirroring(graph: Graph) -> bool:
    """Whether ``graph`` is a training graph whose backward nodes no forward node feeds.

    Such graphs (the paper's training LayerGraphs) give the gradient chain in
    the forward direction; a pipeline schedule reads it reversed.
    """
    if not graph.is_training:
        return False
    fed = any(not graph.nodes[e.source].is_backward and graph.nodes[e.dest].is_backward for e in graph.edges)
    return not fed


def _pipeline_dag(graph: Graph) -> tuple[nx.DiGraph, dict[int, int]]:
    """The graph with backward-to-backward edges reversed; ``owner[v]``: whose transfer time v's output takes.

    A reversed edge ``v -> u`` (was ``u -> v``) moves the gradient over the
    boundary ``u``'s output crossed, so it costs ``c(u)``: ``owner[v] = u``
    (the costliest such ``u`` when several).
    """
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    owner: dict[int, int] = {}
    for e in graph.edges:
        if graph.nodes[e.source].is_backward:
            dag.add_edge(e.dest, e.source)
            best = owner.get(e.dest)
            if best is None or sum(graph.nodes[e.source].transfer.values()) > sum(graph.nodes[best].transfer.values()):
                owner[e.dest] = e.source
        else:
            dag.add_edge(e.source, e.dest)
    for v in graph.backward_nodes:
        owner.setdefault(v, v)
    return dag, owner


def _set_depths(lanes: list[Lane]) -> None:
    """Depth of a task: the lane hops on the longest chain of waits that leads to it.

    A task is one deeper than the producers it waits for and no shallower than
    the task before it on its lane; the streaming schedule staggers
    microbatches by depth.
    """
    producer: dict[int, Task] = {}
    for lane in lanes:
        for task in lane.tasks:
            for sid in task.fires:
                producer[sid] = task
    dag = nx.DiGraph()
    for lane in lanes:
        for task in lane.tasks:
            key = (task.lane, task.index)
            dag.add_node(key)
            if task.index:
                dag.add_edge((task.lane, task.index - 1), key, hop=0)
            for sid in task.waits:
                if sid not in producer:
                    raise AssertionError(f"signal {sid} has no producer")
                p = producer[sid]
                dag.add_edge((p.lane, p.index), key, hop=1)
    if not nx.is_directed_acyclic_graph(dag):
        raise SplitError("the split's lanes wait for each other in a cycle within one microbatch")
    depth: dict[tuple[int, int], int] = {}
    for key in nx.topological_sort(dag):
        depth[key] = max((depth[p] + dag.edges[p, key]["hop"] for p in dag.predecessors(key)), default=0)
        lanes[key[0]].tasks[key[1]].depth = depth[key]


def folded_split(graph: Graph, split: Split, program: Program) -> Split:
    """``split`` with each device's chunks merged: the placement the program runs, one node set per device.

    With one chunk per device this is ``split`` completed; the evaluator's
    loads of the folded split are the per-device loads of the simulation.
    """
    homes = complete_split(graph, split).device_of()
    if program.virtual == 1:
        return complete_split(graph, split)
    rank_home = [homes[program.stage_nodes[r][0]] for r in range(program.stages)]
    mapping = {v: rank_home[program.stage_rank[k]] for k, nodes in enumerate(program.stage_nodes) for v in nodes}
    counts: dict[str, int] = {}
    for cls, index in homes.values():
        counts[cls] = max(counts.get(cls, 0), index + 1)
    return Split.from_mapping(mapping, counts)
