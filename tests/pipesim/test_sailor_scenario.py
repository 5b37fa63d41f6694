"""Heterogeneous scenarios: ``model: {sailor: CONFIG}`` planned by ``pipesim plan``/``run`` and from Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pipesim
from pipesim.cli import main
from pipesim.errors import InputError
from pipesim.hetero_scenario import hetero_scenario_data, read_hetero_scenario
from tests.strategies import SHARED

SAILOR = SHARED.parent / "sailor"
CONFIG = SAILOR / "training_config_opt_350.json"
BUNDLED = Path(__file__).resolve().parents[2] / "scenarios" / "hetero" / "sailor"


def write(folder: Path, text: str, config: Path | None = None) -> Path:
    if config is None:
        config = folder / "job.json"
        config.write_text("{}")
    path = folder / "s.yaml"
    path.write_text(f"model: {{sailor: {config}}}\n" + text)
    return path


@pytest.mark.parametrize("text, field", [
    ("hardware: {cluster: gh200-a100}\nextra: 1\n", "extra"),
    ("solve: {method: plan}\n", "hardware.cluster"),
    ("hardware: {cluster: gh200-a100}\nsolve: {method: dp}\n", "solve.method"),
    ("hardware: {cluster: gh200-a100}\nsolve: {options: {objective: flush}}\n", "solve.options.objective"),
    ("hardware: {cluster: gh200-a100}\nsolve: {options: {budget: -1}}\n", "solve.options.budget"),
    ("hardware: {cluster: gh200-a100}\nsolve: {options: {max_stages: 1.5}}\n", "solve.options.max_stages"),
    ("hardware: {cluster: gh200-a100}\nsolve: {options: {microbatches: 4}}\n", "solve.options.microbatches"),
    ("hardware: {cluster: gh200-a100, preset: a100x8}\n", "hardware.preset"),
])
def test_bad_fields_are_named(tmp_path, text, field):
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=rf"s\.yaml: {field}"):
        read_hetero_scenario(path)


def test_missing_training_config_is_named(tmp_path):
    path = write(tmp_path, "hardware: {cluster: gh200-a100}\n", config=tmp_path / "absent.json")
    with pytest.raises(InputError, match=r"s\.yaml: model\.sailor: no file"):
        read_hetero_scenario(path)


def test_other_scenarios_are_not_taken(tmp_path):
    assert hetero_scenario_data(BUNDLED.parents[0] / "mixed-a100-v100.yaml") is None
    assert hetero_scenario_data(tmp_path / "absent.yaml") is None
    assert hetero_scenario_data(str(CONFIG)) is None


def test_paths_resolve_against_the_file_and_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("clusters: {}\n")
    path = write(tmp_path, "hardware: {cluster: c.yaml}\n")
    s = read_hetero_scenario(path)
    assert (s.cluster, s.objective, s.max_stages, s.budget, s.name) == (str(tmp_path / "c.yaml"), "time", 3, None, "s")


@pytest.fixture
def sailor_dir():
    if not SAILOR.is_dir():
        pytest.skip(f"Sailor's files are not at {SAILOR} (../shared is absent)")
    return SAILOR


def test_plan_scenario_is_plan_config_and_flags_override(sailor_dir, tmp_path, capsys):
    path = write(tmp_path, "hardware: {cluster: gh200-a100}\nsolve: {options: {objective: time, budget: 40, "
                           "max_stages: 2}}\n", config=CONFIG)
    assert main(["plan", str(path), "--json"]) == 0
    scenario = json.loads(capsys.readouterr().out)
    assert main(["plan", str(CONFIG), "--hardware", "gh200-a100", "--objective", "time", "--budget", "40",
                 "--max-stages", "2", "--json"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert scenario["plan"] == direct["plan"] and scenario["iteration_time"] == direct["iteration_time"]
    assert scenario["price_per_hour"] <= 40
    # a flag wins over the scenario's option: a smaller budget buys fewer GPUs
    assert main(["plan", str(path), "--budget", "10", "--json"]) == 0
    tight = json.loads(capsys.readouterr().out)
    assert tight["price_per_hour"] <= 10 < scenario["price_per_hour"]


def test_run_scenario_plans_and_simulates(sailor_dir, tmp_path, capsys):
    path = write(tmp_path, "hardware: {cluster: gh200-a100}\nsolve: {options: {budget: 40, max_stages: 2}}\n",
                 config=CONFIG)
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert written["plan"]["iteration_time"] == cli["plan"]["iteration_time"]
    outcome = pipesim.run_scenario(path)
    assert outcome.files == {}
    s = outcome.summary()
    assert s["iteration_time"] == pytest.approx(cli["plan"]["iteration_time"])
    assert abs(s["difference"]) < 0.05  # the events against the closed form (§12.6)
    assert outcome.to_dict()["plan"]["plan"] == written["plan"]["plan"]
    assert main(["run", str(path), "--set", "x=1"]) == 2
    assert "--set" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.name for p in BUNDLED.glob("*.yaml")))
def test_bundled_scenarios_plan(sailor_dir, name, capsys):
    assert main(["plan", str(BUNDLED / name), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["iteration_time"] > 0 and sum(data["gpus_used"].values()) >= 1
