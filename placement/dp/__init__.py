"""The optimal contiguous split by dynamic programming over ideals (docs/model.md §3-4).

Tarnawski et al., NeurIPS 2020, §4.  One module per piece:

* :mod:`~pipesim.placement.dp.contract` — the contracted forward graph the DP works on;
* :mod:`~pipesim.placement.dp.ideals` — enumerating its ideals (downsets);
* :mod:`~pipesim.placement.dp.kernels` — the compiled inner loops, compiled only when they pay;
* :mod:`~pipesim.placement.dp.solve` — :func:`solve_dp`, the DP itself.
"""

from __future__ import annotations

from pipesim.placement.dp.solve import DPError, ProgressCallback, alternatives, solve_dp

__all__ = ["DPError", "ProgressCallback", "alternatives", "solve_dp"]
