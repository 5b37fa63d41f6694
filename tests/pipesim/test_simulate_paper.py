"""On the paper's workloads, paper-mode simulation reproduces the evaluator's max-load (docs/model.md §6.5).

Expert splits (contiguous) and the DP's optimal split
of every throughput LayerGraphs workload: inference streams, training runs
asynchronous 1F1B; the steady-state time-per-sample must equal the predicted
max-load within 0.5%.
"""

import pytest

from pipesim.placement import read_paper_workload, read_split
from pipesim.placement.dp.solve import solve_dp
from pipesim.simulation import simulate
from tests.placement.test_expert_splits import PAIRS as EXPERT

LAYER_GRAPHS = [w for w, _ in EXPERT]


def schedules(workload):
    return ("stream", "1f1b") if workload.graph.is_training else ("stream",)


def assert_agrees(workload, split):
    for schedule in schedules(workload):
        result = simulate(workload, split, schedule=schedule, comm="paper")
        assert result.evaluation.contiguous
        assert result.simulated_time_per_sample == pytest.approx(result.predicted_time_per_sample, rel=5e-3), schedule


@pytest.mark.parametrize("name, split_name", EXPERT)
def test_expert_split_simulates_to_its_max_load(shared_workloads, name, split_name):
    workload = read_paper_workload(shared_workloads / "throughput/LayerGraphs" / f"{name}.json")
    assert_agrees(workload, read_split(shared_workloads / "expert-splits" / f"{split_name}_expert.json"))


@pytest.mark.slow
@pytest.mark.parametrize("name", LAYER_GRAPHS)
def test_dp_split_simulates_to_its_max_load(shared_workloads, name):
    workload = read_paper_workload(shared_workloads / "throughput/LayerGraphs" / f"{name}.json")
    assert_agrees(workload, solve_dp(workload).evaluation.split)
