"""Terminal tables (rich) for splits and workloads."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from pipesim.hardware.units import format_bytes
from pipesim.placement.evaluate import SplitEvaluation
from pipesim.placement.graph import Graph
from pipesim.placement.workload import Workload
from pipesim.report.placement import describe_nodes, pipeline_order


def _num(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isinf(x)) else f"{x:.6g}"


def _bytes(x: float) -> str:
    return "∞" if math.isinf(x) else format_bytes(x)


def device_table(evaluation: SplitEvaluation, title: str | None = None, graph: Graph | None = None,
                 overflows: Sequence = (), schedule: str | None = None) -> Table:
    """One row per device in pipeline order: what it holds, nodes, compute, send, receive, load, memory.

    With ``graph`` the ``holds`` column says which nodes sit there (layer
    ranges or names, :func:`~pipesim.report.placement.describe_nodes`).
    The bottleneck device is bold.  ``overflows`` (the simulation's
    :class:`~pipesim.simulation.measure.Overflow` list under ``schedule``) turn
    their devices red with what they need, and the caption says the split
    cannot run.

    Parameters
    ----------
    evaluation : SplitEvaluation
    title : str, optional
    graph : Graph, optional

    Returns
    -------
    rich.table.Table

    Examples
    --------
    >>> from pipesim.placement import Split
    >>> from pipesim.placement.evaluate import evaluate
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0), cpus=1, memory=2**30)
    >>> device_table(evaluate(w.graph, w.devices, Split.from_lists({"accelerator": [[1], [2]]})), graph=w.graph).row_count
    2
    """
    table = Table(title=title)
    headers = ("device", *(("holds",) if graph is not None else ()), "nodes", "compute", "send", "receive", "load",
               "memory", "contiguous")
    for header in headers:
        table.add_column(header, justify="left" if header in ("device", "holds") else "right",
                         no_wrap=header != "holds")
    bottleneck = evaluation.bottleneck
    over = {o.device: o for o in overflows}
    if over:
        table.caption = (f"NOT RUNNABLE under {schedule or 'the schedule'}: "
                         + ", ".join(f"{o.device} needs {_bytes(o.memory)}" for o in overflows)
                         + " with the activations in flight")
        table.caption_style = "bold red"
    for d in pipeline_order(evaluation):
        style = "bold red" if d.name in over else "bold" if d is bottleneck and d.load > 0 else None
        table.add_row(
            d.name,
            *((describe_nodes(graph, d.nodes),) if graph is not None else ()),
            str(len(d.nodes)),
            _num(d.compute),
            _num(d.send),
            _num(d.receive),
            _num(d.load),
            f"{_bytes(d.memory)} / {_bytes(d.capacity)}"
            + (f"\n→ {_bytes(over[d.name].memory)} OVERFLOW" if d.name in over else ""),
            "yes" if d.contiguous else "no",
            style=style,
        )
    return table


def workload_table(workload: Workload) -> Table:
    """Vital statistics of a workload as a rich table (see :func:`workload_info`).

    Returns
    -------
    rich.table.Table
    """
    g = workload.graph
    table = Table(title=f"workload {workload.name}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("nodes", str(len(g.nodes)))
    table.add_row("edges", str(len(g.edges)))
    table.add_row("forward / backward nodes", f"{len(g.forward_nodes)} / {len(g.backward_nodes)}")
    table.add_row("colour classes", str(len(g.color_classes)))
    table.add_row("total memory", _bytes(g.total_memory))
    for dc in workload.devices:
        table.add_row(f"{dc.name} devices", str(dc.count))
        table.add_row(f"{dc.name} memory each", _bytes(dc.memory))
        table.add_row(f"{dc.name} total work", _num(g.total_time(dc.name)))
    return table


def workload_info(workload: Workload) -> dict:
    """The same statistics as :func:`workload_table`, as JSON-ready data.

    Parameters
    ----------
    workload : Workload

    Returns
    -------
    dict
        Counts of nodes, edges, forward and backward nodes and colour
        classes, the total memory, and per device class its count, memory
        (``None``: unlimited) and total work.

    Examples
    --------
    >>> from pipesim.placement import Split
    >>> from pipesim.placement.evaluate import evaluate
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0), cpus=1, memory=2**30)
    >>> info = workload_info(w)
    >>> info["nodes"], info["devices"][0]
    (2, {'device_class': 'accelerator', 'count': 2, 'memory': 1073741824, 'total_work': 3.0})
    """
    g = workload.graph
    return {
        "name": workload.name,
        "nodes": len(g.nodes),
        "edges": len(g.edges),
        "forward_nodes": len(g.forward_nodes),
        "backward_nodes": len(g.backward_nodes),
        "color_classes": len(g.color_classes),
        "total_memory": g.total_memory,
        "devices": [
            {
                "device_class": dc.name,
                "count": dc.count,
                "memory": None if math.isinf(dc.memory) else dc.memory,
                "total_work": g.total_time(dc.name),
            }
            for dc in workload.devices
        ],
    }


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` whole: where output is not a terminal (a pipe, a file) the console's width does not
    cut it, the line is as wide as the table needs; a terminal keeps its own width."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    console.width = max(width, Measurement.get(console, console.options.update_width(100_000), table).maximum)
    try:
        console.print(table)
    finally:
        console.width = width


def plan_table(plan, workload) -> Table:
    """A plan's stages: layers, ``t x d``, devices, recomputed layers, and per microbatch on one replica
    the compute, pipeline transfer, all-reduce (flush) or resync (Piper) and stage time in milliseconds,
    with the memory per device and the microbatches in flight.

    Examples
    --------
    >>> from pipesim.placement.plan.workload import Configuration, Layer, PlanningWorkload
    >>> from pipesim.placement.plan.solve import plan
    >>> c = Configuration("vanilla", time=0.003, parameters=8.0, memory_a=1.0, memory_b=0.0)
    >>> w = PlanningWorkload((Layer(0, {1: (c,)}),), (), devices=1, memory=100.0, bandwidth=1.0, microbatches=4)
    >>> t = plan_table(plan(w), w)
    >>> [c.header for c in t.columns][6], t.columns[6]._cells
    ('compute ms', ['3'])
    """
    order = {layer.id: i for i, layer in enumerate(workload.layers)}
    table = Table(title=f"plan for {workload.name}: K={workload.devices}, M={workload.memory / 2**30:.4g} GiB, "
                  f"BW={workload.bandwidth / 2**30:.4g} GiB/s, N={workload.microbatches}; times in ms per microbatch")
    flush = plan.objective == "flush"
    for col in ("stage", "layers", "t", "d", "devices", "recompute", "compute ms", "pipeline ms",
                "all-reduce ms" if flush else "resync ms", "time ms", "memory/dev", "in flight"):
        table.add_column(col, justify="left" if col == "layers" else "right", no_wrap=True)
    ms = lambda x: f"{x * 1e3:.6g}"  # noqa: E731 - plans keep seconds, tables show milliseconds
    for i, s in enumerate(plan.stages):
        positions = sorted(order[v] for v in s.nodes)
        span = f"{len(s.nodes)} ({positions[0]}..{positions[-1]})" if positions else "0"
        devices = f"{s.devices[0]}..{s.devices[-1]}" if s.devices else ""
        recomputed = sum(1 for v in s.nodes if "recomp" in s.configuration.get(v, "").lower())
        link = s.link_out or s.link_in
        table.add_row(
            str(i), span, str(s.tensor_parallel), str(s.data_parallel), devices, f"{recomputed}/{len(s.nodes)}",
            ms(s.compute), ms(s.communication) + (f" ({link})" if flush and link else ""),
            ms(s.allreduce if flush else s.resync), ms(s.time), format_bytes(s.memory), str(s.in_flight),
        )
    return table
