"""A GNMT-style LSTM encoder-decoder with attention (Wu et al., 2016, §3).

Encoder: embedding, a bidirectional first LSTM layer (two independent
directions), then ``layers - 1`` unidirectional layers, residual connections
from the third layer on.  Decoder: embedding, a first LSTM layer whose output
queries a normalised Bahdanau attention over the encoder's last layer, then
``layers - 1`` layers whose input is the previous layer's output concatenated
with the attention context (so the attention feeds every one of them), and
the vocabulary classifier with its softmax.

An LSTM layer over ``s`` steps with input width ``i`` and ``h`` units is two
operators: the input projection for all steps at once (``2·b·s·i·4h`` FLOPs)
and the recurrence, ``s`` sequential kernels of ``2·b·h·4h`` FLOPs plus
``9·b·h`` for the gate activations and the cell and hidden updates.  Its
parameters are ``4h·(i + h) + 8h`` (two bias vectors, as cuDNN keeps).
The attention is the key and query projections (``h×h`` each), the scores
``v·tanh(q + k)`` (4 FLOPs per (query, key, unit)) with a softmax, and the
context (``2·b·s_t·s_s·h``); parameters ``2h² + 2h``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipesim.hardware.devices import dtype_bytes
from pipesim.workloads.kernels import elementwise, matmul
from pipesim.workloads.opgraph import (
    Kernel,
    ModelSpecError,
    Op,
    OpGraph,
    require_positive_ints,
)

__all__ = ["GNMTConfig", "gnmt"]


@dataclass(frozen=True)
class GNMTConfig:
    layers: int = 8
    hidden: int = 1024
    vocab: int = 32000
    seq: int = 50
    batch: int = 64
    dtype: str = "fp16"

    def __post_init__(self) -> None:
        require_positive_ints(self, ("layers", "hidden", "vocab", "seq", "batch"))
        if self.layers < 2:
            raise ModelSpecError(f"layers: GNMT needs at least 2 layers, got {self.layers}")
        dtype_bytes(self.dtype)


class _Builder:
    def __init__(self, c: GNMTConfig):
        self.c, self.e = c, dtype_bytes(c.dtype)
        self.g = OpGraph(f"gnmt{c.layers}", c.dtype)
        self.layer = -1
        self.tokens = c.batch * c.seq

    def op(self, name: str, kernels: tuple, inputs: list[int], out_elems: float, params: int = 0, stash=None) -> int:
        out = out_elems * self.e
        stash = out if stash is None else stash * self.e
        return self.g.add(Op(name, kernels, params, out, stash, self.layer), inputs)

    def new_layer(self, name: str) -> None:
        self.layer += 1
        self.g.layer_names[self.layer] = name

    def embedding(self, name: str) -> int:
        self.new_layer(name)
        t, h = self.tokens, self.c.hidden
        lookup = Kernel(0.0, 2 * t * h * self.e)  # gather: read the rows, write the output
        return self.op(name, (lookup,), [], t * h, self.c.vocab * h, stash=0)

    def lstm(self, name: str, inputs: list[int], width_in: int, residual: int | None = None) -> int:
        """One LSTM layer (input projection + recurrence) in a layer of its own, plus ``residual``."""
        self.new_layer(name)
        b, s, h, e, t = self.c.batch, self.c.seq, self.c.hidden, self.e, self.tokens
        proj = self.op(f"{name}.input_proj", (matmul(t, width_in, 4 * h, e, bias=True),), inputs, 4 * t * h,
                       4 * h * width_in + 4 * h)
        step = matmul(b, h, 4 * h, e, bias=True)
        step = Kernel(step.flops + 9 * b * h, step.bytes + 7 * b * h * e, repeat=s)
        kernels = (step,) if residual is None else (step, elementwise(t * h, e, inputs=2))
        # the recurrence stashes its gates, cell and hidden states for every step
        return self.op(f"{name}.recurrence", kernels, [proj] if residual is None else [proj, residual], t * h,
                       4 * h * h + 4 * h, stash=6 * t * h)

    def attention(self, query: int, keys: int) -> int:
        self.new_layer("attention")
        b, s, h, e, t = self.c.batch, self.c.seq, self.c.hidden, self.e, self.tokens
        k = self.op("attention.key_proj", (matmul(t, h, h, e),), [keys], t * h, h * h)
        q = self.op("attention.query_proj", (matmul(t, h, h, e),), [query], t * h, h * h)
        scores = Kernel(4 * b * s * s * h, e * (2 * t * h + h + b * s * s))
        weights = self.op("attention.scores", (scores, elementwise(b * s * s, e, kind="softmax")), [k, q], b * s * s,
                          2 * h)
        return self.op("attention.context", (matmul(s, s, h, e, batch=b, shared_b=False),), [weights, keys], t * h)


def gnmt(config: GNMTConfig = GNMTConfig(), *, granularity: str = "layer") -> OpGraph:
    c, bld = config, _Builder(config)
    h = c.hidden
    x = bld.embedding("encoder.embedding")
    forward = bld.lstm("encoder.lstm1_forward", [x], h)
    backward = bld.lstm("encoder.lstm1_backward", [x], h)
    x = bld.lstm("encoder.lstm2", [forward, backward], 2 * h)
    for i in range(3, c.layers + 1):
        x = bld.lstm(f"encoder.lstm{i}", [x], h, residual=x)
    encoded = x
    y = bld.embedding("decoder.embedding")
    first = bld.lstm("decoder.lstm1", [y], h)
    context = bld.attention(first, encoded)
    y = first
    for i in range(2, c.layers + 1):
        y = bld.lstm(f"decoder.lstm{i}", [y, context], 2 * h, residual=y if i >= 3 else None)
    bld.new_layer("classifier")
    t, e = bld.tokens, bld.e
    bld.op("classifier", (matmul(t, h, c.vocab, e, bias=True), elementwise(t * c.vocab, e, kind="softmax")), [y],
           t * c.vocab, h * c.vocab + c.vocab)
    return bld.g.at(granularity)
