"""Scenario files: one YAML file says which model, on which hardware, solved and simulated how.

Problem: a user's question ("where does each operator of BERT-24 go on six
A100s and a CPU core, and what throughput will I get?") needs a model, a
system, a solver and a simulation; a scenario file names all four, so that
``pipesim run`` and ``pipesim sweep`` answer it from one file::

    name: bert24-training                      # optional (default: the file's stem)
    model:                                     # exactly one of generator / workload / onnx
      generator: transformer                   # transformer | resnet50 | inceptionv3 | gnmt
      params: {layers: 24, hidden: 1024, heads: 16, seq: 512, batch: 8}
      training: true                           # optimizer: adam | momentum | sgd
      # workload: given.json                   # paper or native JSON with given times
      # onnx: model.onnx                       # with params: {batch: 1}
    hardware:                                  # exactly one of preset / file / devices
      preset: a100x8
      # file: box.yaml
      # devices: [{name: gpu, device: a100-80gb | {kind: ..., peak_flops: ...},
      #            count: 4, memory: 40GB, host_link: pcie4-x16 | {bandwidth: 32GB/s}}]
      whatif: {a100: {count: 6}}               # hardware.whatif edits (speed, link, memory, count…)
      prices: {a100: 2.5, cpu: 0.05}           # per device-hour: cost per sample
    solve: {method: dp, time_limit: 60s, options: {merge: exact}}
    simulate: {schedule: 1f1b, microbatches: 120, comm: paper}
    output: {dir: results, artefacts: [result, split, trace, gantt, plots]}
    sweep: {vary: {"hardware.whatif.a100.count": [2, 4, 8]}}

Guarantees: relative paths *in the file* resolve against the file's folder;
without ``output.dir`` results go to ``out/<name>`` under the current
directory.  Validation checks every section and reports **every** problem at
once, each with its field path (``hardware.devices[1].memory: must be a
positive size, got "-4GB"``), as one :class:`ScenarioError` (an
:class:`~pipesim.placement.formats.InputError`: exit code 2).  Quantities take human
units (``80GB``, ``900GB/s``, ``312TFLOPS``, ``2ms``).  ``--set PATH=VALUE``
overrides (:func:`set_path`) are applied before validation, so a sweep point
or a test's small setting is validated like the file itself.
"""

from __future__ import annotations

import argparse
import copy
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from pipesim.commands import solve as solve_command
from pipesim.commands.common import load_workload
from pipesim.commands.graph import MODELS, build_model
from pipesim.comparison import METHODS as BASELINE_METHODS
from pipesim.comparison import Options
from pipesim.hardware.catalog import Catalog, builtin_catalog, load_system
from pipesim.hardware.devices import DeviceGroup, System
from pipesim.hardware.units import BYTES, TIME, HardwareError, parse
from pipesim.hardware.whatif import apply_edits, parse_edits
from pipesim.placement.formats import InputError
from pipesim.placement.graph import GraphError
from pipesim.placement.workload import Workload
from pipesim.simulate import COMM_MODES, SCHEDULES
from pipesim.simulate.schedules import TRAINING_SCHEDULES
from pipesim.workloads.lower import lower
from pipesim.workloads.onnx_import import import_onnx
from pipesim.workloads.opgraph import ModelSpecError, OpGraph
from pipesim.workloads.transformer import SIZES
from pipesim.workloads.whatif import scale_workload

__all__ = [
    "ARTEFACTS",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_assignment",
    "read_scenario_data",
    "scenario_from_data",
    "set_path",
]

#: What ``pipesim run`` can write into the output folder.
ARTEFACTS = ("result", "split", "trace", "gantt", "plots", "report")
#: Methods of ``pipesim solve`` (argparse options) and the baselines of ``pipesim compare``.
SOLVE_METHODS = tuple(solve_command.METHODS) + tuple(m for m in BASELINE_METHODS if m not in solve_command.METHODS)

_SECTIONS = ("name", "description", "model", "hardware", "solve", "simulate", "output", "sweep")
_MODEL_KEYS = ("generator", "workload", "onnx", "params", "training", "optimizer")
_PARAMS = {
    "transformer": ("size", "layers", "hidden", "heads", "seq", "vocab", "decoder", "batch", "dtype", "granularity"),
    "gnmt": ("layers", "hidden", "seq", "vocab", "batch", "dtype", "granularity"),
    "resnet50": ("batch", "image", "dtype", "granularity"),
    "inceptionv3": ("batch", "image", "dtype", "granularity"),
    "onnx": ("batch",),
}
_HARDWARE_KEYS = ("preset", "file", "devices", "whatif", "prices")
_DEVICE_KEYS = ("name", "device", "count", "memory", "host_link", "peer_link")
_SOLVE_KEYS = ("method", "time_limit", "options")
_SIMULATE_KEYS = ("enabled", "schedule", "microbatches", "minibatch", "in_flight", "comm")
_OUTPUT_KEYS = ("dir", "artefacts")
_BASELINE_OPTIONS = ("expert", "restarts", "seed", "ignore_sources")


class ScenarioError(InputError):
    """Every problem of a scenario, each as ``(field path, problem)``."""

    def __init__(self, source: str | Path | None, problems: Sequence[tuple[str, str]]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(source, *self.problems[0])
        else:
            lines = "".join(f"\n  {path}: {problem}" for path, problem in self.problems)
            super().__init__(source, None, f"{len(self.problems)} problems:{lines}")


# ------------------------------------------------------------ paths and overrides
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _path_tokens(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        gap = path[pos : m.start()]
        if gap not in ("", "."):
            break
        tokens.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not tokens or pos != len(path) or path.startswith(".") or path.endswith("."):
        raise InputError(None, "--set", f"cannot read the field path {path!r} (e.g. hardware.devices[0].count)")
    return tokens


def set_path(data: dict, path: str, value: Any) -> None:
    """Set ``data[path] = value`` for a dotted path with list indices (``a.b[1].c``); missing mappings are created."""
    tokens = _path_tokens(path)
    node: Any = data
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        where = path if last else "".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in tokens[: i + 1]).lstrip(".")
        if isinstance(token, int):
            if not isinstance(node, list) or token >= len(node):
                raise InputError(None, "--set", f"{where}: no such list entry")
        elif not isinstance(node, dict):
            raise InputError(None, "--set", f"{where}: the field above it is not a mapping")
        if last:
            node[token] = value
        else:
            if isinstance(token, str) and node.get(token) is None:
                node[token] = {}
            node = node[token]


def parse_value(text: str) -> Any:
    """A command-line value as YAML reads it: ``50`` → 50, ``true`` → True, ``16GB/s`` stays a string."""
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"simulate.microbatches=50"`` → ``("simulate.microbatches", 50)``."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise InputError(None, "--set", f"expected PATH=VALUE (e.g. simulate.microbatches=50), got {text!r}")
    _path_tokens(path.strip())
    return path.strip(), parse_value(value)


def read_scenario_data(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, not a scenario file") from None
    except yaml.YAMLError as exc:
        raise InputError(path, None, f"not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, None, "a scenario must be a YAML mapping with model, hardware, solve, simulate, output")
    return data


# ------------------------------------------------------------ the validated scenario
@dataclass
class Scenario:
    """A validated scenario: everything needed to build the workload, solve and simulate it."""

    name: str
    source: Path
    data: dict                                   # the raw mapping (after overrides), for sweeps and result.json
    description: str = ""
    ops: OpGraph | None = None                   # generated / imported models
    system: System | None = None
    given: Workload | None = None                # model.workload: times given
    training: bool = False
    optimizer: str = "adam"
    samples_per_pass: int = 1                    # the model's batch: samples in one pass of the graph
    method: str = "dp"
    solve_args: Any = None                       # argparse namespace (dp, ip) or comparison Options (baselines)
    simulate: dict[str, Any] = field(default_factory=dict)
    simulate_enabled: bool = True
    output_dir: Path = Path("out")
    artefacts: tuple[str, ...] = ARTEFACTS
    prices: dict[str, float] = field(default_factory=dict)
    vary: dict[str, list] = field(default_factory=dict)

    def workload(self) -> Workload:
        """The graph on the hardware (lowered from the model, or the given workload with what-if edits)."""
        if self.given is not None:
            return self.given
        workload = lower(self.ops, self.system, training=self.training, optimizer=self.optimizer)
        return Workload(workload.graph, workload.devices, Path(f"{self.name}.yaml"))


class _Problems:
    """Collects ``(path, problem)``; ``check`` runs a builder and records its error instead of raising."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, problem: str) -> None:
        self.items.append((path, problem))

    def check(self, path: str, build: Callable[[], Any], rename: Callable[[str], str] | None = None) -> Any:
        """``build()``, or ``None`` with its error recorded at ``rename(error's field)`` (default: under ``path``)."""
        try:
            return build()
        except ModelSpecError as exc:  # "hidden: 1001 is not divisible by heads (4)"
            name, sep, problem = str(exc).partition(": ")
            field, problem = (name, problem) if sep and name.isidentifier() else (None, str(exc))
        except (HardwareError, InputError, GraphError) as exc:
            field, problem = getattr(exc, "field", None), getattr(exc, "problem", str(exc))
        if not field:
            self.add(path, problem)
        elif rename is not None:
            self.add(rename(field), problem)
        else:  # hardware errors name their full field already; others are relative to ``path``
            self.add(field if field.startswith(path) else f"{path}.{field}", problem)
        return None


def _mapping(p: _Problems, data: Any, path: str, keys: Iterable[str]) -> dict:
    """``data`` as a mapping (empty if absent or wrong), with unknown keys reported."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        p.add(path, f"must be a mapping, got {data!r}")
        return {}
    keys = tuple(keys)
    for key in data:
        if key not in keys:
            p.add(f"{path}.{key}" if path else str(key), f"unknown field (known: {', '.join(keys)})")
    return data


def _int(p: _Problems, value: Any, path: str, minimum: int = 1) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        p.add(path, f"must be {kind} whole number, got {value!r}")
        return None
    return value


def _positive_size(p: _Problems, value: Any, path: str) -> float | None:
    try:
        size = parse(value, BYTES, path)
    except HardwareError:
        size = None
    if size is None or not size > 0:
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        p.add(path, f'must be a positive size, got {shown} (e.g. "80GB")')
        return None
    return size


def _one_of(p: _Problems, section: dict, keys: Sequence[str], path: str, required: bool = True) -> str | None:
    given = [k for k in keys if section.get(k) is not None]
    if len(given) > 1:
        p.add(path, f"give only one of {', '.join(given)}")
    elif not given and required:
        p.add(path, f"needs one of {', '.join(keys)}")
    return given[0] if len(given) == 1 else None


def _file(p: _Problems, value: Any, path: str, base: Path) -> Path | None:
    if not isinstance(value, str) or not value:
        p.add(path, f"must be a file path, got {value!r}")
        return None
    resolved = (base / value).expanduser()
    if not resolved.is_file():
        p.add(path, f"no such file: {resolved}")
        return None
    return resolved


# ------------------------------------------------------------ sections
def _model(p: _Problems, data: Any, base: Path, s: Scenario) -> None:
    model = _mapping(p, data, "model", _MODEL_KEYS)
    if data is None:
        p.add("model", "missing (give model.generator, model.workload or model.onnx)")
        return
    kind = _one_of(p, model, ("generator", "workload", "onnx"), "model")
    training = model.get("training", False)
    if not isinstance(training, bool):
        p.add("model.training", f"must be true or false, got {training!r}")
        training = False
    s.training = training
    optimizer = model.get("optimizer", "adam")
    if optimizer not in ("adam", "momentum", "sgd"):
        p.add("model.optimizer", f"must be adam, momentum or sgd, got {optimizer!r}")
    s.optimizer = optimizer
    if kind == "generator":  # an unknown generator is reported below, its parameters are not checked
        known = _PARAMS.get(model["generator"], tuple(model.get("params") or ()))
    else:
        known = _PARAMS["onnx"] if kind == "onnx" else ()
    params = _mapping(p, model.get("params"), "model.params", known)
    if kind == "workload":
        path = _file(p, model["workload"], "model.workload", base)
        if path is not None:
            s.given = p.check("model.workload", lambda: load_workload(str(path)))
            if s.given is not None and s.training != s.given.graph.is_training and "training" in model:
                p.add("model.training", f"the workload file is {'a training' if s.given.graph.is_training else 'an inference'} graph")
            if s.given is not None:
                s.training = s.given.graph.is_training
        return
    batch = params.get("batch", 1)
    if batch is not None and _int(p, batch, "model.params.batch") is None:
        return
    s.samples_per_pass = batch or 1
    if kind == "onnx":
        path = _file(p, model["onnx"], "model.onnx", base)
        if path is not None:
            s.ops = p.check("model.onnx", lambda: import_onnx(path, batch=batch))
        return
    if kind == "generator":
        name = model["generator"]
        if name not in MODELS:
            p.add("model.generator", f"unknown generator {name!r} (known: {', '.join(MODELS)})")
            return
        for key in ("layers", "hidden", "heads", "seq", "vocab", "image"):
            if key in params:
                _int(p, params[key], f"model.params.{key}")
        if params.get("granularity", "layer") not in ("layer", "operator"):
            p.add("model.params.granularity", f"must be layer or operator, got {params['granularity']!r}")
            return
        if any(k.startswith("model.params") for k, _ in p.items):
            return
        args = SimpleNamespace(model=name, **{k: None for k in _PARAMS["transformer"] + ("image",)})
        args.decoder, args.dtype, args.granularity = False, "fp16", "layer"
        for key, value in params.items():
            setattr(args, key, value)
        if args.size is not None and args.size not in SIZES:
            p.add("model.params.size", f"unknown size {args.size!r} (known: {', '.join(sorted(SIZES))})")
            return
        s.ops = p.check("model.params", lambda: build_model(args))


def _rooted(where: str, prefix: str) -> Callable[[str], str]:
    """Re-root a hardware error's field at ``where``: what follows ``prefix`` in it is kept."""
    return lambda f: where + f[f.rindex(prefix) + len(prefix):] if prefix in f else where


def _device_group(p: _Problems, raw: Any, path: str, catalog: Catalog) -> DeviceGroup | None:
    entry = _mapping(p, raw, path, _DEVICE_KEYS)
    if not isinstance(raw, dict):
        return None
    before = len(p.items)
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        p.add(f"{path}.name", f"must be a class name, got {name!r}")
    count = _int(p, entry.get("count"), f"{path}.count", minimum=0)
    device_ref = entry.get("device")
    device = None
    if device_ref is None:
        p.add(f"{path}.device", "missing (a device preset name, e.g. a100-80gb, or a mapping)")
    elif isinstance(device_ref, dict):
        local = Catalog()
        device = p.check(f"{path}.device", lambda: (local.add({"devices": {str(name): device_ref}}), local.devices[str(name)])[1],
                         rename=_rooted(f"{path}.device", f"devices.{name}"))
    else:
        device = p.check(f"{path}.device", lambda: catalog.device(device_ref, f"{path}.device"))
    memory = entry.get("memory")
    if memory is not None:
        memory = _positive_size(p, memory, f"{path}.memory")
    links = {}
    for key in ("host_link", "peer_link"):
        where = f"{path}.{key}"
        links[key] = p.check(where, lambda: catalog.link(entry.get(key), where), rename=_rooted(where, where))
    if len(p.items) > before or device is None:
        return None
    if memory is not None:
        device = replace(device, memory=memory)
    return p.check(path, lambda: DeviceGroup(name, device, count, links["host_link"], links["peer_link"]),
                   rename=lambda f: f"{path}.{f.rsplit('.', 1)[-1]}")


def _hardware(p: _Problems, data: Any, base: Path, s: Scenario) -> None:
    hw = _mapping(p, data, "hardware", _HARDWARE_KEYS)
    kind = _one_of(p, hw, ("preset", "file", "devices"), "hardware", required=s.given is None)
    if s.given is not None and kind is not None:
        p.add(f"hardware.{kind}", "model.workload has given times: change them with hardware.whatif (speed, link, memory, count)")
        kind = None
    system = None
    if kind == "preset":
        if not isinstance(hw["preset"], str):
            p.add("hardware.preset", f"must be a preset name, got {hw['preset']!r}")
        else:
            system = p.check("hardware.preset", lambda: builtin_catalog().system(hw["preset"]),
                             rename=lambda f: "hardware.preset")
    elif kind == "file":
        path = _file(p, hw["file"], "hardware.file", base)
        if path is not None:
            system = p.check("hardware.file", lambda: load_system(path), rename=lambda f: f"hardware.file ({f})")
    elif kind == "devices":
        raw = hw["devices"]
        if not isinstance(raw, list) or not raw:
            p.add("hardware.devices", "must be a non-empty list of device classes")
        else:
            catalog = builtin_catalog()
            groups = [_device_group(p, entry, f"hardware.devices[{i}]", catalog) for i, entry in enumerate(raw)]
            if all(g is not None for g in groups):
                system = p.check("hardware.devices", lambda: System(s.name, tuple(groups)),
                                 rename=lambda f: "hardware.devices")
    whatif = hw.get("whatif")
    if whatif is not None:
        if not isinstance(whatif, dict):
            p.add("hardware.whatif", f"must be a mapping CLASS: {{FIELD: VALUE}}, got {whatif!r}")
        else:
            rename = _rooted("hardware.whatif", "what-if")
            edits = p.check("hardware.whatif", lambda: parse_edits(whatif), rename=rename)
            if edits is not None and system is not None:
                system = p.check("hardware.whatif", lambda: apply_edits(system, edits), rename=lambda f: "hardware.whatif")
            elif edits is not None and s.given is not None:
                s.given = p.check("hardware.whatif", lambda: scale_workload(s.given, edits), rename=rename)
    s.system = system
    classes = set(system.class_names) if system else {dc.name for dc in s.given.devices} if s.given else set()
    prices = hw.get("prices")
    if prices is not None:
        if not isinstance(prices, dict):
            p.add("hardware.prices", f"must be a mapping CLASS: price per device-hour, got {prices!r}")
        else:
            for cls, price in prices.items():
                if classes and cls not in classes:
                    p.add(f"hardware.prices.{cls}", f"no device class {cls!r} (classes: {', '.join(sorted(classes))})")
                elif isinstance(price, bool) or not isinstance(price, (int, float)) or not price >= 0 or math.isinf(price):
                    p.add(f"hardware.prices.{cls}", f"must be a non-negative price per device-hour, got {price!r}")
                else:
                    s.prices[str(cls)] = float(price)


class _ArgError(Exception):
    pass


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise _ArgError(message)


def _solve_namespace(method: str, options: Mapping[str, Any], time_limit: float | None) -> argparse.Namespace:
    """``pipesim solve``'s own options for dp / ip, parsed by its parser (same choices and checks)."""
    parser = _RaisingParser(add_help=False)
    solve_command.register(parser.add_subparsers(parser_class=_RaisingParser))
    argv = ["solve", "-", "--method", method, "--no-progress"]
    for key, value in options.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    if time_limit is not None:
        argv += ["--time-limit", str(time_limit)]
    return parser.parse_args(argv)


def _solve(p: _Problems, data: Any, base: Path, s: Scenario) -> None:
    solve = _mapping(p, data, "solve", _SOLVE_KEYS)
    method = str(solve.get("method", "dp")).replace("-", "_")
    if method not in SOLVE_METHODS:
        p.add("solve.method", f"unknown method {solve.get('method')!r} (known: {', '.join(SOLVE_METHODS)})")
        return
    s.method = method
    time_limit = solve.get("time_limit")
    if time_limit is not None:
        time_limit = p.check("solve.time_limit", lambda: parse(time_limit, TIME, "solve.time_limit"),
                             rename=lambda f: "solve.time_limit")
    raw_options = solve.get("options")
    if method in solve_command.METHODS:
        options = _mapping(p, raw_options, "solve.options", raw_options if isinstance(raw_options, dict) else ())
        known = vars(_solve_namespace(method, {}, None))
        before = len(p.items)
        for key, value in options.items():
            if key not in known or key in ("workload", "method", "output", "json", "run", "devices", "progress"):
                p.add(f"solve.options.{key}", f"not an option of {method} (see pipesim solve --help)")
                continue
            try:
                _solve_namespace(method, {key: value}, None)
            except (_ArgError, InputError) as exc:
                p.add(f"solve.options.{key}", str(exc).removeprefix("argument "))
        if len(p.items) == before:
            try:
                s.solve_args = _solve_namespace(method, options, time_limit)
            except (_ArgError, InputError) as exc:
                p.add("solve", str(exc))
        return
    options = _mapping(p, raw_options, "solve.options", _BASELINE_OPTIONS)
    expert = options.get("expert")
    if expert is not None:
        expert = _file(p, expert, "solve.options.expert", base)
    restarts = _int(p, options.get("restarts", 10), "solve.options.restarts")
    seed = _int(p, options.get("seed", 0), "solve.options.seed", minimum=0)
    ignore = options.get("ignore_sources", [])
    if not isinstance(ignore, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in ignore):
        p.add("solve.options.ignore_sources", f"must be a list of node ids, got {ignore!r}")
        ignore = []
    if method == "expert" and expert is None:
        p.add("solve.options.expert", "the expert method needs a split file")
    s.solve_args = Options(expert=expert, restarts=restarts or 10, seed=seed or 0, time_limit=time_limit,
                           ignore_sources=tuple(ignore))


def _simulate(p: _Problems, data: Any, s: Scenario) -> None:
    sim = _mapping(p, data, "simulate", _SIMULATE_KEYS)
    enabled = sim.get("enabled", True)
    if not isinstance(enabled, bool):
        p.add("simulate.enabled", f"must be true or false, got {enabled!r}")
    s.simulate_enabled = enabled is not False
    schedule = sim.get("schedule")
    if schedule is not None:
        if schedule not in SCHEDULES:
            p.add("simulate.schedule", f"unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")
        elif schedule in TRAINING_SCHEDULES and not s.training:
            p.add("simulate.schedule", f"{schedule} needs a training model (model.training: true); use stream")
    comm = sim.get("comm", "paper")
    if comm not in COMM_MODES:
        p.add("simulate.comm", f"unknown communication mode {comm!r} (known: {', '.join(COMM_MODES)})")
    for key in ("microbatches", "minibatch", "in_flight"):
        if sim.get(key) is not None:
            _int(p, sim[key], f"simulate.{key}")
    s.simulate = {k: sim.get(k) for k in ("schedule", "microbatches", "minibatch", "in_flight")}
    s.simulate["comm"] = comm


def _output(p: _Problems, data: Any, base: Path, s: Scenario) -> None:
    out = _mapping(p, data, "output", _OUTPUT_KEYS)
    folder = out.get("dir")
    if folder is None:
        s.output_dir = Path("out") / s.name
    elif not isinstance(folder, str) or not folder:
        p.add("output.dir", f"must be a folder path, got {folder!r}")
    else:
        s.output_dir = base / folder
    artefacts = out.get("artefacts", list(ARTEFACTS))
    if not isinstance(artefacts, list) or any(a not in ARTEFACTS for a in artefacts):
        p.add("output.artefacts", f"must be a list drawn from {', '.join(ARTEFACTS)}, got {artefacts!r}")
    else:
        s.artefacts = tuple(artefacts)


def _sweep(p: _Problems, data: Any, s: Scenario) -> None:
    sweep = _mapping(p, data, "sweep", ("vary",))
    vary = sweep.get("vary") or {}
    if not isinstance(vary, dict):
        p.add("sweep.vary", f"must be a mapping PATH: [values], got {vary!r}")
        return
    for path, values in vary.items():
        if not isinstance(values, list) or not values:
            p.add(f"sweep.vary.{path}", f"must be a non-empty list of values, got {values!r}")
            continue
        try:
            _path_tokens(str(path))
        except InputError as exc:
            p.add(f"sweep.vary.{path}", exc.problem)
            continue
        s.vary[str(path)] = values


def scenario_from_data(data: dict, source: str | Path, overrides: Iterable[tuple[str, Any]] = ()) -> Scenario:
    """Validate ``data`` (read from ``source``) after ``overrides``; raise :class:`ScenarioError` listing every problem."""
    source = Path(source)
    data = copy.deepcopy(data)
    for path, value in overrides:
        set_path(data, path, value)
    base = source.parent
    p = _Problems()
    for key in data:
        if key not in _SECTIONS:
            p.add(str(key), f"unknown section (known: {', '.join(_SECTIONS)})")
    name = data.get("name", source.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[\w.+-]+", name):
        p.add("name", f"must be a short name (letters, digits, - _ . +), got {name!r}")
        name = source.stem
    s = Scenario(name=name, source=source, data=data, description=str(data.get("description", "")))
    _model(p, data.get("model"), base, s)
    _hardware(p, data.get("hardware"), base, s)
    _solve(p, data.get("solve"), base, s)
    _simulate(p, data.get("simulate"), s)
    _output(p, data.get("output"), base, s)
    _sweep(p, data.get("sweep"), s)
    if p.items:
        raise ScenarioError(source, p.items)
    return s


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Read, override (``PATH=VALUE`` texts) and validate a scenario file."""
    return scenario_from_data(read_scenario_data(path), path, [parse_assignment(o) for o in overrides])

