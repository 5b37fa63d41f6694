"""Battery: ``pipesim solve`` on every paper workload under an address-space cap (issue 12 item 3).

    python -m benchmarks.memory_battery [--workloads DIR] [--cap-kb 4000000] [--only NAME ...]

Each workload (``throughput`` and ``latency`` inputs, layer and operator
graphs) is solved in a fresh process under ``ulimit -v`` (``RLIMIT_AS``), once
as given and once with ``--ideal-limit 1000000000`` (so that only the memory
budget can stop the DP).  Every run must end with an answer (exit 0) or a
one-line error (exit 2) — never a traceback, a ``MemoryError`` or a kill.
Prints one row per run (exit code, seconds, peak RSS, last line) and exits 1
if any run broke the rule.  ``tests/pipesim/test_memory_battery.py`` runs the
same check on a small subset.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "workloads" / "paper"
#: The cap of issue 12: ``ulimit -v 4000000`` (kilobytes).
DEFAULT_CAP_KB = 4_000_000


@dataclass
class Run:
    workload: str
    options: list[str]
    returncode: int
    seconds: float
    peak_mib: float
    stderr: str

    @property
    def ok(self) -> bool:
        """An answer, or one line on stderr with exit 2 (no traceback, no kill)."""
        if self.returncode == 0:
            return True
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return self.returncode == 2 and len(lines) == 1 and "Traceback" not in self.stderr

    @property
    def last_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def solve_capped(path: Path, options: list[str], cap_kb: int = DEFAULT_CAP_KB, timeout: float = 900) -> Run:
    """``pipesim solve PATH OPTIONS`` in a child limited to ``cap_kb`` KiB of address space."""
    cap = cap_kb * 1024

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipesim", "solve", str(path), "--no-progress", *options],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    reader.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, unlike RUSAGE_CHILDREN
    timer.cancel()
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    name = f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"
    return Run(name, options, proc.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024, "".join(stderr))


def paper_workloads(folder: Path = DEFAULT_DIR) -> list[Path]:
    return sorted(folder.glob("*/*/*.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_battery", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=Path, default=DEFAULT_DIR, help="folder with throughput/ and latency/")
    parser.add_argument("--cap-kb", type=int, default=DEFAULT_CAP_KB, help="address-space cap in KiB (ulimit -v)")
    parser.add_argument("--only", nargs="*", help="workload names to run (default: all)")
    args = parser.parse_args(argv)
    files = [f for f in paper_workloads(args.workloads) if not args.only or f.stem in args.only]
    if not files:
        print(f"no workloads under {args.workloads}", file=sys.stderr)
        return 2
    print(f"{'workload':52} {'options':26} {'exit':>4} {'s':>6} {'MiB':>6}  last line")
    broken = 0
    for path in files:
        for options in ([], ["--ideal-limit", "1000000000"]):
            run = solve_capped(path, options, args.cap_kb)
            broken += not run.ok
            flag = "" if run.ok else "  <-- BROKEN"
            print(f"{run.workload:52} {' '.join(options):26} {run.returncode:4d} {run.seconds:6.1f} "
                  f"{run.peak_mib:6.0f}  {run.last_line[:150]}{flag}", flush=True)
    print(f"{broken} run(s) ended with a traceback, a kill or more than one line" if broken else
          "every run ended with an answer or a one-line error")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
