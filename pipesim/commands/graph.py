"""``pipesim graph generate|import|whatif``: workloads from models and hardware.

* ``generate MODEL`` builds a transformer (BERT/GPT), ResNet-50, Inception-v3
  or GNMT graph for a hardware system (``--hardware``, what-if ``--set``);
* ``import MODEL.onnx`` does the same from an ONNX file;
* ``whatif WORKLOAD.json --set accelerator.speed=2`` rescales a workload
  whose times are given (paper format).

Outputs: ``-o OUT.json`` is paper-format JSON when the system has at most one
accelerator and one CPU class (so every solver and ``pipesim evaluate`` read
it), with the native form beside it as ``OUT.native.json``; for other systems
``OUT.json`` is the native form (which ``pipesim`` commands also read).
"""

from __future__ import annotations

from pathlib import Path

from pipesim.commands.common import console, load_workload, positive_int, print_json
from pipesim.commands.hardware import system_from_args, user_errors
from pipesim.hardware.costs import DEFAULT_TRAINING_OPTIMIZER, OPTIMIZERS
from pipesim.hardware.whatif import parse_assignments
from pipesim.placement.devices import ACCELERATOR, CPU
from pipesim.placement.formats import write_paper_workload
from pipesim.workloads.export import write_workload
from pipesim.workloads.gnmt import GNMTConfig, gnmt
from pipesim.workloads.inception import inception_v3
from pipesim.workloads.lower import lower
from pipesim.workloads.native import write_native_workload
from pipesim.workloads.onnx_import import fuse_by_prefix, import_onnx
from pipesim.workloads.opgraph import OpGraph
from pipesim.workloads.resnet import resnet50
from pipesim.workloads.transformer import SIZES, TransformerConfig, transformer
from pipesim.workloads.whatif import scale_workload

MODELS = ("transformer", "resnet50", "inceptionv3", "gnmt")


def _hardware_options(p) -> None:
    p.add_argument("--hardware", default="a100x8", help="system preset name or YAML file (default: a100x8)")
    p.add_argument("--set", action="append", metavar="CLASS.FIELD=VALUE",
                   help="what-if edit of the system, e.g. a100.speed=2, cpu.count=4, v100.device=h100-sxm")
    p.add_argument("--training", action="store_true", help="add backward and optimizer-update nodes")
    p.add_argument("--optimizer", default=DEFAULT_TRAINING_OPTIMIZER, choices=tuple(OPTIMIZERS),
                   help="training recipe for --training (bytes per parameter: mixed-adam 16, fp32-adam 16, "
                        "sgd-momentum 12; adam|momentum|sgd keep every state at the model's data type)")
    p.add_argument("-o", "--output", required=True, help="output workload file (.json)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def register(subparsers) -> None:
    p = subparsers.add_parser("graph", help="generate or import workload graphs for a hardware system")
    sub = p.add_subparsers(dest="action", required=True)

    gen = sub.add_parser("generate", help="a model's graph on a hardware system")
    gen.add_argument("model", choices=MODELS)
    gen.add_argument("--size", choices=sorted(SIZES), help="transformer: a published size (others override it)")
    gen.add_argument("--layers", type=positive_int, help="transformer/gnmt: number of layers")
    gen.add_argument("--hidden", type=positive_int, help="transformer/gnmt: hidden width")
    gen.add_argument("--heads", type=positive_int, help="transformer: attention heads")
    gen.add_argument("--seq", type=positive_int, help="transformer/gnmt: sequence length")
    gen.add_argument("--vocab", type=positive_int, help="transformer/gnmt: vocabulary size")
    gen.add_argument("--decoder", action="store_true", help="transformer: GPT-style decoder (LM head)")
    gen.add_argument("--batch", type=positive_int, help="samples per batch")
    gen.add_argument("--image", type=positive_int, help="resnet50/inceptionv3: image side in pixels")
    gen.add_argument("--dtype", default="fp16", help="data type (fp32, fp16, bf16, ...; default fp16)")
    gen.add_argument("--granularity", default="layer", choices=("layer", "operator"))
    _hardware_options(gen)
    gen.set_defaults(run=run)

    imp = sub.add_parser("import", help="an ONNX model's graph on a hardware system")
    imp.add_argument("model", help="ONNX model file")
    imp.add_argument("--batch", type=positive_int, default=1, help="value for symbolic input dimensions (default 1)")
    imp.add_argument("--dtype", help="cost as this data type (default: that of the model's float tensors)")
    imp.add_argument("--fuse-depth", type=positive_int, metavar="D",
                     help="fuse operators sharing the first D components of their node names (/encoder/layer.0/...)")
    _hardware_options(imp)
    imp.set_defaults(run=run)

    what = sub.add_parser("whatif", help="rescale a workload's given times (speed, link, memory, count)")
    what.add_argument("workload", help="workload file (paper or native JSON)")
    what.add_argument("--set", action="append", required=True, metavar="CLASS.FIELD=VALUE",
                      help="e.g. accelerator.speed=2, accelerator.link=0.5, cpu.count=4")
    what.add_argument("-o", "--output", required=True, help="output workload file (.json)")
    what.set_defaults(run=run)


def _given(args, **names: str) -> dict:
    """The options the user gave, renamed to the config's field names."""
    return {field: getattr(args, opt) for opt, field in names.items() if getattr(args, opt) is not None}


def build_model(args) -> OpGraph:
    if args.model == "transformer":
        base = SIZES[args.size] if args.size else TransformerConfig()
        fields = {**vars(base), **_given(args, layers="layers", hidden="hidden", heads="heads", seq="seq",
                                          vocab="vocab", batch="batch"), "dtype": args.dtype}
        if args.decoder:
            fields["decoder"] = True
        fields["max_positions"] = max(fields["max_positions"], fields["seq"])
        return transformer(TransformerConfig(**fields), granularity=args.granularity)
    if args.model == "gnmt":
        config = GNMTConfig(**_given(args, layers="layers", hidden="hidden", seq="seq", vocab="vocab", batch="batch"),
                            dtype=args.dtype)
        return gnmt(config, granularity=args.granularity)
    build = resnet50 if args.model == "resnet50" else inception_v3
    return build(args.batch or 1, dtype=args.dtype, granularity=args.granularity, **_given(args, image="image"))


def _summary(ops: OpGraph, workload, written: list[Path]) -> dict:
    graph = workload.graph
    return {
        "name": ops.name,
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
    workload = scale_workload(load_workload(args.workload), parse_assignments(args.set))
    names = {dc.name for dc in workload.devices}
    if names == {ACCELERATOR, CPU}:
        write_paper_workload(args.output, workload)
    else:
        write_native_workload(args.output, workload)
    console.print(f"wrote {args.output}")
    return 0


def _import(args) -> OpGraph:
    ops = import_onnx(args.model, batch=args.batch, dtype=args.dtype)
    return fuse_by_prefix(ops, args.fuse_depth) if args.fuse_depth else ops


def run(args) -> int:
    with user_errors():
        if args.action == "whatif":
            return _whatif(args)
        system = system_from_args(args.hardware, args.set)
        ops = build_model(args) if args.action == "generate" else _import(args)
        workload = lower(ops, system, training=args.training, optimizer=args.optimizer)
        written = write_workload(args.output, workload, system, name=ops.name)
    summary = _summary(ops, workload, written)
    if args.json:
        print_json(summary)
        return 0
    console.print(
        f"{ops.name}: {summary['nodes']} nodes, {summary['edges']} edges, "
        f"{ops.flops / 1e9:.4g} GFLOP forward, {ops.params / 1e6:.4g} M parameters on {system.name}"
    )
    for path in written:
        console.print(f"wrote {path}")
    return 0
