"""``pipesim estimate MODEL --hardware CLUSTER --tp T --pp P …``: one Megatron-Core configuration, no search.

The step time of one global batch and the memory per GPU of an LLM trained
with the given tensor/pipeline/context/virtual-pipeline degrees, microbatch
size and global batch (docs/model.md §11), by :func:`pipesim.estimate`.
``MODEL`` is a preset name (``llama3.1-70b``…) or a YAML file with a
``model:`` section.  With ``--sailor-plan`` the estimate is of a Sailor plan
(:mod:`pipesim.commands.sailor_estimate`).
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from pipesim.commands.common import console, count, print_json
from pipesim.errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser("estimate", help="step time and memory of one LLM training configuration (Megatron-Core)")
    p.add_argument("model", help="an LLM preset (llama3.1-8b, llama3.1-70b, llama3.1-405b, nemotron4-15b, "
                   "nemotron4-340b, gpt3-175b) or a YAML file with a model: section")
    p.add_argument("--hardware", metavar="CLUSTER", help="cluster preset or YAML (one node type)")
    p.add_argument("--nodes", type=count, metavar="N", help="resize the cluster to N nodes")
    p.add_argument("--tp", type=count, default=1, metavar="T", help="tensor-parallel degree (default 1)")
    p.add_argument("--pp", type=count, default=1, metavar="P", help="pipeline-parallel degree (default 1)")
    p.add_argument("--cp", type=count, default=1, metavar="C", help="context-parallel degree (default 1)")
    p.add_argument("--vp", type=count, default=1, metavar="V", help="virtual pipeline stages per rank (default 1)")
    p.add_argument("--mbs", type=count, default=1, metavar="B", help="microbatch size in sequences (default 1)")
    p.add_argument("--gbs", type=count, metavar="G", help="global batch in sequences")
    p.add_argument("--precision", choices=["bf16", "fp16", "fp8"], default="bf16", help="default bf16")
    p.add_argument("--recompute", choices=["none", "selective", "full"], default=None,
                   help="activation recomputation (default: the fastest that fits)")
    p.add_argument("--no-sequence-parallel", action="store_true", help="turn sequence parallelism off")
    p.add_argument("--no-distributed-optimizer", action="store_true", help="replicate optimizer states over d")
    p.add_argument("--attention", choices=["flash", "unfused"], default="flash", help="default flash (fused)")
    p.add_argument("--no-tp-overlap", action="store_true", help="do not overlap TP communication with GEMMs")
    p.add_argument("--no-dp-overlap", action="store_true", help="do not overlap DP communication with compute")
    p.add_argument("--no-pp-overlap", action="store_true",
                   help="do not overlap pipeline transfers with compute (interleaved schedules overlap them by default)")
    p.add_argument("--grad-reduce-fp32", action="store_true", help="keep and reduce gradients in fp32")
    p.add_argument("--dropout", type=float, default=0.0, metavar="P", help="attention and hidden dropout (default 0)")
    p.add_argument("--simulate", action="store_true",
                   help="also run the pipeline in the discrete-event simulator (interleaved 1F1B) and compare")
    p.add_argument("--sailor-plan", metavar="PLAN", help="estimate a Sailor plan (JSON) instead")
    p.add_argument("--profiles", metavar="DIR", help="with --sailor-plan: the profiles folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.sailor_plan:
        from pipesim.commands.sailor_estimate import run as run_sailor

        return run_sailor(args)
    if args.hardware is None:
        raise InputError(None, "--hardware", "required: a cluster preset or YAML file")
    if args.gbs is None:
        raise InputError(None, "--gbs", "required: the global batch in sequences")
    from pipesim.api import estimate

    result = estimate(args.model, args.hardware, nodes=args.nodes, tp=args.tp, pp=args.pp, cp=args.cp, vp=args.vp,
                      mbs=args.mbs, gbs=args.gbs, precision=args.precision, recompute=args.recompute,
                      sequence_parallel=False if args.no_sequence_parallel else None,
                      distributed_optimizer=not args.no_distributed_optimizer, attention=args.attention,
                      tp_overlap=False if args.no_tp_overlap else None, dp_overlap=not args.no_dp_overlap,
                      grad_reduce_fp32=args.grad_reduce_fp32, dropout=args.dropout,
                      pp_overlap=False if args.no_pp_overlap else None)
    simulation = None
    if args.simulate:
        from pipesim.simulation.megatron_sim import simulate_estimate

        simulation = simulate_estimate(result)
    if args.json:
        print_json({"model": args.model, **result.to_dict(),
                    **({"simulation": simulation.to_dict()} if simulation else {})})
        return 0
    console.print(table(result, args.model))
    if simulation is not None:
        console.print(f"simulated iteration: {simulation.simulated_iteration_time:.4f} s "
                      f"({simulation.difference:+.2%} against the estimate's {result.iteration_time:.4f} s)")
    return 0


def table(result, name: str) -> Table:
    """The estimate as a rich table: configuration, time by cause, memory by kind."""
    d = result.to_dict()
    c = d["config"]
    title = (f"{escape(str(name))} on {c['gpus']} GPUs: t={c['tp']} p={c['pp']} c={c['cp']} v={c['vp']} d={c['dp']}, "
             f"mbs {c['mbs']}, gbs {c['gbs']} ({c['microbatches']} microbatches), {c['precision']}, "
             f"recompute {c['recompute']}")
    t = Table(title=title)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("share", justify="right")
    total = result.iteration_time
    t.add_row("[bold]iteration time[/bold]", f"[bold]{total:.3f} s[/bold]", "100%")
    for key, value in d["breakdown"].items():
        t.add_row(f"  {key.replace('_', ' ')}", f"{value:.3f} s", f"{value / total:.1%}")
    t.add_row("tokens/s per GPU", f"{result.tokens_per_second_per_gpu:,.0f}", "")
    t.add_row("model TFLOP/s per GPU", f"{result.model_tflops_per_gpu:.0f}", "")
    cap = result.capacity
    fits = "[green]fits[/green]" if result.fits else "[red]out of memory[/red]"
    t.add_row("[bold]memory per GPU[/bold]", f"[bold]{result.memory_per_gpu / 2**30:.1f} GiB[/bold]",
              f"{result.memory_per_gpu / cap:.0%} of {cap / 2**30:.0f} GiB, {fits}")
    for key, value in d["memory"].items():
        if key != "stage":
            t.add_row(f"  {key.replace('_', ' ')}", f"{value / 2**30:.1f} GiB", "")
    return t
