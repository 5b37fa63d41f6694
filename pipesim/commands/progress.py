"""Progress bars on the terminal: the callback the command line hands to long solvers.

The library reports progress through a plain callback ``progress(stage, done,
total)`` and never draws anything itself; :func:`progress_bar` turns those
calls into a transient rich progress bar on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage, or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    tasks: dict[str, int] = {}
    with Progress(transient=True, console=Console(stderr=True)) as bar:
        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield progress
