"""Discrete-event simulation (SimPy) of a placement on a stream of microbatches.

``simulate(workload, split, schedule=..., comm=...)`` executes a split and
measures time-per-sample, latency, utilisation, bubbles, in-flight microbatches
and memory beside the evaluator's prediction (docs/model.md §6).  ``LinkModel`` sets the
links of the ``overlap`` communication mode.
"""

from pipesim.simulation.actions import PLACEMENTS, Action
from pipesim.simulation.engine import SimulationError
from pipesim.simulation.links import LinkModel
from pipesim.simulation.orders import FLUSHED_SCHEDULES, SCHEDULE_SPECS, rank_orders
from pipesim.simulation.program import COMM_MODES
from pipesim.simulation.schedules import SCHEDULES
from pipesim.simulation.simulator import SimulationResult, simulate

__all__ = [
    "COMM_MODES",
    "FLUSHED_SCHEDULES",
    "PLACEMENTS",
    "SCHEDULES",
    "SCHEDULE_SPECS",
    "Action",
    "LinkModel",
    "SimulationError",
    "SimulationResult",
    "rank_orders",
    "simulate",
]
