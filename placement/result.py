"""The result every solver returns (one call shape, one result type).

Solvers are plain functions ``solve_xxx(workload, **options) -> PlacementResult``.
The reported objective is always the evaluator's (:mod:`placement.evaluate`):
a solver's internal numbers (DP table entries, MILP auxiliaries) are at most
bounds, and the solver checks that its own value agrees with the evaluator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from placement.evaluate import SplitEvaluation
from placement.formats import split_to_json

__all__ = ["OPTIMAL", "FEASIBLE", "INFEASIBLE", "TIME_LIMIT", "PlacementResult"]

OPTIMAL = "optimal"        # proven optimal (within the solver's gap for MILPs)
FEASIBLE = "feasible"      # a valid split with no optimality claim (heuristics)
TIME_LIMIT = "time_limit"  # stopped by a time limit or interrupt: best split found so far
INFEASIBLE = "infeasible"  # proven that no split satisfies the constraints


@dataclass
class PlacementResult:
    """A solver's answer: the split, its evaluation, and how it was obtained.

    ``bound`` is a proven lower bound on the optimum of the solver's problem
    (equal to the max-load when ``status`` is optimal), ``None`` if unknown.
    ``evaluation`` is ``None`` only when no split was found.
    """

    method: str
    status: str
    evaluation: SplitEvaluation | None
    bound: float | None = None
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def max_load(self) -> float:
        return self.evaluation.max_load if self.evaluation is not None else math.inf

    @property
    def gap(self) -> float | None:
        """Relative gap ``(max_load - bound) / max_load``; 0 when proven optimal."""
        if self.bound is None or self.evaluation is None:
            return None
        if self.max_load == 0:
            return 0.0
        return max(0.0, (self.max_load - self.bound) / self.max_load)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "status": self.status,
            "max_load": None if self.evaluation is None else self.max_load,
            "bound": self.bound,
            "gap": self.gap,
            "seconds": self.seconds,
            "message": self.message,
            "stats": self.stats,
        }
        if self.evaluation is not None:
            out["evaluation"] = self.evaluation.to_dict()
            out["split"] = split_to_json(self.evaluation)
        return out
