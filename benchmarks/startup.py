"""Benchmark: the command line's start-up, as whole processes (issue 12 item 6).

    python -m benchmarks.startup [--repeats 7] [--workload PATH] [--paper-dp BINARY]

Times, as a user's shell would (a fresh ``pipesim`` process each time; the
median of ``--repeats`` runs after one warm-up that fills the disk caches and
numba's kernel cache):

* ``pipesim --version`` — target < 0.3 s;
* ``pipesim solve bert24_inference.json`` (the paper's 30-node layer graph) —
  target < 0.8 s;
* a bare ``python -c pass`` as the floor of any Python command, and, with
  ``--paper-dp``, the paper authors' C++ DP on the same file (built by you
  from its public source; never part of this repository).

Exit code 1 when a target is missed.  Measure on a quiet machine: other work
on the two cores doubles these numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_WORKLOAD = (Path(__file__).resolve().parents[2] / "shared" / "workloads" / "paper" / "throughput"
                    / "LayerGraphs" / "bert24_inference.json")
TARGETS = {"pipesim --version": 0.3, "pipesim solve": 0.8}


def _pipesim() -> list[str]:
    found = shutil.which("pipesim")
    return [found] if found else [sys.executable, "-m", "pipesim"]


def timed(argv: list[str], repeats: int) -> float:
    """The median wall time of ``argv`` as a fresh process (one untimed warm-up first)."""
    subprocess.run(argv, capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--workload", type=Path, default=DEFAULT_WORKLOAD)
    parser.add_argument("--paper-dp", metavar="BINARY", help="the paper authors' C++ DP, timed on the same file")
    args = parser.parse_args(argv)
    if not args.workload.is_file():
        print(f"no workload at {args.workload} (../shared is absent?)", file=sys.stderr)
        return 2
    rows = {
        "python -c pass": timed([sys.executable, "-c", "pass"], args.repeats),
        "pipesim --version": timed([*_pipesim(), "--version"], args.repeats),
        "pipesim solve": timed([*_pipesim(), "solve", str(args.workload)], args.repeats),
    }
    if args.paper_dp:
        rows["paper's C++ DP"] = timed([args.paper_dp, str(args.workload)], args.repeats)
    print(f"{'command':<22} {'median (s)':>10} {'target (s)':>10}   ({os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})")
    missed = False
    for name, seconds in rows.items():
        target = TARGETS.get(name)
        ok = target is None or seconds < target
        missed |= not ok
        print(f"{name:<22} {seconds:>10.3f} {'' if target is None else f'{target:.1f}':>10}   {'' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
