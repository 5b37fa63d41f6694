"""`pipesim evaluate` and `pipesim info`, including one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from pipesim.cli import main

GOOD = {
    "maxSizePerFPGA": 100.0, "maxFPGAs": 2, "maxCPUs": 1,
    "nodes": [
        {"id": 1, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 0.1, "isBackwardNode": 0, "size": 1.0},
        {"id": 2, "supportedOnFpga": 1, "cpuLatency": 2.0, "fpgaLatency": 0.2, "isBackwardNode": 0},
    ],
    "edges": [{"sourceId": 1, "destId": 2, "cost": 0.5}],
}


@pytest.fixture
def files(tmp_path):
    w = tmp_path / "w.json"
    w.write_text(json.dumps(GOOD))
    s = tmp_path / "s.json"
    s.write_text(json.dumps({"fpgas": [{"nodes": [1]}, {"nodes": [2]}], "cpus": [{"nodes": []}]}))
    return w, s


def test_evaluate_json(files, capsys):
    w, s = files
    assert main(["evaluate", str(w), str(s), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["max_load"] == pytest.approx(0.7)
    assert [d["load"] for d in out["devices"]] == pytest.approx([0.6, 0.7, 0.0])


def test_evaluate_table(files, capsys):
    w, s = files
    assert main(["evaluate", str(w), str(s)]) == 0
    out = capsys.readouterr().out
    assert "accelerator[1]" in out and "max-load: 0.7" in out


def test_info_json(files, capsys):
    w, _ = files
    assert main(["info", str(w), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nodes"] == 2 and out["devices"][0]["total_work"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    "workload_change, split, message",
    [
        (lambda d: d["nodes"][0].__setitem__("cpuLatency", -1), None, "cpuLatency"),
        (lambda d: d["edges"].append({"sourceId": 2, "destId": 1, "cost": 0}), None, "cycle"),
        (None, {"fpgas": [{"nodes": [1, 2, 3]}]}, "node 3"),
        (None, {"fpgas": [{"nodes": [1]}]}, "node 2 is not placed"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, workload_change, split, message):
    data = json.loads(json.dumps(GOOD))
    if workload_change:
        workload_change(data)
    w = tmp_path / "w.json"
    w.write_text(json.dumps(data))
    s = tmp_path / "s.json"
    s.write_text(json.dumps(split or {"fpgas": [{"nodes": [1, 2]}]}))
    proc = subprocess.run([sys.executable, "-m", "pipesim", "evaluate", str(w), str(s)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_missing_file_and_bad_arguments(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipesim", "info", str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pipesim", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2
