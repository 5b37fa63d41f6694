"""``pipesim execute MODEL.onnx SPLIT.json``: run a split for real, beside its prediction and simulation.

Cuts the model into one sub-model per stage (written to ``--stages DIR``),
runs each in its own process pinned to a core with ONNX Runtime (one thread),
streams ``--microbatches`` through shared-memory rings, and prints the
measured time per microbatch, latency and per-stage busy time beside the
prediction (``evaluate`` on the profiled workload) and the simulation.  The
workload is ``--workload W.json`` (from ``pipesim profile``) or, without it,
a profile made first.  See :mod:`pipesim.runtime.pipeline`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from pipesim.commands.common import console, count, load_workload, print_conditions, print_json
from pipesim.errors import InputError, SplitError, require_extra
from pipesim.output import output_folder
from pipesim.placement.formats import load_json, read_split


def register(subparsers) -> None:
    p = subparsers.add_parser("execute", help="run a split of an ONNX model as a real pipeline of processes")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("split", help="split file (pipesim solve -o) of the model's profiled workload")
    p.add_argument("--workload", help="the profiled workload (pipesim profile -o); default: profile now")
    p.add_argument("--microbatches", type=count, default=40, help="microbatches streamed (default 40)")
    p.add_argument("--batch", type=count, help="samples per microbatch (default: the workload's, else 1)")
    p.add_argument("--inputs", default="random", help="'random' or an .npz file of input arrays (one microbatch)")
    p.add_argument("--stages", metavar="DIR", help="write the stage sub-models here (default: SPLIT.stages/ beside the split file)")
    p.add_argument("--no-optimize", action="store_true",
                   help="run each stage's graph as imported (default: optimised by ONNX Runtime, as profiled)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def _batch_of(path: str | None) -> int | None:
    if path is None:
        return None
    data = load_json(path)  # a missing or broken file is one line
    return data.get("profile", {}).get("batch") if isinstance(data, dict) else None


def _inputs(spec: str) -> list[dict[str, np.ndarray]] | None:
    if spec == "random":
        return None
    try:
        with np.load(spec) as data:
            return [{k: data[k] for k in data.files}]
    except FileNotFoundError:
        raise InputError(spec, None, "no such file") from None
    except Exception as exc:  # numpy raises several kinds for a non-npz file
        raise InputError(spec, None, f"not an .npz file of input arrays ({exc})") from None


def table(result) -> Table:
    t = Table(title=f"{result.model}: {len(result.stages)} stages, batch {result.batch}, "
                    f"{result.microbatches} microbatches (ms)")
    for col in ("", "predicted", "simulated", "measured", "measured CPU"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row("time per microbatch", f"{result.predicted_time_per_sample:.4g}",
              f"{result.simulated_time_per_sample:.4g}", f"{result.measured_time_per_sample:.4g}", "")
    t.add_row("latency", "", f"{result.simulated_latency:.4g}", f"{result.measured_latency:.4g}", "")
    for s in result.stages:
        t.add_row(f"stage {s['stage']} busy ({s['device']}, core {s['core']}, {s['nodes']} nodes)",
                  f"{s['predicted_load']:.4g}", "", f"{s['measured_busy']:.4g}", f"{s['measured_busy_cpu']:.4g}")
    return t


def run(args) -> int:
    require_extra("onnx", "onnx")
    require_extra("onnxruntime", "onnx")
    from pipesim.runtime.pipeline import execute
    from pipesim.runtime.profile import profile_to_workload
    from pipesim.workloads.onnx_import import prepare_onnx

    # before the work: a bad output folder fails at once, in one line naming the option
    if args.stages:
        output_folder(args.stages, "--stages")
    stage_dir = args.stages or str(Path(args.split).with_suffix("")) + ".stages"  # beside the split, not the model
    batch = args.batch or _batch_of(args.workload) or 1
    if args.workload:
        workload = load_workload(args.workload)
        model = prepare_onnx(args.model, batch=batch)
        nodes = sum(1 for n in workload.graph.nodes.values() if not n.is_backward)
        if nodes != len(model.graph.node):  # a workload of another model: name it, before any stage is cut
            raise InputError(args.workload, None, f"has {nodes} nodes, but {args.model} has {len(model.graph.node)}: "
                             f"give the workload 'pipesim profile {args.model}' wrote")
    else:
        console.print("no --workload: profiling the model first", style="dim") if not args.json else None
        _, workload, _, model = profile_to_workload(args.model, None, batch=batch, optimize=not args.no_optimize)
    from pipesim.workloads.onnx_import import graph_batch

    batch = graph_batch(model, batch)  # a batch the exporter fixed is the batch, whatever was asked
    split = read_split(Path(args.split))
    try:
        result = execute(model, workload, split, microbatches=args.microbatches, inputs=_inputs(args.inputs),
                         stage_dir=stage_dir, name=Path(args.model).stem, batch=batch, optimize=not args.no_optimize)
    except SplitError as exc:  # the split does not cut this model (or its workload) into a pipeline
        raise InputError(args.split, None, f"{exc} (model {args.model}"
                         + (f", workload {args.workload})" if args.workload else ")")) from None
    if args.json:
        print_json(result.to_dict())
        return 0 if result.outputs_match else 1
    console.print(table(result))
    cpu_error = result.predicted_time_per_sample / result.bottleneck_cpu - 1 if result.bottleneck_cpu else float("nan")
    console.print(f"prediction error {result.error:+.1%} against wall time, {cpu_error:+.1%} against the busiest "
                  f"stage's CPU time; outputs {'match' if result.outputs_match else 'DIFFER'} "
                  f"(max |difference| {result.max_abs_difference:.2g}); load average "
                  f"{result.load_average[0]:.2f} -> {result.load_average[1]:.2f}")
    print_conditions(console, result.conditions)
    console.print(f"stage models written to {stage_dir}/")
    return 0 if result.outputs_match else 1
