"""``pipesim plan TRAINING_CONFIG.json --hardware CLUSTER --objective time|cost`` (docs/model.md §12.4)."""

from __future__ import annotations

import argparse
import json

import pytest

from pipesim.cli import main
from pipesim.commands import sailor_estimate
from tests.strategies import SHARED

SAILOR = SHARED.parent / "sailor"
CONFIG = SAILOR / "training_config_opt_350.json"


@pytest.fixture(autouse=True)
def _needs_sailor():
    if not SAILOR.is_dir():
        pytest.skip(f"Sailor's files are not at {SAILOR} (../shared is absent)")


@pytest.mark.slow
def test_plan_json_and_round_trip_through_estimate(capsys, tmp_path):
    out = tmp_path / "plan.json"
    assert main(["plan", str(CONFIG), "--hardware", "gcp-a100-v100", "--objective", "cost", "--budget", "20",
                 "--max-kinds", "1", "--json", "-o", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["objective"] == "cost" and data["price_per_hour"] <= 20
    assert data["cost_per_iteration"] == pytest.approx(data["iteration_time"] * data["price_per_hour"] / 3600
                                                       + data["egress_per_iteration"])
    # the written plan is Sailor's format: the estimate command reads it back
    args = argparse.Namespace(model=str(CONFIG), sailor_plan=str(out), profiles=None, json=True)
    assert sailor_estimate.run(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["microbatches"] == data["estimate"]["microbatches"]
    assert len(again["stages"]) == len(data["estimate"]["stages"])


@pytest.mark.slow
def test_plan_table(capsys):
    assert main(["plan", str(CONFIG), "--hardware", "two-zone-a100-v100", "--objective", "time",
                 "--max-kinds", "1", "--max-stages", "2"]) == 0
    out = capsys.readouterr().out
    assert "iteration time" in out and "GPUs used" in out and "per iteration" in out


@pytest.mark.parametrize("argv, message", [
    (["--hardware", "nope", "--objective", "time"], "unknown cluster 'nope'"),
    (["--objective", "time"], "--hardware"),
    (["--hardware", "mixed-a100-v100", "--objective", "cost"], "no price_per_gpu_hour"),
    (["--hardware", "gcp-a100-v100", "--objective", "time", "--budget", "-3"], "--budget"),
])
def test_bad_input_one_line_exit_2(capsys, argv, message):
    assert main(["plan", str(CONFIG), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_piper_objectives_unchanged_and_time_needs_a_training_config(capsys, tmp_path):
    bogus = tmp_path / "w.json"
    bogus.write_text(json.dumps({"nodes": [], "edges": []}))
    assert main(["plan", str(bogus), "--objective", "time"]) == 2
    assert "time|cost plan a Sailor training config" in capsys.readouterr().err


def test_cluster_without_profiled_gpu_types(capsys):
    # (mixed-a100-v100's node types now name Sailor's A100-80 and V100-16: it is plannable; H100s are not profiled)
    assert main(["plan", str(CONFIG), "--hardware", "dgx-h100x16", "--objective", "time"]) == 2
    assert "profiles none of dgx-h100x16's GPU types (h100-sxm" in capsys.readouterr().err


@pytest.mark.slow
def test_planner_all_json_pipesim_first_and_never_worse(capsys):
    assert main(["plan", str(CONFIG), "--hardware", "gcp-a100-v100", "--objective", "time", "--planner", "all",
                 "--max-stages", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["planners"]
    assert [r["planner"] for r in rows] == ["pipesim", "uniform", "metis", "amp"]
    ours = rows[0]["iteration_time"]
    assert all(ours <= r["iteration_time"] * (1 + 1e-9) for r in rows if "iteration_time" in r)
    assert all(r["search_seconds"] > 0 for r in rows if "search_seconds" in r)


@pytest.mark.slow
def test_planner_all_table(capsys):
    assert main(["plan", str(CONFIG), "--hardware", "two-zone-a100-v100", "--objective", "cost", "--planner", "all",
                 "--max-stages", "2"]) == 0
    out = capsys.readouterr().out
    assert "metis" in out and "amp" in out and "uniform" in out and "cost vs pipesim" in out


@pytest.mark.slow
def test_baseline_plan_round_trips_through_estimate(capsys, tmp_path):
    out = tmp_path / "metis.json"
    assert main(["plan", str(CONFIG), "--hardware", "gcp-a100-v100", "--objective", "time", "--planner", "metis",
                 "--max-stages", "2", "--json", "-o", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["planner"] == "metis"
    args = argparse.Namespace(model=str(CONFIG), sailor_plan=str(out), profiles=None, json=True)
    assert sailor_estimate.run(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["microbatches"] == data["estimate"]["microbatches"]


@pytest.mark.parametrize("argv, message", [
    (["--planner", "amp", "--budget", "3"], "--planner: --budget"),
    (["--planner", "metis", "--min-throughput", "1"], "--planner: --min-throughput"),
    (["--planner", "all", "-o", "x.json"], "-o:"),
])
def test_baseline_bad_input_one_line_exit_2(capsys, argv, message):
    assert main(["plan", str(CONFIG), "--hardware", "gcp-a100-v100", "--objective", "time", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
