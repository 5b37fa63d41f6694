"""The hybrid-parallel planner (docs/model.md §10): Piper's figures, exactness, re-evaluation."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pipesim.placement.devices import paper_devices
from pipesim.placement.dp.solve import solve_dp
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.plan.piper_format import is_piper_format, read_piper_workload
from pipesim.placement.plan.solve import _cover, solve_plan
from pipesim.placement.plan.evaluate import evaluate_plan
from pipesim.placement.plan.result import Plan, PlanStage
from pipesim.placement.plan.workload import (
    Configuration,
    Layer,
    LayerEdge,
    PlanningWorkload,
)
from pipesim.placement.workload import Workload

from pipesim.errors import InputError
from tests.strategies import SHARED

PIPER = SHARED.parent / "piper"
GiB = 2**30


@pytest.fixture
def piper():
    if not PIPER.is_dir():
        pytest.skip(f"Piper's inputs are not at {PIPER} (../shared is absent)")

    def load(name, K, M, N, BW=25):
        return read_piper_workload(PIPER / f"{name}.json").with_limits(
            devices=K, memory=M * GiB, bandwidth=BW * GiB, microbatches=N
        )

    return load


def _check(plan, workload, expected, digits=None):
    assert plan.status == "optimal"
    again = evaluate_plan(workload, Plan.from_dict(json.loads(json.dumps(plan.to_dict()))))
    assert again.status != "infeasible", again.reason
    assert math.isclose(again.time_per_sample, plan.time_per_sample, rel_tol=1e-12)
    if digits is None:
        assert plan.time_per_sample == pytest.approx(expected, rel=1e-9)
    else:  # Piper prints three decimals: equal there, never above
        assert round(plan.time_per_sample, digits) <= expected


# Piper's own output (msr-fiddle/piper algo.cpp, built and run on these inputs, printed to 10
# digits); the issue quotes them rounded: 0.1658558, 0.0415154, 0.0025611, 0.1220073.
@pytest.mark.parametrize(
    "K, M, expected",
    [pytest.param(8, 8, 0.16585575, marks=pytest.mark.slow), (32, 8, 0.04151545044), (512, 8, 0.002561127846), (8, 80, 0.1220072693)],
)
def test_bert_figures(piper, K, M, expected):
    w = piper("bert32a100", K, M, 1920)
    plan = solve_plan(w)
    _check(plan, w, expected)
    assert plan.devices_used <= K
    if M == 80:  # one stage, all 8 devices data-parallel
        assert [(len(s.nodes), s.tensor_parallel, s.data_parallel) for s in plan.stages] == [(37, 1, 8)]


def test_bert_out_of_memory(piper):
    plan = solve_plan(piper("bert32a100", 8, 2, 1920))
    assert plan.status == "infeasible" and "memory" in plan.reason
    assert plan.to_dict()["time_per_sample"] is None


@pytest.mark.parametrize("K, M, expected", [(16, 4, 35.333), (64, 2, 11.334)])
def test_resnet_figures(piper, K, M, expected):
    w = piper("resnet", K, M, 7680)
    _check(solve_plan(w), w, expected, digits=3)


def test_switches_restrict_the_plan(piper):
    w = piper("bert32a100", 32, 8, 1920)
    full = solve_plan(w).time_per_sample
    for kwargs, check in [
        ({"data_parallel": False}, lambda s: s.data_parallel == 1),
        ({"tensor_parallel": False}, lambda s: s.tensor_parallel == 1),
        ({"recompute": False}, lambda s: all("recomp" not in c for c in s.configuration.values())),
    ]:
        plan = solve_plan(w, **kwargs)
        assert plan.time_per_sample >= full * (1 - 1e-12)
        assert all(check(s) for s in plan.stages)


def _single_class(w: PlanningWorkload) -> Workload:
    """The paper-model workload that t = d = 1 without recomputation reduces to.

    Each edge u -> v becomes a zero-time node sharing u's colour class whose
    transfer time is the edge's bytes over the bandwidth: u's device pays it
    once when v is elsewhere, and v's device pays it once to receive.
    """
    nodes = []
    for layer in w.layers:
        (c,) = [c for c in layer.options[1] if not c.recomputes]
        nodes.append(Node(id=layer.id, time={"accelerator": c.time}, color_class=layer.id))
    edges = []
    fresh = max(layer.id for layer in w.layers) + 1
    for i, e in enumerate(w.edges):
        src = w.layer(e.source).options[1][0]
        dst = w.layer(e.dest).options[1][0]
        cost_in, cost_out = 2 * (e.bytes + dst.sync_fw[e.source]), 2 * (e.bytes + src.sync_bw[e.dest])
        assert cost_in == cost_out
        x = fresh + i
        nodes.append(Node(id=x, time={"accelerator": 0.0}, color_class=e.source,
                          transfer={"accelerator": cost_in / w.bandwidth}))
        edges += [Edge(e.source, x), Edge(x, e.dest)]
    return Workload(Graph(nodes, edges), paper_devices(w.devices, 0, math.inf))


@pytest.mark.parametrize("name, K", [("bert32a100", 4), ("bert32a100", 8), ("resnet", 6)])
def test_pure_pipeline_equals_the_dp(piper, name, K):
    w = piper(name, K, 10_000, 1920)
    plan = solve_plan(w, data_parallel=False, tensor_parallel=False, recompute=False)
    dp = solve_dp(_single_class(w))
    assert plan.time_per_sample == pytest.approx(dp.max_load, rel=1e-9)
    assert all(s.tensor_parallel == s.data_parallel == 1 for s in plan.stages)


def test_reads_piper_format_and_rejects_bad_fields(tmp_path, piper):
    data = json.loads((PIPER / "gnmt.json").read_text())
    assert is_piper_format(data)
    w = read_piper_workload(PIPER / "gnmt.json")
    assert (w.devices, w.microbatches, len(w.layers)) == (10, 256, 78)
    data["maxBatchSize"] = data.pop("mbsInBatch")
    assert read_piper_workload(tmp_path / "x.json", data).microbatches == 256
    data["nodes"][3]["TMPCs"]["1"][0]["syncTimeFw"] = {}
    with pytest.raises(InputError, match=r"nodes\[3\]\.TMPCs\.1\[0\]\.syncTimeFw"):
        read_piper_workload(tmp_path / "x.json", data)


def test_evaluate_plan_reports_violations():
    c = Configuration("vanilla", time=1.0, parameters=8.0, memory_a=1.0, memory_b=0.0)
    w = PlanningWorkload((Layer(0, {1: (c,)}), Layer(1, {1: (c,)})), (LayerEdge(0, 1, 0.0),),
                         devices=2, memory=1.5, bandwidth=1.0, microbatches=3)
    plan = evaluate_plan(w, [PlanStage((1,), 1, 2, {1: "vanilla"}), PlanStage((0,), 1, 1, {0: "x"})])
    assert plan.status == "infeasible"
    for words in ("goes back", "does not divide", "more than the 2 available", "no configuration", "out of memory"):
        assert words in plan.reason


@given(
    cost=st.lists(st.sampled_from([0.0, 1.0, 1.5, 2.0, 3.25]), min_size=1, max_size=9),
    save=st.lists(st.sampled_from([1.0, 2.0, 3.0, 4.5]), min_size=9, max_size=9),
    need=st.floats(0.5, 30.0),
)
def test_cover_is_exact(cost, save, need):
    cost = np.array(cost)
    save = np.array(save[: len(cost)])
    best, chosen, exact = _cover(cost, save, need, 10**6)
    brute = min(
        (sum(cost[list(s)]) for r in range(len(cost) + 1) for s in itertools.combinations(range(len(cost)), r)
         if sum(save[list(s)]) >= need),
        default=math.inf,
    )
    assert exact and best == pytest.approx(brute)
    if math.isfinite(best):
        assert save[chosen].sum() >= need and cost[chosen].sum() == pytest.approx(best)


@st.composite
def chains(draw):
    """Tiny chains with two configurations at t = 1 and 2, small K and N."""
    n = draw(st.integers(1, 3))
    num = st.floats(0.0, 4.0).map(lambda x: round(x, 2))
    layers = []
    for v in range(n):
        options = {}
        for t in (1, 2):
            p, a, b, w = draw(num), draw(num), draw(num), draw(num)
            fw = {v - 1: draw(num)} if v > 0 else {}
            bw = {v + 1: draw(num)} if v < n - 1 else {}
            options[t] = (
                Configuration("vanilla", p, w, a, b, fw, bw),
                Configuration("activation recomp", p + draw(num), w, a * draw(st.sampled_from([0.0, 0.5])), b + draw(num), fw, bw),
            )
        layers.append(Layer(v, options))
    edges = tuple(LayerEdge(v, v + 1, draw(num)) for v in range(n - 1))
    return PlanningWorkload(tuple(layers), edges, devices=draw(st.integers(1, 4)), memory=draw(st.floats(2.0, 12.0)),
                            bandwidth=draw(st.sampled_from([0.5, 1.0, 2.0])), microbatches=draw(st.sampled_from([1, 2, 4])))


def _brute_force(w: PlanningWorkload) -> float:
    n = len(w.layers)
    best = math.inf
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        spans = [tuple(range(a, b)) for a, b in itertools.pairwise(bounds)]
        choices = [(t, d) for t in (1, 2) for d in range(1, w.microbatches + 1) if w.microbatches % d == 0]
        for degrees in itertools.product(choices, repeat=len(spans)):
            for configs in itertools.product(["vanilla", "activation recomp"], repeat=n):
                stages = [PlanStage(span, t, d, {v: configs[v] for v in span}) for span, (t, d) in zip(spans, degrees)]
                plan = evaluate_plan(w, stages)
                if plan.status != "infeasible":
                    best = min(best, plan.time_per_sample)
    return best


@pytest.mark.slow
@given(chains())
def test_planner_matches_brute_force(w):
    plan = solve_plan(w)
    expected = _brute_force(w)
    if math.isinf(expected):
        assert plan.status == "infeasible"
    else:
        assert plan.status == "optimal"
        assert plan.time_per_sample == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_exact_knapsack_beats_piper_where_its_heuristic_misses(piper):
    """ResNet, K=128, 2 GiB: Piper's greedy knapsack ends at 5.40607819; the exact plan is lower.

    The lower value is real: the plan re-evaluates to it (and Piper's own evaluator,
    getTPSForResult, gives 5.360820316 for this plan too).
    """
    w = piper("resnet", 128, 2, 7680)
    plan = solve_plan(w)
    assert plan.status == "optimal"
    assert plan.time_per_sample == pytest.approx(5.360820316, rel=1e-9)
    assert plan.time_per_sample < 5.40607819
    again = evaluate_plan(w, Plan.from_dict(plan.to_dict()))
    assert again.status != "infeasible" and again.time_per_sample == pytest.approx(plan.time_per_sample, rel=1e-12)
    assert max(s.memory for s in again.stages) <= w.memory * (1 + 1e-9)
