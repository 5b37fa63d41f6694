"""`pipesim simulate`: JSON, tables, trace and Gantt outputs, one-line errors."""

import json

import pytest

from pipesim.cli import main

TRAINING = {
    "maxSizePerFPGA": 1000.0, "maxFPGAs": 2, "maxCPUs": 1,
    "nodes": [
        {"id": 1, "supportedOnFpga": 1, "cpuLatency": 10.0, "fpgaLatency": 1.0, "isBackwardNode": 0, "size": 10.0, "colorClass": 1},
        {"id": 2, "supportedOnFpga": 1, "cpuLatency": 20.0, "fpgaLatency": 2.0, "isBackwardNode": 0, "size": 10.0, "colorClass": 2},
        {"id": 3, "supportedOnFpga": 1, "cpuLatency": 20.0, "fpgaLatency": 2.0, "isBackwardNode": 1, "colorClass": 2},
        {"id": 4, "supportedOnFpga": 1, "cpuLatency": 30.0, "fpgaLatency": 3.0, "isBackwardNode": 1, "colorClass": 1},
    ],
    "edges": [
        {"sourceId": 1, "destId": 2, "cost": 0.5, "size": 100.0},
        {"sourceId": 2, "destId": 3, "cost": 0.5, "size": 100.0},
        {"sourceId": 3, "destId": 4, "cost": 0.25, "size": 100.0},
        {"sourceId": 1, "destId": 4, "cost": 0.5, "size": 100.0},
    ],
}


@pytest.fixture
def files(tmp_path):
    w = tmp_path / "w.json"
    w.write_text(json.dumps(TRAINING))
    s = tmp_path / "s.json"
    s.write_text(json.dumps({"fpgas": [{"nodes": [1]}, {"nodes": [2]}], "cpus": [{"nodes": []}]}))
    return w, s


@pytest.mark.parametrize("schedule", ["1f1b", "gpipe", "1f1b-flush", "stream"])
def test_json_has_prediction_and_simulation_at_top_level(files, capsys, schedule):
    w, s = files
    assert main(["simulate", str(w), str(s), "--schedule", schedule, "--microbatches", "12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # accelerator[0]: 1 + 3 compute, sends 1 (0.5), receives 3 (0.25); accelerator[1]: 2 + 2, receives 1, sends 3
    assert out["predicted_time_per_sample"] == pytest.approx(4.75)
    assert out["simulated_time_per_sample"] >= out["predicted_time_per_sample"] - 1e-9
    assert {"latency", "devices", "bubble_fraction", "memory_overflows"} <= set(out)


@pytest.mark.slow
def test_table_trace_and_gantt(files, tmp_path, capsys):
    w, s = files
    trace, gantt = tmp_path / "run.json", tmp_path / "run.png"
    assert main(["simulate", str(w), str(s), "--comm", "overlap", "--trace", str(trace), "--gantt", str(gantt)]) == 0
    out = capsys.readouterr().out
    assert "predicted time-per-sample" in out and "accelerator[1]" in out
    events = json.loads(trace.read_text())["traceEvents"]
    assert {e["ph"] for e in events} == {"M", "X"}
    assert any(e["name"] == "compute 4" for e in events)
    assert gantt.read_bytes().startswith(b"\x89PNG")


def test_memory_overflow_is_flagged(tmp_path, capsys):
    # 10 bytes of node memory (counting one microbatch's stash, docs/model.md §2.6) + 100 per further
    # microbatch in flight: stage 0 holds 2 under 1F1B, 110 bytes
    small = dict(TRAINING, maxSizePerFPGA=100.0)
    w = tmp_path / "w.json"
    w.write_text(json.dumps(small))
    s = tmp_path / "s.json"
    s.write_text(json.dumps({"fpgas": [{"nodes": [1]}, {"nodes": [2]}], "cpus": []}))
    assert main(["simulate", str(w), str(s), "--schedule", "1f1b", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (overflow,) = out["memory_overflows"]
    assert overflow["device"] == "accelerator[0]" and overflow["memory"] == 110.0
    stage0 = out["devices"][0]
    assert stage0["peak_in_flight"] == 2 and stage0["peak_memory"] == 110.0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--schedule", "nope"], "invalid choice"),
        (["--microbatches", "x"], "microbatches"),
        (["--microbatches", "0"], "must be a positive whole number"),
        (["--minibatch", "0", "--schedule", "gpipe"], "must be a positive whole number"),
    ],
)
def test_bad_arguments_are_one_line_errors(files, capsys, extra, message):
    w, s = files
    try:
        code = main(["simulate", str(w), str(s), *extra])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err


def test_training_schedule_on_inference_graph_is_a_one_line_error(tmp_path, capsys):
    inference = dict(TRAINING, nodes=TRAINING["nodes"][:2], edges=TRAINING["edges"][:1])
    w = tmp_path / "w.json"
    w.write_text(json.dumps(inference))
    s = tmp_path / "s.json"
    s.write_text(json.dumps({"fpgas": [{"nodes": [1]}, {"nodes": [2]}], "cpus": []}))
    assert main(["simulate", str(w), str(s), "--schedule", "gpipe"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a training graph" in err
