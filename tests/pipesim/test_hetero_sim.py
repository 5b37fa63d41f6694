"""The heterogeneous plan simulator against the §12.2 closed form; what-ifs; Gantt per GPU type (docs/model.md §12.6)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesim.cli import main
from pipesim.errors import InputError
from pipesim.placement.plan.hetero import ClusterNetwork, plan_hetero
from pipesim.placement.plan.sailor import estimate_sailor_plan, load_sailor_inputs, rebuild_time
from pipesim.placement.plan.sailor_format import SailorPipeline, SailorPlan, SailorReplica, read_sailor_plan
from pipesim.simulation.hetero_sim import WhatIf, draw_gantt, parse_whatif, simulate_hetero_plan
from tests.placement.test_hetero_plan import LAYERS, cluster, inputs
from tests.placement.test_sailor import tiny_inputs, tiny_plan
from tests.strategies import SHARED

SAILOR = SHARED.parent / "sailor"
RUNS = sorted((SAILOR / "validation" / "OPT-350").glob("*.json")) if SAILOR.is_dir() else []
F1 = SailorReplica("FAST", 2, "a", 1)
S1 = SailorReplica("SLOW", 2, "b", 1)


def two_stage(dp, first=(0, 1), gbs=8):
    rest = tuple(l for l in range(LAYERS) if l not in first)
    return SailorPlan((SailorPipeline((first, rest), ((F1,) * dp, (S1,) * dp)),), 1, gbs)


def test_one_stage_is_the_closed_form_exactly_and_a_straggler_scales_compute():
    inp = inputs([0.01, 0.02, 0.03, 0.04], [0.02] * LAYERS, gbs=8)
    cl = cluster(1, 0)
    plan = SailorPlan((SailorPipeline(((0, 1, 2, 3),), ((SailorReplica("FAST", 2, "a", 1),),)),), 1, 8)
    net = ClusterNetwork(cl)
    r = simulate_hetero_plan(plan, inp, net)
    assert r.simulated_iteration_time == pytest.approx(r.predicted_iteration_time, rel=1e-12)
    slow = simulate_hetero_plan(plan, inp, net, parse_whatif(["gpu:FAST=2"]))
    # no transfers, no ring: compute and optimizer both double
    assert slow.simulated_iteration_time == pytest.approx(2 * r.predicted_iteration_time, rel=1e-12)
    assert slow.simulated_without_whatif == pytest.approx(r.simulated_iteration_time)


@settings(max_examples=25, deadline=None)
@given(fast=st.lists(st.floats(0.001, 0.05), min_size=LAYERS, max_size=LAYERS), slow_factor=st.floats(1.0, 4.0),
       dp=st.integers(1, 2), cut=st.integers(1, LAYERS - 1), gbs=st.sampled_from([4, 8, 16]),
       cross_bw=st.sampled_from([0.1e9, 1e9, 20e9]))
def test_run_never_exceeds_the_closed_form_without_link_contention(fast, slow_factor, dp, cut, gbs, cross_bw):
    inp = inputs(fast, [x * slow_factor for x in fast], gbs=gbs)
    cl = cluster(2, 2, cross_bw, ("a", "b"))
    plan = two_stage(dp, tuple(range(cut)), gbs)
    r = simulate_hetero_plan(plan, inp, ClusterNetwork(cl), link_streams=dp)  # one channel per replica pair
    assert r.predicted_iteration_time == estimate_sailor_plan(plan, inp, network=ClusterNetwork(cl)).iteration_time
    assert r.simulated_iteration_time <= r.predicted_iteration_time * (1 + 1e-9)
    # fill and drain: the run cannot beat one microbatch through every stage plus the steady state of the slowest
    assert r.simulated_iteration_time >= 0.5 * r.predicted_iteration_time
    assert not r.link_wait or max(r.link_wait.values()) == pytest.approx(0.0, abs=1e-12)


def test_shared_zone_link_queues_and_a_slower_link_costs():
    inp = inputs([0.001] * LAYERS, [0.001] * LAYERS, gbs=16)
    cl = cluster(2, 2, 0.05e9, ("a", "b"))
    net = ClusterNetwork(cl)
    plan = two_stage(4, gbs=16)
    shared = simulate_hetero_plan(plan, inp, net, link_streams=1)
    own = simulate_hetero_plan(plan, inp, net, link_streams=4)
    assert shared.link_wait["a->b"] > 0  # four activation writes at once on one channel
    assert shared.simulated_iteration_time > own.simulated_iteration_time
    assert shared.simulated_iteration_time > shared.predicted_iteration_time  # contention the closed form omits
    slower = simulate_hetero_plan(plan, inp, net, parse_whatif(["link:a/b=3"]), link_streams=4)
    assert slower.simulated_iteration_time > 2 * own.simulated_iteration_time
    assert slower.whatif_slowdown > 2


def test_straggler_replica_slows_its_pipeline_only_as_much_as_it_binds():
    inp = inputs([0.01] * LAYERS, [0.01] * LAYERS, gbs=8)
    cl = cluster(2, 2, 20e9, ("a", "b"))
    plan = two_stage(2)
    net = ClusterNetwork(cl)
    base = simulate_hetero_plan(plan, inp, net, link_streams=2)
    one = simulate_hetero_plan(plan, inp, net, WhatIf(replica={(1, 0): 2.0}), link_streams=2)
    assert 1.3 < one.whatif_slowdown < 2.0 + 1e-9
    assert one.simulated_without_whatif == pytest.approx(base.simulated_iteration_time)
    with pytest.raises(InputError, match="replica:5.0"):
        simulate_hetero_plan(plan, inp, net, WhatIf(replica={(5, 0): 2.0}))


def test_uneven_replica_counts_and_bad_whatifs_are_input_errors():
    inp = inputs([0.01] * LAYERS, [0.01] * LAYERS, gbs=8)
    plan = SailorPlan((SailorPipeline(((0, 1), (2, 3)), ((F1, F1), (S1,))),), 1, 8)
    with pytest.raises(InputError, match="different replica counts"):
        simulate_hetero_plan(plan, inp, ClusterNetwork(cluster(2, 2, 1e9, ("a", "b"))))
    for text in ("gpu:X", "nope:X=2", "replica:1=2", "link:a/b=-1"):
        with pytest.raises(InputError):
            parse_whatif([text])


@pytest.mark.slow
def test_gantt_has_one_panel_per_gpu_type(tmp_path):
    inp = inputs([0.01] * LAYERS, [0.02] * LAYERS, gbs=4)
    r = simulate_hetero_plan(two_stage(1, gbs=4), inp, ClusterNetwork(cluster(1, 1, 1e9, ("a", "b"))))
    assert {s.gpu for s in r.spans} == {"FAST", "SLOW"}
    assert {s.kind for s in r.spans} == {"forward", "backward", "send", "receive", "optimizer"}
    path = draw_gantt(r, tmp_path / "run.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_receive_is_followed_by_its_rebuild():
    # §12.2's rebuild_time runs on the receiving replica between the receive and the pass that uses it
    inp = tiny_inputs(fast="GH-96")
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("GH-96", 2)], [("GH-96", 2)]]))
    r = simulate_hetero_plan(plan, inp)
    rebuild = rebuild_time(SailorReplica("GH-96", 2, "z", 2), 500_000 * 2 * 4)
    spans = [sp for sp in r.spans if sp.kind == "rebuild"]
    assert len(spans) == 2 * r.microbatches  # stage 1 per activation, stage 0 per gradient
    assert all(sp.end - sp.start == pytest.approx(rebuild) for sp in spans)
    for sp in spans:  # right after the receive of the same microbatch on the same replica
        assert any(q.kind == "receive" and (q.stage, q.microbatch) == (sp.stage, sp.microbatch)
                   and q.end == pytest.approx(sp.start) for q in r.spans)
    assert r.simulated_iteration_time <= r.predicted_iteration_time * (1 + 1e-9)


@pytest.mark.skipif(not RUNS, reason="Sailor's validation runs (../shared/workloads/sailor) are absent")
def test_shipped_runs_simulated_within_the_closed_form():
    inp = load_sailor_inputs(SAILOR / "training_config_opt_350.json")
    for path in RUNS:
        r = simulate_hetero_plan(read_sailor_plan(path), inp)
        assert 0.97 * r.predicted_iteration_time <= r.simulated_iteration_time <= r.predicted_iteration_time * (1 + 1e-9), path.name


@pytest.mark.slow
@pytest.mark.skipif(not SAILOR.is_dir(), reason="Sailor's profiles (../shared/workloads/sailor) are absent")
def test_cli_simulates_a_planned_plan(capsys, tmp_path):
    config = SAILOR / "training_config_opt_350.json"
    plan = tmp_path / "plan.json"
    assert main(["plan", str(config), "--hardware", "gcp-a100-v100", "--objective", "time", "--max-stages", "2",
                 "-o", str(plan), "--json"]) == 0
    capsys.readouterr()
    gantt = tmp_path / "run.png"
    assert main(["simulate", str(config), str(plan), "--hardware", "gcp-a100-v100", "--whatif", "gpu:V100-16=1.5",
                 "--gantt", str(gantt), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["simulated_iteration_time"] >= data["simulated_without_whatif"]
    assert abs(data["relative_difference"]) < 0.05
    assert gantt.is_file()
    assert main(["simulate", str(config), str(plan), "--whatif", "gpu:V100-16=zero"]) == 2
    err = capsys.readouterr().err
    assert "--whatif" in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.skipif(not SAILOR.is_dir(), reason="Sailor's profiles (../shared/workloads/sailor) are absent")
@pytest.mark.parametrize("cluster_name", ["mixed-a100-v100", "rtx-consumer", "gcp-a100-v100", "two-zone-a100-v100",
                                          "gh200-a100"])
def test_bundled_clusters_planned_then_simulated(cluster_name):
    from pipesim.hardware.clusters import load_cluster

    inp = load_sailor_inputs(SAILOR / "training_config_opt_350.json")
    cl = load_cluster(cluster_name)
    planned = plan_hetero(inp, cl, "time", max_stages=3)
    r = simulate_hetero_plan(planned.plan, inp, ClusterNetwork(cl), link_streams=64)
    assert r.predicted_iteration_time == pytest.approx(planned.iteration_time)
    assert 0.95 * r.predicted_iteration_time <= r.simulated_iteration_time <= r.predicted_iteration_time * (1 + 1e-9)
    # every GPU type the plan uses has its panel
    assert {s.gpu for s in r.spans} == {x.gpu for reps in planned.plan.pipelines[0].replicas for x in reps}
