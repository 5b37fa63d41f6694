"""Every flushed schedule on one model: iteration time, bubble and activation memory side by side.

Problem: the picture a user wants before choosing a pipeline schedule.  For
``p`` devices, the optimal contiguous split (the DP of
:func:`pipesim.placement.dp.solve_dp`) into ``p`` stages serves the one-chunk
schedules and into ``p·v`` stages the chunked ones (folded round-robin or in
a V); every schedule then runs ``microbatches`` per iteration (a few
iterations, flushed) and the table gives the closed-form iteration time
(:mod:`pipesim.simulation.formulas`) beside the simulated one, the bubble, and
the peak stashed activations and memory of the busiest device.

Guarantee: every row is a simulation of that schedule on that split; a
schedule that cannot run there (sizes it is not defined for, a deadlock) is
a row with its reason instead of numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

from pipesim.errors import PipesimError
from pipesim.hardware.units import format_bytes
from pipesim.placement.activations import stash_sizes_known
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from pipesim.output import save_figure
from pipesim.simulation.orders import FLUSHED_SCHEDULES, SCHEDULE_SPECS
from pipesim.simulation.simulator import simulate

__all__ = ["ScheduleRow", "compare_schedules", "dp_stage_split", "schedule_table", "write_schedule_plot"]


@dataclass(frozen=True)
class ScheduleRow:
    """One schedule's figures (``error`` instead when it cannot run)."""

    schedule: str
    virtual_stages: int
    placement: str
    predicted_iteration_time: float | None = None
    simulated_iteration_time: float | None = None
    difference: float | None = None  # simulated minus predicted, relative to predicted
    bubble_fraction: float | None = None
    peak_activation: float | None = None  # bytes, the device that stashes most (None: the file gives no sizes)
    peak_memory: float | None = None  # bytes, the device that needs most
    peak_in_flight: int | None = None
    memory_overflows: int = 0
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def dp_stage_split(workload: Workload, stages: int, device_class: str | None = None) -> Split:
    """The DP's optimal contiguous split onto ``stages`` devices of one class (the others removed)."""
    from pipesim.placement.dp.solve import (
        solve_dp,  # the DP's numba kernels load only when needed
    )

    cls = device_class or workload.devices[0].name
    counts = {dc.name: (stages if dc.name == cls else 0) for dc in workload.devices}
    result = solve_dp(workload.with_devices(**{name: {"count": n} for name, n in counts.items()}))
    if result.evaluation is None:
        raise PipesimError(f"no split of {workload.name} onto {stages} {cls} devices: {result.message}")
    return result.evaluation.split


def compare_schedules(
    workload: Workload,
    devices: int,
    microbatches: int,
    *,
    schedules: Sequence[str] = FLUSHED_SCHEDULES,
    virtual: int = 2,
    weight_fraction: float | None = None,
    comm: str = "paper",
    iterations: int = 3,
    splits: dict[int, Split] | None = None,
) -> list[ScheduleRow]:
    """Simulate each of ``schedules`` on ``devices`` devices; one :class:`ScheduleRow` each.

    Parameters
    ----------
    workload : Workload
        A training workload.
    devices, microbatches : int
        Pipeline devices ``p`` and microbatches per iteration ``m``.
    schedules : sequence of str
        Flushed schedules to compare.
    virtual : int
        Chunks per device for the schedules that take any number.
    weight_fraction : float, optional
        Weight-gradient share of each backward (zero-bubble schedules; default 0.5).
    comm : str
        Communication mode.
    iterations : int
        Flushed iterations to simulate (the figures are their mean).
    splits : dict, optional
        ``{stages: split}`` to use instead of the DP's (keys ``p`` and ``p·v``).
    """
    splits = dict(splits or {})
    known = stash_sizes_known(workload.graph)
    rows: list[ScheduleRow] = []
    for name in schedules:
        spec = SCHEDULE_SPECS[name]
        v = spec.virtual or virtual
        try:
            if devices * v not in splits:
                splits[devices * v] = dp_stage_split(workload, devices * v)
            result = simulate(
                workload, splits[devices * v], schedule=name, microbatches=iterations * microbatches,
                minibatch=microbatches, virtual_stages=v, weight_fraction=weight_fraction, comm=comm,
            )
        except PipesimError as exc:
            rows.append(ScheduleRow(name, v, spec.placement, error=str(exc)))
            continue
        m = result.measurements
        predicted, simulated = result.predicted_iteration_time, result.simulated_iteration_time
        rows.append(
            ScheduleRow(
                schedule=name,
                virtual_stages=v,
                placement=result.placement,
                predicted_iteration_time=predicted,
                simulated_iteration_time=simulated,
                difference=(simulated - predicted) / predicted if predicted else None,
                bubble_fraction=m.bubble_fraction,
                peak_activation=max(d.peak_activation for d in m.devices) if known else None,
                peak_memory=max(d.peak_memory for d in m.devices),
                peak_in_flight=max(d.peak_in_flight for d in m.devices),
                memory_overflows=len(m.overflows),
            )
        )
    return rows


def schedule_table(rows: Sequence[ScheduleRow], title: str) -> Table:
    """The comparison as a rich table: a dash where a figure is unknown (no tensor sizes: no peak stash);
    a ``note`` column (a schedule that cannot run, memory overflows) only when some row has one.

    Examples
    --------
    >>> t = schedule_table([ScheduleRow("gpipe", 1, "round-robin", 10.0, 9.5, -0.05, 0.2, None, None, 4)], "x")
    >>> [c.header for c in t.columns][4:], t.columns[6]._cells
    (['diff.', 'bubble', 'peak stash', 'in flight'], ['—'])
    """
    notes = [r.error or (f"memory overflow on {r.memory_overflows} device(s)" if r.memory_overflows else "")
             for r in rows]
    table = Table(title=title)
    headers = ["schedule", "v", "predicted iter. (ms)", "simulated iter. (ms)", "diff.", "bubble", "peak stash",
               "in flight", *(["note"] if any(notes) else [])]
    for header in headers:
        table.add_column(header, justify="left" if header in ("schedule", "note") else "right")
    dash = "—"
    for r, note in zip(rows, notes):
        cells = [dash] * 6 if r.error else [
            f"{r.predicted_iteration_time:.6g}", f"{r.simulated_iteration_time:.6g}", f"{100 * r.difference:+.2f}%",
            f"{100 * r.bubble_fraction:.1f}%", dash if r.peak_activation is None else format_bytes(r.peak_activation),
            str(r.peak_in_flight)]
        table.add_row(r.schedule, str(r.virtual_stages), *cells, *([note] if any(notes) else []))
    return table


def write_schedule_plot(rows: Sequence[ScheduleRow], path: str | Path, title: str = "") -> None:
    """Bars per schedule: iteration time (predicted and simulated), bubble, peak stashed activations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.error is None]
    names = [f"{r.schedule}\n(v={r.virtual_stages})" for r in ok]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    x = range(len(ok))
    axes[0].bar([i - 0.2 for i in x], [r.predicted_iteration_time for r in ok], 0.4, label="predicted")
    axes[0].bar([i + 0.2 for i in x], [r.simulated_iteration_time for r in ok], 0.4, label="simulated")
    axes[0].set_title("iteration time")
    axes[0].set_ylabel("ms per iteration")  # node times are in ms (paper files and generated workloads)
    # headroom above the tallest bar keeps the legend clear of the bars
    top = max([r.predicted_iteration_time for r in ok] + [r.simulated_iteration_time for r in ok], default=1.0)
    axes[0].set_ylim(0, 1.3 * top)
    axes[0].legend(loc="upper center", ncol=2, frameon=False)
    axes[1].bar(x, [100 * r.bubble_fraction for r in ok], color="tab:red")
    axes[1].set_title("bubble")
    axes[1].set_ylabel("% of device time idle")
    axes[2].set_title("peak stashed activations (busiest device)")
    axes[2].set_ylabel("GiB")
    if all(r.peak_activation is not None for r in ok):
        axes[2].bar(x, [r.peak_activation / 2**30 for r in ok], color="tab:green")
    else:
        axes[2].text(0.5, 0.5, "unknown: the workload gives no\nforward-to-backward tensor sizes",
                     ha="center", va="center", transform=axes[2].transAxes)
        axes[2].set_yticks([])
    for ax in axes:
        ax.set_xticks(list(x), names, rotation=60, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=110)  # all or nothing; an unwritable path is one line
    finally:
        plt.close(fig)
