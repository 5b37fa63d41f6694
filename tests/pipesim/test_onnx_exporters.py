"""Models in the structure PyTorch's two exporters write (issue 22): TorchScript and dynamo, side by side."""

import math
import warnings

import pytest

from pipesim.hardware.catalog import load_system
from pipesim.placement.dp.contract import contract
from pipesim.placement.dp.ideals import enumerate_ideals
from pipesim.placement.evaluate import evaluate
from pipesim.placement.split import Split
from pipesim.workloads.lower import lower
from pipesim.workloads.onnx_import import NoEffectWarning, fuse_by_prefix, import_onnx
from pipesim.workloads.onnx_models import encoder_onnx

pytest.importorskip("onnx")


def _import(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return import_onnx(model, **kw)


def _ideals(ops) -> int:
    workload = lower(ops, load_system("a100x8"))
    contracted = contract(workload.graph, workload.devices)
    return len(enumerate_ideals(len(contracted), contracted.predecessors(), limit=5_000_000))


def _bert(exporter, layers=5):
    return encoder_onnx(layers=layers, hidden=16, heads=2, seq=8, vocab=32, attention_mask=True, exporter=exporter)


@pytest.mark.slow
def test_mask_branches_do_not_multiply_the_ideals_of_a_torchscript_export():
    torchscript, dynamo = _import(_bert("torchscript"), batch=2), _import(_bert("dynamo"), batch=2)
    ts_ideals, dyn_ideals = _ideals(torchscript), _ideals(dynamo)
    assert max(ts_ideals, dyn_ideals) <= 2 * min(ts_ideals, dyn_ideals)
    # left free, the per-layer Where nodes multiply the state space (what the issue measured)
    free = _ideals(_import(_bert("torchscript"), batch=2, attach_inputs=False))
    assert free > 8 * ts_ideals  # 9,442 against 814 at 5 layers, and twice as many per layer more
    # the same costs either way: only placements are restricted
    assert torchscript.flops == _import(_bert("torchscript"), batch=2, attach_inputs=False).flops


def test_an_input_branch_shares_its_consumers_device_in_every_split():
    ops = _import(_bert("torchscript", layers=2), batch=2)
    names = {i: op.name for i, op in enumerate(ops.ops)}
    wheres = [i for i, n in names.items() if "Where" in n]
    assert len(wheres) == 2 and all(i in ops.attached for i in wheres)
    for i in wheres:  # each layer's mask Where goes with the Add of that layer's scores
        assert "Add" in names[ops.attached[i]] and names[i].rsplit("/", 1)[0] == names[ops.attached[i]].rsplit("/", 1)[0]
    workload = lower(ops, load_system("a100x8"))
    colour = {v: node.color_class for v, node in workload.graph.nodes.items()}
    for i, j in ops.attached.items():
        assert colour[i] == colour[j]
    # a split separating a branch from its consumer breaks a colour class: the evaluator says so
    i, j = next(iter(ops.attached.items()))
    rest = set(range(len(ops.ops))) - {i}
    bad = Split.from_lists({"a100": [{i}, rest], "cpu": [set()]})
    assert evaluate(workload.graph, workload.devices, bad).violations


def test_a_single_input_model_has_no_input_branch():
    ops = _import(encoder_onnx(layers=2, hidden=16, heads=2, seq=8, vocab=32), batch=2)
    assert ops.attached == {}
    workload = lower(ops, load_system("a100x8"))
    assert all(node.color_class == v for v, node in workload.graph.nodes.items())


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_fuse_depth_reads_the_module_path_of_both_exporters(exporter):
    ops = _import(_bert(exporter, layers=3), batch=2)
    fused = fuse_by_prefix(ops, 2)
    assert len(fused.ops) < len(ops.ops) // 5
    layers = [op.name for op in fused.ops if op.name.startswith("/encoder/layer.")]
    assert layers == ["/encoder/layer.0", "/encoder/layer.1", "/encoder/layer.2"]
    assert fused.flops == pytest.approx(ops.flops) and fused.params == ops.params


def test_fuse_depth_that_fuses_nothing_warns():
    from pipesim.workloads.onnx_models import mlp_onnx

    model = mlp_onnx(layers=2, width=8)
    for k, node in enumerate(model.graph.node):
        node.name = f"node_{node.op_type}_{k}"  # flat names, no metadata
    ops = _import(model, batch=1)
    with pytest.warns(NoEffectWarning, match="fused nothing"):
        fuse_by_prefix(ops, 2)


def test_cli_import_attaches_branches_and_warns_in_one_line(tmp_path, capsys):
    import json

    import onnx

    from pipesim.cli import main

    path = tmp_path / "ts.onnx"
    onnx.save(_bert("torchscript", layers=2), path)
    assert main(["graph", "import", str(path), "--hardware", "a100x8", "-o", str(tmp_path / "w.json")]) == 0
    out = capsys.readouterr().out
    assert "input-branch operator(s)" in out
    nodes = json.loads((tmp_path / "w.native.json").read_text())["nodes"]
    assert len({n["color_class"] for n in nodes}) < len(nodes)
    assert main(["graph", "import", str(path), "--detach-inputs", "-o", str(tmp_path / "free.json")]) == 0
    nodes = json.loads((tmp_path / "free.native.json").read_text())["nodes"]
    assert len({n["color_class"] for n in nodes}) == len(nodes)
    flat = tmp_path / "flat.onnx"
    from pipesim.workloads.onnx_models import mlp_onnx

    model = mlp_onnx(layers=2, width=8)
    for k, node in enumerate(model.graph.node):
        node.name = f"node_{k}"
    onnx.save(model, flat)
    capsys.readouterr()
    assert main(["graph", "import", str(flat), "--fuse-depth", "2", "-o", str(tmp_path / "f.json")]) == 0
    out = capsys.readouterr()
    assert "warning: " in out.out and "fused nothing" in out.out and "Traceback" not in out.err + out.out


def _fixed_batch(model, batch):
    for info in [*model.graph.input, *model.graph.output]:
        info.type.tensor_type.shape.dim[0].dim_value = batch
    return model


def test_a_model_exported_at_batch_8_is_labelled_batch_8(tmp_path, capsys):
    import json

    import onnx

    from pipesim.cli import main
    from pipesim.runtime.profile import profile_model
    from pipesim.workloads.onnx_models import resnet_onnx

    model = _fixed_batch(resnet_onnx(blocks=(1,), width=4, image=16, classes=3), 8)
    ops = _import(model)
    assert ops.attrs["batch"] == 8
    assert ops.flops == _import(resnet_onnx(blocks=(1,), width=4, image=16, classes=3), batch=8).flops
    pytest.importorskip("onnxruntime")
    profile, _ = profile_model(model, runs=2, warmup=1)
    assert profile.batch == 8
    path = tmp_path / "r8.onnx"
    onnx.save(model, path)
    assert main(["graph", "import", str(path), "--json", "-o", str(tmp_path / "w.json")]) == 0
    assert json.loads(capsys.readouterr().out)["batch"] == 8
    assert main(["graph", "import", str(path), "--batch", "2", "-o", str(tmp_path / "w.json")]) == 0
    out = capsys.readouterr().out
    assert "--batch 2 has no effect" in out and "batch 8" in out


def test_profiles_time_the_optimised_graph_and_costs_attach_to_imported_nodes():
    pytest.importorskip("onnxruntime")
    from pipesim.runtime.profile import profile_model
    from pipesim.workloads.onnx_models import mlp_onnx

    model = mlp_onnx(layers=3, width=64)  # MatMul -> Add -> Relu: ONNX Runtime fuses MatMul + Add
    optimized, _ = profile_model(model, batch=4, runs=3, warmup=1)
    plain, _ = profile_model(model, batch=4, runs=3, warmup=1, optimize=False)
    assert optimized.optimized and not plain.optimized
    assert len(optimized.nodes) == len(plain.nodes) == 9
    assert optimized.ort_nodes < 9 and plain.ort_nodes == 9
    # every imported MatMul and Add gets a share of the fused node that covers it
    for node in optimized.nodes:
        if node.op_type in ("MatMul", "Add"):
            assert node.median > 0 and node.samples > 0


def test_fused_time_is_shared_by_roofline_weight_and_layout_nodes_pass_theirs_on():
    from onnx import helper

    from pipesim.runtime.profile import attribute_fused

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["y"], name="flat")]
    model = helper.make_model(helper.make_graph(nodes, "g", [], []))
    # ONNX Runtime's NCHWc form: a reorder into a new tensor, a fused conv+relu, a reorder back to the model's tensor
    opt = [helper.make_node("ReorderInput", ["x"], ["x_nchwc"], name="reorder_in"),
           helper.make_node("Conv", ["x_nchwc", "w"], ["r_nchwc"], name="conv_relu"),
           helper.make_node("ReorderOutput", ["r_nchwc"], ["r"], name="reorder_out"),
           helper.make_node("Flatten", ["r"], ["y"], name="flat")]
    times = {"reorder_in": 1.0, "conv_relu": 6.0, "reorder_out": 2.0, "flat": 0.5}
    out, covering = attribute_fused(model, helper.make_model(helper.make_graph(opt, "g", [], [])), times, [3.0, 1.0, 1.0])
    assert out == pytest.approx([6.75, 2.25, 0.5])
    assert sum(out) == pytest.approx(sum(times.values()))
    assert covering == ["reorder_out", "reorder_out", "flat"]


def test_transposes_are_a_class_of_their_own_with_a_measured_bandwidth():
    pytest.importorskip("onnxruntime")
    from pipesim.hardware.costs import kernel_time
    from pipesim.runtime.calibrate import PROBE_OUT_OF_CACHE, ProfiledNode, calibrate, measure_strided
    from pipesim.workloads.onnx_import import op_class

    assert op_class("Transpose") == "strided" and op_class("Gather") == "movement"
    # a profile of contiguous element-wise work at 10 GB/s, and the machine's measured transposes
    profile = [ProfiledNode("p", f"add{i}", "elementwise", 1e5 * 2**i, 1.2e6 * 2**i, 2e-6 + 1.2e6 * 2**i / 1e10, 0.0)
               for i in range(6)]
    probes = measure_strided(runs=3)
    assert {p.op_class for p in probes} == {"strided"}
    device = calibrate(profile + probes).device("core")
    big = max(probes, key=lambda p: p.bytes)
    assert big.bytes >= PROBE_OUT_OF_CACHE
    predicted = kernel_time(0.0, big.bytes, device, "fp32", "strided")
    # the fit against the probes out of cache, all of them (one probe stretched by a busy machine was seen to
    # push the largest alone past 2x): their geometric mean ratio within 2x
    out = [p for p in probes if p.bytes >= PROBE_OUT_OF_CACHE]
    ratios = [kernel_time(0.0, p.bytes, device, "fp32", "strided") / p.measured for p in out]
    assert 0.5 < math.prod(ratios) ** (1 / len(ratios)) < 2, ratios
    # without the class, the transpose would have been costed as a contiguous copy (the 10 ms for 132 ms)
    as_copy = kernel_time(0.0, big.bytes, device, "fp32", "movement")
    assert as_copy < predicted


def test_calibration_fits_a_fused_node_as_one_measured_point(tmp_path):
    pytest.importorskip("onnxruntime")
    import json

    from pipesim.runtime.calibrate import read_profiles
    from pipesim.runtime.profile import profile_to_workload
    from pipesim.workloads.onnx_models import mlp_onnx

    path = tmp_path / "w.json"
    profile_to_workload(mlp_onnx(layers=2, width=64), path, batch=4, runs=3, measure=False)
    data = json.loads(path.read_text())
    shared = [n for n in data["nodes"] if n["profile"]["ort_node"]]
    assert shared and data["profile"]["optimized"] and data["profile"]["ort_nodes"] < len(data["nodes"])
    points = read_profiles([path])
    assert len(points) < len(data["nodes"])
    fused = [p for p in points if p.name not in {n["name"] for n in data["nodes"]}]
    assert fused and all(p.op_class == "matmul" for p in fused)  # MatMul + Add: a matmul, timed as one


@pytest.mark.slow
def test_cli_profile_optimised_by_default_and_node_for_node_on_request(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import json

    import onnx

    from pipesim.cli import main
    from pipesim.workloads.onnx_models import mlp_onnx

    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_onnx(layers=2, width=32), path)
    assert main(["profile", str(path), "--runs", "2", "--json", "-o", str(tmp_path / "w.json")]) == 0
    optimised = json.loads(capsys.readouterr().out)
    assert main(["profile", str(path), "--runs", "2", "--no-optimize", "--json", "-o", str(tmp_path / "u.json")]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert optimised["optimized"] and optimised["ort_nodes"] < optimised["nodes"]
    assert not plain["optimized"] and plain["ort_nodes"] == plain["nodes"] == 6
    assert {"conditions", "trusted", "run_cpu_ms", "profiler_overhead_us"} <= set(plain)


def test_the_dynamo_mask_gathernd_is_data_movement():
    """torch 2.13's dynamo export of BERT, GPT-2 and Llama indexes the attention mask with a GatherND."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, 16])
    out = helper.make_tensor_value_info("val_48", TensorProto.BOOL, None)
    index = numpy_helper.from_array(np.zeros((1, 16, 2), np.int64), "val_47")
    nodes = [helper.make_node("Cast", ["attention_mask"], ["_to_copy"], to=TensorProto.BOOL, name="node_Cast_45"),
             helper.make_node("GatherND", ["_to_copy", "val_47"], ["val_48"], batch_dims=0, name="node_GatherND_46")]
    model = helper.make_model(helper.make_graph(nodes, "main_graph", [mask], [out], [index]),
                              opset_imports=[helper.make_opsetid("", 18)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no FLOP formula for GatherND"
        ops = import_onnx(model)
    gather = ops.ops[1].kernels[0]
    assert gather.flops == 0 and gather.op_class == "strided" and gather.bytes > 0
