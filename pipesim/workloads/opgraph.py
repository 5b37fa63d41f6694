"""A hardware-independent operator graph: what each operator computes and moves.

Generators and the ONNX importer describe a model once, as operators with

* ``kernels``: the device kernels the operator launches, each with its FLOPs
  and the bytes it reads and writes in device memory (a kernel may repeat:
  an LSTM's recurrent step runs once per time step);
* ``params``: trainable parameters (elements) the operator owns;
* ``tied``: weights the operator reads that another operator owns (a tied
  embedding read again by a language-model head), as ``(name, elements)``:
  they are held in memory wherever the operator runs (every stage that reads a
  tied weight keeps a copy) but counted once in :attr:`OpGraph.params`;
* ``output_bytes``: the bytes of the tensor(s) its consumers read — what a
  transfer between devices moves;
* ``stash_bytes``: activation bytes kept for the backward pass when training
  (the operator's input, which is its producer's output);
* ``layer``: the model layer it belongs to;
* ``scope``: the module path it comes from (``("encoder", "layer.0", ...)``),
  when its source says so (an exporter's node name or metadata).

:attr:`OpGraph.attached` records operators that must share a device with
another one (an imported model's input branches: masks, position ids, rotary
tables, computed from graph inputs only; :mod:`pipesim.workloads.onnx_import`);
lowering gives them the colour class of the operator they are attached to.

:meth:`OpGraph.by_layer` fuses the operators of each layer into one (kernels
concatenated, parameters summed, output = the tensors that leave the layer),
which is how layer-granularity graphs are made from operator-granularity ones.
Hardware turns kernels into times in :mod:`pipesim.workloads.lower`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipesim.errors import InputError, ModelSpecError
from pipesim.placement.options import require_positive_ints as _positive_ints

__all__ = ["Kernel", "ModelSpecError", "Op", "OpGraph", "require_positive_ints"]




def require_positive_ints(config: object, names: Iterable[str]) -> None:
    """Raise :class:`ModelSpecError` naming the first of ``names`` that is not a positive integer
    (:func:`pipesim.placement.options.require_positive_ints`, the one check, as a model-spec error)."""
    try:
        _positive_ints(config, tuple(names))
    except InputError as exc:
        raise ModelSpecError(f"{exc.field}: {exc.problem}") from None


@dataclass(frozen=True)
class Kernel:
    """One device kernel, run ``repeat`` times; ``op_class`` picks fitted efficiencies (``matmul``, ``conv``…)."""

    flops: float
    bytes: float
    repeat: int = 1
    op_class: str | None = None


@dataclass(frozen=True)
class Op:
    name: str
    kernels: tuple[Kernel, ...]
    params: int = 0
    output_bytes: float = 0.0
    stash_bytes: float = 0.0
    layer: int | None = None
    tied: tuple[tuple[str, int], ...] = ()
    scope: tuple[str, ...] = ()

    @property
    def resident_params(self) -> int:
        """Parameters held in memory where the operator runs: its own and the tied ones it reads."""
        return self.params + sum(n for _, n in self.tied)

    @property
    def flops(self) -> float:
        return sum(k.flops * k.repeat for k in self.kernels)

    @property
    def bytes(self) -> float:
        return sum(k.bytes * k.repeat for k in self.kernels)


@dataclass
class OpGraph:
    """Operators in topological order of insertion, and data edges between them."""

    name: str
    dtype: str
    ops: list[Op] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)
    layer_names: dict[int, str] = field(default_factory=dict)
    #: Tied weight name -> index of the operator that owns (counts) it.
    tied_owner: dict[str, int] = field(default_factory=dict)
    #: what the generator knows that the operators do not say (e.g. a transformer's ``heads``, ``hidden``)
    attrs: dict[str, object] = field(default_factory=dict)
    #: Operator -> the operator whose device it must share (docs/model.md §2's colour classes).
    attached: dict[int, int] = field(default_factory=dict)

    def add(self, op: Op, inputs: Iterable[int] = ()) -> int:
        """Append ``op`` fed by the operators ``inputs``; its index."""
        index = len(self.ops)
        self.ops.append(op)
        seen: set[int] = set()  # edges into the new operator can only come from this call: no scan of self.edges
        for source in inputs:
            if not 0 <= source < index:
                raise ModelSpecError(f"operator {op.name!r}: input {source} is not an earlier operator")
            if source not in seen:
                seen.add(source)
                self.edges.append((source, index))
        return index

    @property
    def flops(self) -> float:
        return sum(op.flops for op in self.ops)

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)

    def at(self, granularity: str) -> "OpGraph":
        """This graph at ``"operator"`` granularity, or fused :meth:`by_layer` at ``"layer"``."""
        if granularity == "layer":
            return self.by_layer()
        if granularity != "operator":
            raise ModelSpecError(f"granularity: must be 'layer' or 'operator', got {granularity!r}")
        return self

    def by_layer(self) -> "OpGraph":
        """One operator per layer (operators without a layer stay alone)."""
        groups: dict[object, list[int]] = {}
        for i, op in enumerate(self.ops):
            groups.setdefault(("layer", op.layer) if op.layer is not None else ("op", i), []).append(i)
        group_of = {i: g for g, members in groups.items() for i in members}
        leaving = {s for s, d in self.edges if group_of[s] != group_of[d]}
        order = list(groups)  # first-appearance order is topological for layered models
        index = {g: n for n, g in enumerate(order)}
        fused = OpGraph(self.name, self.dtype, layer_names=dict(self.layer_names), attrs=dict(self.attrs))
        fused.tied_owner = {w: index[group_of[i]] for w, i in self.tied_owner.items()}
        fused.attached = {index[group_of[a]]: index[group_of[b]] for a, b in self.attached.items()
                          if group_of[a] != group_of[b]}
        feeding: dict[object, set[int]] = {}  # group -> the groups feeding it, in one pass over the edges (linear)
        for s, d in self.edges:
            if group_of[s] != group_of[d]:
                feeding.setdefault(group_of[d], set()).add(index[group_of[s]])
        for g in order:
            members = [self.ops[i] for i in groups[g]]
            # a tied weight whose owner is fused into the same group is held once
            tied = {w: n for op in members for w, n in op.tied if fused.tied_owner.get(w) != index[g]}
            inputs = sorted(feeding.get(g, ()))
            if any(i >= index[g] for i in inputs):
                raise ModelSpecError(f"layer {g[1]!r} of {self.name!r} is fed by a later layer: cannot fuse by layer")
            fused.add(
                Op(
                    name=members[0].name if g[0] == "op" else self.layer_names.get(g[1], f"layer{g[1]}"),
                    kernels=tuple(k for op in members for k in op.kernels),
                    params=sum(op.params for op in members),
                    output_bytes=sum(self.ops[i].output_bytes for i in groups[g] if i in leaving),
                    stash_bytes=sum(op.stash_bytes for op in members),
                    layer=members[0].layer,
                    tied=tuple(sorted(tied.items())),
                ),
                inputs,
            )
        return fused
