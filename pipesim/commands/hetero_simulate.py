"""``pipesim simulate TRAINING_CONFIG.json PLAN.json [--hardware CLUSTER] [--whatif ...]``: run a heterogeneous plan.

``pipesim simulate`` delegates here when its workload is a Sailor training
config (as ``pipesim plan`` does): the plan (Sailor's format, as
``pipesim plan CONFIG --hardware CLUSTER -o PLAN.json`` writes it) is run as
events by :func:`pipesim.simulation.hetero_sim.simulate_hetero_plan`
(docs/model.md §12.6) on the cluster's links (``--hardware``) or Sailor's
measured bandwidths, and shown against its §12.2 prediction with the
difference; ``--whatif`` slows a GPU type, one replica or a zone link;
``--gantt PNG`` draws the run with one panel per GPU type.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from pipesim.commands.common import console, print_json, writable
from pipesim.errors import InputError

__all__ = ["add_arguments", "run"]

WHATIF_HELP = ("training config: gpu:TYPE=K (a GPU type K times slower), replica:STAGE.REPLICA=K (one straggler), "
               "link:ZONE/ZONE=K or link:ZONE=K (a link K times slower); repeatable")


def add_arguments(p) -> None:
    p.add_argument("--hardware", metavar="CLUSTER", help="training config: the cluster whose links carry the plan "
                   "(default: Sailor's measured bandwidths)")
    p.add_argument("--profiles", metavar="DIR", help="training config: Sailor's profiles folder (default: the config's)")
    p.add_argument("--whatif", action="append", default=[], metavar="WHAT:TARGET=K", help=WHATIF_HELP)
    p.add_argument("--link-streams", type=int, default=1, metavar="N",
                   help="training config: transfers a zone link carries at once per direction (default 1)")


def run(args) -> int:
    from pipesim.hardware.clusters import load_cluster
    from pipesim.placement.plan.hetero import ClusterNetwork
    from pipesim.placement.plan.sailor import load_sailor_inputs
    from pipesim.placement.plan.sailor_format import read_sailor_plan
    from pipesim.simulation.hetero_sim import draw_gantt, parse_whatif, simulate_hetero_plan

    gantt = getattr(args, "gantt", None)
    if gantt:
        if Path(gantt).suffix.lower() not in (".png", ".svg", ".pdf"):
            raise InputError(gantt, None, "unsupported chart format; use .png, .svg or .pdf")
        writable(gantt, "Gantt chart")
    whatif = parse_whatif(getattr(args, "whatif", None) or [])
    inputs = load_sailor_inputs(args.workload, getattr(args, "profiles", None))
    plan = read_sailor_plan(args.split)
    network = ClusterNetwork(load_cluster(args.hardware)) if getattr(args, "hardware", None) else None
    result = simulate_hetero_plan(plan, inputs, network, whatif, link_streams=getattr(args, "link_streams", 1))
    if gantt:
        draw_gantt(result, gantt, f"{inputs.config.model}: {args.split}")
    if getattr(args, "json", False):
        print_json(result.to_dict())
        return 0
    pipe = plan.pipelines[0]
    table = Table(title=escape(f"{inputs.config.model}: {args.split} run as events ({result.microbatches} "
                               f"microbatches per replica)"))
    for column in ("stage", "layers", "replicas", "finished at"):
        table.add_column(column)
    for s, (layers, reps) in enumerate(zip(pipe.stages, pipe.replicas)):
        kinds: dict[str, int] = {}
        for r in reps:
            kinds[f"{r.zone}/{r.gpu}x{r.tp}"] = kinds.get(f"{r.zone}/{r.gpu}x{r.tp}", 0) + 1
        table.add_row(str(s), f"{layers[0]}-{layers[-1]}", escape(", ".join(f"{n}x {k}" for k, n in kinds.items())),
                      f"{result.stage_finish[s]:.4g} s")
    console.print(table)
    console.print(f"predicted (§12.2) {result.predicted_iteration_time:.4g} s; simulated "
                  f"{result.simulated_without_whatif:.4g} s ({result.difference:+.2%})")
    for link, wait in result.link_wait.items():
        console.print(f"zone link {escape(link)}: writes queued {wait:.4g} s in total")
    if whatif:
        console.print(f"what-if {escape(' '.join(args.whatif))}: simulated [bold]{result.simulated_iteration_time:.4g} s"
                      f"[/bold] ({result.whatif_slowdown:.3f}x the plan's run)")
    if gantt:
        console.print(f"Gantt chart (one panel per GPU type): {escape(str(gantt))}")
    return 0
