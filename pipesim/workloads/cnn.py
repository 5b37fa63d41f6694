"""A small builder for convolutional networks as operator graphs.

Tensors are tracked as ``(operator, channels, height, width)`` for one batch
of ``batch`` images; each builder call appends operators costed by
:mod:`pipesim.workloads.kernels` and returns the new tensor.  Every call
starts a new *layer* (a conv+BN+ReLU unit, a pooling, a residual add, a
concatenation, the classifier), so :meth:`OpGraph.by_layer` gives the usual
layer graph with the branching of the model kept, and the raw graph is the
operator granularity (conv, BN and ReLU apart).
Output sizes follow ``⌊(size + 2·pad − kernel) / stride⌋ + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipesim.hardware.devices import dtype_bytes
from pipesim.workloads.kernels import conv, elementwise, matmul, movement, pool
from pipesim.workloads.opgraph import ModelSpecError, Op, OpGraph

__all__ = ["CNN", "Tensor"]


@dataclass(frozen=True)
class Tensor:
    op: int | None  # None: the network input
    c: int
    h: int
    w: int

    @property
    def size(self) -> int:
        return self.c * self.h * self.w


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return value if isinstance(value, tuple) else (value, value)


class CNN:
    """Appends layers of a CNN on ``batch`` images of ``dtype`` to an :class:`OpGraph`."""

    def __init__(self, name: str, batch: int, dtype: str):
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ModelSpecError(f"batch: must be a positive integer, got {batch!r}")
        self.graph = OpGraph(name, dtype)
        self.n, self.e = batch, dtype_bytes(dtype)
        self.layer = 0

    def _add(self, name: str, kernel, inputs: list[Tensor], out: Tensor, params: int = 0) -> Tensor:
        nbytes = self.n * out.size * self.e
        op = Op(name, (kernel,), params=params, output_bytes=nbytes, stash_bytes=nbytes, layer=self.layer)
        index = self.graph.add(op, [t.op for t in inputs if t.op is not None])
        return Tensor(index, out.c, out.h, out.w)

    def _new_layer(self, name: str) -> None:
        self.layer += 1
        self.graph.layer_names[self.layer] = name

    def conv_bn(self, x: Tensor, name: str, c_out: int, kernel, stride=1, pad=0, relu: bool = True) -> Tensor:
        """Convolution (no bias), batch normalisation, then ReLU unless ``relu`` is false."""
        self._new_layer(name)
        (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
        out = Tensor(None, c_out, (x.h + 2 * ph - kh) // sh + 1, (x.w + 2 * pw - kw) // sw + 1)
        n, e, elems = self.n, self.e, self.n * out.size
        y = self._add(
            f"{name}.conv", conv(n, x.c, c_out, x.h, x.w, out.h, out.w, kh, kw, e), [x], out, c_out * x.c * kh * kw
        )
        y = self._add(f"{name}.bn", elementwise(elems, e, kind="batchnorm", params=2 * c_out), [y], out, 2 * c_out)
        return self._add(f"{name}.relu", elementwise(elems, e), [y], out) if relu else y

    def pool(self, x: Tensor, name: str, kernel: int, stride: int, pad: int = 0) -> Tensor:
        self._new_layer(name)
        out = Tensor(None, x.c, (x.h + 2 * pad - kernel) // stride + 1, (x.w + 2 * pad - kernel) // stride + 1)
        return self._add(name, pool(self.n * x.size, self.n * out.size, kernel * kernel, self.e), [x], out)

    def global_pool(self, x: Tensor, name: str) -> Tensor:
        self._new_layer(name)
        out = Tensor(None, x.c, 1, 1)
        return self._add(name, pool(self.n * x.size, self.n * x.c, x.h * x.w, self.e), [x], out)

    def add_relu(self, a: Tensor, b: Tensor, name: str) -> Tensor:
        """Residual addition then ReLU (one layer, two operators)."""
        self._new_layer(name)
        elems = self.n * a.size
        y = self._add(f"{name}.add", elementwise(elems, self.e, inputs=2), [a, b], a)
        return self._add(f"{name}.relu", elementwise(elems, self.e), [y], a)

    def concat(self, parts: list[Tensor], name: str) -> Tensor:
        self._new_layer(name)
        out = Tensor(None, sum(p.c for p in parts), parts[0].h, parts[0].w)
        elems = self.n * out.size
        return self._add(name, movement(elems, elems, self.e), parts, out)

    def fc(self, x: Tensor, name: str, classes: int) -> Tensor:
        self._new_layer(name)
        out = Tensor(None, classes, 1, 1)
        return self._add(name, matmul(self.n, x.size, classes, self.e, bias=True), [x], out, x.size * classes + classes)
