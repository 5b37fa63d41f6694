"""Heterogeneous plans of a transformer from a scenario (issue 20: "from the CLI, scenarios and Python").

The per-layer profiles come from the §11 cost model (docs/model.md §12.7):
checked against that model term by term, then planned and simulated as
``pipesim plan`` and ``pipesim run`` do it.
"""

from __future__ import annotations

import json

import pytest

from pipesim.cli import main
from pipesim.hardware.clusters import load_cluster
from pipesim.placement.plan.hetero import plan_hetero
from pipesim.placement.plan.layer_profiles import transformer_inputs
from pipesim.placement.plan.megatron import ParallelConfig, end_costs, layer_cost
from pipesim.workloads.llms import load_llm, preset

SMALL = {"layers": 4, "hidden": 1024, "heads": 16, "seq": 1024, "vocab": 32000, "decoder": True, "gated": True,
         "ffn_hidden": 2816, "position": "rope", "norm": "rmsnorm", "bias": False, "tied_embeddings": False}


def _scenario(tmp_path, objective="time", extra="", cluster="h100-a100"):
    path = tmp_path / "mixed.yaml"
    params = ", ".join(f"{k}: {json.dumps(v)}" for k, v in SMALL.items())
    path.write_text(f"name: small-mixed\nmodel:\n  generator: transformer\n  params: {{{params}}}\n"
                    f"hardware: {{cluster: {cluster}}}\n"
                    f"solve:\n  method: plan\n  options: {{objective: {objective}, gbs: 32, max_stages: 2{extra}}}\n")
    return path


def test_profiles_are_the_cost_models_layers():
    model, cluster = preset("llama3.1-8b"), load_cluster("h100-a100")
    inputs = transformer_inputs(model, cluster, gbs=64, precision="bf16", name="m")
    assert inputs.config.num_layers == model.layers + 2
    assert set(inputs.profiles.times["m"]) == {"h100-sxm", "A100-80"}
    h100 = cluster.nodes[0][0]
    for mbs, tp in ((1, 1), (2, 4), (4, 8)):
        times = inputs.profiles.layers("m", "h100-sxm", mbs, tp)
        cfg = ParallelConfig(tp=tp, mbs=mbs)
        layer = layer_cost(model, cfg, h100)
        assert times[5].forward == pytest.approx(layer.forward + layer.tp_forward)
        assert times[5].backward == pytest.approx(layer.backward + layer.tp_backward)
        embed, head, head_forward = end_costs(model, cfg, h100.device)
        assert times[0].forward + times[0].backward == pytest.approx(embed)
        assert times[-1].forward + times[-1].backward == pytest.approx(head)
    # the A100 is slower on every layer; the optimizer step is the whole model's, shrinking with TP
    fast, slow = inputs.profiles.layers("m", "h100-sxm", 1, 1), inputs.profiles.layers("m", "A100-80", 1, 1)
    assert all(a.forward < b.forward and a.backward < b.backward for a, b in zip(fast, slow))
    assert inputs.profiles.layers("m", "h100-sxm", 1, 8)[3].optimizer == pytest.approx(fast[3].optimizer / 8, rel=1e-3)


def test_layer_sizes_add_up_to_the_model():
    model = preset("llama3.1-8b")
    inputs = transformer_inputs(model, load_cluster("h100-a100"), gbs=8, name="m")
    for tp in (1, 2, 8):
        total = sum(layer.params for layer in inputs.layer_info.of("m", tp))
        # the head's vocabulary is padded to a multiple of 128·t, as Megatron holds it
        assert total * tp == pytest.approx(model.params(), rel=2e-3)
    assert inputs.layer_info.of("m", 8)[3].activation_bytes < inputs.layer_info.of("m", 1)[3].activation_bytes


def test_only_microbatch_sizes_dividing_the_batch():
    inputs = transformer_inputs(preset("llama3.1-8b"), load_cluster("h100-a100"), gbs=6, name="m")
    assert sorted(inputs.profiles.times["m"]["h100-sxm"]) == [1, 2]
    with pytest.raises(Exception, match="gbs"):
        transformer_inputs(preset("llama3.1-8b"), load_cluster("h100-a100"), gbs=7 * 9, name="m",
                           microbatch_sizes=(2, 4))


def test_plan_run_and_python_give_one_answer(tmp_path, capsys):
    path = _scenario(tmp_path)
    assert main(["plan", str(path), "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    model, cluster = load_llm(str(path)), load_cluster("h100-a100")
    python = plan_hetero(transformer_inputs(model, cluster, gbs=32, name="small-mixed"), cluster, "time",
                         max_stages=2, precision="bf16")
    assert planned["iteration_time"] == pytest.approx(python.iteration_time)
    assert planned["plan"] == python.sailor_json()
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["plan"]["iteration_time"] == pytest.approx(python.iteration_time)
    assert abs(result["simulation"]["relative_difference"]) < 0.05
    import pipesim

    outcome = pipesim.run_scenario(path)
    assert outcome.summary()["iteration_time"] == pytest.approx(python.iteration_time)


def test_cost_objective_is_never_dearer_than_the_fastest_plan(tmp_path, capsys):
    path = _scenario(tmp_path)
    assert main(["plan", str(path), "--json"]) == 0
    fastest = json.loads(capsys.readouterr().out)
    assert main(["plan", str(path), "--objective", "cost", "--json"]) == 0
    cheapest = json.loads(capsys.readouterr().out)
    assert cheapest["cost_per_iteration"] <= fastest["cost_per_iteration"] * (1 + 1e-9)
    assert cheapest["iteration_time"] >= fastest["iteration_time"] * (1 - 1e-9)


@pytest.mark.parametrize("extra, field", [
    (", budget: -1", "solve.options.budget"),
    (", max_kinds: 1.5", "solve.options.max_kinds"),
    (", microbatches: 8", "solve.options.microbatches"),
    (", gbs: 0", "solve.options.gbs"),
])
def test_bad_options_are_one_line(tmp_path, capsys, extra, field):
    path = _scenario(tmp_path, extra=extra)
    code = main(["run", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and field in err, err


def test_cost_needs_prices(tmp_path, capsys):
    code = main(["plan", str(_scenario(tmp_path, "cost", cluster="mixed-a100-v100"))])
    err = capsys.readouterr().err
    assert code == 2 and "price" in err, err


def test_the_bundled_scenario_reads():
    from pathlib import Path

    from pipesim.llm_scenario import llm_scenario_data

    path = Path(__file__).resolve().parents[2] / "scenarios" / "hetero" / "llama3.1-8b-h100-a100.yaml"
    data = llm_scenario_data(path)
    assert data is not None and data["solve"]["options"]["objective"] == "time"
    assert load_cluster(data["hardware"]["cluster"]).homogeneous is False


@pytest.mark.slow
def test_the_bundled_scenario_plans_across_both_gpu_types(capsys):
    """16 H100 beside 16 A100: the fastest plan uses both, the faster GPUs holding more layers."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scenarios" / "hetero" / "llama3.1-8b-h100-a100.yaml"
    assert main(["plan", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert set(plan["gpus_used"]) == {"local/dgx-h100", "local/dgx-a100"}
    pipeline = plan["plan"]["pipeline_list"][0]
    layers = {replicas[0][0][0][0]: len(stage) for stage, replicas in
              zip(pipeline["layers_per_stage"], pipeline["tmp_per_stage"])}
    assert layers["h100-sxm"] > layers["A100-80"]
    assert plan["memory_per_gpu"] <= 80e9


HETERO = sorted((__import__("pathlib").Path(__file__).resolve().parents[2] / "scenarios" / "hetero").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", HETERO, ids=[p.stem for p in HETERO])
def test_every_bundled_heterogeneous_scenario_runs(path, tmp_path, capsys):
    """Issue 20 item 6: A100+V100, H100+A100, the RTX cluster and two zones, planned and simulated."""
    assert main(["run", str(path), "-o", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["plan"]["memory_per_gpu"] > 0
    # the event run is at most the closed form without link contention, within 5 % (§12.6)
    assert abs(result["simulation"]["relative_difference"]) < 0.05
    assert "simulated iteration" in capsys.readouterr().out
