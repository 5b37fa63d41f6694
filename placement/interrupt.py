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

The command line's one rule (issue 18 item 1) is :func:`command_interrupts`:
around a whole command, the first Ctrl-C asks the solvers inside
``interruptible()`` to stop (elsewhere it raises :class:`KeyboardInterrupt` at
once); if the command has not finished :data:`ESCALATE` seconds later, a
:class:`KeyboardInterrupt` is raised in the main thread; if it still has not
finished at :data:`DEADLINE` (the main thread is inside compiled code that
never returns to Python, a numba kernel or a solver's C call), every child
process is killed, every registered temporary folder is removed
(:func:`temporary_folder`) and the process exits with code 130.  So a
command stops within :data:`DEADLINE` seconds of Ctrl-C, whatever it runs,
and nothing it started outlives it.

Examples
--------
>>> from pipesim.placement.interrupt import interruptible, stop_requested
>>> with interruptible():
...     stop_requested()      # no Ctrl-C yet
False
"""

from __future__ import annotations

import _thread
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from pipesim.placement.result import INTERRUPTED  # the status lives with the others

__all__ = [
    "DEADLINE",
    "ESCALATE",
    "INTERRUPTED",
    "EXIT_INTERRUPTED",
    "TRACE_ENV",
    "CommandInterrupts",
    "answering",
    "children_ignore_ctrl_c",
    "command_interrupts",
    "descendants",
    "interruptible",
    "kill_descendants",
    "raise_if_stopped",
    "request_stop",
    "stop_requested",
    "temporary_folder",
    "trace",
]

#: Seconds after the first Ctrl-C at which a command still running gets a KeyboardInterrupt: time for the
#: solvers' own stop (mip_backend.GRACE = 1 s) and for printing their best answer.
ESCALATE = 1.25
#: Seconds after the first Ctrl-C at which a command still running is ended (children killed, exit 130).
DEADLINE = 1.75
#: Environment variable naming a file to which a command ended by Ctrl-C appends where it was when it could not
#: give its answer: the stacks of its threads when :data:`DEADLINE` forced its end, or an exception it swallowed
#: as the interrupt (see :func:`trace`).  For diagnosing a lost answer (the Ctrl-C tests set it); unset, nothing
#: is written.
TRACE_ENV = "PIPESIM_INTERRUPT_TRACE"

#: The exit code of an interrupted command (128 + SIGINT, as a shell reports a process ended by Ctrl-C).
EXIT_INTERRUPTED = 130


_requested = threading.Event()
_lock = threading.Lock()
_depth = 0          # open interruptible() blocks
_handling = False   # one of them (in the main thread) holds the SIGINT handler


_answering = threading.Event()  # set: a solver returned after a stop request; its answer is being reported
_raise_on_request = threading.Event()  # set: a stop request also raises KeyboardInterrupt (see stop_raises)


@contextlib.contextmanager
def stop_raises() -> Iterator[threading.Event]:
    """Inside, a first Ctrl-C raises KeyboardInterrupt at once instead of only requesting a stop.

    For work that cannot poll :func:`stop_requested` (PuLP writing CBC's
    model file, seconds of pure Python for a large model); the solver catches
    the exception and returns its answer so far.  The yielded event may be
    cleared from another thread when polling becomes possible again (CBC has
    started and is stopped by its own watcher).  A stop requested just before
    the block (a Ctrl-C between the last poll and the block) raises on entry:
    nothing inside would see it until the escalation (seen: a Ctrl-C as the
    IP's temporary folder appeared left the answer so far unprinted).
    """
    if stop_requested():
        raise KeyboardInterrupt
    _raise_on_request.set()
    try:
        yield _raise_on_request
    finally:
        _raise_on_request.clear()


def stop_requested() -> bool:
    """True once Ctrl-C or :func:`request_stop` asked solvers to stop (only inside :func:`interruptible`)."""
    return _depth > 0 and _requested.is_set()


def raise_if_stopped() -> None:
    """For solvers with no answer before they end (the DP): a stop request raises KeyboardInterrupt.

    Called between chunks of compiled work, so Ctrl-C stops such a solver
    within one chunk instead of being swallowed until it ends.
    """
    if stop_requested():
        raise KeyboardInterrupt


def answering() -> None:
    """A solver has stopped on request: its caller now reports the answer so far.

    From here the command line's escalation (:class:`CommandInterrupts`)
    raises no :class:`KeyboardInterrupt`, which would land in that report
    and lose the answer (seen: a Ctrl-C during the IP's model hand-over, the
    escalation then cut the split's evaluation).  A second Ctrl-C still
    raises, and :data:`DEADLINE` still holds.
    """
    if stop_requested():
        _answering.set()


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
        # (under command_interrupts, _handling is already set: its handler serves this block too)
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
            _requested.set()
            if count > 1 or _raise_on_request.is_set():
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGINT, previous)
        with _lock:
            if _requested.is_set():
                _answering.set()  # the solver inside returned its answer so far: no escalation under its report
            _depth -= 1
            if install:
                _handling = False
            if _depth == 0:
                _requested.clear()


# --- what must not outlive the process -------------------------------------------------------------

_folders: set[str] = set()   # temporary folders to remove if the process is ended hard


@contextlib.contextmanager
def temporary_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed on leaving the block and also if :func:`command_interrupts` ends the process.

    Parameters
    ----------
    prefix : str
        The folder's name starts with it (in :func:`tempfile.gettempdir`, so ``TMPDIR`` moves it).

    Examples
    --------
    >>> with temporary_folder("pipesim-doc-") as folder:
    ...     folder.is_dir()
    True
    >>> folder.exists()
    False
    """
    path = tempfile.mkdtemp(prefix=prefix)
    _folders.add(path)
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)
        _folders.discard(path)


def descendants(pid: int | None = None) -> list[int]:
    """Process ids of the children of ``pid`` (default: this process), their children, and so on.

    Read from Linux's ``/proc``; empty where there is none.  Deepest first, so
    that killing in this order leaves no orphan to be re-parented.
    """
    root = os.getpid() if pid is None else pid
    parent_of: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent_of[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    children: dict[int, list[int]] = {}
    for child, parent in parent_of.items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    frontier = [root]
    while frontier:
        frontier = [c for p in frontier for c in children.get(p, [])]
        found.extend(frontier)
    return found[::-1]


@contextlib.contextmanager
def children_ignore_ctrl_c() -> Iterator[None]:
    """Processes started inside the block never see Ctrl-C; their parent stops them.

    A terminal's Ctrl-C goes to the whole process group: a worker process
    still importing would print its own ``KeyboardInterrupt`` traceback.
    SIGINT is blocked while the children start (the mask is inherited by the
    child and kept across ``exec``).  The parent's clean-up (or
    :func:`command_interrupts`) ends the children.

    The parent's own handlers of SIGINT and SIGTERM are held back for the
    block too, and a signal that arrived meanwhile is handed to them when it
    ends: none is lost, and none raises halfway through starting a child.
    (Blocking the signal in the main thread is not enough: the kernel then
    delivers it to another thread, and Python runs its handler in the main
    thread all the same.  Seen: a Ctrl-C inside ``Process.start()`` left a
    child the parent never learnt of, which outlived it and printed a
    traceback.)
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    arrived: list[int] = []
    held = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, handler in held.items():
        if callable(handler):  # SIG_DFL / SIG_IGN act in C: nothing of Python's runs halfway
            signal.signal(sig, lambda signum, frame: arrived.append(signum))
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for sig, handler in held.items():
            if callable(handler):
                signal.signal(sig, handler)
        for signum in arrived:
            held[signum](signum, None)  # may raise KeyboardInterrupt: the block's work is complete


def kill_descendants(sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to every descendant of this process (see :func:`descendants`)."""
    for pid in descendants():
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def trace(what: str, exception: BaseException | None = None) -> None:
    """Append ``what`` and where this process is (the stacks of all its threads, or ``exception``'s traceback)
    to the file named by :data:`TRACE_ENV`, if set; never raises.

    >>> trace("nothing happens without the variable")
    """
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    with contextlib.suppress(Exception), open(path, "a") as out:
        out.write(f"--- pid {os.getpid()}: {what}\n")
        if exception is not None:
            import traceback
            traceback.print_exception(exception, file=out)
        else:
            import faulthandler
            out.flush()
            faulthandler.dump_traceback(out, all_threads=True)


# --- the command line's rule ---------------------------------------------------------------------------

class CommandInterrupts:
    """State of one :func:`command_interrupts` block: ``interrupted`` once Ctrl-C (or SIGTERM) arrived.

    Two parts see a signal.  Python's handler (:meth:`_handler`) runs in the
    main thread, but only between bytecodes: never while the main thread is
    inside compiled code (a numba kernel can run for tens of seconds).  So
    the C-level handler's wake-up byte (:func:`signal.set_wakeup_fd`) is also
    read by a watcher thread, which starts the clock of the escalation at the
    moment the signal arrives, whatever the main thread is doing.
    """

    def __init__(self, message: str, answers_so_far: bool = True):
        self.message = message
        self.answers_so_far = answers_so_far
        self.interrupted = False
        self.finished = threading.Event()
        self._signals = 0
        self._raised = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous_fd: int | None = None
        self._previous_unraisable = sys.unraisablehook
        self._watcher: threading.Thread | None = None

    def _start(self) -> None:
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        sys.unraisablehook = self._unraisable
        self._watcher = threading.Thread(target=self._watch, name="pipesim-interrupt", daemon=True)
        self._watcher.start()

    def _stop(self, restore: bool) -> None:
        if restore:
            signal.set_wakeup_fd(self._previous_fd if self._previous_fd is not None else -1)
            sys.unraisablehook = self._previous_unraisable
        with contextlib.suppress(OSError):
            os.write(self._write, b"\0")  # wakes the watcher if no signal came

    def finish(self) -> None:
        """The command has ended (its answer is out): later signals are only recorded, no escalation."""
        self.finished.set()

    def _handler(self, signum, frame) -> None:
        self.interrupted = True
        _requested.set()
        # Raise at most once, never after finish(): so the caller's one `except KeyboardInterrupt`
        # suffices and no second one escapes its clean-up.  (The watcher ends a process that hangs.)
        if self.finished.is_set() or self._raised:
            return
        self._signals += 1
        # A second signal, or a first one where no solver polls stop_requested() or the command has
        # no answer so far to give: stop now.
        if (self._signals > 1 or _depth == 0 or not self.answers_so_far or signum != signal.SIGINT
                or _raise_on_request.is_set()):
            self._raised = True
            raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        # The handler's KeyboardInterrupt can land inside a callback from C, which cannot propagate it: ctypes
        # prints "Exception ignored on calling ctypes callback function" and a traceback, and goes on (seen:
        # Ctrl-C while numba compiled, in llvmlite's object-cache callback).  It is the interrupt: silent, and
        # since it stopped nothing, the escalation may raise again.
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._raised = False
            return
        self._previous_unraisable(unraisable)

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data or self.finished.is_set() and not self.interrupted:
                return
            if signal.SIGINT in data or signal.SIGTERM in data:
                break
        self.interrupted = True
        _requested.set()
        started = time.monotonic()
        if not self.finished.wait(ESCALATE) and not self._raised and not _answering.is_set():
            # The command did not stop by itself: a KeyboardInterrupt in the main thread, through a
            # real signal so that a blocking call (waiting for a child) returns too (_thread.interrupt_main
            # would only be seen at the next bytecode) ...
            try:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            except (AttributeError, OSError):
                _thread.interrupt_main(signal.SIGINT)
        self.finished.wait(max(0.0, DEADLINE - (time.monotonic() - started)))
        # ... which it cannot see while it runs compiled code; and once the command has returned, only
        # printing and the interpreter's exit are left, which must not hang either (a pool joining its
        # workers): end the process, leaving nothing behind.
        if self.finished.is_set():
            time.sleep(max(0.0, DEADLINE + 1.0 - (time.monotonic() - started)))
        self.abort()

    def abort(self, message: bool = True) -> None:
        """End the process now: kill the children, remove the temporary folders, exit 130.

        Also the command line's normal end after Ctrl-C (``message=False``, it
        printed it): the interpreter's own exit would first garbage-collect
        everything a solver built (measured: 1-2 s after an interrupted DP on
        the busy 2-core machine), past the 2 s the rule allows.
        """
        if message:  # the watcher ends a command that did not end by itself: say where it was
            trace(f"forced end {DEADLINE} s after the signal")
        kill_descendants()
        for folder in list(_folders):
            shutil.rmtree(folder, ignore_errors=True)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        if message:
            with contextlib.suppress(OSError):
                os.write(2, (self.message + "\n").encode())
        os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def command_interrupts(message: str = "pipesim: interrupted", answers_so_far: bool = True
                       ) -> Iterator[CommandInterrupts]:
    """Around a whole command: Ctrl-C (SIGINT) and SIGTERM stop it within :data:`DEADLINE` seconds.

    With ``answers_so_far``, the first SIGINT sets :func:`stop_requested` for
    the solvers inside :func:`interruptible` (they return their best answer
    so far); anywhere else, or without ``answers_so_far`` (a command that
    has no partial answer to show), it raises :class:`KeyboardInterrupt`.  SIGTERM and a second SIGINT
    raise :class:`KeyboardInterrupt`, at most once per block and never after
    :meth:`CommandInterrupts.finish`.  The escalation (see the module
    docstring) makes sure the process ends by :data:`DEADLINE`, printing
    ``message`` and exiting :data:`EXIT_INTERRUPTED` if it has to end it
    itself.  The caller prints ``message`` and returns
    :data:`EXIT_INTERRUPTED` when the block ends with ``interrupted`` set or
    with a :class:`KeyboardInterrupt`.  Only in the main thread; elsewhere the
    block does nothing.

    Yields
    ------
    CommandInterrupts
        ``interrupted`` tells whether a signal arrived.
    """
    global _handling
    state = CommandInterrupts(message, answers_so_far)
    main = threading.current_thread() is threading.main_thread()
    with _lock:
        install = main and not _handling
        if install:
            _handling = True
            _requested.clear()
            _answering.clear()
    previous = {}
    if install:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, state._handler)
        state._start()
    try:
        yield state
    finally:
        state.finish()
        if install:
            # After a signal the handler stays (it only records now): a signal still pending must not
            # reach the previous handler and raise outside the caller's `except`; the process is ending.
            if not state.interrupted:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            state._stop(restore=not state.interrupted)
            with _lock:
                _handling = False
                if _depth == 0:
                    _requested.clear()
