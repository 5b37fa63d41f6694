"""The paper's formats: every published file loads, round-trips, and bad files are named."""

import json

import pytest

from pipesim.placement import (
    ACCELERATOR,
    InputError,
    read_paper_workload,
    read_split,
    write_paper_workload,
    write_split,
)
from pipesim.placement.evaluate import evaluate
from pipesim.placement.formats import split_to_json


def all_workloads(shared):
    files = sorted(shared.glob("*/*/*.json"))
    assert len(files) == 24
    return files


@pytest.mark.slow
def test_every_paper_workload_loads_and_round_trips(shared_workloads, tmp_path):
    for path in all_workloads(shared_workloads):
        w = read_paper_workload(path)
        raw = json.loads(path.read_text())
        assert len(w.graph.nodes) == len(raw["nodes"])
        assert w.device_class(ACCELERATOR).count == raw["maxFPGAs"]
        out = tmp_path / path.name
        write_paper_workload(out, w)
        again = read_paper_workload(out)
        assert again.graph == w.graph
        assert again.devices == w.devices


def test_split_round_trip(shared_workloads, tmp_path):
    w = read_paper_workload(shared_workloads / "throughput/LayerGraphs/gnmt_inference.json")
    ev = evaluate(w.graph, w.devices, read_split(shared_workloads / "expert-splits/gnmt_inference_expert.json"))
    write_split(tmp_path / "s.json", ev)
    again = evaluate(w.graph, w.devices, read_split(tmp_path / "s.json"))
    assert again.max_load == ev.max_load
    assert split_to_json(again)["maxLoad"] == ev.max_load


def _write(tmp_path, data):
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


GOOD = {
    "maxSizePerFPGA": 100.0,
    "maxFPGAs": 2,
    "maxCPUs": 1,
    "nodes": [
        {"id": 1, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 0.1, "isBackwardNode": 0},
        {"id": 2, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 0.1, "isBackwardNode": 0},
        {"id": 3, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 0.1, "isBackwardNode": 0},
    ],
    "edges": [{"sourceId": 1, "destId": 2, "cost": 0.5}, {"sourceId": 1, "destId": 3, "cost": 0.5}],
}


def _mutate(path_fn):
    data = json.loads(json.dumps(GOOD))
    path_fn(data)
    return data


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda d: d.pop("maxFPGAs"), "maxFPGAs: missing"),
        (lambda d: d.__setitem__("maxCPUs", -1), "maxCPUs: must be at least 0"),
        (lambda d: d["nodes"][1].__setitem__("cpuLatency", float("nan")), r"nodes\[1\] \(id 2\).cpuLatency: must be a finite"),
        (lambda d: d["nodes"][0].__setitem__("fpgaLatency", -3), r"nodes\[0\] \(id 1\).fpgaLatency"),
        (lambda d: d["nodes"][0].__setitem__("size", "big"), r"size: must be a number"),
        (lambda d: d["nodes"][2].__setitem__("id", 1), "node 1: duplicate node id"),
        (lambda d: d["edges"].append({"sourceId": 2, "destId": 7, "cost": 0}), "unknown node id 7"),
        (lambda d: d["edges"][1].__setitem__("cost", 0.7), r"edges\[1\].cost: node 1 has out-edges with different costs"),
        (lambda d: d["edges"].append({"sourceId": 3, "destId": 1, "cost": 0}), "cycle"),
        (lambda d: d["nodes"][0].__setitem__("isBackwardNode", 1), "from backward node 1 to forward node 2"),
        (lambda d: d["edges"].append({"sourceId": 2, "destId": 2, "cost": 0}), "self-loop"),
    ],
)
def test_bad_workload_files(tmp_path, mutation, message):
    path = _write(tmp_path, _mutate(mutation))
    with pytest.raises(InputError, match=message) as info:
        read_paper_workload(path)
    assert str(info.value).startswith(str(path))


def test_not_json(tmp_path):
    with pytest.raises(InputError, match="not valid JSON"):
        read_paper_workload(_write(tmp_path, "{nodes: ["))


def test_bad_split_files(tmp_path):
    with pytest.raises(InputError, match=r"fpgas\[0\].nodes\[1\]: must be a node id"):
        read_split(_write(tmp_path, {"fpgas": [{"nodes": [1, "x"]}]}))
    with pytest.raises(InputError, match="needs 'fpgas'"):
        read_split(_write(tmp_path, {"gpus": []}))
