"""Real models exported by PyTorch's two ONNX exporters, for ``python -m benchmarks.fidelity --exports``.

Problem: the fidelity benchmark's generated models (:mod:`pipesim.workloads.onnx_models`) have the
structure the exporters write, but not everything a real export holds (issue 22).  This module builds
the issue's five models with random weights from configurations defined here (no hub download:
``transformers``' configs and model classes only) and writes each with ``torch.onnx.export``, the
TorchScript exporter (``dynamo=False``) and the dynamo one (``dynamo=True``, needs ``onnxscript``).

Guarantee: :func:`export` writes ``<cache>/<model>-<exporter>.onnx`` (the dynamo exporter may put the
weights beside it as external data) once; an existing file is reused.  Weights are seeded, so two
exports of one model hold the same numbers.

Needs the optional ``benchmarks`` extra (``pip install -e '.[benchmarks]'``): PyTorch, transformers and
onnxscript.  Nothing under ``pipesim/`` or ``tests/`` imports this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from pipesim.errors import InputError, MissingExtraError

EXPORTERS = ("torchscript", "dynamo")


@dataclass(frozen=True)
class ExportSpec:
    """One model to export: its ``transformers`` configuration, the inputs it is traced with."""

    name: str
    description: str
    kind: str  # "text" (input_ids, attention_mask) or "image" (pixel_values)
    batch: int
    seq: int = 0
    image: int = 224


#: The issue's models: GPT-2 small and BERT-base at seq 128, ResNet-50 at batch 8, a Llama-style decoder
#: (hidden 1024, 8 layers, seq 256), and a 24-layer BERT (BERT-base's width, 24 layers).
MODELS = {
    "gpt2": ExportSpec("gpt2", "GPT-2 small (seq 128)", "text", 1, seq=128),
    "bert": ExportSpec("bert", "BERT-base (seq 128)", "text", 1, seq=128),
    "resnet50": ExportSpec("resnet50", "ResNet-50 (batch 8, image 224)", "image", 8),
    "llama": ExportSpec("llama", "Llama-style (1024 x 8 layers, seq 256)", "text", 1, seq=256),
    "bert24": ExportSpec("bert24", "BERT, 24 layers (768 wide, seq 128)", "text", 1, seq=128),
}


def _missing(module: str) -> MissingExtraError:
    """The error naming the ``benchmarks`` extra when ``module`` is not installed."""
    return MissingExtraError(f"{module} is not installed: pip install -e '.[benchmarks]' "
                             "(PyTorch, transformers, onnxscript: see pyproject.toml)")


def unknown_name(option: str, name: str, known) -> InputError:
    """The error for ``name``, not one of the ``known`` models or exporters (``option``: the field)."""
    return InputError(None, option, f"unknown {option[:-1]} {name!r} (known: {', '.join(known)})")


def _require():
    """torch and transformers, or a MissingExtraError naming the ``benchmarks`` extra."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise _missing(exc.name) from None
    return torch, transformers


def check_installed(exporters) -> None:
    """Raise :class:`MissingExtraError` naming the ``benchmarks`` extra unless what ``exporters`` need is installed.

    Looks the packages up without importing them: the process that measures never holds PyTorch
    (:func:`export_in_subprocess`).
    """
    for module in ["torch", "transformers"] + (["onnxscript"] if "dynamo" in exporters else []):
        if importlib.util.find_spec(module) is None:
            raise _missing(module)


def export_in_subprocess(name: str, exporter: str, cache: str | Path) -> Path:
    """:func:`export` in a process of its own (``python -m benchmarks.exports``); the ``.onnx`` path.

    An export leaves gigabytes in PyTorch's allocator (4.6 GiB after the ten exports, seen): the
    process that then profiles and executes is spared them.
    """
    path = export_path(name, exporter, cache)
    if path.is_file():
        return path
    done = subprocess.run([sys.executable, "-m", "benchmarks.exports", name, exporter, str(cache)],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        raise RuntimeError(f"exporting {name} with {exporter}: {lines[-1]}")
    return path


def export_path(name: str, exporter: str, cache: str | Path, *, seq: int | None = None, **config) -> Path:
    """Where :func:`export` writes model ``name`` (each change of ``seq`` or ``config`` is part of the name)."""
    if exporter not in EXPORTERS:
        raise unknown_name("exporters", exporter, EXPORTERS)
    if name not in MODELS:
        raise unknown_name("models", name, MODELS)
    variant = "".join(f"-{k}{v}" for k, v in sorted(config.items())) + (f"-seq{seq}" if seq else "")
    return Path(cache) / f"{name}{variant}-{exporter}.onnx"


def _module(name: str, config: dict):
    """The model of ``name`` with seeded random weights, in eval mode, returning one tensor.

    ``config`` overrides fields of its configuration (a smaller model for the tests).
    """
    torch, tf = _require()
    torch.manual_seed(0)
    # "eager": the attention every exporter version traces the same way (the SDPA path's masks differ by version)
    common = {"attn_implementation": "eager", **config}
    if name == "gpt2":
        inner = tf.GPT2LMHeadModel(tf.GPT2Config(**common))
    elif name == "bert":
        inner = tf.BertModel(tf.BertConfig(**common), add_pooling_layer=False)
    elif name == "bert24":
        inner = tf.BertModel(tf.BertConfig(**{"num_hidden_layers": 24, **common}), add_pooling_layer=False)
    elif name == "llama":
        llama = {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8, "num_attention_heads": 16,
                 "num_key_value_heads": 4, "max_position_embeddings": 2048, "vocab_size": 32000}
        inner = tf.LlamaForCausalLM(tf.LlamaConfig(**{**llama, **common}))
    elif name == "resnet50":
        inner = tf.ResNetForImageClassification(tf.ResNetConfig(**config))  # the defaults are ResNet-50's
    else:
        raise unknown_name("models", name, MODELS)

    class Wrapped(torch.nn.Module):
        """The first output only (logits or hidden states), no cache: one tensor out, as a deployment runs it."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *args):
            if MODELS[name].kind == "image":
                out = self.model(pixel_values=args[0], return_dict=False)
            elif name in ("gpt2", "llama"):
                out = self.model(input_ids=args[0], attention_mask=args[1], use_cache=False, return_dict=False)
            else:
                out = self.model(input_ids=args[0], attention_mask=args[1], return_dict=False)
            return out[0]

    return Wrapped(inner.eval()).eval()


def _inputs(spec: ExportSpec, vocab: int = 1000):
    torch, _ = _require()
    g = torch.Generator().manual_seed(1)
    if spec.kind == "image":
        return (torch.randn(spec.batch, 3, spec.image, spec.image, generator=g),), ["pixel_values"]
    ids = torch.randint(0, vocab, (spec.batch, spec.seq), generator=g)
    mask = torch.ones(spec.batch, spec.seq, dtype=torch.int64)
    return (ids, mask), ["input_ids", "attention_mask"]


def export(name: str, exporter: str, cache: str | Path, *, seq: int | None = None, **config) -> Path:
    """Export model ``name`` with ``exporter`` into ``cache`` (reused when there); the ``.onnx`` path.

    ``seq`` and ``config`` (fields of the model's ``transformers`` configuration) change the model: the
    tests export small ones; each change is part of the file's name.

    Raises
    ------
    MissingExtraError
        PyTorch, transformers or (for dynamo) onnxscript is not installed.
    InputError
        An unknown model or exporter.
    """
    path = export_path(name, exporter, cache, seq=seq, **config)
    spec = MODELS[name] if seq is None else replace(MODELS[name], seq=seq)
    if path.is_file():
        return path
    torch, _ = _require()
    if exporter == "dynamo":
        try:
            import onnxscript  # noqa: F401  (torch.onnx.export(dynamo=True) needs it)
        except ImportError:
            raise MissingExtraError("onnxscript is not installed: pip install -e '.[benchmarks]'") from None
    module = _module(name, config)
    args, input_names = _inputs(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written in a folder of its own, then moved: an interrupted export is never taken for a cached one, and
    # the weights beside the file (dynamo's external data) keep the name the model records for them
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".partial-") as partial:
        written = Path(partial) / path.name
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporters' deprecation and tracer warnings
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes
            logging.getLogger("onnxscript").setLevel(logging.ERROR)  # its constant folder's notes
            if exporter == "torchscript":
                torch.onnx.export(module, args, str(written), dynamo=False, opset_version=17,
                                  input_names=input_names, output_names=["output"], do_constant_folding=True)
            else:
                torch.onnx.export(module, args, str(written), dynamo=True, input_names=input_names,
                                  output_names=["output"], external_data=True)
        for f in sorted(Path(partial).iterdir(), key=lambda f: f == written):  # the model file last
            f.rename(path.parent / f.name)
    return path


def file_bytes(path: str | Path) -> int:
    """Size of an ONNX file and of the external data files it names (the weights stored beside it).

    The file is read without its embedded weights (:func:`~pipesim.workloads.onnx_import.load_onnx`,
    ``weights=False``, records them as external data in the file itself, not counted twice).
    """
    from pipesim.workloads.onnx_import import load_onnx

    path = Path(path)
    model = load_onnx(path, check=False, weights=False)
    names = {entry.value for t in model.graph.initializer for entry in t.external_data if entry.key == "location"}
    names.discard(path.name)
    return path.stat().st_size + sum((path.parent / n).stat().st_size for n in names if (path.parent / n).is_file())


if __name__ == "__main__":  # python -m benchmarks.exports MODEL EXPORTER CACHE_DIR: export one, print its path
    try:
        print(export(*sys.argv[1:4]))
    except (MissingExtraError, InputError, TypeError) as exc:
        print(f"benchmarks.exports: {exc} (usage: python -m benchmarks.exports MODEL EXPORTER CACHE_DIR)",
              file=sys.stderr)
        sys.exit(2)
