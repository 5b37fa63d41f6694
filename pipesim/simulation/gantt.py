"""A Gantt chart (matplotlib PNG) of the first microbatches of a simulated run.

Problem: show at a glance how a schedule fills the pipeline: one row per lane
(device, or link in ``overlap`` mode), one bar per task, coloured by
microbatch, forward solid and backward hatched, with transfers drawn lighter.
Only microbatches below ``microbatches`` are drawn, so the start of the run
(warm-up, first minibatches) stays readable.

One legend matches the chart: the kinds of bar (forward, backward, weight
gradient, transfer) as white swatches with their hatching, and a colour bar
with one distinct colour per drawn microbatch (:func:`microbatch_colours`:
no colour repeats and none is grey, so no microbatch looks like a swatch).
"""

from __future__ import annotations

from pathlib import Path

from pipesim.output import save_figure
from pipesim.simulation.engine import Run

__all__ = ["GANTT_FORMATS", "microbatch_colours", "write_gantt"]


#: File types a chart can be written as (matplotlib's, by suffix).
GANTT_FORMATS = (".png", ".svg", ".pdf")


def microbatch_colours(count: int) -> list[tuple[float, float, float, float]]:
    """One distinct colour per microbatch ``0..count-1``: evenly spaced along a rainbow (``turbo``,
    whose colours are all saturated: no grey), so neighbouring microbatches differ and none repeats.

    Examples
    --------
    >>> colours = microbatch_colours(32)
    >>> len(set(colours)) == 32
    True
    """
    import matplotlib

    cmap = matplotlib.colormaps["turbo"]
    # the ends of turbo are near-black and dark red: keep the vivid middle 80%
    return [tuple(float(c) for c in cmap(0.1 + 0.8 * (j / max(count - 1, 1)))) for j in range(count)]


def write_gantt(run: Run, path: str | Path, microbatches: int | None = None, title: str | None = None,
                unit: str = "ms") -> None:
    """Draw the first ``microbatches`` of ``run``, one row per lane; ``unit`` labels the time axis."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    limit = run.microbatches if microbatches is None else min(microbatches, run.microbatches)
    lanes = run.program.lanes
    colours = microbatch_colours(max(limit, 1))
    fig, ax = plt.subplots(figsize=(14, 0.45 * len(lanes) + 2.0))
    end_time = 0.0
    bars: dict[tuple[int, int, bool, str], list[tuple[float, float]]] = {}  # one collection per style: fast
    for lane, j, task, op, start in run.operations(limit):
        key = (lane.index, j, op.kind == "compute", task.phase)
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
            facecolors=colours[colour],
            alpha=1.0 if compute else 0.45,
            hatch=hatches.get(phase),
            edgecolor="white",  # draws the hatch only: outlines would blacken short operations
            linewidth=0,
        )
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    # the kinds of bar: white swatches (no microbatch is white), told apart by hatching and edge
    phases = {phase for (_, _, _, phase) in bars}
    legend = [Patch(facecolor="white", edgecolor="black", label="forward (F)")]
    if "backward" in phases:
        legend.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="backward (B, or input gradient I)"))
    if "weight" in phases:
        legend.append(Patch(facecolor="white", edgecolor="black", hatch="..", label="weight gradient (W)"))
    legend += [Patch(facecolor="white", edgecolor="black", alpha=0.45, label="transfer (pale)")]
    height = fig.get_figheight()
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    # the microbatches: one colour each, all of those drawn, on a colour bar
    count = max(limit, 1)
    scale = plt.cm.ScalarMappable(cmap=ListedColormap(colours), norm=BoundaryNorm(range(count + 1), count))
    bar = fig.colorbar(scale, ax=ax, pad=0.01, fraction=0.03)
    step = max(1, -(-count // 16))
    bar.set_ticks([j + 0.5 for j in range(0, count, step)], labels=[str(j) for j in range(0, count, step)])
    bar.set_label(f"microbatch (0–{count - 1})")
    ax.set_yticks(range(len(lanes)), [lane.name for lane in lanes])
    ax.invert_yaxis()
    ax.set_xlim(0, end_time or 1.0)
    ax.set_xlabel(f"time ({unit})")
    ax.set_title(title or f"first {limit} microbatches (colour: microbatch; hatched: backward, dotted: weight gradient; pale: transfer)")
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))  # room for the legend under the time axis
    try:
        save_figure(fig, path, dpi=110)  # all or nothing; an unwritable path is one line
    finally:
        plt.close(fig)
