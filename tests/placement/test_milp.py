"""The throughput IP (placement/milp.py) against brute force, the DP and hand-made cases."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings

from pipesim.placement.devices import CPU, DeviceClass, paper_devices
from pipesim.placement.dp.solve import solve_dp
from pipesim.placement.evaluate import evaluate
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.milp import solve_ip
from pipesim.placement.result import INFEASIBLE, OPTIMAL
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from tests.strategies import node, workloads

small = workloads(max_nodes=5, max_accelerators=2, max_cpus=1)


def brute_force(workload: Workload, contiguous: bool) -> float:
    """The least max-load over every placement of colour classes on devices (inf if none is feasible)."""
    graph = workload.graph
    devices = [(dc.name, i) for dc in workload.devices for i in range(dc.count)]
    classes = list(graph.color_classes.values())
    best = math.inf
    for choice in itertools.product(devices, repeat=len(classes)):
        mapping = {v: d for members, d in zip(classes, choice) for v in members}
        evaluation = evaluate(graph, workload.devices, Split.from_mapping(mapping, {dc.name: dc.count for dc in workload.devices}))
        if evaluation.feasible and (evaluation.contiguous or not contiguous):
            best = min(best, evaluation.max_load)
    return best


def check_against(result, expected: float) -> None:
    if math.isinf(expected):
        assert result.status == INFEASIBLE and result.message
    else:
        assert result.status == OPTIMAL
        assert result.max_load == pytest.approx(expected, rel=1e-6, abs=1e-6)
        assert result.gap is not None and result.gap < 1e-6


@pytest.mark.slow
@settings(max_examples=60)
@given(small)
def test_contiguous_ip_equals_brute_force(workload):
    result = solve_ip(workload)
    check_against(result, brute_force(workload, contiguous=True))
    if result.evaluation is not None:
        assert result.evaluation.contiguous and result.evaluation.feasible


@pytest.mark.slow
@settings(max_examples=40)
@given(small)
def test_noncontiguous_ip_equals_brute_force_and_is_no_worse(workload):
    free = solve_ip(workload, contiguous=False)
    check_against(free, brute_force(workload, contiguous=False))
    if free.status == OPTIMAL:
        assert free.max_load <= solve_ip(workload).max_load + 1e-6


@pytest.mark.slow
@settings(max_examples=40)
@given(workloads(max_nodes=6))
def test_contiguous_ip_equals_dp(workload):
    expected = solve_dp(workload)
    result = solve_ip(workload, warm_start=expected.evaluation.split if expected.evaluation else None)
    if expected.status == INFEASIBLE:
        assert result.status == INFEASIBLE
    else:
        assert result.status == OPTIMAL
        assert result.max_load == pytest.approx(expected.max_load, rel=1e-6, abs=1e-6)


def chain(n=4, memory=1.0):
    nodes = [node(i, acc=1.0 + i, cpu=10.0, memory=memory, transfer=0.5) for i in range(n)]
    return Graph(nodes, [Edge(i, i + 1) for i in range(n - 1)])


def test_cbc_agrees_with_highs_and_uses_a_warm_start():
    workload = Workload(chain(), paper_devices(2, 1, math.inf))
    highs = solve_ip(workload, solver="highs")
    cbc = solve_ip(workload, solver="cbc", warm_start=highs.evaluation.split)
    assert cbc.status == highs.status == OPTIMAL
    assert cbc.max_load == pytest.approx(highs.max_load)
    assert cbc.stats["warm_start"] is True
    # by hand: {0,1,2} | {3}: 1+2+3 + send 0.5 = 6.5 against 4 + receive 0.5 = 4.5
    assert highs.max_load == pytest.approx(6.5)


def test_infeasible_memory_is_reported_clearly():
    workload = Workload(chain(memory=3.0), paper_devices(2, 0, 5.0))  # 12 bytes, room for 10
    result = solve_ip(workload)
    assert result.status == INFEASIBLE and result.evaluation is None
    assert "memory" in result.message
    too_big = Workload(chain(memory=6.0), paper_devices(2, 0, 5.0))
    result = solve_ip(too_big)
    assert result.status == INFEASIBLE and "no device can hold nodes [0]" in result.message


@pytest.mark.slow
def test_three_device_classes_match_brute_force():
    nodes = [
        Node(i, time={"gpu": 1.0 + i, "tpu": 4.0 - i, CPU: 20.0}, memory=1.0, transfer={"gpu": 0.5, "tpu": 0.25})
        for i in range(5)
    ]
    graph = Graph(nodes, [Edge(0, 1), Edge(1, 2), Edge(0, 3), Edge(3, 4), Edge(2, 4)])
    workload = Workload(graph, (DeviceClass("gpu", 2, 3.0), DeviceClass("tpu", 1, 2.0), DeviceClass(CPU, 1)))
    for contiguous in (True, False):
        check_against(solve_ip(workload, contiguous=contiguous), brute_force(workload, contiguous))


def test_devices_feeding_each_other_in_a_cycle_are_not_a_pipeline():
    # a -> d and c -> b with colour classes {a, b} and {c, d}: the two devices would each be
    # contiguous, yet feed each other.  The paper's IP accepts that split (load 2 each); as a
    # pipeline the only choice is one device (load 4).
    nodes = [node(i, acc=1.0, cpu=100.0, transfer=0.0, color=i // 2) for i in range(4)]
    graph = Graph(nodes, [Edge(0, 3), Edge(2, 1)])
    workload = Workload(graph, paper_devices(2, 0, math.inf))
    assert solve_ip(workload, contiguous=False).max_load == pytest.approx(2.0)
    result = solve_ip(workload)
    assert result.stats["stage_cycle"] and result.evaluation.contiguous
    assert result.max_load == pytest.approx(4.0) == brute_force(workload, True)


def test_diff_maxima_objective_bounds_the_max_load():
    nodes = [node(i, acc=1.0 + i, transfer=0.5, color=i % 3) for i in range(3)]
    nodes += [node(3 + i, acc=2.0, transfer=0.25, backward=True, color=i) for i in range(3)]
    edges = [Edge(0, 1), Edge(1, 2), Edge(2, 5), Edge(5, 4), Edge(4, 3), Edge(0, 3), Edge(1, 4)]
    workload = Workload(Graph(nodes, edges), paper_devices(2, 0, math.inf))
    plain = solve_ip(workload)
    diff = solve_ip(workload, objective="diffmaxima")
    assert diff.status == OPTIMAL and diff.bound is None
    assert plain.max_load <= diff.max_load + 1e-9 <= diff.stats["diff_maxima"] + 1e-6
