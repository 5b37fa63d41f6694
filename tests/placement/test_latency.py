"""Latency of a split, the latency greedy and the latency IP (placement/latency.py)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings

from pipesim.placement.devices import ACCELERATOR, CPU, DeviceClass, paper_devices
from pipesim.placement.formats import InputError
from pipesim.placement.graph import Edge, Graph
from pipesim.placement.latency import (
    contiguous_pieces,
    latency_of_split,
    solve_latency_greedy,
    solve_latency_ip,
)
from pipesim.placement.result import INFEASIBLE, OPTIMAL
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from tests.strategies import node, workloads

inference = workloads(max_nodes=5, training=False, max_accelerators=2)


def chain_workload(accelerators=1, memory=math.inf):
    """a -> b -> c: acc times 1, 2, 4; cpu times 3, 6, 12; transfers 0.5, 0.25, -."""
    nodes = [node(0, acc=1.0, cpu=3.0, transfer=0.5), node(1, acc=2.0, cpu=6.0, transfer=0.25), node(2, acc=4.0, cpu=12.0)]
    return Workload(Graph(nodes, [Edge(0, 1), Edge(1, 2)]), paper_devices(accelerators, 1, memory))


def test_latency_of_a_split_by_hand():
    workload = chain_workload()
    # a on CPU (3), b on the accelerator (receive 0.5 + 2 + send 0.25), c on CPU (12)
    split = Split.from_lists({ACCELERATOR: [[1]], CPU: [[0, 2]]})
    assert latency_of_split(workload, split).latency == pytest.approx(3 + 0.5 + 2 + 0.25 + 12)
    # all on the accelerator: no transfer at all
    assert latency_of_split(workload, Split.from_lists({ACCELERATOR: [[0, 1, 2]]})).latency == pytest.approx(7)


def test_a_non_contiguous_set_is_cut_into_pieces_that_run_in_order():
    workload = chain_workload()
    split = Split.from_lists({ACCELERATOR: [[0, 2]], CPU: [[1]]})
    assert contiguous_pieces(workload.graph, frozenset({0, 2})) == [frozenset({0}), frozenset({2})]
    schedule = latency_of_split(workload, split)
    # piece {a}: 1 + send 0.5 = 1.5; b on CPU: 1.5 + 6 = 7.5; piece {c}: receive 0.25 + 4 -> 11.75
    assert [p.nodes for p in schedule.pieces] == [(0,), (2,)]
    assert schedule.pieces[1].start == pytest.approx(7.5)
    assert schedule.latency == pytest.approx(11.75)


def brute_force_latency(workload: Workload, q: int = 1) -> float:
    """The least latency over placements whose device sets are contiguous (q = 1)."""
    graph = workload.graph
    accelerators = [(dc.name, i) for dc in workload.devices if dc.name != CPU for i in range(dc.count)]
    best = math.inf
    ids = list(graph.nodes)
    for choice in itertools.product([None] + accelerators, repeat=len(ids)):
        lists = {dc.name: [[] for _ in range(dc.count)] for dc in workload.devices if dc.name != CPU}
        lists[CPU] = [[v for v, d in zip(ids, choice) if d is None]]
        for v, d in zip(ids, choice):
            if d is not None:
                lists[d[0]][d[1]].append(v)
        schedule = latency_of_split(workload, Split.from_lists(lists))
        counts = [sum(1 for p in schedule.pieces if p.index == i) for i in range(len(lists[ACCELERATOR]))]
        if schedule.feasible and max(counts, default=0) <= q:
            best = min(best, schedule.latency)
    return best


@pytest.mark.slow
@settings(max_examples=40)
@given(inference)
def test_latency_ip_is_optimal_and_no_worse_than_greedy(workload):
    greedy = solve_latency_greedy(workload)
    ip = solve_latency_ip(workload)
    expected = brute_force_latency(workload)
    if math.isinf(expected):
        assert ip.status == greedy.status == INFEASIBLE
        return
    assert ip.status == OPTIMAL
    assert ip.latency == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert ip.latency <= greedy.latency + 1e-6
    assert ip.to_dict()["latency"] == ip.latency


@pytest.mark.slow
@settings(max_examples=15)
@given(inference)
def test_more_pieces_per_device_never_hurt(workload):
    one, two = solve_latency_ip(workload, q=1), solve_latency_ip(workload, q=2)
    if one.status == OPTIMAL:
        assert two.status == OPTIMAL and two.latency <= one.latency + 1e-6


def test_q2_reuses_an_accelerator_around_a_cpu_node():
    # b must run on the CPU; a and c are slow on the CPU: one accelerator runs {a} then {c}
    nodes = [node(0, acc=1.0, cpu=30.0, transfer=0.5), node(1, acc=1.0, cpu=1.0, transfer=0.5, supported=False),
             node(2, acc=1.0, cpu=30.0)]
    workload = Workload(Graph(nodes, [Edge(0, 1), Edge(1, 2)]), paper_devices(1, 1, math.inf))
    one, two = solve_latency_ip(workload, q=1, solver="cbc"), solve_latency_ip(workload, q=2)
    assert two.latency == pytest.approx(1 + 0.5 + 1 + 0.5 + 1)
    assert one.latency == pytest.approx(1.5 + 1 + 30)
    assert len(two.to_dict()["pieces"]) == 2


def test_devices_feeding_each_other_in_a_cycle_are_cut_further():
    # a -> d, c -> b; {a, b} on one accelerator and {c, d} on the other: each set is contiguous
    # but neither can run as a whole before the other, so each is cut in two.
    nodes = [node(i, acc=1.0, cpu=100.0, transfer=0.5) for i in range(4)]
    workload = Workload(Graph(nodes, [Edge(0, 3), Edge(2, 1)]), paper_devices(2, 1, math.inf))
    schedule = latency_of_split(workload, Split.from_lists({ACCELERATOR: [[0, 1], [2, 3]]}))
    assert len(schedule.pieces) == 4
    # {a} and {c}: 1 + send 0.5 = 1.5; then {b} and {d}: start 1.5 + receive 0.5 + 1 = 3
    assert schedule.latency == pytest.approx(3.0)


def test_infeasible_memory_and_training_graphs():
    no_cpu = Workload(chain_workload().graph, (DeviceClass(ACCELERATOR, 1, 1.0),))
    heavy = Workload(Graph([node(0, acc=1.0, memory=2.0)], []), (DeviceClass(ACCELERATOR, 1, 1.0),))
    assert solve_latency_ip(heavy).status == INFEASIBLE
    assert solve_latency_greedy(heavy).status == INFEASIBLE
    assert solve_latency_ip(no_cpu).status == OPTIMAL  # everything fits on the one accelerator (no memory)
    training = Workload(
        Graph([node(0, acc=1.0, transfer=0.5), node(1, acc=1.0, backward=True)], [Edge(0, 1)]), paper_devices(1, 1, 1.0)
    )
    with pytest.raises(InputError, match="inference"):
        solve_latency_greedy(training)
