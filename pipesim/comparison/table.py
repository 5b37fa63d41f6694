"""The paper's comparison table: every method on one workload, against the optimum.

Problem: users need to know what an optimal placement buys over what
practitioners use (Tarnawski et al., NeurIPS 2020, §6, Tables 1–3).  For one
workload :func:`compare` runs a chosen set of methods of the registry
(:data:`pipesim.placement.methods.METHODS`) and gives one :class:`Row` per
method: its objective value (max-load, or latency), the ratio to the
reference (the DP for max-load, the latency IP for latency), devices used,
whether the split is contiguous, feasibility, status and solve time.  Every
split is scored by the evaluator (max-load) or by
:func:`pipesim.placement.latency.latency_of_split` (latency).

Options are one flat mapping of the registry's option names (``seed``,
``restarts``, ``time_limit``, ``split``, …); each method receives those it
takes.  A method that lacks a required option (``expert`` without a
``split``) gives no row and is reported in ``skipped``; a method that fails
gives a row with status ``error`` and the reason, so one failure never hides
the rest of the table.  Rendering (rich table, CSV) is
:mod:`pipesim.comparison.render`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipesim.comparison.timeout import MethodTimeout, time_limited
from pipesim.errors import InputError, MissingExtraError, SplitError
from pipesim.placement.devices import CPU
from pipesim.placement.latency import (
    latency_of_split,
    solve_latency_greedy,
    solve_latency_ip,
)
from pipesim.placement.methods import METHODS, get_method
from pipesim.placement.result import OPTIMAL, PlacementResult
from pipesim.placement.display import Display, number
from pipesim.placement.workload import Workload

__all__ = ["DEFAULT_METHODS", "LATENCY", "MAX_LOAD", "Comparison", "Row", "compare"]

MAX_LOAD = "max_load"
LATENCY = "latency"

#: What ``pipesim compare`` runs without ``--methods`` (the IPs need a time limit to be practical).
DEFAULT_METHODS = ("dp", "pipedream", "local_search", "partitioner", "single", "expert")


@dataclass
class Row:
    """One method's line of the table (``value`` is max-load or latency, per ``objective``).

    Attributes
    ----------
    objective : {"max_load", "latency"}
    method, status : str
    value : float or None
        ``None`` when the method found nothing (or failed: see ``message``).
    ratio : float or None
        ``value`` over the reference's (the DP, or the latency IP).
    devices_used : int or None
    contiguous, feasible : bool or None
    seconds : float
    message : str
    """

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
        """The fields, plus the value under the objective's own name (``max_load`` or ``latency``)."""
        out = asdict(self)
        out[self.objective] = self.value  # the headline number under its own name (max_load / latency)
        return out


@dataclass(repr=False)
class Comparison:
    """All rows for one workload, plus the methods that could not run and why.

    Attributes
    ----------
    workload : str
    rows : list of Row
    skipped : dict of str to str
        Method -> why it did not run (e.g. ``expert`` without a split).
    results : dict of str to PlacementResult
        The throughput methods' results.
    proven : dict of str to bool
        Objective -> whether its reference is proven optimal.

    Examples
    --------
    >>> from pipesim.placement.examples import chain
    >>> table = compare(chain((1.0, 1.0)), ["dp", "single"], name="two")
    >>> [r.method for r in table.by_objective("max_load")], table.proven
    (['dp', 'single'], {'max_load': True})
    >>> table.to_dict()["max_load"][1]["max_load"]
    2.0
    """

    workload: str
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    results: dict[str, PlacementResult] = field(default_factory=dict)
    #: objective -> whether its reference (DP, latency IP) is proven optimal; ratios are to it either way
    proven: dict[str, bool] = field(default_factory=dict)

    def by_objective(self, objective: str) -> list[Row]:
        """The rows of one objective (:data:`MAX_LOAD` or :data:`LATENCY`), in table order."""
        return [r for r in self.rows if r.objective == objective]

    def display(self) -> Display:
        """The paper's table: one row per method and objective, value, ratio to the reference, devices, time.

        ``repr(comparison)`` is its text and Jupyter shows its HTML (``_repr_html_``).
        """
        rows = [(r.objective, r.method, r.status, number(r.value), number(r.ratio),
                 "-" if r.devices_used is None else str(r.devices_used), f"{r.seconds:.3g}", r.message)
                for r in self.rows]
        notes = [f"{method} skipped: {why}" for method, why in self.skipped.items()]
        return Display(f"{self.workload}: {len(self.rows)} results", ("objective", "method", "status", "value",
                       "ratio", "devices", "seconds", "message"), rows, notes=notes)

    def __repr__(self) -> str:
        return self.display().text()

    def _repr_html_(self) -> str:
        return self.display().html()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: rows by objective, whether each reference is proven, the skipped methods."""
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


def _throughput_row(method: str, result: PlacementResult) -> Row:
    ev = result.evaluation
    return Row(
        objective=MAX_LOAD,
        method=method,
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


def _latency_rows(workload: Workload, comparison: Comparison, time_limit: float | None,
                  method_timeout: float | None) -> None:
    """Latency IP and greedy, and the latency of every throughput split (docs/model.md §4.4).

    The latency IP is warm-started from the best feasible contiguous split seen
    (greedy or a throughput split), so it is never worse than those.
    """
    if workload.graph.is_training:
        comparison.skipped[LATENCY] = "latency is defined for inference graphs; this one has backward nodes"
        return
    rows: dict[str, Row] = {}
    candidates = []  # (latency, split) of feasible splits, to warm-start the IP

    def run(name: str, solve: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            with time_limited(method_timeout):
                return solve()
        except Exception as exc:  # one failing method must not hide the table
            rows[name] = _error_row(LATENCY, name, time.perf_counter() - started, exc)
            return None

    for name, result in comparison.results.items():
        if result.evaluation is not None:
            started = time.perf_counter()
            schedule = run(name, lambda: latency_of_split(workload, result.evaluation.split))
            if schedule is not None:
                rows[name] = _latency_row(name, result.status, schedule, time.perf_counter() - started,
                                          "latency of its max-load split")
                if schedule.feasible and rows[name].contiguous:  # the IP allows one piece per device
                    candidates.append((schedule.latency, schedule.evaluation.split))
    solved = {}
    for name, solve in (
        ("latency_greedy", lambda: solve_latency_greedy(workload)),
        ("latency_ip", lambda: solve_latency_ip(
            workload, time_limit=time_limit, warm_start=min(candidates, key=lambda c: c[0])[1] if candidates else None)),
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
    options: Mapping[str, Any] | None = None,
    *,
    latency: bool = False,
    method_timeout: float | None = None,
    name: str | None = None,
) -> Comparison:
    """Run ``methods`` on ``workload`` and tabulate them against the DP's optimum.

    Parameters
    ----------
    workload : Workload
        The graph and its devices.
    methods : sequence of str
        Names of :data:`~pipesim.placement.methods.METHODS`, in row order.
    options : mapping, optional
        Option name -> value, each handed to the methods that take it
        (``seed``, ``restarts``, ``time_limit``, ``split`` for ``expert``, …).
    latency : bool
        Also the latency table (inference graphs): latency IP, greedy, and
        the latency of every max-load split.
    method_timeout : float, optional
        Abandon any method still running after this many seconds (its row
        says so).
    name : str, optional
        The workload's name in the table (default: the file's stem).

    Returns
    -------
    Comparison
        One :class:`Row` per method and objective, ratios to the reference.

    Raises
    ------
    InputError
        An unknown method or option, or a bad value of an option.

    Examples
    --------
    >>> from pipesim.placement.graph import Graph, Node
    >>> from pipesim.placement.devices import paper_devices
    >>> w = Workload(Graph([Node(1, {"accelerator": 1.0, "cpu": 5.0}), Node(2, {"accelerator": 1.0, "cpu": 5.0})],
    ...                    []), paper_devices(2, 0, 10.0))
    >>> table = compare(w, ["dp", "single"])
    >>> [(r.method, r.value, r.ratio) for r in table.rows]
    [('dp', 1.0, 1.0), ('single', 2.0, 2.0)]
    """
    options = dict(options or {})
    chosen = [get_method(m) for m in methods]
    known = {o for m in METHODS.values() for o in m.options}
    for key in options:
        if key not in known:
            raise InputError(None, key, f"not an option of any method (options: {', '.join(sorted(known))})")
    comparison = Comparison(workload=name or workload.name)
    rows: list[Row] = []
    for method in chosen:
        given = {k: v for k, v in options.items() if k in method.options}
        missing = [k for k in method.required if k not in given]
        if missing:
            comparison.skipped[method.name] = f"needs {', '.join(missing)} ({method.options[missing[0]].help})"
            continue
        checked = method.check(given)  # the user's input is wrong: say so, do not tabulate
        started = time.perf_counter()
        try:
            with time_limited(method_timeout):
                result = method.solver(workload, **checked)
        except (InputError, SplitError):
            raise  # e.g. the expert split does not fit the workload
        except MissingExtraError as exc:  # an optional part not installed: no row, the reason shown
            comparison.skipped[method.name] = str(exc)
            continue
        except Exception as exc:  # one failing method must not hide the table
            rows.append(_error_row(MAX_LOAD, method.name, time.perf_counter() - started, exc))
            continue
        comparison.results[method.name] = result
        rows.append(_throughput_row(method.name, result))
    dp = comparison.results.get("dp")
    comparison.proven[MAX_LOAD] = dp is not None and dp.status == OPTIMAL
    _set_ratios(rows, "dp")
    comparison.rows = rows
    if latency:
        _latency_rows(workload, comparison, options.get("time_limit"), method_timeout)
    return comparison
