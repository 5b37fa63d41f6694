"""`pipesim solve --method dp`: table, JSON, split file readable by `evaluate`, one-line errors."""

import json
import subprocess
import sys

import pytest

from pipesim.cli import main

CHAIN = {
    "maxSizePerFPGA": 10.0, "maxFPGAs": 2, "maxCPUs": 1,
    "nodes": [
        {"id": i, "supportedOnFpga": 1, "cpuLatency": 10.0 * (i + 1), "fpgaLatency": float(i + 1),
         "isBackwardNode": 0, "size": 3.0}
        for i in range(4)
    ],
    "edges": [{"sourceId": i, "destId": i + 1, "cost": 0.5} for i in range(3)],
}


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(CHAIN))
    return path


def test_solve_writes_a_split_that_evaluates_to_the_same_max_load(chain, tmp_path, capsys):
    out = tmp_path / "split.json"
    assert main(["solve", str(chain), "-o", str(out), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "max-load: 6.5 (optimal" in table  # {0,1,2} | {3}: 1+2+3+0.5 vs 4+0.5
    assert main(["evaluate", str(chain), str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_load"] == pytest.approx(6.5)


def test_solve_json_and_device_overrides(chain, capsys):
    assert main(["solve", str(chain), "--json", "--accelerators", "4", "--memory", "100B"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "optimal" and result["max_load"] == pytest.approx(4.5)
    assert result["stats"]["ideals"] == 5 and result["gap"] == 0.0
    assert set(result["split"]) >= {"fpgas", "cpus", "maxLoad"}


def test_infeasible_memory_exits_3_with_a_message(chain, capsys):
    assert main(["solve", str(chain), "--memory", "2B", "--cpus", "0"]) == 3  # EXIT_INFEASIBLE
    assert "memory" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--memory", "12 parsecs"], "must be a positive size"),
    (["--devices", "gpu=2"], "no device class named 'gpu'"),
    (["--devices", "cpu"], "CLASS=COUNT"),
    (["--accelerators", "-1"], "must be a non-negative whole number"),
])
def test_bad_options_are_one_line_exit_2(chain, args, message):
    proc = subprocess.run([sys.executable, "-m", "pipesim", "solve", str(chain), *args], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
