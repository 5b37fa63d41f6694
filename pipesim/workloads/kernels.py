"""FLOPs and bytes of the common operators: the one place these counts live.

Both the model generators and the ONNX importer cost operators with these
functions.  Conventions (one multiply-add = 2 FLOPs; ``e`` = bytes per
element; bytes = every input read once + every output written once):

* matmul ``[batch, m, k] x [k, n]``: ``2·batch·m·k·n`` FLOPs (+ ``batch·m·n``
  for a bias); a weight operand shared across the batch is read once;
* convolution: ``2·N·C_out·H_out·W_out·(C_in/groups)·k_h·k_w`` (+ one per
  output for a bias);
* pooling: one FLOP per window element per output; global pooling one per
  input element;
* elementwise operators: :data:`PER_ELEMENT` FLOPs per output element
  (1 for arithmetic and activations; softmax 5: max, subtract, exp, sum,
  divide; layer normalisation 8: mean, subtract, square, mean, rsqrt,
  multiply, scale, shift; batch normalisation 2: the folded scale and shift;
  GELU 8: the tanh approximation);
* data movement (transpose, concat, gather, …): 0 FLOPs, bytes only;
  views (reshape, flatten, squeeze…): nothing at all.
"""

from __future__ import annotations

from pipesim.workloads.opgraph import Kernel

__all__ = ["PER_ELEMENT", "conv", "elementwise", "matmul", "movement", "pool"]

PER_ELEMENT = {"elementwise": 1, "softmax": 5, "layernorm": 8, "batchnorm": 2, "gelu": 8}


def matmul(m: float, k: float, n: float, e: float, *, batch: float = 1, bias: bool = False, shared_b: bool = True) -> Kernel:
    """``[batch, m, k] @ [k, n]``; ``shared_b``: the right operand is one matrix (weights)."""
    flops = 2 * batch * m * k * n + (batch * m * n if bias else 0)
    b_elems = k * n if shared_b else batch * k * n
    return Kernel(flops, e * (batch * m * k + b_elems + batch * m * n + (n if bias else 0)))


def conv(
    n: int, c_in: int, c_out: int, h_in: int, w_in: int, h_out: int, w_out: int, kh: int, kw: int, e: float,
    *, groups: int = 1, bias: bool = False,
) -> Kernel:
    outputs = n * c_out * h_out * w_out
    weights = c_out * (c_in // groups) * kh * kw
    flops = 2 * outputs * (c_in // groups) * kh * kw + (outputs if bias else 0)
    return Kernel(flops, e * (n * c_in * h_in * w_in + weights + outputs + (c_out if bias else 0)))


def pool(inputs: float, outputs: float, window: float, e: float) -> Kernel:
    """A pooling of ``window`` elements per output (global pooling: ``window = inputs / outputs``)."""
    return Kernel(outputs * window, e * (inputs + outputs))


def elementwise(elements: float, e: float, *, kind: str = "elementwise", inputs: int = 1, params: float = 0) -> Kernel:
    """``PER_ELEMENT[kind]`` FLOPs per output element; reads ``inputs`` tensors and ``params`` weights."""
    return Kernel(PER_ELEMENT[kind] * elements, e * (elements * (inputs + 1) + params))


def movement(read: float, written: float, e: float) -> Kernel:
    """A pure data movement of ``read`` elements in, ``written`` out."""
    return Kernel(0.0, e * (read + written))
