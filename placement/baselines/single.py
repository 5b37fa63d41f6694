"""Baseline: the whole graph on one device (the paper's "one accelerator").

Problem: the simplest placement a practitioner would try, and the reference
point of every pipeline speed-up: all nodes on device 0 of one class (by
default the workload's first class, the accelerator in the paper's files).

Guarantee: the max-load is the evaluator's, i.e. the class's total compute
time (nothing is transferred).  As in the paper's implementation
(``dp.cpp -oneFpga``) the load is reported even when the graph does not fit
(memory over capacity, unsupported nodes); the result is then marked
``infeasible`` and its message names the first violation.

Reference: Tarnawski et al., NeurIPS 2020, §6 (baselines); docs/model.md §4.5.
"""

from __future__ import annotations

import time

from pipesim.placement.baselines.units import result_from_assignment
from pipesim.placement.result import PlacementResult
from pipesim.placement.workload import Workload

__all__ = ["solve_single"]


def solve_single(workload: Workload, *, device_class: str | None = None) -> PlacementResult:
    """Place every node on device 0 of ``device_class`` (default: the first class).

    Parameters
    ----------
    workload : Workload
    device_class : str, optional

    Returns
    -------
    PlacementResult
        ``feasible``, or ``infeasible`` with the load still reported when the
        graph does not fit (message: the first violation).

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond()
    >>> solve_single(w).max_load
    6.0
    >>> tight = diamond(accelerators=1, memory=1.0)
    >>> r = solve_single(tight)
    >>> r.status, r.message
    ('infeasible', 'accelerator[0] uses 4 B of memory, more than its 1 B')
    """
    started = time.perf_counter()
    name = device_class if device_class is not None else workload.devices[0].name
    workload.device_class(name)  # an unknown class: InputError names it
    placement = {v: (name, 0) for v in workload.graph.nodes}
    return result_from_assignment("single", workload, placement, started, stats={"device_class": name})
