"""The DP with a schedule's in-flight activations in the memory constraint (placement.activations).

Checked against exhaustion: every assignment of colour classes to devices
that is a contiguous split, in every pipeline order of its stages, is kept
when each stage fits ``memory + (in_flight - 1) x stash`` at its position.
"""

import itertools
import math

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesim.errors import InputError
from pipesim.placement import Edge, Graph, Workload
from pipesim.placement.evaluate import evaluate
from pipesim.placement.activations import in_flight, memory_in_flight, node_stash, stash_bytes
from pipesim.placement.devices import paper_devices
from pipesim.placement.dp.solve import solve_dp
from pipesim.placement.result import INFEASIBLE, OPTIMAL
from pipesim.placement.split import Split
from tests.strategies import brute_force_optimum, node, workloads


def fits_some_order(graph, evaluation, schedule, microbatches) -> bool:
    """Whether the split's stages, in some pipeline order, all fit with their activations in flight."""
    used = [d for d in evaluation.devices if d.nodes]
    home = {v: k for k, d in enumerate(used) for v in d.nodes}
    quotient = nx.DiGraph()
    quotient.add_nodes_from(range(len(used)))
    quotient.add_edges_from((home[e.source], home[e.dest]) for e in graph.edges  # the forward pass orders the stages
                            if home[e.source] != home[e.dest] and not graph.nodes[e.dest].is_backward)
    stash = node_stash(graph)
    for order in nx.all_topological_sorts(quotient):
        if all(memory_in_flight(used[k].memory, stash_bytes(graph, used[k].nodes, stash)[0],
                                in_flight(schedule, q, len(used), microbatches)) <= used[k].capacity * (1 + 1e-12)
               for q, k in enumerate(order)):
            return True
    return False


def brute_force_in_flight(workload, schedule, microbatches) -> float:
    g = workload.graph
    classes = list(g.color_classes.values())
    devices = [(dc.name, i) for dc in workload.devices for i in range(dc.count)]
    best = math.inf
    for homes in itertools.product(range(len(devices)), repeat=len(classes)):
        where = {v: devices[h] for members, h in zip(classes, homes) for v in members}
        split = Split.from_mapping(where, {dc.name: dc.count for dc in workload.devices})
        ev = evaluate(g, workload.devices, split)
        if ev.feasible and ev.contiguous and ev.max_load < best and fits_some_order(g, ev, schedule, microbatches):
            best = ev.max_load
    return best


@st.composite
def stashing(draw, max_nodes=4, max_accelerators=3, max_cpus=1):
    """A small training workload whose forward-to-backward edges carry activations, on tight memory."""
    w = draw(workloads(max_nodes=max_nodes, max_accelerators=max_accelerators, max_cpus=max_cpus, training=True))
    g = w.graph
    sizes = st.sampled_from([0.0, 0.5, 1.0, 2.0])
    edges = [Edge(e.source, e.dest, draw(sizes) if not g.nodes[e.source].is_backward and g.nodes[e.dest].is_backward
                  else e.size) for e in g.edges]
    nodes = list(g.nodes.values())
    total = sum(v.memory for v in nodes)
    memory = draw(st.sampled_from([math.inf, total, max(total / 2, 1.0), 3.0, 4.0]))
    counts = {dc.name: dc.count for dc in w.devices}
    devices = paper_devices(counts.get("accelerator", 0), counts.get("cpu", 0), memory)
    return Workload(Graph(nodes, edges), devices)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(stashing(max_accelerators=4), st.sampled_from(["1f1b", "1f1b-flush", "gpipe", "zb-h1", "zb-h2"]), st.integers(1, 4),
       st.sampled_from(["none", "exact"]))
def test_dp_is_optimal_under_the_in_flight_constraint(workload, schedule, microbatches, merge):
    result = solve_dp(workload, schedule=schedule, microbatches=microbatches, merge=merge)
    best = brute_force_in_flight(workload, schedule, microbatches)
    if math.isinf(best):
        assert result.status == INFEASIBLE
        return
    assert result.status == OPTIMAL
    assert result.max_load == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert fits_some_order(workload.graph, result.evaluation, schedule, microbatches)
    # the stricter constraint can only cost time: never below the paper's model
    assert result.max_load >= brute_force_optimum(workload) - 1e-9


@settings(max_examples=30, deadline=None)
@given(stashing(max_accelerators=2))
def test_option_off_is_the_papers_model(workload):
    assert solve_dp(workload).max_load == pytest.approx(brute_force_optimum(workload), rel=1e-9, abs=1e-12)


def chain(stash: float, memory: float):
    """Three equal forward/backward layers whose forward outputs the backward reads (``stash`` bytes each)."""
    n = 3
    nodes = [node(i, 1.0, memory=1.0, color=i) for i in range(n)]
    nodes += [node(n + i, 2.0, backward=True, color=i) for i in range(n)]
    edges = [Edge(i, i + 1, 0.0) for i in range(n - 1)] + [Edge(n + i + 1, n + i, 0.0) for i in range(n - 1)]
    edges += [Edge(i, n + i, stash) for i in range(n)]
    return Workload(Graph(nodes, edges), paper_devices(3, 1, memory))


def test_the_first_stage_holds_more_under_1f1b():
    # one layer per accelerator fits the paper's model (1 byte each); under 1F1B the first of three
    # stages holds 3 microbatches: 1 + 2 x 1 = 3 bytes > 2, so the DP must shorten it or use the CPU
    w = chain(stash=1.0, memory=2.0)
    paper = solve_dp(w, merge="none")
    assert paper.max_load == 3.0
    held = solve_dp(w, schedule="1f1b", microbatches=8, merge="none")
    assert held.status == OPTIMAL and held.max_load > paper.max_load
    assert fits_some_order(w.graph, held.evaluation, "1f1b", 8)
    assert not fits_some_order(w.graph, paper.evaluation, "1f1b", 8)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(InputError, match="interleaved-1f1b"):
        solve_dp(chain(1.0, 2.0), schedule="interleaved-1f1b")


def test_a_split_off_the_one_order_path_is_found():
    """Three independent layers: only the middle one (stashing nothing) fits the 0-byte accelerator, a
    split no prefix of the topological numbering gives; the DP must still find it (found by hypothesis)."""
    from pipesim.placement import DeviceClass

    nodes = [node(i, 0.0, cpu=0.0, color=i) for i in range(3)]
    nodes += [node(3 + i, 0.0, cpu=1.5 if i == 1 else 0.0, backward=True, color=i) for i in range(3)]
    edges = [Edge(0, 3, 0.5), Edge(1, 4, 0.0), Edge(2, 5, 0.5)]
    w = Workload(Graph(nodes, edges), (DeviceClass("accelerator", 1, 0.0), DeviceClass("cpu", 1, math.inf)))
    result = solve_dp(w, schedule="gpipe", microbatches=2, merge="none")
    assert result.max_load == 0.0 == brute_force_in_flight(w, "gpipe", 2)
