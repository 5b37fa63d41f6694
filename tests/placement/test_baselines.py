"""The paper's baselines: valid splits, never better than the DP when contiguous, reproducible."""

import json
import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipesim.placement import (
    ACCELERATOR,
    CPU,
    Edge,
    Graph,
    Split,
    Workload,
    paper_devices,
    read_paper_workload,
    read_split,
)
from pipesim.placement.evaluate import evaluate
from pipesim.placement.baselines import (
    solve_expert,
    solve_local_search,
    solve_partitioner,
    solve_pipedream,
    solve_single,
)
from pipesim.placement.baselines.local_search import LoadState
from pipesim.placement.baselines.pipedream import chain_constraints
from pipesim.placement.baselines.units import devices_of, units_of
from pipesim.placement.dp.solve import solve_dp
from pipesim.placement.result import FEASIBLE, INFEASIBLE, OPTIMAL, TIME_LIMIT
from tests.strategies import node, workloads

TOL = 1e-9

# docs/model.md §8: the optimal contiguous max-load of the paper's own implementation.
OPTIMA = {
    "bert24_inference": 17.78990625,
    "bert24_training": 41.7458125,
    "gnmt_inference": 32.910658203125,
    "gnmt_training": 107.0044140625,
}
LAYER_GRAPHS = ["bert24_inference", "bert24_training", "gnmt_inference", "gnmt_training",
                "inceptionv3_inference", "inceptionv3_training", "resnet50_inference", "resnet50_training"]


def heuristics(workload):
    """Every baseline that needs no input beyond the workload (local search kept short)."""
    return [
        solve_pipedream(workload),
        solve_local_search(workload, restarts=2, seed=1),
        solve_partitioner(workload, seed=1),
        solve_single(workload),
    ]


def check_valid(result):
    """A result's status agrees with the evaluator, and a feasible split has no violation."""
    assert result.status in (FEASIBLE, INFEASIBLE, OPTIMAL, TIME_LIMIT)
    if result.status == INFEASIBLE:
        assert result.evaluation is None or result.evaluation.violations
    else:
        assert result.evaluation is not None and result.evaluation.feasible, result.evaluation.violations


def fits_anywhere(workload):
    """Unlimited memory, and every node runs on some device that exists."""
    present = {dc.name for dc in workload.devices if dc.count > 0}
    return math.isinf(workload.devices[0].memory) and all(
        any(n.supports(c) for c in present) for n in workload.graph.nodes.values()
    )


# ------------------------------------------------------------------ random DAGs
@pytest.mark.slow
@given(workloads())
def test_baselines_valid_and_contiguous_ones_never_beat_dp(workload):
    optimum = solve_dp(workload)
    for result in heuristics(workload):
        check_valid(result)
        ev = result.evaluation
        if optimum.status == OPTIMAL and ev is not None and ev.feasible and ev.contiguous:
            assert ev.max_load >= optimum.max_load - TOL, result.method
    # PipeDream's split is always contiguous; the others are feasible whenever nothing can bind.
    pipedream = heuristics(workload)[0]
    assert pipedream.evaluation is None or pipedream.evaluation.contiguous
    if fits_anywhere(workload):
        assert solve_local_search(workload, restarts=2).status == FEASIBLE
        assert solve_partitioner(workload).status == FEASIBLE


@settings(max_examples=30)
@given(workloads(max_nodes=7), st.integers(0, 2**31))
def test_incremental_loads_equal_the_evaluator(workload, seed):
    rng = random.Random(seed)
    devices = devices_of(workload)
    assume(devices)
    units = units_of(workload.graph, [dc.name for dc in workload.devices])
    state = LoadState(workload, units, devices, [rng.randrange(len(devices)) for _ in units])
    counts = {dc.name: dc.count for dc in workload.devices}
    for _ in range(6):
        state.move(rng.randrange(len(units)), rng.randrange(len(devices)))
        placement = {v: devices[state.where[u]] for u, unit in enumerate(units) for v in unit.nodes}
        ev = evaluate(workload.graph, workload.devices, Split.from_mapping(placement, counts))
        expected = {(d.device_class, d.index): (d.load, d.memory) for d in ev.devices}
        for d, device in enumerate(devices):
            assert state.load[d] == pytest.approx(expected[device][0], abs=1e-9)
            assert state.memory[d] == pytest.approx(expected[device][1], abs=1e-9)


@settings(max_examples=20)
@given(workloads(), st.integers(0, 1000))
def test_seeded_runs_repeat_exactly(workload, seed):
    a = solve_local_search(workload, restarts=3, seed=seed)
    b = solve_local_search(workload, restarts=3, seed=seed)
    assert a.evaluation.split == b.evaluation.split
    assert solve_partitioner(workload, seed=seed).evaluation.split == solve_partitioner(workload, seed=seed).evaluation.split


# ------------------------------------------------------------------ small cases
def diamond_chain():
    """a -> {b, c} -> d -> e: one fork-join block, then a chain edge."""
    nodes = [node(i, acc=1.0, transfer=0.5) for i in range(5)]
    edges = [Edge(0, 1), Edge(0, 2), Edge(1, 3), Edge(2, 3), Edge(3, 4)]
    return Workload(Graph(nodes, edges), paper_devices(4, 0, math.inf))


def test_pipedream_fuses_the_tails_of_a_fork_join_block_and_linearises():
    graph = diamond_chain().graph
    fuse, order = chain_constraints(graph)
    assert [sorted(g) for g in fuse] == [[0, 1, 2]]  # d (3) starts the next block: left free
    assert order == [(0, 3), (3, 4)]
    result = solve_pipedream(diamond_chain())
    groups = sorted(sorted(d.nodes) for d in result.evaluation.devices if d.nodes)
    assert groups[0] == [0, 1, 2] and [3] in groups or [3, 4] in groups
    # The block pays its compute (3) and sends b's and c's outputs (0.5 each).
    assert result.max_load == pytest.approx(4.0)
    assert result.evaluation.contiguous and result.status == FEASIBLE


def test_pipedream_ignored_sources_keep_their_consumers_apart():
    # A zero-work input (0) feeding every layer of a chain 1 -> 2 -> 3 makes one block of 0, 1, 2
    # (its tails); that device computes 2 and sends 2's output (0.1)...
    nodes = [node(0, acc=0.0, transfer=0.0)] + [node(i, acc=1.0, transfer=0.1) for i in (1, 2, 3)]
    edges = [Edge(0, 1), Edge(0, 2), Edge(0, 3), Edge(1, 2), Edge(2, 3)]
    workload = Workload(Graph(nodes, edges), paper_devices(3, 0, math.inf))
    assert solve_pipedream(workload).max_load == pytest.approx(2.1)
    # ...unless PipeDream ignores it, as the paper does for such inputs.
    assert solve_pipedream(workload, ignore_sources=[0]).max_load == pytest.approx(solve_dp(workload).max_load)


def test_local_search_respects_memory():
    nodes = [node(i, acc=1.0, memory=1.0, transfer=0.0) for i in range(4)]
    workload = Workload(Graph(nodes, []), paper_devices(2, 0, 2.0))
    result = solve_local_search(workload, restarts=3, seed=5)
    assert result.status == FEASIBLE and result.max_load == pytest.approx(2.0)
    assert all(d.memory <= 2.0 for d in result.evaluation.devices)


def test_partitioner_sends_unsupported_classes_to_cpus_and_repairs_memory():
    nodes = [node(0, acc=1.0, memory=3.0, transfer=0.1), node(1, acc=1.0, cpu=2.0, supported=False, transfer=0.1),
             node(2, acc=1.0, memory=3.0, transfer=0.1), node(3, acc=1.0, memory=3.0)]
    edges = [Edge(0, 1), Edge(1, 2), Edge(2, 3)]
    workload = Workload(Graph(nodes, edges), paper_devices(2, 1, 6.0))
    result = solve_partitioner(workload)
    assert result.status == FEASIBLE
    (cpu,) = [d for d in result.evaluation.devices if d.device_class == CPU]
    assert 1 in cpu.nodes


def test_single_reports_the_load_even_when_it_does_not_fit():
    nodes = [node(0, acc=1.0, memory=3.0, transfer=0.5), node(1, acc=2.0, memory=3.0)]
    workload = Workload(Graph(nodes, [Edge(0, 1)]), paper_devices(2, 1, 4.0))
    result = solve_single(workload)
    assert result.status == INFEASIBLE and result.max_load == pytest.approx(3.0)
    assert "memory" in result.message


# ------------------------------------------------------------------ paper workloads
@pytest.mark.parametrize("name", LAYER_GRAPHS)
def test_baselines_on_paper_layer_graphs(shared_workloads, name):
    workload = read_paper_workload(shared_workloads / "throughput/LayerGraphs" / f"{name}.json")
    for result in (solve_pipedream(workload), solve_partitioner(workload)):
        check_valid(result)
        assert result.status == FEASIBLE
        if name in OPTIMA and result.evaluation.contiguous:
            assert result.max_load >= OPTIMA[name] - 1e-6
    pipedream = solve_pipedream(workload)
    assert pipedream.evaluation.contiguous


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert24_inference", "gnmt_training", "resnet50_inference"])
def test_local_search_on_paper_layer_graphs(shared_workloads, name):
    workload = read_paper_workload(shared_workloads / "throughput/LayerGraphs" / f"{name}.json")
    result = solve_local_search(workload, restarts=1, seed=0)
    check_valid(result)
    assert result.status == FEASIBLE
    assert result.max_load < solve_single(workload).max_load


def test_single_is_the_total_accelerator_time_on_paper_workloads(shared_workloads):
    # The operator-level training graphs take seconds each to load: the benchmark covers them.
    for path in sorted(shared_workloads.glob("*/*/*inference.json")) + sorted(shared_workloads.glob("*/Layer*/*.json")):
        data = json.loads(path.read_text())
        result = solve_single(read_paper_workload(path))
        assert result.max_load == pytest.approx(sum(n["fpgaLatency"] for n in data["nodes"]), rel=1e-12), path
        fits = sum(n.get("size", 0.0) for n in data["nodes"]) <= data["maxSizePerFPGA"]
        assert (result.status == FEASIBLE) == fits, path


@pytest.mark.parametrize("workload_name, split_name", [("bert24_training", "bert24_training"),
                                                       ("resnet50_training", "resnet50_inference")])
def test_expert_splits_scored_as_given(shared_workloads, workload_name, split_name):
    workload = read_paper_workload(shared_workloads / "throughput/LayerGraphs" / f"{workload_name}.json")
    path = shared_workloads / "expert-splits" / f"{split_name}_expert.json"
    result = solve_expert(workload, split=path)
    check_valid(result)
    assert result.max_load == evaluate(workload.graph, workload.devices, read_split(path)).max_load
    if workload_name in OPTIMA and result.evaluation.contiguous:
        assert result.max_load >= OPTIMA[workload_name]
    assert ACCELERATOR in result.evaluation.split.assignment
