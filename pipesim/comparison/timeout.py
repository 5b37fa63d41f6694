"""A wall-clock limit on one call, for the comparison table's ``method_timeout``.

:func:`time_limited` is the one place in the library that installs a signal
handler: a context manager, used only when a caller asks for a method timeout.
It arms ``SIGALRM`` for the duration of the block and restores the previous
handler and timer on exit, so the caller's own handlers are untouched.  It is
a no-op off the main thread or on platforms without ``setitimer`` (the call
then runs to completion).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pipesim.errors import PipesimError

__all__ = ["MethodTimeout", "time_limited"]


class MethodTimeout(PipesimError):
    """A method ran past the comparison's ``method_timeout`` (its row says so; the table goes on)."""


@contextmanager
def time_limited(seconds: float | None) -> Iterator[None]:
    """Raise :class:`MethodTimeout` inside the block once ``seconds`` have passed (``None``: no limit).

    Examples
    --------
    >>> import time
    >>> with time_limited(0.05):
    ...     time.sleep(1)
    Traceback (most recent call last):
    ...
    pipesim.comparison.timeout.MethodTimeout: no answer within 0.05 s (method timeout)
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds is None or not usable:
        yield
        return

    def expire(signum, frame):
        raise MethodTimeout(f"no answer within {seconds:g} s (method timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
