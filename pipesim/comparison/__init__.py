"""The paper's comparison table (§6): every placement method on one workload, against the optimum.

:func:`compare` runs methods of the one registry
(:data:`pipesim.placement.methods.METHODS`) and returns a :class:`Comparison`;
:mod:`~pipesim.comparison.render` draws it as a rich table or CSV;
:mod:`~pipesim.comparison.timeout` abandons a method that runs too long.
"""

from pipesim.comparison.render import comparison_table, rows_to_csv
from pipesim.comparison.table import (
           DEFAULT_METHODS,
           LATENCY,
           MAX_LOAD,
           Comparison,
           Row,
           compare,
)
from pipesim.comparison.timeout import MethodTimeout

__all__ = ["DEFAULT_METHODS", "LATENCY", "MAX_LOAD", "Comparison", "MethodTimeout", "Row", "compare",
           "comparison_table", "rows_to_csv"]
