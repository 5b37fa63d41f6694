"""Scenario files: validation (every problem, with its path), overrides, paths, and `pipesim run`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from pipesim.cli import main
from pipesim.scenario import (
    ScenarioError,
    load_scenario,
    parse_assignment,
    scenario_from_data,
    set_path,
)

REPO = Path(__file__).resolve().parents[2]

#: A small valid scenario (a 4-layer transformer on two A100s).
BASE = {
    "name": "tiny",
    "model": {"generator": "transformer", "params": {"layers": 4, "hidden": 256, "heads": 4, "seq": 128, "batch": 2}},
    "hardware": {"preset": "a100x8", "whatif": {"a100": {"count": 2}}},
    "solve": {"method": "dp"},
    "simulate": {"microbatches": 20},
}


def _problems(data: dict) -> dict[str, str]:
    with pytest.raises(ScenarioError) as info:
        scenario_from_data(data, REPO / "scenarios" / "x.yaml")
    return dict(info.value.problems)


def _with(*changes: tuple[str, object]) -> dict:
    data = copy.deepcopy(BASE)
    for path, value in changes:
        set_path(data, path, value)
    return data


INLINE = [
    {"name": "gpu", "device": "a100-80gb", "count": 2, "host_link": "pcie4-x16"},
    {"name": "cpu", "device": "xeon-8380-core", "count": 1},
]

# (changes to BASE, field path reported, words in the problem)
BAD = [
    ([("model", None)], "model", "missing"),
    ([("model.generator", "alexnet")], "model.generator", "must be one of transformer"),
    ([("model.params.layers", 0)], "model.params.layers", "positive whole number"),
    ([("model.params.hidden", 1001)], "model.params.hidden", "not divisible"),
    ([("model.params.colour", 3)], "model.params.colour", "unknown field"),
    ([("model.params.dtype", "fp5")], "model.params.dtype", "unknown data type"),
    ([("model.training", "yes")], "model.training", "true or false"),
    ([("model.workload", "x.json")], "model", "only one of"),
    ([("model.optimizer", "lion")], "model.optimizer", "adam"),
    ([("hardware.preset", "a100x9")], "hardware.preset", "unknown preset"),
    ([("hardware.file", "box.yaml")], "hardware", "only one of"),
    ([("hardware.preset", None), ("hardware.whatif", None), ("hardware.devices", [dict(INLINE[0], memory="-4GB"), INLINE[1]])],
     "hardware.devices[0].memory", 'must be a positive size, got "-4GB"'),
    ([("hardware.preset", None), ("hardware.whatif", None), ("hardware.devices", [INLINE[0], dict(INLINE[1], count=-1)])],
     "hardware.devices[1].count", "non-negative"),
    ([("hardware.preset", None), ("hardware.whatif", None),
      ("hardware.devices", [dict(INLINE[0], host_link={"bandwidth": "fast"}), INLINE[1]])],
     "hardware.devices[0].host_link.bandwidth", "cannot read"),
    ([("hardware.preset", None), ("hardware.whatif", None), ("hardware.devices", [dict(INLINE[0], device="tpu")])],
     "hardware.devices[0].device", "unknown device"),
    ([("hardware.whatif.a100.speed", 0)], "hardware.whatif.a100.speed", "positive"),
    ([("hardware.whatif.a100.colour", 1)], "hardware.whatif.a100.colour", "unknown field"),
    ([("hardware.whatif.tpu", {"count": 1})], "hardware.whatif", "tpu"),
    ([("hardware.prices", {"tpu": 1})], "hardware.prices.tpu", "no device class"),
    ([("hardware.prices", {"a100": -1})], "hardware.prices.a100", "non-negative"),
    ([("solve.method", "magic")], "solve.method", "must be one of dp"),
    ([("solve.options", {"merge": "bogus"})], "solve.options.merge", "must be one of exact, paper, none"),
    ([("solve.options", {"frobnicate": 1})], "solve.options.frobnicate", "not an option"),
    ([("solve.time_limit", "5 parsecs")], "solve.time_limit", "must be a positive time"),
    ([("solve.time_limit", 60)], "solve.time_limit", "dp takes no time limit"),
    ([("solve.method", "ip"), ("solve.time_limit", -1)], "solve.time_limit", "must be a positive time"),
    ([("solve.method", "local_search"), ("solve.options", {"restarts": 0})], "solve.options.restarts", "positive"),
    ([("simulate.schedule", "gpipe")], "simulate.schedule", "training"),
    ([("simulate.schedule", "zigzag")], "simulate.schedule", "must be one of stream"),
    ([("simulate.microbatches", 0)], "simulate.microbatches", "positive"),
    ([("simulate.comm", "wires")], "simulate.comm", "must be one of paper, overlap"),
    ([("output.artefacts", ["movie"])], "output.artefacts", "drawn from"),
    ([("sweep", {"vary": {"simulate.microbatches": []}})], "sweep.vary.simulate.microbatches", "non-empty"),
    ([("colour", 1)], "colour", "unknown section"),
]


@pytest.mark.parametrize("changes, path, words", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_input_is_reported_with_its_path(changes, path, words):
    problems = _problems(_with(*changes))
    assert path in problems, problems
    assert words in problems[path]


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    data = _with(("model.params.layers", 0), ("hardware.whatif.a100.speed", 0), ("simulate.comm", "wires"),
                 ("solve.method", "magic"))
    problems = _problems(_with(("model.params.hidden", 1001), ("solve.options", {"merge": "sometimes"}),
                               ("simulate.comm", "wires")))
    assert {"model.params.hidden", "solve.options.merge", "simulate.comm"} <= set(problems)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "4 problems" in err and "Traceback" not in err
    for field in ("model.params.layers", "hardware.whatif.a100.speed", "simulate.comm", "solve.method"):
        assert f"  {field}: " in err


def test_units_and_overrides():
    data = _with(("hardware.preset", None), ("hardware.whatif", None),
                 ("hardware.devices", [dict(INLINE[0], memory="40GB", host_link={"bandwidth": "16GB/s", "latency": "2ms"}),
                                       INLINE[1]]))
    s = scenario_from_data(data, "x.yaml", [parse_assignment("hardware.devices[0].count=3"),
                                            parse_assignment("solve.method=ip"),
                                            parse_assignment("solve.time_limit=2s")])
    gpu = s.system.group("gpu")
    assert gpu.count == 3 and gpu.device.memory == 40e9
    assert gpu.host_link.bandwidth == 16e9 and gpu.host_link.latency == 2e-3
    assert s.options["time_limit"] == 2.0


def test_set_path_and_assignment_errors():
    data = {"a": [{"b": 1}]}
    set_path(data, "a[0].b", 2)
    set_path(data, "c.d", 3)
    assert data == {"a": [{"b": 2}], "c": {"d": 3}}
    assert parse_assignment("simulate.microbatches=50") == ("simulate.microbatches", 50)
    assert parse_assignment("hardware.devices[0].host_link.bandwidth=8GB/s")[1] == "8GB/s"
    for bad in ("nothing", "a..b=1", "=3"):
        with pytest.raises(Exception):
            parse_assignment(bad)
    with pytest.raises(Exception):
        set_path(data, "a[3].b", 1)


def test_relative_paths_resolve_against_the_scenario_file(tmp_path, monkeypatch):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "given.json").write_text((REPO / "scenarios/examples/encoder10.json").read_text())
    (folder / "s.yaml").write_text(yaml.safe_dump({
        "model": {"workload": "given.json"},
        "hardware": {"whatif": {"accelerator": {"speed": 2}}},
        "output": {"dir": "results"},
    }))
    monkeypatch.chdir(tmp_path)
    s = load_scenario(folder / "s.yaml")
    assert s.output_dir == folder / "results"
    assert s.given is not None and s.given.graph.nodes
    assert main(["run", str(folder / "s.yaml"), "--no-progress", "--set", "output.artefacts=[result]"]) == 0
    result = json.loads((folder / "results" / "result.json").read_text())
    assert result["max_load"] == pytest.approx(result["summary"]["simulated_time_per_sample"], rel=5e-3)


# Small settings that keep every bundled scenario quick in CI.
SMALL = {"inceptionv3-inference": ["model.params.granularity=layer"]}  # operator granularity: ~34,000 ideals
SCENARIOS = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))


def test_the_required_scenarios_are_bundled():
    assert len(SCENARIOS) >= 7


#: The scenarios that take more than a few seconds even with SMALL: run by CI, not by default.
SLOW_SCENARIOS = {"gpt3-dgx-a100x4", "mixed-cluster"}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_SCENARIOS else name
                                  for name in SCENARIOS])
def test_every_bundled_scenario_runs(name, tmp_path, capsys):
    overrides = ["simulate.microbatches=40", "output.artefacts=[result,split]", *SMALL.get(name, [])]
    argv = ["run", str(REPO / "scenarios" / f"{name}.yaml"), "-o", str(tmp_path), "--no-progress", "--json"]
    for o in overrides:
        argv += ["--set", o]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    summary = printed["summary"]
    assert summary["status"] == "optimal" and summary["feasible"]
    if summary["method"] == "plan":  # a hybrid-parallel plan, simulated: the model within 2% unless adapters are shared
        if printed["simulation"]["contention"]:  # the model prices every GPU's share of a shared adapter: pessimistic
            assert -0.2 < summary["relative_difference"] <= 1e-9
        else:
            assert abs(summary["relative_difference"]) <= 0.02
        assert summary["peak_memory_simulated"] == pytest.approx(summary["peak_memory_predicted"])
        assert (tmp_path / "result.json").is_file() and (tmp_path / "plan.json").is_file()
        return
    if summary["predicted_iteration_time"] is not None:  # a flushed schedule: its closed form, within 5% on uneven splits
        assert summary["simulated_iteration_time"] == pytest.approx(summary["predicted_iteration_time"], rel=0.05)
        assert summary["simulated_time_per_sample"] >= summary["max_load"] * (1 - 1e-9)  # + the bubble
        # like with like: the prediction per microbatch is the iteration's, bubble included
        minibatch = printed["simulation"]["minibatch"]
        assert summary["predicted_time_per_sample"] == pytest.approx(summary["predicted_iteration_time"] / minibatch)
        assert summary["relative_difference"] == pytest.approx(
            summary["simulated_iteration_time"] / summary["predicted_iteration_time"] - 1)
    else:  # paper communication, unflushed: the simulation reproduces the model's time-per-pass
        assert summary["simulated_time_per_sample"] == pytest.approx(summary["predicted_time_per_sample"], rel=5e-3)
    assert (tmp_path / "result.json").is_file() and (tmp_path / "split.json").is_file()


def test_run_writes_every_artefact_and_the_report(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(_with(("model.training", True), ("hardware.prices", {"a100": 2.0}))))
    report = tmp_path / "report.html"
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--report", str(report), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "time per pass" in out and "bottleneck" in out and "a100[0]" in out
    for name in ("result.json", "split.json", "trace.json", "gantt.png", "loads.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 2 and "<table" in page and "src=\"http" not in page
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["summary"]["cost_per_million_samples"] > 0
    assert json.loads((tmp_path / "out" / "trace.json").read_text())["traceEvents"]


def test_compare_accepts_a_scenario(capsys):
    assert main(["compare", str(REPO / "scenarios" / "memory-bound.yaml"), "--methods", "dp,single", "--json"]) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)["max_load"]}
    assert rows["dp"]["feasible"] and not rows["single"]["feasible"]  # only fits when split


def test_an_onnx_model_and_no_simulation(tmp_path, capsys):
    import onnx

    from tests.pipesim.test_workloads_onnx import cnn_model

    onnx.save(cnn_model(), str(tmp_path / "cnn.onnx"))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "model": {"onnx": "cnn.onnx", "params": {"batch": 4}},
        "hardware": {"preset": "v100x4-pcie"},
        "simulate": {"enabled": False},
        "output": {"dir": "out", "artefacts": ["result", "plots", "report"]},
    }))
    assert main(["run", str(tmp_path / "s.yaml"), "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["simulated_time_per_sample"] is None and summary["latency_source"] == "model"
    assert summary["samples_per_pass"] == 4
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "loads.png").is_file()


def test_an_infeasible_scenario_says_so(tmp_path, capsys):
    data = _with(("hardware.whatif.a100.memory", 1e-9), ("hardware.whatif.cpu", {"count": 0}), ("model.training", True))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    assert main(["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "o"), "--no-progress"]) == 3  # EXIT_INFEASIBLE
    assert "infeasible" in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "result.json").read_text())["max_load"] is None


def test_hardware_from_a_file_next_to_the_scenario(tmp_path):
    (tmp_path / "box.yaml").write_text(yaml.safe_dump({"systems": {"box": {"classes": [
        {"name": "gpu", "device": "h100-sxm", "count": 3, "host_link": "pcie5-x16"},
        {"name": "cpu", "device": "xeon-8380-core", "count": 1},
    ]}}}))
    data = _with(("hardware", {"file": "box.yaml", "whatif": {"gpu": {"link": 2}}}))
    s = scenario_from_data(data, tmp_path / "s.yaml")
    assert s.system.group("gpu").count == 3
    assert s.workload().device_class("gpu").count == 3


def test_bad_overrides_are_input_errors(capsys):
    path = str(REPO / "scenarios" / "gnmt-inference.yaml")
    assert main(["run", path, "--set", "a..b=1"]) == 2
    assert main(["run", path, "--set", "hardware.devices[3].count=1"]) == 2
    assert main(["run", path, "--set", "simulate.microbatches=none"]) == 2
    err = capsys.readouterr().err
    assert "field path" in err and "simulate.microbatches" in err and "Traceback" not in err


def test_issue15_keys_reach_the_import_the_memory_model_and_the_links(tmp_path):
    onnx_model = REPO / "scenarios" / "examples" / "encoder-small.onnx"
    data = {"model": {"onnx": str(onnx_model), "params": {"batch": 2, "dtype": "fp16", "fuse_depth": 2},
                      "training": True, "optimizer": "sgd-momentum"},
            "hardware": {"preset": "a100x8", "transfers": "host"}}
    s = scenario_from_data(data, tmp_path / "s.yaml")
    assert s.optimizer == "sgd-momentum" and s.system.transfers == "host" and s.ops.dtype == "fp16"
    unfused = scenario_from_data({**data, "model": {**data["model"], "params": {"batch": 2}}}, tmp_path / "s.yaml")
    assert len(s.ops.ops) < len(unfused.ops.ops)
    problems = _problems({**data, "model": {**data["model"], "optimizer": "lion"}})
    assert "mixed-adam" in problems["model.optimizer"]
