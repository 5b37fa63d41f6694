"""Hypothesis strategies and builders shared by the test suite.

``workloads()`` draws small random paper-model workloads: a random DAG of
forward nodes with accelerator/CPU times, memory, support flags and transfer
costs; optionally its backward mirror (one backward node per forward node,
same colour class, reversed edges plus forward-to-backward activation edges),
which is how the paper's training graphs are built.
"""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import strategies as st

from pipesim.placement.devices import ACCELERATOR, CPU, paper_devices
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.workload import Workload

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "workloads" / "paper"


def node(id, acc, cpu=None, memory=0.0, transfer=None, supported=True, backward=False, color=None):
    """A paper-model node: ``transfer`` is its accelerator transfer cost c(u)."""
    return Node(
        id=id,
        time={ACCELERATOR: acc, CPU: acc * 10 if cpu is None else cpu},
        memory=memory,
        unsupported=frozenset() if supported else frozenset({ACCELERATOR}),
        transfer={ACCELERATOR: transfer} if transfer is not None else {},
        is_backward=backward,
        color_class=color,
    )


_time = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0])


@st.composite
def workloads(draw, min_nodes=1, max_nodes=6, training=None, max_accelerators=3, max_cpus=2):
    n = draw(st.integers(min_nodes, max_nodes))
    is_training = draw(st.booleans()) if training is None else training
    pairs = [(i, j) for j in range(n) for i in range(j)]
    edges = [p for p in pairs if draw(st.booleans())] if pairs else []
    has_out = {i for i, _ in edges}
    # occasionally two forward nodes share a colour class (and so do their backward partners)
    color = list(range(n))
    if n >= 2 and draw(st.booleans()):
        a, b = draw(st.sampled_from([(i, j) for i in range(n) for j in range(n) if i < j]))
        color[b] = a
    nodes = []
    for i in range(n):
        nodes.append(
            node(
                i,
                acc=draw(_time),
                cpu=draw(_time) * 3,
                memory=draw(st.sampled_from([0.0, 1.0, 2.0, 3.0])),
                transfer=draw(st.sampled_from([0.0, 0.25, 1.0, 2.0])) if i in has_out or is_training else None,
                supported=draw(st.booleans()) or not draw(st.booleans()),
                color=color[i],
            )
        )
    all_edges = [Edge(i, j) for i, j in edges]
    if is_training:
        for i in range(n):
            nodes.append(
                node(
                    n + i,
                    acc=draw(_time),
                    cpu=draw(_time) * 3,
                    memory=0.0,
                    transfer=draw(st.sampled_from([0.0, 0.25, 1.0])),
                    backward=True,
                    color=color[i],
                )
            )
            all_edges.append(Edge(i, n + i))  # stashed activation
        all_edges += [Edge(n + j, n + i) for i, j in edges]
        # a sink-to-loss style edge is already covered by i -> n+i
        # transfer costs only matter for nodes with out-edges; keep them uniform per node
    total_memory = sum(v.memory for v in nodes)
    memory = draw(st.sampled_from([math.inf, total_memory, max(total_memory / 2, 1.0), 3.0]))
    devices = paper_devices(draw(st.integers(1, max_accelerators)), draw(st.integers(0, max_cpus)), memory)
    return Workload(Graph(nodes, all_edges), devices)


def paper_file(*parts: str) -> Path:
    return SHARED.joinpath(*parts)


def brute_force_optimum(workload) -> float:
    """Least max-load over every assignment of colour classes to devices that is a
    feasible pipeline (contiguous split): the DP's problem, solved by exhaustion."""
    import itertools

    from pipesim.placement.evaluate import evaluate
    from pipesim.placement.split import Split

    g = workload.graph
    classes = list(g.color_classes.values())
    devices = [(dc.name, i) for dc in workload.devices for i in range(dc.count)]
    best = math.inf
    for homes in itertools.product(range(len(devices)), repeat=len(classes)):
        if any(h > 0 and (h - 1) not in homes[:k] and devices[h - 1][0] == devices[h][0]
               for k, h in enumerate(homes)):
            continue  # identical devices: only the first use of each index order
        where = {v: devices[h] for members, h in zip(classes, homes) for v in members}
        split = Split.from_mapping(where, {dc.name: dc.count for dc in workload.devices})
        ev = evaluate(g, workload.devices, split)
        if ev.feasible and ev.contiguous:
            best = min(best, ev.max_load)
    return best
