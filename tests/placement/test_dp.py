"""The DP over ideals: optimal among contiguous splits, and the paper's figures."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesim.placement import (
    ACCELERATOR,
    CPU,
    DeviceClass,
    Edge,
    Graph,
    Node,
    Workload,
    paper_devices,
)
from pipesim.placement.evaluate import evaluate
from pipesim.placement.dp.solve import solve_dp
from pipesim.placement.formats import read_paper_workload
from pipesim.placement.dp.ideals import IdealLimitError
from pipesim.placement.result import FEASIBLE, INFEASIBLE, OPTIMAL
from tests.strategies import brute_force_optimum, node, workloads


def check(workload):
    result = solve_dp(workload)
    best = brute_force_optimum(workload)
    if math.isinf(best):
        assert result.status == INFEASIBLE and result.evaluation is None
        return
    assert result.status == OPTIMAL
    assert result.max_load == pytest.approx(best, rel=1e-9, abs=1e-12)
    ev = evaluate(workload.graph, workload.devices, result.evaluation.split)
    assert ev.feasible and ev.contiguous and ev.max_load == result.max_load


@given(workloads(max_nodes=5, max_accelerators=2, max_cpus=1))
def test_dp_equals_exhaustive_search(workload):
    check(workload)


@settings(max_examples=25)
@given(workloads(max_nodes=4, max_accelerators=4, max_cpus=2, training=True))
def test_dp_equals_exhaustive_search_training_more_devices(workload):
    check(workload)


@st.composite
def heterogeneous(draw):
    """Three device classes with their own times, transfers, memory and counts."""
    n = draw(st.integers(1, 5))
    edges = [(i, j) for j in range(n) for i in range(j) if draw(st.booleans())]
    nodes = []
    for i in range(n):
        base = draw(st.sampled_from([0.0, 1.0, 2.0, 4.0]))
        time = {"a100": base, "v100": base * 2, "cpu": base * draw(st.sampled_from([5.0, 20.0]))}
        if draw(st.integers(0, 5)) == 0:
            del time["v100"]  # a kernel the V100 lacks
        link = draw(st.sampled_from([0.0, 0.5, 1.0]))
        nodes.append(Node(i, time, memory=draw(st.sampled_from([0.0, 1.0, 2.0])),
                          transfer={"a100": link, "v100": link * 2}))
    devices = (
        DeviceClass("a100", draw(st.integers(0, 2)), draw(st.sampled_from([2.0, math.inf]))),
        DeviceClass("v100", draw(st.integers(0, 2)), draw(st.sampled_from([1.0, 3.0]))),
        DeviceClass("cpu", draw(st.integers(0, 1))),
    )
    return Workload(Graph(nodes, [Edge(i, j) for i, j in edges]), devices)


@settings(max_examples=40)
@given(heterogeneous())
def test_dp_with_three_device_classes(workload):
    check(workload)


def test_two_classes_named_differently_give_the_paper_result(shared_workloads):
    """docs/model.md §5.1: the paper's two classes are a special case of the general model."""
    w = read_paper_workload(shared_workloads / "throughput/LayerGraphs/bert24_training.json")
    rename = {ACCELERATOR: "fpga", CPU: "host"}
    nodes = [
        Node(v.id, {rename[k]: t for k, t in v.time.items()}, v.memory,
             frozenset(rename[k] for k in v.unsupported), {rename[k]: t for k, t in v.transfer.items()},
             v.is_backward, v.color_class)
        for v in w.graph.nodes.values()
    ]
    devices = tuple(DeviceClass(rename[d.name], d.count, d.memory) for d in w.devices)
    renamed = Workload(Graph(nodes, w.graph.edges), devices)
    assert solve_dp(renamed).max_load == pytest.approx(41.7458125, rel=1e-12)


PAPER = {
    "bert24_inference": 17.78990625,
    "bert24_training": 41.7458125,
    "gnmt_inference": 32.910658203125,
    "gnmt_training": 107.0044140625,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAPER))
def test_spec_reference_figures(shared_workloads, name):
    w = read_paper_workload(shared_workloads / "throughput/LayerGraphs" / f"{name}.json")
    result = solve_dp(w)
    assert result.status == OPTIMAL
    assert result.max_load == pytest.approx(PAPER[name], rel=1e-6)
    assert result.evaluation.contiguous and result.evaluation.feasible


def test_exact_merging_when_memory_binds(shared_workloads):
    """docs/model.md §3 step 4: the paper's merging returns 56.55 here; the optimum is 18.03."""
    w = read_paper_workload(shared_workloads / "throughput/LayerGraphs/bert24_inference.json")
    tight = w.with_devices(accelerator={"memory": 0.19 * w.graph.total_memory})
    exact = solve_dp(tight)
    assert exact.status == OPTIMAL and exact.max_load == pytest.approx(18.03, abs=0.005)
    paper = solve_dp(tight, merge="paper")
    assert paper.status == FEASIBLE and paper.max_load == pytest.approx(56.55, abs=0.005)
    assert solve_dp(tight, merge="none").max_load == pytest.approx(exact.max_load)


def test_infeasible_memory_is_reported():
    g = Graph([node(1, 1.0, memory=5.0, transfer=1.0), node(2, 1.0, memory=5.0)], [Edge(1, 2)])
    result = solve_dp(Workload(g, paper_devices(2, 0, 4.0)))
    assert result.status == INFEASIBLE and result.evaluation is None
    assert "memory" in result.message


def test_ideal_limit_names_the_count():
    g = Graph([node(i, 1.0) for i in range(12)], [])  # 2^12 ideals
    with pytest.raises(IdealLimitError, match="more than 100 ideals"):
        solve_dp(Workload(g, paper_devices(2, 1, math.inf)), ideal_limit=100)


def test_stats_report_the_work():
    g = Graph([node(i, 1.0 + i, transfer=0.5) for i in range(4)], [Edge(0, 1), Edge(1, 2), Edge(2, 3)])
    result = solve_dp(Workload(g, paper_devices(2, 0, math.inf)))
    assert result.stats["ideals"] == 5 and result.stats["ideal_pairs"] > 0
    # chain 1, 2, 3, 4 on two devices: {0, 1, 2} | {3} costs max(6 + 0.5, 4 + 0.5)
    assert result.max_load == pytest.approx(6.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert24_training", "resnet50_inference"])
def test_exact_merging_loses_nothing_on_paper_graphs(shared_workloads, name):
    """With memory binding, merging exactly must give the unmerged optimum; devices only help."""
    w = read_paper_workload(shared_workloads / "throughput/LayerGraphs" / f"{name}.json")
    total = w.graph.total_memory
    previous = math.inf
    for fraction in (0.15, 0.25, 0.5):
        for k in (2, 4):
            variant = w.with_devices(accelerator={"memory": fraction * total, "count": k})
            exact, unmerged = solve_dp(variant), solve_dp(variant, merge="none")
            assert exact.status == unmerged.status
            assert exact.max_load == pytest.approx(unmerged.max_load, rel=1e-9)
        assert exact.max_load <= previous * (1 + 1e-12)  # more memory never hurts
        previous = exact.max_load
    more = [solve_dp(w.with_devices(accelerator={"count": k}, cpu={"count": c})).max_load
            for k in (1, 3, 6) for c in (0, 2)]
    assert all(a >= b - 1e-9 for a, b in zip(more[::2], more[1::2]))  # a CPU core never hurts
    assert more[0] >= more[2] >= more[4]


def test_a_one_order_split_meeting_the_lower_bound_skips_the_full_dp():
    # one node dominates and transfers cost nothing: the best split along the topological
    # order already meets the lower bound, so it is optimal without the full DP
    g = Graph([node(0, 9.0, transfer=0.0), node(1, 1.0, transfer=0.0), node(2, 1.0)], [Edge(0, 1), Edge(1, 2)])
    result = solve_dp(Workload(g, paper_devices(3, 0, math.inf)))
    assert result.status == OPTIMAL and result.max_load == pytest.approx(9.0)
    assert result.stats["lower_bound"] == pytest.approx(9.0) and result.stats["ideal_pairs"] == 0
    assert result.evaluation.feasible and result.evaluation.contiguous
