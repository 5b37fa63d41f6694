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
