"""The result every solver returns (one call shape, one result type).

Solvers are plain functions ``solve_xxx(workload, **options) -> PlacementResult``.
The reported objective is always the evaluator's (:mod:`pipesim.placement.evaluate`):
a solver's internal numbers (DP table entries, MILP auxiliaries) are at most
bounds, and the solver checks that its own value agrees with the evaluator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipesim.placement.display import Display, number, size
from pipesim.placement.evaluate import SplitEvaluation
from pipesim.placement.formats import split_to_json
from pipesim.placement.split import Split

__all__ = ["FEASIBLE", "INFEASIBLE", "INTERRUPTED", "OPTIMAL", "TIME_LIMIT", "PlacementResult", "SolverResult"]

OPTIMAL = "optimal"        # proven optimal (within the solver's gap for MILPs)
FEASIBLE = "feasible"      # a valid split with no optimality claim (heuristics)
TIME_LIMIT = "time_limit"  # stopped by a time limit: best split found so far
INTERRUPTED = "interrupted"  # stopped by Ctrl-C (pipesim.placement.interrupt): best split found so far
INFEASIBLE = "infeasible"  # proven that no split satisfies the constraints


@dataclass(repr=False)
class SolverResult:
    """What every solver reports besides its answer: status, proven bound, time.

    Subclasses say what the objective is (:attr:`objective`, ``inf`` when no
    answer was found) and add it to :meth:`to_dict` under its own name.

    Attributes
    ----------
    method : str
        The method that produced it.
    status : str
        :data:`OPTIMAL`, :data:`FEASIBLE`, :data:`TIME_LIMIT` or :data:`INFEASIBLE`.
    bound : float or None
        A proven lower bound on the optimum, ``None`` if unknown.
    seconds : float
        Wall time of the solve.
    stats : dict
        Method-specific counts (ideals, variables…).
    message : str
        Why it stopped, or what was infeasible.
    """

    #: What :attr:`objective` measures, as the headline names it.
    objective_name: ClassVar[str] = "objective"

    method: str
    status: str
    bound: float | None = field(default=None, kw_only=True)
    seconds: float = field(default=0.0, kw_only=True)
    stats: dict[str, Any] = field(default_factory=dict, kw_only=True)
    message: str = field(default="", kw_only=True)

    @property
    def objective(self) -> float:
        """The value of the answer (subclasses: max-load, latency); ``inf`` when there is none."""
        raise NotImplementedError

    @property
    def gap(self) -> float | None:
        """Relative gap ``(objective - bound) / objective``; 0 when proven optimal."""
        if self.bound is None or math.isinf(self.objective):
            return None
        if self.objective == 0:
            return 0.0
        return max(0.0, (self.objective - self.bound) / self.objective)

    def headline(self) -> str:
        """One line: method, status, the objective, the proven bound and the time taken."""
        line = f"{self.method}: {self.status}, {self.objective_name} {number(self.objective)}"
        if self.bound is not None and self.gap:
            line += f" (bound {number(self.bound)}, gap {self.gap:.2%})"
        return line + f", {self.seconds:.3g} s"

    def display(self) -> Display:
        """The result as a table (:class:`~pipesim.placement.display.Display`); subclasses add rows."""
        return Display(self.headline(), (), (), notes=[self.message] if self.message else [])

    def __repr__(self) -> str:
        return self.display().text()

    def _repr_html_(self) -> str:
        return self.display().html()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``method``, ``status``, ``bound``, ``gap``, ``seconds``, ``message``, ``stats``."""
        return {
            "method": self.method,
            "status": self.status,
            "bound": self.bound,
            "gap": self.gap,
            "seconds": self.seconds,
            "message": self.message,
            "stats": self.stats,
        }


@dataclass(repr=False)
class PlacementResult(SolverResult):
    """A throughput solver's answer: the split, its evaluation, and how it was obtained.

    ``bound`` is a proven lower bound on the optimum of the solver's problem
    (equal to the max-load when ``status`` is optimal), ``None`` if unknown.
    ``evaluation`` is ``None`` only when no split was found.

    Examples
    --------
    >>> from pipesim.placement.devices import paper_devices
    >>> from pipesim.placement.evaluate import evaluate
    >>> from pipesim.placement.graph import Graph, Node
    >>> from pipesim.placement.split import Split
    >>> g = Graph([Node(1, {"accelerator": 3.0})], [])
    >>> e = evaluate(g, paper_devices(1, 0, 10.0), Split.from_lists({"accelerator": [[1]]}))
    >>> r = PlacementResult("single", FEASIBLE, evaluation=e, bound=2.0)
    >>> r.max_load, r.split, round(r.gap, 4)
    (3.0, Split(assignment={'accelerator': (frozenset({1}),)}), 0.3333)
    >>> r.to_dict()["split"]
    {'fpgas': [{'nodes': [1], 'load': 3.0}], 'cpus': [], 'maxLoad': 3.0}
    >>> PlacementResult("dp", INFEASIBLE).max_load
    inf
    """

    objective_name: ClassVar[str] = "max-load"

    evaluation: SplitEvaluation | None = None

    @property
    def max_load(self) -> float:
        """The evaluator's max-load of the split (``inf`` when none was found)."""
        return self.evaluation.max_load if self.evaluation is not None else math.inf

    @property
    def split(self) -> Split | None:
        """The split found (``None`` when none was)."""
        return self.evaluation.split if self.evaluation is not None else None

    @property
    def objective(self) -> float:
        """The max-load."""
        return self.max_load

    def display(self) -> Display:
        """The split's devices in pipeline order: nodes, compute, send, receive, load, memory.

        ``repr(result)`` is its text and Jupyter shows its HTML (``_repr_html_``).

        Examples
        --------
        >>> from pipesim.placement.examples import chain
        >>> from pipesim.placement.dp import solve_dp
        >>> print(solve_dp(chain((2.0, 1.0))).display().text())  # doctest: +ELLIPSIS
        dp: optimal, max-load 2, ...
        device          nodes  compute  send  receive  load  memory
        accelerator[0]  1      2        0     0        2     1 B / 100 B
        accelerator[1]  1      1        0     0        1     1 B / 100 B
        """
        out = super().display()
        if self.evaluation is None:
            return out
        order = {name: i for i, name in enumerate(self.evaluation.stage_order or ())}
        used = sorted((d for d in self.evaluation.devices if d.nodes), key=lambda d: order.get(d.name, len(order)))
        out.headers = ("device", "nodes", "compute", "send", "receive", "load", "memory")
        out.rows = [(d.name, str(len(d.nodes)), number(d.compute), number(d.send), number(d.receive), number(d.load),
                     f"{size(d.memory)} / {size(d.capacity)}") for d in used]
        out.notes = [f"violation: {v}" for v in self.evaluation.violations] + out.notes
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``max_load``, the common fields, and ``evaluation`` and ``split`` when found."""
        out = {"max_load": None if self.evaluation is None else self.max_load, **super().to_dict()}
        if self.evaluation is not None:
            out["evaluation"] = self.evaluation.to_dict()
            out["split"] = split_to_json(self.evaluation)
        return out
