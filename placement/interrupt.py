"""Ctrl-C for long solves: an explicit context manager, never a hidden signal handler.

Problem (issue 12 item 5, issue 11 item 4): a long MILP solve should stop on
Ctrl-C and return the best split found so far, but library code must not
install signal handlers behind its caller's back.

Guarantee: inside ``with interruptible():`` (in the main thread) the first
SIGINT only *requests* a stop: solvers poll :func:`stop_requested` and return
their best answer so far within about a second (status :data:`INTERRUPTED`,
or a message that no answer was found yet); a second SIGINT raises
:class:`KeyboardInterrupt` as usual.  Outside the block nothing is installed:
Ctrl-C raises :class:`KeyboardInterrupt`, and a solver that sees it cancels
its own work before letting it through.  The command line wraps each solve in
this block; a program embedding pipesim may do the same, or call
:func:`request_stop` from another thread (a GUI's stop button).

Examples
--------
>>> from pipesim.placement.interrupt import interruptible, stop_requested
>>> with interruptible():
...     stop_requested()      # no Ctrl-C yet
False
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from pipesim.placement.result import INTERRUPTED  # the status lives with the others

__all__ = ["INTERRUPTED", "interruptible", "request_stop", "stop_requested"]


_requested = threading.Event()
_lock = threading.Lock()
_depth = 0          # open interruptible() blocks
_handling = False   # one of them (in the main thread) holds the SIGINT handler


def stop_requested() -> bool:
    """True once Ctrl-C or :func:`request_stop` asked solvers to stop (only inside :func:`interruptible`)."""
    return _depth > 0 and _requested.is_set()


def request_stop() -> None:
    """Ask the solve running inside :func:`interruptible` to stop and return its best answer.

    For another thread (a GUI's stop button); it acts as a first Ctrl-C does.
    Outside any block it does nothing.
    """
    _requested.set()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, the first SIGINT asks solvers to stop; the second raises KeyboardInterrupt.

    Nested blocks share the outer handler.  Signals reach only the main
    thread, so elsewhere the block installs no handler (:func:`request_stop`
    still works).  On leaving the outermost block the previous handler is
    restored and the request is cleared.

    Returns
    -------
    context manager
        Yields nothing; solvers inside poll :func:`stop_requested`.
    """
    global _depth, _handling
    with _lock:
        if _depth == 0:
            _requested.clear()
        _depth += 1
        install = not _handling and threading.current_thread() is threading.main_thread()
        if install:
            _handling = True
    previous = None
    if install:
        count = 0

        def handler(signum, frame) -> None:
            nonlocal count
            count += 1
            if count > 1:
                raise KeyboardInterrupt
            _requested.set()

        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGINT, previous)
        with _lock:
            _depth -= 1
            if install:
                _handling = False
            if _depth == 0:
                _requested.clear()
