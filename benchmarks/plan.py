"""Benchmark: the hybrid-parallel planner on Piper's three inputs, up to 2,048 devices.

    python -m benchmarks.plan [--inputs DIR] [--only bert|gnmt|resnet ...] [--json OUT.json]
                              [--piper BINARY] [--piper-timeout 900]

Each case runs in a fresh process (its peak memory is its own; the one-time
numba compilation, cached on disk, is excluded and reported as warm-up).
Prints, per case: tails, pairs, threshold runs, knapsacks, seconds, peak RSS,
the time per sample found and the figure the issue quotes (Piper's own
output on these inputs).

``--piper BINARY`` times Piper's DP (Tarnawski et al. 2021, msr-fiddle/piper,
``algo.cpp``; built by the user, never part of this repository) on the same
cases in the same run.  Piper's ``main()`` runs its paper's experiments, so
the binary expected here is a small driver around its ``Instance`` /
``Graph::runDP`` that takes ``FILE K MEMORY_GiB BANDWIDTH_GiBps N``, sets
those four fields as Piper's own experiment functions do, runs the DP and
prints ``TPS <value>`` (or anything else when infeasible).  Its CPU time
(user + system, from the OS) and wall time are reported with the speed-up.

Targets (issue 14): at least 10x faster than Piper on GNMT (K=8, 1.2 GiB) and
on BERT-32 with K=2,048, with the same optimum, under 2 GB of memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "workloads" / "piper"

#: (input, K, memory GiB, N, figure quoted by the issue / Piper's output, or None)
CASES = [
    ("bert32a100", 8, 8.0, 1920, 0.1658558),
    ("bert32a100", 32, 8.0, 1920, 0.0415154),
    ("bert32a100", 128, 8.0, 1920, None),
    ("bert32a100", 512, 8.0, 1920, 0.0025611),
    ("bert32a100", 1024, 8.0, 1920, None),
    ("bert32a100", 2048, 8.0, 1920, 0.0007035912),
    ("bert32a100", 8, 80.0, 1920, 0.1220073),
    ("bert32a100", 8, 2.0, 1920, "infeasible"),
    ("resnet", 16, 4.0, 7680, 35.333),
    ("resnet", 64, 2.0, 7680, 11.334),
    ("resnet", 128, 2.0, 7680, 5.40607819),  # Piper's knapsack heuristic; the exact optimum is lower
    ("gnmt", 4, 1.2, 256, 137.131),
    ("gnmt", 8, 1.2, 256, 68.5656),
    ("gnmt", 16, 1.2, 256, None),
]
BANDWIDTH_GIBPS = 25.0
TARGETS = {("gnmt", 8, 1.2), ("bert32a100", 2048, 8.0)}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def solve_one(path: str, K: int, memory: float, N: int) -> dict:
    """Plan one case in this process and return the measurements."""
    from pipesim.placement.plan.piper_format import read_piper_workload
    from pipesim.placement.plan.solve import solve_plan
    from pipesim.placement.plan.workload import Configuration, Layer, PlanningWorkload

    started = time.perf_counter()
    c = Configuration("vanilla", 1.0, 0.0, 1.0, 0.0)
    solve_plan(PlanningWorkload((Layer(0, {1: (c,)}),), (), 1, 10.0, 1.0, 1))  # compiles or loads the kernels
    warmup = time.perf_counter() - started
    workload = read_piper_workload(path).with_limits(
        devices=K, memory=memory * 2**30, bandwidth=BANDWIDTH_GIBPS * 2**30, microbatches=N
    )
    baseline = _rss_mib()
    started = time.perf_counter()
    plan = solve_plan(workload)
    seconds = time.perf_counter() - started
    return {
        "status": plan.status,
        "time_per_sample": plan.time_per_sample if plan.feasible else None,
        "stages": [[len(s.nodes), s.tensor_parallel, s.data_parallel] for s in plan.stages],
        "seconds": seconds,
        "warmup_seconds": warmup,
        "peak_rss_mib": _rss_mib(),
        "peak_above_baseline_mib": _rss_mib() - baseline,
        **{k: plan.stats.get(k) for k in ("ideals", "pairs", "threshold_runs", "knapsacks")},
    }


def run_piper(binary: str, path: Path, K: int, memory: float, N: int, timeout: float) -> dict:
    """CPU and wall seconds of Piper's DP on one case, and the value it prints."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [binary, str(path), str(K), f"{memory:g}", f"{BANDWIDTH_GIBPS:g}", str(N)],
            check=False, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout:.0f} s"}
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    value = None
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "TPS":
            try:
                value = float(parts[1])
            except ValueError:
                value = None
    return {"cpu": cpu, "wall": wall, "value": value, "peak_mib": after.ru_maxrss / 1024}


def _fmt(value) -> str:
    return "infeasible" if value is None else f"{value:.10g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, default=DEFAULT_DIR, help="folder with Piper's input files")
    parser.add_argument("--only", nargs="*", help="inputs to run (bert32a100, gnmt, resnet)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--piper", help="Piper driver binary (see the module docstring), for a same-run baseline")
    parser.add_argument("--piper-timeout", type=float, default=900, help="seconds allowed to Piper per case")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)  # internal: FILE K M N, print JSON
    args = parser.parse_args(argv)
    if args.one:
        path, K, M, N = args.one
        print(json.dumps(solve_one(path, int(K), float(M), int(N))))
        return 0
    cases = [c for c in CASES if not args.only or c[0] in args.only]
    if not (args.inputs / "bert32a100.json").exists():
        print(f"Piper's inputs are not under {args.inputs}", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[1]
    header = (f"{'input':11} {'K':>5} {'M GiB':>6} {'N':>5} {'tails':>6} {'pairs':>11} {'runs':>4} {'knaps':>8} "
              f"{'seconds':>8} {'peak MiB':>8}  {'time/sample':>13}  {'Piper':>10}")
    if args.piper:
        header += f"  {'Piper cpu s':>11} {'Piper value':>13}  speed-up"
    print(f"bandwidth {BANDWIDTH_GIBPS:g} GiB/s; timings on this machine (shared when measured: re-measure on a quiet one)")
    print(header)
    rows = []
    for name, K, M, N, quoted in cases:
        path = args.inputs / f"{name}.json"
        proc = subprocess.run([sys.executable, "-m", "benchmarks.plan", "--one", str(path), str(K), str(M), str(N)],
                              check=False, capture_output=True, text=True, cwd=root)
        if proc.returncode != 0:
            print(f"{name} K={K}: failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(proc.stdout)
        row.update(input=name, K=K, memory_gib=M, N=N, quoted=quoted)
        line = (f"{name:11} {K:5d} {M:6g} {N:5d} {row['ideals'] or 0:6d} {row['pairs'] or 0:11,d} "
                f"{row['threshold_runs'] or 0:4d} {row['knapsacks'] or 0:8d} {row['seconds']:8.2f} "
                f"{row['peak_rss_mib']:8.0f}  {_fmt(row['time_per_sample']):>13}  {quoted if quoted else '':>10}")
        if args.piper:
            piper = run_piper(args.piper, path, K, M, N, args.piper_timeout)
            row["piper"] = piper
            if "error" in piper:
                line += f"  {piper['error']:>11}"
            else:
                line += f"  {piper['cpu']:11.2f} {_fmt(piper['value']):>13}  {piper['cpu'] / row['seconds']:7.1f}x"
        if (name, K, M) in TARGETS:
            line += "  (target: >= 10x Piper, < 2 GB)"
        print(line, flush=True)
        rows.append(row)
    if rows:
        print(f"warm-up (numba load/compile) per process: {min(r['warmup_seconds'] for r in rows):.2f}-"
              f"{max(r['warmup_seconds'] for r in rows):.2f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
