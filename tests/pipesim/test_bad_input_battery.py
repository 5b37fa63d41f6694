"""Issue 12's battery: split files round-trip for every writer × reader, and bad files never give a traceback.

Each command is run as a user runs it (``main([...])``): an error must be one
line on stderr, exit code 2, naming the file or the flag.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from pipesim.cli import main
from pipesim.hardware.catalog import load_system
from pipesim.workloads.lower import lower
from pipesim.workloads.native import write_native_workload
from pipesim.workloads.transformer import TransformerConfig, transformer

SMALL = TransformerConfig(layers=3, hidden=64, heads=4, seq=16, batch=2, vocab=100, max_positions=16)


@pytest.fixture
def mixed(tmp_path):
    """A native workload of a mixed A100/V100 box (classes a100, v100, cpu: none is 'accelerator')."""
    path = tmp_path / "mixed.json"
    write_native_workload(path, lower(transformer(SMALL), load_system("mixed-a100x4-v100x4"), training=False))
    return path


def _one_line_error(capsys, code, *words):
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def _json(capsys):
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------ writers × readers
WRITERS = {
    "solve": lambda w, s: ["solve", str(w), "-o", str(s), "--json"],
    "solve-ip": lambda w, s: ["solve", str(w), "--method", "ip", "-o", str(s), "--json"],
    "latency": lambda w, s: ["latency", str(w), "--method", "greedy", "-o", str(s), "--json"],
}
READERS = {
    "evaluate": lambda w, s: ["evaluate", str(w), str(s), "--json"],
    "simulate": lambda w, s: ["simulate", str(w), str(s), "--microbatches", "12", "--json"],
    "latency --split": lambda w, s: ["latency", str(w), "--split", str(s), "--json"],
    "compare --split": lambda w, s: ["compare", str(w), "--methods", "expert", "--split", str(s), "--json"],
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("writer", WRITERS)
def test_every_split_writer_feeds_every_reader(mixed, tmp_path, capsys, writer, reader):
    split = tmp_path / "out" / "split.json"  # a folder that does not exist yet: created
    assert main(WRITERS[writer](mixed, split)) == 0, capsys.readouterr().err
    capsys.readouterr()
    data = json.loads(split.read_text())
    assert "fpgas" not in data and "cpus" in data and set(data["devices"]) <= {"a100", "v100"}
    assert main(READERS[reader](mixed, split)) == 0, capsys.readouterr().err


def test_run_writes_the_workload_it_solved_beside_its_split(tmp_path, capsys):
    scenario = pathlib.Path(__file__).resolve().parents[2] / "scenarios" / "mixed-a100-v100.yaml"
    out = tmp_path / "run"
    assert main(["run", str(scenario), "-o", str(out), "--no-progress", "--set", "simulate.microbatches=20",
                 "--set", "output.artefacts=[result,split,workload]", "--json"]) == 0
    max_load = _json(capsys)["max_load"]
    for command in (["evaluate", str(out / "workload.json"), str(out / "split.json"), "--json"],
                    ["simulate", str(out / "workload.json"), str(out / "split.json"), "--microbatches", "20", "--json"]):
        assert main(command) == 0, capsys.readouterr().err
        result = _json(capsys)
        assert result.get("max_load", result.get("predicted_time_per_sample")) == pytest.approx(max_load)


# ------------------------------------------------------------ files and sizes
def _unreadable(monkeypatch, name):
    """Reading ``name`` raises PermissionError (root ignores chmod, so the test patches the read)."""
    real_open, real_read = pathlib.Path.open, pathlib.Path.read_text

    def refuse(self, *a, **k):
        if self.name == name:
            raise PermissionError(13, "Permission denied", str(self))
        return None

    monkeypatch.setattr(pathlib.Path, "open", lambda self, *a, **k: refuse(self) or real_open(self, *a, **k))
    monkeypatch.setattr(pathlib.Path, "read_text", lambda self, *a, **k: refuse(self) or real_read(self, *a, **k))


@pytest.mark.parametrize("command", [
    ["info", "{w}"], ["evaluate", "{w}", "{s}"], ["solve", "{w}"], ["simulate", "{w}", "{s}"],
    ["latency", "{w}", "--method", "greedy"], ["compare", "{w}"],
])
def test_unreadable_workload_is_one_line(mixed, tmp_path, capsys, monkeypatch, command):
    split = tmp_path / "s.json"
    assert main(["solve", str(mixed), "-o", str(split)]) == 0
    capsys.readouterr()
    _unreadable(monkeypatch, mixed.name)
    args = [a.format(w=mixed, s=split) for a in command]
    _one_line_error(capsys, main(args), str(mixed), "permission denied")


def test_unreadable_scenario_is_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\n")
    _unreadable(monkeypatch, path.name)
    _one_line_error(capsys, main(["run", str(path)]), "permission denied")


@pytest.mark.slow
def test_outputs_into_missing_folders_and_onto_directories(mixed, tmp_path, capsys):
    split = tmp_path / "a" / "b" / "split.json"
    assert main(["solve", str(mixed), "-o", str(split)]) == 0 and split.exists()
    trace, gantt = tmp_path / "t" / "run.json", tmp_path / "g" / "run.png"
    assert main(["simulate", str(mixed), str(split), "--microbatches", "10", "--trace", str(trace), "--gantt", str(gantt)]) == 0
    assert trace.exists() and gantt.exists()
    capsys.readouterr()
    _one_line_error(capsys, main(["solve", str(mixed), "-o", str(tmp_path)]), "is a directory")
    _one_line_error(capsys, main(["simulate", str(mixed), str(split), "--gantt", str(tmp_path / "g.txt")]), "chart format")
    _one_line_error(capsys, main(["simulate", str(mixed), str(split), "--gantt", str(tmp_path)]), "chart format")
    assert not (tmp_path.parent / (tmp_path.name + ".png")).exists()


def test_split_file_errors_name_the_file(mixed, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"devices": {"tpu": [{"nodes": [0]}]}}))
    _one_line_error(capsys, main(["evaluate", str(mixed), str(bad)]), str(bad), "tpu")
    bad.write_text("{not json")
    _one_line_error(capsys, main(["simulate", str(mixed), str(bad)]), str(bad), "not valid JSON")


@pytest.mark.parametrize("args, words", [
    (["--microbatches", "0"], ["must be a positive whole number"]),
    (["--microbatches", "many"], ["must be a positive whole number"]),
])
def test_argument_messages_never_show_internal_names(mixed, tmp_path, capsys, args, words):
    split = tmp_path / "s.json"
    assert main(["solve", str(mixed), "-o", str(split)]) == 0
    capsys.readouterr()
    code = main(["simulate", str(mixed), str(split), *args])
    err = capsys.readouterr().err
    assert code == 2 and "_" not in err.split("error:")[1].split(":")[0], err
    for word in words:
        assert word in err


@pytest.mark.parametrize("command, words", [
    (["solve", "{w}", "--method", "ip", "--time-limit", "-5"], ["--time-limit", "positive time"]),
    (["solve", "{w}", "--method", "ip", "--time-limit", "0"], ["positive time"]),
    (["compare", "{w}", "--method-timeout", "0"], ["--method-timeout", "positive time"]),
    (["solve", "{w}", "--restarts", "3"], ["--restarts", "not an option of dp"]),
    (["solve", "{w}", "--method", "local-search", "--restarts", "0"], ["positive whole number"]),
    (["latency", "{w}", "--q", "0"], ["positive whole number"]),
])
def test_bad_flags_are_one_line(mixed, capsys, command, words):
    code = main([a.format(w=mixed) for a in command])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_memory_violations_use_binary_units(tmp_path, capsys):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"maxSizePerFPGA": 2 ** 30, "maxFPGAs": 1, "maxCPUs": 0,
                                "nodes": [{"id": 1, "supportedOnFpga": 1, "cpuLatency": 1, "fpgaLatency": 1,
                                           "size": 3 * 2 ** 30, "isBackwardNode": 0}], "edges": []}))
    split = tmp_path / "s.json"
    split.write_text(json.dumps({"fpgas": [{"nodes": [1]}], "cpus": []}))
    assert main(["evaluate", str(path), str(split), "--json"]) == 0
    violations = _json(capsys)["violations"]
    assert any("3 GiB" in v and "1 GiB" in v for v in violations), violations


def test_whatif_takes_sizes_for_memory_and_bandwidths_for_links(tmp_path, capsys, shared_workloads):
    workload = shared_workloads / "throughput/LayerGraphs/bert24_inference.json"
    out = tmp_path / "small.json"
    assert main(["graph", "whatif", str(workload), "--whatif", "accelerator.memory=1GiB", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["maxSizePerFPGA"] == 2 ** 30
    capsys.readouterr()
    _one_line_error(capsys, main(["graph", "whatif", str(workload), "--whatif", "accelerator.link=25GB/s", "-o", str(out)]),
                    "give a factor")
    assert main(["hardware", "show", "a100x8", "--whatif", "a100.memory=40GB", "--whatif", "a100.link=25GB/s", "--json"]) == 0
    a100 = next(g for g in _json(capsys)["classes"] if g["name"] == "a100")
    assert a100["device"]["memory"] == 40e9 and a100["host_link"]["bandwidth"] == 25e9


def test_generated_native_workloads_take_compute_edits(tmp_path, capsys):
    """Seen: 'needs FLOPs and bytes … regenerate' on a workload pipesim itself generated."""
    out = tmp_path / "gen.json"
    assert main(["graph", "generate", "transformer", "--layers", "2", "--hidden", "256", "--heads", "4", "--seq", "128",
                 "--batch", "8", "--hardware", "mixed-a100x4-v100x4", "-o", str(out)]) == 0
    fast = tmp_path / "fast.json"
    assert main(["graph", "whatif", str(out), "--whatif", "a100.compute=2", "-o", str(fast)]) == 0
    regenerated = tmp_path / "regen.json"
    assert main(["graph", "generate", "transformer", "--layers", "2", "--hidden", "256", "--heads", "4", "--seq", "128",
                 "--batch", "8", "--hardware", "mixed-a100x4-v100x4", "--whatif", "a100.compute=2", "-o",
                 str(regenerated)]) == 0
    edited, direct = (json.loads(p.read_text()) for p in (fast, regenerated))
    for a, b in zip(edited["nodes"], direct["nodes"]):
        assert a["time"]["a100"] == pytest.approx(b["time"]["a100"], rel=1e-9)
        assert a["time"]["v100"] == pytest.approx(b["time"]["v100"], rel=1e-9)


def test_a_missing_extra_is_one_line_naming_it(mixed, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pymetis", None)  # as if pipesim[metis] were not installed
    _one_line_error(capsys, main(["solve", str(mixed), "--method", "partitioner"]), "pip install 'pipesim[metis]'")
    assert main(["compare", str(mixed), "--methods", "dp,partitioner"]) == 0
    assert "pip install 'pipesim[metis]'" in capsys.readouterr().out  # the table says why the row is missing
