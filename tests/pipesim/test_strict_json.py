"""Every file pipesim writes is strict JSON (no Infinity/NaN) and pipesim reads it back (issue 22, item 3)."""

import json
import math

import pytest
import yaml

from pipesim.cli import main
from pipesim.placement.formats import dumps, read_paper_workload, read_split
from pipesim.placement.graph import Graph, Node
from pipesim.placement.devices import paper_devices
from pipesim.placement.workload import Workload
from pipesim.workloads.io import load_workload


def strict(text: str):
    """Parse ``text`` as JSON, failing on the non-standard constants Python's json would accept."""

    def refuse(constant):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_null_and_unlimited_memory_reads_back(tmp_path):
    workload = Workload(Graph([Node(1, {"accelerator": 1.0, "cpu": 2.0})], []), paper_devices(2, 1, math.inf))
    path = tmp_path / "w.json"
    from pipesim.placement.formats import write_paper_workload

    write_paper_workload(path, workload)
    data = strict(path.read_text())
    assert data["maxSizePerFPGA"] is None
    again = read_paper_workload(path)
    assert math.isinf(again.device_class("accelerator").memory)
    # files written before (Python's Infinity) still read
    path.write_text(path.read_text().replace('"maxSizePerFPGA": null', '"maxSizePerFPGA": Infinity'))
    assert math.isinf(read_paper_workload(path).device_class("accelerator").memory)
    assert strict(dumps({"a": [float("nan"), float("-inf"), 1.5]})) == {"a": [None, None, 1.5]}


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """A profiled workload taken while the load average is unknown (NaN), as on a system without getloadavg."""
    pytest.importorskip("onnxruntime")
    import onnx

    from pipesim.runtime import profile as profile_module
    from pipesim.workloads.onnx_models import mlp_onnx

    folder = tmp_path_factory.mktemp("profiled")
    model = folder / "mlp.onnx"
    onnx.save(mlp_onnx(layers=3, width=32), model)
    mp = pytest.MonkeyPatch()
    mp.setattr(profile_module, "load_average", lambda: float("nan"))
    try:
        profile_module.profile_to_workload(model, folder / "w.json", runs=3, measure=False)
    finally:
        mp.undo()
    return folder, model


def test_profile_calibrate_import_solve_evaluate_round_trip(profiled, capsys):
    folder, model = profiled
    w = folder / "w.json"
    data = strict(w.read_text())  # the profile's unknown load average is null
    assert data["profile"]["load_average"] == [None, None]
    assert len(load_workload(w).graph.nodes) == 9
    cal = folder / "cal.yaml"
    assert main(["hardware", "calibrate", str(w), "-o", str(cal)]) == 0
    yaml.safe_load(cal.read_text())
    b = folder / "b.json"
    assert main(["graph", "import", str(model), "--hardware", str(cal), "-o", str(b)]) == 0
    assert strict(b.read_text())["maxSizePerFPGA"] is None  # the calibrated core's memory is unlimited
    strict((folder / "b.native.json").read_text())
    assert load_workload(b).graph.nodes and load_workload(folder / "b.native.json").graph.nodes
    split = folder / "split.json"
    assert main(["solve", str(b), "-o", str(split)]) == 0
    strict(split.read_text())
    read_split(split)
    capsys.readouterr()
    assert main(["evaluate", str(b), str(split), "--json"]) == 0
    strict(capsys.readouterr().out)


def test_plan_result_trace_and_json_output_are_strict(tmp_path, capsys):
    from tests.pipesim.test_plan_cli import CHAIN as chain

    path = tmp_path / "chain.json"
    path.write_text(json.dumps(chain))
    plan = tmp_path / "plan.json"
    # infeasible under this memory (exit 3): the plan's time is infinite, written as null
    assert main(["plan", str(path), "-o", str(plan), "--memory", "0.1B", "--bandwidth", "1B/s", "--json"]) == 3
    strict(capsys.readouterr().out)
    assert main(["plan", str(path), "-o", str(plan), "--memory", "3B", "--bandwidth", "1B/s"]) == 0
    strict(plan.read_text())
    capsys.readouterr()
    assert main(["plan", "--evaluate", str(plan), str(path), "--memory", "3B", "--bandwidth", "1B/s", "--json"]) == 0
    strict(capsys.readouterr().out)


def test_run_result_and_simulation_trace_are_strict(tmp_path, capsys):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    scenario = tmp_path / "s.yaml"
    (tmp_path / "given.json").write_text((repo / "scenarios/examples/encoder10.json").read_text())
    scenario.write_text(yaml.safe_dump({"model": {"workload": "given.json"}, "output": {"dir": "results"}}))
    assert main(["run", str(scenario), "--no-progress", "--set", "output.artefacts=[result]"]) == 0
    result = strict((tmp_path / "results" / "result.json").read_text())
    assert result["max_load"] > 0
    w = tmp_path / "given.json"
    split = tmp_path / "split.json"
    assert main(["solve", str(w), "-o", str(split)]) == 0
    trace = tmp_path / "trace.json"
    assert main(["simulate", str(w), str(split), "--microbatches", "4", "--trace", str(trace)]) == 0
    strict(trace.read_text())


def test_sweep_rows_with_infinite_metrics_are_strict_and_read_back(tmp_path):
    from pipesim.sweep import _Writer, read_rows

    writer = _Writer(tmp_path, ["x"], [])
    writer.write({"key": "a", "params": {"x": 1}, "status": "infeasible", "max_load": math.inf})
    writer.close()
    text = (tmp_path / "sweep.jsonl").read_text()
    strict(text.splitlines()[0])
    assert read_rows(tmp_path / "sweep.jsonl")[0]["max_load"] is None
