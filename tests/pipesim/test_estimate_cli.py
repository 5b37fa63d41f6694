"""Item 3 of issue 19: ``pipesim estimate`` and ``pipesim.estimate``."""

from __future__ import annotations

import json
import sys
import types

import pytest

import pipesim
from pipesim.cli import main

ARGS = ["estimate", "llama3.1-70b", "--hardware", "dgx-h100x16", "--nodes", "8", "--tp", "4", "--pp", "4", "--cp", "2",
        "--vp", "5", "--mbs", "1", "--gbs", "128"]


def test_json_has_the_promised_keys(capsys):
    assert main([*ARGS, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"iteration_time", "memory_per_gpu", "fits", "tokens_per_second_per_gpu", "model_tflops_per_gpu",
            "breakdown"} <= set(data)
    assert set(data["breakdown"]) == {"compute", "bubble", "tp_comm", "cp_comm", "pp_comm", "dp_comm", "optimizer"}
    assert data["config"]["dp"] == 2 and data["config"]["gpus"] == 64
    assert data["config"]["sequence_parallel"] is True and data["config"]["distributed_optimizer"] is True
    assert sum(data["breakdown"].values()) == pytest.approx(data["iteration_time"])
    same = pipesim.estimate("llama3.1-70b", "dgx-h100x16", nodes=8, tp=4, pp=4, cp=2, vp=5, mbs=1, gbs=128)
    assert same.iteration_time == pytest.approx(data["iteration_time"])


def test_no_pp_overlap_exposes_the_pipeline_transfers(capsys):
    assert main([*ARGS, "--json"]) == 0
    overlapped = json.loads(capsys.readouterr().out)
    assert main([*ARGS, "--no-pp-overlap", "--json"]) == 0
    exposed = json.loads(capsys.readouterr().out)
    assert overlapped["config"]["pp_overlap"] is True and exposed["config"]["pp_overlap"] is False
    assert exposed["breakdown"]["pp_comm"] > overlapped["breakdown"]["pp_comm"]
    same = pipesim.estimate("llama3.1-70b", "dgx-h100x16", nodes=8, tp=4, pp=4, cp=2, vp=5, gbs=128, pp_overlap=False)
    assert same.iteration_time == pytest.approx(exposed["iteration_time"])


def test_table_and_flags(capsys):
    assert main([*ARGS, "--precision", "fp8", "--recompute", "full", "--no-sequence-parallel",
                 "--no-distributed-optimizer"]) == 0
    out = capsys.readouterr().out
    assert "iteration time" in out and "memory per GPU" in out and "recompute full" in out


def test_model_file(tmp_path, capsys):
    f = tmp_path / "m.yaml"
    f.write_text("model:\n  generator: transformer\n  params: {layers: 8, hidden: 1024, ffn_hidden: 4096, heads: 16,"
                 " kv_heads: 4, vocab: 32000, seq: 2048, gated: true, decoder: true}\n")
    assert main(["estimate", str(f), "--hardware", "dgx-a100x4", "--tp", "2", "--pp", "2", "--gbs", "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is True and data["config"]["dp"] == 8


@pytest.mark.parametrize("extra, needle", [
    (["--tp", "3"], "--tp/--pp/--cp"),
    (["--gbs", "100"], "--gbs"),
    (["--precision", "fp4"], "invalid choice"),
    (["--tp", "0"], "--tp"),
])
def test_bad_input_is_one_line_exit_2(capsys, extra, needle):
    assert main([*ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_model_file_names_file_and_field(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text("model: {generator: transformer, params: {layers: 8, hidden: 1024, heads: 16, kv_head: 4}}\n")
    assert main(["estimate", str(f), "--hardware", "dgx-a100x4", "--gbs", "64"]) == 2
    err = capsys.readouterr().err
    assert f"{f}: model.params.kv_head" in err and len(err.strip().splitlines()) == 1


def test_missing_required_flags(capsys):
    assert main(["estimate", "llama3.1-8b", "--gbs", "8"]) == 2
    assert "--hardware" in capsys.readouterr().err
    assert main(["estimate", "llama3.1-8b", "--hardware", "dgx-h100x16"]) == 2
    assert "--gbs" in capsys.readouterr().err


def test_sailor_plan_is_delegated(monkeypatch, tmp_path):
    seen = {}
    fake = types.ModuleType("pipesim.commands.sailor_estimate")

    def run(args):
        seen.update(model=args.model, plan=args.sailor_plan, profiles=args.profiles, json=args.json)
        return 0

    fake.run = run
    monkeypatch.setitem(sys.modules, "pipesim.commands.sailor_estimate", fake)
    assert main(["estimate", "m.yaml", "--sailor-plan", "p.json", "--profiles", "dir", "--json"]) == 0
    assert seen == {"model": "m.yaml", "plan": "p.json", "profiles": "dir", "json": True}


def test_cluster_yaml_and_resizing(tmp_path, capsys):
    f = tmp_path / "mine.yaml"
    f.write_text("clusters:\n  mine:\n    nodes:\n      - {type: dgx-h100, count: 2}\n")
    assert main(["estimate", "llama3.1-8b", "--hardware", str(f), "--gbs", "64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["gpus"] == 16
    assert main(["estimate", "llama3.1-8b", "--hardware", "mixed-a100-v100", "--nodes", "2", "--gbs", "64"]) == 2
    assert "--nodes" in capsys.readouterr().err
    assert main(["estimate", "llama3.1-8b", "--hardware", "mixed-a100-v100", "--gbs", "64"]) == 2
    assert "mixes node types" in capsys.readouterr().err
