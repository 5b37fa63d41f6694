"""Baseline: a given split (a human expert's, or any user's), scored as is.

Problem: practitioners split models by hand; the paper compares its optimum
with experts' splits of BERT-24, GNMT, ResNet-50 and Inception-v3.  A split
file in the paper's format (docs/model.md §7.2) is read and scored by the evaluator; a
training split may list only forward nodes (backward nodes follow their
colour class), which is how the paper scores an inference split on the
corresponding training graph.

Guarantee: the max-load is the evaluator's; the result is ``feasible`` iff
the evaluator finds no violation (otherwise ``infeasible`` with the first
violation as message, and the evaluation still attached).

Reference: Tarnawski et al., NeurIPS 2020, §6; ``dp.cpp -expert`` in the
paper's code; docs/model.md §7.2.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipesim.placement.baselines.units import result_from_split
from pipesim.placement.formats import read_split
from pipesim.placement.result import PlacementResult
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload

__all__ = ["solve_expert"]


def solve_expert(workload: Workload, *, split: Split | str | Path) -> PlacementResult:
    """Score ``split`` (a :class:`Split` or the path of a split file) on ``workload``.

    Parameters
    ----------
    workload : Workload
    split : Split, str or Path
        A training split may list only forward nodes.

    Returns
    -------
    PlacementResult
        ``feasible`` or ``infeasible`` (message: the first violation); no bound.

    Raises
    ------
    InputError
        The split file cannot be read.
    SplitError
        The split names nodes the workload does not have.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond()
    >>> from pipesim.placement.split import Split
    >>> r = solve_expert(w, split=Split.from_lists({"accelerator": [[1, 2, 3], [4]]}))
    >>> r.status, r.max_load
    ('feasible', 5.0)
    """
    started = time.perf_counter()
    source = None
    if not isinstance(split, Split):
        source = str(split)
        split = read_split(Path(split))
    stats = {"split": source} if source else {}
    return result_from_split("expert", workload, split, started, stats=stats)
