"""``pipesim plan WORKLOAD``: the best pipeline × data × tensor-parallel plan (docs/model.md §10).

``pipesim plan --evaluate plan.json WORKLOAD`` re-evaluates a saved plan with
the one cost model for plans.  Bare numbers for ``--memory`` and
``--bandwidth`` are GiB and GiB/s (as Piper's driver takes them).
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from pipesim.commands import hetero_plan
from pipesim.commands.common import console, count, print_json, solve_options, writable
from pipesim.report.tables import plan_table, print_table
from pipesim.hardware.clusters import load_cluster
from pipesim.commands import EXIT_INFEASIBLE
from pipesim.errors import HardwareError
from pipesim.hardware.units import BANDWIDTH, BYTES, is_number, parse
from pipesim.placement.formats import InputError, load_json, write_json
from pipesim.placement.plan.piper_format import is_piper_format, read_piper_workload
from pipesim.placement.plan.solve import cluster_limits, solve_plan
from pipesim.placement.plan.evaluate import evaluate_plan
from pipesim.placement.plan.flush import Geometry, evaluate_flush_plan, solve_flush_plan
from pipesim.placement.plan.result import read_plan
from pipesim.placement.plan.workload import PlanningWorkload


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="best hybrid-parallel plan (pipeline x data x tensor) under memory")
    p.add_argument("workload", help="Piper's JSON file, or a scenario YAML (its generated model on its hardware.cluster)")
    p.add_argument("--devices", type=count, metavar="K", help="devices (default: the file's maxDevices)")
    p.add_argument("--hardware", metavar="CLUSTER", help="cluster preset or YAML: K, M, BW, t within a node; "
                   "nodes and links for --objective flush ('flat': one node of the file's K devices at its BW)")
    p.add_argument("--memory", metavar="BYTES", help="memory per device, e.g. 8GiB (bare number: GiB)")
    p.add_argument("--bandwidth", metavar="RATE", help="bandwidth per device, e.g. 25GiB/s (bare number: GiB/s)")
    p.add_argument("--microbatches", type=count, metavar="N", help="microbatches per batch")
    p.add_argument("--objective", choices=["piper", "flush", "megatron", "time", "cost"], default=None,
                   help="what to minimise: piper (Piper's time per sample), flush (1F1B-with-flush iteration time, "
                   "needs a cluster), megatron (an LLM's step time under Megatron-Core), time|cost (a Sailor "
                   "training config on a heterogeneous cluster); default: megatron for an LLM with --gbs or "
                   "solve.options.gbs, else a scenario's solve.options.objective (flush, as pipesim run), else piper")
    p.add_argument("--gbs", type=count, metavar="G", help="megatron: the global batch in sequences (fixed)")
    p.add_argument("--precision", choices=["bf16", "fp16", "fp8"], default=None, help="megatron: default bf16")
    p.add_argument("--nodes", type=count, metavar="N", help="megatron: resize the cluster to N nodes")
    p.add_argument("--per-stage", action="store_true",
                   help="megatron: also show the best plan whose stages choose their own tensor- and data-parallel "
                        "degree and recomputation (not runnable by Megatron-Core) and its gain")
    p.add_argument("--no-data-parallel", action="store_true", help="d = 1 for every stage")
    p.add_argument("--no-tensor-parallel", action="store_true", help="t = 1 for every stage")
    p.add_argument("--no-recompute", action="store_true", help="no activation recomputation")
    p.add_argument("--evaluate", metavar="PLAN", help="re-evaluate this plan file instead of planning")
    p.add_argument("--sweep", metavar="K,K,...", help="throughput against these device counts (flush model): the "
                   "planner beside the pipeline DP (t=d=1) and an equal split; needs a cluster")
    p.add_argument("--sweep-memory", metavar="M,M,...", help="with --sweep: also vary the memory per device")
    p.add_argument("--plot", metavar="PNG", help="with --sweep: draw throughput against devices here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("-o", "--output", metavar="PLAN", help="write the plan as JSON to this file")
    hetero_plan.add_arguments(p)
    p.set_defaults(run=run)


#: ``--hardware flat``: no cluster, one node of the file's K devices at its bandwidth (the flush model's flat geometry)
FLAT = "flat"


def _quantity(text: str | None, kind: str, field: str) -> float | None:
    """``--memory``/``--bandwidth``: a positive quantity (a bare number is GiB or GiB/s); anything else is one line.

    Examples
    --------
    >>> _quantity("2", BYTES, "--memory"), _quantity("1KiB", BYTES, "--memory")
    (2147483648.0, 1024.0)
    >>> _quantity("-1GiB", BYTES, "--memory")
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: --memory: must be positive, got '-1GiB' (e.g. 8GiB; a bare number is GiB)
    """
    if text is None:
        return None
    unit = "GiB" if kind == BYTES else "GiB/s"
    try:
        value = -1.0 if text.strip().startswith("-") else float(text) * 2**30 if is_number(text) else parse(text, kind, field)
    except HardwareError as exc:  # its message starts with the field: keep one prefix
        raise InputError(None, field, exc.problem) from None
    except ValueError as exc:
        raise InputError(None, field, str(exc)) from None
    if not value > 0 or value == float("inf"):
        raise InputError(None, field, f"must be positive, got {text!r} (e.g. 8{unit}; a bare number is {unit})")
    return value


def load_planning_workload(path_text: str) -> PlanningWorkload:
    """Piper's JSON file (:func:`pipesim.api.load_planning_workload`, the API's loader)."""
    path = Path(path_text)
    data = load_json(path)
    if not is_piper_format(data):
        raise InputError(path, "nodes", "pipesim plan reads Piper's format (nodes with TMPCs), or a scenario YAML "
                         "with a generated model")
    return read_piper_workload(path, data)


def _from_scenario(args):
    """A scenario's model on its cluster (or on ``--hardware``), as a planning workload, and its plan options.

    The options are the scenario's ``solve.options`` when it plans (``solve.method: plan``), so that
    ``pipesim plan`` and ``pipesim run`` give one answer per scenario (objective ``flush`` by default, as run).
    """
    from pipesim.scenario import PLAN_METHOD, read_scenario_data, scenario_from_data

    data = read_scenario_data(args.workload)
    data["solve"] = {"method": PLAN_METHOD,
                     "options": {k: v for k, v in ((data.get("solve") or {}).get("options") or {}).items()
                                 if data.get("solve", {}).get("method") == PLAN_METHOD}}
    if args.microbatches:
        data["solve"]["options"]["microbatches"] = args.microbatches
    if args.hardware == FLAT:
        raise InputError(None, "--hardware", "flat is for Piper files: a scenario's model is built for a cluster's nodes")
    if args.hardware:
        data["hardware"] = {"cluster": args.hardware}
    for key in ("simulate", "sweep", "output"):
        data.pop(key, None)
    scenario = scenario_from_data(data, args.workload)
    options = dict(scenario.options)  # checked and typed (sizes in bytes) by the scenario
    options.setdefault("objective", "flush")  # pipesim run's default for a planning scenario
    return scenario.planning_workload(), scenario.cluster, options


def _llm_file(path_text: str) -> dict:
    """The YAML data of an LLM model file or scenario ({} for anything else)."""
    if not path_text.endswith((".yaml", ".yml")):
        return {}
    import yaml

    from pipesim.hardware.catalog import safe_load_text

    try:
        data = safe_load_text(Path(path_text).read_text(), str(path_text))
    except (OSError, ValueError, yaml.YAMLError, HardwareError):  # not a readable scenario: other readers say why
        return {}
    return data if isinstance(data, dict) else {}


def _megatron(args, data: dict) -> int:
    """``--objective megatron``: the fastest Megatron-Core configuration that fits (docs/model.md §11.9)."""
    from pipesim.placement.plan.megatron import with_nodes
    from pipesim.placement.plan.megatron_plan import plan_megatron
    from pipesim.workloads.llms import load_llm

    options = solve_options(data)
    model = load_llm(args.workload)
    hardware = args.hardware or (data.get("hardware") or {}).get("cluster")
    if hardware is None:
        raise InputError(args.workload, "hardware.cluster", "needed: give --hardware CLUSTER or hardware.cluster")
    cluster = load_cluster(hardware)
    if args.nodes:
        cluster = with_nodes(cluster, args.nodes)
    gbs = args.gbs or options.get("gbs")
    if gbs is None:
        raise InputError(None, "--gbs", "required: the global batch in sequences (or solve.options.gbs)")
    if isinstance(gbs, bool) or not isinstance(gbs, int) or gbs < 1:
        raise InputError(args.workload, "solve.options.gbs", f"must be a positive integer, got {gbs!r}")
    precision = args.precision or options.get("precision") or "bf16"
    if precision not in ("bf16", "fp16", "fp8"):
        raise InputError(args.workload, "solve.options.precision", f"must be bf16, fp16 or fp8, got {precision!r}")
    per_stage = options.get("per_stage", False)
    if not isinstance(per_stage, bool):
        raise InputError(args.workload, "solve.options.per_stage", f"must be true or false, got {per_stage!r}")
    with console.status("searching Megatron-Core configurations …"):
        plan = plan_megatron(model, cluster, gbs, precision, per_stage=args.per_stage or per_stage)
    output = writable(args.output, "plan")
    if output:
        write_json(output, plan.to_dict())
    if args.json:
        print_json({"workload": str(args.workload), **plan.to_dict()})
        return 0
    from pipesim.commands.estimate import table

    console.print(table(plan.best, args.workload))
    console.print(f"searched {plan.searched} configurations ({plan.fitting} fit) in {plan.seconds:.2f} s; "
                  f"{len(plan.stages())} stages of {', '.join(str(s['layers']) for s in plan.stages())} layers")
    if plan.per_stage is not None:
        console.print(_per_stage_table(plan))
    for note in plan.notes:
        console.print(f"note: {note}")
    return 0


def _per_stage_table(plan):
    """The per-stage plan beside the runnable pick: each stage's degrees, the time and the gain (§11.9)."""
    from rich.console import Group as Lines
    from rich.table import Table

    ps = plan.to_dict()["per_stage"]
    c = ps["config"]
    head = (f"per-stage search ({plan.per_stage_searched} pipeline settings, degrees and recomputation per stage): ")
    if plan.fitting and ps["runnable"] and ps["gain"] <= 0:
        return head + "no plan beats the pick above"
    runnable = ("runnable by Megatron-Core" if ps["runnable"]
                else "NOT runnable by Megatron-Core (its degrees and recomputation are one per run)")
    if not plan.fitting:
        # no runnable configuration fits: the per-stage plan is the pick above itself
        line = (head + f"no configuration Megatron-Core can run fits; the plan above, {ps['iteration_time']:.4f} "
                f"s/step, p={c['pp']} c={c['cp']} v={c['vp']}, {ps['memory_per_gpu'] / 2**30:.1f} GiB per GPU, "
                f"is {runnable}")
    else:
        line = (head + f"{ps['iteration_time']:.4f} s/step against {plan.iteration_time:.4f} s, {ps['gain']:+.2%} "
                f"faster; p={c['pp']} c={c['cp']} v={c['vp']}, {ps['memory_per_gpu'] / 2**30:.1f} GiB per GPU; "
                f"{runnable}")
    table = Table()
    for name in ("stage", "layers", "t", "d", "mbs", "recompute"):
        table.add_column(name, justify="left" if name == "recompute" else "right")
    for st in ps["stages"]:
        table.add_row(*(str(st[k]) for k in ("stage", "layers", "t", "d", "mbs", "recompute")))
    return Lines(line, table)


def planner_for(args, data: dict) -> str:
    """Which planner answers ``pipesim plan FILE``: one place for the rule (the guide states it).

    ``sailor``: a Sailor training config, or a scenario naming one (docs/model.md §12.4); ``layers``: an LLM
    scenario or model file with objective time|cost, planned across GPU types on §11's per-layer profiles
    (§12.7); ``megatron``: an LLM with ``--objective megatron``, a global batch (``--gbs`` or
    ``solve.options.gbs``) or a preset name (§11.9); ``graph``: Piper's JSON or a scenario's generated
    model, with objective piper or flush (§10).  ``data`` is the file's YAML (:func:`_llm_file`).
    """
    if hetero_plan.applies(args.workload):
        return "sailor"
    options = solve_options(data)
    objective = args.objective or options.get("objective")
    if objective in ("time", "cost"):
        if not data.get("model"):
            raise InputError(args.workload, "--objective", "time|cost plan a Sailor training config "
                             "(model, global_batch_size, num_all_layers) or an LLM scenario; use piper or flush here")
        return "layers"
    preset = not args.workload.endswith((".yaml", ".yml", ".json")) and not Path(args.workload).exists()
    if objective == "megatron" or (args.objective is None and (args.gbs is not None or "gbs" in options or preset)):
        return "megatron"
    return "graph"


def run(args) -> int:
    data = _llm_file(args.workload)
    planner = planner_for(args, data)
    if planner == "sailor":
        return hetero_plan.run(args)
    if planner == "layers":
        return hetero_plan.run_scenario(args, data)
    if planner == "megatron":
        return _megatron(args, data)
    if args.plot and not args.sweep:
        raise InputError(None, "--plot", "draws the --sweep: give --sweep K,K,... too")
    output = writable(args.output, "plan", "--output")  # before the work: a bad path fails at once
    writable(args.plot, "plot", "--plot")
    memory = _quantity(args.memory, BYTES, "--memory")  # before loading: a bad flag fails at once
    bandwidth = _quantity(args.bandwidth, BANDWIDTH, "--bandwidth")
    if args.workload.endswith((".yaml", ".yml")):
        workload, cluster, options = _from_scenario(args)
    else:
        workload = load_planning_workload(args.workload)
        cluster = load_cluster(args.hardware) if args.hardware and args.hardware != FLAT else None
        options = {}
    objective = args.objective or options.get("objective", "piper")
    limits = cluster_limits(cluster) if cluster is not None else {}

    def first(*values):
        return next((v for v in values if v is not None), None)

    workload = workload.with_limits(
        devices=first(args.devices, options.get("devices"), limits.get("devices")),
        memory=first(memory, options.get("memory"), limits.get("memory")),
        bandwidth=first(bandwidth, limits.get("bandwidth")),
        microbatches=args.microbatches,
    )
    if args.sweep:
        return _sweep(args, workload, cluster)
    switches = {"data_parallel": not args.no_data_parallel and options.get("data_parallel", True),
                "tensor_parallel": not args.no_tensor_parallel and options.get("tensor_parallel", True),
                "recompute": not args.no_recompute and options.get("recompute", True)}
    if objective == "flush" and cluster is None and not args.evaluate and args.hardware != FLAT:
        # without nodes and links the flush model plans on one flat node of all K devices: every tensor-parallel
        # degree fits in it and the search grows (seen: bert32a100, 7 minutes, 1.2 GB, no output), for an answer
        # about no real machine; so it is asked for by name
        raise InputError(None, "--objective flush", "needs a cluster: give --hardware CLUSTER (e.g. dgx-a100x4; "
                         "'pipesim hardware list' shows them), or --hardware flat for one node of the file's "
                         "devices (slow on large files)")
    if objective == "flush":
        geometry = Geometry.of(cluster, workload.devices) if cluster is not None else Geometry.flat(workload)
        if args.evaluate:
            plan = evaluate_flush_plan(workload, read_plan(args.evaluate), geometry)
        else:
            plan = solve_flush_plan(workload, geometry, **switches)
    elif args.evaluate:
        plan = evaluate_plan(workload, read_plan(args.evaluate))
    else:
        plan = solve_plan(workload, max_tensor_parallel=limits.get("max_tensor_parallel"), **switches)
    if output:
        write_json(output, plan.to_dict())
    code = 0 if plan.feasible else EXIT_INFEASIBLE  # an infeasible plan is an answer, but not a success
    if args.json:
        print_json({"workload": workload.name, **plan.to_dict()})
        return code
    if plan.stages:
        print_table(console, plan_table(plan, workload))
    if plan.reason:
        console.print(f"[red]{plan.status}:[/red] {escape(plan.reason)}" if not plan.feasible else f"note: {escape(plan.reason)}")
    if plan.stages and plan.feasible:
        console.print(
            (f"iteration time: [bold]{plan.iteration_time:.6g}[/bold] s for {workload.microbatches} microbatches; "
             if plan.iteration_time is not None else "")
            + f"time per sample: [bold]{plan.time_per_sample:.10g}[/bold] s ({plan.status}); "
            f"{plan.devices_used} of {workload.devices} devices; {len(plan.stages)} stages"
            + (f"; planned in {plan.seconds:.2f} s" if plan.seconds is not None else "")
        )
    return code



def _sweep(args, workload: PlanningWorkload, cluster) -> int:
    from pipesim.plan_sweep import plan_sweep, write_sweep_plot

    if cluster is None:
        raise InputError(None, "--sweep", "needs a cluster: --hardware CLUSTER, or a scenario with hardware.cluster")
    try:
        devices = [int(x) for x in args.sweep.split(",") if x.strip()]
    except ValueError:
        raise InputError(None, "--sweep", f"must be device counts such as 4,8,16,32, got {args.sweep!r}") from None
    if not devices or min(devices) < 1 or max(devices) > cluster.device_count:
        raise InputError(None, "--sweep", f"device counts must be between 1 and the cluster's {cluster.device_count}")
    memories = None
    if args.sweep_memory:
        memories = [_quantity(x.strip(), BYTES, "--sweep-memory") for x in args.sweep_memory.split(",") if x.strip()]
    with console.status("sweeping …"):
        points = plan_sweep(workload, cluster, devices, memories)
    if args.plot:
        write_sweep_plot(points, Path(args.plot),
                         f"{workload.name} on {cluster.name}: throughput against GPUs (N={workload.microbatches})")
    if args.json:
        print_json({"workload": workload.name, "cluster": cluster.name, "points": [p.to_dict() for p in points]})
        return 0
    table = Table(title=f"{workload.name} on {cluster.name}: 1F1B-with-flush throughput, N={workload.microbatches}")
    for col in ("GPUs", "memory", "planner", "iteration s", "samples/s", "stages (layers, t, d)"):
        table.add_column(col, justify="left" if col in ("planner", "stages (layers, t, d)") else "right")
    for p in points:
        table.add_row(str(p.devices), f"{p.memory / 2**30:.4g} GiB", p.planner,
                      f"{p.iteration_time:.5g}" if p.iteration_time else p.status,
                      f"{p.throughput:.5g}" if p.throughput else "—", p.shape)
    console.print(table)
    if args.plot:
        console.print(f"wrote {args.plot}", highlight=False)
    return 0
