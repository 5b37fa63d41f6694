"""`pipesim hardware` and `pipesim graph`: outputs every other command reads."""

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipesim.cli import main


def test_hardware_list_and_show(capsys):
    assert main(["hardware", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("a100x8", "v100x4-pcie", "mixed-a100x4-v100x4", "h100-sxm", "pcie5-x16", "nvlink4"):
        assert name in out
    assert main(["hardware", "show", "a100x8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["classes"][0]["device"]["peak_flops"]["fp16"] == 312e12
    assert main(["hardware", "show", "mixed-a100x4-v100x4", "--whatif", "v100.count=2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"][1]["count"] == 2
    assert main(["hardware", "show", "v100"]) == 0
    assert "900 GB/s" in capsys.readouterr().out


def test_hardware_errors_are_one_line(capsys):
    assert main(["hardware", "show", "tpu-pod"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown preset 'tpu-pod'" in err
    assert main(["hardware", "show", "a100x8", "--whatif", "a100.speed=fast"]) == 2
    assert "what-if.a100.speed" in capsys.readouterr().err


def test_generate_transformer_then_info_and_evaluate(tmp_path, capsys):
    out = tmp_path / "bert4.json"
    args = ["graph", "generate", "transformer", "--layers", "4", "--hidden", "256", "--heads", "4", "--seq", "64",
            "--batch", "2", "--hardware", "a100x8", "--training", "-o", str(out), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nodes"] == 3 * 6 and summary["written"] == [str(out), str(tmp_path / "bert4.native.json")]
    paper = json.loads(out.read_text())
    assert paper["maxFPGAs"] == 8 and paper["maxCPUs"] == 1
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"fpgas": [{"nodes": [0, 1, 2]}, {"nodes": [3, 4, 5]}], "cpus": []}))
    assert main(["evaluate", str(out), str(split), "--json"]) == 0
    paper_load = json.loads(capsys.readouterr().out)["max_load"]
    native_split = tmp_path / "native_split.json"
    native_split.write_text(json.dumps({"devices": {"a100": [{"nodes": [0, 1, 2]}, {"nodes": [3, 4, 5]}]}}))
    assert main(["evaluate", str(tmp_path / "bert4.native.json"), str(native_split), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_load"] == paper_load


def test_generate_every_model_on_a_mixed_box(tmp_path, capsys):
    for model, extra in (
        ("resnet50", ["--batch", "2", "--granularity", "operator"]),
        ("inceptionv3", ["--image", "160"]),
        ("gnmt", ["--layers", "2", "--hidden", "64", "--seq", "4", "--vocab", "50", "--batch", "2"]),
        ("transformer", ["--size", "gpt2", "--layers", "2", "--seq", "32"]),
    ):
        out = tmp_path / f"{model}.json"
        assert main(["graph", "generate", model, "--hardware", "mixed-a100x4-v100x4", "-o", str(out)] + extra) == 0
        assert json.loads(out.read_text())["format"] == "pipesim-workload"
        assert main(["info", str(out), "--json"]) == 0
    capsys.readouterr()


def test_generate_with_whatif_and_bad_sizes(tmp_path, capsys):
    base, fast = tmp_path / "base.json", tmp_path / "fast.json"
    common = ["graph", "generate", "resnet50", "--hardware", "v100x4-pcie", "--json"]
    assert main(common + ["-o", str(base)]) == 0
    assert main(common + ["-o", str(fast), "--whatif", "v100.speed=2"]) == 0
    capsys.readouterr()
    slow_nodes = json.loads(base.read_text())["nodes"]
    fast_nodes = json.loads(fast.read_text())["nodes"]
    assert sum(n["fpgaLatency"] for n in fast_nodes) < sum(n["fpgaLatency"] for n in slow_nodes)
    assert main(["graph", "generate", "transformer", "--hidden", "100", "--heads", "16", "-o", str(base)]) == 2
    assert "divisible" in capsys.readouterr().err


def test_import_onnx_and_whatif(tmp_path, capsys):
    w = numpy_helper.from_array(np.ones((16, 4), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["m"]), helper.make_node("Relu", ["m"], ["Y"])],
        "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [w],
    )
    model_path = tmp_path / "mlp.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model_path))
    out = tmp_path / "mlp.json"
    assert main(["graph", "import", str(model_path), "--hardware", "v100x4-pcie", "--batch", "8", "-o", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["forward_flops"] == 2 * 8 * 16 * 4 + 8 * 4
    assert summary["params"] == 64
    scaled = tmp_path / "scaled.json"
    assert main(["graph", "whatif", str(out), "--whatif", "accelerator.speed=4", "-o", str(scaled)]) == 0
    before, after = json.loads(out.read_text()), json.loads(scaled.read_text())
    assert after["nodes"][0]["fpgaLatency"] == before["nodes"][0]["fpgaLatency"] / 4
    assert main(["graph", "import", str(tmp_path / "none.onnx"), "-o", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_graph_import_dtype_fusion_and_checker_errors(tmp_path, capsys):
    from pipesim.workloads.onnx_models import encoder_onnx

    path = tmp_path / "enc.onnx"
    onnx.save(encoder_onnx(layers=2, hidden=16, heads=2, seq=4, vocab=32, tied_head=True), str(path))
    out = tmp_path / "enc.json"
    assert main(["graph", "import", str(path), "--batch", "2", "--fuse-depth", "3", "--json", "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nodes"] < 20  # fused by module: embeddings, attention, intermediate, output per layer, head
    assert main(["graph", "import", str(path), "--dtype", "fp16", "--json", "-o", str(out)]) == 0
    half = json.loads(capsys.readouterr().out)["total_memory"]
    assert main(["graph", "import", str(path), "--json", "-o", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["total_memory"] == 2 * half  # fp32 weights, not int64 ids
    bad = helper.make_model(helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "g", [],
                                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])]))
    onnx.save(bad, str(tmp_path / "bad.onnx"))
    assert main(["graph", "import", str(tmp_path / "bad.onnx"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "onnx checker: rejects the model" in err
