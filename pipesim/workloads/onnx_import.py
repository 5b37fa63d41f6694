"""Importing an ONNX model as an operator graph.

Every ONNX node becomes one operator; an edge joins the producer of each
input tensor to its consumer.  Before costing, the importer

1. runs ONNX's checker: a model it rejects is an :class:`InputError`;
2. sets symbolic dimensions of the graph inputs (a batch ``N``) to ``batch``;
3. runs ONNX shape inference (with data propagation) and **folds** what is
   computable at import: ``Constant`` nodes, ``Identity`` of an initializer
   (an alias: its consumers read the initializer itself), ``Shape``/``Size``
   of a tensor whose shape is known, and any node whose inputs are all
   constant with a small output (at most :data:`FOLD_LIMIT` elements) — the
   shape-computation subgraphs (``Shape -> Gather -> Unsqueeze -> Concat ->
   Reshape``) of legacy exporters.  Inference and folding repeat until nothing
   more folds, so a ``Reshape`` whose target was computed becomes known;
4. warns (:class:`UnknownShapeWarning`) listing every tensor whose shape stays
   unknown; such an output is costed as large as the operator's largest known
   input (never a silent zero) and the warning says so.

**Data type.**  The model's data type is that of the floating-point tensors
(initializers and activations, weighted by element count), never that of an
integer input such as ``input_ids``; ``dtype=`` overrides it (and costs every
floating-point tensor at that type's size).

**Parameters.**  Floating-point initializers are parameters.  Exporters
duplicate tied weights (an embedding and the LM head that reuses it): two
initializers with the same type and bytes, in the same shape or transposed (not uniform, so fresh
all-ones LayerNorm scales are not merged) are one weight.  A weight is owned
(counted in :attr:`OpGraph.params`) by its first reader; every other reader
lists it in :attr:`Op.tied`, so each stage that reads it holds it in memory.

**Fusion.**  :func:`fuse_by_prefix` groups operators whose module paths share
their first ``depth`` components into one layer each: the path PyTorch's
legacy exporter writes into node names (``/bert/encoder/layer.0/...``), or
the dynamo exporter's ``pkg.torch.onnx.name_scopes`` metadata
(:func:`node_scope`).

**Input branches.**  Operators that do not depend on the main graph input
(masks, position ids, rotary tables) are attached to the operator they feed
(:func:`input_branches`), so they do not multiply the DP's ideals.

**Memory.**  Import reads no weight it does not need: a file is walked
field by field and large embedded weights are left in it like external data
(:func:`_skeleton`); external data is never loaded; each weight is read once,
alone, to detect tied duplicates; shape inference and folding run on the
weightless model.  Peak memory stays below the file's size (0.53x for a
256 MiB file, 7.0x before) and models over 2 GB (external data) import.
:func:`prepare_onnx`, for the runtime, loads the weights.

**Batch.**  The batch is the graph inputs' fixed first dimension where the
exporter fixed one (a ResNet exported at batch 8 is costed and labelled at
batch 8, :func:`graph_batch`); ``batch`` sets only symbolic dimensions.

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

Bytes are every input and output read or written once, except that a
lookup or slice (``Gather``, ``Slice``…) reads from its data input only the
elements it writes (an embedding lookup reads one row per token, not the
table).  An operator not in
these tables is costed by the bytes it moves, and one
:class:`UnknownOperatorWarning` names every such operator type.
"""

from __future__ import annotations

import ast
import hashlib
import math
import os
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from pipesim.errors import InputError, ModelSpecError
from pipesim.hardware.devices import DTYPE_BYTES
from pipesim.workloads.kernels import PER_ELEMENT
from pipesim.workloads.opgraph import Kernel, Op, OpGraph

__all__ = [
    "FOLD_LIMIT",
    "OP_CLASSES",
    "op_class",
    "NoEffectWarning",
    "UnknownOperatorWarning",
    "UnknownShapeWarning",
    "fold_constants",
    "fuse_by_prefix",
    "graph_batch",
    "import_onnx",
    "input_branches",
    "node_scope",
    "load_onnx",
    "model_dtype",
    "prepare_onnx",
]

#: The dynamo exporter's metadata key holding a node's module path.
NAME_SCOPES = "pkg.torch.onnx.name_scopes"

#: Largest output (elements) a node computed from constants may have to be folded at import.
FOLD_LIMIT = 1 << 16


class UnknownOperatorWarning(UserWarning):
    """Operators the importer has no FLOP formula for (costed by bytes moved)."""


class NoEffectWarning(UserWarning):
    """An option that changed nothing (``--fuse-depth`` on a model without module paths, a fixed batch)."""


class UnknownShapeWarning(UserWarning):
    """Tensors whose shape stays unknown after shape inference and folding."""


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
    "Upsample", "DepthToSpace", "SpaceToDepth", "ScatterND", "ScatterElements", "GatherND",
}
#: Data movement that reads from its first input only the elements it writes.
_PARTIAL_READS = {"Gather", "GatherElements", "GatherND", "Slice"}
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
    onnx.TensorProto.INT32: (None, 4), onnx.TensorProto.INT64: (None, 8), onnx.TensorProto.BOOL: (None, 1),
    onnx.TensorProto.INT16: (None, 2), onnx.TensorProto.UINT16: (None, 2), onnx.TensorProto.UINT32: (None, 4),
    onnx.TensorProto.UINT64: (None, 8),
}

#: Initializers of these types are trainable parameters (integer ones are shapes, indices, axes).
_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}

#: Nodes never folded: their value is not a function of their inputs.
_NOT_FOLDABLE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


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


def _source_name(source) -> str | None:
    return None if isinstance(source, onnx.ModelProto) else str(source)


def _declared_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with graph outputs declared without a type or shape given their inferred ones.

    The checker requires every graph output's shape, which hand-built models
    often leave to inference (ONNX Runtime accepts them): only that omission
    is forgiven.
    """
    if all(o.type.tensor_type.HasField("shape") for o in model.graph.output):
        return model
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # the checker will report what is wrong
        return model
    known = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for o in copy.graph.output:
        if not o.type.tensor_type.HasField("shape"):
            if o.name in known and known[o.name].type.tensor_type.HasField("shape"):
                o.type.CopyFrom(known[o.name].type)
            else:  # unknown rank: an empty dimension list with no meaning beyond "declared"
                o.type.tensor_type.elem_type = o.type.tensor_type.elem_type or onnx.TensorProto.FLOAT
                o.type.tensor_type.shape.SetInParent()
    return copy


def load_onnx(source: str | Path | onnx.ModelProto, *, check: bool = True, weights: bool = True) -> onnx.ModelProto:
    """Read an ONNX model (a copy when given one) and run ONNX's checker on it.

    With ``weights=False`` no large weight of a file is read: external data
    (weights stored beside it, how models over 2 GB are saved) stays where
    it is, and so do embedded weights (:func:`_skeleton`): initializers keep
    their type, shape and location only.  The checker reads a file by path before
    it is loaded here (the two copies never coexist; models over 2 GB pass).

    Raises
    ------
    InputError
        The file is missing or unreadable, or the checker rejects the model
        (the message is the checker's first line).
    """
    checked = False
    if not weights and not isinstance(source, onnx.ModelProto) and Path(source).is_file():
        try:
            model = _skeleton(Path(source))
        except Exception as exc:  # not protobuf, or truncated
            raise InputError(source, None, f"not a readable ONNX model ({exc})") from None
        if check:
            try:  # the skeleton's weights are external data: the checker reads no weight
                onnx.checker.check_model(_declared_outputs(_weights_as_inputs(model)))
            except Exception as exc:
                first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
                raise InputError(_source_name(source), "onnx checker", f"rejects the model: {first}") from None
        return model
    if check and not isinstance(source, onnx.ModelProto) and Path(source).is_file():
        # by path first, before the model is loaded here: the checker's own copy and ours never coexist, and
        # models over 2 GB pass; a model whose outputs lack shapes (hand-built) is checked below instead
        try:
            onnx.checker.check_model(str(source))
            checked = True
        except Exception:  # the check below gives the message, or forgives undeclared output shapes
            pass
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto.FromString(source.SerializeToString())  # never modify the caller's model
    else:
        try:
            model = onnx.load(str(source), load_external_data=weights)
        except FileNotFoundError:
            raise InputError(source, None, "no such file") from None
        except Exception as exc:  # protobuf raises its own DecodeError for a non-ONNX file
            raise InputError(source, None, f"not a readable ONNX model ({exc})") from None
    if check and not checked:
        try:
            onnx.checker.check_model(_declared_outputs(model))
        except Exception as exc:  # ValidationError, and ValueError for models over 2 GB
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise InputError(_source_name(source), "onnx checker", f"rejects the model: {first}") from None
    return model


#: Embedded initializers larger than this (bytes) are left in the file at import (small integer ones, which
#: folding may need, are read back).
SKIP_BYTES = 4096


def _varint(f) -> int:
    shift = result = 0
    while True:
        byte = f.read(1)
        if not byte:
            raise EOFError
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7


def _fields(f, end: int):
    """``(field, wire type, start, payload start, payload end)`` of each protobuf field from ``f``'s position to
    ``end`` (``f`` is moved past each payload)."""
    while f.tell() < end:
        start = f.tell()
        tag = _varint(f)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _varint(f)
            yield field, wire, start, f.tell(), f.tell()
            continue
        size = {1: 8, 5: 4}.get(wire)
        if size is None:
            if wire != 2:
                raise ValueError(f"unsupported protobuf wire type {wire}")
            size = _varint(f)
        payload = f.tell()
        yield field, wire, start, payload, payload + size
        f.seek(payload + size)


def _skeleton(path: Path) -> onnx.ModelProto:
    """The model in ``path`` without reading its large embedded weights into memory.

    The file is walked field by field (protobuf's wire format): every field
    is read except an initializer's ``raw_data`` over :data:`SKIP_BYTES`,
    which is left in the file and recorded as external data pointing into the
    model file itself (location, offset, length), the way ONNX describes
    weights stored outside the graph.  Memory is the graph without its
    weights, whatever the file's size.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        rest, graph = bytearray(), None
        for field, wire, start, payload, end in list(_fields(f, size)):
            if field == 7 and wire == 2:  # ModelProto.graph
                graph_rest, tensors = bytearray(), []
                f.seek(payload)
                for g_field, g_wire, g_start, g_payload, g_end in list(_fields(f, end)):
                    if g_field == 5 and g_wire == 2:  # GraphProto.initializer
                        kept, raw = bytearray(), None
                        f.seek(g_payload)
                        for t_field, t_wire, t_start, t_payload, t_end in list(_fields(f, g_end)):
                            if t_field == 9 and t_wire == 2 and t_end - t_payload > SKIP_BYTES:  # TensorProto.raw_data
                                raw = (t_payload, t_end - t_payload)
                                continue
                            f.seek(t_start)
                            kept += f.read(t_end - t_start)
                        f.seek(g_end)
                        tensor = onnx.TensorProto.FromString(bytes(kept))
                        if raw is not None and tensor.data_type not in _FLOATS and math.prod(tensor.dims) <= FOLD_LIMIT:
                            f.seek(raw[0])  # shapes, axes, indices: folding reads their values
                            tensor.raw_data = f.read(raw[1])
                            f.seek(g_end)
                            raw = None
                        if raw is not None:
                            tensor.data_location = onnx.TensorProto.EXTERNAL
                            for key, value in (("location", path.name), ("offset", str(raw[0])), ("length", str(raw[1]))):
                                entry = tensor.external_data.add()
                                entry.key, entry.value = key, value
                        tensors.append(tensor)
                        continue
                    f.seek(g_start)
                    graph_rest += f.read(g_end - g_start)
                f.seek(end)
                graph = onnx.GraphProto.FromString(bytes(graph_rest))
                graph.initializer.extend(tensors)
                continue
            f.seek(start)
            rest += f.read(end - start)
            f.seek(end)
    model = onnx.ModelProto.FromString(bytes(rest))
    if graph is not None:
        model.graph.CopyFrom(graph)
    return model


def _weights_as_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose external-data initializers are graph inputs of their type and shape.

    What the checker can say of a model whose weights are not read: its
    structure, types and shapes (a weight's bytes are read, and checked,
    when they are hashed).
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = [t for t in copy.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    moved = [t for t in copy.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if not moved:
        return copy
    declared = {i.name for i in copy.graph.input}
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(kept)
    copy.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                            for t in moved if t.name not in declared)
    return copy


def _external_array(t: onnx.TensorProto, base: Path | None) -> np.ndarray | None:
    """An initializer stored as external data, read from its file straight into an array; else ``None``."""
    if t.data_location != onnx.TensorProto.EXTERNAL or base is None:
        return None
    info = {e.key: e.value for e in t.external_data}
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
    count = math.prod(t.dims)
    try:
        with open(base / info["location"], "rb") as f:
            f.seek(int(info.get("offset", 0)))
            array = np.fromfile(f, dtype=dtype, count=count)  # one allocation, no intermediate bytes
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(base / info.get("location", "?"), f"external data of {t.name}",
                         f"cannot be read ({exc})") from None
    if array.size != count:
        raise InputError(base / info["location"], f"external data of {t.name}",
                         f"holds {array.size} of its {count} elements")
    return array.reshape(tuple(t.dims))


def _strip_weights(model: onnx.ModelProto, base: Path | None = None, limit: int = FOLD_LIMIT) -> None:
    """Drop the data of weights and of initializers over ``limit`` elements, in place (type and shape stay);
    read into the model the other initializers stored as external data (``base``: the folder of the files).

    What import needs of a weight is its shape, type and (for tied weights)
    a hash, taken before; shape inference and folding then run on a model of
    kilobytes instead of the whole file.  Folding reads the values of the
    rest: the dynamo exporter stores every initializer as external data,
    shape targets and axes included (``torch.onnx.export(..., external_data=True)``),
    and they are read here as :func:`_skeleton` keeps those of an embedded file.
    """
    for t in model.graph.initializer:
        count = math.prod(t.dims)
        # folding never reads a float tensor of more than one element (a weight) nor anything over ``limit``
        if count > limit or (t.data_type in _FLOATS and count > 1):
            for name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data",
                         "string_data", "external_data"):
                t.ClearField(name)
            t.data_location = onnx.TensorProto.DEFAULT
        else:
            array = _external_array(t, base)
            if array is not None:
                t.CopyFrom(numpy_helper.from_array(array, t.name))


def _infer(model: onnx.ModelProto, source) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and others for inconsistent models
        raise InputError(_source_name(source), "shape inference", str(exc).strip().splitlines()[0]) from None


def _static_shapes(graph: onnx.GraphProto) -> dict[str, tuple[int, ...] | None]:
    shapes = {info.name: _shape(info.type) for info in (*graph.input, *graph.value_info, *graph.output)}
    shapes.update({t.name: tuple(t.dims) for t in graph.initializer})
    return shapes


def _evaluate(node: onnx.NodeProto, values: list[np.ndarray], opset: int) -> list[np.ndarray] | None:
    from onnx.reference import ReferenceEvaluator

    inputs = [x for x in node.input if x]
    feeds = dict(zip(inputs, values))
    graph = helper.make_graph(
        [node], "fold", [helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                         for x, v in feeds.items()],
        [helper.make_tensor_value_info(y, onnx.TensorProto.UNDEFINED, None) for y in node.output if y],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        return list(ReferenceEvaluator(model).run(None, feeds))
    except Exception:  # an operator the reference evaluator lacks, or a bad model: leave the node in
        return None


def fold_constants(model: onnx.ModelProto, *, limit: int = FOLD_LIMIT) -> tuple[onnx.ModelProto, dict[str, str], int]:
    """Fold what is computable at import (see the module docstring, step 3).

    Returns
    -------
    model, aliases, folded
        The model without the folded nodes (their needed outputs become
        initializers), ``aliases`` mapping each ``Identity``-of-initializer
        output to the initializer it names, and how many nodes were folded.
        Run shape inference on ``model`` first: ``Shape`` folds only when its
        input's shape is known.

    Examples
    --------
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3, 4])
    >>> y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    >>> idx = numpy_helper.from_array(np.array(0, np.int64), "i")
    >>> nodes = [helper.make_node("Shape", ["X"], ["s"]), helper.make_node("Gather", ["s", "i"], ["n"]),
    ...          helper.make_node("Relu", ["X"], ["Y"])]
    >>> m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [idx]))
    >>> folded, aliases, n = fold_constants(shape_inference.infer_shapes(m))
    >>> n, [node.op_type for node in folded.graph.node]
    (2, ['Relu'])
    """
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    shapes = _static_shapes(graph)
    init_names = {t.name for t in graph.initializer}
    weights = {t.name for t in graph.initializer if t.data_type in _FLOATS and math.prod(t.dims) > 1}
    values: dict[str, np.ndarray] = {}  # small constants known by value

    def value(name: str) -> np.ndarray | None:
        if name not in values and name in init_names:
            t = next(t for t in graph.initializer if t.name == name)
            if math.prod(t.dims) <= limit:
                values[name] = numpy_helper.to_array(t)
        return values.get(name)

    aliases: dict[str, str] = {}
    kept: list[onnx.NodeProto] = []
    folded = 0
    for node in graph.node:
        ins = [aliases.get(x, x) for x in node.input]
        for k, x in enumerate(ins):  # consumers of an alias read the initializer itself
            node.input[k] = x
        present = [x for x in ins if x]
        out: list[np.ndarray] | None = None
        if node.domain not in ("", "ai.onnx") or node.op_type in _NOT_FOLDABLE:
            out = None
        elif node.op_type == "Identity" and present and present[0] in init_names:
            aliases[node.output[0]] = present[0]
            folded += 1
            continue
        elif node.op_type == "Constant":
            out = _evaluate(node, [], opset)
        elif node.op_type in ("Shape", "Size") and present and shapes.get(present[0]) is not None:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            shape = np.array(shapes[present[0]], np.int64)
            if node.op_type == "Size":
                out = [np.array(math.prod(shapes[present[0]]), np.int64)]
            else:
                out = [shape[attrs.get("start", 0):attrs.get("end", len(shape))]]
        elif present and not (set(present) & weights) and all(value(x) is not None for x in present):
            # computations on weights (a transposed tied embedding) stay: they keep the weight's reader
            known = [shapes.get(y) for y in node.output if y]
            if all(s is not None and math.prod(s) <= limit for s in known):
                out = _evaluate(node, [value(x) for x in present], opset)
        if out is None or any(np.asarray(v).size > limit for v in out):
            kept.append(node)
            continue
        for y, v in zip([y for y in node.output if y], out):
            values[y] = np.asarray(v)
        folded += 1

    used = {x for node in kept for x in node.input} | {o.name for o in graph.output}
    new_inits = [t for t in graph.initializer if t.name in used]
    new_inits += [numpy_helper.from_array(values[y], y) for y in sorted(used & values.keys()) if y not in init_names]
    outputs = list(graph.output)
    for o in outputs:  # a graph output that is an alias keeps its name through an Identity
        if o.name in aliases:
            kept.append(helper.make_node("Identity", [aliases[o.name]], [o.name]))
    new_graph = helper.make_graph(
        kept, graph.name, list(graph.input), outputs, new_inits,
        value_info=[v for v in graph.value_info if v.name in used or any(v.name in n.output for n in kept)],
    )
    result = onnx.ModelProto()
    result.CopyFrom(model)
    result.graph.CopyFrom(new_graph)
    return result, aliases, folded


def model_dtype(graph: onnx.GraphProto) -> str:
    """The data type of the model's floating-point tensors, weighted by elements (``fp32`` if none).

    Integer tensors (``input_ids``, shapes, indices) never decide it.
    """
    weight: Counter[str] = Counter()
    for t in graph.initializer:
        if t.data_type in _FLOATS:
            weight[_ELEM[t.data_type][0]] += math.prod(t.dims) or 1
    for info in (*graph.input, *graph.value_info, *graph.output):
        elem = info.type.tensor_type.elem_type
        if elem in _FLOATS:
            shape = _shape(info.type)
            weight[_ELEM[elem][0]] += math.prod(shape) if shape else 1
    return weight.most_common(1)[0][0] if weight else "fp32"


class _Tensors:
    """Shapes, element sizes and producers of the model's tensors."""

    def __init__(self, graph: onnx.GraphProto, dtype_override: str | None):
        self.shape: dict[str, tuple[int, ...] | None] = {}
        self.itemsize: dict[str, int] = {}
        override = DTYPE_BYTES[dtype_override] if dtype_override else None

        def size(elem: int) -> int:
            if override and elem in _FLOATS:
                return override
            return _ELEM.get(elem, (None, 4))[1]

        for info in (*graph.input, *graph.value_info, *graph.output):
            self.shape[info.name] = _shape(info.type)
            self.itemsize[info.name] = size(info.type.tensor_type.elem_type)
        self.initializers = {t.name: t for t in graph.initializer}
        for t in graph.initializer:
            self.shape[t.name] = tuple(t.dims)
            self.itemsize[t.name] = size(t.data_type)

    def elems(self, name: str) -> float:
        shape = self.shape.get(name)
        return float(math.prod(shape)) if shape is not None else 0.0

    def nbytes(self, name: str) -> float:
        return self.elems(name) * self.itemsize.get(name, 4)


#: Operator classes whose efficiencies ``pipesim hardware calibrate`` fits separately.  ``strided`` is data
#: movement that reads or writes with a stride (a transpose, an element-wise gather): on a CPU it runs at a
#: fraction of a contiguous copy's bandwidth once the tensor leaves the caches (GPT-2's 50257x768 embedding
#: transposed on every forward).  A ``Gather`` of rows (an embedding lookup) copies contiguous rows: ``movement``.
OP_CLASSES = ("matmul", "conv", "elementwise", "normalization", "softmax", "pool", "reduction", "movement", "strided",
              "other")

_STRIDED = {"Transpose", "GatherElements", "GatherND", "DepthToSpace", "SpaceToDepth"}


def op_class(op_type: str) -> str:
    """The class of an ONNX operator type (see :data:`OP_CLASSES`).

    Examples
    --------
    >>> op_class("Gemm"), op_class("Relu"), op_class("LayerNormalization"), op_class("Hardmax")
    ('matmul', 'elementwise', 'normalization', 'other')
    >>> op_class("Transpose"), op_class("Concat")
    ('strided', 'movement')
    """
    if op_type in ("MatMul", "Gemm", "MatMulInteger", "FusedMatMul"):
        return "matmul"
    if op_type in ("Conv", "ConvTranspose", "FusedConv"):
        return "conv"
    if op_type in ("BatchNormalization", "LayerNormalization", "InstanceNormalization"):
        return "normalization"
    if op_type in ("Softmax", "LogSoftmax"):
        return "softmax"
    if op_type in ("MaxPool", "AveragePool", "LpPool"):
        return "pool"
    if op_type in _REDUCTIONS:
        return "reduction"
    if op_type in _ELEMENTWISE:
        return "elementwise"
    if op_type in _STRIDED:
        return "strided"
    if op_type in _MOVEMENT or op_type in _VIEWS:
        return "movement"
    return "other"


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


def _canonical_weights(inits, base: Path | None = None) -> dict[str, str]:
    """Each float initializer -> the first initializer with the same type, shape and bytes (exporter duplicates).

    One weight at a time is read (from its file for external data), so
    memory stays at the largest weight.
    """
    seen: dict[tuple, str] = {}
    canon: dict[str, str] = {}
    for t in inits:
        name = t.name
        if t.data_type not in _FLOATS:
            continue
        array = _external_array(t, base)
        if array is None:
            array = numpy_helper.to_array(t)
        if array.size < 2 or array.min() == array.max():  # uniform (fresh LayerNorm scales): not evidence of tying
            canon[name] = name
            del array  # before the next weight is read: one weight in memory at a time
            continue
        key = (t.data_type, tuple(t.dims), hashlib.sha1(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest())
        canon[name] = seen.setdefault(key, name)
        if array.ndim == 2 and canon[name] == name:  # exporters store a tied LM head transposed
            flipped = np.ascontiguousarray(array.T)
            seen.setdefault((t.data_type, tuple(t.dims)[::-1], hashlib.sha1(memoryview(flipped).cast("B")).hexdigest()),
                            name)
            del flipped
        del array
    return canon


def graph_batch(model: onnx.ModelProto, batch: int = 1) -> int:
    """The batch of ``model``: its inputs' fixed first dimension, or ``batch`` where it is symbolic.

    An exporter given a batch of 8 writes ``[8, 3, 224, 224]``: the model
    then runs 8 samples per call whatever ``batch`` says, so that is its
    batch.  With any symbolic first dimension (``["N", 3, 224, 224]``), or
    inputs that disagree, ``batch`` is the value given to symbolic dimensions.

    Examples
    --------
    >>> from onnx import TensorProto
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 3])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 3])
    >>> m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    >>> graph_batch(m, 1)
    8
    >>> m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    >>> graph_batch(m, 2)
    2
    """
    inits = {t.name for t in model.graph.initializer}
    firsts = set()
    for info in model.graph.input:
        if info.name in inits or not info.type.tensor_type.HasField("shape"):
            continue
        dims = info.type.tensor_type.shape.dim
        if not dims:
            continue
        if not dims[0].HasField("dim_value"):
            return batch
        firsts.add(dims[0].dim_value)
    return firsts.pop() if len(firsts) == 1 else batch


def prepare_onnx(source: str | Path | onnx.ModelProto, *, batch: int = 1, check: bool = True) -> onnx.ModelProto:
    """The model as the importer costs it: checked, batch set, shapes inferred, constants folded.

    Its nodes are exactly the operators of :func:`import_onnx`, in the same
    order, each with a unique name (``{op_type}_{index}`` for an unnamed
    node), so it is also the model that :mod:`pipesim.runtime` profiles and
    cuts into stages: node ``i`` here is node ``i`` of the workload.

    Examples
    --------
    >>> from pipesim.workloads.onnx_models import encoder_onnx
    >>> m = prepare_onnx(encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=8), batch=2)
    >>> "Shape" in {n.op_type for n in m.graph.node}, m.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    (False, 2)
    """
    return _prepare(load_onnx(source, check=check), source, batch)


def _prepare(model: onnx.ModelProto, source, batch: int) -> onnx.ModelProto:
    """:func:`prepare_onnx`'s steps after loading: batch, shape inference and folding, unique names."""
    for info in model.graph.input:
        for d in info.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.dim_value = batch
    model = _infer(model, source)
    for _ in range(8):  # inference and folding feed each other: a folded Reshape target gives a shape
        model, _aliases, folded = fold_constants(model)
        model = _infer(model, source)
        if not folded:
            break
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)
    return model


def node_scope(node: onnx.NodeProto) -> tuple[str, ...]:
    """The module path of ``node``: from the dynamo exporter's metadata where present, else from its name.

    PyTorch's dynamo exporter names nodes flatly (``node_Conv_781``) and
    writes the module path as ``metadata_props["pkg.torch.onnx.name_scopes"]``:
    the ``repr`` of a list of cumulative module names, first ``''`` (the root)
    and last the node's own name.  The legacy (TorchScript) exporter writes the
    path into the name (``/bert/encoder/layer.0/attention/MatMul``).  Either
    way the path is returned as components (``("bert", "encoder", "layer.0", "attention")``).

    Examples
    --------
    >>> n = helper.make_node("MatMul", ["a", "b"], ["c"], name="node_MatMul_12")
    >>> entry = n.metadata_props.add()
    >>> entry.key, entry.value = "pkg.torch.onnx.name_scopes", "['', 'bert', 'bert.encoder', 'bert.encoder.layer.0', 'matmul_3']"
    >>> node_scope(n)
    ('bert', 'encoder', 'layer.0')
    >>> node_scope(helper.make_node("Add", ["a", "b"], ["c"], name="/bert/embeddings/Add"))
    ('bert', 'embeddings')
    """
    meta = {entry.key: entry.value for entry in node.metadata_props}
    raw = meta.get(NAME_SCOPES)
    if raw:
        try:
            scopes = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            scopes = None
        if isinstance(scopes, (list, tuple)) and all(isinstance(x, str) for x in scopes):
            parts, previous = [], ""
            for entry in scopes[1:-1]:  # without the root and the node's own name
                if not entry:
                    continue
                parts.append(entry[len(previous) + 1:] if previous and entry.startswith(previous + ".") else entry)
                previous = entry
            return tuple(parts)
    return tuple(part for part in node.name.split("/") if part)[:-1]


def input_branches(model: onnx.ModelProto, ops: OpGraph) -> dict[int, int]:
    """Operators that do not depend on the model's main input, each attached to the operator it feeds.

    The *main input* is the graph input whose descendants carry the most
    FLOPs (then bytes); an *input branch* is an operator that is not one of
    them: attention masks (``attention_mask -> ... -> Where``), position ids,
    token types, rotary tables, a transposed weight.  Left free, such
    operators multiply the DP's ideals: a per-layer ``Where`` on the mask can
    join any ideal, so a 24-layer TorchScript BERT has millions of ideals where
    its dynamo export (one shared mask) has thousands (issue 22, item 1).  Each is
    attached to the first operator of the main stream it feeds (directly or
    through other branch operators), whose device it then shares: it runs
    where it is first needed, and later consumers receive its output like
    any other tensor.  This is a restriction of the placements (solved
    exactly, as colour classes, docs/model.md §3 step 1), not of the costs; a
    model with one input and no such branch is unchanged.

    Returns
    -------
    dict
        Operator index -> index of the operator it is attached to (node
        ``i`` of ``model`` is operator ``i`` of ``ops``).

    Examples
    --------
    >>> from onnx import TensorProto
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    >>> m = helper.make_tensor_value_info("mask", TensorProto.BOOL, [2, 4])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    >>> nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Not", ["mask"], ["n"]),
    ...          helper.make_node("Where", ["n", "r", "x"], ["y"])]
    >>> model = helper.make_model(helper.make_graph(nodes, "g", [x, m], [y]))
    >>> ops = import_onnx(model)
    >>> ops.attached
    {1: 2}
    """
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    if not inputs or len(graph.node) != len(ops.ops):
        return {}
    depends: dict[str, int] = {x: 1 << k for k, x in enumerate(inputs)}
    node_deps = []
    for node in graph.node:
        mask = 0
        for x in node.input:
            mask |= depends.get(x, 0)
        node_deps.append(mask)
        for y in node.output:
            depends[y] = mask
    weight = [(0.0, 0.0)] * len(inputs)
    for k in range(len(inputs)):
        weight[k] = (sum(op.flops for op, d in zip(ops.ops, node_deps) if d >> k & 1),
                     sum(op.bytes for op, d in zip(ops.ops, node_deps) if d >> k & 1))
    main = 1 << max(range(len(inputs)), key=lambda k: (weight[k], -k))
    consumers: dict[int, list[int]] = {}
    for s, d in ops.edges:
        consumers.setdefault(s, []).append(d)
    target: dict[int, int] = {}
    for i in reversed(range(len(ops.ops))):
        if node_deps[i] & main:
            continue
        reached = [c if node_deps[c] & main else target.get(c) for c in consumers.get(i, [])]
        reached = [c for c in reached if c is not None]
        if reached:
            target[i] = min(reached)
    return dict(sorted(target.items()))


def import_onnx(
    source: str | Path | onnx.ModelProto,
    *,
    batch: int = 1,
    name: str | None = None,
    dtype: str | None = None,
    check: bool = True,
    attach_inputs: bool = True,
) -> OpGraph:
    """The operator graph of an ONNX model (see the module docstring).

    Parameters
    ----------
    source : path or onnx.ModelProto
        The model (never modified).
    batch : int
        Value given to symbolic dimensions of the graph inputs.
    name : str, optional
        The graph's name (default: the file's stem, or the graph's name).
    dtype : str, optional
        Cost the model as this data type (``fp32``, ``fp16``…) instead of the
        type of its floating-point tensors.
    check : bool
        Run ONNX's checker first.
    attach_inputs : bool
        Attach the input branches to their consumers (:func:`input_branches`).

    Returns
    -------
    OpGraph

    Raises
    ------
    InputError
        Unreadable file, a model the checker rejects, failed shape inference,
        or an unknown ``dtype``.

    Warns
    -----
    UnknownOperatorWarning, UnknownShapeWarning

    Examples
    --------
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 4])
    >>> y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    >>> emb = numpy_helper.from_array(np.random.default_rng(0).random((10, 8), np.float32), "emb")
    >>> m = helper.make_model(helper.make_graph([helper.make_node("Gather", ["emb", "ids"], ["Y"])], "g", [ids], [y], [emb]))
    >>> g = import_onnx(m, batch=2)
    >>> g.dtype, g.params, g.ops[0].output_bytes
    ('fp32', 80, 256.0)
    """
    label_source = _source_name(source)
    if dtype is not None and dtype not in DTYPE_BYTES:
        raise InputError(label_source, "dtype", f"unknown data type {dtype!r} (known: {', '.join(DTYPE_BYTES)})")
    # Only shapes, types and (for tied weights) hashes of the weights are needed: external data is never loaded,
    # each weight is hashed one at a time, then the weights' data is dropped before shape inference and folding
    # (which then run on a model of kilobytes, issue 22 item 7).
    model = load_onnx(source, check=check, weights=False)
    base = Path(source).parent if isinstance(source, (str, Path)) else None
    canon = _canonical_weights(model.graph.initializer, base)
    _strip_weights(model, base)
    model = _prepare(model, source, batch)
    graph = model.graph
    tensors = _Tensors(graph, dtype)
    cost_dtype = dtype or model_dtype(graph)
    label = name or (Path(source).stem if isinstance(source, (str, Path)) else graph.name or "onnx")

    ops = OpGraph(label, cost_dtype, attrs={"batch": graph_batch(model, batch)})
    producer: dict[str, int] = {}
    owner: dict[str, int] = {}
    readers: dict[str, set[int]] = {}
    unknown: Counter[str] = Counter()
    missing: dict[str, str] = {}
    for i, node in enumerate(graph.node):
        inputs = [x for x in node.input if x]
        outputs = [x for x in node.output if x]
        for x in inputs:
            if tensors.shape.get(x) is None:
                missing.setdefault(x, "counted as empty")
        known_in = max((tensors.elems(x) for x in inputs if tensors.shape.get(x) is not None), default=0.0)
        for y in outputs:
            if tensors.shape.get(y) is None:
                # never a silent zero: an unknown output is as large as the largest known input
                missing[y] = "estimated from the inputs" if known_in else "counted as empty"
                if known_in and node.op_type not in _VIEWS | {"Shape", "Size"}:
                    tensors.shape[y] = (int(known_in),)
        out_elems = sum(tensors.elems(x) for x in outputs)
        out_bytes = sum(tensors.nbytes(x) for x in outputs)
        moved = sum(tensors.nbytes(x) for x in inputs) + out_bytes
        flops = _flops(node, tensors, inputs, out_elems)
        if flops is None:
            unknown[node.op_type] += 1
            flops = 0.0
        if node.op_type in _VIEWS:
            moved = 0.0
        elif node.op_type in _PARTIAL_READS and inputs:
            # a lookup or a slice reads only what it writes from its data input (an embedding row per token),
            # not the whole table, plus its small index inputs
            moved = 2 * out_bytes + sum(tensors.nbytes(x) for x in inputs[1:])
        params, tied = 0, []
        for x in dict.fromkeys(inputs):
            weight = canon.get(x)
            if weight is None:
                continue
            readers.setdefault(weight, set()).add(i)
            if weight not in owner:
                owner[weight] = i
                params += int(tensors.elems(weight))
            elif owner[weight] != i:
                tied.append((weight, int(tensors.elems(weight))))
        op = Op(
            name=node.name,
            kernels=(Kernel(float(flops), float(moved), op_class=op_class(node.op_type)),),
            params=params,
            output_bytes=out_bytes,
            stash_bytes=out_bytes,
            tied=tuple(tied),
            scope=node_scope(node),
        )
        try:
            index = ops.add(op, sorted({producer[x] for x in inputs if x in producer}))
        except ValueError as exc:
            raise InputError(label, f"node {op.name}", f"nodes must be in topological order ({exc})") from None
        for x in outputs:
            producer[x] = index
    ops.tied_owner = {w: owner[w] for w, r in readers.items() if len(r) > 1}
    branches = input_branches(model, ops)
    ops.attrs["input_branches"] = len(branches)
    if attach_inputs:
        ops.attached = branches
    if unknown:
        listed = ", ".join(f"{op} ({n})" for op, n in sorted(unknown.items()))
        warnings.warn(f"{label}: no FLOP formula for {listed}: costed by bytes moved only", UnknownOperatorWarning,
                      stacklevel=2)
    if missing:
        names = sorted(missing)
        shown = ", ".join(f"{x} ({missing[x]})" for x in names[:8])
        more = f" and {len(names) - 8} more" if len(names) > 8 else ""
        warnings.warn(f"{label}: shape unknown after inference and folding for {len(names)} tensor(s): {shown}{more}",
                      UnknownShapeWarning, stacklevel=2)
    return ops


def fuse_by_prefix(ops: OpGraph, depth: int) -> OpGraph:
    """Fuse operators whose names share their first ``depth`` path components into one layer each.

    The operator's module is its :attr:`~pipesim.workloads.opgraph.Op.scope`
    (:func:`node_scope`: the dynamo exporter's ``name_scopes`` metadata) or,
    without one, its name split on ``/``
    (``/bert/encoder/layer.0/attention/self/query/MatMul``) less the last component.
    Consecutive operators (in topological order) of the same module prefix
    form one layer, so a fused graph is always acyclic; an operator whose
    module is shallower than ``depth`` is grouped by its whole module, and
    one without a module (``/Constant_3``) stays alone.

    Examples
    --------
    >>> g = OpGraph("m", "fp32")
    >>> for i, n in enumerate(["/enc/l0/a/MatMul", "/enc/l0/b/Add", "/enc/l1/a/MatMul", "/head/Gemm"]):
    ...     _ = g.add(Op(n, (Kernel(1.0, 1.0),)), [i - 1] if i else [])
    >>> [op.name for op in fuse_by_prefix(g, 2).ops]
    ['/enc/l0', '/enc/l1', '/head']
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ModelSpecError(f"fuse depth: must be a positive integer, got {depth!r}")
    labelled = OpGraph(ops.name, ops.dtype, edges=list(ops.edges), tied_owner=dict(ops.tied_owner),
                       attrs=dict(ops.attrs), attached=dict(ops.attached))
    layer, previous = -1, None
    for op in ops.ops:
        module = list(op.scope) or [part for part in op.name.split("/") if part][:-1]
        prefix = tuple(module[:depth]) if module else None
        if prefix is None:
            labelled.ops.append(replace(op, layer=None))
            previous = None
            continue
        if prefix != previous:
            layer += 1
            labelled.layer_names[layer] = "/" + "/".join(prefix)
            previous = prefix
        labelled.ops.append(replace(op, layer=layer))
    fused = labelled.by_layer()
    if len(fused.ops) == len(ops.ops):
        warnings.warn(f"{ops.name}: --fuse-depth {depth} fused nothing: no two consecutive operators share a module "
                      "path (neither node names like /encoder/layer.0/... nor pkg.torch.onnx.name_scopes metadata)",
                      NoEffectWarning, stacklevel=2)
    return fused
