"""A Gantt chart (matplotlib PNG) of the first microbatches of a simulated run.

Problem: show at a glance how a schedule fills the pipeline: one row per lane
(device, or link in ``overlap`` mode), one bar per task, coloured by
microbatch, forward solid and backward hatched, with transfers drawn lighter.
Only microbatches below ``microbatches`` are drawn, so the start of the run
(warm-up, first minibatches) stays readable.
"""

from __future__ import annotations

from pathlib import Path

from pipesim.output import save_figure
from pipesim.simulation.engine import Run

__all__ = ["GANTT_FORMATS", "write_gantt"]


#: File types a chart can be written as (matplotlib's, by suffix).
GANTT_FORMATS = (".png", ".svg", ".pdf")


def write_gantt(run: Run, path: str | Path, microbatches: int | None = None, title: str | None = None,
                unit: str = "ms") -> None:
    """Draw the first ``microbatches`` of ``run``, one row per lane; ``unit`` labels the time axis."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    limit = run.microbatches if microbatches is None else min(microbatches, run.microbatches)
    lanes = run.program.lanes
    colours = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(14, 0.45 * len(lanes) + 1.6))
    end_time = 0.0
    bars: dict[tuple[int, int, bool, str], list[tuple[float, float]]] = {}  # one collection per style: fast
    for lane, j, task, op, start in run.operations(limit):
        key = (lane.index, j % 20, op.kind == "compute", task.phase)
        spans = bars.setdefault(key, [])
        if spans and spans[-1][0] + spans[-1][1] == start:  # back-to-back operations: one bar
            spans[-1] = (spans[-1][0], spans[-1][1] + op.duration)
        else:
            spans.append((start, op.duration))
        end_time = max(end_time, start + op.duration)
    hatches = {"forward": None, "backward": "//", "weight": ".."}
    for (row, colour, compute, phase), spans in bars.items():
        ax.broken_barh(
            spans,
            (row - 0.4, 0.8),
            facecolors=colours(colour),
            alpha=1.0 if compute else 0.45,
            hatch=hatches.get(phase),
            edgecolor="white",  # draws the hatch only: outlines would blacken short operations
            linewidth=0,
        )
    from matplotlib.patches import Patch

    legend = [Patch(facecolor="lightgrey", label="forward (F)"), Patch(facecolor="lightgrey", hatch="//", label="backward (B, or input gradient I)")]
    if any(phase == "weight" for (_, _, _, phase) in bars):
        legend.append(Patch(facecolor="lightgrey", hatch="..", label="weight gradient (W)"))
    legend += [Patch(facecolor="lightgrey", alpha=0.45, label="transfer")]
    legend += [Patch(facecolor=colours(j % 20), label=f"microbatch {j}") for j in range(min(limit, 8))]
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_yticks(range(len(lanes)), [lane.name for lane in lanes])
    ax.invert_yaxis()
    ax.set_xlim(0, end_time or 1.0)
    ax.set_xlabel(f"time ({unit})")
    ax.set_title(title or f"first {limit} microbatches (colour: microbatch; hatched: backward, dotted: weight gradient; pale: transfer)")
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=110)  # all or nothing; an unwritable path is one line
    finally:
        plt.close(fig)
