"""Costs measured with ONNX Runtime: a workload whose devices are this machine's cores.

:func:`profile_model` runs the prepared model (the importer's model:
shapes fixed at ``batch``, shape subgraphs folded, so node ``i`` is workload
node ``i``) with ONNX Runtime's profiler on, pinned to one core, ``warmup``
runs then ``runs`` more, and takes each node's **median** kernel time.  The
profiler's bookkeeping lengthens each node it times by a few microseconds:
what it adds per node is measured on a probe chain and subtracted from each
timed node, down to no less than the probe's unprofiled per-node cost
(:func:`profiler_overhead`, reported); how much the medians still
exceed the CPU time of an unprofiled run is reported (``profiler_excess``),
never spread over the nodes.  The machine's
conditions around the measurement (a reference kernel before and after,
load, steal: :mod:`pipesim.runtime.trust`) say whether it can be trusted.
:func:`measure_handoff` measures, the way :mod:`pipesim.runtime.pipeline`
moves tensors, what handing a tensor to the next stage process costs:

* ``bandwidth``: copying into a shared-memory slot (``memcpy``), fitted on
  several sizes;
* ``overhead``: one extra ``session.run`` call (a stage's fixed cost per
  microbatch: binding inputs, allocating outputs, the semaphores);
* ``wakeup``: half a semaphore ping-pong between two pinned processes (the
  delay before the next stage starts; latency, not busy time).

:func:`profiled_workload` turns both into a workload: one device class
``cpu`` with one device per usable core, node time = measured median (ms),
node transfer ``c(u) = overhead + bytes / bandwidth`` (the evaluator charges
it to the sending and to the receiving stage, docs/model.md §2's "calls" model).  The
roofline's times for the same nodes (this class, with the ``cpu`` preset
device, and every class of a reference system such as ``a100x8``) are written
beside each node as ``roofline``, for comparison and for
``pipesim hardware calibrate``.

Timings depend on what else runs on the machine: the load average at the
time of measurement (``os.getloadavg``) and the share of its core the runs
had (CPU time over wall time of whole runs) are recorded with every profile.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from pipesim.errors import SimulationError
from pipesim.placement.interrupt import children_ignore_ctrl_c
from pipesim.hardware.catalog import builtin_catalog, load_system
from pipesim.hardware.devices import CPU_KIND, Device, DeviceGroup, Link, System
from pipesim.placement.formats import dumps
from pipesim.output import write_text
from pipesim.placement.graph import Graph
from pipesim.placement.workload import Workload
from pipesim.runtime.channel import Channel, TensorSpec
from pipesim.runtime.trust import Conditions, measure_conditions
from pipesim.runtime.session import (
    make_session,
    pin_to_core,
    random_inputs,
    usable_cores,
)
from pipesim.workloads.lower import TIME_UNIT, lower
from pipesim.workloads.native import workload_to_native
from pipesim.workloads.onnx_import import graph_batch, import_onnx, prepare_onnx
from pipesim.workloads.opgraph import OpGraph

__all__ = [
    "Handoff",
    "NodeTime",
    "Profile",
    "load_average",
    "measure_handoff",
    "profile_model",
    "profile_to_workload",
    "profiled_workload",
    "write_profile",
]

#: Format tag of the ``profile`` section of a profiled workload file.
PROFILE_FORMAT = "pipesim-profile"


def load_average() -> float:
    """The 1-minute load average (what else is running while we time)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


@dataclass(frozen=True)
class NodeTime:
    index: int
    name: str
    op_type: str
    median: float  # seconds
    samples: int
    ort_node: str = ""  # the optimised graph's node whose time this node shares ("" unoptimised, or folded away)


@dataclass
class Handoff:
    """What moving one tensor to the next stage process costs (seconds, bytes/s).

    Examples
    --------
    >>> h = Handoff(overhead=5e-6, bandwidth=1e10, wakeup=1e-5)
    >>> h.cost(1e6), h.cost(0), h.link().latency
    (0.000105, 0.0, 5e-06)
    """

    overhead: float
    bandwidth: float
    wakeup: float

    def cost(self, nbytes: float) -> float:
        """``overhead + nbytes / bandwidth`` (nothing for nothing)."""
        return self.overhead + nbytes / self.bandwidth if nbytes else 0.0

    def link(self) -> Link:
        return Link("process-handoff", self.bandwidth, self.overhead,
                    "measured: shared-memory copy + one session.run call per microbatch")


@dataclass
class Profile:
    model: str
    batch: int
    threads: int
    runs: int
    nodes: list[NodeTime]
    run_wall: float  # median seconds of one whole-model session.run, profiler off
    load_before: float
    load_after: float
    handoff: Handoff | None = None
    cores: list[int] = field(default_factory=list)
    run_cpu: float = 0.0  # median CPU seconds of the same runs: run_wall / run_cpu > 1 means others held the core
    optimized: bool = True  # ONNX Runtime's graph optimisations on (the deployed graph) or off (node for node)
    ort_nodes: int = 0  # nodes of the graph ONNX Runtime ran (fewer than ``nodes`` when it fused some)
    conditions: Conditions | None = None  # contention and drift around the measurement (pipesim.runtime.trust)
    profiler_overhead: float = 0.0  # seconds of profiler bookkeeping per node, measured and subtracted

    @property
    def profiler_excess(self) -> float:
        """Seconds by which the node medians exceed an unprofiled run's CPU time (the profiler's bookkeeping)."""
        return self.node_sum - self.run_cpu

    @property
    def share(self) -> float:
        """The share of the core the runs had (CPU time over wall time; 1.0 on an idle machine)."""
        return min(1.0, self.run_cpu / self.run_wall) if self.run_wall else 1.0

    @property
    def node_sum(self) -> float:
        return sum(n.median for n in self.nodes)


def _node_durations(trace_path: str, warmup: int) -> dict[str, list[float]]:
    events = json.loads(Path(trace_path).read_text())
    out: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            out.setdefault(e["name"][: -len("_kernel_time")], []).append(e["dur"] * 1e-6)
    return {name: d[warmup:] or d for name, d in out.items()}


def attribute_fused(
    model: onnx.ModelProto,
    optimized: onnx.ModelProto,
    times: dict[str, float],
    weights: list[float],
) -> tuple[list[float], list[str]]:
    """Each node of ``model``: its share of the measured time of the optimised node(s) covering it.

    ONNX Runtime's optimised graph keeps the names of the tensors that leave a
    fusion and drops those inside it.  An optimised node *covers* the model
    nodes that produce its outputs and, walking back, every model node whose
    output the optimised graph no longer has (``MatMul -> Add`` fused into a
    ``Gemm`` covers both).  A node that writes only new tensors (a layout
    ``Reshape`` or ``ReorderInput``) passes its time to the first node after it
    that covers model nodes.  Each optimised node's time is shared among the
    nodes it covers in proportion to ``weights`` (their roofline times), so
    the model's total is the optimised graph's; a model node nothing covers
    (folded away) gets nothing.

    Returns
    -------
    times, covering
        Per model node, seconds and the name of the optimised node it was
        attributed to (``""``: none).

    Examples
    --------
    >>> from onnx import helper
    >>> mm = helper.make_node("MatMul", ["x", "w"], ["m"], name="mm")
    >>> add = helper.make_node("Add", ["m", "b"], ["y"], name="add")
    >>> model = helper.make_model(helper.make_graph([mm, add], "g", [], []))
    >>> gemm = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fused")
    >>> attribute_fused(model, helper.make_model(helper.make_graph([gemm], "g", [], [])), {"fused": 3.0}, [2.0, 1.0])
    ([2.0, 1.0], ['fused', 'fused'])
    """
    nodes = list(model.graph.node)
    producer = {y: i for i, n in enumerate(nodes) for y in n.output if y}
    opt = list(optimized.graph.node)
    present = {x for n in opt for x in (*n.input, *n.output) if x}
    present |= {v.name for v in (*optimized.graph.input, *optimized.graph.output)} | {t.name for t in optimized.graph.initializer}
    consumers: dict[str, list[int]] = {}
    for j, n in enumerate(opt):
        for x in n.input:
            consumers.setdefault(x, []).append(j)
    cover: list[set[int]] = []
    for n in opt:
        seen: set[int] = set()
        stack = [producer[y] for y in n.output if y in producer]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            stack.extend(producer[x] for x in nodes[v].input if x in producer and x not in present)
        cover.append(seen)
    pooled: dict[int, float] = {}
    for j, n in enumerate(opt):
        target, frontier, visited = (j if cover[j] else None), [j], {j}
        while target is None and frontier:  # forward to the first node that covers model nodes
            nxt = []
            for k in frontier:
                for y in opt[k].output:
                    for c in consumers.get(y, []):
                        if c not in visited:
                            visited.add(c)
                            nxt.append(c)
            target = next((c for c in nxt if cover[c]), None)
            frontier = nxt
        if target is not None:
            pooled[target] = pooled.get(target, 0.0) + times.get(n.name, 0.0)
    out, covering = [0.0] * len(nodes), [""] * len(nodes)
    for k, t in pooled.items():
        members = sorted(cover[k])
        total = sum(weights[v] for v in members)
        for v in members:
            out[v] += t * (weights[v] / total if total > 0 else 1 / len(members))
            covering[v] = opt[k].name
    return out, covering


def profile_model(
    source: str | Path | onnx.ModelProto,
    *,
    batch: int = 1,
    threads: int = 1,
    runs: int = 20,
    warmup: int = 3,
    core: int | None = None,
    seed: int = 0,
    optimize: bool = True,
    ops: OpGraph | None = None,
    check_conditions: bool = True,
    subtract_profiler: bool = True,
) -> tuple[Profile, onnx.ModelProto]:
    """Per-node median times of the prepared model (see the module docstring); and that model.

    Parameters
    ----------
    source : path or onnx.ModelProto
    batch : int
        Value of the symbolic input dimensions.
    threads : int
        ONNX Runtime intra-op threads (1: one stage is one core).
    runs, warmup : int
        Timed runs (each node's median is kept) after ``warmup`` untimed ones.
    core : int, optional
        The core to pin to (default: this process's first usable core); the
        process is unpinned after.
    seed : int
        Seed of the random inputs.
    optimize : bool
        Time the graph ONNX Runtime optimises (its default, what is deployed)
        and share each optimised node's time among the model nodes it covers
        (:func:`attribute_fused`); ``False``: the graph node for node.
    ops : OpGraph, optional
        The model's imported operators, whose roofline times share a fused
        node's time (default: imported here).
    check_conditions : bool
        Time the reference kernel and read load and steal before and after
        (:mod:`pipesim.runtime.trust`): the profile says whether it can be trusted.
    subtract_profiler : bool
        Subtract from each timed node the profiler's bookkeeping per node,
        measured by :func:`profiler_overhead` (reported in the profile).

    Returns
    -------
    Profile, onnx.ModelProto
        The profile (its ``handoff`` unset: :func:`measure_handoff`) and the
        prepared model whose node ``i`` is profile node ``i``.

    Raises
    ------
    InputError
        A model ONNX's checker or ONNX Runtime rejects.
    MissingExtraError
        ONNX Runtime is not installed.
    """
    model = prepare_onnx(source, batch=batch)
    name = Path(source).stem if isinstance(source, (str, Path)) else model.graph.name or "onnx"
    allowed = usable_cores()
    core = allowed[0] if core is None else core
    feeds = random_inputs(model, seed)
    load_before = load_average()
    try:
        pin_to_core(core)
        conditions = measure_conditions(len(allowed)) if check_conditions else None
        with tempfile.TemporaryDirectory() as tmp:
            optimized_path = Path(tmp) / "optimized.onnx" if optimize else None
            session = make_session(model, threads=threads, profile_prefix=Path(tmp) / "ort", optimize=optimize,
                                   optimized_path=optimized_path)
            for _ in range(warmup + runs):
                session.run(None, feeds)
            durations = _node_durations(session.end_profiling(), warmup)
            optimized = onnx.load(str(optimized_path), load_external_data=False) if optimize else model
        plain = make_session(model, threads=threads, optimize=optimize)
        for _ in range(warmup):
            plain.run(None, feeds)
        walls, cpus = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.thread_time()
            plain.run(None, feeds)
            walls.append(time.perf_counter() - t)
            cpus.append(time.thread_time() - c)
        overhead, floor = profiler_overhead(threads=threads, runs=runs) if subtract_profiler else (0.0, 0.0)
        if conditions is not None:
            conditions.finish()
    finally:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(allowed))
    # The profiler's own bookkeeping lengthens every node it times by a few microseconds, so the medians add up
    # to more than an unprofiled run.  What one node's bookkeeping costs is measured on a probe and subtracted
    # from each timed node (Profile.profiler_overhead); what remains of the difference is reported, never spread
    # over the nodes: an even correction collapsed small operators when the machine was loaded (issue 22, item 6).
    nodes = []
    if optimize:
        if ops is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the importer's warnings are for graph import to show
                ops = import_onnx(model, batch=batch, check=False)
        weights = [n.time["cpu"] for n in lower(ops, this_machine(1, None)).graph.nodes.values()]
        medians = {name: max(statistics.median(d) - overhead, min(floor, statistics.median(d)))
                   for name, d in durations.items() if d}
        times, covering = attribute_fused(model, optimized, medians, weights)
        for i, node in enumerate(model.graph.node):
            nodes.append(NodeTime(i, node.name, node.op_type, times[i], len(durations.get(covering[i], [])),
                                  covering[i]))
    else:
        for i, node in enumerate(model.graph.node):
            d = durations.get(node.name, [])
            median = statistics.median(d) if d else 0.0
            nodes.append(NodeTime(i, node.name, node.op_type, max(median - overhead, min(floor, median)), len(d)))
    # a model exported at a fixed batch runs that many samples per call whatever ``batch`` says
    profile = Profile(name, graph_batch(model, batch), threads, runs, nodes, statistics.median(walls), load_before, load_average(),
                      cores=allowed, run_cpu=statistics.median(cpus), optimized=optimize,
                      ort_nodes=len(optimized.graph.node), conditions=conditions, profiler_overhead=overhead)
    return profile, model


#: Nodes of the probe chain of :func:`profiler_overhead`.
PROBE_NODES = 64


def profiler_overhead(*, threads: int = 1, runs: int = 20) -> tuple[float, float]:
    """Seconds ONNX Runtime's profiler adds to each node it times, and the least a node costs unprofiled.

    A chain of :data:`PROBE_NODES` ``Neg`` nodes on one element does almost
    no work: the difference between the sum of its profiled node medians and
    the CPU time of an unprofiled run, per node, is the profiler's bookkeeping
    (``0`` if negative); the unprofiled run's CPU time per node is what any
    node costs at least (the executor's per-node work), the floor of a
    corrected node.  Measured in the calling thread.
    """
    from onnx import TensorProto, helper

    names = ["x"] + [f"t{i}" for i in range(PROBE_NODES)]
    nodes = [helper.make_node("Neg", [names[i]], [names[i + 1]], name=f"neg{i}") for i in range(PROBE_NODES)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [1])
    probe = helper.make_model(helper.make_graph(nodes, "probe", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    probe.ir_version = 8
    feed = {"x": np.ones(1, np.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        session = make_session(probe, threads=threads, profile_prefix=Path(tmp) / "probe", optimize=False)
        for _ in range(runs + 3):
            session.run(None, feed)
        durations = _node_durations(session.end_profiling(), 3)
    plain = make_session(probe, threads=threads, optimize=False)
    cpus = []
    for _ in range(runs + 3):
        c = time.thread_time()
        plain.run(None, feed)
        cpus.append(time.thread_time() - c)
    profiled = sum(statistics.median(d) for d in durations.values() if d)
    plain_cpu = statistics.median(cpus[3:])
    return max(0.0, (profiled - plain_cpu) / PROBE_NODES), plain_cpu / PROBE_NODES


def _pong(ping, pong, rounds: int, core: int | None) -> None:
    pin_to_core(core)
    for _ in range(rounds):
        ping.acquire()
        pong.release()


def measure_handoff(*, cores: list[int] | None = None, rounds: int = 200) -> Handoff:
    """Measure the stage hand-off the way the pipeline does it (see the module docstring)."""
    cores = cores or usable_cores()
    # shared-memory copy bandwidth, on sizes from 64 KiB to 8 MiB (least squares of t = a + b / bw)
    ctx = mp.get_context("spawn")
    sizes = [1 << 16, 1 << 19, 1 << 21, 1 << 23]
    xs, ys = [], []
    for size in sizes:
        ch = Channel(ctx, [TensorSpec("t", (size // 4,), "float32")], slots=1)
        src = np.random.default_rng(0).random(size // 4).astype(np.float32)
        times = []
        for _ in range(15):
            t = time.perf_counter()
            ch.put({"t": src})
            times.append(time.perf_counter() - t)
            ch.get()
            ch.release()
        ch.close()
        xs.append(size)
        ys.append(statistics.median(times[3:]))
    slope = float(np.polyfit(xs, ys, 1)[0])
    bandwidth = 1 / slope if slope > 0 else xs[-1] / ys[-1]
    # one more session.run per microbatch: a one-element Identity model
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    tiny = onnx.helper.make_model(onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "t", [x], [y]),
                                  opset_imports=[onnx.helper.make_opsetid("", 17)])
    tiny.ir_version = 8
    session = make_session(tiny)
    feed = {"x": np.zeros(1, np.float32)}
    runs = []
    for _ in range(rounds):
        t = time.perf_counter()
        session.run(None, feed)
        runs.append(time.perf_counter() - t)
    overhead = statistics.median(runs[10:])
    # wake-up: a semaphore ping-pong with a process on another core
    ping, pong = ctx.Semaphore(0), ctx.Semaphore(0)
    other = ctx.Process(target=_pong, args=(ping, pong, rounds, cores[-1] if len(cores) > 1 else None), daemon=True)
    with children_ignore_ctrl_c():  # Ctrl-C stops this process; the helper is a daemon
        other.start()
    trips = []
    for _ in range(rounds):
        t = time.perf_counter()
        ping.release()
        if not pong.acquire(timeout=10):  # the helper process died (it could not start)
            other.kill()
            raise SimulationError(f"hand-off measurement: helper process exited with {other.exitcode}")
        trips.append(time.perf_counter() - t)
    other.join(10)
    return Handoff(overhead=overhead, bandwidth=bandwidth, wakeup=statistics.median(trips[10:]) / 2)


def this_machine(cores: int, handoff: Handoff | None, device: Device | None = None) -> System:
    """This machine as a system: ``cores`` CPU cores joined by the measured hand-off.

    ``device`` is the core's roofline description (default the
    ``xeon-8380-core`` preset; a device fitted by ``hardware calibrate``).

    Examples
    --------
    >>> s = this_machine(2, Handoff(5e-6, 1e10, 0.0))
    >>> s.groups[0].count, s.transfer_links()["cpu"][0].name
    (2, 'process-handoff')
    """
    device = device or builtin_catalog().devices["xeon-8380-core"]
    device = replace(device, name=device.name, description=device.description or "a core of this machine")
    group = DeviceGroup("cpu", device, cores, peer_link=handoff.link() if handoff else None)
    return System("this-machine", (group,), "this machine's CPU cores (measured)", transfers="peer")


def profiled_workload(profile: Profile, ops: OpGraph, *, device: Device | None = None) -> Workload:
    """The workload of measured node times and hand-offs on this machine's cores (module docstring)."""
    if len(ops.ops) != len(profile.nodes):
        from pipesim.errors import InternalError

        raise InternalError(f"{len(ops.ops)} operators but {len(profile.nodes)} profiled nodes")
    system = this_machine(len(profile.cores) or 1, profile.handoff, device)
    base = lower(ops, system)
    nodes = [replace(node, time={"cpu": profile.nodes[i].median / TIME_UNIT}) for i, node in base.graph.nodes.items()]
    return Workload(Graph(nodes, base.graph.edges), base.devices)


def write_profile(
    path: str | Path, profile: Profile, ops: OpGraph, *, reference: str = "a100x8", device: Device | None = None,
) -> Workload:
    """Write the profiled workload (native format) with the profile and the roofline beside; return it."""
    workload = profiled_workload(profile, ops, device=device)
    data = workload_to_native(workload, name=profile.model, hardware="this-machine", kinds={"cpu": CPU_KIND})
    local = lower(ops, this_machine(1, None, device)).graph.nodes
    ref_system = load_system(reference)
    ref = lower(ops, ref_system).graph.nodes
    for entry, op, timed in zip(data["nodes"], ops.ops, profile.nodes):
        kernel = op.kernels[0]
        entry["profile"] = {"op_type": timed.op_type, "op_class": kernel.op_class, "flops": kernel.flops,
                            "bytes": kernel.bytes, "samples": timed.samples, "ort_node": timed.ort_node}
        entry["roofline"] = {"cpu": local[entry["id"]].time["cpu"],
                             **{f"{reference}.{k}": v for k, v in ref[entry["id"]].time.items()}}
    data["profile"] = {
        "format": PROFILE_FORMAT,
        "model": profile.model,
        "batch": profile.batch,
        "dtype": ops.dtype,
        "threads": profile.threads,
        "runs": profile.runs,
        "cores": profile.cores,
        "run_wall_ms": profile.run_wall / TIME_UNIT,
        "run_cpu_ms": profile.run_cpu / TIME_UNIT,
        "node_sum_ms": profile.node_sum / TIME_UNIT,
        "load_average": [profile.load_before, profile.load_after],
        "handoff": asdict(profile.handoff) if profile.handoff else None,
        "roofline_device": (device.name if device else "xeon-8380-core"),
        "roofline_reference": reference,
        "optimized": profile.optimized,
        "ort_nodes": profile.ort_nodes,
        "profiler_overhead_us": profile.profiler_overhead * 1e6,
        "profiler_excess_ms": profile.profiler_excess / TIME_UNIT,
        "conditions": profile.conditions.to_dict() if profile.conditions else None,
    }
    write_text(path, dumps(data, indent=1) + "\n")
    return workload


def profile_to_workload(
    source: str | Path | onnx.ModelProto, output: str | Path | None = None, *, batch: int = 1, threads: int = 1,
    runs: int = 20, reference: str = "a100x8", measure: bool = True, optimize: bool = True,
) -> tuple[Profile, Workload, OpGraph, onnx.ModelProto]:
    """Profile, measure the hand-off, import, and (with ``output``) write the workload: the whole of ``pipesim profile``."""
    prepared = prepare_onnx(source, batch=batch)
    name = Path(source).stem if isinstance(source, (str, Path)) else prepared.graph.name or "onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the importer's warnings are for graph import to show
        ops = import_onnx(prepared, batch=batch, name=name, check=False)
    profile, model = profile_model(prepared, batch=batch, threads=threads, runs=runs, optimize=optimize, ops=ops)
    profile.model = name
    profile.handoff = measure_handoff(cores=profile.cores) if measure else Handoff(0.0, 1e12, 0.0)
    if output is not None:
        workload = write_profile(output, profile, ops, reference=reference)
    else:
        workload = profiled_workload(profile, ops)
    return profile, workload, ops, model
