"""The predicted-vs-simulated summary of a run, as rich tables.

Problem: put the evaluator's prediction (max-load, per-device loads) beside
what the simulation measured, with the difference, so a user sees at once
whether the model's time-per-sample holds for this split, schedule and
communication mode (docs/model.md §6).
"""

from __future__ import annotations

import math

from rich.table import Table

from pipesim.simulation.simulator import SimulationResult

__all__ = ["device_stats_table", "summary_table"]


def _num(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isinf(x)) else f"{x:.6g}"


def _gib(x: float) -> str:
    return "∞" if math.isinf(x) else f"{x / 2**30:.3g}"


def summary_table(result: SimulationResult) -> Table:
    """The run's headline figures: predicted beside simulated, latency, bubble, iteration time."""
    m = result.measurements
    table = Table(title=f"{result.workload}: {result.schedule}, {result.comm} communication, {result.microbatches} microbatches", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    flushed = result.predicted_iteration_time is not None
    if flushed:  # like with like: the flushed prediction per microbatch includes the flush's bubble
        table.add_row("max-load (steady state without flushes)", _num(result.predicted_time_per_sample))
        table.add_row("predicted time-per-sample (iteration ÷ minibatch)",
                      _num(result.predicted_iteration_time / result.minibatch))
        table.add_row("simulated time-per-sample (iteration ÷ minibatch)", _num(result.simulated_time_per_sample))
    else:
        table.add_row("predicted time-per-sample (max-load)", _num(result.predicted_time_per_sample))
        table.add_row("simulated time-per-sample (steady state)", _num(result.simulated_time_per_sample))
    if flushed:
        table.add_row("iteration time: predicted / simulated",
                      f"{_num(result.predicted_iteration_time)} / {_num(result.simulated_iteration_time)}")
    table.add_row("difference" + (" (iteration time, flush included on both sides)" if flushed else ""),
                  f"{100 * result.difference:+.4f}%" + ("" if m.settled else " (not settled)"))
    table.add_row("latency alone (one microbatch, empty pipeline)", _num(m.latency_alone))
    table.add_row("latency under load mean / p50 / p99", f"{_num(m.latency_mean)} / {_num(m.latency_p50)} / {_num(m.latency_p99)}")
    table.add_row("makespan", _num(m.makespan))
    table.add_row("bubble fraction (fill and drain)", f"{100 * m.bubble_fraction:.2f}%")
    if result.minibatch is not None:
        table.add_row("microbatches per minibatch", str(result.minibatch))
        table.add_row("minibatch time (first)", _num(m.minibatch_times[0]) if m.minibatch_times else "—")
    if result.in_flight is not None:
        table.add_row("microbatches in flight (at most)", str(result.in_flight))
    return table


def device_stats_table(result: SimulationResult) -> Table:
    """One row per device: predicted and simulated load, compute, communication, idle, in flight, memory."""
    table = Table(title="per device (loads per microbatch; compute, comm, idle: totals over the run; in flight: peak)")
    headers = ("device", "stage", "pred. load", "sim. load", "compute", "comm", "idle", "busy", "in flight", "GiB/cap.")
    for header in headers:
        table.add_column(header, justify="left" if header == "device" else "right", no_wrap=True)
    overflowing = {o.device for o in result.measurements.overflows}
    for d in result.measurements.devices:
        table.add_row(
            d.device,
            str(d.stage),
            _num(d.predicted_load),
            _num(d.simulated_load),
            _num(d.compute),
            _num(d.comm),
            _num(d.idle),
            f"{100 * d.utilisation:.1f}%",
            str(d.peak_in_flight),
            f"{_gib(d.peak_memory)}/{_gib(d.capacity)}",
            style="red" if d.device in overflowing else None,
        )
    return table
