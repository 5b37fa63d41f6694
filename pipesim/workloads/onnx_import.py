"""Importing an ONNX model as an operator graph.

Every ONNX node becomes one operator; an edge joins the producer of each
input tensor to its consumer.  Tensor shapes come from the model and from
onnx's shape inference (with data propagation, so ``Reshape`` targets built
from ``Shape`` resolve); symbolic dimensions of the graph inputs (a batch
``N``) are set to ``batch`` first.  Floating-point initializers are parameters
(each counted once, at its first consumer); ``Constant`` nodes are folded away.

Costs use the formulas of :mod:`pipesim.workloads.kernels`, with ``out`` the
number of output elements:

=========================================  ==========================================
MatMul ``[..., M, K] x [..., K, N]``       ``2·out·K``
Gemm                                       ``2·M·N·K`` (+ ``M·N`` with ``C``)
Conv / ConvTranspose                       ``2·out·(C_in/groups)·∏kernel`` (+ ``out`` with a bias);
                                           ConvTranspose counts per *input* element
BatchNormalization / LayerNormalization    ``2·out`` / ``8·out``
Softmax, LogSoftmax                        ``5·out``
elementwise (Add, Relu, Sigmoid, Erf…)     ``1·out``
MaxPool / AveragePool                      ``out·∏kernel_shape``
global pooling, reductions                 ``1`` per input element
data movement (Transpose, Concat, Gather…) 0 FLOPs, bytes only
views (Reshape, Flatten, Squeeze…)         nothing
=========================================  ==========================================

Bytes are every input and output read or written once.  An operator not in
these tables is costed by the bytes it moves, and one
:class:`UnknownOperatorWarning` names every such operator type.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from pathlib import Path

import onnx
from onnx import helper, numpy_helper, shape_inference

from pipesim.placement.formats import InputError
from pipesim.workloads.kernels import PER_ELEMENT
from pipesim.workloads.opgraph import Kernel, Op, OpGraph

__all__ = ["UnknownOperatorWarning", "import_onnx"]


class UnknownOperatorWarning(UserWarning):
    """Operators the importer has no FLOP formula for (costed by bytes moved)."""


_ELEMENTWISE = {
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log", "Erf", "Tanh", "Sigmoid",
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Gelu", "HardSigmoid", "HardSwish", "Softplus", "Clip", "Max", "Min",
    "Sum", "Mean", "Where", "Equal", "Less", "Greater", "Not", "And", "Or", "Floor", "Ceil", "Round", "Sign", "Sin",
    "Cos", "Mish", "BiasGelu", "FastGelu",
}
_REDUCTIONS = {
    "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
    "ReduceL2", "ReduceSumSquare", "ArgMax", "ArgMin",
}
_MOVEMENT = {
    "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "Cast", "Pad", "Expand", "Tile", "Resize",
    "Upsample", "DepthToSpace", "SpaceToDepth", "ScatterND", "ScatterElements",
}
_VIEWS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Shape", "Dropout", "Size"}
_PER_ELEMENT_OPS = {
    "BatchNormalization": PER_ELEMENT["batchnorm"],
    "InstanceNormalization": PER_ELEMENT["layernorm"],
    "LayerNormalization": PER_ELEMENT["layernorm"],
    "Softmax": PER_ELEMENT["softmax"],
    "LogSoftmax": PER_ELEMENT["softmax"],
}

#: ONNX element types -> (cost-model data type, bytes per element).
_ELEM = {
    onnx.TensorProto.FLOAT: ("fp32", 4), onnx.TensorProto.DOUBLE: ("fp64", 8), onnx.TensorProto.FLOAT16: ("fp16", 2),
    onnx.TensorProto.BFLOAT16: ("bf16", 2), onnx.TensorProto.INT8: ("int8", 1), onnx.TensorProto.UINT8: ("int8", 1),
    onnx.TensorProto.INT32: ("fp32", 4), onnx.TensorProto.INT64: ("fp64", 8), onnx.TensorProto.BOOL: ("int8", 1),
}


#: Initializers of these types are trainable parameters (integer ones are shapes, indices, axes).
_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}


def _shape(type_proto) -> tuple[int, ...] | None:
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims = []
    for d in tensor.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def _load(source: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(source, onnx.ModelProto):
        return source
    try:
        return onnx.load(str(source))
    except FileNotFoundError:
        raise InputError(source, None, "no such file") from None
    except Exception as exc:  # protobuf raises its own DecodeError for a non-ONNX file
        raise InputError(source, None, f"not a readable ONNX model ({exc})") from None


class _Tensors:
    """Shapes, element sizes and producers of the model's tensors."""

    def __init__(self, graph: onnx.GraphProto):
        self.shape: dict[str, tuple[int, ...] | None] = {}
        self.itemsize: dict[str, int] = {}
        for info in (*graph.input, *graph.value_info, *graph.output):
            self.shape[info.name] = _shape(info.type)
            self.itemsize[info.name] = _ELEM.get(info.type.tensor_type.elem_type, ("fp32", 4))[1]
        self.initializers = {t.name: t for t in graph.initializer}
        for t in graph.initializer:
            self.shape[t.name] = tuple(t.dims)
            self.itemsize[t.name] = _ELEM.get(t.data_type, ("fp32", 4))[1]

    def elems(self, name: str) -> float:
        shape = self.shape.get(name)
        return float(math.prod(shape)) if shape is not None else 0.0

    def nbytes(self, name: str) -> float:
        return self.elems(name) * self.itemsize.get(name, 4)


def _flops(node: onnx.NodeProto, t: _Tensors, inputs: list[str], out: float) -> float | None:
    """FLOPs of ``node`` (``None``: no formula for its type)."""
    op, attrs = node.op_type, {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if op == "MatMul":
        a = t.shape.get(inputs[0])
        return 2 * out * a[-1] if a else 0.0
    if op == "Gemm":
        a = t.shape.get(inputs[0])
        k = (a[0] if attrs.get("transA", 0) else a[1]) if a else 0
        return 2 * out * k + (out if len(inputs) > 2 else 0)
    if op in ("Conv", "ConvTranspose"):
        w = t.shape.get(inputs[1])
        per = math.prod(w[1:]) if w else 0
        base = out if op == "Conv" else t.elems(inputs[0])
        return 2 * base * per + (out if len(inputs) > 2 else 0)
    if op in ("MaxPool", "AveragePool", "LpPool"):
        return out * math.prod(attrs.get("kernel_shape", [1]))
    if op in _PER_ELEMENT_OPS:
        return _PER_ELEMENT_OPS[op] * out
    if op in _ELEMENTWISE:
        return PER_ELEMENT["elementwise"] * out
    if op in _REDUCTIONS:
        return t.elems(inputs[0]) if inputs else 0.0
    if op in _MOVEMENT or op in _VIEWS:
        return 0.0
    return None


def import_onnx(source: str | Path | onnx.ModelProto, *, batch: int = 1, name: str | None = None) -> OpGraph:
    """The operator graph of an ONNX model (see the module docstring)."""
    model = _load(source)
    model = onnx.ModelProto.FromString(model.SerializeToString())  # never modify the caller's model
    for info in model.graph.input:
        for d in info.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.dim_value = batch
    try:
        model = shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and others for inconsistent models
        raise InputError(source if not isinstance(source, onnx.ModelProto) else None, "shape inference", str(exc)) from None
    graph = model.graph
    tensors = _Tensors(graph)
    dtype = _ELEM.get(graph.input[0].type.tensor_type.elem_type, ("fp32", 4))[0] if graph.input else "fp32"
    label = name or (Path(source).stem if isinstance(source, (str, Path)) else graph.name or "onnx")

    for node in graph.node:  # fold constants: their outputs behave like initializers
        if node.op_type == "Constant" and node.attribute and node.attribute[0].type == onnx.AttributeProto.TENSOR:
            value = numpy_helper.to_array(node.attribute[0].t)
            tensors.shape[node.output[0]], tensors.itemsize[node.output[0]] = value.shape, value.itemsize

    ops = OpGraph(label, dtype)
    producer: dict[str, int] = {}
    counted: set[str] = set()
    unknown: Counter[str] = Counter()
    missing_shapes: set[str] = set()
    for i, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        inputs = [x for x in node.input if x]
        outputs = [x for x in node.output if x]
        missing_shapes.update(x for x in (*inputs, *outputs) if tensors.shape.get(x) is None)
        out_elems = sum(tensors.elems(x) for x in outputs)
        out_bytes = sum(tensors.nbytes(x) for x in outputs)
        moved = sum(tensors.nbytes(x) for x in inputs) + out_bytes
        flops = _flops(node, tensors, inputs, out_elems)
        if flops is None:
            unknown[node.op_type] += 1
            flops = 0.0
        if node.op_type in _VIEWS:
            moved = 0.0
        params = 0
        for x in inputs:
            if x in tensors.initializers and x not in counted and tensors.initializers[x].data_type in _FLOATS:
                counted.add(x)
                params += int(tensors.elems(x))
        op = Op(
            name=node.name or f"{node.op_type}_{i}",
            kernels=(Kernel(float(flops), float(moved)),),
            params=params,
            output_bytes=out_bytes,
            stash_bytes=out_bytes,
        )
        try:
            index = ops.add(op, sorted({producer[x] for x in inputs if x in producer}))
        except ValueError as exc:
            raise InputError(label, f"node {op.name}", f"nodes must be in topological order ({exc})") from None
        for x in outputs:
            producer[x] = index
    if unknown:
        listed = ", ".join(f"{op} ({n})" for op, n in sorted(unknown.items()))
        warnings.warn(f"{label}: no FLOP formula for {listed}: costed by bytes moved only", UnknownOperatorWarning,
                      stacklevel=2)
    if missing_shapes:
        shown = ", ".join(sorted(missing_shapes)[:5])
        warnings.warn(f"{label}: shape unknown after inference for {len(missing_shapes)} tensor(s) ({shown}…): "
                      "counted as empty", UserWarning, stacklevel=2)
    return ops
