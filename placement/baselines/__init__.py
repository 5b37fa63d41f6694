"""The paper's baselines for max-load (docs/model.md §4.5; Tarnawski et al., NeurIPS 2020, §6).

Each is a plain function ``solve_xxx(workload, **options) -> PlacementResult``
whose split is scored by :func:`pipesim.placement.evaluate.evaluate`:

* :func:`solve_pipedream` — biconnected components fused, linearised, then the DP;
* :func:`solve_local_search` — moves and swaps of colour classes, with restarts;
* :func:`solve_partitioner` — a balanced k-way METIS partition, repaired;
* :func:`solve_single` — everything on one device;
* :func:`solve_expert` — a given split file, scored as is.
"""

from pipesim.placement.baselines.expert import solve_expert
from pipesim.placement.baselines.local_search import solve_local_search
from pipesim.placement.baselines.partitioner import solve_partitioner
from pipesim.placement.baselines.pipedream import solve_pipedream
from pipesim.placement.baselines.single import solve_single

__all__ = ["solve_expert", "solve_local_search", "solve_partitioner", "solve_pipedream", "solve_single"]
