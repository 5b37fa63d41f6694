"""Progress bars for long solver stages, drawn by the command line (issue 11 item 5).

Problem: the solvers' long stages (enumerating ideals, filling the DP table)
should show progress on a terminal, but an algorithm must not draw anything.
Guarantee: solvers only call a *progress callback* ``progress(stage, done,
total)`` (see :data:`pipesim.placement.dp.ProgressCallback`); this module turns
those calls into transient rich progress bars, one per stage, and is used by
the command line only.

Examples
--------
>>> from pipesim.progress import progress_bars
>>> with progress_bars(enabled=False) as report:
...     report is None
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["ProgressCallback", "progress_bars"]

#: ``progress(stage, done, total)``: stage name, units done, units in the stage.
ProgressCallback = Callable[[str, int, int], None]


@contextlib.contextmanager
def progress_bars(enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A progress callback that draws one transient rich bar per stage (``None`` if not ``enabled``).

    Parameters
    ----------
    enabled : bool
        Draw bars (typically: stderr is a terminal and no JSON is printed).

    Returns
    -------
    context manager yielding ``ProgressCallback | None``
        Pass it as ``progress=`` to a solver, e.g.
        ``solve_dp(workload, progress=report)``; the bars vanish on exit.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console  # imported here: rich is slow to import and only needed on a terminal
    from rich.progress import Progress

    tasks: dict[str, int] = {}
    with Progress(transient=True, console=Console(stderr=True)) as bar:

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield report
