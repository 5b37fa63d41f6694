"""Benchmark: pipesim's heterogeneous planner against the uniform, Metis and AMP baselines (docs/model.md §12.5).

    python -m benchmarks.planners [--json] [--quick]

Sailor's models (OPT-350M, GPT-Neo-2.7B and LLaMA-3-8B profiles in
``../shared/workloads/sailor``) on the heterogeneous and geo-distributed
presets (``gcp-a100-v100``, ``two-zone-a100-v100``, ``gh200-a100``), then the
scale target (``gh200-a100-v100x128``: 128 GPUs of three types).  Every
planner gets the same inputs and search bounds (at most 3 stages, one replica
kind per stage) and every plan is scored by the same model
(:func:`~pipesim.placement.plan.hetero.score_plan`): throughput
(iterations/s) by the model and simulated (the plan run as events, §12.6,
one channel per zone-link direction), $ per iteration (GPU-hours + egress)
for the ``time`` objective, $ per iteration for the ``cost`` objective, and each planner's
search time.  Search times are wall clock on a shared machine: the load
average is printed.

LLaMA-3-8B has profiles but no training config in the shared folder: its job
is Sailor's config shape with ``global_batch_size`` 1024 and its 35 profiled
layers (an assumption, stated in the output).  Its ``llm_info`` activation
memory (12.3 GB per sample and layer at TP 1, sequence 8192 without
recomputation) fits no ≤ 3-stage plan on these clusters by §12.2's memory: every
planner reports it infeasible.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pipesim.errors import InfeasibleError
from pipesim.hardware.clusters import load_cluster
from pipesim.placement.plan.baselines_hetero import BASELINES
from pipesim.placement.plan.hetero import ClusterNetwork, plan_hetero
from pipesim.placement.plan.sailor import SailorInputs, load_sailor_inputs
from pipesim.placement.plan.sailor_format import read_training_config
from pipesim.simulation.hetero_sim import simulate_hetero_plan

SAILOR = Path(__file__).resolve().parents[1].parent / "shared" / "workloads" / "sailor"
CLUSTERS = ("gcp-a100-v100", "two-zone-a100-v100", "gh200-a100")
SCALE = "gh200-a100-v100x128"
LLAMA = {"model": "LLAMA-3-8", "global_batch_size": 1024, "num_all_layers": 35, "optimizer": "Adam"}


def models() -> dict[str, SailorInputs]:
    opt = load_sailor_inputs(SAILOR / "training_config_opt_350.json")
    neo = load_sailor_inputs(SAILOR / "training_config_gpt_neo27.json")
    llama = SailorInputs(read_training_config("LLaMA-3-8B (assumed config)", LLAMA), opt.profiles, opt.layer_info,
                         opt.bandwidths)
    return {"OPT-350M": opt, "GPT-Neo-2.7B": neo, "LLaMA-3-8B": llama}


PLANNERS = {"pipesim": plan_hetero, **BASELINES}


def run(name: str, inputs: SailorInputs, cluster_name: str) -> list[dict]:
    cluster = load_cluster(cluster_name)
    rows = []
    for planner, fn in PLANNERS.items():
        row = {"model": name, "cluster": cluster_name, "planner": planner}
        for objective in ("time", "cost"):
            cpu = time.process_time()
            try:
                r = fn(inputs, cluster, objective, max_stages=3, max_kinds=1)
            except InfeasibleError as exc:
                row[objective] = {"infeasible": str(exc)}
                continue
            cpu = time.process_time() - cpu  # the search's CPU seconds, before the simulation below
            pipe = r.plan.pipelines[0]
            # the plan run as events on the cluster's links (docs/model.md §12.6): the model's number checked
            sim = simulate_hetero_plan(r.plan, inputs, ClusterNetwork(cluster))
            row[objective] = {
                "simulated_throughput": 1.0 / sim.simulated_iteration_time,
                "throughput": r.throughput, "iteration_time": r.iteration_time,
                "cost_per_iteration": r.cost_per_iteration, "price_per_hour": r.price_per_hour,
                "gpus_used": sum(r.gpus_used.values()), "stages": len(pipe.stages), "dp": len(pipe.replicas[0]),
                "mbs": r.plan.mbs, "search_seconds": r.search_seconds, "cpu_seconds": cpu,
                "candidates_or_labels": r.labels,
            }
        row["load_average"] = os.getloadavg()[0]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.planners", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="OPT-350M only, no 128-GPU row")
    args = parser.parse_args(argv)
    if not SAILOR.is_dir():
        print(f"Sailor's profiles are not at {SAILOR} (../shared is absent)", file=sys.stderr)
        return 2
    rows = []
    for name, inputs in models().items():
        if args.quick and name != "OPT-350M":
            continue
        for cluster_name in CLUSTERS + (() if args.quick else (SCALE,)):
            rows.extend(run(name, inputs, cluster_name))
            if not args.json:
                for r in rows[-len(PLANNERS):]:
                    print(_line(r), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("LLaMA-3-8B: assumed global batch 1024 (no training config shipped); times are wall clock on a "
              "shared machine")
    return 0


def _line(r: dict) -> str:
    t, c = r["time"], r["cost"]
    if "infeasible" in t:
        return f"{r['model']:12} {r['cluster']:20} {r['planner']:8} infeasible"
    cost_t = "—" if t["cost_per_iteration"] is None else f"{t['cost_per_iteration']:.4f}"
    cost_c = "—" if "infeasible" in c or c["cost_per_iteration"] is None else f"{c['cost_per_iteration']:.4f}"
    search_c = "—" if "infeasible" in c else f"{c['search_seconds']:.2f}"
    cpu_c = "—" if "infeasible" in c else f"{c['cpu_seconds']:.2f}"
    return (f"{r['model']:12} {r['cluster']:20} {r['planner']:8} it/s {t['throughput']:8.4f}"
            f" (sim {t['simulated_throughput']:8.4f})  $/it {cost_t:>8}"
            f"  {t['stages']}x{t['dp']:<3d} mbs {t['mbs']:<2d} search {t['search_seconds']:6.2f}s"
            f" (cpu {t['cpu_seconds']:5.2f}s)"
            f" | cost obj: $/it {cost_c:>8} search {search_c:>6}s (cpu {cpu_c:>5}s) | load {r['load_average']:.1f}")


if __name__ == "__main__":
    sys.exit(main())
