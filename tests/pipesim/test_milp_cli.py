"""`pipesim solve --method ip` and `pipesim latency`: JSON headlines, tables, errors."""

import json

import pytest

from pipesim.cli import main

# a -> b -> c: on one accelerator 0.1 + 0.2 + 0.4; the CPU is 10x slower
WORKLOAD = {
    "maxSizePerFPGA": 100.0, "maxFPGAs": 2, "maxCPUs": 1,
    "nodes": [
        {"id": 1, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 0.1, "isBackwardNode": 0, "size": 1.0},
        {"id": 2, "supportedOnFpga": 1, "cpuLatency": 2.0, "fpgaLatency": 0.2, "isBackwardNode": 0},
        {"id": 3, "supportedOnFpga": 1, "cpuLatency": 4.0, "fpgaLatency": 0.4, "isBackwardNode": 0},
    ],
    "edges": [{"sourceId": 1, "destId": 2, "cost": 0.05}, {"sourceId": 2, "destId": 3, "cost": 0.05}],
}


@pytest.fixture
def workload(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(WORKLOAD))
    return path


@pytest.mark.parametrize("extra", [["--method", "ip"], ["--method", "ip-noncontiguous", "--solver", "cbc"],
                                   ["--method", "ip", "--objective", "diffmaxima"]])
def test_solve_ip_json(workload, capsys, extra):
    assert main(["solve", str(workload), "--json", *extra]) == 0
    out = json.loads(capsys.readouterr().out)
    # {1, 2} | {3}: 0.3 + send 0.05 against receive 0.05 + 0.4
    assert out["status"] == "optimal" and out["max_load"] == pytest.approx(0.45)


def test_latency_methods_and_split(workload, tmp_path, capsys):
    assert main(["latency", str(workload), "--method", "greedy", "--json"]) == 0
    greedy = json.loads(capsys.readouterr().out)
    assert greedy["latency"] == pytest.approx(0.7)  # everything on one accelerator
    split = tmp_path / "s.json"
    assert main(["latency", str(workload), "--method", "ip", "--q", "2", "-o", str(split)]) == 0
    assert "latency: 0.7" in capsys.readouterr().out
    assert main(["latency", str(workload), "--split", str(split), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["latency"] == pytest.approx(0.7)


def test_latency_errors_are_one_line(workload, tmp_path, capsys):
    assert main(["latency", str(workload), "--split", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err
