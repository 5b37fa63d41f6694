"""`pipesim plan`: JSON keys, plan files re-evaluated by --evaluate, cluster limits, one-line errors."""

import json

import pytest

from pipesim.cli import main

CONFIG = {"timePerSample": 1.0, "parameterSize": 0.0, "memoryUsageA": 1.0, "memoryUsageB": 0.0}


def _node(i, n):
    fw = {str(i - 1): 0.0} if i else {}
    bw = {str(i + 1): 0.0} if i < n - 1 else {}
    return {"id": i, "TMPCs": {"1": [{"id": "vanilla", **CONFIG, "syncTimeFw": fw, "syncTimeBw": bw},
                                     {"id": "activation recomp", **CONFIG, "timePerSample": 1.5, "memoryUsageA": 0.0,
                                      "memoryUsageB": 0.5, "syncTimeFw": fw, "syncTimeBw": bw}]}}


CHAIN = {
    "maxDevices": 4, "maxMemoryPerDevice": 3.0, "bandwidth": 1.0, "mbsInBatch": 4,
    "nodes": [_node(i, 4) for i in range(4)],
    "edges": [{"sourceId": i, "destId": i + 1, "communicationCost": 0.0} for i in range(3)],
}


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(CHAIN))
    return path


@pytest.mark.slow
def test_plan_json_and_evaluate_round_trip(chain, tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["plan", str(chain), "--json", "-o", str(out), "--memory", "3B", "--bandwidth", "1B/s"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"time_per_sample", "status", "devices_used", "stages"} <= set(result)
    assert result["status"] == "optimal"
    stage = result["stages"][0]
    assert {"nodes", "tensor_parallel", "data_parallel", "devices", "configuration", "time", "memory_per_device"} <= set(stage)
    assert set(stage["time"]) >= {"compute", "pipeline_communication", "data_parallel_resync"}
    assert main(["plan", "--evaluate", str(out), str(chain), "--memory", "3B", "--bandwidth", "1B/s", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["time_per_sample"] == pytest.approx(result["time_per_sample"])


def test_plan_table_and_infeasible(chain, capsys):
    assert main(["plan", str(chain), "--memory", "3B", "--bandwidth", "1B/s"]) == 0
    assert "time per sample" in capsys.readouterr().out
    assert main(["plan", str(chain), "--memory", "0.1B", "--bandwidth", "1B/s", "--json"]) == 3  # EXIT_INFEASIBLE
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "infeasible" and "memory" in result["reason"]


def test_plan_cluster_limits_and_errors(chain, capsys):
    assert main(["plan", str(chain), "--hardware", "dgx-a100x4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["devices_used"] <= 32
    assert main(["plan", str(chain), "--hardware", "mixed-a100-v100"]) == 2
    assert "mixes node types" in capsys.readouterr().err
    assert main(["plan", str(chain), "--hardware", "nope"]) == 2
    assert main(["plan", str(chain), "--objective", "flush", "--hardware", "flat", "--json"]) == 0  # one node: the file's K and bandwidth
    assert json.loads(capsys.readouterr().out)["iteration_time"] > 0


@pytest.mark.slow
def test_plan_table_is_in_milliseconds_and_whole_when_piped(capsys):
    """Piped output (not a terminal): the table is as wide as it needs, nothing cut with '…'; times in ms."""
    from pathlib import Path

    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "gpt3-dgx-a100x4.yaml"
    assert main(["plan", str(scenario)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    header = next(line for line in out.splitlines() if "compute ms" in line)
    assert all(h in header for h in ("pipeline ms", "time ms", "memory/dev", "in flight"))
    row = next(line for line in out.splitlines() if line.startswith("│     0 │"))
    compute = float(row.split("│")[7])
    assert 1.0 < compute < 1000.0  # a GPT-3 6.7B stage's microbatch: milliseconds, not 0.0165 (seconds)
