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

Modern decoders (docs/model.md §11.1) are the same layer with four knobs:
``ffn_hidden`` (the MLP width, default ``4h``), ``kv_heads`` (grouped-query
attention, Ainslie et al. 2023: keys and values have ``kv_heads`` heads of
width ``h/heads``; default ``heads``), ``gated`` (SwiGLU, Shazeer 2020: the
MLP's first projection is two ``h×ffn_hidden`` matrices) and
``tied_embeddings`` (the LM head reuses the token table; untied, it is its own
``vocab×h`` matrix), plus ``position`` (``learned`` table or ``rope``, which has
no parameters), ``norm`` (``layernorm``: weight and bias; ``rmsnorm``: weight
only), ``bias`` (biases on the linear layers) and ``activation`` (an ungated
MLP's ``gelu`` or ``squared-relu``; it changes no count).  :meth:`TransformerConfig.params`
and :meth:`TransformerConfig.layer_flops` are the exact counts, the one
definition the graph below and the Megatron cost model
(:mod:`pipesim.placement.plan.megatron`) both use.

Granularity ``layer`` fuses each layer into one node (docs/model.md §3 keeps
layers whole); ``operator`` keeps the ten operators.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipesim.hardware.devices import dtype_bytes
from pipesim.workloads.kernels import elementwise, matmul
from pipesim.workloads.opgraph import ModelSpecError, Op, OpGraph, require_positive_ints

__all__ = ["ACTIVATIONS", "NORMS", "POSITIONS", "SIZES", "TransformerConfig", "transformer"]

NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rope")
#: the MLP's activation when it is not gated (gated MLPs are SwiGLU): GeLU, or squared ReLU (So et al. 2021,
#: "Primer"; Nemotron-4, Parmar et al. 2024)
ACTIVATIONS = ("gelu", "squared-relu")


@dataclass(frozen=True)
class TransformerConfig:
    """A transformer's shape.  ``None`` widths take their classic values (``4h``, ``heads``).

    Examples
    --------
    Llama 3.1 8B (Meta, "The Llama 3 Herd of Models", 2024, Table 3), whose
    Hugging Face checkpoint holds 8,030,261,248 parameters:

    >>> c = TransformerConfig(layers=32, hidden=4096, ffn_hidden=14336, heads=32, kv_heads=8, vocab=128256,
    ...                       seq=8192, max_positions=8192, decoder=True, gated=True, tied_embeddings=False,
    ...                       position="rope", norm="rmsnorm", bias=False)
    >>> c.params()
    8030261248
    """

    layers: int = 24
    hidden: int = 1024
    heads: int = 16
    seq: int = 512
    batch: int = 8
    vocab: int = 30522
    max_positions: int = 512
    decoder: bool = False
    dtype: str = "fp16"
    ffn_hidden: int | None = None
    kv_heads: int | None = None
    gated: bool = False
    tied_embeddings: bool = True
    position: str = "learned"
    norm: str = "layernorm"
    bias: bool = True
    activation: str = "gelu"

    def __post_init__(self) -> None:
        require_positive_ints(self, ("layers", "hidden", "heads", "seq", "batch", "vocab", "max_positions"))
        if self.ffn_hidden is not None:
            require_positive_ints(self, ("ffn_hidden",))
        if self.kv_heads is not None:
            require_positive_ints(self, ("kv_heads",))
            if self.heads % self.kv_heads:
                raise ModelSpecError(f"kv_heads: heads ({self.heads}) is not a multiple of kv_heads ({self.kv_heads})")
        if self.hidden % self.heads:
            raise ModelSpecError(f"hidden: {self.hidden} is not divisible by heads ({self.heads})")
        for name, allowed in (("position", POSITIONS), ("norm", NORMS), ("activation", ACTIVATIONS)):
            if getattr(self, name) not in allowed:
                raise ModelSpecError(f"{name}: must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.gated and self.activation != "gelu":
            raise ModelSpecError("activation: a gated MLP is SwiGLU; the activation is for ungated MLPs")
        if self.position == "learned" and self.seq > self.max_positions:
            raise ModelSpecError(f"seq: {self.seq} exceeds max_positions ({self.max_positions})")
        if not self.decoder and not self.tied_embeddings:
            raise ModelSpecError("tied_embeddings: an encoder has no LM head to untie")
        dtype_bytes(self.dtype)

    # --- widths -----------------------------------------------------------------------------
    @property
    def ffn(self) -> int:
        """The MLP's inner width (``ffn_hidden``, default ``4·hidden``)."""
        return self.ffn_hidden if self.ffn_hidden is not None else 4 * self.hidden

    @property
    def groups(self) -> int:
        """Key/value heads (``kv_heads``, default ``heads``: multi-head attention)."""
        return self.kv_heads if self.kv_heads is not None else self.heads

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def qkv_width(self) -> int:
        """Output width of the fused QKV projection: ``h + 2·kv_heads·head_dim``."""
        return self.hidden + 2 * self.groups * self.head_dim

    @property
    def norm_params(self) -> int:
        return (2 if self.norm == "layernorm" else 1) * self.hidden

    # --- exact counts (docs/model.md §11.1) -------------------------------------------------
    def layer_gemm_params(self) -> int:
        """Weights of one layer's four linear maps (QKV, output projection, MLP in and out), biases excluded."""
        h, f = self.hidden, self.ffn
        return h * self.qkv_width + h * h + (2 if self.gated else 1) * h * f + f * h

    def layer_params(self) -> int:
        """Parameters of one transformer layer: the linear maps, their biases and two norms."""
        h, f = self.hidden, self.ffn
        biases = (self.qkv_width + h + (2 if self.gated else 1) * f + h) if self.bias else 0
        return self.layer_gemm_params() + biases + 2 * self.norm_params

    def embedding_params(self) -> int:
        """The input side: token table, learned positions, BERT's segment table."""
        h = self.hidden
        return self.vocab * h + (self.max_positions * h if self.position == "learned" else 0) + (0 if self.decoder else 2 * h)

    def head_params(self) -> int:
        """The output side: one more norm (GPT's final / BERT's embedding norm), then an untied LM head or BERT's pooler."""
        h = self.hidden
        out = 0 if self.tied_embeddings else self.vocab * h
        return self.norm_params + (out if self.decoder else h * h + h)

    def params(self) -> int:
        """All distinct parameters (a tied head counted once, as published counts do)."""
        return self.embedding_params() + self.layers * self.layer_params() + self.head_params()

    def layer_flops(self, tokens: int, seq: int | None = None, *, causal: bool = False) -> float:
        """Forward matrix-multiply FLOPs of one layer on ``tokens`` tokens in sequences of ``seq``.

        ``2·tokens·layer_gemm_params`` for the linear maps plus ``4·tokens·seq·h``
        for scores and context; ``causal`` halves the attention part (a causal
        kernel such as FlashAttention skips the masked half).
        """
        seq = self.seq if seq is None else seq
        attention = 4 * tokens * seq * self.hidden * (0.5 if causal else 1.0)
        return 2 * tokens * self.layer_gemm_params() + attention

    def logits_flops(self, tokens: int) -> float:
        """Forward FLOPs of the vocabulary projection (decoders)."""
        return 2 * tokens * self.hidden * self.vocab

    def model_flops(self, tokens: int) -> float:
        """Forward + backward FLOPs of one pass over ``tokens`` (3× forward; Narayanan et al. 2021, Eq. 3 without recomputation)."""
        return 3 * (self.layers * self.layer_flops(tokens) + (self.logits_flops(tokens) if self.decoder else 0))


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


def _add_layernorm(t: int, h: int, e: int, params: int | None = None) -> tuple:
    """Residual add (1 FLOP per element) then layer normalisation with its ``params`` weights (default 2h)."""
    params = 2 * h if params is None else params
    return (elementwise(t * h, e, inputs=2), elementwise(t * h, e, kind="layernorm", params=params))


def _layer(g: OpGraph, c: TransformerConfig, x: int, layer: int, e: int) -> int:
    """Append one encoder/decoder layer fed by operator ``x``; returns its output operator."""
    t, h, s, a = c.batch * c.seq, c.hidden, c.seq, c.heads
    d, ba, p = h // a, c.batch * a, f"layer{layer}"
    q3, f, up, b, n = c.qkv_width, c.ffn, (2 if c.gated else 1) * c.ffn, c.bias, c.norm_params
    qkv = g.add(_op(f"{p}.qkv", matmul(t, h, q3, e, bias=b), layer, q3 * t, e, h * q3 + (q3 if b else 0)), [x])
    scores = g.add(_op(f"{p}.scores", matmul(s, d, s, e, batch=ba, shared_b=False), layer, ba * s * s, e), [qkv])
    probs = g.add(_op(f"{p}.softmax", elementwise(ba * s * s, e, kind="softmax"), layer, ba * s * s, e), [scores])
    ctx = g.add(_op(f"{p}.context", matmul(s, s, d, e, batch=ba, shared_b=False), layer, t * h, e), [probs, qkv])
    proj = g.add(_op(f"{p}.out_proj", matmul(t, h, h, e, bias=b), layer, t * h, e, h * h + (h if b else 0)), [ctx])
    ln1 = g.add(_op(f"{p}.add_ln1", _add_layernorm(t, h, e, n), layer, t * h, e, n), [proj, x])
    ffn1 = g.add(_op(f"{p}.ffn1", matmul(t, h, up, e, bias=b), layer, up * t, e, h * up + (up if b else 0)), [ln1])
    gelu = g.add(_op(f"{p}.gelu", elementwise(f * t, e, kind="gelu", inputs=2 if c.gated else 1), layer, f * t, e),
                 [ffn1])
    ffn2 = g.add(_op(f"{p}.ffn2", matmul(t, f, h, e, bias=b), layer, t * h, e, f * h + (h if b else 0)), [gelu])
    ln2 = g.add(_op(f"{p}.add_ln2", _add_layernorm(t, h, e, n), layer, t * h, e, n), [ffn2, ln1])
    g.layer_names[layer] = p
    return ln2


def transformer(config: TransformerConfig = TransformerConfig(), *, granularity: str = "layer") -> OpGraph:
    """The operator graph of ``config`` at ``granularity`` ``"layer"`` or ``"operator"``."""
    c, e = config, dtype_bytes(config.dtype)
    t, h = c.batch * c.seq, c.hidden
    name = f"{'gpt' if c.decoder else 'bert'}{c.layers}"
    g = OpGraph(name, c.dtype, attrs={"kind": "transformer", "heads": c.heads, "hidden": h, "seq": c.seq,
                                      "batch": c.batch, "layers": c.layers, "decoder": c.decoder})
    table = c.embedding_params()
    # three lookups summed (2 FLOPs per element), then layer normalisation (for a
    # pre-norm decoder this stands for its final norm: the same count, 2L + 1 norms)
    embed_kernels = (
        elementwise(t * h, e, inputs=2, params=0),
        elementwise(t * h, e, kind="layernorm", params=c.norm_params),
    )
    x = g.add(Op("embedding", embed_kernels, params=table + c.norm_params, output_bytes=t * h * e, stash_bytes=0.0,
                 layer=0))
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
