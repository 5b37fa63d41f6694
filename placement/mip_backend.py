"""Running a PuLP model on an open-source MILP solver and reading back what it proved.

The paper solved its integer programs with Gurobi; we build the same models
with PuLP and hand them to CBC (bundled with PuLP, run as a subprocess) or
HiGHS (in-process through ``highspy``).  :func:`run_model` hides the
differences and guarantees, for both backends:

* a time limit (wall clock) and a relative gap;
* a warm start from the variables' initial values (``var.setInitialValue``):
  CBC reads it as a MIP start file, HiGHS as a starting solution;
* the best proven bound as well as the incumbent (CBC prints it in its log,
  HiGHS reports ``mip_dual_bound``);
* a stop request (Ctrl-C inside :func:`pipesim.placement.interrupt.interruptible`,
  or :func:`~pipesim.placement.interrupt.request_stop`) and the time limit end
  the search within about :data:`GRACE` seconds with the incumbent, even where
  the solver itself checks them rarely (HiGHS solving its root LP, CBC):
  HiGHS runs in a thread that is cancelled and, if it does not stop in time,
  left to stop by itself in the background while its last improving solution
  (kept from its callback) is returned; CBC is sent SIGINT and, if it does not
  stop in time, killed (its incumbent is then lost; callers keep their warm
  start).  A stop while the model is handed to the solver (pure Python,
  nothing to poll) returns at once with no solution when the caller gave a
  warm start: that start is the answer so far.  Outside ``interruptible``
  Ctrl-C raises :class:`KeyboardInterrupt` after cancelling the solver.  No
  signal handler is installed here;
* with ``progress`` the solver's log is streamed to stderr as it is written;
  nothing a solver prints reaches stdout, which may carry JSON.

The caller reads the variable values (``var.value()``) afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import re
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pulp

from pipesim.errors import InputError
from pipesim.placement.interrupt import answering, descendants, stop_raises, stop_requested, temporary_folder

__all__ = ["DEFAULT_GAP", "DEFAULT_SOLVER", "SOLVERS", "MipOutcome", "run_model", "stop_message"]

#: The backends, fastest first (benchmarks/milp.py measures them; see README).
SOLVERS = ("highs", "cbc")
DEFAULT_SOLVER = SOLVERS[0]
#: Relative gap at which the search stops by default (HiGHS's own default, 1e-4, is too loose).
DEFAULT_GAP = 1e-9

NO_SOLUTION = "no_solution"


@dataclass
class MipOutcome:
    """What a solver run proved.

    ``status`` is ``optimal`` (within the gap), ``time_limit`` (stopped early:
    by the limit or by Ctrl-C), ``infeasible`` or ``no_solution`` (stopped
    before any incumbent).  ``objective`` is the incumbent's objective (as the
    solver computed it), ``bound`` the best proven lower bound (minimisation).
    """

    solver: str
    status: str
    objective: float | None
    bound: float | None
    seconds: float
    interrupted: bool = False


def stop_message(outcome: MipOutcome, found: bool, proven: bool, time_limit: float | None) -> str:
    """What to tell the user about how the search ended ("" when it proved optimality)."""
    if not found:
        return "interrupted before any split was found" if outcome.interrupted else "stopped before the solver found any split"
    if outcome.interrupted:
        return "interrupted: best split found so far"
    if not proven:
        return f"time limit of {time_limit} s reached: best split found so far"
    return ""


#: Seconds a solver has to stop by itself after a stop request or its time limit.
GRACE = 1.0


def _should_stop(deadline: float | None) -> bool:
    return stop_requested() or (deadline is not None and time.perf_counter() >= deadline)


class _StopCbc(threading.Thread):
    """Stops the CBC child on a stop request or at the time limit: SIGINT, then SIGKILL within GRACE.

    It watches until the solve returns, not only until it first acts: PuLP
    writes the model file before it starts CBC (seconds for a large model),
    so a stop requested then finds no child yet, and a CBC started later
    would otherwise run its whole search unwatched (issue 18 item 1: the
    process still running 60 s after Ctrl-C).  A CBC that appears after the
    stop is killed at once.
    """

    def __init__(self, deadline: float | None):
        super().__init__(daemon=True)
        self.deadline = deadline
        self.done = threading.Event()
        self.interrupted = False
        self.killed = False
        self.writing: threading.Event | None = None  # see stop_raises in _run_cbc

    def run(self) -> None:
        while not self.done.wait(0.1):
            if _should_stop(self.deadline):
                break
            if self.writing is not None and self.writing.is_set() and descendants():
                self.writing.clear()  # CBC runs: a Ctrl-C is a request again, this thread stops CBC
        else:
            return
        self.interrupted = stop_requested()
        # CBC checks its own time limit: give it a moment first.  A stop request is told at once (the
        # command line's Ctrl-C rule leaves about a second for the answer so far to be printed).
        if not self.interrupted and self.done.wait(GRACE / 2):
            return
        stopped = time.perf_counter()
        told: set[int] = set()
        while True:
            late = time.perf_counter() - stopped >= GRACE / 2
            for pid in descendants():
                if late:  # past the grace: kill whatever runs, also a CBC started after the stop
                    self.killed = True
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                elif pid not in told:
                    told.add(pid)
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGINT)
            if self.done.wait(0.05):
                return


class _LogTail(threading.Thread):
    """Copies new lines of a solver's log file to stderr until stopped."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.done = threading.Event()

    def run(self) -> None:
        position = 0
        while True:
            finished = self.done.wait(0.2)
            if self.path.exists():
                with self.path.open() as f:
                    f.seek(position)
                    chunk = f.read()
                    position = f.tell()
                if chunk:
                    sys.stderr.write(chunk)
                    sys.stderr.flush()
            if finished:
                return


def _parse_cbc_bound(log: str) -> float | None:
    """CBC's final "Lower bound:" line, rounded down to the digits it printed."""
    match = re.search(r"^Lower bound:\s+(\S+)", log, re.MULTILINE)
    if not match:
        return None
    text = match.group(1)
    try:
        value = float(text)
    except ValueError:
        return None
    # CBC prints few digits: subtract half a unit of the last printed digit so the bound stays valid.
    mantissa = text.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(text.lower().split("e")[1]) if "e" in text.lower() else 0
    return value - 0.5 * 10.0 ** (exponent - decimals)


def _run_cbc(problem: pulp.LpProblem, time_limit, gap, warm_start, threads, log_path: Path, deadline) -> MipOutcome:
    options = dict(msg=False, gapRel=gap, warmStart=warm_start, threads=threads, logPath=str(log_path))
    if time_limit is not None:
        options.update(timeLimit=time_limit, timeMode="elapsed")
    with warnings.catch_warnings():  # PuLP 3 deprecates its bundled CBC, which is the one we want
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(**options)
    # PuLP's model and start files beside our log, in the run's own temporary folder: a CBC killed
    # at the deadline must not leave them in /tmp
    solver.tmpDir = str(log_path.parent)
    stopper = _StopCbc(deadline)
    start = time.perf_counter()
    try:
        # PuLP writes the model file before CBC starts (seconds, pure Python, nothing to poll): a Ctrl-C
        # then raises at once (the IP keeps its start) rather than wait for the write to end
        with stop_raises() as writing:
            stopper.writing = writing
            stopper.start()
            problem.solve(solver)
    except pulp.PulpSolverError:
        # killed by the stopper, or stopped by a terminal's Ctrl-C (which reaches CBC too: it then exits
        # with an error status and PuLP reads nothing): no solution from CBC, the caller keeps its start
        if not (stopper.killed or stopper.interrupted or stop_requested()):
            raise
        stopper.killed = True
    except KeyboardInterrupt:
        for pid in descendants():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        raise
    finally:
        stopper.done.set()
        if stopper.ident is not None:
            stopper.join()
    seconds = time.perf_counter() - start
    if stopper.killed:
        return MipOutcome("cbc", NO_SOLUTION, None, None, seconds, stopper.interrupted)
    log = log_path.read_text() if log_path.exists() else ""
    stopped = re.search(r"^Result - (.*)$", log, re.MULTILINE)
    reason = stopped.group(1).lower() if stopped else ""
    interrupted = stopper.interrupted or stop_requested() or "ctrl-c" in reason
    if problem.sol_status == pulp.LpSolutionInfeasible or "infeasible" in reason:
        return MipOutcome("cbc", "infeasible", None, None, seconds, interrupted)
    # CBC sometimes loses its incumbent in post-processing and then writes the LP values with
    # "Objective value: 1e+50"; that file is no solution.
    final = re.search(r"^Objective value:\s+(\S+)", log, re.MULTILINE)
    lost = final is not None and float(final.group(1)) >= 1e40
    if lost or problem.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return MipOutcome("cbc", NO_SOLUTION, None, _parse_cbc_bound(log), seconds, interrupted)
    objective = pulp.value(problem.objective)
    optimal = reason.startswith("optimal") and not interrupted
    bound = _parse_cbc_bound(log)
    if optimal:
        bound = objective * (1 - gap) if bound is None else max(bound, objective * (1 - gap))
    return MipOutcome("cbc", "optimal" if optimal else "time_limit", objective, bound, seconds, interrupted)


@contextlib.contextmanager
def _stdout_dropped():
    """Drop C-level writes to stdout: HiGHS prints its banner there ("Running HiGHS … Copyright …").

    Not stdout (it would corrupt ``--json``) and not stderr (noise on every solve): the solver's
    log goes to its log file, which ``progress`` streams to stderr (:class:`_LogTail`).
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real file descriptors (embedded interpreter): leave stdout alone
        yield
        return
    # Everything after the dup2 is inside the try: a KeyboardInterrupt (the command line's escalation) can
    # land after any call, and one landing between the dup2 and the try would leave stdout on /dev/null
    # for good: the answer so far, printed next, would be lost.
    try:
        sink = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(sink, 1)
        finally:
            os.close(sink)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_abandoned: list[threading.Thread] = []


def _abandon(thread: threading.Thread) -> None:
    """Let ``thread`` (a HiGHS solve) finish by itself; the interpreter's exit waits for it.

    Exiting under a running HiGHS solve ends the process with C++'s
    ``std::terminate`` (SIGABRT, "terminate called without an active
    exception"): seen at the end of a program whose solve was interrupted.
    The command line does not wait: once its answer is out it ends with
    ``os._exit`` while :func:`abandoned_solver_running`.
    """
    if not _abandoned:
        atexit.register(_wait_for_abandoned)
    _abandoned.append(thread)


def _wait_for_abandoned() -> None:
    for thread in _abandoned:
        thread.join()


def abandoned_solver_running() -> bool:
    """True while a HiGHS solve that was given up on (see :func:`run_model`) still runs in its thread."""
    return any(thread.is_alive() for thread in _abandoned)


class _HighsWithStart(pulp.HiGHS):
    """PuLP's HiGHS API plus a warm start and a solve that stops on time (PuLP's offers neither).

    The improving solutions HiGHS reports through its callback are kept, so
    that a solve abandoned after :data:`GRACE` (see the module docstring)
    still returns its incumbent.
    """

    def __init__(self, warm_start: bool, deadline: float | None, **options):
        super().__init__(**options)
        self.warm_start = warm_start
        self.deadline = deadline
        self.incumbent = None      # column values of the last improving solution
        self.dual_bound = None     # the last finite MIP dual bound reported
        self.interrupted = False
        self.abandoned = False

    def _improving(self, event) -> None:
        self.incumbent = [float(x) for x in event.data_out.mip_solution]
        self._bound(event)

    def _bound(self, event) -> None:
        bound = event.data_out.mip_dual_bound
        if math.isfinite(bound):
            self.dual_bound = bound

    def callSolver(self, lp):
        import highspy

        h = lp.solverModel
        if self.warm_start:
            start = highspy.HighsSolution()
            start.col_value = [v.varValue if v.varValue is not None else 0.0 for v in lp.variables()]
            start.value_valid = True
            h.setSolution(start)
        h.HandleUserInterrupt = True
        h.cbMipImprovingSolution += self._improving
        h.cbMipInterrupt += self._bound
        # Our own thread rather than highspy's startSolve: highspy keeps its "solver running" lock
        # on the class, so an abandoned run would block every later HiGHS solve in the process.
        finished = threading.Event()

        def run() -> None:
            try:
                h.run()
            finally:
                finished.set()

        thread = threading.Thread(target=run, name="highs", daemon=True)
        thread.start()
        cancelled = None
        try:
            while not finished.wait(0.1):
                if cancelled is None and _should_stop(self.deadline):
                    self.interrupted = stop_requested()
                    h.cancelSolve()
                    cancelled = time.perf_counter()
                elif cancelled is not None and time.perf_counter() - cancelled > GRACE:
                    # HiGHS checks for cancellation only between LP solves (not during a long root
                    # LP): leave it to stop by itself in its daemon thread and answer now.
                    self.abandoned = True
                    _abandon(thread)
                    return
        except BaseException:
            h.cancelSolve()
            if thread.is_alive():
                _abandon(thread)
            raise

    def read_incumbent(self, lp) -> tuple[int, int]:
        """PuLP's status pair after an abandoned run, the variables set from the last improving solution."""
        if self.incumbent is None:
            return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound
        for var in lp.variables():
            var.varValue = self.incumbent[var.index]
        return pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible

    def actualSolve(self, lp):
        # PuLP's HiGHS.actualSolve, except that an abandoned run is not read back from HiGHS
        # (still running in its thread) but from the last improving solution.
        # Building HiGHS's model is seconds of pure Python and one C call with nothing to poll: with a
        # start to give back, a Ctrl-C meanwhile raises at once (run_model returns the start) rather
        # than wait for the build, then for the cancelled solve (seen: the answer missed the deadline).
        with stop_raises() if self.warm_start else contextlib.nullcontext():
            self.createAndConfigureSolver(lp)
            self.buildSolverModel(lp)
        self.callSolver(lp)
        status, solution = self.findSolutionValues(lp) if not self.abandoned else self.read_incumbent(lp)
        for var in lp.variables():
            var.modified = False
        for constraint in lp._constraints.values():
            constraint.modifier = False
        lp.assignStatus(status, solution)
        return status


def _run_highs(problem: pulp.LpProblem, time_limit, gap, warm_start, threads, log_path: Path, deadline) -> MipOutcome:
    import highspy

    options = dict(msg=True, gapRel=gap, threads=threads, log_file=str(log_path), log_to_console=False)
    if time_limit is not None:
        options["timeLimit"] = time_limit
    solver = _HighsWithStart(warm_start, deadline, **options)
    start = time.perf_counter()
    try:
        with _stdout_dropped():
            problem.solve(solver)
    except (KeyboardInterrupt, TypeError):
        # pybind11 turns a KeyboardInterrupt raised while it converts highspy's arguments (a Ctrl-C during
        # the model's hand-over) into "TypeError: addRow(): incompatible function arguments": seen.  After
        # a stop request either is the interrupt; the last improving solution, if any, is the answer.
        if not stop_requested():
            raise
        if solver.incumbent is None:
            raise KeyboardInterrupt from None
        solver.abandoned = solver.interrupted = True
        problem.assignStatus(*solver.read_incumbent(problem))
    seconds = time.perf_counter() - start
    interrupted = solver.interrupted or stop_requested()
    if solver.abandoned:
        if solver.incumbent is None:
            return MipOutcome("highs", NO_SOLUTION, None, solver.dual_bound, seconds, interrupted)
        return MipOutcome("highs", "time_limit", pulp.value(problem.objective), solver.dual_bound, seconds, interrupted)
    h = problem.solverModel
    status = h.getModelStatus()
    info = h.getInfo()
    if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return MipOutcome("highs", "infeasible", None, None, seconds, interrupted)
    bound = info.mip_dual_bound if math.isfinite(info.mip_dual_bound) else None
    if info.primal_solution_status != 2:  # 2 = kSolutionStatusFeasible
        return MipOutcome("highs", NO_SOLUTION, None, bound, seconds, interrupted)
    objective = info.objective_function_value
    if warm_start and not math.isclose(objective, pulp.value(problem.objective), rel_tol=1e-6, abs_tol=1e-9):
        # HiGHS 1.16 can drop the objective offset of a presolved model when given a MIP start
        # ("feasible in the reduced space: objective value is 0"), so its objective and bound are
        # off; the solution values are right, but we cannot trust the bound: solve again cold
        # (unless told to stop: then the values stand, without a bound).
        if interrupted or _should_stop(deadline):
            return MipOutcome("highs", "time_limit", pulp.value(problem.objective), None, seconds, interrupted)
        spent = time.perf_counter() - start
        rest = None if time_limit is None else max(0.0, time_limit - spent)
        again = _run_highs(problem, rest, gap, False, threads, log_path, deadline)
        again.seconds += spent
        return again
    optimal = status == highspy.HighsModelStatus.kOptimal and not interrupted
    if optimal and bound is None:
        bound = objective
    return MipOutcome("highs", "optimal" if optimal else "time_limit", objective, bound, seconds, interrupted)


def run_model(
    problem: pulp.LpProblem,
    *,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = None,
    gap: float | None = None,
    warm_start: bool = False,
    progress: bool = False,
    threads: int = 1,
) -> MipOutcome:
    """Solve ``problem`` (a minimisation) with ``solver``; see the module docstring."""
    began = time.perf_counter()
    deadline = None if time_limit is None else began + time_limit
    if solver not in SOLVERS:
        raise InputError(None, "solver", f"unknown MILP solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    gap = DEFAULT_GAP if gap is None else gap
    run = _run_highs if solver == "highs" else _run_cbc
    # removed on the way out, and by the command line's Ctrl-C rule if it has to end the process
    with temporary_folder("pipesim-mip-") as tmp:
        log_path = tmp / f"{solver}.log"
        tail = _LogTail(log_path) if progress else None
        if tail is not None:
            tail.start()
        try:
            outcome = run(problem, time_limit, gap, warm_start, threads, log_path, deadline)
        except KeyboardInterrupt:
            # a Ctrl-C while the model was handed over (stop_raises), or the command line's escalation
            # while the solver stopped: the caller's start is the answer so far
            if not (warm_start and stop_requested()):
                raise
            outcome = MipOutcome(solver, NO_SOLUTION, None, None, time.perf_counter() - began, interrupted=True)
        finally:
            if tail is not None:
                tail.done.set()
                tail.join()
    if outcome.interrupted:
        answering()  # the caller reports the answer so far: the command line's escalation must not cut it
    return outcome
