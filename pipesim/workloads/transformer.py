"""Transformer encoders (BERT) and decoders (GPT) as operator graphs.

Each layer (post-LN, Vaswani et al. 2017; Devlin et al. 2019) is ten
operators on ``T = batch·seq`` tokens of width ``h`` with ``heads`` heads and
a feed-forward width ``4h``::

    qkv (T·h·3h) → scores (per head s·(h/heads)·s) → softmax → context (s·s·(h/heads))
      → out-proj (T·h·h) → add+layernorm → ffn1 (T·h·4h) → gelu → ffn2 (T·4h·h) → add+layernorm

so a layer's forward FLOPs are ``24·T·h² + 4·batch·seq²·h`` plus lower-order
elementwise terms, and its parameters ``12h² + 13h``.  A decoder's causal mask
does not change the count (the masked half is computed, then discarded, as
dense kernels do).  Layer 0 is the embedding (token, position and segment
tables, then add+layernorm); the last layer is the head: BERT's pooler (a
``h×h`` dense layer on the first token) for encoders, the vocabulary
projection for decoders (its weight is a copy of the token table, as
pipeline-parallel systems replicate tied weights).

Granularity ``layer`` fuses each layer into one node (docs/model.md §3 keeps
layers whole); ``operator`` keeps the ten operators.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipesim.hardware.devices import dtype_bytes
from pipesim.workloads.kernels import elementwise, matmul
from pipesim.workloads.opgraph import ModelSpecError, Op, OpGraph, require_positive_ints

__all__ = ["SIZES", "TransformerConfig", "transformer"]


@dataclass(frozen=True)
class TransformerConfig:
    layers: int = 24
    hidden: int = 1024
    heads: int = 16
    seq: int = 512
    batch: int = 8
    vocab: int = 30522
    max_positions: int = 512
    decoder: bool = False
    dtype: str = "fp16"

    def __post_init__(self) -> None:
        require_positive_ints(self, ("layers", "hidden", "heads", "seq", "batch", "vocab", "max_positions"))
        if self.hidden % self.heads:
            raise ModelSpecError(f"hidden: {self.hidden} is not divisible by heads ({self.heads})")
        if self.seq > self.max_positions:
            raise ModelSpecError(f"seq: {self.seq} exceeds max_positions ({self.max_positions})")
        dtype_bytes(self.dtype)


#: Published model sizes (BERT: Devlin et al. 2019, table 1; GPT-2: Radford et al. 2019, table 2).
SIZES = {
    "bert-base": TransformerConfig(layers=12, hidden=768, heads=12),
    "bert-large": TransformerConfig(layers=24, hidden=1024, heads=16),
    "gpt2": TransformerConfig(layers=12, hidden=768, heads=12, seq=1024, vocab=50257, max_positions=1024, decoder=True),
    "gpt2-medium": TransformerConfig(
        layers=24, hidden=1024, heads=16, seq=1024, vocab=50257, max_positions=1024, decoder=True
    ),
    "gpt2-large": TransformerConfig(
        layers=36, hidden=1280, heads=20, seq=1024, vocab=50257, max_positions=1024, decoder=True
    ),
    "gpt2-xl": TransformerConfig(layers=48, hidden=1600, heads=25, seq=1024, vocab=50257, max_positions=1024, decoder=True),
}


def _op(name: str, kernels, layer: int, out_elems: float, e: int, params: int = 0) -> Op:
    kernels = kernels if isinstance(kernels, tuple) else (kernels,)
    return Op(name, kernels, params=params, output_bytes=out_elems * e, stash_bytes=out_elems * e, layer=layer)


def _add_layernorm(t: int, h: int, e: int) -> tuple:
    """Residual add (1 FLOP per element) then layer normalisation with its 2h weights."""
    return (elementwise(t * h, e, inputs=2), elementwise(t * h, e, kind="layernorm", params=2 * h))


def _layer(g: OpGraph, c: TransformerConfig, x: int, layer: int, e: int) -> int:
    """Append one encoder/decoder layer fed by operator ``x``; returns its output operator."""
    t, h, s, a = c.batch * c.seq, c.hidden, c.seq, c.heads
    d, ba, p = h // a, c.batch * a, f"layer{layer}"
    qkv = g.add(_op(f"{p}.qkv", matmul(t, h, 3 * h, e, bias=True), layer, 3 * t * h, e, 3 * h * h + 3 * h), [x])
    scores = g.add(_op(f"{p}.scores", matmul(s, d, s, e, batch=ba, shared_b=False), layer, ba * s * s, e), [qkv])
    probs = g.add(_op(f"{p}.softmax", elementwise(ba * s * s, e, kind="softmax"), layer, ba * s * s, e), [scores])
    ctx = g.add(_op(f"{p}.context", matmul(s, s, d, e, batch=ba, shared_b=False), layer, t * h, e), [probs, qkv])
    proj = g.add(_op(f"{p}.out_proj", matmul(t, h, h, e, bias=True), layer, t * h, e, h * h + h), [ctx])
    ln1 = g.add(_op(f"{p}.add_ln1", _add_layernorm(t, h, e), layer, t * h, e, 2 * h), [proj, x])
    ffn1 = g.add(_op(f"{p}.ffn1", matmul(t, h, 4 * h, e, bias=True), layer, 4 * t * h, e, 4 * h * h + 4 * h), [ln1])
    gelu = g.add(_op(f"{p}.gelu", elementwise(4 * t * h, e, kind="gelu"), layer, 4 * t * h, e), [ffn1])
    ffn2 = g.add(_op(f"{p}.ffn2", matmul(t, 4 * h, h, e, bias=True), layer, t * h, e, 4 * h * h + h), [gelu])
    ln2 = g.add(_op(f"{p}.add_ln2", _add_layernorm(t, h, e), layer, t * h, e, 2 * h), [ffn2, ln1])
    g.layer_names[layer] = p
    return ln2


def transformer(config: TransformerConfig = TransformerConfig(), *, granularity: str = "layer") -> OpGraph:
    """The operator graph of ``config`` at ``granularity`` ``"layer"`` or ``"operator"``."""
    c, e = config, dtype_bytes(config.dtype)
    t, h = c.batch * c.seq, c.hidden
    name = f"{'gpt' if c.decoder else 'bert'}{c.layers}"
    g = OpGraph(name, c.dtype, attrs={"kind": "transformer", "heads": c.heads, "hidden": h, "seq": c.seq,
                                      "batch": c.batch, "layers": c.layers, "decoder": c.decoder})
    table = c.vocab * h + c.max_positions * h + (0 if c.decoder else 2 * h)
    # three lookups summed (2 FLOPs per element), then layer normalisation
    embed_kernels = (
        elementwise(t * h, e, inputs=2, params=0),
        elementwise(t * h, e, kind="layernorm", params=2 * h),
    )
    x = g.add(Op("embedding", embed_kernels, params=table + 2 * h, output_bytes=t * h * e, stash_bytes=0.0, layer=0))
    g.layer_names[0] = "embedding"
    for layer in range(1, c.layers + 1):
        x = _layer(g, c, x, layer, e)
    head_layer = c.layers + 1
    if c.decoder:
        head = _op("lm_head", matmul(t, h, c.vocab, e), head_layer, t * c.vocab, e, c.vocab * h)
    else:
        pooler = matmul(c.batch, h, h, e, bias=True)
        head = Op(
            "pooler",
            (pooler, elementwise(c.batch * h, e)),
            params=h * h + h,
            output_bytes=c.batch * h * e,
            stash_bytes=c.batch * h * e,
            layer=head_layer,
        )
    g.add(head, [x])
    g.layer_names[head_layer] = head.name
    return g.at(granularity)
