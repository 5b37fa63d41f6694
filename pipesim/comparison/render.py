"""The comparison table as people read it: a rich table, or CSV for spreadsheets."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import asdict

from rich.table import Table

from pipesim.comparison.table import MAX_LOAD, Comparison

__all__ = ["CSV_FIELDS", "comparison_table", "rows_to_csv"]


def _fmt(x: float | None, digits: int = 6) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _yes_no(x: bool | None) -> str:
    return "—" if x is None else ("yes" if x else "no")


def comparison_table(comparison: Comparison, objective: str = MAX_LOAD) -> Table:
    """A rich table of one objective's rows; non-contiguous and infeasible rows are marked.

    Parameters
    ----------
    comparison : Comparison
    objective : {"max_load", "latency"}

    Returns
    -------
    rich.table.Table

    Examples
    --------
    >>> from pipesim.comparison import compare
    >>> from pipesim.placement.examples import chain
    >>> table = compare(chain((1.0, 1.0)), ["dp", "single"], name="two")
    >>> comparison_table(table).row_count
    2
    """
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
    """All rows of all comparisons as CSV (one header; ``value`` is max-load or latency).

    Parameters
    ----------
    comparisons : sequence of Comparison

    Returns
    -------
    str

    Examples
    --------
    >>> from pipesim.comparison import compare
    >>> from pipesim.placement.examples import chain
    >>> table = compare(chain((1.0, 1.0)), ["dp", "single"], name="two")
    >>> print(rows_to_csv([table]).splitlines()[2][:40])
    two,max_load,single,2.0,2.0,1,True,True,
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for comparison in comparisons:
        for r in comparison.rows:
            data = asdict(r)
            writer.writerow({"workload": comparison.workload, **{k: data[k] for k in CSV_FIELDS if k in data}})
    return out.getvalue()
