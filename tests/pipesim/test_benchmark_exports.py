"""``python -m benchmarks.fidelity --exports`` (issue 22): real PyTorch exports, an optional extra.

The default run never needs PyTorch: without it the benchmark stops with one line naming the
``benchmarks`` extra; the test that exports a small BERT with both exporters skips without it.
"""

import sys
import warnings

import pytest

pytest.importorskip("onnx")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from benchmarks import exports, fidelity  # noqa: E402


def test_without_torch_the_benchmark_names_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError, installed or not
    code = fidelity.main(["--exports", "--models", "bert", "--exporters", "dynamo", "--cache", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["benchmarks.fidelity: torch is not installed: pip install -e '.[benchmarks]' "
                   "(PyTorch, transformers, onnxscript: see pyproject.toml)"]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("option, value, message", [
    ("--models", "bert,alexnet", "unknown model 'alexnet'"),
    ("--exporters", "fx", "unknown exporter 'fx'"),
])
def test_an_unknown_model_or_exporter_is_one_line(capsys, tmp_path, option, value, message):
    code = fidelity.main(["--exports", option, value, "--cache", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


def test_the_file_size_counts_the_weights_stored_beside_it(tmp_path):
    w = numpy_helper.from_array(np.ones((256, 64), np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
    def model():
        return helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y],
                                                   [w]))
    path = tmp_path / "m.onnx"
    onnx.save(model(), path, save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    assert (tmp_path / "m.onnx.data").stat().st_size >= 256 * 64 * 4
    assert exports.file_bytes(path) == path.stat().st_size + (tmp_path / "m.onnx.data").stat().st_size
    embedded = tmp_path / "e.onnx"
    onnx.save(model(), embedded)
    assert exports.file_bytes(embedded) == embedded.stat().st_size


@pytest.mark.slow
def test_a_small_bert_from_both_exporters_imports_alike(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed (optional: pip install -e '.[benchmarks]')")
    pytest.importorskip("transformers", reason="transformers is not installed (optional: the benchmarks extra)")
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (optional: the benchmarks extra)")
    from tests.pipesim.test_onnx_exporters import _ideals
    from pipesim.workloads.onnx_import import fuse_by_prefix, import_onnx

    small = {"num_hidden_layers": 3, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
             "vocab_size": 1000}
    graphs = {}
    for exporter in exports.EXPORTERS:
        path = exports.export("bert", exporter, tmp_path, seq=16, **small)
        assert path == exports.export("bert", exporter, tmp_path, seq=16, **small)  # cached: written once
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graphs[exporter] = import_onnx(path)
    ts, dyn = graphs["torchscript"], graphs["dynamo"]
    assert ts.attrs["batch"] == dyn.attrs["batch"] == 1
    assert ts.params == pytest.approx(dyn.params, rel=0.002)
    assert ts.flops == pytest.approx(dyn.flops, rel=0.02)
    a, b = _ideals(ts), _ideals(dyn)
    assert max(a, b) <= 2 * min(a, b)  # the mask's branches do not multiply the TorchScript export's ideals
    for ops in graphs.values():  # --fuse-depth groups both by layer (names, or dynamo's metadata)
        assert len(fuse_by_prefix(ops, 3).ops) < len(ops.ops) // 3
