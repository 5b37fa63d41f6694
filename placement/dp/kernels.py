"""Compiled inner loops, compiled only when the work pays for it.

The DP's inner loops (ideal enumeration, pushing ideals to their supersets)
are numba kernels: on graphs with tens of thousands of ideals they run
5–12× faster than numpy (README, "The optimal contiguous split").  But
loading even a cached numba kernel costs about half a second per process
(numba's type system and LLVM start up), which dominates ``pipesim solve``
on a 30-node graph.  A :class:`Kernel` therefore runs the same function as
plain Python when a call's ``work`` (an estimate of its inner iterations)
is below :data:`SMALL_WORK`, and compiles it — importing numba, with its
on-disk cache — only for the first large call.  Both paths run the same
code, so results are identical; the tests exercise both (small random graphs
take the Python path, the paper's workloads the compiled one).

Examples
--------
>>> @kernel
... def total(values):
...     s = 0.0
...     for v in values:
...         s += v
...     return s
>>> total([1.0, 2.0], work=2)   # small: plain Python, numba not loaded
3.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SMALL_WORK", "Kernel", "kernel"]

#: Inner iterations below which plain Python beats loading the compiled kernel (~0.5 s).
SMALL_WORK = 30_000


class Kernel:
    """``fn`` as plain Python for small calls, as a cached numba kernel for large ones."""

    def __init__(self, fn: Callable[..., Any]):
        self.python = fn
        self._compiled: Callable[..., Any] | None = None
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    @property
    def compiled(self) -> Callable[..., Any]:
        """The numba kernel (compiled, or loaded from numba's disk cache, on first use)."""
        if self._compiled is None:
            import numba

            self._compiled = numba.njit(cache=True, nogil=True)(self.python)
        return self._compiled

    def __call__(self, *args: Any, work: int) -> Any:
        return (self.compiled if work >= SMALL_WORK else self.python)(*args)


def kernel(fn: Callable[..., Any]) -> Kernel:
    """Decorate a numba-compatible function as a :class:`Kernel`."""
    return Kernel(fn)
