"""The paper's comparison table: every method on one workload, against the optimum.

Problem: users need to know what an optimal placement buys over what
practitioners use (Tarnawski et al., NeurIPS 2020, §6, Tables 1–3).  For one
workload this module runs a chosen set of methods and gives one
:class:`Row` per method: its objective value (max-load, or latency), the
ratio to the optimum (the DP for max-load, the latency IP for latency),
devices used, whether the split is contiguous, feasibility, status and solve
time.  Every split is scored by the evaluator (max-load) or by
:func:`pipesim.placement.latency.latency_of_split` (latency).

Methods are registered in :data:`METHODS` (name -> solver); a method that
needs something absent (an expert split, a solver module not installed, a
training graph for latency) gives no row, and is reported in ``skipped``; a
method that fails gives a row with status ``error`` and the reason, so one
failure never hides the rest of the table.

The input is a :class:`~pipesim.placement.workload.Workload` plus
:class:`Options`; how it was loaded (paper JSON now, a scenario file later)
is the caller's business.
"""

from __future__ import annotations

import csv
import importlib
import io
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from pipesim.placement.baselines import (
    solve_expert,
    solve_local_search,
    solve_partitioner,
    solve_pipedream,
    solve_single,
)
from pipesim.placement.devices import CPU
from pipesim.placement.dp import solve_dp
from pipesim.placement.formats import InputError
from pipesim.placement.result import OPTIMAL, PlacementResult
from pipesim.placement.split import Split, SplitError
from pipesim.placement.workload import Workload

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "Comparison",
    "Options",
    "Row",
    "compare",
    "comparison_table",
    "rows_to_csv",
]

MAX_LOAD = "max_load"
LATENCY = "latency"


@dataclass(frozen=True)
class Options:
    """Knobs of the methods.

    ``time_limit`` (seconds) is handed to the methods that take one (the IPs,
    the local search); ``method_timeout`` (seconds) abandons any method still
    running after that long (its row then says so), e.g. a DP with too many
    ideals pairs.
    """

    expert: Path | Split | None = None
    restarts: int = 10
    seed: int = 0
    time_limit: float | None = None
    method_timeout: float | None = None
    ignore_sources: tuple[int, ...] = ()


class MethodTimeout(Exception):
    """A method ran past ``Options.method_timeout``."""


def _within(seconds: float | None, solve: Callable[[], Any]) -> Any:
    """``solve()``, abandoned with :class:`MethodTimeout` after ``seconds`` (POSIX main thread only)."""
    if seconds is None or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return solve()

    def expire(signum, frame):
        raise MethodTimeout(f"no answer within {seconds:g} s (method timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return solve()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Skip(Exception):
    """A method cannot run on this input (not an error: the row is left out, with the reason)."""


def _ip(contiguous: bool) -> Callable[[Workload, Options], PlacementResult]:
    def solve(workload: Workload, options: Options) -> PlacementResult:
        milp = _optional("pipesim.placement.milp")
        return milp.solve_ip(workload, contiguous=contiguous, time_limit=options.time_limit)

    return solve


def _expert(workload: Workload, options: Options) -> PlacementResult:
    if options.expert is None:
        raise Skip("no expert split given")
    return solve_expert(workload, split=options.expert)


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Skip(f"{module} is not available ({exc})") from None


#: name -> solver(workload, options).  Order is the table's row order.
METHODS: dict[str, Callable[[Workload, Options], PlacementResult]] = {
    "dp": lambda w, o: solve_dp(w),
    "ip": _ip(contiguous=True),
    "ip_noncontiguous": _ip(contiguous=False),
    "pipedream": lambda w, o: solve_pipedream(w, ignore_sources=o.ignore_sources),
    "local_search": lambda w, o: solve_local_search(w, restarts=o.restarts, seed=o.seed, time_limit=o.time_limit),
    "partitioner": lambda w, o: solve_partitioner(w, seed=o.seed),
    "single": lambda w, o: solve_single(w),
    "expert": _expert,
}

#: What ``pipesim compare`` runs without ``--methods`` (the IPs need a time limit to be practical).
DEFAULT_METHODS = ("dp", "pipedream", "local_search", "partitioner", "single", "expert")


@dataclass
class Row:
    """One method's line of the table (``value`` is max-load or latency, per ``objective``)."""

    objective: str
    method: str
    status: str
    value: float | None
    ratio: float | None
    devices_used: int | None
    contiguous: bool | None
    feasible: bool | None
    seconds: float
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out[self.objective] = self.value  # the headline number under its own name (max_load / latency)
        return out


@dataclass
class Comparison:
    """All rows for one workload, plus the methods that could not run and why."""

    workload: str
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    results: dict[str, PlacementResult] = field(default_factory=dict)
    #: objective -> whether its reference (DP, latency IP) is proven optimal; ratios are to it either way
    proven: dict[str, bool] = field(default_factory=dict)

    def by_objective(self, objective: str) -> list[Row]:
        return [r for r in self.rows if r.objective == objective]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            MAX_LOAD: [r.to_dict() for r in self.by_objective(MAX_LOAD)],
            LATENCY: [r.to_dict() for r in self.by_objective(LATENCY)],
            "reference_proven_optimal": self.proven,
            "skipped": self.skipped,
        }


def _used(evaluation) -> int:
    return sum(1 for d in evaluation.devices if d.nodes)


def _error_row(objective: str, method: str, seconds: float, exc: Exception) -> Row:
    if isinstance(exc, MethodTimeout):
        return Row(objective, method, "timeout", None, None, None, None, None, seconds, str(exc))
    return Row(objective, method, "error", None, None, None, None, None, seconds, f"{type(exc).__name__}: {exc}")


def _throughput_row(result: PlacementResult) -> Row:
    ev = result.evaluation
    return Row(
        objective=MAX_LOAD,
        method=result.method,
        status=result.status,
        value=None if ev is None else ev.max_load,
        ratio=None,
        devices_used=None if ev is None else _used(ev),
        contiguous=None if ev is None else ev.contiguous,
        feasible=None if ev is None else ev.feasible,
        seconds=result.seconds,
        message=result.message,
    )


def _set_ratios(rows: list[Row], reference: str) -> None:
    """Ratio of each value to the reference method's (the optimum when its status is ``optimal``)."""
    base = next((r for r in rows if r.method == reference and r.value is not None), None)
    if base is None or base.value is None:
        return
    for r in rows:
        if r.value is not None and math.isfinite(r.value):
            r.ratio = r.value / base.value if base.value > 0 else (1.0 if r.value == 0 else math.inf)


def _latency_row(name: str, status: str, schedule, seconds: float, message: str) -> Row:
    """A latency row; contiguity is judged on the non-CPU devices (CPU cores are unlimited there)."""
    if schedule is None:
        return Row(LATENCY, name, status, None, None, None, None, None, seconds, message)
    ev = schedule.evaluation
    contiguous = all(d.contiguous for d in ev.devices if d.device_class != CPU)
    return Row(LATENCY, name, status, schedule.latency, None, _used(ev), contiguous, schedule.feasible, seconds, message)


def _latency_rows(workload: Workload, comparison: Comparison, options: Options) -> None:
    """Latency IP and greedy, and the latency of every throughput split (SPEC §4 "Latency").

    The latency IP is warm-started from the best feasible contiguous split seen
    (greedy or a throughput split), so it is never worse than those.
    """
    try:
        latency = _optional("pipesim.placement.latency")
    except Skip as exc:
        comparison.skipped[LATENCY] = str(exc)
        return
    if workload.graph.is_training:
        comparison.skipped[LATENCY] = "latency is defined for inference graphs; this one has backward nodes"
        return
    rows: dict[str, Row] = {}
    candidates = []  # (latency, split) of feasible splits, to warm-start the IP

    def run(name: str, solve: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return _within(options.method_timeout, solve)
        except Exception as exc:  # one failing method must not hide the table
            rows[name] = _error_row(LATENCY, name, time.perf_counter() - started, exc)
            return None

    for name, result in comparison.results.items():
        if result.evaluation is not None:
            started = time.perf_counter()
            schedule = run(name, lambda: latency.latency_of_split(workload, result.evaluation.split))
            if schedule is not None:
                rows[name] = _latency_row(name, result.status, schedule, time.perf_counter() - started,
                                          "latency of its max-load split")
                if schedule.feasible and rows[name].contiguous:  # the IP allows one piece per device
                    candidates.append((schedule.latency, schedule.evaluation.split))
    solved = {}
    for name, solve in (
        ("latency_greedy", lambda: latency.solve_latency_greedy(workload)),
        ("latency_ip", lambda: latency.solve_latency_ip(
            workload, time_limit=options.time_limit, warm_start=min(candidates, key=lambda c: c[0])[1] if candidates else None)),
    ):
        result = run(name, solve)
        if result is not None:
            solved[name] = _latency_row(name, result.status, result.schedule, result.seconds, result.message)
            if result.schedule is not None and result.schedule.feasible:
                candidates.append((result.latency, result.schedule.evaluation.split))
            if name == "latency_ip":
                comparison.proven[LATENCY] = result.status == OPTIMAL
    ordered = [solved.get(n) or rows.get(n) for n in ("latency_ip", "latency_greedy")]
    ordered = [r for r in ordered if r is not None] + [r for n, r in rows.items() if n not in solved]
    _set_ratios(ordered, "latency_ip")
    comparison.rows += ordered


def compare(
    workload: Workload,
    methods: Sequence[str] = DEFAULT_METHODS,
    options: Options = Options(),
    *,
    latency: bool = False,
    name: str | None = None,
) -> Comparison:
    """Run ``methods`` on ``workload``; with ``latency``, also the latency table."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    comparison = Comparison(workload=name or workload.name)
    rows: list[Row] = []
    for method in methods:
        started = time.perf_counter()
        try:
            result = _within(options.method_timeout, lambda: METHODS[method](workload, options))
        except Skip as exc:
            comparison.skipped[method] = str(exc)
            continue
        except (InputError, SplitError):
            raise  # the user's input is wrong (e.g. the expert split): say so, do not tabulate
        except Exception as exc:  # one failing method must not hide the table
            rows.append(_error_row(MAX_LOAD, method, time.perf_counter() - started, exc))
            continue
        comparison.results[method] = result
        row = _throughput_row(result)
        row.method = method
        rows.append(row)
    dp = comparison.results.get("dp")
    comparison.proven[MAX_LOAD] = dp is not None and dp.status == OPTIMAL
    _set_ratios(rows, "dp")
    comparison.rows = rows
    if latency:
        _latency_rows(workload, comparison, options)
    return comparison


def _fmt(x: float | None, digits: int = 6) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _yes_no(x: bool | None) -> str:
    return "—" if x is None else ("yes" if x else "no")


def comparison_table(comparison: Comparison, objective: str = MAX_LOAD) -> Table:
    """A rich table of one objective's rows; non-contiguous and infeasible rows are marked."""
    label = "max-load" if objective == MAX_LOAD else "latency"
    reference = "DP" if objective == MAX_LOAD else "latency IP"
    proof = "optimum" if comparison.proven.get(objective) else "value, not proven optimal"
    table = Table(title=f"{label} on {comparison.workload} (ratio to the {reference} {proof})")
    for header in ("method", label, "ratio", "devices", "contiguous", "status", "time (s)", "note"):
        table.add_column(header, justify="left" if header in ("method", "status", "note") else "right")
    for r in comparison.by_objective(objective):
        table.add_row(
            r.method,
            _fmt(r.value, 10),
            _fmt(r.ratio, 4),
            _fmt(r.devices_used),
            _yes_no(r.contiguous),
            r.status if r.feasible is not False else f"{r.status} (violations)",
            f"{r.seconds:.3g}",
            r.message,
            style="dim" if r.feasible is False or r.value is None else None,
        )
    return table


CSV_FIELDS = ("workload", "objective", "method", "value", "ratio", "devices_used", "contiguous", "feasible",
              "status", "seconds", "message")


def rows_to_csv(comparisons: Sequence[Comparison]) -> str:
    """All rows of all comparisons as CSV (one header; ``value`` is max-load or latency)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for comparison in comparisons:
        for r in comparison.rows:
            data = asdict(r)
            writer.writerow({"workload": comparison.workload, **{k: data[k] for k in CSV_FIELDS if k in data}})
    return out.getvalue()
