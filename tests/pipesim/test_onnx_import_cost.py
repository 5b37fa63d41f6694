"""Import cost (issue 22, item 7): weights are never loaded where only their shapes are needed."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipesim.workloads.onnx_import import import_onnx


def _chain(width: int, layers: int, *, zeros: bool = False):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])
    names = ["x"] + [f"h{i}" for i in range(layers)]
    nodes = [helper.make_node("MatMul", [names[i], f"w{i}"], [names[i + 1]], name=f"/l{i}/MatMul") for i in range(layers)]
    y = helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [1, width])
    rng = np.random.default_rng(0)
    inits = [] if zeros else [numpy_helper.from_array(rng.standard_normal((width, width), np.float32), f"w{i}")
                              for i in range(layers)]
    model = helper.make_model(helper.make_graph(nodes, "chain", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


PEAK = textwrap.dedent("""
    import json, sys, warnings
    from pipesim.workloads.onnx_import import import_onnx
    def status(key):  # VmHWM is this process's peak (ru_maxrss would carry the parent's across fork and exec)
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    before = status("VmRSS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ops = import_onnx(sys.argv[1])
    peak = status("VmHWM")
    print(json.dumps({"before": before, "peak": peak, "params": ops.params, "flops": ops.flops}))
""")


def _import_in_a_fresh_process(path) -> dict:
    out = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_importing_takes_at_most_twice_the_file_size_in_memory(tmp_path):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status (Linux) to read the peak memory")
    path = tmp_path / "chain.onnx"
    onnx.save(_chain(4096, 4), path)  # 256 MiB of weights in the file
    size = path.stat().st_size
    got = _import_in_a_fresh_process(path)
    assert got["params"] == 4 * 4096 * 4096
    assert got["peak"] - got["before"] <= 2 * size, f"{(got['peak'] - got['before']) / size:.2f}x the file size"


@pytest.mark.slow
def test_a_model_over_2_gb_with_external_data_imports(tmp_path):
    """Nine 256 MiB weights in a sparse external file: 2.25 GiB, no disk used, never loaded whole."""
    width, layers = 8192, 9
    model = _chain(width, layers, zeros=True)
    data = tmp_path / "chain.onnx.data"
    nbytes = width * width * 4
    with open(data, "wb") as f:
        f.truncate(layers * nbytes)  # a sparse file: the weights read as zeros
    for i in range(layers):
        t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[width, width])
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", data.name), ("offset", str(i * nbytes)), ("length", str(nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        model.graph.initializer.append(t)
    path = tmp_path / "chain.onnx"
    path.write_bytes(model.SerializeToString())
    assert layers * nbytes > 2 * 2**30
    got = _import_in_a_fresh_process(path)
    assert got["params"] == layers * width * width and got["flops"] == 2 * layers * width * width
    assert got["peak"] - got["before"] <= 1.5 * nbytes  # one weight at a time, not 2.25 GiB


def test_external_weights_are_hashed_for_ties_without_being_loaded(tmp_path):
    model = _chain(64, 2)
    second = numpy_helper.to_array(model.graph.initializer[0])
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(second, "w1"))  # a duplicate: one weight, tied
    path = tmp_path / "tied.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="tied.data",
              size_threshold=0)
    ops = import_onnx(path)
    assert ops.params == 64 * 64 and ops.ops[1].tied == (("w0", 64 * 64),)


def test_shape_constants_in_external_data_fold_as_the_dynamo_exporter_writes_them(tmp_path, monkeypatch):
    """torch.onnx.export(dynamo=True) stores every initializer in the .data file, a Reshape's target included."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.ones((16, 16), np.float32), "w"),
             numpy_helper.from_array(np.array([1, 4, 2, 16], np.int64), "val_shape")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="node_MatMul_0"),
             helper.make_node("Reshape", ["h", "val_shape"], ["y"], name="node_Reshape_1")]
    model = helper.make_model(helper.make_graph(nodes, "main_graph", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    path = tmp_path / "model" / "dyn.onnx"
    path.parent.mkdir()
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="dyn.onnx.data",
              size_threshold=0)
    assert all(t.data_location == TensorProto.EXTERNAL for t in onnx.load(path, load_external_data=False).graph.initializer)
    monkeypatch.chdir(tmp_path)  # the data file is found beside the model, not in the working directory
    ops = import_onnx(path)
    assert [op.name for op in ops.ops] == ["node_MatMul_0", "node_Reshape_1"]
    assert ops.params == 16 * 16 and ops.ops[1].output_bytes == 8 * 16 * 4
