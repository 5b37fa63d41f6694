"""Benchmark: ``pipesim graph generate transformer --layers N`` grows linearly (issue 18 item 4).

    python -m benchmarks.graph_generate [--layers 2000,8000,20000,100000] [--target 40]

Runs each size as a fresh process (a user's shell), writing into a temporary
folder, and prints the wall time, the time per layer and the peak resident
memory.  Before the fix 2,000 layers took 21 s and 8,000 took 263 s (an
``in list`` edge check and a scan of every edge per layer: quadratic);
linear growth keeps the time per layer flat.  Exit code 1 when the largest
size uses more than ``--target`` CPU seconds (the process's own, so that other
work on the machine does not decide) or its time per layer is more than 3x
that of the smallest (the signature of quadratic growth).
Measure on a quiet machine: other work on the two cores doubles these numbers
(the CPU seconds column is what the process itself used).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(layers: int, folder: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident MiB of one ``graph generate`` process."""
    argv = [sys.executable, "-m", "pipesim", "graph", "generate", "transformer", "--layers", str(layers),
            "--hidden", "64", "--heads", "4", "--seq", "16", "-o", str(folder / f"t{layers}.json")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, cpu, after.ru_maxrss / 1024  # peak: the largest child so far


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="2000,8000,20000,100000", help="comma-separated sizes")
    parser.add_argument("--target", type=float, default=40.0, help="CPU seconds allowed for the largest size")
    args = parser.parse_args(argv)
    sizes = sorted(int(x) for x in args.layers.split(","))
    per_layer, cpu_of = {}, {}
    print(f"{'layers':>8} {'seconds':>8} {'CPU s':>7} {'ms/layer':>9} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            seconds, cpu, peak = run(n, Path(tmp))
            per_layer[n], cpu_of[n] = seconds / n, cpu
            print(f"{n:>8} {seconds:>8.2f} {cpu:>7.2f} {1e3 * seconds / n:>9.3f} {peak:>9.0f}", flush=True)
    largest, smallest = sizes[-1], sizes[0]
    ok = cpu_of[largest] <= args.target and per_layer[largest] <= 3 * per_layer[smallest]
    print("ok" if ok else f"missed: {largest} layers took more than {args.target:g} CPU s, or growth is superlinear")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
