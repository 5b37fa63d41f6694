"""PNG plots of a run and of a sweep (matplotlib, Agg: files only, no display).

* :func:`loads_plot` — one bar per device, in pipeline order: the predicted load split into
  compute, send and receive (docs/model.md §2.3), the simulated busy time per sample
  beside it as a marker, and the max-load as a line, so the bottleneck and any
  disagreement with the simulation are seen at a glance.
* :func:`sweep_plot` — throughput (and cost per million samples, when prices
  are given) against the first varied parameter, one line per combination of
  the others; failed points are left out and counted in the title.
* :func:`plan_plot` — which GPU of which node holds which stage of a hybrid-parallel plan.
* :func:`throughput_plot` — throughput against devices, one line per planner (Piper's figure).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipesim.output import save_figure
from pipesim.placement.evaluate import SplitEvaluation
from pipesim.simulation import SimulationResult

__all__ = ["loads_plot", "plan_plot", "sweep_plot", "throughput_plot"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loads_plot(evaluation: SplitEvaluation, simulation: SimulationResult | None, path: str | Path, title: str) -> None:
    """A PNG bar chart of each used device's compute, send and receive, in pipeline order.

    The red line is the max-load; with a simulation, black diamonds mark each
    device's simulated busy time per pass.

    Parameters
    ----------
    evaluation : SplitEvaluation
    simulation : SimulationResult, optional
    path : str or Path
        The PNG to write.
    title : str

    Examples
    --------
    >>> from pipesim.placement import Split
    >>> from pipesim.placement.evaluate import evaluate
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0), cpus=1, memory=2**30)
    >>> import tempfile
    >>> from pathlib import Path
    >>> png = Path(tempfile.mkdtemp()) / "loads.png"
    >>> loads_plot(evaluate(w.graph, w.devices, Split.from_lists({"accelerator": [[1], [2]]})), None, png, "demo")
    >>> png.read_bytes()[:4]
    b'\\x89PNG'
    """
    plt = _pyplot()
    devices = [d for d in evaluation.devices if d.nodes]
    if evaluation.stage_order:  # bars in pipeline order, first stage on the left
        rank = {name: i for i, name in enumerate(evaluation.stage_order)}
        devices.sort(key=lambda d: rank.get(d.name, len(rank)))
    names = [d.name for d in devices]
    xs = range(len(devices))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(devices) + 2), 4.2))
    bottom = [0.0] * len(devices)
    for label, values, colour in (
        ("compute", [d.compute for d in devices], "#4c72b0"),
        ("send", [d.send for d in devices], "#dd8452"),
        ("receive", [d.receive for d in devices], "#55a868"),
    ):
        ax.bar(xs, values, bottom=bottom, label=label, color=colour, width=0.6)
        bottom = [b + v for b, v in zip(bottom, values)]
    if simulation is not None:
        simulated = {d.device: d.simulated_load for d in simulation.measurements.devices}
        ax.scatter(xs, [simulated.get(n, 0.0) for n in names], marker="D", color="black", zorder=3,
                   label="simulated busy / pass")
    ax.axhline(evaluation.max_load, color="red", linestyle="--", linewidth=1, label=f"max-load {evaluation.max_load:.4g}")
    ax.set_ylim(0, 1.1 * max([evaluation.max_load, *bottom]) or 1.0)  # room above the max-load line and markers
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylabel("time per pass (ms)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=110)  # all or nothing; an unwritable path is one line
    finally:
        plt.close(fig)


def _label(value: Any) -> str:
    return str(value)


def sweep_plot(records: Sequence[dict], varied: Sequence[str], path: str | Path, title: str) -> None:
    """Throughput (and cost) against the first varied field, as a PNG.

    One line per value of the second varied field, one row of panels (small
    multiples) per combination of the others, so three or more varied fields
    stay readable.

    Parameters
    ----------
    records : sequence of dict
        Sweep rows with ``params`` (path -> value), ``status`` and the
        summary fields; failed points are counted in the title.
    varied : sequence of str
        The varied paths, in grid order.
    path : str or Path
        The PNG to write.
    title : str
    """
    plt = _pyplot()
    ok = [r for r in records if r.get("status") == "ok"]
    failed = len(records) - len(ok)
    with_cost = any(r.get("cost_per_million_samples") is not None for r in ok)
    metrics = [("simulated_throughput", "throughput (samples/s)"), ("cost_per_million_samples", "cost per million samples")]
    metrics = metrics[: 2 if with_cost else 1]
    x_param, line_params, facet_params = varied[0], list(varied[1:2]), list(varied[2:])

    def values_of(params: Sequence[str], r: dict) -> tuple:
        return tuple(_label(r["params"][p]) for p in params)

    # facets, lines and x values in the order the grid gives them (not sorted as text: "16GB/s" < "4GB/s")
    facets = list(dict.fromkeys(values_of(facet_params, r) for r in records)) or [()]
    lines = list(dict.fromkeys(values_of(line_params, r) for r in records)) or [()]
    x_values = list(dict.fromkeys(r["params"][x_param] for r in records))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x_values)
    fig, axes = plt.subplots(len(facets), len(metrics), figsize=(6.5 * len(metrics), 3.6 * len(facets) + 0.8),
                             squeeze=False, sharex=True)
    for row, facet in enumerate(facets):
        for column, (key, ylabel) in enumerate(metrics):
            ax = axes[row][column]
            for line, marker in zip(lines, itertools.cycle("osD^v<>")):  # same marker per line in every panel
                points = []
                for r in ok:
                    if values_of(facet_params, r) != facet or values_of(line_params, r) != line:
                        continue
                    y = r.get(key) if r.get(key) is not None else r.get(key.replace("simulated", "predicted"))
                    if y is not None:
                        x = r["params"][x_param]
                        points.append((x if numeric else x_values.index(x), y))
                points.sort()
                if points:
                    label = ", ".join(f"{p.rsplit('.', 1)[-1]}={v}" for p, v in zip(line_params, line)) or None
                    ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, label=label)
            if not numeric:
                ax.set_xticks(range(len(x_values)), [_label(v) for v in x_values])
            if row == len(facets) - 1:
                ax.set_xlabel(x_param)
            ax.set_ylabel(ylabel)
            if facet_params:
                ax.set_title(", ".join(f"{p.rsplit('.', 1)[-1]}={v}" for p, v in zip(facet_params, facet)), fontsize=9)
            ax.grid(alpha=0.3)
            if line_params and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    note = f"\n({failed} failed point{'s' if failed != 1 else ''} not shown)" if failed else ""
    fig.suptitle(title + note, fontsize=11)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=110)  # all or nothing; an unwritable path is one line
    finally:
        plt.close(fig)


def plan_plot(stages: Sequence[Any], per_node: int, devices: int, path: str | Path, title: str) -> None:
    """A PNG map of the cluster: one row per node, one cell per GPU, coloured by the stage it runs.

    Each cell says the stage, its ``t × d`` and which replica the GPU belongs to;
    unused GPUs are grey.

    Parameters
    ----------
    stages : sequence of PlanStage
        Evaluated, with device ids (replica by replica, ``t`` ids each).
    per_node, devices : int
        GPUs per node and in all.
    path : str or Path
    title : str
    """
    plt = _pyplot()
    nodes = -(-devices // per_node)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.15 * per_node), 0.9 + 0.75 * nodes))
    cmap = plt.get_cmap("tab20")
    owner = {}
    for i, s in enumerate(stages):
        t = s.tensor_parallel
        for k, dev in enumerate(s.devices):
            owner[dev] = (i, k // t, s)
    for dev in range(devices):
        row, col = dev // per_node, dev % per_node
        y = nodes - 1 - row
        if dev in owner:
            i, replica, s = owner[dev]
            ax.add_patch(plt.Rectangle((col, y), 0.95, 0.9, color=cmap(i % 20)))
            ax.text(col + 0.475, y + 0.45, f"S{i}\n{s.tensor_parallel}x{s.data_parallel}\nr{replica}",
                    ha="center", va="center", fontsize=7)
        else:
            ax.add_patch(plt.Rectangle((col, y), 0.95, 0.9, color="0.88"))
            ax.text(col + 0.475, y + 0.45, "idle", ha="center", va="center", fontsize=7, color="0.5")
    ax.set_xlim(0, per_node)
    ax.set_ylim(0, nodes)
    ax.set_xticks([c + 0.475 for c in range(per_node)], [f"GPU {c}" for c in range(per_node)], fontsize=8)
    ax.set_yticks([nodes - 1 - r + 0.45 for r in range(nodes)], [f"node {r}" for r in range(nodes)], fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title + "\n(Sk: stage k; t x d: tensor x data parallel; rj: replica j)", fontsize=9)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=110)  # all or nothing; an unwritable path is one line
    finally:
        plt.close(fig)


def throughput_plot(series: dict[str, Sequence[tuple[float, float]]], path: str | Path, title: str,
                    xlabel: str = "devices", ylabel: str = "samples/s") -> None:
    """A PNG of throughput against device count, one line per planner (Piper's figure).

    Parameters
    ----------
    series : dict of str to [(devices, throughput)]
        Points per label; infeasible points are left out by the caller.
    path : str or Path
    title : str
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = itertools.cycle("os^vDx")
    for label, points in series.items():
        points = sorted(p for p in points if p[1] is not None)
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=next(markers), label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=110)  # all or nothing; an unwritable path is one line
    finally:
        plt.close(fig)
