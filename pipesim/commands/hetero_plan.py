"""``pipesim plan TRAINING_CONFIG.json --hardware CLUSTER --objective time|cost``: one plan across GPU types and zones.

``pipesim plan SCENARIO.yaml`` does the same for a scenario naming a training config
(``model: {sailor: …}``, :mod:`pipesim.hetero_scenario`): its cluster and options apply unless
the command line gives them.

``pipesim plan`` delegates here when its input is a Sailor training config
(``model``, ``global_batch_size``, ``num_all_layers``): the profiles, layer
sizes (``--profiles DIR``, default the config's folder) and the cluster
(node types naming their ``gpu_type`` as the profiles do) go to
:func:`pipesim.placement.plan.hetero.plan_hetero` (docs/model.md §12.4).
The plan is printed stage by stage with its iteration time, $/hour and $ per
iteration; ``-o PLAN.json`` writes it in Sailor's plan format, which
``pipesim estimate CONFIG --sailor-plan PLAN.json`` reads back.
"""

from __future__ import annotations


from rich.markup import escape
from rich.table import Table

from pipesim.commands.common import console, count, print_json, solve_options, writable
from pipesim.errors import InputError
from pipesim.placement.formats import load_json, write_json

__all__ = ["add_arguments", "applies", "print_plan", "run", "run_scenario"]


def add_arguments(p) -> None:
    """The options only this path reads (``--objective time|cost`` is in ``plan``'s own choices)."""
    p.add_argument("--budget", type=float, metavar="USD_PER_H", help="time|cost objective: most $ per hour of GPUs used")
    p.add_argument("--min-throughput", type=float, metavar="ITER_PER_S",
                   help="time|cost objective: fewest iterations per second")
    p.add_argument("--profiles", metavar="DIR", help="Sailor's profiles folder (default: the training config's)")
    p.add_argument("--max-stages", type=count, metavar="S", help="most pipeline stages (default 3)")
    p.add_argument("--max-kinds", type=count, metavar="K", help="most distinct replica kinds (GPU type, zone, TP) "
                   "per stage (default 1; 2: a stage's replicas may differ, Sailor style, much slower search)")
    p.add_argument("--mbs", type=count, metavar="B", help="only this microbatch size")
    p.add_argument("--planner", choices=["pipesim", "uniform", "metis", "amp", "all"], default="pipesim",
                   help="training config: plan with pipesim's exact planner (default), a baseline's search rule "
                        "(uniform homogeneous split, Metis, AMP; docs/model.md §12.5), or all of them side by side, "
                        "every plan scored by the same model")


def applies(path_text: str) -> bool:
    """Whether ``path_text`` is a Sailor training config or a scenario planning one (this module plans it)."""
    from pipesim.hetero_scenario import hetero_scenario_data

    if hetero_scenario_data(path_text) is not None:
        return True
    if not path_text.endswith(".json"):
        return False
    try:
        data = load_json(path_text)
    except InputError:  # not readable as JSON: the other planners' readers say why
        return False
    return isinstance(data, dict) and {"model", "global_batch_size", "num_all_layers"} <= set(data) \
        and "nodes" not in data


def run_scenario(args, data: dict) -> int:
    """An LLM scenario (or model file) with objective time|cost: the plan on §11's per-layer profiles (§12.7).

    The command's flags override the scenario's ``solve.options`` and ``hardware.cluster``.
    """
    from pipesim.llm_scenario import hetero_plan_of

    output = writable(getattr(args, "output", None), "plan", "--output")  # before the work
    if getattr(args, "planner", "pipesim") != "pipesim":
        raise InputError(None, "--planner", "the baselines plan a Sailor training config; drop --planner here")
    data = dict(data)
    options = {k: v for k, v in solve_options(data).items() if k != "microbatches"}
    for key in ("objective", "gbs", "precision", "budget", "min_throughput", "max_stages", "max_kinds", "mbs"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    options.setdefault("objective", "time")
    if options["objective"] not in ("time", "cost"):
        raise InputError(args.workload, "solve.options.objective", "the heterogeneous planner minimises time or cost")
    data["solve"] = {"method": "plan", "options": options}
    if getattr(args, "hardware", None):
        data["hardware"] = {"cluster": args.hardware}
    for key in ("simulate", "sweep"):
        data.pop(key, None)
    with console.status("planning across GPU types …"):
        result, inputs, cluster = hetero_plan_of(args.workload, data)
    if output:
        write_json(output, result.sailor_json())
    if getattr(args, "json", False):
        print_json({"workload": str(args.workload), **result.to_dict()})
        return 0
    print_plan(result, inputs.config.model, cluster.name, options["objective"])
    return 0


def _money(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"${value:.{digits}g}"


def run(args) -> int:
    from pipesim.hardware.clusters import load_cluster
    from pipesim.placement.plan.hetero import plan_hetero
    from pipesim.placement.plan.sailor import load_sailor_inputs

    _scenario_defaults(args)
    if not getattr(args, "hardware", None):
        raise InputError(None, "--hardware", "planning a training config needs a cluster (preset or YAML)")
    objective = getattr(args, "objective", None) or "time"
    if objective not in ("time", "cost"):
        raise InputError(None, "--objective", f"a training config is planned for time or cost, not {objective!r}")
    output = writable(getattr(args, "output", None), "plan", "--output")  # before the work
    inputs = load_sailor_inputs(args.workload, getattr(args, "profiles", None))
    cluster = load_cluster(args.hardware)
    planner = getattr(args, "planner", "pipesim")
    if planner != "pipesim":
        return _run_baselines(args, inputs, cluster, objective, planner)
    result = plan_hetero(inputs, cluster, objective, budget=getattr(args, "budget", None),
                         min_throughput=getattr(args, "min_throughput", None), mbs=getattr(args, "mbs", None),
                         max_stages=getattr(args, "max_stages", None) or 3, max_kinds=getattr(args, "max_kinds", None))
    if output:
        write_json(output, result.sailor_json())
    if getattr(args, "json", False):
        print_json(result.to_dict())
        return 0
    print_plan(result, inputs.config.model, cluster.name, objective)
    return 0


def _scenario_defaults(args) -> None:
    """A scenario (``model: {sailor: CONFIG}``, pipesim/hetero_scenario.py): its config, profiles, cluster and
    options, each unless the command line gives it."""
    from pipesim.hetero_scenario import read_hetero_scenario

    if not args.workload.endswith((".yaml", ".yml")):
        return
    s = read_hetero_scenario(args.workload)
    args.workload = str(s.config)
    if s.profiles is not None and getattr(args, "profiles", None) is None:
        args.profiles = str(s.profiles)
    if not getattr(args, "hardware", None):
        args.hardware = s.cluster
    for option in ("objective", "budget", "min_throughput", "max_stages", "max_kinds", "mbs"):
        if getattr(args, option, None) is None:
            setattr(args, option, getattr(s, option))


def _run_baselines(args, inputs, cluster, objective: str, planner: str) -> int:
    """``--planner uniform|metis|amp|all``: the baselines' search rules, every plan scored by the one model."""
    from pipesim.placement.plan.baselines_hetero import PLANNERS, compare_planners

    for option in ("budget", "min_throughput", "mbs"):
        if getattr(args, option, None) is not None:
            raise InputError(None, "--planner", f"--{option.replace('_', '-')} is pipesim's planner's only "
                             f"(the baselines search their papers' space); drop it or use --planner pipesim")
    if planner == "all" and getattr(args, "output", None):
        raise InputError(None, "-o", "--planner all compares planners; write one planner's plan with --planner NAME")
    names = list(PLANNERS) if planner == "all" else [planner]
    rows = compare_planners(inputs, cluster, objective, planners=names, max_stages=getattr(args, "max_stages", None) or 3,
                            max_kinds=getattr(args, "max_kinds", None) or 1)
    if planner != "all":
        row = rows[0]
        if row.result is None:
            from pipesim.errors import InfeasibleError
            raise InfeasibleError(row.reason)
        output = writable(getattr(args, "output", None), "plan")
        if output:
            write_json(output, row.result.sailor_json())
        if getattr(args, "json", False):
            print_json({"planner": planner, **row.result.to_dict()})
            return 0
        print_plan(row.result, inputs.config.model, cluster.name, objective, planner)
        return 0
    ours = rows[0].value(objective)
    if getattr(args, "json", False):
        print_json({"objective": objective, "planners": [
            {"planner": r.planner, "infeasible": r.reason} if r.result is None else
            {"planner": r.planner, "throughput": r.result.throughput, "iteration_time": r.result.iteration_time,
             "cost_per_iteration": r.result.cost_per_iteration, "price_per_hour": r.result.price_per_hour,
             "gpus_used": dict(r.result.gpus_used), "search_seconds": r.result.search_seconds,
             "plan": r.result.sailor_json()}
            for r in rows]})
        return 0
    table = Table(title=escape(f"{inputs.config.model} on {cluster.name}: planners scored by one model "
                               f"(docs/model.md §12.5), objective {objective}"))
    for column in ("planner", "it/s", "$/iteration", "$/h", "GPUs", "stages x DP", "mbs",
                   f"{objective} vs pipesim", "search"):
        table.add_column(column)
    for r in rows:
        if r.result is None:
            table.add_row(r.planner, "infeasible", "", "", "", "", "", "", "")
            continue
        res, pipe = r.result, r.result.plan.pipelines[0]
        diff = "—" if ours is None or r.value(objective) is None else f"{r.value(objective) / ours - 1:+.1%}"
        table.add_row(r.planner, f"{res.throughput:.4g}", _money(res.cost_per_iteration), _money(res.price_per_hour),
                      str(sum(res.gpus_used.values())), f"{len(pipe.stages)} x {len(pipe.replicas[0])}",
                      str(res.plan.mbs), diff, f"{res.search_seconds:.2f} s")
    console.print(table)
    return 0


def print_plan(result, model: str, cluster: str, objective: str, planner: str = "pipesim") -> None:
    """A heterogeneous plan, stage by stage, with its time, $ per hour and $ per iteration."""
    plan, est = result.plan, result.estimate
    table = Table(title=escape(f"{model} on {cluster}: mbs {plan.mbs}, {est.microbatches} "
                               f"microbatches, objective {objective}"
                               + ("" if planner == "pipesim" else f", planner {planner}")))
    for column in ("stage", "layers", "replicas (zone/GPU x TP)", "compute/mb", "transfer/mb", "grad sync",
                   "memory/GPU"):
        table.add_column(column)
    from pipesim.hardware.units import BYTES, TIME, format_quantity

    for s, (layers, reps) in enumerate(zip(plan.pipelines[0].stages, plan.pipelines[0].replicas)):
        groups: dict = {}
        for r in reps:
            groups[f"{r.zone}/{r.gpu}x{r.tp}"] = groups.get(f"{r.zone}/{r.gpu}x{r.tp}", 0) + 1
        row = est.stages[s]
        table.add_row(str(s), f"{layers[0]}-{layers[-1]}", escape(", ".join(f"{n}x {k}" for k, n in groups.items())),
                      format_quantity(row.compute, TIME), format_quantity(row.transfer, TIME),
                      format_quantity(row.gradient_sync, TIME), format_quantity(row.memory_per_gpu, BYTES))
    console.print(table)
    used = ", ".join(f"{n} {escape(k)}" for k, n in result.gpus_used.items())
    console.print(f"GPUs used: {used} of {result.gpus_available}")
    console.print(f"iteration time: [bold]{format_quantity(est.iteration_time, TIME)}[/bold] "
                  f"({result.throughput:.4g} it/s); {_money(result.price_per_hour)}/h; "
                  f"{_money(result.cost_per_iteration)} per iteration (egress {_money(result.egress_per_iteration)}); "
                  f"searched in {result.search_seconds:.2f} s")
