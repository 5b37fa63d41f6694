"""pipesim's heterogeneous planner against the uniform, Metis and AMP baselines, one cost model (docs/model.md §12.5)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesim.errors import InfeasibleError, InputError
from pipesim.hardware.clusters import load_cluster
from pipesim.placement.plan.baselines_hetero import BASELINES, _amp_split, _balanced_split, _context, plan_uniform
from pipesim.placement.plan.hetero import ClusterNetwork, plan_hetero, replica_kinds, score_plan
from pipesim.placement.plan.sailor import estimate_sailor_plan, load_sailor_inputs
from tests.placement.test_hetero_plan import LAYERS, cluster, inputs

SAILOR = Path(__file__).resolve().parents[2].parent / "shared" / "workloads" / "sailor"


def value(r, objective):
    return r.iteration_time if objective == "time" else r.cost_per_iteration


def check_never_worse(inp, cl, objective, max_stages, max_kinds):
    try:
        ours = plan_hetero(inp, cl, objective, max_stages=max_stages, max_kinds=max_kinds)
    except InfeasibleError:
        ours = None
    for name, planner in BASELINES.items():
        try:
            theirs = planner(inp, cl, objective, max_stages=max_stages, max_kinds=max_kinds)
        except InfeasibleError:
            continue
        # scored by the one model: what the baseline reports is the §12.2 estimate of its plan
        assert theirs.estimate == estimate_sailor_plan(theirs.plan, inp, network=ClusterNetwork(cl))
        assert ours is not None, f"{name} found a plan, pipesim none"
        assert value(ours, objective) <= value(theirs, objective) * (1 + 1e-9), name


speeds = st.lists(st.floats(0.001, 0.05), min_size=LAYERS, max_size=LAYERS)


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(fast=speeds, slow_factor=st.floats(1.0, 4.0), n_fast=st.integers(0, 3), n_slow=st.integers(0, 3),
       cross_bw=st.sampled_from([0.1e9, 1e9, 20e9]), two_zones=st.booleans(), objective=st.sampled_from(["time", "cost"]),
       egress=st.sampled_from([0.0, 0.05]), memory_gb=st.sampled_from([None, 5.7]), max_kinds=st.sampled_from([1, 2]))
def test_pipesim_never_worse_on_random_small_clusters(fast, slow_factor, n_fast, n_slow, cross_bw, two_zones,
                                                      objective, egress, memory_gb, max_kinds):
    if n_fast + n_slow == 0:
        n_fast = 1
    inp = inputs(fast, [x * slow_factor for x in fast], act_mem=30_000_000 if memory_gb else 250)
    cl = cluster(n_fast, n_slow, cross_bw, ("a", "b") if two_zones else ("a", "a"), egress=egress, memory_gb=memory_gb)
    check_never_worse(inp, cl, objective, 3, max_kinds)


def test_uniform_homogeneous_loses_to_a_plan_across_types_by_hand():
    # equal layers, slow GPUs 1.5x slower: the fast pair takes three layers, the slow pair the last one
    inp = inputs([0.03] * 4, [0.045] * 4, gbs=8)
    cl = cluster(1, 1)
    ours = plan_hetero(inp, cl, "time")
    uniform = plan_uniform(inp, cl, "time")
    assert ours.iteration_time < uniform.iteration_time * 0.95
    assert ours.plan.pipelines[0].stages == ((0, 1, 2), (3,))
    assert [{r.gpu for r in reps} for reps in ours.plan.pipelines[0].replicas] == [{"FAST"}, {"SLOW"}]
    assert set(uniform.gpus_used) == {"a/fastnode"}
    assert ours.estimate == score_plan(ours.plan, inp, cl).estimate


def test_metis_split_follows_compute_power():
    assert [list(r) for r in _balanced_split([0.25] * 4, [1.0, 1.0])] == [[0, 1], [2, 3]]
    assert [list(r) for r in _balanced_split([0.25] * 4, [3.0, 1.0])] == [[0, 1, 2], [3]]
    assert [list(r) for r in _balanced_split([0.1, 0.1, 0.1, 0.7], [1.0, 1.0])] == [[0, 1, 2], [3]]
    assert _balanced_split([1.0], [1.0, 1.0]) is None


def test_amp_split_is_the_best_contiguous_split_of_its_objective():
    inp = inputs([0.001, 0.03, 0.002, 0.04], [0.003, 0.09, 0.006, 0.12], gbs=8)
    cl = cluster(1, 1)
    ctx = _context(inp, cl, "time", "fp32", 3, 2, None)
    kinds = replica_kinds(inp, cl, 1)
    fast = next(k for k in kinds if k.gpu == "FAST" and k.tp == 1)
    slow = next(k for k in kinds if k.gpu == "SLOW")
    stage_reps = [[slow], [fast], [slow]]
    micro = 8
    got = _amp_split(ctx, stage_reps, 1, micro)

    def amp_objective(bounds):
        from pipesim.placement.plan.sailor import boundary_time
        ts = []
        for s, (a, b) in enumerate(zip(bounds, bounds[1:])):
            t = ctx.compute(stage_reps[s][0], 1, range(a, b))
            for peer, at in ((s - 1, a), (s + 1, b)):
                if 0 <= peer < 3:
                    t += boundary_time([stage_reps[s][0].replica()], [stage_reps[peer][0].replica()],
                                       ctx.boundary_bytes(at, 1), ctx.network)
            ts.append(t)
        return sum(ts) + (micro - 1) * max(ts)

    best = min(((0, *c, LAYERS) for c in itertools.combinations(range(1, LAYERS), 2)), key=amp_objective)
    got_bounds = (0, *[r.stop for r in got])
    assert amp_objective(got_bounds) == pytest.approx(amp_objective(best))


def test_bad_objective_is_an_input_error():
    inp = inputs([0.01] * LAYERS, [0.02] * LAYERS)
    for planner in BASELINES.values():
        with pytest.raises(InputError):
            planner(inp, cluster(1, 1), "speed")


SCENARIOS = [("training_config_opt_350.json", c) for c in ("gcp-a100-v100", "two-zone-a100-v100", "gh200-a100")]


@pytest.mark.slow
@pytest.mark.skipif(not SAILOR.is_dir(), reason="Sailor's profiles (../shared/workloads/sailor) are absent")
@pytest.mark.parametrize("objective", ["time", "cost"])
@pytest.mark.parametrize("config,cluster_name", SCENARIOS)
def test_pipesim_never_worse_on_bundled_scenarios(config, cluster_name, objective):
    check_never_worse(load_sailor_inputs(SAILOR / config), load_cluster(cluster_name), objective, 3, 1)


def test_compare_planners_rows_and_unknown_planner():
    from pipesim.placement.plan.baselines_hetero import compare_planners

    inp = inputs([0.03] * LAYERS, [0.045] * LAYERS, gbs=8)
    rows = compare_planners(inp, cluster(1, 1), "cost")
    assert [r.planner for r in rows] == ["pipesim", "uniform", "metis", "amp"]
    ours = rows[0].value("cost")
    assert all(ours <= r.value("cost") * (1 + 1e-9) for r in rows if r.result is not None)
    with pytest.raises(InputError, match="unknown planner 'piper'"):
        compare_planners(inp, cluster(1, 1), planners=["piper"])
