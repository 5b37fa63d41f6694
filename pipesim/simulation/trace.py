"""A simulated run as Chrome trace-event JSON (opens in Perfetto or chrome://tracing).

Problem: let a user see what every device and link did, operation by
operation.  Each lane is a thread of one process; every operation of every
task of the traced microbatches is one complete ("X") event named after the
node and its kind, with its microbatch in ``args``.  A task runs its operations
back to back, so each operation's start is the task's start plus the durations
before it.

Time unit: the trace format counts microseconds; one unit of the workload's
times is written as one millisecond (``ts = 1000 × t``), the paper's unit.
Reference: the Trace Event Format ("X" complete events, "M" thread_name
metadata events).
"""

from __future__ import annotations

from pathlib import Path

from pipesim.placement.formats import dumps
from pipesim.output import write_text
from pipesim.simulation.engine import Run

__all__ = ["trace_events", "write_trace"]

MICROSECONDS_PER_UNIT = 1000.0


def trace_events(run: Run, microbatches: int | None = None) -> list[dict]:
    """The run's operations as trace events, for microbatches below ``microbatches`` (all if None)."""
    events: list[dict] = [{"name": "process_name", "ph": "M", "pid": 0, "args": {"name": "pipesim"}}]
    for lane in run.program.lanes:
        events.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": lane.index, "args": {"name": lane.name}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": 0, "tid": lane.index, "args": {"sort_index": lane.index}})
    for lane, j, task, op, start in run.operations(microbatches):
        events.append(
            {
                "name": f"{op.kind} {op.node}",
                "cat": f"{task.phase},{op.kind}",
                "ph": "X",
                "pid": 0,
                "tid": lane.index,
                "ts": start * MICROSECONDS_PER_UNIT,
                "dur": op.duration * MICROSECONDS_PER_UNIT,
                "args": {"microbatch": j, "phase": task.phase},
            }
        )
    return events


#: The trace holds at most this many microbatches (a file of every task of a long run is unwieldy).
TRACE_MICROBATCHES = 1000


def write_trace(run: Run, path: str | Path, microbatches: int | None = None) -> None:
    """Write :func:`trace_events` of the first ``microbatches`` as a Chrome trace-event file (Perfetto)."""
    write_text(path, dumps({"traceEvents": trace_events(run, microbatches), "displayTimeUnit": "ms"}))
