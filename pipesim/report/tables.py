"""Terminal tables (rich) for splits and workloads."""

from __future__ import annotations

import math

from rich.table import Table

from pipesim.placement.evaluate import SplitEvaluation
from pipesim.placement.workload import Workload


def _num(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isinf(x)) else f"{x:.6g}"


def _bytes(x: float) -> str:
    if math.isinf(x):
        return "∞"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(x) < 1024 or unit == "TiB":
            return f"{x:.4g} {unit}"
        x /= 1024
    return str(x)


def device_table(evaluation: SplitEvaluation, title: str | None = None) -> Table:
    """One row per device: nodes, compute, send, receive, load, memory used/capacity.

    The bottleneck device is bold.

    Parameters
    ----------
    evaluation : SplitEvaluation
    title : str, optional

    Returns
    -------
    rich.table.Table

    Examples
    --------
    >>> from pipesim.placement import Split, evaluate
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0), cpus=1, memory=2**30)
    >>> device_table(evaluate(w.graph, w.devices, Split.from_lists({"accelerator": [[1], [2]]}))).row_count
    2
    """
    table = Table(title=title)
    for header in ("device", "nodes", "compute", "send", "receive", "load", "memory", "contiguous"):
        table.add_column(header, justify="left" if header == "device" else "right", no_wrap=True)
    bottleneck = evaluation.bottleneck
    for d in evaluation.devices:
        style = "bold" if d is bottleneck and d.load > 0 else None
        table.add_row(
            d.name,
            str(len(d.nodes)),
            _num(d.compute),
            _num(d.send),
            _num(d.receive),
            _num(d.load),
            f"{_bytes(d.memory)} / {_bytes(d.capacity)}",
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
    >>> from pipesim.placement import Split, evaluate
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
