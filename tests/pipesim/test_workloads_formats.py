"""Native format round trip, paper export, load_workload detection and what-if on given times."""

import json
import math

import pytest

from pipesim.commands.common import load_workload
from pipesim.hardware.catalog import load_system
from pipesim.hardware.whatif import parse_assignments
from pipesim.placement.evaluate import evaluate
from pipesim.placement.formats import InputError, read_paper_workload, read_split
from pipesim.placement.split import Split
from pipesim.workloads.export import as_paper, write_workload
from pipesim.workloads.lower import lower
from pipesim.workloads.native import (
    read_native_workload,
    workload_to_native,
    write_native_workload,
)
from pipesim.workloads.transformer import TransformerConfig, transformer
from pipesim.workloads.whatif import scale_workload

SMALL = TransformerConfig(layers=3, hidden=64, heads=4, seq=16, batch=2, vocab=100, max_positions=16)


def small_workload(system_name="mixed-a100x4-v100x4", training=True):
    return lower(transformer(SMALL), load_system(system_name), training=training)


def test_native_round_trip(tmp_path):
    workload = small_workload()
    path = tmp_path / "w.json"
    write_native_workload(path, workload, hardware="mixed-a100x4-v100x4", kinds={"a100": "accelerator"})
    back = read_native_workload(path)
    assert back.graph == workload.graph
    assert back.devices == workload.devices
    data = json.loads(path.read_text())
    assert data["devices"][2]["memory"] is None and data["devices"][0]["kind"] == "accelerator"
    assert load_workload(str(path)).graph == workload.graph


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.update(version=7), "version"),
        (lambda d: d["devices"][0].update(count=-1), "devices[0].count"),
        (lambda d: d["nodes"][0].update(time={"a100": "fast"}), "nodes[0] (id 0).time.a100"),
        (lambda d: d["nodes"][0].pop("time"), "nodes[0] (id 0).time"),
        (lambda d: d["edges"][0].update(dest=999), "nodes/edges"),
    ],
)
def test_native_errors_name_the_field(tmp_path, change, field):
    data = workload_to_native(small_workload(training=False))
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        load_workload(str(path))
    assert info.value.field == field


def test_paper_export_for_two_class_systems(tmp_path):
    system = load_system("a100x8")
    workload = small_workload("a100x8")
    written = write_workload(tmp_path / "bert.json", workload, system)
    assert [p.name for p in written] == ["bert.json", "bert.native.json"]
    paper = read_paper_workload(written[0])
    assert [(d.name, d.count) for d in paper.devices] == [("accelerator", 8), ("cpu", 1)]
    assert paper.devices[0].memory == 80e9
    # the same split costs the same in both forms
    forward = workload.graph.forward_nodes
    half = len(forward) // 2
    native_split = Split.from_lists({"a100": [forward[:half], forward[half:]], "cpu": [[]]})
    paper_split = Split.from_lists({"accelerator": [forward[:half], forward[half:]], "cpu": [[]]})
    native_eval = evaluate(workload.graph, workload.devices, native_split)
    paper_eval = evaluate(paper.graph, paper.devices, paper_split)
    assert paper_eval.max_load == pytest.approx(native_eval.max_load, rel=1e-12)
    assert load_workload(str(written[1])).graph == workload.graph


def test_mixed_systems_write_native_only(tmp_path):
    system = load_system("mixed-a100x4-v100x4")
    workload = small_workload()
    assert as_paper(workload, system) is None
    written = write_workload(tmp_path / "mixed.json", workload, system)
    assert written == [tmp_path / "mixed.json"]
    assert json.loads(written[0].read_text())["format"] == "pipesim-workload"


def test_whatif_on_given_times(shared_workloads):
    workload = read_paper_workload(shared_workloads / "throughput/LayerGraphs/bert24_inference.json")
    edits = parse_assignments(["accelerator.speed=2", "accelerator.link=4", "accelerator.memory=0.5", "cpu.count=3"])
    scaled = scale_workload(workload, edits)
    for v, node in workload.graph.nodes.items():
        new = scaled.graph.nodes[v]
        assert new.time["accelerator"] == node.time["accelerator"] / 2
        assert new.time["cpu"] == node.time["cpu"]
        assert new.transfer.get("accelerator", 0) == node.transfer.get("accelerator", 0) / 4
    assert scaled.device_class("accelerator").memory == workload.device_class("accelerator").memory / 2
    assert scaled.device_class("cpu").count == 3
    expert = read_split(shared_workloads / "expert-splits/bert24_inference_expert.json")
    before = evaluate(workload.graph, workload.devices, expert)
    after = evaluate(scaled.graph, scaled.with_devices(accelerator={"memory": math.inf}).devices, expert)
    # accelerator compute halves and transfers quarter: the loads shrink accordingly
    for b, a in zip(before.devices, after.devices):
        if b.device_class == "accelerator":
            assert a.load == pytest.approx(b.compute / 2 + (b.send + b.receive) / 4)


@pytest.mark.parametrize(
    "texts, message",
    [
        (["gpu.speed=2"], "what-if.gpu: no device class 'gpu'"),
        (["accelerator.compute=2"], "what-if.accelerator.compute: needs each node's FLOPs"),
        (["accelerator.device=h100-sxm"], "what-if.accelerator.device"),
    ],
)
def test_whatif_on_given_times_errors(texts, message):
    workload = as_paper(small_workload("a100x8", training=False), load_system("a100x8"))
    with pytest.raises(InputError, match=message):
        scale_workload(workload, parse_assignments(texts))
