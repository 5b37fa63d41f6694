"""What every lane of the pipeline runs for one microbatch.

Problem: the engine must replay a placement (SPEC §6) with as little per-event
work as possible.  Everything that is the same for every microbatch is worked
out here, once: for every device, the ordered list of operations it performs
per microbatch (its nodes in topological order, forward nodes before backward
ones, with the transfers of the communication mode), cut into *tasks*, the
longest runs of operations that can run back to back without waiting for
another lane.  A task waits for *signals* (numbered) and fires signals when it
ends; the engine then only needs one timeout per task.

Communication modes (SPEC §2, §6):

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

The guarantee: the tasks of a lane, concatenated, are exactly its operations
in order, and every task's duration is the sum of its operations' durations.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import networkx as nx

from pipesim.errors import InputError
from pipesim.placement.graph import Graph
from pipesim.placement.split import Split, SplitError, complete_split
from pipesim.simulation.links import LinkModel

__all__ = ["COMM_MODES", "Lane", "Op", "Program", "Task", "build_program"]

COMM_MODES = ("paper", "overlap")
FORWARD, BACKWARD = "forward", "backward"


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

    def phase_range(self, phase: str) -> range:
        """Indices of the lane's tasks of ``phase`` (they are consecutive)."""
        picked = [t.index for t in self.tasks if t.phase == phase]
        return range(picked[0], picked[-1] + 1) if picked else range(0)


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


def build_program(graph: Graph, split: Split, mode: str = "paper", links: LinkModel | None = None) -> Program:
    """Cut the placement ``split`` of ``graph`` into lanes and tasks for ``mode``."""
    if mode not in COMM_MODES:
        raise InputError(None, "comm", f"unknown communication mode {mode!r}; expected one of {', '.join(COMM_MODES)}")
    links = links or LinkModel()
    homes = complete_split(graph, split).device_of()
    where = {v: _device_name(home) for v, home in homes.items()}
    cls_of = {v: home[0] for v, home in homes.items()}
    rank = {v: i for i, v in enumerate(graph.topological_order)}
    device_nodes: dict[str, list[int]] = {}
    for v in graph.topological_order:
        device_nodes.setdefault(where[v], []).append(v)
    for d, nodes in device_nodes.items():  # forward nodes first: a forward node never waits for a backward one
        nodes.sort(key=lambda v: (graph.nodes[v].is_backward, rank[v]))
    for v, node in graph.nodes.items():
        if cls_of[v] not in node.time or not node.supports(cls_of[v]):
            raise SplitError(f"node {v} cannot run on {where[v]}")
    order = _stage_order(graph, device_nodes, where, rank)
    stage = {d: i for i, d in enumerate(order)}

    remote = {u: any(where[w] != where[u] for w in graph.dag.successors(u)) for u in graph.nodes}
    size: dict[int, float] = {}  # bytes of u's output: its largest out-edge tensor
    for e in graph.edges:
        if e.size is not None:
            size[e.source] = max(size.get(e.source, 0.0), e.size)
    signal_ids: dict[Hashable, int] = {}

    def signal(key: Hashable) -> int:
        return signal_ids.setdefault(key, len(signal_ids))

    def cost(u: int, cls: str) -> float:
        return graph.nodes[u].transfer.get(cls, 0.0)

    lanes: list[Lane] = []

    def new_lane(name: str, device: str, kind: str, resource: str | None = None) -> Lane:
        lane = Lane(len(lanes), name, device, kind, stage[device], [], resource)
        lanes.append(lane)
        return lane

    def add(lane: Lane, phase: str, op: Op, waits: tuple[int, ...] = (), fires: tuple[int, ...] = ()) -> None:
        """Append ``op``: a wait starts a new task, a fired signal ends one.

        A wait may join a task that has taken no time yet: waiting longer before
        nothing changes no time.
        """
        tasks = lane.tasks
        if not tasks or tasks[-1].phase != phase or (waits and tasks[-1].duration > 0) or tasks[-1].fires:
            tasks.append(Task(lane.index, len(tasks), phase))
        task = tasks[-1]
        task.ops.append(op)
        task.waits.extend(waits)
        task.fires.extend(fires)

    for d in order:
        cls = cls_of[device_nodes[d][0]]
        device = new_lane(d, d, "device")
        link = None
        if mode == "overlap":
            shared = any(d in group for group in links.shared)
            link = new_lane(f"link[{d}]", d, "link", links.link_of(d) if shared else None)
        received: set[int] = set()
        for v in device_nodes[d]:
            phase = BACKWARD if graph.nodes[v].is_backward else FORWARD
            inputs: list[int] = []  # overlap mode: the link lane's receives this node waits for
            for u in sorted(graph.dag.predecessors(v), key=rank.__getitem__):
                if where[u] == d or u in received:
                    continue
                received.add(u)
                sent = signal(("sent", u))
                if link is None:
                    add(device, phase, Op("receive", u, cost(u, cls)), waits=(sent,))
                else:
                    inputs.append(signal(("received", u, d)))
                    add(link, phase, Op("receive", u, links.transfer_time(d, cost(u, cls), size.get(u))),
                        waits=(sent,), fires=(inputs[-1],))
            compute = Op("compute", v, graph.nodes[v].time[cls])
            if not remote[v]:
                add(device, phase, compute, waits=tuple(inputs))
            elif link is None:
                add(device, phase, compute)
                add(device, phase, Op("send", v, cost(v, cls)), fires=(signal(("sent", v)),))
            else:
                done = signal(("computed", v))
                add(device, phase, compute, waits=tuple(inputs), fires=(done,))
                add(link, phase, Op("send", v, links.transfer_time(d, cost(v, cls), size.get(v))),
                    waits=(done,), fires=(signal(("sent", v)),))

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
        device_class={d: cls_of[device_nodes[d][0]] for d in order},
        mode=mode,
        training=graph.is_training,
    )


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
