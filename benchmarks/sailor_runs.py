"""Benchmark: Sailor's measured runs predicted from Sailor's own profiles (issue 20, item 4).

    python -m benchmarks.sailor_runs [--json]

For every shipped run (``../shared/workloads/sailor/validation/*/*.json``: a
plan run for real on GH200 nodes, with ``real`` seconds per iteration and
``max_mem`` peak bytes) it prints pipesim's predicted iteration time and peak
memory per GPU (:func:`pipesim.placement.plan.sailor.estimate_sailor_plan`,
docs/model.md §12.2) beside the measurement, the signed difference, and the
median and worst |error|.  No number of a run is used to predict it.

Targets (GH200 runs): time median |error| <= 5 %, worst <= 15 %; memory
within 10 %.  Exit code 1 when a target is missed.  Nothing is timed, so the
result does not depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from pipesim.placement.plan.sailor import estimate_sailor_plan, load_sailor_inputs
from pipesim.placement.plan.sailor_format import read_sailor_plan

SAILOR = Path(__file__).resolve().parents[1].parent / "shared" / "workloads" / "sailor"
CONFIGS = {"OPT-350": "training_config_opt_350.json", "GPT-Neo-2.7": "training_config_gpt_neo27.json"}
TIME_MEDIAN, TIME_WORST, MEMORY_WORST = 0.05, 0.15, 0.10


def rows(folder: Path = SAILOR) -> list[dict]:
    out = []
    for model_dir in sorted((folder / "validation").iterdir()):
        inputs = load_sailor_inputs(folder / CONFIGS[model_dir.name])
        for path in sorted(model_dir.glob("*.json"), key=lambda p: (int(p.name.split("_")[0][1:]), p.name)):
            plan = read_sailor_plan(path)
            est = estimate_sailor_plan(plan, inputs)
            pipe = plan.pipelines[0]
            out.append({
                "run": f"{model_dir.name}/{path.stem}",
                "gpus": plan.gpus,
                "stages": len(pipe.stages),
                "dp": len(pipe.replicas[0]),
                "mbs": plan.mbs,
                "microbatches": est.microbatches,
                "time_predicted": est.iteration_time,
                "time_measured": plan.measured.iteration_time,
                "time_error": est.iteration_time / plan.measured.iteration_time - 1,
                "memory_predicted": est.memory_per_gpu,
                "memory_measured": plan.measured.max_memory,
                "memory_error": est.memory_per_gpu / plan.measured.max_memory - 1,
            })
    return out


def summary(table: list[dict]) -> dict:
    t = [abs(r["time_error"]) for r in table]
    m = [abs(r["memory_error"]) for r in table]
    return {"runs": len(table), "time_median": statistics.median(t), "time_worst": max(t),
            "memory_median": statistics.median(m), "memory_worst": max(m),
            "targets_met": statistics.median(t) <= TIME_MEDIAN and max(t) <= TIME_WORST and max(m) <= MEMORY_WORST}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sailor_runs", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not SAILOR.is_dir():
        print(f"Sailor's runs are not at {SAILOR} (../shared is absent)", file=sys.stderr)
        return 2
    table = rows()
    s = summary(table)
    if args.json:
        print(json.dumps({"runs": table, "summary": s}, indent=2))
        return 0 if s["targets_met"] else 1
    print(f"{'run':38} {'GPUs':>4} {'PPxDP':>6} {'mbs':>3} {'M':>3} {'time pred':>9} {'real':>8} {'diff':>7}"
          f" {'mem pred':>9} {'real':>9} {'diff':>7}")
    for r in table:
        print(f"{r['run']:38} {r['gpus']:4d} {r['stages']:>2}x{r['dp']:<3d} {r['mbs']:3d} {r['microbatches']:3d}"
              f" {r['time_predicted']:8.3f}s {r['time_measured']:7.3f}s {r['time_error'] * 100:+6.1f}%"
              f" {r['memory_predicted'] / 2**30:6.2f}GiB {r['memory_measured'] / 2**30:6.2f}GiB"
              f" {r['memory_error'] * 100:+6.1f}%")
    print(f"time |error|: median {s['time_median'] * 100:.1f}% (target <= {TIME_MEDIAN:.0%}), "
          f"worst {s['time_worst'] * 100:.1f}% (target <= {TIME_WORST:.0%})")
    print(f"memory |error|: median {s['memory_median'] * 100:.1f}%, worst {s['memory_worst'] * 100:.1f}% "
          f"(target <= {MEMORY_WORST:.0%})")
    print("targets met" if s["targets_met"] else "targets MISSED")
    return 0 if s["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
