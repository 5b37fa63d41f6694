"""ONNX import: models built in memory with onnx.helper, FLOPs against hand counts."""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipesim.hardware.catalog import load_system
from pipesim.placement.formats import InputError
from pipesim.workloads.lower import lower
from pipesim.workloads.onnx_import import UnknownOperatorWarning, import_onnx


def _init(name, *shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def _model(nodes, inputs, initializers, output="Y"):
    graph = helper.make_graph(nodes, "test", inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def cnn_model():
    """X[N,3,8,8] -> Conv 3x3 (4 filters, pad 1, bias) -> Relu -> MaxPool 2 -> Flatten -> Gemm (64->10) -> Softmax."""
    nodes = [
        helper.make_node("Conv", ["X", "W", "B"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "G", "C"], ["g"], name="fc"),
        helper.make_node("Softmax", ["g"], ["Y"], name="softmax"),
    ]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3, 8, 8])
    return _model(nodes, [x], [_init("W", 4, 3, 3, 3), _init("B", 4), _init("G", 64, 10), _init("C", 10)])


def test_cnn_flops_equal_the_hand_count():
    ops = import_onnx(cnn_model(), batch=2)
    by_name = {op.name: op for op in ops.ops}
    conv_out = 2 * 4 * 8 * 8
    hand = {
        "conv": 2 * conv_out * 3 * 3 * 3 + conv_out,  # MACs x 2 + bias
        "relu": conv_out,
        "pool": (2 * 4 * 4 * 4) * 4,                  # one per window element
        "flatten": 0,
        "fc": 2 * 2 * 64 * 10 + 2 * 10,
        "softmax": 5 * 2 * 10,
    }
    assert {name: op.flops for name, op in by_name.items()} == hand
    assert ops.flops == sum(hand.values()) == 31864
    assert ops.params == 4 * 27 + 4 + 640 + 10
    assert ops.edges == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert by_name["relu"].bytes == 2 * conv_out * 4  # read and write fp32
    assert by_name["flatten"].bytes == 0               # a view moves nothing
    assert by_name["conv"].output_bytes == conv_out * 4


def test_transformer_block_operators():
    """MatMul with weights, LayerNormalization, BatchNormalization, Transpose, Add, AveragePool."""
    b, s, h = 2, 4, 8
    nodes = [
        helper.make_node("MatMul", ["X", "Wq"], ["q"]),
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "qt"], ["scores"]),          # [b, s, s]
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "X"], ["ctx"]),          # [b, s, h]
        helper.make_node("Add", ["ctx", "X"], ["res"]),
        helper.make_node("LayerNormalization", ["res", "gamma", "beta"], ["ln"], axis=-1),
        helper.make_node("Unsqueeze", ["ln", "axes"], ["ln4"]),       # [b, 1, s, h]
        helper.make_node("BatchNormalization", ["ln4", "bs", "bb", "bm", "bv"], ["bn"]),
        helper.make_node("AveragePool", ["bn"], ["Y"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    inits = [_init("Wq", h, h), _init("gamma", h), _init("beta", h), _init("bs", 1), _init("bb", 1), _init("bm", 1),
             _init("bv", 1), numpy_helper.from_array(np.array([1], np.int64), "axes")]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [b, s, h])
    ops = import_onnx(_model(nodes, [x], inits))
    flops = [op.flops for op in ops.ops]
    assert flops == [
        2 * b * s * h * h,      # X @ Wq
        0,                      # transpose: bytes only
        2 * b * s * s * h,      # q @ q^T
        5 * b * s * s,          # softmax
        2 * b * s * h * s,      # probs @ X
        b * s * h,              # add
        8 * b * s * h,          # layer norm
        0,                      # unsqueeze: a view
        2 * b * s * h,          # batch norm
        (b * (s // 2) * (h // 2)) * 4,
    ]
    assert ops.ops[1].bytes == 2 * b * s * h * 4
    assert ops.params == h * h + 2 * h + 4  # the int64 axes initializer is not a parameter


def test_unknown_operators_are_costed_by_bytes_with_a_warning_naming_them():
    nodes = [helper.make_node("Hardmax", ["X"], ["h"]), helper.make_node("Hardmax", ["h"], ["Y"])]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 5])
    with pytest.warns(UnknownOperatorWarning, match=r"Hardmax \(2\)"):
        ops = import_onnx(_model(nodes, [x], []))
    assert [op.flops for op in ops.ops] == [0, 0]
    assert [op.bytes for op in ops.ops] == [2 * 20 * 4, 2 * 20 * 4]


def test_import_from_a_file_and_lower(tmp_path):
    path = tmp_path / "cnn.onnx"
    onnx.save(cnn_model(), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops = import_onnx(path, batch=2)
    assert ops.name == "cnn"
    workload = lower(ops, load_system("a100x8"), training=True)
    assert len(workload.graph.forward_nodes) == 6
    assert workload.graph.nodes[0].flops == 28160


def test_bad_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \xff\xfe")
    with pytest.raises(InputError, match="junk.onnx"):
        import_onnx(junk)


# --- faithful import (issue 15) ------------------------------------------------------------------

from pipesim.placement.evaluate import evaluate  # noqa: E402
from pipesim.placement.split import Split  # noqa: E402
from pipesim.workloads.onnx_import import UnknownShapeWarning, fuse_by_prefix  # noqa: E402
from pipesim.workloads.onnx_models import encoder_onnx, resnet_onnx  # noqa: E402


def _quiet_import(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return import_onnx(model, **kw)


def test_an_int64_input_transformer_costs_as_its_float_weights():
    fp32 = _quiet_import(encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=8), batch=2)
    assert fp32.dtype == "fp32"
    fp16 = _quiet_import(encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=8, float16=True), batch=2)
    assert fp16.dtype == "fp16"
    # activations are costed at the float size: the embedding's output is [2, 4, 16] floats
    assert fp32.ops[0].output_bytes == 2 * 4 * 16 * 4 and fp16.ops[0].output_bytes == 2 * 4 * 16 * 2
    # the lookup reads one embedding row per token (and the int64 ids), not the whole table
    assert fp32.ops[0].bytes == 2 * (2 * 4 * 16 * 4) + 2 * 4 * 8
    a100 = load_system("a100x8")
    mem32 = lower(fp32, a100).graph.total_memory
    assert lower(fp16, a100).graph.total_memory == mem32 / 2  # weights at 2 bytes, not 8 (int64)


def test_dtype_override_costs_every_float_tensor_at_that_size():
    ops = _quiet_import(encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=8), batch=2, dtype="fp16")
    assert ops.dtype == "fp16"
    assert ops.ops[0].output_bytes == 2 * 4 * 16 * 2
    with pytest.raises(InputError, match="dtype"):
        import_onnx(encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=8), dtype="fp13")


def test_a_shape_subgraph_and_identity_of_an_initializer_fold_at_import():
    model = encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=8, legacy_shapes=True)
    plain = encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=8, legacy_shapes=False)
    legacy_ops = [n.op_type for n in model.graph.node]
    assert {"Shape", "Gather", "Unsqueeze", "Concat", "Identity"} <= set(legacy_ops)
    folded = _quiet_import(model, batch=2)
    reference = _quiet_import(plain, batch=2)
    # the legacy graph costs exactly like the one whose Reshape targets are constants
    assert len(folded.ops) == len(reference.ops)
    assert not any(name.split("/")[-1].startswith(("Shape", "Unsqueeze", "Concat", "Identity"))
                   for name in (op.name for op in folded.ops))
    assert folded.flops == reference.flops and folded.params == reference.params
    assert [op.bytes for op in folded.ops] == [op.bytes for op in reference.ops]


def test_unknown_shapes_are_listed_and_never_costed_as_silent_zeros():
    # NonZero's output length depends on the data: inference cannot know it
    nodes = [helper.make_node("NonZero", ["X"], ["nz"], name="nz"), helper.make_node("Cast", ["nz"], ["c"], to=1, name="cast"),
             helper.make_node("Relu", ["c"], ["Y"], name="relu")]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 5])
    with pytest.warns(UnknownShapeWarning, match=r"nz \(estimated from the inputs\)"):
        with pytest.warns(UnknownOperatorWarning, match="NonZero"):
            ops = import_onnx(_model(nodes, [x], []))
    assert all(op.bytes > 0 for op in ops.ops)


def test_a_tied_weight_counts_on_both_stages_and_its_duplicate_once():
    model = encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=32, tied_head=True)
    ops = _quiet_import(model, batch=2)
    untied = _quiet_import(encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=32), batch=2)
    assert ops.params == untied.params  # the exporter's transposed duplicate is the same weight
    head = ops.ops[-1]
    assert head.params == 0 and head.tied == (("embeddings.word_embeddings.weight", 32 * 16),)
    system = load_system("a100x8")
    workload = lower(ops, system)
    n = len(ops.ops)
    split = Split.from_lists({"a100": [set(range(n - 1)), {n - 1}], "cpu": [set()]})
    loads = {d.name: d for d in evaluate(workload.graph, workload.devices, split).devices}
    assert loads["a100[1]"].memory == 32 * 16 * 4  # the LM-head stage holds the embedding too
    assert loads["a100[0]"].memory == untied.params * 4
    # fused into one layer with its owner, the tied weight is held once
    one = fuse_by_prefix(ops, 1)
    assert sum(op.resident_params for op in one.ops) == ops.params + 32 * 16


def test_fusion_by_module_prefix_of_imported_node_names():
    ops = _quiet_import(resnet_onnx(blocks=(1, 1), width=4, image=16, classes=3), batch=1)
    fused = fuse_by_prefix(ops, 1)
    assert [op.name for op in fused.ops] == ["/conv1", "/maxpool", "/layer1", "/layer2", "/avgpool", "/flatten", "/fc"]
    assert fused.flops == ops.flops and fused.params == ops.params


def test_models_the_checker_rejects_are_input_errors(tmp_path):
    bad = _model([helper.make_node("Relu", ["X"], ["Y"])], [], [])  # X is never defined
    path = tmp_path / "bad.onnx"
    onnx.save(bad, str(path))
    with pytest.raises(InputError, match=r"bad.onnx: onnx checker: rejects the model"):
        import_onnx(path)
