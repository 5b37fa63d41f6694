"""Ctrl-C and time limits on the IP (issue 12 item 5).

Ctrl-C inside ``interruptible()`` returns the best split so far with status
``interrupted``; the time limit holds although HiGHS checks it only between
LP solves (its root LP on the latency Inception-v3 graph takes about 20 s).
The bounds below are generous (the guarantee is GRACE = 1 s past the
request); they only separate "stops promptly" from "runs the root LP out".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pipesim.placement.interrupt import INTERRUPTED, interruptible, request_stop, stop_requested
from pipesim.placement.milp import solve_ip
from tests.pipesim.test_signals_pipes import _once_more
from tests.terminal import as_from_a_terminal

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pipesim.placement import read_paper_workload
    from pipesim.placement.interrupt import interruptible
    from pipesim.placement.milp import solve_ip
    workload = read_paper_workload(sys.argv[1])
    with interruptible():
        print("solving", flush=True)
        result = solve_ip(workload, solver=sys.argv[2])
    print(json.dumps({"status": result.status, "max_load": result.max_load, "message": result.message,
                      "done": time.time()}), flush=True)
    """
)


def test_first_sigint_is_a_request_second_is_keyboard_interrupt():
    before = signal.getsignal(signal.SIGINT)
    with interruptible():
        assert not stop_requested()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop_requested()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is before and not stop_requested()


def test_request_stop_does_nothing_outside_a_block():
    request_stop()
    assert not stop_requested()
    with interruptible():
        assert not stop_requested()  # a stale request does not stop the next solve


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_sigint_returns_the_best_split_within_seconds(shared_workloads, solver, tmp_path):
    path = shared_workloads / "latency" / "LayerGraphs" / "inceptionv3_inference.json"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), solver], preexec_fn=as_from_a_terminal,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.stdout.readline().strip() == "solving"
    # the solver's temporary folder marks the model handed to it (a blind sleep of 4 s could land while
    # the model was still being built on a busy machine: no split to return then)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith("pipesim-mip-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the solver never started"
        time.sleep(0.02)
    time.sleep(1.0)  # the solver is in its root LP
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    import json

    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == INTERRUPTED and result["max_load"] < float("inf")
    assert result["message"] == "interrupted: best split found so far"
    assert result["done"] - sent < 6, "Ctrl-C took more than a few seconds"  # before: about 20 s (the root LP)


@pytest.mark.slow
def test_time_limit_holds_during_a_long_root_lp(shared_workloads):
    from pipesim.placement import read_paper_workload

    workload = read_paper_workload(shared_workloads / "latency" / "LayerGraphs" / "inceptionv3_inference.json")
    started = time.perf_counter()
    result = solve_ip(workload, time_limit=2)
    assert time.perf_counter() - started < 8  # before: about 23 s
    assert result.status == "time_limit" and result.evaluation is not None


@pytest.mark.slow
def test_request_stop_from_another_thread(shared_workloads):
    from pipesim.placement import read_paper_workload

    workload = read_paper_workload(shared_workloads / "latency" / "LayerGraphs" / "inceptionv3_inference.json")
    timer = threading.Timer(3, request_stop)
    with interruptible():
        timer.start()
        started = time.perf_counter()
        result = solve_ip(workload)
    assert time.perf_counter() - started < 9 and result.status == INTERRUPTED and result.evaluation is not None


@pytest.mark.slow
@_once_more  # a first failure is a warning in the run's summary (seen once in CI on the idle machine: no answer)
def test_ctrl_c_on_the_command_line_returns_the_best_split(shared_workloads, tmp_path):
    """Seen: SIGINT 15 s into `pipesim solve … --method ip` gave exit 130 and no split.

    Issue 18 item 1 made the rule one for every command: the best split so far
    is printed and the exit code is 130 (it was 0 here).
    """
    import json
    import shutil
    import signal
    import subprocess
    import time

    workload = shared_workloads / "latency/LayerGraphs/inceptionv3_inference.json"
    command = [shutil.which("pipesim") or "pipesim", "solve", str(workload), "--method", "ip", "--json"]
    # the solver's temporary folder in a TMPDIR of its own marks the model handed to it (a blind
    # sleep of 4 s sometimes still hit the imports on the busy machine: no split then)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_from_a_terminal,
                               env={**os.environ, "TMPDIR": str(tmp_path)})
    deadline = time.monotonic() + 120
    while not any(p.name.startswith("pipesim-mip-") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, "the solver never started"
        time.sleep(0.02)
    time.sleep(0.5)  # the solver is searching
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    # seen in 3 of 100 runs before the fix: no answer printed (a Ctrl-C during the model's hand-over to HiGHS,
    # turned into a TypeError by highspy: test_an_interrupt_turned_into_a_type_error_by_highspy_is_the_interrupt)
    assert out.strip(), f"no answer printed (exit {process.returncode}); stderr: {err[-2000:]}"
    result = json.loads(out)
    assert process.returncode == 130 and result["status"] == "interrupted" and result["max_load"] is not None
    assert result["split"]["fpgas"]


def test_a_stop_requested_just_before_stop_raises_raises_on_entry():
    """Seen: Ctrl-C as the IP's temporary folder appeared, before PuLP's write began: nothing polled the request
    until the escalation, too late to print the answer so far on a busy machine."""
    from pipesim.placement.interrupt import stop_raises

    with interruptible():
        request_stop()
        with pytest.raises(KeyboardInterrupt):
            with stop_raises():
                pytest.fail("entered although a stop was requested")
    with interruptible():
        with stop_raises():  # no request: the block runs
            pass


HELD_BACK = textwrap.dedent(
    """
    import os, signal, threading, time
    from pipesim.placement.interrupt import children_ignore_ctrl_c, interruptible, stop_requested

    def ctrl_c_from_another_thread():
        # a thread started before the block (SIGINT is not blocked there) sends Ctrl-C to itself once told to:
        # its C handler has run when pthread_kill returns
        go, sent = threading.Event(), threading.Event()

        def send():
            go.wait(10)
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            sent.set()

        thread = threading.Thread(target=send)
        thread.start()
        return go, sent, thread

    with interruptible():
        go, sent, thread = ctrl_c_from_another_thread()
        with children_ignore_ctrl_c():
            go.set()
            sent.wait(10)
            time.sleep(0.05)  # Python's handler runs at the next bytecodes
            print("inside, requested:", stop_requested())
        thread.join()
        print("after, requested:", stop_requested())
    go, sent, thread = ctrl_c_from_another_thread()
    try:
        with children_ignore_ctrl_c():  # outside any block: Python's own handler raises, after the block
            go.set()
            sent.wait(10)
            time.sleep(0.05)
            print("inside, reached the end")
    except KeyboardInterrupt:
        print("after, KeyboardInterrupt")
    thread.join()
    """
)


def test_a_signal_while_children_start_is_handed_over_when_the_block_ends():
    """Seen: a Ctrl-C inside Process.start() left a child its parent never learnt of (it outlived the parent and
    printed a traceback): blocking SIGINT in the main thread is not enough, the kernel delivers the signal to
    another thread and Python runs its handler in the main thread all the same.  (In a process of its own: the
    test process's signal state is pytest's.)"""
    done = subprocess.run([sys.executable, "-c", HELD_BACK], capture_output=True, text=True, timeout=120,
                          preexec_fn=as_from_a_terminal)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["inside, requested: False", "after, requested: True",
                                        "inside, reached the end", "after, KeyboardInterrupt"], done.stdout


def test_ctrl_c_while_highs_receives_the_model_returns_the_start_at_once(monkeypatch):
    """Seen: Ctrl-C while PuLP built HiGHS's model (0.9 s of pure Python on Inception-v3) was only noticed
    when the solve began and then cancelled; on a busy machine the command line's deadline passed first
    and no answer was printed.  Now the hand-over raises at once and the start is the answer."""
    import pulp

    from pipesim.placement.examples import chain

    build = pulp.HiGHS.buildSolverModel

    def slow_build(self, lp):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the hand-over begins ...
        for _ in range(100):                 # ... which then takes 2 s more
            time.sleep(0.02)
        return build(self, lp)

    monkeypatch.setattr(pulp.HiGHS, "buildSolverModel", slow_build)
    workload = chain((2.0, 1.0, 3.0, 1.0), accelerators=2)
    with interruptible():
        started = time.perf_counter()
        result = solve_ip(workload, solver="highs")
        seconds = time.perf_counter() - started
    assert result.status == INTERRUPTED and result.evaluation is not None  # the start
    assert seconds < 1.0, f"the hand-over ran on for {seconds:.2f} s after Ctrl-C"


SLOW_REPORT = textwrap.dedent(
    """
    import os, signal, sys, time
    from pipesim.placement import mip_backend
    from pipesim.placement.examples import chain
    from pipesim.placement.interrupt import ESCALATE, command_interrupts, interruptible
    from pipesim.placement.milp import solve_ip

    solve = mip_backend._HighsWithStart.callSolver

    def ctrl_c_then_solve(self, lp):
        os.kill(os.getpid(), signal.SIGINT)
        return solve(self, lp)

    mip_backend._HighsWithStart.callSolver = ctrl_c_then_solve
    with command_interrupts() as signals:
        with interruptible():
            result = solve_ip(chain((2.0, 1.0, 3.0, 1.0), accelerators=2), solver="highs")
            time.sleep(ESCALATE + 0.25)  # the answer is being reported (evaluated, printed) on a busy machine
            print(result.status, flush=True)
        signals.finish()
    """
)


def test_the_escalation_does_not_cut_the_report_of_an_answer_so_far():
    """The command line's escalation (a KeyboardInterrupt ESCALATE s after Ctrl-C) is for solvers that do not
    stop; one that stopped is reporting its answer and must not lose it (seen: no split printed)."""
    out = subprocess.run([sys.executable, "-c", SLOW_REPORT], capture_output=True, text=True, timeout=120,
                         preexec_fn=as_from_a_terminal)
    assert out.stdout.strip() == INTERRUPTED, (out.returncode, out.stderr[-2000:])


def test_an_interrupt_turned_into_a_type_error_by_highspy_is_the_interrupt(monkeypatch):
    """Seen (3 in 100 command-line runs): a Ctrl-C during the hand-over of the model to HiGHS raised its
    KeyboardInterrupt inside pybind11's conversion of ``addRow``'s arguments, which reports any error there
    as "TypeError: addRow(): incompatible function arguments"; the command then printed no answer."""
    import pulp

    from pipesim.placement.examples import chain

    def interrupted_build(self, lp):
        if ctrl_c:
            request_stop()  # the Ctrl-C's request (its KeyboardInterrupt is what pybind11 turned into this error)
        # what pybind11 made of the KeyboardInterrupt (raised inside the conversion, not here)
        raise TypeError("addRow(): incompatible function arguments")

    monkeypatch.setattr(pulp.HiGHS, "buildSolverModel", interrupted_build)
    workload = chain((2.0, 1.0, 3.0, 1.0), accelerators=2)
    ctrl_c = True
    with interruptible():
        result = solve_ip(workload, solver="highs")
    assert result.status == INTERRUPTED and result.evaluation is not None  # the start
    ctrl_c = False
    with pytest.raises(TypeError):  # without a stop request the error is the error
        solve_ip(workload, solver="highs")


def test_stdout_comes_back_when_ctrl_c_lands_as_highs_banner_is_dropped(monkeypatch):
    """HiGHS's banner is dropped by pointing file descriptor 1 at /dev/null around the solve; a KeyboardInterrupt
    (the command line's escalation) landing just after that switch must not leave stdout there, or the answer
    so far printed next is lost (exit 130, "pipesim: interrupted" and no answer: seen once in CI)."""
    from pipesim.placement import mip_backend

    def identity(fd):
        status = os.fstat(fd)
        return status.st_dev, status.st_ino

    before = identity(1)
    real_close = os.close
    ctrl_c = []

    def close_then_interrupt(fd):  # the signal's KeyboardInterrupt is raised after a call returns
        real_close(fd)
        if not ctrl_c:
            ctrl_c.append(fd)
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "close", close_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with mip_backend._stdout_dropped():
            pass
    monkeypatch.setattr(os, "close", real_close)
    assert ctrl_c and identity(1) == before


STUBBORN = textwrap.dedent(
    """
    import sys, time
    from pipesim.placement.interrupt import command_interrupts
    def stubborn_work():  # ignores every KeyboardInterrupt, as compiled code does not see one
        told = False
        while True:
            try:
                if not told:
                    told = True
                    print("working", flush=True)
                time.sleep(0.05)
            except KeyboardInterrupt:
                pass
    with command_interrupts():
        stubborn_work()
    """
)


@pytest.mark.slow
def test_a_forced_end_traces_where_the_command_was(tmp_path):
    """A command that ignores Ctrl-C is ended at DEADLINE; with PIPESIM_INTERRUPT_TRACE set, the stacks of its
    threads at that moment are in the file (how a lost answer is diagnosed), and without it nothing is written."""
    from pipesim.placement.interrupt import DEADLINE, TRACE_ENV

    traced = tmp_path / "trace.txt"
    for env in ({TRACE_ENV: str(traced)}, {}):
        proc = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, **env}, preexec_fn=as_from_a_terminal)
        assert proc.stdout.readline().strip() == "working"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and err.strip() == "pipesim: interrupted", (proc.returncode, err)
        if env:
            text = traced.read_text()
            assert f"forced end {DEADLINE} s after the signal" in text and "stubborn_work" in text, text
            traced.unlink()
    assert not traced.exists()


IN_A_CALLBACK = textwrap.dedent(
    """
    import ctypes, os, signal, time
    from pipesim.placement.interrupt import command_interrupts
    def callback():  # Ctrl-C lands while C code calls back into Python (llvmlite does, while numba compiles)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
    called_from_c = ctypes.CFUNCTYPE(None)(callback)
    with command_interrupts(answers_so_far=False):
        try:
            called_from_c()
            time.sleep(10)  # the KeyboardInterrupt died in the callback: the escalation must still stop this
            print("not stopped", flush=True)
        except KeyboardInterrupt:
            print("stopped", flush=True)
    """
)


@pytest.mark.slow
def test_a_ctrl_c_lost_in_a_callback_from_c_is_silent_and_escalated():
    """Seen: Ctrl-C during `plan --objective flush` while numba compiled: the KeyboardInterrupt raised inside
    llvmlite's ctypes callback was printed as "Exception ignored … Traceback" and dropped there."""
    out = subprocess.run([sys.executable, "-c", IN_A_CALLBACK], capture_output=True, text=True, timeout=60,
                         preexec_fn=as_from_a_terminal)
    assert out.stdout.strip() == "stopped", (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "ignored" not in out.stderr, out.stderr
