"""The model generators by name, with the parameters each takes: one entry point for every caller.

``pipesim graph generate``, a scenario's ``model: {generator: ..., params: ...}``
and the Python API build models through :func:`build_model`, and check
parameters against :data:`PARAMETERS` (typed :mod:`~pipesim.placement.options`
fields), so the three accept the same names and values.

Examples
--------
>>> ops = build_model("transformer", layers=2, hidden=64, heads=4, seq=16, batch=1)
>>> ops.name, len(ops.ops) > 0
('bert2', True)
>>> build_model("transformer", hidden=100, heads=3)
Traceback (most recent call last):
...
pipesim.errors.ModelSpecError: hidden: 100 is not divisible by heads (3)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipesim.errors import ModelSpecError
from pipesim.placement.options import Bool, Choice, Field, Int, Text
from pipesim.workloads.gnmt import GNMTConfig, gnmt
from pipesim.workloads.inception import inception_v3
from pipesim.workloads.opgraph import OpGraph
from pipesim.workloads.resnet import resnet50
from pipesim.workloads.transformer import ACTIVATIONS, NORMS, POSITIONS, SIZES, TransformerConfig, transformer

__all__ = ["MODELS", "PARAMETERS", "build_model"]

MODELS = ("transformer", "resnet50", "inceptionv3", "gnmt")

_GRANULARITY = Choice(("layer", "operator"), help="one node per layer (default) or per operator")
_DTYPE = Text(help="data type: fp32, fp16, bf16, … (default fp16)")
_BATCH = Int(help="samples per batch")
_SEQUENCE = {
    "layers": Int(help="number of layers"),
    "hidden": Int(help="hidden width"),
    "seq": Int(help="sequence length"),
    "vocab": Int(help="vocabulary size"),
}
_CNN = {"batch": _BATCH, "image": Int(help="image side in pixels"), "dtype": _DTYPE, "granularity": _GRANULARITY}

#: generator -> parameter name -> field
PARAMETERS: dict[str, dict[str, Field]] = {
    "transformer": {
        "size": Choice(tuple(sorted(SIZES)), help="a published size (other parameters override it)"),
        **_SEQUENCE,
        "heads": Int(help="attention heads"),
        "ffn_hidden": Int(help="MLP inner width (default 4 x hidden)"),
        "kv_heads": Int(help="key/value heads, grouped-query attention (default: heads)"),
        "gated": Bool(help="SwiGLU MLP: two input matrices"),
        "tied_embeddings": Bool(help="the LM head reuses the token table (default true)"),
        "position": Choice(POSITIONS, help="learned position table or RoPE (no parameters)"),
        "norm": Choice(NORMS, help="normalisation (default layernorm)"),
        "bias": Bool(help="biases on the linear layers (default true)"),
        "activation": Choice(ACTIVATIONS, help="an ungated MLP's activation (default gelu)"),
        "decoder": Bool(help="GPT-style decoder (LM head)"),
        "batch": _BATCH,
        "dtype": _DTYPE,
        "granularity": _GRANULARITY,
    },
    "gnmt": {**_SEQUENCE, "batch": _BATCH, "dtype": _DTYPE, "granularity": _GRANULARITY},
    "resnet50": _CNN,
    "inceptionv3": _CNN,
}


def build_model(name: str, **params: Any) -> OpGraph:
    """The operator graph of generator ``name`` with ``params`` (see :data:`PARAMETERS`).

    Parameters
    ----------
    name : str
        One of :data:`MODELS`.
    **params
        The generator's parameters; values may be text (``"12"``), as from a
        command line.

    Returns
    -------
    OpGraph
        FLOPs, bytes and parameters per operator, independent of hardware.

    Raises
    ------
    ModelSpecError
        An unknown generator or parameter, or values that describe no model.
    """
    if name not in PARAMETERS:
        raise ModelSpecError(f"generator: unknown generator {name!r} (known: {', '.join(MODELS)})")
    fields = PARAMETERS[name]
    given: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key not in fields:
            raise ModelSpecError(f"{key}: not a parameter of {name} (its parameters: {', '.join(fields)})")
        try:
            given[key] = fields[key].convert(value, key)
        except Exception as exc:  # an InputError: report it as a model-spec problem, field first
            raise ModelSpecError(str(exc)) from None
    granularity = given.pop("granularity", "layer")
    dtype = given.pop("dtype", "fp16")
    if name == "transformer":
        base = SIZES[given.pop("size")] if "size" in given else TransformerConfig()
        if given.get("seq", base.seq) > base.max_positions:  # a longer sequence gets its position table
            given["max_positions"] = given.get("seq", base.seq)
        config = replace(base, dtype=dtype, **given) if given or dtype != base.dtype else base
        return transformer(config, granularity=granularity)
    if name == "gnmt":
        return gnmt(GNMTConfig(**given, dtype=dtype), granularity=granularity)
    build = resnet50 if name == "resnet50" else inception_v3
    return build(given.pop("batch", 1), dtype=dtype, granularity=granularity, **given)
