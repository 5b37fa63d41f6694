"""Sweep speed: the bundled 12-point sweep (accelerator count x link bandwidth) on 1 and 2 processes, and on Dask.

Run: ``python -m benchmarks.sweep [--set PATH=VALUE ...] [--no-dask]``.  Each
configuration runs the whole grid into a fresh folder (nothing resumed) and
prints its wall time; the rows of all runs must agree (timings aside).  The
target (issue 7): 2 local processes take about half the time of 1.  The
default settings (operator granularity: a ~700-node training graph; 1000
microbatches simulated) make each point heavy enough (about a second) for
process start-up not to dominate; the bundled settings take ~0.1 s a point.
On a machine busy with other work the speed-up is capped by the CPU share
left over — with Linux's session autogroups (``/proc/sys/kernel/
sched_autogroup_enabled``) all processes of one session share one group's
share, however many there are — so the load average and a pure-CPU control
(the same split of plain Python loops) are printed too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pipesim.scenario import load_scenario
from pipesim.sweep import run_sweep

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "sweep-count-bandwidth.yaml"


def _burn(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def _free_cores() -> float:
    """Speed-up of a pure-CPU loop on 2 processes over 1: 2.0 when two cores are free for us."""
    jobs = [5_000_000] * 4
    started = time.perf_counter()
    for n in jobs:
        _burn(n)
    serial = time.perf_counter() - started
    with ProcessPoolExecutor(2) as pool:
        started = time.perf_counter()
        list(pool.map(_burn, jobs))
        return serial / (time.perf_counter() - started)


def _rows(rows: list[dict]) -> dict:
    return {r["key"]: {k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds", "traceback")} for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", metavar="PATH=VALUE",
                        help="scenario overrides (default: operator granularity, 1000 microbatches)")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    scenario = load_scenario(SCENARIO, args.set or ["model.params.granularity=operator", "simulate.microbatches=1000"])
    points = 1
    for values in scenario.vary.values():
        points *= len(values)
    runs: dict[str, list[dict]] = {}
    times: dict[str, float] = {}
    configs: list[tuple[str, dict]] = [("1 process", {"workers": 1}), ("2 processes", {"workers": 2})]
    cluster = None
    if not args.no_dask:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        configs.append(("dask LocalCluster, 2 worker processes", {"dask": client}))
    try:
        for label, options in configs:
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                result = run_sweep(scenario.data, scenario.source, scenario.vary, folder, **options)
                times[label] = time.perf_counter() - started
                runs[label] = result.rows
            failed = sum(r["status"] != "ok" for r in result.rows)
            # points in flight on average: 2 when both processes really ran side by side
            overlap = sum(r["seconds"] for r in result.rows) / times[label]
            # CPU the points got per second of wall time: about 2 when two free cores do the work
            cores = sum(r["cpu_seconds"] for r in result.rows) / times[label]
            print(f"{label:40s} {points} points  {times[label]:7.2f} s  ({failed} failed; {overlap:.2f} points in "
                  f"flight and {cores:.2f} cores used on average; load average {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    print(f"machine check: a pure-CPU loop runs {_free_cores():.2f}x faster on 2 processes than on 1 "
          "(2.0 = two free cores; less = other work holds them)")
    reference = _rows(runs["1 process"])
    assert all(_rows(rows) == reference for rows in runs.values()), "rows differ between runs"
    print(f"speed-up with 2 processes: {times['1 process'] / times['2 processes']:.2f}x (rows identical)")


if __name__ == "__main__":
    main()
