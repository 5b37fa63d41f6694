"""Small ONNX models built with ``onnx.helper``: a BERT-style encoder and a ResNet.

They stand in for framework exports where no framework is installed (tests,
the fidelity benchmark, the bundled example).  They are written the way
PyTorch's legacy exporter writes its models, so the importer meets what it
meets in practice:

* node names carry the module path (``/encoder/layer.0/attention/query/MatMul``);
* the encoder takes ``int64`` token ids and, with ``legacy_shapes``, computes
  its ``Reshape`` targets at run time (``Shape -> Gather -> Unsqueeze ->
  Concat``) and reads a weight through ``Identity``;
* with ``tied_head`` the encoder ends in a language-model head whose weight is
  the exporter's transposed duplicate of the word embedding;
* the ResNet's convolutions have batch normalisation folded in (bias), as
  exporters do for inference.

Weights are random (seeded), scaled so activations stay of order one.
Reference: Devlin et al., "BERT", NAACL 2019 (encoder); He et al., "Deep
Residual Learning", CVPR 2016 (bottleneck ResNet-50: blocks 3, 4, 6, 3).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["OPSET", "encoder_onnx", "mlp_onnx", "resnet_onnx"]

#: The opset the models use (LayerNormalization needs 17).
OPSET = 17


class _Builder:
    def __init__(self, seed: int, dtype: type = np.float32, dynamo: bool = False):
        self.dynamo = dynamo
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def tensor(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        return self.tensor(name, (self.rng.standard_normal(shape) / math.sqrt(fan_in)).astype(self.dtype))

    def const(self, name: str, value, dtype=np.int64) -> str:
        return self.tensor(name, np.asarray(value, dtype))

    def node(self, op: str, inputs: list[str], scope: str, **attrs) -> str:
        self.count += 1
        if self.dynamo:  # flat names; the module path in metadata, as cumulative dotted names
            out = f"{op.lower()}_{self.count}"
            node = helper.make_node(op, inputs, [out], name=f"node_{op}_{self.count}", **attrs)
            parts = [p for p in scope.split("/") if p]
            scopes = [""] + [".".join(parts[: k + 1]) for k in range(len(parts))] + [out]
            entry = node.metadata_props.add()
            entry.key, entry.value = "pkg.torch.onnx.name_scopes", repr(scopes)
            self.nodes.append(node)
            return out
        out = f"{scope}/{op}_{self.count}_output"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{scope}/{op}_{self.count}", **attrs))
        return out

    def model(self, name: str, inputs, output: str, out_dtype=TensorProto.FLOAT) -> onnx.ModelProto:
        y = helper.make_tensor_value_info(output, out_dtype, None)
        graph = helper.make_graph(self.nodes, name, inputs, [y], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="pipesim")
        model.ir_version = 8  # readable by every ONNX Runtime since 1.10
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph.output[0]
        model.graph.output[0].CopyFrom(inferred)  # declare the output's shape, as exporters do (the checker requires it)
        return model


def encoder_onnx(
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    seq: int = 16,
    vocab: int = 128,
    *,
    ffn: int | None = None,
    tied_head: bool = False,
    legacy_shapes: bool = True,
    float16: bool = False,
    attention_mask: bool = False,
    exporter: str = "torchscript",
    seed: int = 0,
) -> onnx.ModelProto:
    """A BERT-style encoder: ids ``[N, seq]`` (int64) -> hidden states (or LM logits with ``tied_head``).

    With ``attention_mask`` the model takes a second input ``attention_mask``
    ``[N, seq]`` (int64, 1 = attend) and adds ``0`` or ``-inf`` to every
    layer's scores, the way each exporter writes it: ``"torchscript"`` turns
    the mask into booleans once and has one ``Where(mask, 0, -inf)`` per
    layer (the legacy exporter's decomposed ``scaled_dot_product_attention``);
    ``"dynamo"`` has one shared ``Where``, names nodes flatly
    (``node_MatMul_12``) with the module path in
    ``metadata_props["pkg.torch.onnx.name_scopes"]``, and no shape subgraphs.

    Examples
    --------
    >>> m = encoder_onnx(layers=1, hidden=16, heads=2, seq=4, vocab=8)
    >>> m.graph.input[0].type.tensor_type.elem_type == TensorProto.INT64
    True
    """
    if exporter not in ("torchscript", "dynamo"):
        raise ValueError(f"exporter: 'torchscript' or 'dynamo', got {exporter!r}")
    dynamo = exporter == "dynamo"
    legacy_shapes = legacy_shapes and not dynamo
    ffn = ffn or 4 * hidden
    hd = hidden // heads
    dtype = np.float16 if float16 else np.float32
    b = _Builder(seed, dtype, dynamo)
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", seq])
    inputs = [ids]
    if attention_mask:
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", seq]))
        m = b.node("Unsqueeze", ["attention_mask", b.const("mask_axes", [1, 2])], "")
        m = b.node("Cast", [m], "", to=TensorProto.BOOL)
        mask_values = (b.const("mask_zero", 0.0, dtype), b.const("mask_minus_inf", -np.inf, dtype))
        shared = b.node("Where", [m, *mask_values], "") if dynamo else None
    emb = b.weight("embeddings.word_embeddings.weight", (vocab, hidden), 1)
    x = b.node("Gather", [emb, "input_ids"], "/embeddings/word_embeddings")
    pos = b.weight("embeddings.position_embeddings.weight", (seq, hidden), 1)
    x = b.node("Add", [x, pos], "/embeddings")
    x = b.node("LayerNormalization", [x, b.const("embeddings.LayerNorm.weight", np.ones(hidden), dtype),
                                      b.const("embeddings.LayerNorm.bias", np.zeros(hidden), dtype)],
               "/embeddings/LayerNorm", axis=-1)

    def linear(x: str, scope: str, n_in: int, n_out: int, weight_name: str) -> str:
        w = b.weight(f"{weight_name}.weight", (n_in, n_out), n_in)
        if legacy_shapes and weight_name.endswith("attention.output.dense"):
            w = b.node("Identity", [w], scope)  # the legacy exporter reads some weights through Identity
        y = b.node("MatMul", [x, w], scope)
        return b.node("Add", [y, b.const(f"{weight_name}.bias", np.zeros(n_out), dtype)], scope)

    def reshape(x: str, scope: str, tail: list[int]) -> str:
        if legacy_shapes:  # Shape -> Gather -> Unsqueeze -> Concat, as torch.onnx's legacy exporter writes
            n = b.node("Gather", [b.node("Shape", [x], scope), b.const(f"{scope}/zero", 0)], scope, axis=0)
            n = b.node("Unsqueeze", [n, b.const(f"{scope}/axes", [0])], scope)
            target = b.node("Concat", [n, b.const(f"{scope}/tail", tail)], scope, axis=0)
        else:
            target = b.const(f"{scope}/shape", [0, *tail])
        return b.node("Reshape", [x, target], scope)

    for layer in range(layers):
        p, name = f"/encoder/layer.{layer}", f"encoder.layer.{layer}"
        a = f"{p}/attention"
        q = reshape(linear(x, f"{a}/self/query", hidden, hidden, f"{name}.attention.self.query"), f"{a}/self/q", [seq, heads, hd])
        k = reshape(linear(x, f"{a}/self/key", hidden, hidden, f"{name}.attention.self.key"), f"{a}/self/k", [seq, heads, hd])
        v = reshape(linear(x, f"{a}/self/value", hidden, hidden, f"{name}.attention.self.value"), f"{a}/self/v", [seq, heads, hd])
        q = b.node("Transpose", [q], f"{a}/self", perm=[0, 2, 1, 3])
        k = b.node("Transpose", [k], f"{a}/self", perm=[0, 2, 3, 1])
        v = b.node("Transpose", [v], f"{a}/self", perm=[0, 2, 1, 3])
        s = b.node("MatMul", [q, k], f"{a}/self")
        s = b.node("Div", [s, b.const(f"{name}.scale", math.sqrt(hd), dtype)], f"{a}/self")
        if attention_mask:
            bias = shared if dynamo else b.node("Where", [m, *mask_values], f"{a}/self")
            s = b.node("Add", [s, bias], f"{a}/self")
        s = b.node("Softmax", [s], f"{a}/self", axis=-1)
        c = b.node("Transpose", [b.node("MatMul", [s, v], f"{a}/self")], f"{a}/self", perm=[0, 2, 1, 3])
        c = reshape(c, f"{a}/self/ctx", [seq, hidden])
        c = linear(c, f"{a}/output/dense", hidden, hidden, f"{name}.attention.output.dense")
        x = b.node("LayerNormalization", [b.node("Add", [c, x], f"{a}/output"),
                                          b.const(f"{name}.attention.output.LayerNorm.weight", np.ones(hidden), dtype),
                                          b.const(f"{name}.attention.output.LayerNorm.bias", np.zeros(hidden), dtype)],
                   f"{a}/output/LayerNorm", axis=-1)
        h = linear(x, f"{p}/intermediate/dense", hidden, ffn, f"{name}.intermediate.dense")
        g = b.node("Erf", [b.node("Div", [h, b.const(f"{name}.sqrt2", math.sqrt(2), dtype)], f"{p}/intermediate")],
                   f"{p}/intermediate")
        g = b.node("Mul", [b.node("Mul", [h, b.node("Add", [g, b.const(f"{name}.one", 1.0, dtype)], f"{p}/intermediate")],
                                  f"{p}/intermediate"), b.const(f"{name}.half", 0.5, dtype)], f"{p}/intermediate")
        o = linear(g, f"{p}/output/dense", ffn, hidden, f"{name}.output.dense")
        x = b.node("LayerNormalization", [b.node("Add", [o, x], f"{p}/output"),
                                          b.const(f"{name}.output.LayerNorm.weight", np.ones(hidden), dtype),
                                          b.const(f"{name}.output.LayerNorm.bias", np.zeros(hidden), dtype)],
                   f"{p}/output/LayerNorm", axis=-1)
    if tied_head:  # the legacy exporter's transposed copy of the tied word embedding
        head = next(t for t in b.inits if t.name == emb)
        dup = b.tensor("onnx::MatMul_lm_head", np.ascontiguousarray(numpy_helper.to_array(head).T))
        x = b.node("MatMul", [x, dup], "/lm_head")
    out_type = TensorProto.FLOAT16 if float16 else TensorProto.FLOAT
    return b.model("encoder", inputs, x, out_type)


def resnet_onnx(
    blocks: tuple[int, ...] = (3, 4, 6, 3),
    width: int = 64,
    image: int = 224,
    classes: int = 1000,
    *,
    seed: int = 0,
) -> onnx.ModelProto:
    """A bottleneck ResNet (ResNet-50 at the defaults): images ``[N, 3, image, image]`` -> logits.

    Examples
    --------
    >>> m = resnet_onnx(blocks=(1, 1), width=4, image=16, classes=3)
    >>> len([n for n in m.graph.node if n.op_type == "Conv"])
    9
    """
    b = _Builder(seed)
    x_info = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, image, image])

    def conv(x: str, scope: str, c_in: int, c_out: int, k: int, stride: int = 1, relu: bool = True) -> str:
        w = b.weight(f"{scope[1:].replace('/', '.')}.weight", (c_out, c_in, k, k), c_in * k * k)
        bias = b.const(f"{scope[1:].replace('/', '.')}.bias", np.zeros(c_out), np.float32)
        y = b.node("Conv", [x, w, bias], scope, kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
        return b.node("Relu", [y], scope) if relu else y

    x = conv("images", "/conv1", 3, width, 7, 2)
    x = b.node("MaxPool", [x], "/maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c_in = width
    for stage, count in enumerate(blocks):
        mid = width * 2 ** stage
        for i in range(count):
            scope = f"/layer{stage + 1}/layer{stage + 1}.{i}"
            stride = 2 if i == 0 and stage > 0 else 1
            y = conv(x, f"{scope}/conv1", c_in, mid, 1)
            y = conv(y, f"{scope}/conv2", mid, mid, 3, stride)
            y = conv(y, f"{scope}/conv3", mid, 4 * mid, 1, relu=False)
            short = conv(x, f"{scope}/downsample", c_in, 4 * mid, 1, stride, relu=False) if i == 0 else x
            x = b.node("Relu", [b.node("Add", [y, short], scope)], scope)
            c_in = 4 * mid
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x], "/avgpool")], "/flatten")
    w = b.weight("fc.weight", (classes, c_in), c_in)
    x = b.node("Gemm", [x, w, b.const("fc.bias", np.zeros(classes), np.float32)], "/fc", transB=1)
    return b.model("resnet", [x_info], x)


def mlp_onnx(layers: int = 8, width: int = 256, *, seed: int = 0) -> onnx.ModelProto:
    """``layers`` dense layers with ReLU: ``[N, width] -> [N, width]`` (the issue's pipeline probe).

    Examples
    --------
    >>> len(mlp_onnx(layers=2, width=8).graph.node)
    6
    """
    b = _Builder(seed)
    x = "x"
    for i in range(layers):
        y = b.node("MatMul", [x, b.weight(f"fc{i}.weight", (width, width), width)], f"/fc{i}")
        y = b.node("Add", [y, b.const(f"fc{i}.bias", np.zeros(width), np.float32)], f"/fc{i}")
        x = b.node("Relu", [y], f"/fc{i}")
    return b.model("mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])], x)
