"""``pipesim estimate CONFIG --sailor-plan PLAN``: pipesim/commands/sailor_estimate.run (docs/model.md §12.2)."""

from __future__ import annotations

import argparse
import json

import pytest

from pipesim.commands.sailor_estimate import run
from tests.strategies import SHARED

SAILOR = SHARED.parent / "sailor"
PLAN = SAILOR / "validation" / "OPT-350" / "N8_plan_config_N8_D2.json"
CONFIG = SAILOR / "training_config_opt_350.json"


@pytest.fixture(autouse=True)
def _needs_sailor():
    if not SAILOR.is_dir():
        pytest.skip(f"Sailor's files are not at {SAILOR} (../shared is absent)")


def args(**kw):
    return argparse.Namespace(**{"model": str(CONFIG), "sailor_plan": str(PLAN), "profiles": None, "json": True, **kw})


def test_json_has_iteration_time_memory_and_breakdown(capsys):
    assert run(args()) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["iteration_time"] > 0 and out["memory_per_gpu"] > 0
    b = out["breakdown"]
    total = b["pipeline_fill_drain"] + b["pipeline_steady"] + b["optimizer"] + b["gradient_sync"]
    assert out["iteration_time"] == pytest.approx(total)
    assert len(out["stages"]) == 4 and out["measured"]["iteration_time"] == 2.69795


def test_profiles_folder_given_explicitly_gives_the_same(capsys):
    run(args())
    a = json.loads(capsys.readouterr().out)
    run(args(profiles=str(SAILOR)))
    assert json.loads(capsys.readouterr().out) == a


def test_table_shows_prediction_against_measurement(capsys):
    assert run(args(json=False)) == 0
    out = capsys.readouterr().out
    assert "iteration time" in out and "measured 2.698 s" in out and "%" in out


def test_rebuild_of_received_tensors_is_shown_per_stage(capsys):
    # GH200 replicas rebuild every received tensor (§12.2); the middle stages receive twice per microbatch
    run(args())
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert [s["rebuild"] > 0 for s in stages] == [True] * 4
    assert stages[1]["rebuild"] == pytest.approx(2 * stages[0]["rebuild"])
    assert all(s["rebuild"] < s["transfer"] for s in stages)
    assert run(args(json=False)) == 0
    assert "rebuilding received tensors" in capsys.readouterr().out


@pytest.mark.parametrize("kw, names", [
    ({"sailor_plan": "/no/such/plan.json"}, "/no/such/plan.json"),
    ({"profiles": "/no/such/dir"}, "/no/such/dir: profiles"),
    ({"model": str(SAILOR / "README.md")}, "README.md"),
])
def test_bad_input_is_one_line_exit_2(capsys, kw, names):
    assert run(args(**kw)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and names in err and "Traceback" not in err


def test_plan_with_a_broken_field(capsys, tmp_path):
    data = json.loads(PLAN.read_text())
    data["pipeline_list"][0]["dp"][1] = 3
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps(data))
    assert run(args(sailor_plan=str(bad))) == 2
    assert "pipeline_list[0].tmp_per_stage[1]: must list dp[1]=3 replicas" in capsys.readouterr().err
