"""The one registry of placement methods: a name, a solver and the options it takes.

Problem: ``pipesim solve --method``, ``pipesim compare``, a scenario's
``solve: {method: ..., options: ...}`` and the Python API's
``pipesim.solve(workload, method=...)`` must offer the same methods with the
same option names and checks.  Each :class:`Method` here names its solver
(``solver(workload, **options) -> PlacementResult``) and its options as
typed :mod:`~pipesim.placement.options` fields; every caller goes through
:func:`get_method` and :meth:`Method.check`, so a method or an option added
here is reachable everywhere at once (networkx's ``flow_func=`` is the
model: one entry point, the algorithm as a parameter).

Guarantee: every method returns a :class:`~pipesim.placement.result.
PlacementResult` whose split is scored by the one evaluator
(:func:`pipesim.placement.evaluate.evaluate`).

Examples
--------
>>> sorted(METHODS)[:3]
['dp', 'expert', 'ip']
>>> get_method("local-search").check({"restarts": "3"})
{'restarts': 3}
>>> get_method("dp").check({"restarts": 3})
Traceback (most recent call last):
...
pipesim.errors.InputError: restarts: not an option of dp (its options: merge, fuse_layers, ideal_limit, memory_budget, schedule, microbatches)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipesim.errors import IdealLimitError, InputError, ResourceLimitError
from pipesim.placement.activations import IN_FLIGHT_SCHEDULES
from pipesim.placement.dp.contract import MERGE_MODES
from pipesim.placement.mip_backend import DEFAULT_SOLVER, SOLVERS
from pipesim.placement.options import (
    Bool,
    Choice,
    Duration,
    Field,
    File,
    Float,
    Int,
    IntList,
    Size,
)
from pipesim.placement.result import PlacementResult, SolverResult
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload

__all__ = ["LATENCY_METHODS", "METHODS", "Method", "get_method"]

#: A progress reporter: ``progress(stage, done, total)``; ``None`` shows nothing.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Method:
    """A placement method: its solver, what it guarantees and the options it takes.

    Attributes
    ----------
    name : str
        The registry key (``local-search`` also finds ``local_search``).
    solver : callable
        ``solver(workload, **options) -> SolverResult``.
    summary : str
        One line for help texts and tables.
    options : mapping of str to Field
        The options it takes, typed (:mod:`~pipesim.placement.options`).

    Examples
    --------
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0))
    >>> METHODS["single"](w).max_load
    3.0
    >>> METHODS["dp"](w, merge="none").max_load
    2.0
    """

    name: str
    solver: Callable[..., SolverResult]
    summary: str
    options: Mapping[str, Field] = field(default_factory=dict)
    #: what the solver's ``progress=`` takes: ``"callback"`` (``progress(stage, done, total)``),
    #: ``"log"`` (``True`` streams the MILP solver's log to stderr) or ``None`` (no progress)
    progress: str | None = None
    #: options that must be given
    required: tuple[str, ...] = ()

    def check(self, options: Mapping[str, Any], *, base: Path | None = None, prefix: str = "") -> dict[str, Any]:
        """``options`` checked and converted; :class:`InputError` naming the first problem.

        ``base`` resolves relative file paths (a scenario's folder); ``prefix``
        is put before each option name in messages (``solve.options.``).

        Parameters
        ----------
        options : mapping
            Option name (dashes or underscores) -> value (Python, YAML or
            command-line text).

        Returns
        -------
        dict
            Converted values by option name (underscores).

        Raises
        ------
        InputError
            An unknown option, a bad value or a missing required option.
        """
        checked, problems = self.problems(options, base=base, prefix=prefix)
        if problems:
            raise InputError(None, *problems[0])
        return checked

    def problems(self, options: Mapping[str, Any], *, base: Path | None = None,
                 prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The options checked, and every problem as ``(field path, problem)``.

        Like :meth:`check` but collects every problem instead of raising
        (scenarios report them all at once).

        Examples
        --------
        >>> METHODS["dp"].problems({"merge": "fast", "restarts": 3}, prefix="solve.options.")[1]
        [('solve.options.merge', 'must be one of exact, paper, none, got "fast"'), \
('solve.options.restarts', 'not an option of dp (its options: merge, fuse_layers, ideal_limit, memory_budget, schedule, microbatches)')]
        """
        checked: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for key, value in options.items():
            name = str(key).replace("-", "_")
            option = self.options.get(name)
            if option is None:
                known = ", ".join(self.options) or "none"
                problems.append((f"{prefix}{key}", f"not an option of {self.name} (its options: {known})"))
                continue
            try:
                checked[name] = option.convert(value, f"{prefix}{name}", base)
            except InputError as exc:
                problems.append((exc.field or f"{prefix}{name}", exc.problem))
        for name in self.required:
            if name not in options and not any(p.startswith(f"{prefix}{name}") for p, _ in problems):
                problems.append((f"{prefix}{name}", f"{self.name} needs this option ({self.options[name].help})"))
        return checked, problems

    def __call__(self, workload: Workload, *, progress: Progress | bool | None = None, **options: Any) -> SolverResult:
        """Run the method on ``workload`` with ``options`` (checked first)."""
        checked = self.check(options)
        if self.progress == "callback" and callable(progress):
            checked["progress"] = progress
        elif self.progress == "log" and progress:
            checked["progress"] = True
        return self.solver(workload, **checked)


def _in_flight(options: dict) -> dict:
    """``schedule: none`` is the paper's static memory model (the solvers' ``schedule=None``)."""
    if options.get("schedule") == "none":
        options = {**options, "schedule": None}
    return options


def _dp(workload: Workload, **options) -> PlacementResult:
    from pipesim.placement.dp.solve import solve_dp

    return solve_dp(workload, **_in_flight(options))


def _warm_start(workload: Workload, start: Any, **in_flight: Any) -> Split | None:
    """The split named by ``warm_start``: ``"dp"`` runs the DP first (skipped when it cannot finish), with
    the in-flight activations' options (``schedule``, ``microbatches``) when given."""
    if start is None or isinstance(start, Split):
        return start
    if start == "dp":
        try:
            result = _dp(workload, **{k: v for k, v in in_flight.items() if v is not None})
        except (IdealLimitError, ResourceLimitError, MemoryError):  # too many ideals: solve without a start
            return None
        return result.evaluation.split if result.evaluation is not None else None
    from pipesim.placement.formats import read_split

    return read_split(Path(start))


def _ip(contiguous: bool) -> Callable[..., PlacementResult]:
    def solve(workload: Workload, *, warm_start: Any = None, **options) -> PlacementResult:
        from pipesim.placement.milp import solve_ip

        options = _in_flight(options)
        start = _warm_start(workload, warm_start, schedule=options.get("schedule"), microbatches=options.get("microbatches"))
        return solve_ip(workload, contiguous=contiguous, warm_start=start, **options)

    return solve


def _baseline(name: str) -> Callable[..., PlacementResult]:
    def solve(workload: Workload, **options) -> PlacementResult:
        from pipesim.placement import baselines

        return getattr(baselines, f"solve_{name}")(workload, **options)

    return solve


#: The in-flight activations option of the DP and the IPs (pipesim.placement.activations).
_ACTIVATIONS = {
    "schedule": Choice(("none", *IN_FLIGHT_SCHEDULES),
                       help="count the activations this pipeline schedule keeps in flight in the memory constraint "
                            "(none: the paper's static model; a scenario that names a training schedule turns it on)"),
    "microbatches": Int(minimum=1, help="microbatches per flush for schedule (default 4 per stage)"),
}
_TIME_LIMIT = Duration(help="stop after this many seconds with the best split found (Ctrl-C does the same)")
_SEED = Int(minimum=0, help="random seed (default 0)")
_MIP = {
    "objective": Choice(("maxload", "diffmaxima"), help="maxload (default) or diffmaxima: max forward + max backward load"),
    "solver": Choice(SOLVERS, help=f"MILP backend (default: {DEFAULT_SOLVER})"),
    "time_limit": _TIME_LIMIT,
    "gap": Float(minimum=0.0, help="stop at this relative gap (default 1e-9)"),
    "warm_start": File(keywords=("dp",), objects=(Split,), help="start from the DP's split (dp) or a split file"),
    "threads": Int(minimum=1, help="solver threads (default 1)"),
    **_ACTIVATIONS,
}

#: Every placement method, by name, in the comparison table's row order.
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("dp", _dp, "optimal contiguous split: the DP over ideals (docs/model.md §4.2)", {
            "merge": Choice(MERGE_MODES, help="zero-cost node merging: exact (default), paper (inexact when memory binds), none"),
            "fuse_layers": Bool(help="keep all nodes of a layerId together (feasible, not proven optimal)"),
            "ideal_limit": Int(minimum=1, help="stop with an error past this many ideals (default 2,000,000)"),
            "memory_budget": Size(help="stop with an error before the DP's tables would exceed this "
                                       "(default: 0.6 x available memory)"),
            **_ACTIVATIONS,
        }, progress="callback"),
        Method("ip", _ip(True), "contiguous MILP (docs/model.md §4.3): the DP's optimum, with a proven bound", _MIP, progress="log"),
        Method("ip_noncontiguous", _ip(False), "MILP over all splits, contiguous or not (docs/model.md §4.3)", _MIP, progress="log"),
        Method("pipedream", _baseline("pipedream"), "PipeDream-style: biconnected components fused, then the DP", {
            "ignore_sources": IntList(help="nodes whose out-edges the fusion ignores (input layers)"),
        }),
        Method("local_search", _baseline("local_search"), "moves and swaps of colour classes, with restarts", {
            "restarts": Int(minimum=1, help="restarts (default 10)"),
            "seed": _SEED,
            "time_limit": _TIME_LIMIT,
        }),
        Method("partitioner", _baseline("partitioner"), "a balanced METIS k-way partition, repaired", {"seed": _SEED}),
        Method("single", _baseline("single"), "everything on one accelerator"),
        Method("expert", _baseline("expert"), "a given split, scored as it is", {
            "split": File(objects=(Split,), help="the split file to score"),
        }, required=("split",)),
    )
}


def _latency_ip(workload: Workload, *, warm_start: Any = None, **options) -> SolverResult:
    from pipesim.placement.latency import solve_latency_ip

    return solve_latency_ip(workload, warm_start=_warm_start(workload, warm_start), **options)


def _latency_greedy(workload: Workload) -> SolverResult:
    from pipesim.placement.latency import solve_latency_greedy

    return solve_latency_greedy(workload)


#: Latency of one sample through an inference graph (docs/model.md §4.4), by name.
LATENCY_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ip", _latency_ip, "the latency IP: at most q contiguous pieces per accelerator, optimal within the gap",
               {"q": Int(minimum=1, help="contiguous pieces per accelerator (default 1)"),
                **{k: v for k, v in _MIP.items() if k != "objective"}}, progress="log"),
        Method("greedy", _latency_greedy, "the paper's greedy: blocks in topological order, filling accelerators"),
    )
}


def get_method(name: str, registry: Mapping[str, Method] = METHODS) -> Method:
    """The method called ``name`` in ``registry`` (``local-search`` and ``local_search`` are the same).

    Parameters
    ----------
    name : str
    registry : mapping of str to Method
        :data:`METHODS` (default) or :data:`LATENCY_METHODS`.

    Returns
    -------
    Method

    Raises
    ------
    InputError
        No method has that name; the message lists them.

    Examples
    --------
    >>> get_method("local-search").name
    'local_search'
    >>> get_method("greedy", LATENCY_METHODS).name
    'greedy'
    >>> get_method("magic")
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: method: unknown method 'magic' (known: dp, ip, ip_noncontiguous, pipedream, \
local_search, partitioner, single, expert)
    """
    method = registry.get(str(name).replace("-", "_"))
    if method is None:
        raise InputError(None, "method", f"unknown method {name!r} (known: {', '.join(registry)})")
    return method
