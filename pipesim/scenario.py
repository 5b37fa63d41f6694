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
    hardware:                                  # exactly one of preset / file / devices / cluster
      preset: a100x8
      # cluster: dgx-a100x4                    # a multi-node cluster (solve.method plan only)
      # node_type: dgx-a100                    # plan on this node type's part of a mixed cluster
      # file: box.yaml
      # devices: [{name: gpu, device: a100-80gb | {kind: ..., peak_flops: ...},
      #            count: 4, memory: 40GB, host_link: pcie4-x16 | {bandwidth: 32GB/s}}]
      whatif: {a100: {count: 6}}               # hardware.whatif edits (speed, link, memory, count…)
      prices: {a100: 2.5, cpu: 0.05}           # per device-hour: cost per sample
    solve: {method: dp, time_limit: 60s, options: {merge: exact}}
    # solve: {method: plan, options: {objective: flush, microbatches: 64}}   # hybrid-parallel plan
    simulate: {schedule: 1f1b, microbatches: 120, comm: paper}
    output: {dir: results, artefacts: [result, split, trace, gantt, plots]}
    sweep: {vary: {"hardware.whatif.a100.count": [2, 4, 8]}}

Guarantees: relative paths *in the file* resolve against the file's folder;
without ``output.dir`` results go to ``out/<name>`` under the current
directory.  Validation checks every section and reports **every** problem at
once, each with its field path (``hardware.devices[1].memory: must be a
positive size, got "-4GB"``), as one :class:`ScenarioError` (an
:class:`~pipesim.errors.InputError`: exit code 2).  Quantities take human
units (``80GB``, ``900GB/s``, ``312TFLOPS``, ``2ms``).  ``--set PATH=VALUE``
overrides (:func:`set_path`) are applied before validation, so a sweep point
or a test's small setting is validated like the file itself.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pipesim.errors import (
    GraphError,
    HardwareError,
    InputError,
    ModelSpecError,
    require_extra,
)
from pipesim.hardware.catalog import MAX_YAML_NESTING, Catalog, builtin_catalog, flow_nesting, load_system, yaml_problem
from pipesim.hardware.costs import DEFAULT_TRAINING_OPTIMIZER, OPTIMIZERS
from pipesim.hardware.devices import TRANSFER_MODES, DeviceGroup, System
from pipesim.hardware.whatif import apply_edits, parse_edits
from pipesim.hardware.clusters import Cluster, load_cluster
from pipesim.placement.methods import METHODS, get_method
from pipesim.placement.plan.piper_format import is_piper_format, read_piper_workload
from pipesim.placement.plan.solve import PLAN_OPTIONS
from pipesim.placement.plan.workload import PlanningWorkload
from pipesim.placement.options import (
    Bool,
    Choice,
    Duration,
    Field,
    File,
    Float,
    Int,
    Size,
    Text,
)
from pipesim.placement.workload import Workload
from pipesim.simulation import COMM_MODES, SCHEDULES
from pipesim.simulation.orders import FLUSHED_SCHEDULES, SCHEDULE_SPECS
from pipesim.simulation.schedules import TRAINING_SCHEDULES
from pipesim.workloads.io import load_workload
from pipesim.workloads.lower import lower
from pipesim.workloads.models import MODELS, PARAMETERS, build_model
from pipesim.workloads.opgraph import OpGraph
from pipesim.workloads.whatif import scale_workload

__all__ = [
    "ARTEFACTS",
    "SCHEMA",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_assignment",
    "read_scenario_data",
    "scenario_from_data",
    "set_path",
]

#: What ``pipesim run`` can write into the output folder.
ARTEFACTS = ("result", "split", "trace", "gantt", "plots", "report", "workload")

#: ``solve.method`` for a hybrid-parallel plan (:func:`pipesim.placement.plan.plan`): not a split method
PLAN_METHOD = "plan"
#: microbatches per batch when a plan's options do not say
DEFAULT_PLAN_MICROBATCHES = 32

#: The scenario file, declared: section -> field -> a typed field (checked as declared), or ``None`` for
#: fields whose meaning depends on others (checked by the section's code: model parameters by
#: generator, solve options by method, hardware devices by the catalog).
SCHEMA: dict[str, dict[str, Field | None]] = {
    "model": {
        "generator": Choice(MODELS, help="a model generator"),
        "workload": File(help="a paper or native workload JSON with given times"),
        "onnx": File(help="an ONNX model"),
        "params": None,
        "training": Bool(help="add backward and optimizer-update nodes"),
        "optimizer": Choice(tuple(OPTIMIZERS), help=f"training memory recipe (default {DEFAULT_TRAINING_OPTIMIZER})"),
    },
    "hardware": {
        "preset": Text(help="a system preset name"),
        "file": File(help="a system YAML file"),
        "cluster": Text(help="a cluster preset or YAML file (solve.method plan)"),
        "node_type": Text(help="plan on the nodes of this type of a mixed cluster"),
        "devices": None,
        "whatif": None,
        "prices": None,
        "transfers": Choice(TRANSFER_MODES, help="which links stage transfers use (default: the system's)"),
    },
    "solve": {
        "method": Choice((*METHODS, PLAN_METHOD), help="a placement method, or plan (hybrid-parallel)"),
        "time_limit": Duration(help="seconds allowed to methods that take a time limit"),
        "options": None,
    },
    "simulate": {
        "enabled": Bool(help="simulate the split"),
        "schedule": Choice(SCHEDULES, help="pipeline schedule"),
        "microbatches": Int(help="microbatches to run"),
        "minibatch": Int(help="microbatches per minibatch (flushed schedules)"),
        "in_flight": Int(help="stream: microbatches in flight"),
        "comm": Choice(COMM_MODES, help="communication model"),
        "virtual_stages": Int(help="chunks (virtual stages) per device"),
        "weight_fraction": Float(minimum=0.0, help="weight-gradient share of each backward (zero-bubble schedules)"),
        "placement": Choice(("round-robin", "v"), help="how chunks fold onto devices (default: the schedule's)"),
        "compare_schedules": None,
    },
    "output": {"dir": Text(help="output folder"), "artefacts": None},
    "sweep": {"vary": None},
}
_TOP = ("name", "description", *SCHEMA)
_DEVICE = {"name": Text(help="class name"), "device": None, "count": Int(minimum=0, help="devices of the class"),
           "memory": Size(help="memory per device"), "host_link": None, "peer_link": None}
_ONNX_PARAMS = {
    "batch": Int(help="value for symbolic input dimensions"),
    "dtype": Text(help="data type to cost the model in (default: its float tensors')"),
    "fuse_depth": Int(help="fuse operators by the first N components of their names (module prefix)"),
}


class ScenarioError(InputError):
    """Every problem of a scenario, each as ``(field path, problem)``.

    Examples
    --------
    >>> print(ScenarioError("s.yaml", [("solve.method", "unknown"), ("simulate.comm", "unknown")]))
    s.yaml: 2 problems:
      solve.method: unknown
      simulate.comm: unknown
    """

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
    """Set ``data[path] = value`` for a dotted path with list indices (``a.b[1].c``); missing mappings are created.

    Raises
    ------
    InputError
        A path that does not parse, a list index past the end, or a step
        through something that is not a mapping (field ``--set``).

    Examples
    --------
    >>> data = {"hardware": {"devices": [{"count": 4}]}}
    >>> set_path(data, "hardware.devices[0].count", 6)
    >>> set_path(data, "simulate.microbatches", 50)
    >>> data
    {'hardware': {'devices': [{'count': 6}]}, 'simulate': {'microbatches': 50}}
    """
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
    """A command-line value as YAML reads it: ``50`` → 50, ``true`` → True, ``16GB/s`` stays a string.

    Examples
    --------
    >>> parse_value("50"), parse_value("true"), parse_value("16GB/s"), parse_value("[1, 2]")
    (50, True, '16GB/s', [1, 2])
    """
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except (yaml.YAMLError, RecursionError):
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"simulate.microbatches=50"`` → ``("simulate.microbatches", 50)``.

    Raises
    ------
    InputError
        Not ``PATH=VALUE``, or a path that does not parse.

    Examples
    --------
    >>> parse_assignment("hardware.whatif.a100.count=6")
    ('hardware.whatif.a100.count', 6)
    """
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise InputError(None, "--set", f"expected PATH=VALUE (e.g. simulate.microbatches=50), got {text!r}")
    _path_tokens(path.strip())
    return path.strip(), parse_value(value)


def read_scenario_data(path: str | Path) -> dict:
    """The YAML mapping in ``path``; :class:`InputError` naming the file otherwise.

    Raises
    ------
    InputError
        Missing, unreadable, not YAML, or not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text()
        if flow_nesting(text) > MAX_YAML_NESTING:  # before PyYAML, which slows with the square of the depth
            raise InputError(path, None, f"nested more than {MAX_YAML_NESTING} levels deep ([[[…]]]): not a scenario")
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, not a scenario file") from None
    except PermissionError:
        raise InputError(path, None, "cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise InputError(path, None, "is not a text (YAML) file") from None
    except yaml.YAMLError as exc:
        raise InputError(path, None, yaml_problem(exc)) from None
    except RecursionError:  # lists inside lists thousands deep: PyYAML's composer recurses
        raise InputError(path, None, "nested too deeply to be a scenario (thousands of levels)") from None
    if not isinstance(data, dict):
        raise InputError(path, None, "a scenario must be a YAML mapping with model, hardware, solve, simulate, output")
    return data


# ------------------------------------------------------------ the validated scenario
@dataclass
class Scenario:
    """A validated scenario: everything needed to build the workload, solve and simulate it.

    Made by :func:`load_scenario` or :func:`scenario_from_data`, never by
    hand: the fields are checked and converted there.

    Examples
    --------
    >>> scenario = scenario_from_data({"model": {"generator": "transformer", "params": {"layers": 2, "hidden": 64,
    ...                                          "heads": 4, "seq": 16}}, "hardware": {"preset": "a100x8"}}, "tiny.yaml")
    >>> scenario.name, scenario.method, scenario.system.class_names
    ('tiny', 'dp', ('a100', 'cpu'))
    >>> len(scenario.workload().graph)
    4
    """

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
    options: dict[str, Any] = field(default_factory=dict)   # the method's options, checked by the registry
    simulate: dict[str, Any] = field(default_factory=dict)
    simulate_enabled: bool = True
    compare_schedules: tuple[str, ...] = ()      # flushed schedules to compare on this model (simulate.compare_schedules)
    output_dir: Path = Path("out")
    artefacts: tuple[str, ...] = ARTEFACTS
    prices: dict[str, float] = field(default_factory=dict)
    vary: dict[str, list] = field(default_factory=dict)
    cluster: Cluster | None = None               # hardware.cluster (solve.method plan)
    piper: PlanningWorkload | None = None        # model.workload in Piper's format (solve.method plan)

    @property
    def plans(self) -> bool:
        """Whether the scenario asks for a hybrid-parallel plan (``solve.method: plan``)."""
        return self.method == PLAN_METHOD

    def planning_workload(self) -> PlanningWorkload:
        """The workload ``plan`` plans on: Piper's file, or the generated model on the cluster's nodes."""
        from pipesim.workloads.planning import planning_workload

        microbatches = self.options.get("microbatches") or DEFAULT_PLAN_MICROBATCHES
        if self.piper is not None:
            return self.piper.with_limits(microbatches=microbatches)
        return planning_workload(self.ops, self.cluster, microbatches=microbatches, name=self.name)

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

    def fields(self, data: Any, path: str, schema: Mapping[str, Field | None], base: Path | None = None) -> dict:
        """``data`` checked against ``schema``: unknown keys and bad values recorded; typed values converted.

        Keys whose schema entry is ``None`` are passed through unchecked (the section's code checks them).
        """
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.add(path, f"must be a mapping, got {data!r}")
            return {}
        out: dict[str, Any] = {}
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in schema:
                self.add(where, f"unknown field (known: {', '.join(schema)})")
            elif value is None or schema[key] is None:
                out[key] = value
            else:
                try:
                    out[key] = schema[key].convert(value, where, base)
                except InputError as exc:
                    self.add(exc.field or where, exc.problem)
        return out


def _one_of(p: _Problems, section: dict, keys: Sequence[str], path: str, required: bool = True) -> str | None:
    given = [k for k in keys if section.get(k) is not None]
    if len(given) > 1:
        p.add(path, f"give only one of {', '.join(given)}")
    elif not given and required:
        p.add(path, f"needs one of {', '.join(keys)}")
    return given[0] if len(given) == 1 else None


# ------------------------------------------------------------ sections
def _piper_file(path: Path) -> PlanningWorkload:
    from pipesim.placement.formats import load_json

    data = load_json(path)
    if not is_piper_format(data):
        raise InputError(path, None, "solve.method plan reads Piper's format (nodes with TMPCs), or a generated model")
    return read_piper_workload(path, data)


def _model(p: _Problems, data: Any, base: Path, s: Scenario, plans: bool = False) -> None:
    if data is None:
        p.add("model", "missing (give model.generator, model.workload or model.onnx)")
        return
    before = len(p.items)
    model = p.fields(data, "model", SCHEMA["model"], base)
    kind = _one_of(p, {k: v for k, v in (data.items() if isinstance(data, dict) else ())}, ("generator", "workload", "onnx"), "model")
    s.training = model.get("training") or False
    s.optimizer = model.get("optimizer") or DEFAULT_TRAINING_OPTIMIZER
    if len(p.items) > before or kind is None:
        return
    if kind == "workload":
        if "params" in model:
            p.add("model.params", "a workload file has given times: it takes no parameters")
        if plans:
            s.piper = p.check("model.workload", lambda: _piper_file(model["workload"]))
            return
        s.given = p.check("model.workload", lambda: load_workload(model["workload"]))
        if s.given is not None:
            if "training" in model and s.training != s.given.graph.is_training:
                p.add("model.training", f"the workload file is {'a training' if s.given.graph.is_training else 'an inference'} graph")
            s.training = s.given.graph.is_training
        return
    schema = _ONNX_PARAMS if kind == "onnx" else PARAMETERS[model["generator"]]
    params = p.fields(model.get("params"), "model.params", schema)
    if len(p.items) > before:
        return
    s.samples_per_pass = params.get("batch") or 1
    if kind == "onnx":
        require_extra("onnx", "onnx")
        from pipesim.workloads.onnx_import import fuse_by_prefix, import_onnx

        def imported():
            ops = import_onnx(model["onnx"], batch=params.get("batch", 1), dtype=params.get("dtype"))
            return fuse_by_prefix(ops, params["fuse_depth"]) if params.get("fuse_depth") else ops

        s.ops = p.check("model.onnx", imported)
    else:
        s.ops = p.check("model.params", lambda: build_model(model["generator"], **params))


def _rooted(where: str, prefix: str) -> Callable[[str], str]:
    """Re-root a hardware error's field at ``where``: what follows ``prefix`` in it is kept."""
    return lambda f: where + f[f.rindex(prefix) + len(prefix):] if prefix in f else where


def _device_group(p: _Problems, raw: Any, path: str, catalog: Catalog) -> DeviceGroup | None:
    before = len(p.items)
    entry = p.fields(raw, path, _DEVICE)
    if not isinstance(raw, dict):
        return None
    name = entry.get("name")
    if name is None:
        p.add(f"{path}.name", "missing (a class name)")
    if entry.get("count") is None and "count" not in [k.rsplit(".", 1)[-1] for k, _ in p.items[before:]]:
        p.add(f"{path}.count", "missing (a non-negative whole number)")
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
    links = {}
    for key in ("host_link", "peer_link"):
        where = f"{path}.{key}"
        links[key] = p.check(where, lambda: catalog.link(entry.get(key), where), rename=_rooted(where, where))
    if len(p.items) > before or device is None:
        return None
    if entry.get("memory") is not None:
        device = replace(device, memory=entry["memory"])
    return p.check(path, lambda: DeviceGroup(name, device, entry["count"], links["host_link"], links["peer_link"]),
                   rename=lambda f: f"{path}.{f.rsplit('.', 1)[-1]}")


def _hardware(p: _Problems, data: Any, base: Path, s: Scenario) -> None:
    hw = p.fields(data, "hardware", SCHEMA["hardware"], base)
    raw = data if isinstance(data, dict) else {}
    kind = _one_of(p, raw, ("preset", "file", "devices", "cluster"), "hardware", required=s.given is None)
    if kind == "cluster" or hw.get("node_type") is not None:
        _cluster(p, hw, kind, s)
        return
    if s.given is not None and kind is not None:
        p.add(f"hardware.{kind}", "model.workload has given times: change them with hardware.whatif (speed, link, memory, count)")
        kind = None
    system = None
    if kind == "preset" and hw.get("preset") is not None:
        system = p.check("hardware.preset", lambda: builtin_catalog().system(hw["preset"]),
                         rename=lambda f: "hardware.preset")
    elif kind == "file" and hw.get("file") is not None:
        system = p.check("hardware.file", lambda: load_system(hw["file"]), rename=lambda f: f"hardware.file ({f})")
    elif kind == "devices":
        groups_raw = hw["devices"]
        if not isinstance(groups_raw, list) or not groups_raw:
            p.add("hardware.devices", "must be a non-empty list of device classes")
        else:
            catalog = builtin_catalog()
            groups = [_device_group(p, entry, f"hardware.devices[{i}]", catalog) for i, entry in enumerate(groups_raw)]
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
    if system is not None and hw.get("transfers") is not None:
        system = p.check("hardware.transfers", lambda: replace(system, transfers=hw["transfers"]),
                         rename=lambda f: "hardware.transfers")
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


def _cluster(p: _Problems, hw: dict, kind: str | None, s: Scenario) -> None:
    """``hardware.cluster`` (and ``node_type``): the nodes a plan is made for."""
    if kind != "cluster":
        p.add("hardware.node_type", "goes with hardware.cluster")
        return
    for key in ("whatif", "prices"):
        if hw.get(key) is not None:
            p.add(f"hardware.{key}", "not available with hardware.cluster")
    cluster = p.check("hardware.cluster", lambda: load_cluster(hw["cluster"]), rename=lambda f: "hardware.cluster")
    if cluster is not None and hw.get("node_type") is not None:
        cluster = p.check("hardware.node_type", lambda: cluster.part(hw["node_type"]), rename=lambda f: "hardware.node_type")
    elif cluster is not None and not cluster.homogeneous:
        types = ", ".join(sorted({t.name for t, _ in cluster.nodes}))
        p.add("hardware.cluster", f"{cluster.name} mixes node types: plan on one with hardware.node_type ({types})")
        cluster = None
    s.cluster = cluster


def _plan_solve(p: _Problems, solve: dict, s: Scenario) -> None:
    """``solve: {method: plan, options: ...}``: the options checked as typed fields (:data:`PLAN_OPTIONS`)."""
    s.method = PLAN_METHOD
    if solve.get("time_limit") is not None:
        p.add("solve.time_limit", "plan takes no time limit")
    s.options = p.fields(solve.get("options"), "solve.options", PLAN_OPTIONS)
    if s.cluster is None and s.piper is None and not any(k.startswith("hardware") for k, _ in p.items):
        p.add("hardware", "solve.method plan needs hardware.cluster (a cluster preset such as dgx-a100x4)")


def _solve(p: _Problems, data: Any, base: Path, s: Scenario) -> None:
    """The method and its options, checked by the one registry (:mod:`pipesim.placement.methods`)."""
    before = len(p.items)
    solve = p.fields(data, "solve", SCHEMA["solve"], base)
    if len(p.items) > before:
        return
    if solve.get("method") == PLAN_METHOD:
        _plan_solve(p, solve, s)
        return
    if s.cluster is not None:
        p.add("hardware.cluster", "clusters are for solve.method plan; other methods take hardware.preset, file or devices")
    method = get_method(solve.get("method") or "dp")
    s.method = method.name
    raw = solve.get("options") or {}
    if not isinstance(raw, dict):
        p.add("solve.options", f"must be a mapping of {method.name}'s options, got {raw!r}")
        return
    options = dict(raw)
    if solve.get("time_limit") is not None:
        if "time_limit" not in method.options:
            p.add("solve.time_limit", f"{method.name} takes no time limit")
        else:
            options.setdefault("time_limit", solve["time_limit"])
    checked, problems = method.problems(options, base=base, prefix="solve.options.")
    for path, problem in problems:
        p.add(path, problem)
    s.options = checked


def _simulate(p: _Problems, data: Any, s: Scenario) -> None:
    sim = p.fields(data, "simulate", SCHEMA["simulate"])
    s.simulate_enabled = sim.get("enabled") is not False
    schedule = sim.get("schedule")
    if schedule in TRAINING_SCHEDULES and not s.training:
        p.add("simulate.schedule", f"{schedule} needs a training model (model.training: true); use stream")
    if sim.get("weight_fraction") is not None and sim["weight_fraction"] > 1:
        p.add("simulate.weight_fraction", f"must be between 0 and 1, got {sim['weight_fraction']!r}")
    s.simulate = {k: sim.get(k) for k in ("schedule", "microbatches", "minibatch", "in_flight", "weight_fraction",
                                          "placement")}
    spec = SCHEDULE_SPECS.get(schedule)
    if sim.get("virtual_stages") is None and spec is not None and spec.virtual is None and spec.default_virtual > 1:
        # as pipesim simulate: one chunk per device would silently run 1F1B-with-flush under an interleaved name
        p.add("simulate.virtual_stages", f"{schedule} folds the split's P·V stages onto P devices, V chunks each: "
              f"give simulate.virtual_stages (e.g. {spec.default_virtual}; 1 is the same as 1f1b-flush)")
    s.simulate["virtual_stages"] = sim.get("virtual_stages") or (spec.virtual if spec is not None and spec.virtual else 1)
    s.simulate["comm"] = sim.get("comm") or "paper"
    compare = sim.get("compare_schedules")
    if compare is not None:
        names = list(FLUSHED_SCHEDULES) if compare == "all" else compare
        if not isinstance(names, list) or not names or any(n not in FLUSHED_SCHEDULES for n in names):
            p.add("simulate.compare_schedules", f"must be all or a list drawn from {', '.join(FLUSHED_SCHEDULES)}, got {compare!r}")
        elif not s.training:
            p.add("simulate.compare_schedules", "schedules are compared on training models (model.training: true)")
        else:
            s.compare_schedules = tuple(names)


def _output(p: _Problems, data: Any, base: Path, s: Scenario) -> None:
    out = p.fields(data, "output", SCHEMA["output"])
    folder = out.get("dir")
    s.output_dir = Path("out") / s.name if folder is None else base / folder
    artefacts = out.get("artefacts", list(ARTEFACTS))
    if not isinstance(artefacts, list) or any(a not in ARTEFACTS for a in artefacts):
        p.add("output.artefacts", f"must be a list drawn from {', '.join(ARTEFACTS)}, got {artefacts!r}")
    else:
        s.artefacts = tuple(artefacts)


def _sweep(p: _Problems, data: Any, s: Scenario) -> None:
    sweep = p.fields(data, "sweep", SCHEMA["sweep"])
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
    """Validate ``data`` (read from ``source``) after ``overrides``; raise :class:`ScenarioError` listing every problem.

    Parameters
    ----------
    data : dict
        The scenario's mapping (as read from YAML); not modified.
    source : str or Path
        Where it came from: names it in errors, and relative paths in it
        resolve against its folder.
    overrides : iterable of (str, value)
        Applied first (:func:`set_path`).

    Returns
    -------
    Scenario
        Checked and converted; ``scenario.workload()`` builds its workload.

    Raises
    ------
    ScenarioError
        Every problem at once, each with its field path.

    Examples
    --------
    >>> scenario_from_data({"model": {"generator": "transformer"}, "hardware": {"preset": "a100x9"},
    ...                     "solve": {"method": "dp", "options": {"restarts": 2}}}, "bad.yaml")
    Traceback (most recent call last):
    ...
    pipesim.scenario.ScenarioError: bad.yaml: 2 problems:
      hardware.preset: unknown preset 'a100x9' (known: ...)
      solve.options.restarts: not an option of dp (its options: merge, fuse_layers, ideal_limit, memory_budget, schedule, microbatches)
    """
    source = Path(source)
    data = copy.deepcopy(data)
    for path, value in overrides:
        set_path(data, path, value)
    base = source.parent
    p = _Problems()
    for key in data:
        if key not in _TOP:
            p.add(str(key), f"unknown section (known: {', '.join(_TOP)})")
    name = data.get("name", source.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[\w.+-]+", name):
        p.add("name", f"must be a short name (letters, digits, - _ . +), got {name!r}")
        name = source.stem
    s = Scenario(name=name, source=source, data=data, description=str(data.get("description", "")))
    solve = data.get("solve")
    plans = isinstance(solve, dict) and solve.get("method") == PLAN_METHOD
    _model(p, data.get("model"), base, s, plans)
    _hardware(p, data.get("hardware"), base, s)
    _solve(p, data.get("solve"), base, s)
    _simulate(p, data.get("simulate"), s)
    _output(p, data.get("output"), base, s)
    _sweep(p, data.get("sweep"), s)
    if p.items:
        raise ScenarioError(source, p.items)
    return s


def load_scenario(path: str | Path, overrides: Iterable[str | tuple[str, Any]] = ()) -> Scenario:
    """Read, override and validate a scenario file.

    Parameters
    ----------
    path : str or Path
        The scenario (YAML).
    overrides : iterable
        ``"PATH=VALUE"`` texts (``"simulate.microbatches=50"``) or
        ``(path, value)`` pairs, applied before validation.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Every problem at once, each with its field path.
    """
    pairs = [parse_assignment(o) if isinstance(o, str) else tuple(o) for o in overrides]
    return scenario_from_data(read_scenario_data(path), path, pairs)
