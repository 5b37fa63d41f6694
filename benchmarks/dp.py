"""Benchmark: the DP on every throughput workload of the paper.

    python -m benchmarks.dp [--workloads DIR] [--json OUT.json] [--paper-dp BINARY]

Each workload is solved in a fresh process, so its peak memory is its own;
the one-time numba compilation (cached on disk after the first run) and
loading of the compiled kernels is reported separately as warm-up (a solve
whose work is below ``placement.kernels.SMALL_WORK`` runs as plain Python
and never loads them: see ``benchmarks/startup.py``).  Prints, per workload: super-nodes, ideals,
ideal pairs examined, seconds, peak memory (RSS, and above the interpreter's
baseline) and the optimal max-load.

``--paper-dp`` runs the paper authors' C++ DP (built separately, never part of
this repository) on the same inputs in the same run, and prints our speed-up
over it — the baseline the targets are stated against (docs/model.md §8).  Without it,
docs/model.md §8's measurements on this machine type are shown for reference.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

#: docs/model.md §8: the paper's C++ DP on one core of the 2-core development machine.
PAPER_SECONDS = {"gnmt_inference": 21.0, "gnmt_training": 34.0}
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "workloads" / "paper" / "throughput"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def solve_one(path: str) -> dict:
    """Solve one workload in this process and return the measurements."""
    from pipesim.placement import (
        ACCELERATOR,
        CPU,
        Edge,
        Graph,
        Node,
        Workload,
        paper_devices,
        read_paper_workload,
    )
    from pipesim.placement.dp.solve import solve_dp

    started = time.perf_counter()
    tiny = Graph([Node(0, {ACCELERATOR: 1.0, CPU: 9.0}, transfer={ACCELERATOR: 1.0}), Node(1, {ACCELERATOR: 1.0, CPU: 9.0})],
                 [Edge(0, 1)])
    from pipesim.placement.dp import kernels

    small, kernels.SMALL_WORK = kernels.SMALL_WORK, 0  # the warm-up takes the compiled path: load it now
    try:
        solve_dp(Workload(tiny, paper_devices(2, 1, 1e9)))
    finally:
        kernels.SMALL_WORK = small
    warmup = time.perf_counter() - started
    workload = read_paper_workload(path)
    baseline = _rss_mib()
    started = time.perf_counter()
    result = solve_dp(workload)
    seconds = time.perf_counter() - started
    return {
        "workload": f"{Path(path).parent.name}/{Path(path).stem}",
        "status": result.status,
        "max_load": result.max_load,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "peak_rss_mib": _rss_mib(),
        "peak_above_baseline_mib": _rss_mib() - baseline,
        **{k: result.stats[k] for k in ("super_nodes", "ideals", "ideal_pairs", "upper_bound")},
    }


def run_paper_dp(binary: str, path: Path, timeout: float, memory_gib: float) -> float | str:
    """Seconds the paper's C++ DP takes on ``path`` (stdin input), or why it has none.

    It runs under a time limit and an address-space cap: on Inception-v3 it
    needs more than 20 GB (docs/model.md §8).
    """
    cap = int(memory_gib * 2**30)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    started = time.perf_counter()
    try:
        with path.open() as f:
            proc = subprocess.run([binary], stdin=f, capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    if proc.returncode != 0:
        return f"failed ({memory_gib:g} GiB cap)" if "bad_alloc" in proc.stderr else "failed"
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dp", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=Path, default=DEFAULT_DIR, help="folder of paper-format workloads")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--paper-dp", help="the paper's C++ DP binary, for a same-run baseline")
    parser.add_argument("--paper-timeout", type=float, default=300, help="seconds allowed to the paper's DP")
    parser.add_argument("--paper-memory", type=float, default=8, help="GiB allowed to the paper's DP")
    parser.add_argument("--only", nargs="*", help="workload names to run (default: all)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: solve one file, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(solve_one(args.one)))
        return 0

    files = sorted(args.workloads.glob("*/*.json"))
    if args.only:
        files = [f for f in files if f.stem in args.only]
    if not files:
        print(f"no workloads under {args.workloads}", file=sys.stderr)
        return 2
    header = f"{'workload':38} {'super':>5} {'ideals':>7} {'pairs':>11} {'seconds':>8} {'peak MiB':>9} {'+MiB':>6}  max-load"
    if args.paper_dp:
        header += "      paper C++ s  speed-up"
    print(header)
    rows, total = [], 0.0
    root = Path(__file__).resolve().parents[1]
    for path in files:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.dp", "--one", str(path)],
                              capture_output=True, text=True, cwd=root)
        if proc.returncode != 0:
            print(f"{path.stem}: failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(proc.stdout)
        total += row["seconds"]
        line = (f"{row['workload']:38} {row['super_nodes']:5d} {row['ideals']:7d} {row['ideal_pairs']:11,d} "
                f"{row['seconds']:8.2f} {row['peak_rss_mib']:9.0f} {row['peak_above_baseline_mib']:6.0f}  "
                f"{row['max_load']:.10g}")
        if args.paper_dp:
            paper = run_paper_dp(args.paper_dp, path, args.paper_timeout, args.paper_memory)
            row["paper_seconds"] = paper
            if isinstance(paper, float):
                line += f"  {paper:11.2f}  {paper / row['seconds']:7.1f}x"
            else:
                line += f"  {paper:>11}"
        elif path.stem in PAPER_SECONDS and path.parent.name == "LayerGraphs":
            line += f"   (docs/model.md §8: paper C++ {PAPER_SECONDS[path.stem]:.0f} s, {PAPER_SECONDS[path.stem] / row['seconds']:.1f}x)"
        print(line, flush=True)
        rows.append(row)
    print(f"total solve time: {total:.1f} s over {len(rows)} workloads "
          f"(warm-up per process {min(r['warmup_seconds'] for r in rows):.2f}-{max(r['warmup_seconds'] for r in rows):.2f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
