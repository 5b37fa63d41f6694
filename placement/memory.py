"""Keeping a solver within a memory budget.

Problem (issue 12): the exact DP's tables grow with the number of ideals,
which can explode on wide graphs.  Linux overcommits memory, so a too-large
numpy allocation is not refused: the process grows until the kernel's
out-of-memory killer ends it (and possibly other work on the machine); under
an address-space limit (``ulimit -v``) the allocation fails with a
``MemoryError`` half-way through.

Guarantee: a solver estimates the bytes of every allocation that grows with
its input and calls :meth:`MemoryBudget.reserve` first; that raises
:class:`~pipesim.errors.ResourceLimitError` (one line: what needed how much,
and what was left) when the process would outgrow its budget.  The budget is

* the growth allowed beyond the process's resident size when the budget was
  made: ``memory_budget`` bytes if given, otherwise
  :data:`DEFAULT_FRACTION` of the memory the kernel reports available
  (``MemAvailable`` in ``/proc/meminfo``);
* and always, when an address-space limit is set (``RLIMIT_AS``), at most
  :data:`ADDRESS_SPACE_FRACTION` of that limit for the process's whole
  virtual size, so that allocations that are not estimated (temporaries)
  still fit.

Where ``/proc`` does not exist the checks that need it are skipped.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from pipesim.errors import ResourceLimitError
from pipesim.hardware.units import format_bytes

__all__ = ["ADDRESS_SPACE_FRACTION", "DEFAULT_FRACTION", "MemoryBudget"]

#: Share of the available memory a solver may take by default (the rest: other work, temporaries).
DEFAULT_FRACTION = 0.6
#: Share of an address-space limit (``ulimit -v``) the process's virtual size may reach.
ADDRESS_SPACE_FRACTION = 0.85


def _usage() -> tuple[int, int] | None:
    """(resident, virtual) bytes of this process, from ``/proc/self/statm``."""
    try:
        size, resident = Path("/proc/self/statm").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    return int(resident) * page, int(size) * page


def _available() -> int | None:
    """Bytes the kernel can give without swapping (``MemAvailable``), if known."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _address_space_limit() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


class MemoryBudget:
    """How much more memory a solve may take; see the module docstring.

    Parameters
    ----------
    budget : float, optional
        Bytes the process may grow by from now on.  Default:
        :data:`DEFAULT_FRACTION` of the memory available now (no limit if that
        is unknown).  The address-space limit (``ulimit -v``) applies either way.

    Examples
    --------
    >>> budget = MemoryBudget(2**30)
    >>> budget.reserve(1024, "a small table")
    >>> budget.reserve(2**40, "a huge table")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipesim.errors.ResourceLimitError: a huge table: about 1 TiB needed, only ... left within ...
    """

    def __init__(self, budget: float | None = None):
        if budget is not None and not budget > 0:
            raise ValueError(f"a memory budget must be a positive number of bytes, got {budget!r}")
        usage = _usage()
        self.baseline = usage[0] if usage else 0
        available = _available()
        if budget is None and available is not None:
            budget = DEFAULT_FRACTION * available
        self.limit = budget
        limit = _address_space_limit()
        self.address_space = None if limit is None else ADDRESS_SPACE_FRACTION * limit

    def left(self) -> float:
        """Bytes that may still be allocated (``inf`` without any limit)."""
        usage = _usage()
        left = float("inf")
        if usage is not None:
            resident, virtual = usage
            if self.limit is not None:
                left = self.limit - max(0, resident - self.baseline)
            if self.address_space is not None:
                left = min(left, self.address_space - virtual)
        elif self.limit is not None:
            left = self.limit
        return left

    def reserve(self, nbytes: float, what: str) -> None:
        """Raise :class:`~pipesim.errors.ResourceLimitError` unless ``nbytes`` more fit in the budget."""
        left = self.left()
        if nbytes > left:
            cap = f"the memory budget of {format_bytes(self.limit)}" if self.limit is not None else "the budget"
            if self.address_space is not None and (self.limit is None or left < self.limit):
                cap += f" and {ADDRESS_SPACE_FRACTION:.0%} of the address-space limit (ulimit -v)"
            raise ResourceLimitError(
                f"{what}: about {format_bytes(nbytes)} needed, only {format_bytes(max(0.0, left))} left within {cap}"
            )
