"""The plan simulator against the flush model: equal without contention, contention shown with it."""

from __future__ import annotations

import pytest
from pipesim.hardware.clusters import load_cluster
from pipesim.placement.plan.solve import plan
from pipesim.placement.plan.flush import Geometry, evaluate_flush_plan
from pipesim.placement.plan.result import PlanStage
from pipesim.placement.plan.workload import Configuration, Layer, LayerEdge, PlanningWorkload
from pipesim.simulation.plan_sim import simulate_plan
from pipesim.workloads.models import build_model
from pipesim.workloads.planning import planning_workload


def _chain(n, N, edge=4.0, params=16.0):
    c = Configuration("vanilla", time=3.0, parameters=params, memory_a=1.0, memory_b=2.0)
    return PlanningWorkload(tuple(Layer(i, {1: (c,), 2: (c,)}) for i in range(n)),
                            tuple(LayerEdge(i, i + 1, edge) for i in range(n - 1)),
                            devices=16, memory=1e9, bandwidth=1.0, microbatches=N)


@pytest.mark.parametrize("d", [1, 2, 4])
def test_equal_stages_match_the_model(d):
    """Four equal stages in four nodes: rings inside a node (d ≤ 4) — the model is exact."""
    w = _chain(4, 16, edge=0.0)
    g = Geometry(16, 4, fabric=8.0, network=2.0)
    stages = [PlanStage((v,), 1, d, {v: "vanilla"}, devices=tuple(range(4 * v, 4 * v + d))) for v in range(4)]
    p = evaluate_flush_plan(w, stages, g)
    sim = simulate_plan(w, p, g)
    assert sim.simulated_iteration_time == pytest.approx(p.iteration_time, rel=1e-9)
    assert sim.simulated_memory == pytest.approx(sim.predicted_memory)
    assert sim.simulated_allreduce == pytest.approx(sim.predicted_allreduce)


def test_transfers_make_stages_unequal_and_the_model_an_upper_bound():
    """With transfers the end stages are shorter than the middle ones: 1F1B then beats Σ + (m−1)·max a little."""
    w = _chain(4, 16, edge=4.0)
    g = Geometry(16, 4, fabric=8.0, network=2.0)
    stages = [PlanStage((v,), 1, 2, {v: "vanilla"}, devices=(4 * v, 4 * v + 1)) for v in range(4)]
    p = evaluate_flush_plan(w, stages, g)
    sim = simulate_plan(w, p, g)
    assert p.iteration_time * 0.95 <= sim.simulated_iteration_time <= p.iteration_time


@pytest.mark.slow
def test_a_planned_gpt_matches_within_two_percent():
    cluster = load_cluster("dgx-a100x4")
    ops = build_model("transformer", layers=8, hidden=1024, heads=16, seq=1024, decoder=True, vocab=32000)
    w = planning_workload(ops, cluster, microbatches=16)
    p = plan(w, hardware=cluster, objective="flush", devices=16)
    sim = simulate_plan(w.with_limits(devices=16), p, Geometry.of(cluster, 16))
    assert abs(sim.difference) <= 0.02
    assert max(sim.simulated_memory) <= w.memory


def test_shared_adapters_show_contention():
    """Two stages whose rings both cross nodes on adapters their node's devices share: they queue."""
    w = _chain(2, 8, edge=0.0, params=64.0)
    shared = Geometry(16, 8, fabric=100.0, network=1.0, nic_shared=True)
    own = Geometry(16, 8, fabric=100.0, network=1.0, nic_shared=False)
    # each stage: 2 replicas, one in node 0, one in node 1
    stages = [PlanStage((0,), 1, 2, {0: "vanilla"}, devices=(0, 8)), PlanStage((1,), 1, 2, {1: "vanilla"}, devices=(1, 9))]
    alone = simulate_plan(w, evaluate_flush_plan(w, stages, own), own)
    assert alone.simulated_iteration_time == pytest.approx(alone.predicted_iteration_time)
    queued = simulate_plan(w, evaluate_flush_plan(w, stages, shared), shared)
    # the model prices each device's share of the adapter (1/8 of it) as if all eight sent: only two do
    assert queued.simulated_iteration_time < queued.predicted_iteration_time
    assert queued.contention
    assert max(queued.simulated_allreduce) > min(queued.simulated_allreduce) or queued.simulated_allreduce[0] > 0


@pytest.mark.slow
def test_sweep_draws_the_planner_beside_the_baselines(tmp_path):
    from pipesim.plan_sweep import PLANNERS, plan_sweep, write_sweep_plot

    cluster = load_cluster("dgx-a100x4")
    ops = build_model("transformer", layers=4, hidden=512, heads=8, seq=256, decoder=True, vocab=8000)
    w = planning_workload(ops, cluster, microbatches=8)
    points = plan_sweep(w, cluster, [2, 8])
    assert [(p.devices, p.planner) for p in points] == [(k, name) for k in (2, 8) for name in PLANNERS]
    by = {(p.devices, p.planner): p.throughput for p in points}
    for k in (2, 8):  # the planner's space holds both baselines' plans (packing aside): never slower
        assert by[k, "plan"] >= by[k, "pipeline DP (t=d=1)"] * (1 - 1e-9)
        assert by[k, "pipeline DP (t=d=1)"] >= by[k, "equal split"] * (1 - 1e-9)
    write_sweep_plot(points, tmp_path / "s.png", "sweep")
    assert (tmp_path / "s.png").stat().st_size > 0


@pytest.mark.slow
def test_cli_plans_a_scenario_and_sweeps(tmp_path, capsys):
    import json
    from pathlib import Path

    from pipesim.cli import main

    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "mixed-cluster.yaml"
    assert main(["plan", str(scenario), "--objective", "flush", "--microbatches", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["objective"] == "flush" and out["iteration_time"] > 0 and out["status"] == "optimal"
    assert main(["plan", str(scenario), "--hardware", "dgx-a100x4", "--sweep", "2,4", "--plot", str(tmp_path / "p.png"),
                 "--microbatches", "8", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["points"]) == 6 and (tmp_path / "p.png").is_file()


def test_busy_is_the_replicas_own_work_not_its_waits():
    """Uneven stages (one layer, then three): the short first stage waits for the long second one's
    backwards; its busy time is still its own work, N/d microbatches x its compute."""
    w = _chain(4, 16, edge=0.0)
    g = Geometry(16, 4, fabric=8.0, network=2.0)
    stages = [PlanStage((0,), 1, 1, {0: "vanilla"}, devices=(0,)),
              PlanStage((1, 2, 3), 1, 1, {v: "vanilla" for v in (1, 2, 3)}, devices=(4,))]
    p = evaluate_flush_plan(w, stages, g)
    sim = simulate_plan(w, p, g)
    assert sim.busy == pytest.approx([16 * st.compute for st in p.stages], rel=1e-9)
    assert sim.busy[0] < sim.busy[1] < sim.simulated_iteration_time


def test_busy_counts_sending_and_reading():
    """With transfers, busy adds the replica's reads and sends (the flush model's stage time)."""
    w = _chain(2, 8, edge=4.0)
    g = Geometry(16, 4, fabric=8.0, network=2.0)
    stages = [PlanStage((v,), 1, 1, {v: "vanilla"}, devices=(4 * v,)) for v in range(2)]
    p = evaluate_flush_plan(w, stages, g)
    sim = simulate_plan(w, p, g)
    assert sim.busy == pytest.approx([8 * (st.compute + st.communication) for st in p.stages], rel=1e-9)
