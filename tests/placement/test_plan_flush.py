"""The flush objective (1F1B with a flush per batch on nodes): cost model, planner exactness."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipesim.hardware.clusters import load_cluster
from pipesim.placement.plan.piper_format import read_piper_workload
from pipesim.placement.plan.solve import plan
from pipesim.placement.plan.flush import Geometry, evaluate_flush_plan, solve_flush_plan
from pipesim.placement.plan.result import Plan, PlanStage
from pipesim.placement.plan.workload import (
    Configuration,
    Layer,
    LayerEdge,
    PlanningWorkload,
)

from tests.placement.test_plan import PIPER, chains


def _uniform_chain(n: int, time: float, params: float, edge: float, N: int, memory: float = 1e9) -> PlanningWorkload:
    c = Configuration("vanilla", time=time, parameters=params, memory_a=1.0, memory_b=0.0)
    return PlanningWorkload(tuple(Layer(i, {1: (c,)}) for i in range(n)),
                            tuple(LayerEdge(i, i + 1, edge) for i in range(n - 1)),
                            devices=1, memory=memory, bandwidth=1.0, microbatches=N)


def test_formula_on_a_uniform_pipeline():
    """S equal stages, d = 1: Σ P + (N − 1)·P, transfers priced by the link between the two stages."""
    w = _uniform_chain(4, 1.0, 0.0, 3.0, N=8)
    g = Geometry(4, 2, fabric=6.0, network=2.0)
    stages = [PlanStage((v,), 1, 1, {v: "vanilla"}) for v in range(4)]
    p = evaluate_flush_plan(w, stages, g)
    # stage 1 and 2 sit in different nodes: the 0-1 and 2-3 boundaries use the fabric (6 B/s), 1-2 the network
    assert [s.link_out for s in p.stages] == ["fabric", "network", "fabric", None]
    assert [s.communication for s in p.stages] == [1.0, 1.0 + 3.0, 3.0 + 1.0, 1.0]
    assert p.iteration_time == pytest.approx(sum(s.time for s in p.stages) + 7 * 5.0)
    assert p.time_per_sample == pytest.approx(p.iteration_time / 8)


def test_allreduce_uses_the_fabric_inside_a_node_and_the_network_across():
    w = _uniform_chain(1, 1.0, 100.0, 0.0, N=8)
    g = Geometry(16, 8, fabric=100.0, network=10.0)
    inside = evaluate_flush_plan(w, [PlanStage((0,), 1, 8, {0: "vanilla"}, devices=tuple(range(8)))], g)
    across = evaluate_flush_plan(w, [PlanStage((0,), 1, 8, {0: "vanilla"}, devices=tuple(range(4, 12)))], g)
    assert inside.stages[0].allreduce == pytest.approx(2 * 7 / 8 * 100 / 100)
    assert across.stages[0].allreduce == pytest.approx(2 * 7 / 8 * 100 / 10)


def test_evaluator_rejects_replicas_across_nodes():
    c = Configuration("vanilla", 1.0, 0.0, 0.0, 0.0)
    w = PlanningWorkload((Layer(0, {2: (c,)}),), (), devices=8, memory=1.0, bandwidth=1.0, microbatches=2)
    p = evaluate_flush_plan(w, [PlanStage((0,), 2, 1, {0: "vanilla"}, devices=(3, 4))], Geometry(8, 4, 1.0, 1.0))
    assert p.status == "infeasible" and "spans nodes" in p.reason


def _pack_by_rule(degrees, gaps, geometry: Geometry):
    """Device ids of stages laid from the end by the planner's rule (gap choice per stage)."""
    K, n = geometry.devices, geometry.per_node
    devices, used = [], 0
    for (t, d), choice in zip(reversed(degrees), reversed(gaps)):
        end = K - used
        gap = end % t if choice == 0 else end % n
        start = end - gap - t * d
        if start < 0:
            return None
        devices.append(tuple(range(start, start + t * d)))
        used = K - start
    return devices[::-1]


def _brute_force(w: PlanningWorkload, geometry: Geometry) -> float:
    n = len(w.layers)
    best = math.inf
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        spans = [tuple(range(a, b)) for a, b in itertools.pairwise(bounds)]
        choices = [(t, d) for t in (1, 2) if geometry.per_node % t == 0
                   for d in range(1, w.microbatches + 1) if w.microbatches % d == 0]
        for degrees in itertools.product(choices, repeat=len(spans)):
            for gaps in itertools.product([0, 1], repeat=len(spans)):
                devices = _pack_by_rule(degrees, gaps, geometry)
                if devices is None:
                    continue
                for configs in itertools.product(["vanilla", "activation recomp"], repeat=n):
                    stages = [PlanStage(span, t, d, {v: configs[v] for v in span}, devices=ds)
                              for span, (t, d), ds in zip(spans, degrees, devices)]
                    p = evaluate_flush_plan(w, stages, geometry)
                    if p.status != "infeasible":
                        best = min(best, p.iteration_time)
    return best


@settings(max_examples=60, deadline=None)
@given(chains(), st.sampled_from([1, 2, 4]), st.sampled_from([(1.0, 1.0), (4.0, 0.5)]))
def test_flush_planner_matches_brute_force(w, per_node, links):
    K = w.devices
    per_node = min(per_node, K) if K % min(per_node, K) == 0 else 1
    geometry = Geometry(K, per_node, *links)
    p = solve_flush_plan(w, geometry)
    expected = _brute_force(w, geometry)
    if math.isinf(expected):
        assert p.status == "infeasible"
    else:
        assert p.status == "optimal", p.reason
        assert p.iteration_time == pytest.approx(expected, rel=1e-9, abs=1e-12)
        again = evaluate_flush_plan(w, Plan.from_dict(json.loads(json.dumps(p.to_dict()))), geometry)
        assert again.iteration_time == pytest.approx(p.iteration_time, rel=1e-12)


@pytest.mark.slow
def test_flush_objective_from_plan_on_a_cluster():
    if not PIPER.is_dir():
        pytest.skip(f"Piper's inputs are not at {PIPER} (../shared is absent)")
    p = plan(PIPER / "bert32a100.json", hardware="dgx-a100x4", microbatches=64, memory="8GiB", objective="flush")
    assert p.status == "optimal" and p.objective == "flush"
    d = p.to_dict()
    assert d["iteration_time"] == pytest.approx(p.iteration_time) and d["time_per_sample"] == pytest.approx(p.iteration_time / 64)
    assert p.devices_used <= 32 and all(s.tensor_parallel <= 8 for s in p.stages)
    # the Piper objective's plan, evaluated under the flush model, is never better
    piper = plan(PIPER / "bert32a100.json", hardware="dgx-a100x4", microbatches=64, memory="8GiB")
    geometry = Geometry.of(load_cluster("dgx-a100x4"))
    work = read_piper_workload(PIPER / "bert32a100.json").with_limits(devices=32, memory=8 * 2**30, microbatches=64)
    stages = [PlanStage(s.nodes, s.tensor_parallel, s.data_parallel, s.configuration) for s in piper.stages]
    other = evaluate_flush_plan(work, stages, geometry)
    assert other.status != "infeasible", other.reason
    assert other.iteration_time >= p.iteration_time * (1 - 1e-9)


def _gpt(layers=4, hidden=256, heads=8, seq=128):
    from pipesim.workloads.models import build_model

    return build_model("transformer", layers=layers, hidden=hidden, heads=heads, seq=seq, decoder=True, vocab=1000)


def test_planning_workload_from_a_generated_transformer():
    from pipesim.workloads.planning import planning_workload

    cluster = load_cluster("dgx-a100x4")
    ops = _gpt(heads=4)
    w = planning_workload(ops, cluster, microbatches=16)
    assert w.degrees == (1, 2, 4)  # t divides the 8 devices of a node and the 4 heads
    assert (w.devices, w.memory, w.microbatches) == (32, 80e9, 16)
    fused = ops.by_layer()
    for layer, op in zip(w.layers, fused.ops):
        for t, configs in layer.options.items():
            vanilla = configs[0]
            assert vanilla.memory_b == pytest.approx(16 * op.params / t)  # mixed-precision Adam
            assert vanilla.parameters == pytest.approx(2 * op.params / t)  # fp16 gradients
            if len(configs) == 2:  # recomputation: less stashed, one more forward pass
                assert configs[1].memory_a < vanilla.memory_a and configs[1].time > vanilla.time
    big = planning_workload(_gpt(hidden=2048, heads=16, seq=1024), cluster, microbatches=16).layers[2].options
    assert big[2][0].time < big[1][0].time  # tensor parallelism pays off on a layer this size
    p = plan(w, hardware=cluster, objective="flush")
    assert p.status == "optimal" and p.iteration_time > 0


def test_planning_workload_refuses_mixed_clusters():
    from pipesim.errors import InputError
    from pipesim.workloads.planning import planning_workload

    with pytest.raises(InputError, match="mixes node types"):
        planning_workload(_gpt(), load_cluster("mixed-a100-v100"), microbatches=4)
