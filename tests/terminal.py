"""Child processes started as a user's terminal starts them (for the Ctrl-C tests)."""

from __future__ import annotations

import signal


def as_from_a_terminal() -> None:
    """In the child before it runs (``preexec_fn``): SIGINT and SIGTERM as a terminal's shell leaves them.

    A test run started in the background by a non-interactive shell (``pytest &``) has SIGINT ignored, and
    its children inherit that: they would not be the processes a user's Ctrl-C reaches.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
