"""The Python API: one namespace, workload first, the README's example as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import pipesim
from pipesim.placement import Edge, Graph, Workload, paper_devices
from tests.strategies import node

ROOT = Path(__file__).resolve().parents[1]


def chain():
    nodes = [node(1, acc=2.0, memory=1.0, transfer=0.5), node(2, acc=1.0, memory=1.0, transfer=0.25), node(3, acc=1.0)]
    return Workload(Graph(nodes, [Edge(1, 2), Edge(2, 3)]), paper_devices(2, 1, 100.0))


def test_every_name_of_the_namespace_resolves():
    for name in pipesim.__all__:
        assert getattr(pipesim, name) is not None, name
    with pytest.raises(AttributeError):
        pipesim.no_such_thing  # noqa: B018


def test_the_simulate_function_is_not_shadowed_by_a_subpackage():
    import pipesim.simulation  # noqa: F401  (importing the package must not replace the function)

    assert callable(pipesim.simulate) and pipesim.simulate.__module__ == "pipesim.api"


@pytest.mark.parametrize("method", sorted(pipesim.METHODS))
def test_solve_evaluate_save_load_round_trip(method, tmp_path):
    w = chain()
    options = {"split": pipesim.Split.from_lists({"accelerator": [[1, 2], [3]], "cpu": [[]]})} if method == "expert" else {}
    r = pipesim.solve(w, method=method, **options)
    assert r.split is not None and r.max_load == pytest.approx(pipesim.evaluate(w, r.split).max_load)
    path = tmp_path / "deep" / "split.json"
    pipesim.save_split(r, path)
    assert pipesim.evaluate(w, pipesim.load_split(path, w)).max_load == pytest.approx(r.max_load)
    assert json.loads(json.dumps(r.to_dict()))["max_load"] == pytest.approx(r.max_load)


def test_one_call_shape_and_checked_options():
    w = chain()
    assert pipesim.solve(w).status == "optimal"
    with pytest.raises(pipesim.InputError, match="not an option of dp"):
        pipesim.solve(w, "dp", restarts=3)
    with pytest.raises(pipesim.InputError, match="unknown method"):
        pipesim.solve(w, "magic")
    with pytest.raises(pipesim.InputError, match="positive time"):
        pipesim.solve(w, "ip", time_limit=-1)


def test_latency_and_simulate():
    w = chain()
    greedy = pipesim.latency(w, "greedy")
    ip = pipesim.latency(w, "ip")
    assert ip.latency <= greedy.latency + 1e-9
    assert pipesim.latency(w, split=ip.schedule.evaluation.split).latency == pytest.approx(ip.latency)
    s = pipesim.simulate(w, pipesim.solve(w), microbatches=40)
    assert s.time_per_sample == pytest.approx(s.predicted_time_per_sample)


def test_load_split_names_the_file(tmp_path):
    w = chain()
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"fpgas": [{"nodes": [1, 2, 99]}], "cpus": []}))
    with pytest.raises(pipesim.InputError, match=re.escape(str(path))):
        pipesim.load_split(path, w)


def test_errors_share_one_root():
    for name in ("InputError", "GraphError", "SplitError", "HardwareError", "InfeasibleError", "ResourceLimitError",
                 "IdealLimitError", "SimulationError", "InternalError", "ModelSpecError", "MissingExtraError"):
        assert issubclass(getattr(pipesim, name), pipesim.PipesimError), name


@pytest.mark.slow
def test_run_scenario_from_python(tmp_path):
    scenario = pipesim.load_scenario(ROOT / "scenarios" / "bert24-training.yaml", ["simulate.microbatches=30"])
    outcome = pipesim.run_scenario(scenario, tmp_path / "out")
    assert outcome.result.status == "optimal"
    assert {"result", "split", "workload"} <= set(outcome.files)
    w = pipesim.load_workload(outcome.files["workload"])
    split = pipesim.load_split(outcome.files["split"], w)
    assert pipesim.evaluate(w, split).max_load == pytest.approx(outcome.result.max_load)


@pytest.mark.parametrize("method", sorted(pipesim.METHODS))
def test_every_method_runs_from_the_command_line(method, tmp_path, capsys):
    from pipesim.cli import main
    from pipesim.placement.formats import write_paper_workload

    workload = tmp_path / "w.json"
    write_paper_workload(workload, chain())
    extra = []
    if method == "expert":
        split = tmp_path / "expert.json"
        split.write_text(json.dumps({"fpgas": [{"nodes": [1, 2]}, {"nodes": [3]}], "cpus": [{"nodes": []}]}))
        extra = ["--split", str(split)]
    assert main(["solve", str(workload), "--method", method.replace("_", "-"), "--json", *extra]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["max_load"] == pytest.approx(pipesim.solve(chain(), method, **({"split": extra[1]} if extra else {})).max_load)


def test_plan_is_part_of_the_namespace(tmp_path):
    piper = ROOT.parent / "shared" / "workloads" / "piper" / "bert32a100.json"
    if not piper.is_file():
        pytest.skip(f"Piper's inputs are not at {piper.parent} (../shared is absent)")
    plan = pipesim.plan(piper, devices=8, memory="80GiB", bandwidth="25GiB/s", microbatches=1920)
    assert plan.status == "optimal" and plan.time_per_sample == pytest.approx(0.1220073, rel=1e-6)
    assert isinstance(plan, pipesim.Plan)
