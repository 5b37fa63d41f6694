"""``pipesim estimate TRAINING_CONFIG.json --sailor-plan PLAN.json``: a Sailor plan's predicted time and memory.

The ``estimate`` command delegates here when given ``--sailor-plan``: the
training config, the plan and Sailor's profiles (``--profiles DIR``, default
the config's folder) are read as Sailor writes them
(:mod:`pipesim.placement.plan.sailor_format`) and predicted by
:func:`pipesim.placement.plan.sailor.estimate_sailor_plan` (docs/model.md §12.2).
A plan that was run for real is shown against its measurement, with the
difference.
"""

from __future__ import annotations

import sys

from rich.markup import escape
from rich.table import Table

from pipesim.commands.common import console, print_json
from pipesim.errors import PipesimError
from pipesim.hardware.units import BYTES, TIME, format_quantity

__all__ = ["run"]


def _diff(predicted: float, measured: float | None) -> str:
    if not measured:
        return ""
    return f"{(predicted - measured) / measured * 100:+.1f}%"


def run(args) -> int:
    """Print the estimate (``args.model``: training config, ``args.sailor_plan``, ``args.profiles``, ``args.json``)."""
    from pipesim.placement.plan.sailor import estimate_sailor_plan, load_sailor_inputs
    from pipesim.placement.plan.sailor_format import read_sailor_plan

    try:
        plan = read_sailor_plan(args.sailor_plan)
        inputs = load_sailor_inputs(args.model, getattr(args, "profiles", None))
        result = estimate_sailor_plan(plan, inputs)
    except PipesimError as exc:  # one line, exit 2 (also when called outside pipesim's main)
        print(f"pipesim: error: {exc}", file=sys.stderr)
        return 2
    measured = plan.measured
    if getattr(args, "json", False):
        out = result.to_dict()
        out["measured"] = {"iteration_time": measured.iteration_time, "memory_per_gpu": measured.max_memory}
        print_json(out)
        return 0
    table = Table(title=escape(f"{args.sailor_plan} ({inputs.config.model}, mbs {plan.mbs}, "
                              f"{result.microbatches} microbatches, {plan.gpus} GPUs)"))
    for column in ("pipeline", "stage", "layers", "replicas", "GPU", "compute/mb", "transfer/mb",
                   "optimizer", "grad sync", "memory/GPU"):
        table.add_column(column, justify="right" if column not in ("GPU",) else "left")
    for s in result.stages:
        table.add_row(str(s.pipeline), str(s.stage), f"{s.layers[0]}-{s.layers[1]}", str(s.replicas),
                      escape(",".join(s.gpu_types)), format_quantity(s.compute, TIME),
                      format_quantity(s.transfer, TIME), format_quantity(s.optimizer, TIME),
                      format_quantity(s.gradient_sync, TIME), format_quantity(s.memory_per_gpu, BYTES))
    console.print(table)
    if any(s.rebuild for s in result.stages):
        console.print("of transfer/mb, rebuilding received tensors (§12.2): " + ", ".join(
            f"stage {s.stage} {format_quantity(s.rebuild, TIME)}" for s in result.stages if s.rebuild))
    console.print(f"pipeline fill+drain {format_quantity(result.pipeline_fill_drain, TIME)}, steady "
                  f"{format_quantity(result.pipeline_steady, TIME)} (stage {result.bottleneck_stage} binds), "
                  f"optimizer {format_quantity(result.optimizer, TIME)}, "
                  f"gradient sync {format_quantity(result.gradient_sync, TIME)}")
    line = f"iteration time: [bold]{format_quantity(result.iteration_time, TIME)}[/bold]"
    if measured.iteration_time:
        line += (f"  (measured {format_quantity(measured.iteration_time, TIME)}, "
                 f"{_diff(result.iteration_time, measured.iteration_time)})")
    console.print(line)
    line = f"memory per GPU: [bold]{format_quantity(result.memory_per_gpu, BYTES)}[/bold]"
    if measured.max_memory:
        line += (f"  (measured {format_quantity(measured.max_memory, BYTES)}, "
                 f"{_diff(result.memory_per_gpu, measured.max_memory)})")
    console.print(line)
    return 0
