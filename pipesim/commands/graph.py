"""``pipesim graph generate|import|whatif``: workloads from models and hardware.

* ``generate MODEL`` builds a transformer (BERT/GPT), ResNet-50, Inception-v3
  or GNMT graph for a hardware system (``--hardware``, what-if edits with
  ``--whatif CLASS.FIELD=VALUE``);
* ``import MODEL.onnx`` does the same from an ONNX file;
* ``whatif WORKLOAD.json --whatif accelerator.speed=2`` rescales a workload
  whose times are given (paper or native format).

Outputs: ``-o OUT.json`` is paper-format JSON when the system has at most one
accelerator and one CPU class (so every solver and ``pipesim evaluate`` read
it), with the native form beside it as ``OUT.native.json``; for other systems
``OUT.json`` is the native form (which ``pipesim`` commands also read).
Missing folders of ``-o`` are created.
"""

from __future__ import annotations

import gc
import warnings
from contextlib import contextmanager
from pathlib import Path

from pipesim.commands.common import arg, console, load_workload, print_json, writable
from pipesim.errors import InputError, require_extra
from pipesim.placement.memory import MemoryBudget
from pipesim.hardware.catalog import load_system
from pipesim.hardware.costs import DEFAULT_TRAINING_OPTIMIZER, OPTIMIZERS
from pipesim.hardware.devices import System
from pipesim.hardware.whatif import apply_edits, parse_assignments
from pipesim.placement.devices import ACCELERATOR, CPU
from pipesim.placement.formats import write_paper_workload
from pipesim.placement.options import Bool, Int
from pipesim.workloads.export import write_workload
from pipesim.workloads.lower import lower
from pipesim.workloads.models import MODELS, PARAMETERS, build_model
from pipesim.workloads.native import write_native_workload
from pipesim.workloads.opgraph import OpGraph
from pipesim.workloads.whatif import scale_workload

WHATIF_HELP = "what-if edit CLASS.FIELD=VALUE (repeatable), e.g. a100.speed=2, cpu.count=4, v100.device=h100-sxm"


def system_from_args(name: str, assignments: list[str] | None) -> System:
    """The system preset or YAML file ``name`` with what-if edits applied."""
    system = load_system(name)
    return apply_edits(system, parse_assignments(assignments)) if assignments else system


def _hardware_options(p) -> None:
    p.add_argument("--hardware", default="a100x8", help="system preset name or YAML file (default: a100x8)")
    p.add_argument("--whatif", action="append", metavar="CLASS.FIELD=VALUE", help=WHATIF_HELP)
    p.add_argument("--training", action="store_true", help="add backward and optimizer-update nodes")
    p.add_argument("--optimizer", default=DEFAULT_TRAINING_OPTIMIZER, choices=tuple(OPTIMIZERS),
                   help="training recipe for --training (bytes per parameter: mixed-adam 16, fp32-adam 16, "
                        "sgd-momentum 12; adam|momentum|sgd keep every state at the model's data type)")
    p.add_argument("-o", "--output", required=True, help="output workload file (.json; folders are created)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def register(subparsers) -> None:
    p = subparsers.add_parser("graph", help="generate or import workload graphs for a hardware system")
    sub = p.add_subparsers(dest="action", required=True)

    gen = sub.add_parser("generate", help="a model's graph on a hardware system")
    gen.add_argument("model", choices=MODELS, help="which model to generate: " + ", ".join(MODELS))
    seen: dict[str, list[str]] = {}
    for model, params in PARAMETERS.items():
        for name in params:
            seen.setdefault(name, []).append(model)
    for name, models in seen.items():
        field = next(PARAMETERS[m][name] for m in models)
        flag, where = "--" + name, f"{field.help} [{', '.join(models)}]"
        if isinstance(field, Bool):
            gen.add_argument(flag, action="store_const", const=True, default=None, help=where)
        else:
            gen.add_argument(flag, type=arg(field, name), default=None, metavar=field.metavar, help=where)
    _hardware_options(gen)
    gen.set_defaults(run=run)

    imp = sub.add_parser("import", help="an ONNX model's graph on a hardware system")
    imp.add_argument("model", help="ONNX model file")
    imp.add_argument("--batch", type=arg(Int(), "--batch"), default=None,
                     help="value for symbolic input dimensions (default 1; a batch the exporter fixed is kept)")
    imp.add_argument("--dtype", help="cost as this data type (default: that of the model's float tensors)")
    imp.add_argument("--fuse-depth", type=arg(Int(minimum=1), "--fuse-depth"), metavar="D",
                     help="fuse operators sharing the first D components of their module path (node names "
                          "/encoder/layer.0/..., or the dynamo exporter's pkg.torch.onnx.name_scopes metadata)")
    imp.add_argument("--detach-inputs", action="store_true",
                     help="leave input branches (masks, position ids, rotary tables) free instead of attaching each "
                          "to the operator it feeds (their placements multiply the DP's ideals)")
    _hardware_options(imp)
    imp.set_defaults(run=run)

    what = sub.add_parser("whatif", help="rescale a workload's given times (speed, link, memory, count)")
    what.add_argument("workload", help="workload file (paper or native JSON)")
    what.add_argument("--whatif", action="append", required=True, metavar="CLASS.FIELD=VALUE",
                      help="e.g. accelerator.speed=2, accelerator.link=0.5, cpu.count=4 (repeatable)")
    what.add_argument("-o", "--output", required=True, help="output workload file (.json; folders are created)")
    what.set_defaults(run=run)


def batch_has_no_effect(given: int | None, batch: int, name: str) -> None:
    """Warn when ``--batch`` was given but the model's inputs fix another batch."""
    if given is not None and given != batch:
        from pipesim.workloads.onnx_import import NoEffectWarning

        warnings.warn(f"{name}: --batch {given} has no effect: the model's inputs fix the batch at {batch}",
                      NoEffectWarning, stacklevel=2)


def _model_params(args) -> dict:
    """The generator parameters the user gave (flags left unset are omitted); one the model does not take is an error."""
    ignored = sorted({name for params in PARAMETERS.values() for name in params} - set(PARAMETERS[args.model]))
    given = [name for name in ignored if getattr(args, name, None) is not None]
    if given:  # silently dropping --layers on resnet50 would write a model the user did not ask for
        flags = ", ".join("--" + n for n in given)
        takes = ", ".join("--" + n for n in PARAMETERS[args.model]) or "none"
        raise InputError(None, flags, f"not a parameter of {args.model} (its parameters: {takes})")
    return {name: getattr(args, name) for name in PARAMETERS[args.model] if getattr(args, name, None) is not None}


def _summary(ops: OpGraph, workload, written: list[Path]) -> dict:
    graph = workload.graph
    return {
        "name": ops.name,
        "batch": ops.attrs.get("batch"),
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "forward_flops": ops.flops,
        "params": ops.params,
        "total_memory": graph.total_memory,
        "total_time": {dc.name: graph.total_time(dc.name) for dc in workload.devices},
        "devices": [{"name": dc.name, "count": dc.count} for dc in workload.devices],
        "written": [str(p) for p in written],
    }


def _whatif(args) -> int:
    writable(args.output, "workload", "--output")
    workload = scale_workload(load_workload(args.workload), parse_assignments(args.whatif))
    names = {dc.name for dc in workload.devices}
    if names == {ACCELERATOR, CPU}:
        write_paper_workload(args.output, workload)
    else:
        write_native_workload(args.output, workload)
    console.print(f"wrote {args.output}")
    return 0


#: Peak memory per generated layer (operators, lowered nodes, both files' JSON): 1.5 GB for 100,000
#: transformer layers (benchmarks.graph_generate), rounded up; backward and update nodes triple it.
BYTES_PER_LAYER = 16 * 1024


@contextmanager
def _no_cycle_collection():
    """Python's cycle collector off while millions of long-lived objects are built (40% of the CPU time
    of a 100,000-layer model went to collections that found nothing); it runs once at the end."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def run(args) -> int:
    if args.action == "whatif":
        return _whatif(args)
    writable(args.output, "workload", "--output")
    system = system_from_args(args.hardware, args.whatif)
    with _no_cycle_collection():
        return _build_and_write(args, system)


def _build_and_write(args, system) -> int:
    if args.action == "generate":
        params = _model_params(args)
        layers = params.get("layers") or 0
        MemoryBudget().reserve(layers * BYTES_PER_LAYER * (3 if args.training else 1),
                               f"generating {layers:,} layers of {args.model}")  # before allocating any
        ops = build_model(args.model, **params)
    else:
        require_extra("onnx", "onnx")
        from pipesim.workloads.onnx_import import NoEffectWarning, fuse_by_prefix, import_onnx

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ops = import_onnx(args.model, batch=args.batch or 1, dtype=args.dtype, attach_inputs=not args.detach_inputs)
            batch_has_no_effect(args.batch, ops.attrs["batch"], ops.name)
            attached = len(ops.attached)
            if args.detach_inputs and not ops.attrs["input_branches"]:
                warnings.warn(f"{ops.name}: --detach-inputs has no effect: the model has no input branch", NoEffectWarning)
            if args.fuse_depth:
                ops = fuse_by_prefix(ops, args.fuse_depth)
        for w in caught:  # one line each, no source location (they are about the model, not our code)
            console.print(f"warning: {w.message}", style="yellow", markup=False, highlight=False)
        if attached and not args.json:
            console.print(f"{attached} input-branch operator(s) (masks, position ids...) placed with the operator "
                          "they feed (--detach-inputs to leave them free)", style="dim")
    workload = lower(ops, system, training=args.training, optimizer=args.optimizer)
    written = write_workload(args.output, workload, system, name=ops.name)
    summary = _summary(ops, workload, written)
    if args.json:
        print_json(summary)
        return 0
    batch = f", batch {ops.attrs['batch']}" if "batch" in ops.attrs else ""
    console.print(
        f"{ops.name}{batch}: {summary['nodes']} nodes, {summary['edges']} edges, "
        f"{ops.flops / 1e9:.4g} GFLOP forward, {ops.params / 1e6:.4g} M parameters on {system.name}"
    )
    for path in written:
        console.print(f"wrote {path}")
    return 0
