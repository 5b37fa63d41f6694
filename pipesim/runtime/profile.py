"""Costs measured with ONNX Runtime: a workload whose devices are this machine's cores.

:func:`profile_model` runs the prepared model (the importer's model:
shapes fixed at ``batch``, shape subgraphs folded, so node ``i`` is workload
node ``i``) with ONNX Runtime's profiler on, pinned to one core, ``warmup``
runs then ``runs`` more, and takes each node's **median** kernel time.  The
profiler's bookkeeping lengthens each node it times by a few microseconds:
when the medians add up to more than the CPU time of an unprofiled run, the
excess is removed evenly from every node (never below a tenth of its median).
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from pipesim.errors import SimulationError
from pipesim.placement.interrupt import children_ignore_ctrl_c
from pipesim.hardware.catalog import builtin_catalog, load_system
from pipesim.hardware.devices import CPU_KIND, Device, DeviceGroup, Link, System
from pipesim.placement.graph import Graph
from pipesim.placement.workload import Workload
from pipesim.runtime.channel import Channel, TensorSpec
from pipesim.runtime.session import (
    make_session,
    pin_to_core,
    random_inputs,
    usable_cores,
)
from pipesim.workloads.lower import TIME_UNIT, lower
from pipesim.workloads.native import workload_to_native
from pipesim.workloads.onnx_import import import_onnx, prepare_onnx
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


def profile_model(
    source: str | Path | onnx.ModelProto,
    *,
    batch: int = 1,
    threads: int = 1,
    runs: int = 20,
    warmup: int = 3,
    core: int | None = None,
    seed: int = 0,
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
        with tempfile.TemporaryDirectory() as tmp:
            session = make_session(model, threads=threads, profile_prefix=Path(tmp) / "ort")
            for _ in range(warmup + runs):
                session.run(None, feeds)
            durations = _node_durations(session.end_profiling(), warmup)
        plain = make_session(model, threads=threads)
        for _ in range(warmup):
            plain.run(None, feeds)
        walls, cpus = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.thread_time()
            plain.run(None, feeds)
            walls.append(time.perf_counter() - t)
            cpus.append(time.thread_time() - c)
    finally:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(allowed))
    nodes = []
    for i, node in enumerate(model.graph.node):
        d = durations.get(node.name, [])
        nodes.append(NodeTime(i, node.name, node.op_type, statistics.median(d) if d else 0.0, len(d)))
    # The profiler's own bookkeeping lengthens every node it times by about the same few microseconds: the
    # medians add up to more than the CPU time of an unprofiled run.  Remove that excess evenly per node.
    excess = (sum(n.median for n in nodes) - statistics.median(cpus)) / max(1, len(nodes))
    if excess > 0:
        nodes = [replace(n, median=max(n.median - excess, 0.1 * n.median)) for n in nodes]
    profile = Profile(name, batch, threads, runs, nodes, statistics.median(walls), load_before, load_average(),
                      cores=allowed, run_cpu=statistics.median(cpus))
    return profile, model


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
                            "bytes": kernel.bytes, "samples": timed.samples}
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
    }
    Path(path).write_text(json.dumps(data, indent=1) + "\n")
    return workload


def profile_to_workload(
    source: str | Path | onnx.ModelProto, output: str | Path | None = None, *, batch: int = 1, threads: int = 1,
    runs: int = 20, reference: str = "a100x8", measure: bool = True,
) -> tuple[Profile, Workload, OpGraph, onnx.ModelProto]:
    """Profile, measure the hand-off, import, and (with ``output``) write the workload: the whole of ``pipesim profile``."""
    profile, model = profile_model(source, batch=batch, threads=threads, runs=runs)
    profile.handoff = measure_handoff(cores=profile.cores) if measure else Handoff(0.0, 1e12, 0.0)
    name = profile.model
    ops = import_onnx(model, batch=batch, name=name, check=False)
    if output is not None:
        workload = write_profile(output, profile, ops, reference=reference)
    else:
        workload = profiled_workload(profile, ops)
    return profile, workload, ops, model
