"""``pipesim solve --method ip``: the throughput integer program's options and runner.

:func:`ip_options` adds the IP's options to the ``solve`` parser and
:func:`run_ip` runs :func:`pipesim.placement.milp.solve_ip` with them; ``solve`` owns
the device options, printing and writing.  Also the MILP options shared with
``pipesim latency`` (:func:`mip_options`, :func:`warm_start_split`).
"""

from __future__ import annotations

from pathlib import Path

from pipesim.placement.formats import InputError, read_split
from pipesim.placement.milp import OBJECTIVES, solve_ip
from pipesim.placement.mip_backend import DEFAULT_SOLVER, SOLVERS
from pipesim.placement.result import PlacementResult
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(None, None, f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise InputError(None, None, f"expected a non-negative number, got {text!r}")
    return value


def mip_options(group) -> None:
    """``--solver``, ``--time-limit``, ``--gap``, ``--warm-start`` (shared by ``solve`` and ``latency``)."""
    group.add_argument("--solver", choices=SOLVERS, default=DEFAULT_SOLVER,
                       help=f"MILP backend (default: {DEFAULT_SOLVER}, the faster in benchmarks/milp.py)")
    group.add_argument("--time-limit", type=_non_negative, metavar="S",
                       help="stop after S seconds with the best split found (Ctrl-C does the same)")
    group.add_argument("--gap", type=_non_negative, metavar="G", help="stop at relative gap G (default 1e-9)")
    group.add_argument("--warm-start", metavar="dp|SPLIT.json",
                       help="start the solver from the DP's split or from a split file")


def ip_options(parser) -> None:
    g = parser.add_argument_group("ip")
    g.add_argument("--noncontiguous", action="store_true", help="allow non-contiguous device sets")
    g.add_argument("--objective", choices=OBJECTIVES, default="maxload",
                   help="maxload (default) or diffmaxima: max forward load + max backward load")
    mip_options(g)


def warm_start_split(args, workload: Workload) -> Split | None:
    """The split named by ``--warm-start``: ``dp`` runs the DP first (skipped if it fails)."""
    if not args.warm_start:
        return None
    if args.warm_start == "dp":
        from pipesim.placement.dp import solve_dp
        from pipesim.placement.ideals import IdealLimitError

        try:
            result = solve_dp(workload)
        except (IdealLimitError, MemoryError):  # too many ideals: solve without a start
            return None
        return result.evaluation.split if result.evaluation is not None else None
    return read_split(Path(args.warm_start))


def run_ip(args, workload: Workload) -> PlacementResult:
    return solve_ip(
        workload,
        contiguous=not args.noncontiguous,
        objective=args.objective,
        solver=args.solver,
        time_limit=args.time_limit,
        gap=args.gap,
        warm_start=warm_start_split(args, workload),
        progress=bool(getattr(args, "progress", False)),
    )
