"""Benchmark: the simulator's speed, and how soon its steady-state estimate settles.

    python -m benchmarks.simulate [--workloads DIR] [--microbatches 10000] [--dp-all]

1. **Speed** (ISSUE 6 target: under 3 s): ``--microbatches`` microbatches of
   the DP's split of ``bert24_training`` (1F1B, ``paper`` mode).  Prints the
   wall time of the whole ``simulate`` call and of its parts (building the
   per-lane task lists, the SimPy run, the measurements), the tasks and
   operations simulated and the events per second (one SimPy timeout per
   task; operations are node runs and transfers).
2. **Settling** (target: within 0.5% using at most 20 x stages microbatches):
   for the DP's split of each fast LayerGraphs workload (streaming, and 1F1B
   for training), the estimate from ``20 × stages`` microbatches against the
   estimate from 2,000 and against the predicted max-load.
3. ``--dp-all`` adds the DP splits of Inception-v3 (the slowest DPs) to 2.

Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipesim.placement.dp.solve import solve_dp
from pipesim.placement.formats import read_paper_workload
from pipesim.simulation import simulate
from pipesim.simulation.program import build_program

DEFAULT_WORKLOADS = Path(__file__).resolve().parents[2] / "shared" / "workloads" / "paper" / "throughput" / "LayerGraphs"
FAST = ["bert24_inference", "bert24_training", "gnmt_inference", "gnmt_training", "resnet50_inference", "resnet50_training"]
SLOW = ["inceptionv3_inference", "inceptionv3_training"]
SPEED_TARGET_SECONDS = 3.0
SETTLE_TOLERANCE = 0.005


def speed(folder: Path, microbatches: int, repeats: int = 3) -> bool:
    workload = read_paper_workload(folder / "bert24_training.json")
    split = solve_dp(workload).evaluation.split
    t0 = time.perf_counter()
    program = build_program(workload.graph, split, "paper")
    build = time.perf_counter() - t0
    print(f"bert24_training, DP split on {program.stages} devices, 1f1b, paper mode, {microbatches} microbatches")
    totals = []
    for _ in range(repeats):  # the machine is shared: the best of a few runs is the simulator's own speed
        started = time.perf_counter()
        result = simulate(workload, split, schedule="1f1b", comm="paper", microbatches=microbatches)
        total = time.perf_counter() - started
        totals.append(total)
        engine = result.run.wall_seconds
        tasks = result.run.tasks_run
        print(
            f"  simulate(): {total:.3f} s  [build ≈ {build:.3f} s, SimPy run {engine:.3f} s, measure ≈ {total - engine - build:.3f} s]"
            f"  {tasks} task events, {tasks / engine:,.0f} events/s in the run"
        )
    ops = microbatches * program.ops_per_microbatch
    print(f"  predicted {result.predicted_time_per_sample:.10g}, simulated {result.simulated_time_per_sample:.10g} ({100 * result.difference:+.2e}%)")
    print(f"  {ops} operations (node runs and transfers) in the best run: {ops / min(totals):,.0f} ops/s overall")
    ok = min(totals) < SPEED_TARGET_SECONDS
    print(f"  target < {SPEED_TARGET_SECONDS} s: {'met' if ok else 'MISSED'} (best {min(totals):.3f} s, worst {max(totals):.3f} s)")
    return ok


def settling(folder: Path, names: list[str]) -> bool:
    ok = True
    print(f"\nsettling: estimate from 20 x stages microbatches vs 2,000 and vs predicted (tolerance {100 * SETTLE_TOLERANCE}%)")
    print(f"  {'workload':24} {'schedule':8} {'N':>5} {'predicted':>14} {'N=20S':>14} {'N=2000':>14} {'vs 2000':>10} {'vs pred.':>10}")
    for name in names:
        workload = read_paper_workload(folder / f"{name}.json")
        split = solve_dp(workload).evaluation.split
        for schedule in ("stream", "1f1b") if workload.graph.is_training else ("stream",):
            short = simulate(workload, split, schedule=schedule)
            long = simulate(workload, split, schedule=schedule, microbatches=2000)
            vs_long = abs(short.simulated_time_per_sample / long.simulated_time_per_sample - 1)
            vs_pred = abs(short.difference)
            good = vs_long <= SETTLE_TOLERANCE and vs_pred <= SETTLE_TOLERANCE
            ok &= good
            print(
                f"  {name:24} {schedule:8} {short.microbatches:5d} {short.predicted_time_per_sample:14.8g} "
                f"{short.simulated_time_per_sample:14.8g} {long.simulated_time_per_sample:14.8g} "
                f"{100 * vs_long:9.2e}% {100 * vs_pred:9.2e}%{'' if good else '  MISSED'}"
            )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=Path, default=DEFAULT_WORKLOADS, help="the paper's throughput/LayerGraphs folder")
    parser.add_argument("--microbatches", type=int, default=10_000)
    parser.add_argument("--dp-all", action="store_true", help="also settle the Inception-v3 DP splits (the slowest DPs)")
    args = parser.parse_args(argv)
    if not args.workloads.is_dir():
        print(f"no workloads at {args.workloads}", file=sys.stderr)
        return 2
    ok = speed(args.workloads, args.microbatches)
    ok &= settling(args.workloads, FAST + (SLOW if args.dp_all else []))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
