"""Published large language models by name, as :class:`~pipesim.workloads.transformer.TransformerConfig`.

Problem: ``pipesim estimate llama3.1-70b …`` and scenarios name a model
instead of spelling its shape.  Each preset is the architecture of the
published configuration it cites (docs/model.md §11.1); parameter counts are
exact (:meth:`TransformerConfig.params`; tests/pipesim/test_llm.py checks them
against the published totals).  ``batch`` is 1: the microbatch size is a
training decision (``ParallelConfig.mbs``), not part of the model.

Sources:

* Llama 3.1 8B / 70B / 405B: Meta, "The Llama 3 Herd of Models" (arXiv:2407.21783),
  Table 3, and the ``config.json`` of the Hugging Face checkpoints
  (meta-llama/Llama-3.1-*): RMSNorm, RoPE, SwiGLU, no biases, untied
  embeddings, vocabulary 128,256; 8,030,261,248 / 70,553,706,496 /
  405,853,388,800 parameters.
* Nemotron-4 15B: Parmar et al. (arXiv:2402.16819) Table 1 — 32 layers, hidden
  6144, 48 heads, 8 KV heads, squared-ReLU MLP of 4h (not gated), RoPE, no
  biases, untied, vocabulary 256,000, sequence 4096; "3.2B embedding and 12.5B
  non-embedding parameters".
* Nemotron-4 340B: NVIDIA (arXiv:2406.11704) Table 1 — 96 layers, hidden 18432,
  96 heads, 8 KV heads, MLP 73728; "9.4B embedding, 331.6B non-embedding".
* GPT-3 175B: Brown et al. 2020 (arXiv:2005.14165) Table 2.1 — 96 layers,
  d_model 12288, 96 heads, context 2048, GPT-2's vocabulary of 50,257, learned
  positions, biases, tied embeddings ("175.0B"; the exact count is 174.6B).
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from pipesim.errors import HardwareError, InputError, PipesimError
from pipesim.workloads.transformer import TransformerConfig

__all__ = ["LLMS", "PARAMS", "load_llm", "preset"]

#: the parameters a ``model:`` section may give an LLM (those of :class:`TransformerConfig` but the batch)
PARAMS = tuple(f.name for f in fields(TransformerConfig) if f.name not in ("batch", "dtype"))


def _llama(layers: int, hidden: int, ffn: int, heads: int) -> TransformerConfig:
    return TransformerConfig(layers=layers, hidden=hidden, ffn_hidden=ffn, heads=heads, kv_heads=8, vocab=128256,
                             seq=8192, max_positions=131072, batch=1, decoder=True, dtype="bf16", gated=True,
                             tied_embeddings=False, position="rope", norm="rmsnorm", bias=False)


def _nemotron(layers: int, hidden: int, heads: int) -> TransformerConfig:
    return TransformerConfig(layers=layers, hidden=hidden, ffn_hidden=4 * hidden, heads=heads, kv_heads=8, vocab=256000,
                             seq=4096, max_positions=4096, batch=1, decoder=True, dtype="bf16", gated=False,
                             tied_embeddings=False, position="rope", norm="layernorm", bias=False,
                             activation="squared-relu")


#: name -> architecture (see the module docstring for each source)
LLMS: dict[str, TransformerConfig] = {
    "llama3.1-8b": _llama(32, 4096, 14336, 32),
    "llama3.1-70b": _llama(80, 8192, 28672, 64),
    "llama3.1-405b": _llama(126, 16384, 53248, 128),
    "nemotron4-15b": _nemotron(32, 6144, 48),
    "nemotron4-340b": _nemotron(96, 18432, 96),
    "gpt3-175b": TransformerConfig(layers=96, hidden=12288, heads=96, vocab=50257, seq=2048, max_positions=2048,
                                   batch=1, decoder=True, dtype="bf16"),
}


def preset(name: str, **overrides) -> TransformerConfig:
    """The preset ``name`` (case-insensitive), with ``overrides`` (e.g. ``seq=4096``).

    >>> preset("llama3.1-70b").params()
    70553706496
    """
    from pipesim.workloads.transformer import SIZES

    key = name.lower()
    if key not in LLMS and key not in SIZES:
        raise InputError(None, "model", f"unknown model preset {name!r} (known: {', '.join([*LLMS, *SIZES])})")
    config = LLMS[key] if key in LLMS else replace(SIZES[key], batch=1)
    if overrides.get("seq", 0) > config.max_positions and config.position == "learned":
        overrides["max_positions"] = overrides["seq"]
    return replace(config, **overrides) if overrides else config


def _from_params(params: Any, source: str | None, where: str) -> TransformerConfig:
    if not isinstance(params, dict):
        raise InputError(source, where, "must be a mapping of parameter names to values")
    params = dict(params)
    base_name = params.pop("preset", None) or params.pop("size", None)
    for ignored in ("batch", "dtype", "granularity"):   # the graph generator's: the microbatch is --mbs here
        params.pop(ignored, None)
    from pipesim.placement.options import Int
    from pipesim.workloads.models import PARAMETERS

    typed = PARAMETERS["transformer"]      # the graph generator's typed fields: one check of each value
    for key, value in list(params.items()):
        if key not in PARAMS:
            raise InputError(source, f"{where}.{key}", f"not a transformer parameter (known: {', '.join(PARAMS)})")
        if value is not None:
            try:
                params[key] = typed.get(key, Int()).convert(value, f"{where}.{key}")   # max_positions: a whole number
            except InputError as exc:
                raise InputError(source, exc.field, exc.problem) from None
    try:
        if base_name is not None:
            return preset(str(base_name), **params)
        if "decoder" not in params:
            params["decoder"] = True
        if params.get("position", "learned") == "learned":
            params.setdefault("max_positions", params.get("seq", 512))
        return TransformerConfig(batch=1, dtype="bf16", **params)
    except InputError as exc:
        raise InputError(source, exc.field if exc.source is None else where, exc.problem) from None
    except PipesimError as exc:   # ModelSpecError: "field: problem"
        text = str(exc)
        name, _, problem = text.partition(": ")
        raise InputError(source, f"{where}.{name}" if problem else where, problem or text) from None


def load_llm(spec: str | Path | dict | TransformerConfig) -> TransformerConfig:
    """A transformer from a preset name, a ``model:`` mapping, a YAML file holding one, or a config.

    The YAML form is a scenario's ``model:`` section: ``generator: transformer``
    and ``params: {layers, hidden, ffn_hidden, heads, kv_heads, vocab, seq,
    gated, decoder, …}`` (or ``params: {preset: llama3.1-70b, seq: 4096}``).
    Unknown fields and wrong types raise :class:`InputError` naming the file and field.

    >>> load_llm({"generator": "transformer", "params": {"layers": 2, "hidden": 64, "heads": 4, "seq": 16,
    ...                                                   "vocab": 100}}).params()
    107520
    >>> load_llm("gpt3-175b").layers
    96
    """
    if isinstance(spec, TransformerConfig):
        return spec
    source = None
    data: Any = spec
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if not text.endswith((".yaml", ".yml", ".json")):
            return preset(text)
        import yaml

        source = text
        from pipesim.hardware.catalog import safe_load_text, yaml_problem

        try:
            data = safe_load_text(Path(text).read_text(), source)
        except FileNotFoundError:
            raise InputError(source, None, "no such file") from None
        except yaml.YAMLError as exc:
            raise InputError(source, None, yaml_problem(exc)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(source, None, f"cannot be read as YAML ({exc})") from None
        except HardwareError as exc:  # hostile nesting, refused before parsing
            raise InputError(source, None, exc.problem) from None
        if isinstance(data, dict) and "model" in data:
            data = data["model"]
            where = "model"
        else:
            where = "model"
            raise InputError(source, where, "the file needs a model: section (generator: transformer, params: ...)")
    if not isinstance(data, dict):
        raise InputError(source, "model", "must be a mapping (generator: transformer, params: ...) or a preset name")
    generator = data.get("generator", "transformer")
    if generator != "transformer":
        raise InputError(source, "model.generator", f"must be transformer for an LLM estimate, got {generator!r}")
    unknown = set(data) - {"generator", "params", "preset"}
    if unknown:
        raise InputError(source, f"model.{sorted(unknown)[0]}", "not a field of model (generator, params, preset)")
    params = dict(data.get("params") or {})
    if "preset" in data:
        params.setdefault("preset", data["preset"])
    return _from_params(params, source, "model.params")
