"""``pipesim profile MODEL.onnx -o workload.json``: node costs measured with ONNX Runtime.

Runs the model (shapes fixed at ``--batch``, shape subgraphs folded) with ONNX
Runtime's profiler on, its graph optimised as ONNX Runtime deploys it (each
fused node's time shared among the imported nodes it covers; ``--no-optimize``
times the imported graph node for node), one thread, pinned to one core; takes each node's
median over ``--runs``; measures what handing a tensor to the next stage
process costs; writes a workload whose devices are this machine's cores
(``pipesim solve`` reads it), with the roofline's times beside each node.
See :mod:`pipesim.runtime.profile`.
"""

from __future__ import annotations

from pipesim.commands.common import console, count, print_conditions, print_json, writable
from pipesim.errors import require_extra


def register(subparsers) -> None:
    p = subparsers.add_parser("profile", help="measure an ONNX model's node costs on this machine (ONNX Runtime)")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--batch", type=count, default=None,
                   help="value for symbolic input dimensions (default 1; a batch the exporter fixed is kept)")
    p.add_argument("--threads", type=count, default=1, help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--runs", type=count, default=20, help="timed runs; each node's median is kept (default 20)")
    p.add_argument("--reference", default="a100x8", help="system whose roofline times are written beside (default a100x8)")
    p.add_argument("--no-optimize", action="store_true",
                   help="time the graph as imported, node for node (default: as ONNX Runtime optimises it, each fused "
                        "node's time shared among the imported nodes it covers)")
    p.add_argument("-o", "--output", required=True, help="output workload file (.json)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(run=run)


def summary(profile, workload, ops, output: str) -> dict:
    from pipesim.runtime.calibrate import error_percentiles
    from pipesim.runtime.profile import this_machine
    from pipesim.workloads.lower import lower

    measured = [n.time["cpu"] for n in workload.graph.nodes.values()]

    predicted = [n.time["cpu"] for n in lower(ops, this_machine(1, None)).graph.nodes.values()]
    h = profile.handoff
    return {
        "model": profile.model,
        "nodes": len(profile.nodes),
        "batch": profile.batch,
        "threads": profile.threads,
        "runs": profile.runs,
        "optimized": profile.optimized,
        "ort_nodes": profile.ort_nodes,
        "cores": profile.cores,
        "node_sum_ms": profile.node_sum * 1e3,
        "run_wall_ms": profile.run_wall * 1e3,
        "core_share": profile.share,
        "handoff": {"overhead_us": h.overhead * 1e6, "bandwidth_GBps": h.bandwidth / 1e9, "wakeup_us": h.wakeup * 1e6},
        "load_average": [profile.load_before, profile.load_after],
        "run_cpu_ms": profile.run_cpu * 1e3,
        "profiler_overhead_us": profile.profiler_overhead * 1e6,
        "profiler_excess_ms": profile.profiler_excess * 1e3,
        "conditions": profile.conditions.to_dict() if profile.conditions else None,
        "trusted": profile.conditions.trusted if profile.conditions else None,
        "roofline_error": error_percentiles(measured, predicted),
        "written": output,
    }


def run(args) -> int:
    require_extra("onnx", "onnx")
    require_extra("onnxruntime", "onnx")
    from pipesim.runtime.profile import profile_to_workload

    writable(args.output, "workload", "--output")
    profile, workload, ops, _ = profile_to_workload(args.model, args.output, batch=args.batch or 1,
                                                    threads=args.threads, runs=args.runs, reference=args.reference,
                                                    optimize=not args.no_optimize)
    if args.batch is not None and args.batch != profile.batch:
        console.print(f"warning: --batch {args.batch} has no effect: the model's inputs fix the batch at "
                      f"{profile.batch}", style="yellow", markup=False, highlight=False)
    s = summary(profile, workload, ops, args.output)
    if args.json:
        print_json(s)
        return 0
    e, h = s["roofline_error"], s["handoff"]
    console.print(
        f"{s['model']}: {s['nodes']} nodes "
        f"({'run as ' + str(s['ort_nodes']) + ' after ONNX Runtime optimisation' if s['optimized'] else 'unoptimised'}), "
        f"batch {s['batch']}, {s['threads']} thread(s), median of {s['runs']} runs "
        f"(load average {s['load_average'][0]:.2f} -> {s['load_average'][1]:.2f} on {len(s['cores'])} cores)"
    )
    console.print(f"sum of node medians {s['node_sum_ms']:.4g} ms; whole session.run {s['run_wall_ms']:.4g} ms wall, "
                  f"{s['run_cpu_ms']:.4g} ms CPU (the run had {s['core_share']:.0%} of its core); profiler bookkeeping "
                  f"{s['profiler_overhead_us']:.3g} us per node (measured on a probe) subtracted, the medians then "
                  f"exceed the run's CPU time by {s['profiler_excess_ms']:+.3g} ms (not spread over the nodes)")
    if (c := profile.conditions) is not None:
        print_conditions(console, c, f"reference kernel before/after: {c.reference_before[1] * 1e6:.4g}/"
                                     f"{c.reference_after[1] * 1e6:.4g} us CPU, {c.core_share:.0%} of its core; ")
    console.print(f"stage hand-off: {h['overhead_us']:.3g} us + bytes / {h['bandwidth_GBps']:.3g} GB/s "
                  f"(wake-up {h['wakeup_us']:.3g} us)")
    console.print(f"roofline (xeon-8380-core preset) per node, measured/predicted: p10/p50/p90 = "
                  f"{e['p10']:.2f}/{e['p50']:.2f}/{e['p90']:.2f}, {e['within_2x']:.0%} within 2x")
    console.print(f"wrote {args.output}")
    return 0
