"""Benchmark: planning Sailor's models on the heterogeneous presets (docs/model.md §12.4).

    python -m benchmarks.hetero_plan [--json]

For OPT-350M and GPT-Neo-2.7B (Sailor's profiles in ``../shared/workloads/sailor``)
on ``gcp-a100-v100``, ``two-zone-a100-v100`` and ``clariden-gh200x32``, with
the ``time`` and ``cost`` objectives: the plan's iteration time, $/hour, $ per
iteration, GPUs used and the search time (wall clock: it depends on what else
runs on the machine; the load average is printed).  Planner defaults
(3 stages at most, one replica kind per stage), then on ``gcp-a100-v100`` with
``max_kinds=2`` (a stage's replicas may differ in GPU type and TP).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipesim.errors import InfeasibleError
from pipesim.hardware.clusters import load_cluster
from pipesim.placement.plan.hetero import plan_hetero
from pipesim.placement.plan.sailor import load_sailor_inputs

SAILOR = Path(__file__).resolve().parents[1].parent / "shared" / "workloads" / "sailor"
CASES = [("training_config_opt_350.json", c, 1) for c in ("gcp-a100-v100", "two-zone-a100-v100", "clariden-gh200x32")] \
    + [("training_config_gpt_neo27.json", c, 1) for c in ("gcp-a100-v100", "clariden-gh200x32")] \
    + [("training_config_opt_350.json", "gcp-a100-v100", 2), ("training_config_gpt_neo27.json", "gcp-a100-v100", 2)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hetero_plan", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not SAILOR.is_dir():
        print(f"Sailor's profiles are not at {SAILOR} (../shared is absent)", file=sys.stderr)
        return 2
    rows = []
    for config, cluster_name, kinds in CASES:
        inputs = load_sailor_inputs(SAILOR / config)
        cluster = load_cluster(cluster_name)
        for objective in ("time", "cost"):
            try:
                r = plan_hetero(inputs, cluster, objective, max_kinds=kinds)
            except InfeasibleError as exc:
                rows.append({"model": inputs.config.model, "cluster": cluster_name, "objective": objective,
                             "max_kinds": kinds, "infeasible": str(exc)})
                continue
            pipe = r.plan.pipelines[0]
            rows.append({
                "model": inputs.config.model, "cluster": cluster_name, "objective": objective, "max_kinds": kinds,
                "iteration_time": r.iteration_time, "price_per_hour": r.price_per_hour,
                "cost_per_iteration": r.cost_per_iteration, "gpus_used": sum(r.gpus_used.values()),
                "gpus": r.gpus_available, "mbs": r.plan.mbs, "stages": len(pipe.stages), "dp": len(pipe.replicas[0]),
                "gpu_types": sorted({x.gpu for reps in pipe.replicas for x in reps}),
                "search_seconds": r.search_seconds, "load_average": os.getloadavg()[0],
            })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':12} {'cluster':20} {'obj':4} {'K':1} {'s/iter':>8} {'$/h':>7} {'$/iter':>8} {'GPUs':>7} {'mbs':>3}"
          f" {'SxD':>6} {'types':18} {'search':>8} {'load':>5}")
    for r in rows:
        if "infeasible" in r:
            print(f"{r['model']:12} {r['cluster']:20} {r['objective']:4} infeasible: {r['infeasible']}")
            continue
        price = "—" if r["price_per_hour"] is None else f"{r['price_per_hour']:.2f}"
        cost = "—" if r["cost_per_iteration"] is None else f"{r['cost_per_iteration']:.4f}"
        print(f"{r['model']:12} {r['cluster']:20} {r['objective']:4} {r['max_kinds']:1d} {r['iteration_time']:8.3f} {price:>7} {cost:>8}"
              f" {r['gpus_used']:3d}/{r['gpus']:<3d} {r['mbs']:3d} {r['stages']:>2}x{r['dp']:<3d}"
              f" {','.join(r['gpu_types']):18} {r['search_seconds']:7.2f}s {r['load_average']:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
