"""A split executed for real: one sub-model and one pinned ONNX Runtime process per stage.

:func:`cut_stages` cuts the prepared model (node ``i`` = workload node ``i``)
into one sub-model per stage, in pipeline order.  Between stage ``k`` and
``k + 1`` flows every tensor that was produced by stage ``k`` or earlier (or
is a graph input) and is read by a later stage or is a graph output; a stage
passes on what it received but does not consume itself.  Each sub-model is a
valid ONNX model of its nodes, the initializers they read, and those boundary
tensors as inputs and outputs: together they are a runnable export of the
split.

:func:`execute` runs it: each stage in its own process (``spawn``), pinned to
its core (stage ``k`` on the ``k``-th usable core, round robin), one ONNX
Runtime thread (:mod:`pipesim.runtime.session`); microbatches stream through
:class:`~pipesim.runtime.channel.Channel` rings in shared memory (a copy per
tensor, never a pickle).  The first stage reads its inputs in place from a
ring the driver fills once with ``K`` input sets (microbatch ``i`` uses set
``i mod K``).  Two phases are timed:

* **latency**: microbatches one at a time (the next starts when the previous
  left the last stage): the unloaded latency;
* **stream**: ``microbatches`` released at once: the steady-state time per
  microbatch is the mean gap between the last stage's hand-overs after the
  first ``warmup`` (a fifth, at least 2) — the pipeline's throughput (the
  last ring holds every microbatch, so the driver's draining never stalls it);
  each stage's busy time per microbatch is its run plus its copies, without
  the waits (median over the stream), in wall time and in the CPU time the
  stage's thread used (on a shared machine the two differ by the time other
  processes held the core).

Around the run, a reference kernel is timed before and after on the first
stage's core, with load and steal (:mod:`pipesim.runtime.trust`): the result
says whether its numbers can be trusted, and why not.

The outputs of the first ``K`` microbatches are compared with the unsplit
model's (same session settings) and must agree within ``1e-5``.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from pipesim.errors import InputError, SimulationError, SplitError
from pipesim.output import atomic_path, output_folder
from pipesim.placement.evaluate import evaluate
from pipesim.placement.interrupt import children_ignore_ctrl_c
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from pipesim.runtime.channel import Channel, TensorSpec
from pipesim.runtime.profile import load_average
from pipesim.runtime.trust import Conditions, measure_conditions
from pipesim.runtime.session import (
    make_session,
    pin_to_core,
    random_inputs,
    usable_cores,
)

__all__ = ["ExecutionResult", "Stage", "cut_stages", "execute", "stage_node_sets", "write_stages"]

#: Tolerance of the split's outputs against the unsplit model's.
TOLERANCE = 1e-5

#: Seconds a stage polls for its next input before sleeping (a sleeping stage pays a scheduler wake-up).
SPIN = 2e-4


@dataclass
class Stage:
    index: int
    device: str
    nodes: list[int]
    model: onnx.ModelProto
    inputs: list[TensorSpec]  # what it receives (the boundary before it)
    outputs: list[TensorSpec]  # what it sends (the boundary after it)
    computes: list[str]  # the sub-model's outputs (the rest of ``outputs`` is passed through)
    reads: list[str]  # the sub-model's inputs


def _specs(model: onnx.ModelProto) -> dict[str, TensorSpec]:
    inferred = onnx.shape_inference.infer_shapes(model)
    specs = {}
    for info in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        t = info.type.tensor_type
        dims = tuple(d.dim_value for d in t.shape.dim) if t.HasField("shape") else None
        if dims is None or any(d <= 0 for d in dims) and dims:
            continue
        specs[info.name] = TensorSpec(info.name, dims, np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).name)
    return specs


def stage_node_sets(workload: Workload, split: Split) -> list[tuple[str, list[int]]]:
    """The split's non-empty devices in pipeline order, each with its forward nodes (sorted)."""
    evaluation = evaluate(workload.graph, workload.devices, split)
    if evaluation.stage_order is None:
        raise SplitError("the split is not a pipeline: its stages feed each other in a cycle")
    by_name = {d.name: d for d in evaluation.devices}
    forward = set(workload.graph.forward_nodes)
    stages = [(name, sorted(v for v in by_name[name].nodes if v in forward)) for name in evaluation.stage_order]
    return [(name, nodes) for name, nodes in stages if nodes]


def cut_stages(model: onnx.ModelProto, stages: list[tuple[str, list[int]]]) -> list[Stage]:
    """One sub-model per stage (see the module docstring); ``model`` is the prepared model.

    Examples
    --------
    >>> from pipesim.workloads.onnx_models import mlp_onnx
    >>> from pipesim.workloads.onnx_import import prepare_onnx
    >>> m = prepare_onnx(mlp_onnx(layers=2, width=8), batch=4)
    >>> first, second = cut_stages(m, [("cpu[0]", [0, 1, 2]), ("cpu[1]", [3, 4, 5])])
    >>> first.reads, first.computes, [t.shape for t in second.inputs]
    (['x'], ['/fc0/Relu_3_output'], [(4, 8)])
    """
    graph = model.graph
    n = len(graph.node)
    stage_of: dict[int, int] = {}
    for k, (_, nodes) in enumerate(stages):
        for v in nodes:
            if not 0 <= v < n:
                raise SplitError(f"node {v} is not a node of the model (it has {n})")
            stage_of[v] = k
    missing = sorted(set(range(n)) - set(stage_of))
    if missing:
        raise SplitError(f"the split leaves node(s) {missing[:5]} of the model unplaced")
    inits = {t.name: t for t in graph.initializer}
    specs = _specs(model)
    graph_inputs = [i.name for i in graph.input if i.name not in inits]
    graph_outputs = [o.name for o in graph.output]
    made_by: dict[str, int] = {x: -1 for x in graph_inputs}  # -1: the driver
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for y in node.output:
            if y:
                made_by[y] = stage_of[i]
    for i, node in enumerate(graph.node):
        for x in node.input:
            if x and x not in inits:
                if made_by.get(x, -1) > stage_of[i]:
                    raise SplitError(f"node {i} ({node.name}) reads {x!r} from a later stage: not a pipeline order")
                last_use[x] = max(last_use.get(x, -1), stage_of[i])
    for y in graph_outputs:
        last_use[y] = len(stages)  # the driver reads the graph's outputs after the last stage

    def boundary(k: int) -> list[str]:  # the tensors flowing from stage k to k + 1
        names = [x for x, s in made_by.items() if s <= k and last_use.get(x, -2) > k]
        for x in names:
            if x not in specs:
                raise InputError(None, f"tensor {x}", "shape unknown: cannot size its shared-memory buffer")
        return names

    result = []
    for k, (device, nodes) in enumerate(stages):
        before = graph_inputs if k == 0 else boundary(k - 1)
        after = boundary(k)
        own = [graph.node[v] for v in sorted(nodes)]
        produced = {y for node in own for y in node.output if y}
        reads = list(dict.fromkeys(x for node in own for x in node.input if x and x not in inits and x not in produced))
        computes = [x for x in after if x in produced]
        used_inits = list(dict.fromkeys(x for node in own for x in node.input if x in inits))
        sub = helper.make_graph(
            own, f"{graph.name}_stage{k}",
            [_value_info(specs[x]) for x in reads],
            [_value_info(specs[x]) for x in computes],
            [inits[x] for x in used_inits],
        )
        sub_model = helper.make_model(sub, opset_imports=list(model.opset_import))
        sub_model.ir_version = model.ir_version
        result.append(Stage(k, device, sorted(nodes), sub_model, [specs[x] for x in before], [specs[x] for x in after],
                            computes, reads))
    return result


def _value_info(spec: TensorSpec) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(spec.name, helper.np_dtype_to_tensor_dtype(np.dtype(spec.dtype)), spec.shape)


def write_stages(stages: list[Stage], directory: str | Path) -> list[Path]:
    """Write ``stage{k}.onnx`` per stage into ``directory``; the paths."""
    directory = output_folder(directory)
    paths = []
    for stage in stages:
        path = directory / f"stage{stage.index}.onnx"
        with atomic_path(path) as tmp:  # all or nothing; an unwritable folder is one line
            onnx.save(stage.model, str(tmp))
        paths.append(path)
    return paths


# --- the stage process -------------------------------------------------------------------------------------


def _stage_main(k: int, model_bytes: bytes, reads: list[str], computes: list[str], passed: list[str],
                inputs: Channel, outputs: Channel, go, ready, results, total: int, core: int | None,
                optimize: bool = True) -> None:
    try:
        pin_to_core(core)
        session = make_session(model_bytes, optimize=optimize)
        first = k == 0
        warm = {s.name: np.zeros(s.shape, s.dtype) for s in inputs.specs}
        session.run(computes, {x: warm[x] for x in reads})
        ready.release()
        stamps = np.zeros((total, 6))
        for i in range(total):
            if first:
                go.acquire()
                received = inputs.slot(i)
            else:
                received = inputs.get(spin=SPIN)
            t0, c0 = time.perf_counter(), time.thread_time()
            produced = session.run(computes, {x: received[x] for x in reads})
            t1 = time.perf_counter()
            c1 = time.thread_time()
            slot = outputs.reserve()
            t2, c2 = time.perf_counter(), time.thread_time()
            for name, value in zip(computes, produced):
                np.copyto(slot[name], value, casting="no")
            for name in passed:
                np.copyto(slot[name], received[name], casting="no")
            del received
            if not first:
                inputs.release()
            outputs.commit()
            stamps[i] = (t0, t1, t2, time.perf_counter(), (c1 - c0) + (time.thread_time() - c2), c1 - c0)
        results.put((k, stamps, None))
    except BaseException:  # report to the driver rather than die silently
        results.put((k, None, traceback.format_exc()))
        ready.release()


@dataclass
class ExecutionResult:
    """Measured, predicted and simulated figures of one real run (times in milliseconds)."""

    model: str
    stages: list[dict]
    microbatches: int
    batch: int
    measured_time_per_sample: float
    measured_latency: float
    predicted_time_per_sample: float
    simulated_time_per_sample: float
    simulated_latency: float
    max_abs_difference: float
    load_average: tuple[float, float]
    stage_files: list[str] = field(default_factory=list)
    conditions: Conditions | None = None  # contention and drift around the run (pipesim.runtime.trust)

    @property
    def outputs_match(self) -> bool:
        return self.max_abs_difference <= TOLERANCE

    @property
    def bottleneck_cpu(self) -> float:
        """The largest stage CPU time per microbatch: the time per microbatch had each stage owned its core."""
        return max((s["measured_busy_cpu"] for s in self.stages), default=math.nan)

    @property
    def error(self) -> float:
        """Predicted relative to measured: ``predicted / measured - 1``."""
        m = self.measured_time_per_sample
        return self.predicted_time_per_sample / m - 1 if m else math.nan

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "time_unit": "ms",
            "microbatches": self.microbatches,
            "batch": self.batch,
            "measured_time_per_sample": self.measured_time_per_sample,
            "predicted_time_per_sample": self.predicted_time_per_sample,
            "simulated_time_per_sample": self.simulated_time_per_sample,
            "prediction_error": self.error,
            "measured_bottleneck_cpu": self.bottleneck_cpu,
            "measured_latency": self.measured_latency,
            "simulated_latency": self.simulated_latency,
            "outputs_match": self.outputs_match,
            "max_abs_difference": self.max_abs_difference,
            "load_average": list(self.load_average),
            "stages": self.stages,
            "stage_files": self.stage_files,
            "conditions": self.conditions.to_dict() if self.conditions else None,
            "trusted": self.conditions.trusted if self.conditions else None,
        }


def _conditions(cores: list[int], started: Conditions | None) -> Conditions:
    """Before (``started`` None) or after the run: the trust measurements, pinned to the first stage's core."""
    import os

    try:
        pin_to_core(cores[0])
        if started is None:
            return measure_conditions(len(cores))
        return started.finish()
    finally:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(cores))


def _collect(results, processes, count: int) -> dict[int, np.ndarray]:
    stamps = {}
    while len(stamps) < count:
        try:
            k, data, error = results.get(timeout=120)
        except Exception:  # queue.Empty: a stage hung or died without a word
            raise SimulationError("a pipeline stage stopped responding") from None
        if error:
            raise SimulationError(f"stage {k} failed: {error.strip().splitlines()[-1]}")
        stamps[k] = data
    for p in processes:
        p.join(10)
    return stamps


def _get(channel: Channel, processes, what: str) -> dict[str, np.ndarray]:
    while True:
        got = channel.get(timeout=5)
        if got is not None:
            return got
        dead = [p for p in processes if not p.is_alive()]
        if dead:
            raise SimulationError(f"{what}: a stage process exited (code {dead[0].exitcode})")


def execute(
    model: onnx.ModelProto,
    workload: Workload,
    split: Split,
    *,
    microbatches: int = 40,
    inputs: list[dict[str, np.ndarray]] | None = None,
    distinct_inputs: int = 4,
    latency_probes: int = 5,
    slots: int = 4,
    stage_dir: str | Path | None = None,
    name: str | None = None,
    batch: int = 1,
    optimize: bool = True,
    check_conditions: bool = True,
) -> ExecutionResult:
    """Run ``split`` of the prepared ``model`` as a pipeline of processes (see the module docstring).

    Parameters
    ----------
    model : onnx.ModelProto
        The prepared model (:func:`~pipesim.workloads.onnx_import.prepare_onnx`):
        node ``i`` is workload node ``i``.
    workload : Workload
        Its profiled workload: gives the prediction (``evaluate``) and the
        simulation (:func:`pipesim.simulation.simulate`, stream schedule).
    split : Split
        A contiguous split of ``workload`` (``pipesim solve``).
    microbatches : int
        Microbatches of the timed stream (at least 3).
    inputs : list of dict, optional
        Input sets (name -> array); default ``distinct_inputs`` random ones.
    latency_probes : int
        Microbatches sent one at a time first (the unloaded latency).
    slots : int
        Ring slots between two stages.
    stage_dir : path, optional
        Where to write the stage sub-models.
    optimize : bool
        Let ONNX Runtime optimise each stage's graph (its default, as
        profiled); ``False`` runs them node for node.
    check_conditions : bool
        Time the reference kernel on the first stage's core and read load and
        steal before and after the run (:mod:`pipesim.runtime.trust`): the
        result says whether its numbers can be trusted.

    Returns
    -------
    ExecutionResult

    Raises
    ------
    SplitError
        The split is not a pipeline of the model's nodes.
    SimulationError
        A stage process failed or stopped responding (its last error line).
    """
    from pipesim.simulation import simulate

    if microbatches < 3:
        raise InputError(None, "microbatches", f"must be at least 3 to measure a steady state, got {microbatches}")
    order = stage_node_sets(workload, split)
    stages = cut_stages(model, order)
    files = [str(p) for p in write_stages(stages, stage_dir)] if stage_dir is not None else []
    feeds = inputs or [random_inputs(model, seed) for seed in range(distinct_inputs)]
    cores = usable_cores()
    ctx = mp.get_context("spawn")
    ring = Channel(ctx, stages[0].inputs, slots=len(feeds))
    for feed in feeds:
        missing = [s.name for s in stages[0].inputs if s.name not in feed]
        if missing:
            raise InputError(None, "inputs", f"no value for model input {missing[0]!r}")
        ring.put({s.name: np.asarray(feed[s.name], dtype=s.dtype).reshape(s.shape) for s in stages[0].inputs})
    total = latency_probes + microbatches
    # the last ring holds every microbatch (within 256 MiB), so the last stage never waits for the driver to drain
    sink_slots = max(slots, min(total, (256 << 20) // max(1, sum(t.nbytes for t in stages[-1].outputs))))
    channels = [Channel(ctx, stage.outputs, slots=sink_slots if k == len(stages) - 1 else slots)
                for k, stage in enumerate(stages)]
    go, ready, results = ctx.Semaphore(0), ctx.Semaphore(0), ctx.Queue()
    processes = []
    load_before = load_average()
    conditions = _conditions(cores, None) if check_conditions else None
    try:
        for k, stage in enumerate(stages):
            passed = [s.name for s in stage.outputs if s.name not in stage.computes]
            source = ring if k == 0 else channels[k - 1]
            p = ctx.Process(target=_stage_main, daemon=True,
                            args=(k, stage.model.SerializeToString(), stage.reads, stage.computes, passed, source,
                                  channels[k], go, ready, results, total, cores[k % len(cores)], optimize))
            with children_ignore_ctrl_c():  # Ctrl-C stops the driver; its finally kills the stages
                p.start()
                # listed before the block ends: a Ctrl-C held back while it started is raised there, and the
                # finally must kill this stage too (seen: one left unpickling its semaphore, which the driver's
                # exit had removed, printed a FileNotFoundError traceback)
                processes.append(p)
        for _ in stages:
            if not ready.acquire(timeout=120):
                raise SimulationError("a pipeline stage did not start")
        sink = channels[-1]
        collected, latencies = [], []
        for i in range(latency_probes):
            t = time.perf_counter()
            go.release()
            out = _get(sink, processes, "latency phase")
            latencies.append(time.perf_counter() - t)
            if i < len(feeds):
                collected.append({s.name: np.array(out[s.name]) for s in sink.specs})
            del out
            sink.release()
        done = []
        for _ in range(microbatches):
            go.release()
        for _ in range(microbatches):
            out = _get(sink, processes, "stream phase")
            done.append(time.perf_counter())
            del out
            sink.release()
        stamps = _collect(results, processes, len(stages))
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
        for ch in (ring, *channels):
            ch.close()
    load_after = load_average()
    if conditions is not None:
        _conditions(cores, conditions)
    warmup = min(max(2, microbatches // 5), microbatches - 2)
    finished = stamps[stages[-1].index][latency_probes:, 3]  # when the last stage handed each microbatch over
    measured = (finished[-1] - finished[warmup]) / (len(finished) - 1 - warmup)

    reference = make_session(model, optimize=optimize)
    names = [o.name for o in model.graph.output]
    diff = 0.0
    for feed, got in zip(feeds, collected):
        want = reference.run(names, {s.name: feed[s.name] for s in stages[0].inputs})
        for n, w in zip(names, want):
            diff = max(diff, float(np.max(np.abs(np.asarray(got[n], dtype=np.float64) - np.asarray(w, np.float64)))))

    evaluation = evaluate(workload.graph, workload.devices, split)
    loads = {d.name: d for d in evaluation.devices}
    sim = simulate(workload, split, schedule="stream", microbatches=max(microbatches, 2 * len(stages)))
    rows = []
    for stage in stages:
        s = stamps[stage.index][latency_probes:]
        busy = (s[:, 1] - s[:, 0]) + (s[:, 3] - s[:, 2])
        d = loads[stage.device]
        rows.append({
            "stage": stage.index,
            "device": stage.device,
            "core": cores[stage.index % len(cores)],
            "nodes": len(stage.nodes),
            "predicted_load": d.load,
            "predicted_compute": d.compute,
            "measured_busy": float(np.median(busy)) * 1e3,
            "measured_compute": float(np.median(s[:, 1] - s[:, 0])) * 1e3,
            # CPU time of the same work: what the stage used of its core (wall minus time others took it)
            "measured_busy_cpu": float(np.median(s[:, 4])) * 1e3,
            "sent_bytes": sum(t.nbytes for t in stage.outputs),
        })
    return ExecutionResult(
        model=name or model.graph.name,
        stages=rows,
        microbatches=microbatches,
        batch=batch,
        measured_time_per_sample=measured * 1e3,
        measured_latency=statistics.median(latencies) * 1e3,
        predicted_time_per_sample=evaluation.max_load,
        simulated_time_per_sample=sim.simulated_time_per_sample,
        simulated_latency=sim.measurements.latency_p50,
        max_abs_difference=diff,
        load_average=(load_before, load_after),
        stage_files=files,
        conditions=conditions,
    )
