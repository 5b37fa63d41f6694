"""Item 4 of issue 19: the Megatron-Core planner (placement/plan/megatron_plan.py) and ``pipesim plan``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from pipesim.cli import main
from pipesim.errors import InfeasibleError, InputError
from pipesim.hardware.clusters import load_cluster
from pipesim.placement.plan.megatron import RECOMPUTE, ParallelConfig, _estimate, estimate, with_nodes
from pipesim.placement.plan.megatron_plan import plan_megatron
from pipesim.workloads.llms import load_llm
from pipesim.workloads.transformer import TransformerConfig

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference" / "published-runs.json"
H100 = load_cluster("dgx-h100x16")


def _brute_force(model, cluster, gbs):
    """Every degree combination up to the GPU count, priced independently of the planner's enumeration."""
    gpus = cluster.device_count
    best = None
    for t, p, c, v, mbs in itertools.product(range(1, 9), range(1, model.layers + 1), (1, 2, 4, 8), range(1, 7),
                                             range(1, 17)):
        for sp, do, rec in itertools.product((True, False), (True, False), RECOMPUTE):
            try:
                cfg = ParallelConfig(tp=t, pp=p, cp=c, vp=v, mbs=mbs, gbs=gbs, sequence_parallel=sp,
                                     distributed_optimizer=do)
                est = _estimate(model, cfg, cluster, rec)
            except InputError:
                continue
            if est.fits and (best is None or est.iteration_time < best.iteration_time):
                best = est
    return best


@pytest.mark.slow
@pytest.mark.parametrize("model, gbs", [
    (TransformerConfig(layers=4, hidden=2048, ffn_hidden=5632, heads=16, kv_heads=4, vocab=32000, seq=4096, batch=1,
                       decoder=True, gated=True, tied_embeddings=False, position="rope", norm="rmsnorm", bias=False,
                       max_positions=4096), 16),
    (TransformerConfig(layers=6, hidden=3072, heads=12, kv_heads=4, vocab=50000, seq=2048, batch=1, decoder=True,
                       max_positions=2048), 24),
])
def test_planner_is_exact_against_brute_force_on_a_tiny_cluster(model, gbs):
    cluster = with_nodes(H100, 1)
    plan = plan_megatron(model, cluster, gbs=gbs)
    brute = _brute_force(model, cluster, gbs)
    assert plan.iteration_time == pytest.approx(brute.iteration_time, rel=1e-12)


@pytest.mark.slow
def test_planner_respects_memory_and_reports_infeasible():
    plan = plan_megatron(load_llm("llama3.1-70b"), with_nodes(H100, 8), gbs=128)
    assert plan.best.fits and plan.fitting <= plan.searched
    assert {s["t"] for s in plan.stages()} == {plan.best.config.tp}        # Megatron-runnable: one t, c, d, v
    with pytest.raises(InfeasibleError):
        plan_megatron(load_llm("llama3.1-405b"), with_nodes(H100, 1), gbs=8)


@pytest.mark.slow
@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/published-runs.json is absent")
def test_planner_pick_is_never_slower_than_the_published_configuration():
    from benchmarks.published import row_inputs

    rows = [r for r in json.loads(REFERENCE.read_text())["rows"] if r["system"].startswith("DGX-H100")]
    assert rows
    for row in rows:
        kw = row_inputs(row)
        model = load_llm(kw["model"])
        cluster = with_nodes(H100, kw["nodes"])
        published = ParallelConfig(tp=kw["tp"], pp=kw["pp"], cp=kw["cp"], vp=kw["vp"], mbs=kw["mbs"], gbs=kw["gbs"],
                                   precision=kw["precision"])
        plan = plan_megatron(model, cluster, kw["gbs"], kw["precision"], reference=published)
        ref = estimate(model, cluster, published)
        assert ref.fits
        assert plan.iteration_time <= ref.iteration_time * (1 + 1e-12), row["id"]
        assert plan.to_dict()["reference"]["speedup"] >= 1 - 1e-12


@pytest.mark.slow
def test_plan_cli_on_the_bundled_llm_scenario(capsys):
    path = REPO / "scenarios" / "llm" / "llama3.1-70b-dgx-h100x8.yaml"
    assert main(["plan", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"iteration_time", "memory_per_gpu"} <= set(data)
    assert data["fits"] is True and sum(s["layers"] for s in data["stages"]) == 80
    assert {"t", "c", "v", "d", "mbs", "recompute"} <= set(data["stages"][0])


def test_plan_cli_preset_with_gbs_and_nodes(capsys):
    assert main(["plan", "llama3.1-8b", "--hardware", "dgx-h100x16", "--nodes", "1", "--gbs", "64", "--precision",
                 "fp8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["estimate"]["config"]["gpus"] == 8 and data["estimate"]["config"]["precision"] == "fp8"


def test_plan_cli_bad_input(capsys, tmp_path):
    assert main(["plan", "llama3.1-8b", "--hardware", "dgx-h100x16", "--objective", "megatron"]) == 2
    assert "--gbs" in capsys.readouterr().err
    f = tmp_path / "s.yaml"
    f.write_text("model: {generator: transformer, params: {preset: llama3.1-8b}}\nsolve: {method: plan, options: "
                 "{objective: megatron, gbs: 64}}\n")
    assert main(["plan", str(f)]) == 2
    err = capsys.readouterr().err
    assert "hardware.cluster" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama3.1-70b-dgx-h100x8", "llama3.1-405b-dgx-h100x72"])
def test_pipesim_run_simulates_the_bundled_llm_scenarios_within_two_percent(name, tmp_path, capsys):
    path = REPO / "scenarios" / "llm" / f"{name}.yaml"
    assert main(["run", str(path), "-o", str(tmp_path), "--json", "--no-progress"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert abs(data["simulation"]["relative_difference"]) < 0.02
    assert data["plan"]["fits"] is True
    assert json.loads((tmp_path / "result.json").read_text())["plan"]["iteration_time"] == data["plan"]["iteration_time"]


def test_pipesim_run_llm_scenario_bad_option(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("model: {generator: transformer, params: {preset: llama3.1-8b}}\nhardware: {cluster: dgx-h100x8}\n"
                 "solve: {method: plan, options: {objective: megatron, gbs: 64, microbatch: 2}}\n")
    assert main(["run", str(f)]) == 2
    err = capsys.readouterr().err
    assert "solve.options.microbatch" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_run_scenario_from_python_matches_pipesim_run(tmp_path, capsys):
    import pipesim
    from pipesim.llm_scenario import LLMOutcome

    path = REPO / "scenarios" / "llm" / "llama3.1-70b-dgx-h100x8.yaml"
    outcome = pipesim.run_scenario(path)
    assert isinstance(outcome, LLMOutcome) and outcome.files == {}
    assert outcome.best.fits and outcome.best.gpus == 64
    assert abs(outcome.summary()["difference"]) < 0.02
    written = pipesim.run_scenario(str(path), tmp_path / "py")
    assert json.loads(Path(written.files["result"]).read_text()) == written.to_dict()
    assert main(["run", str(path), "-o", str(tmp_path / "cli"), "--json", "--no-progress"]) == 0
    cli = json.loads(capsys.readouterr().out)
    timeless = lambda plan: {k: v for k, v in plan.items() if k != "seconds"}   # noqa: E731 (the search's run time)
    assert timeless(cli["plan"]) == timeless(written.to_dict()["plan"])
    assert cli["simulation"] == written.to_dict()["simulation"]


def test_run_scenario_from_python_bad_llm_scenario(tmp_path):
    import pipesim

    f = tmp_path / "s.yaml"
    f.write_text("model: {generator: transformer, params: {preset: llama3.1-8b}}\nhardware: {cluster: dgx-h100x8}\n"
                 "solve: {method: plan, options: {objective: megatron, gbs: 0}}\n")
    with pytest.raises(InputError, match="solve.options.gbs"):
        pipesim.run_scenario(f)
    with pytest.raises(InputError, match="report"):
        pipesim.run_scenario(REPO / "scenarios" / "llm" / "llama3.1-70b-dgx-h100x8.yaml", report=tmp_path / "r.html")
