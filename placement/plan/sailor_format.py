"""Reading Sailor's input and plan files as they are (docs/model.md §12.1; eth-easl/sailor, SOSP'25).

Sailor describes a training job with five kinds of JSON file, all read here
without conversion:

* a *training config* (``training_config_*.json``): ``model``,
  ``global_batch_size``, ``num_all_layers``, ``optimizer`` and the shapes;
* *profiles* (``profiles_tmp.json``): model → GPU type → microbatch size →
  tensor-parallel degree → layer index → ``[forward, backward, optimizer]``
  seconds; the third number is the optimizer step of the *whole* model on one
  GPU of that type and degree (it is the same for every layer);
* *layer memory* (``llm_info.json``): model → tensor-parallel degree → layer →
  ``params_floats`` (parameters per GPU), ``act_output_floats`` (elements of
  the layer's output) and ``act_mem_floats`` (activation memory per sample in
  4-byte units: Sailor's profiler stores ``bytes // 4``);
* *bandwidths* (``multizone_bandwidths_het.json``): zone → GPU type → GPUs per
  node → zone → GPU type → GPUs per node → ``[[c0, c1, c2], peak]``, the
  bandwidth in GB/s as a polynomial in ``log2(message bytes / 1e6)`` (highest
  power first) and the peak in bytes/s;
* a *plan* (``validation/*/N*_plan_config_*.json``): ``pipeline_list`` (per
  pipeline the layers of each stage and, per stage, its data-parallel
  replicas as ``[[[GPU type, GPUs per node, zone]], TP degree]``), ``mbs`` and
  ``gbs``.  A plan run for real also carries ``real`` (seconds per iteration),
  ``red_grads`` (gradient reduction seconds) and ``max_mem`` (peak bytes):
  these are measurements, kept apart in :class:`SailorMeasurement` and never
  read by a prediction.

Guarantee: every problem raises :class:`~pipesim.errors.InputError` naming the
file and the field (``file: pipeline_list[0].tmp_per_stage[1][0]: ...``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipesim.placement.formats import _Reader, load_json

__all__ = [
    "BandwidthFit",
    "LayerMemory",
    "LayerTimes",
    "SailorBandwidths",
    "SailorMeasurement",
    "SailorPipeline",
    "SailorPlan",
    "SailorProfiles",
    "SailorReplica",
    "SailorTrainingConfig",
    "read_bandwidths",
    "read_layer_memory",
    "read_profiles",
    "read_sailor_plan",
    "read_training_config",
]


@dataclass(frozen=True)
class SailorTrainingConfig:
    """A Sailor training config: the model and its global batch."""

    model: str
    global_batch_size: int
    num_layers: int  # every layer the profiles index (Sailor's num_all_layers)
    optimizer: str
    source: str = ""


@dataclass(frozen=True)
class LayerTimes:
    """One layer on one (GPU type, microbatch, TP degree): seconds per microbatch."""

    forward: float
    backward: float
    optimizer: float  # the whole model's optimizer step on one GPU (Sailor's convention)


@dataclass(frozen=True)
class SailorProfiles:
    """``times[model][gpu][mbs][tp]`` is the list of :class:`LayerTimes` by layer index."""

    times: Mapping[str, Mapping[str, Mapping[int, Mapping[int, tuple[LayerTimes, ...]]]]]
    source: str = ""

    def layers(self, model: str, gpu: str, mbs: int, tp: int, where: str = "") -> tuple[LayerTimes, ...]:
        """The per-layer times, or an InputError naming what the profiles lack."""
        r = _Reader(self.source)
        try:
            return self.times[model][gpu][mbs][tp]
        except KeyError:
            pass
        if model not in self.times:
            raise r.fail(model, f"no profiles for model {model!r} (have {sorted(self.times)})")
        if gpu not in self.times[model]:
            raise r.fail(f"{model}.{gpu}", f"no profiles for GPU type {gpu!r}" + (f" (needed by {where})" if where else ""))
        if mbs not in self.times[model][gpu]:
            raise r.fail(f"{model}.{gpu}.{mbs}", f"no profile for microbatch size {mbs}")
        raise r.fail(f"{model}.{gpu}.{mbs}.{tp}", f"no profile for tensor-parallel degree {tp}")


@dataclass(frozen=True)
class LayerMemory:
    """One layer's sizes at one TP degree (per GPU)."""

    params: int  # parameters held by one GPU
    output_elements: int  # elements of the layer's output activation per sample
    activation_bytes: int  # activation memory kept for backward, per sample, bytes


@dataclass(frozen=True)
class SailorLayerInfo:
    """``layers[model][tp]`` is the tuple of :class:`LayerMemory` by layer index."""

    layers: Mapping[str, Mapping[int, tuple[LayerMemory, ...]]]
    source: str = ""

    def of(self, model: str, tp: int) -> tuple[LayerMemory, ...]:
        r = _Reader(self.source)
        if model not in self.layers:
            raise r.fail(model, f"no layer memory for model {model!r}")
        if tp not in self.layers[model]:
            raise r.fail(f"{model}.{tp}", f"no layer memory for tensor-parallel degree {tp}")
        return self.layers[model][tp]


@dataclass(frozen=True)
class BandwidthFit:
    """Bandwidth against message size: ``GB/s = poly(log2(bytes / 1e6))``, capped at ``peak``."""

    coefficients: tuple[float, ...]  # highest power first
    peak: float  # bytes/s

    def bandwidth(self, nbytes: float) -> float:
        """Bytes/s for a message of ``nbytes``.

        The fit is a parabola in log-size, so far outside the measured sizes it
        can fall to zero or below; it is held within [1 % of peak, peak] so a
        tiny or huge message never gets an infinite or negative time.

        Examples
        --------
        >>> fit = BandwidthFit((0.0, 0.0, 10.0), 20e9)
        >>> fit.bandwidth(1e6) / 1e9
        10.0
        """
        x = math.log2(nbytes / 1e6)
        gbps = 0.0
        for c in self.coefficients:
            gbps = gbps * x + c
        return min(max(gbps * 1e9, 0.01 * self.peak), self.peak)

    def transfer_time(self, nbytes: float) -> float:
        """Seconds to send ``nbytes`` in one message (0 for nothing)."""
        return 0.0 if nbytes <= 0 else nbytes / self.bandwidth(nbytes)


@dataclass(frozen=True)
class SailorBandwidths:
    """``fits[(zone, gpu, gpus_per_node)][(zone, gpu, gpus_per_node)]`` → :class:`BandwidthFit`."""

    fits: Mapping[tuple[str, str, int], Mapping[tuple[str, str, int], BandwidthFit]]
    source: str = ""

    def transfer_time(self, sender: "SailorReplica", receiver: "SailorReplica", nbytes: float,
                      streams: int = 1) -> float:
        """Seconds for ``streams`` GPUs of ``sender``'s node to each send ``nbytes`` to a GPU of ``receiver``'s, at once.

        Sailor measures the fit for ``k`` GPUs per node with ``k`` sender/receiver
        pairs sending at once and records their total rate
        (``test_sendrecv.py``), so the ``k``-pair fit is what the ``k`` transfers
        share: they end after ``k · nbytes / bw_k(nbytes)``.  Where a node's
        GPUs each have a NIC (GH200) ``bw_k ≈ k · bw_1`` and sharing costs
        nothing; where they share one (Sailor's RTX nodes) ``bw_k ≈ bw_1``.

        >>> fit = {"z": {"G": {"1": {"z": {"G": {"1": [[0, 0, 1.0], 1e9]}}},
        ...                    "4": {"z": {"G": {"4": [[0, 0, 2.0], 2e9]}}}}}}
        >>> b, r = read_bandwidths("b.json", fit), SailorReplica("G", 4, "z", 4)
        >>> b.transfer_time(r, r, 1e9), b.transfer_time(r, r, 1e9, streams=4)
        (1.0, 2.0)
        """
        fit = self.link((sender.zone, sender.gpu, streams), (receiver.zone, receiver.gpu, streams))
        return streams * fit.transfer_time(nbytes)

    def link(self, sender: tuple[str, str, int], receiver: tuple[str, str, int]) -> BandwidthFit:
        try:
            return self.fits[sender][receiver]
        except KeyError:
            raise _Reader(self.source).fail(
                ".".join(map(str, sender)) + " -> " + ".".join(map(str, receiver)), "no measured bandwidth"
            ) from None


@dataclass(frozen=True)
class SailorReplica:
    """One data-parallel replica of a stage: ``tp`` GPUs of one type in one node."""

    gpu: str
    gpus_per_node: int
    zone: str
    tp: int


@dataclass(frozen=True)
class SailorPipeline:
    """A pipeline: per stage its layer indices and its replicas."""

    stages: tuple[tuple[int, ...], ...]
    replicas: tuple[tuple[SailorReplica, ...], ...]


@dataclass(frozen=True)
class SailorMeasurement:
    """What a real run measured; for checking predictions, never an input."""

    iteration_time: float | None  # 'real', s
    gradient_reduction: float | None  # 'red_grads', s
    max_memory: float | None  # 'max_mem', bytes


@dataclass(frozen=True)
class SailorPlan:
    """A Sailor plan: its pipelines, microbatch size and global batch."""

    pipelines: tuple[SailorPipeline, ...]
    mbs: int
    gbs: int | None  # the plan's own global batch (Sailor's validation runs set it); None: the config's
    measured: SailorMeasurement = field(default_factory=lambda: SailorMeasurement(None, None, None))
    source: str = ""

    @property
    def gpus(self) -> int:
        return sum(rep.tp for p in self.pipelines for stage in p.replicas for rep in stage)


def _int_key(r: _Reader, key: Any, field_: str) -> int:
    try:
        value = int(str(key))
    except ValueError:
        raise r.fail(field_, f"key {key!r} is not an integer") from None
    if value < 1 and not field_.endswith("layer"):
        raise r.fail(field_, f"key {key!r} must be positive")
    return value


def _obj(r: _Reader, value: Any, field_: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise r.fail(field_, f"must be a JSON object, got {type(value).__name__}")
    return value


def _layer_list(r: _Reader, by_layer: Mapping, field_: str, read_one) -> tuple:
    """Layers keyed "0".."n-1" (any order) → a tuple by index; gaps are errors."""
    items = {}
    for key, value in _obj(r, by_layer, field_).items():
        try:
            index = int(str(key))
        except ValueError:
            raise r.fail(f"{field_}.{key}", "layer key is not an integer") from None
        items[index] = read_one(value, f"{field_}.{key}")
    if sorted(items) != list(range(len(items))):
        raise r.fail(field_, f"layers must be numbered 0..{len(items) - 1} without gaps")
    return tuple(items[i] for i in range(len(items)))


def read_training_config(path: str | Path, data: Any = None) -> SailorTrainingConfig:
    """Read a Sailor training config (``training_config_*.json``).

    Examples
    --------
    >>> read_training_config("c.json", {"model": "OPT-350", "global_batch_size": 1024,
    ...                                 "num_all_layers": 26, "optimizer": "Adam"}).num_layers
    26
    >>> read_training_config("c.json", {"model": "OPT-350", "global_batch_size": 0,
    ...                                 "num_all_layers": 26, "optimizer": "Adam"})
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: c.json: global_batch_size: must be at least 1, got 0
    """
    data = load_json(path) if data is None else data
    r = _Reader(Path(path))
    model = r.get(data, "model", "")
    if not isinstance(model, str) or not model:
        raise r.fail("model", f"must be a model name, got {model!r}")
    optimizer = r.get(data, "optimizer", "", "Adam")
    if not isinstance(optimizer, str):
        raise r.fail("optimizer", f"must be a name, got {optimizer!r}")
    return SailorTrainingConfig(
        model=model,
        global_batch_size=r.integer(data, "global_batch_size", "", minimum=1),
        num_layers=r.integer(data, "num_all_layers", "", minimum=1),
        optimizer=optimizer,
        source=str(path),
    )


def read_profiles(path: str | Path, data: Any = None) -> SailorProfiles:
    """Read Sailor's per-layer profiles (``profiles_tmp.json``).

    Examples
    --------
    >>> p = read_profiles("p.json", {"M": {"GH-96": {"1": {"4": {"0": [0.001, 0.002, 0.0005]}}}}})
    >>> p.layers("M", "GH-96", 1, 4)[0].backward
    0.002
    >>> read_profiles("p.json", {"M": {"GH-96": {"1": {"4": {"0": [0.001, -1, 0.0]}}}}})
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: p.json: M.GH-96.1.4.0: times must be 3 finite non-negative numbers, got [0.001, -1, 0.0]
    """
    data = load_json(path) if data is None else data
    r = _Reader(Path(path))

    def one(value: Any, where: str) -> LayerTimes:
        ok = (isinstance(value, list) and len(value) == 3
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                      for v in value))
        if not ok:
            raise r.fail(where, f"times must be 3 finite non-negative numbers, got {value!r}")
        return LayerTimes(float(value[0]), float(value[1]), float(value[2]))

    times: dict = {}
    for model, by_gpu in _obj(r, data, "(top level)").items():
        times[model] = {}
        for gpu, by_mbs in _obj(r, by_gpu, model).items():
            times[model][gpu] = {}
            for mbs, by_tp in _obj(r, by_mbs, f"{model}.{gpu}").items():
                m = _int_key(r, mbs, f"{model}.{gpu}.{mbs}")
                times[model][gpu][m] = {}
                for tp, by_layer in _obj(r, by_tp, f"{model}.{gpu}.{mbs}").items():
                    t = _int_key(r, tp, f"{model}.{gpu}.{mbs}.{tp}")
                    times[model][gpu][m][t] = _layer_list(r, by_layer, f"{model}.{gpu}.{mbs}.{tp}", one)
    return SailorProfiles(times, str(path))


def read_layer_memory(path: str | Path, data: Any = None) -> SailorLayerInfo:
    """Read Sailor's per-layer sizes (``llm_info.json``).

    ``act_mem_floats`` counts 4-byte units (Sailor's profiler divides the
    measured bytes by 4), so :attr:`LayerMemory.activation_bytes` is 4 times it.

    Examples
    --------
    >>> info = read_layer_memory("i.json", {"M": {"1": {"0": {"params_floats": 10,
    ...     "act_output_floats": 4, "act_mem_floats": 8}}}})
    >>> info.of("M", 1)[0].activation_bytes
    32
    """
    data = load_json(path) if data is None else data
    r = _Reader(Path(path))

    def one(value: Any, where: str) -> LayerMemory:
        return LayerMemory(
            params=r.integer(value, "params_floats", where, minimum=0),
            output_elements=r.integer(value, "act_output_floats", where, minimum=0),
            activation_bytes=4 * r.integer(value, "act_mem_floats", where, minimum=0),
        )

    layers: dict = {}
    for model, by_tp in _obj(r, data, "(top level)").items():
        layers[model] = {}
        for tp, by_layer in _obj(r, by_tp, model).items():
            layers[model][_int_key(r, tp, f"{model}.{tp}")] = _layer_list(r, by_layer, f"{model}.{tp}", one)
    return SailorLayerInfo(layers, str(path))


def read_bandwidths(path: str | Path, data: Any = None) -> SailorBandwidths:
    """Read Sailor's measured bandwidths (``multizone_bandwidths_het.json``).

    Examples
    --------
    >>> b = read_bandwidths("b.json", {"z": {"GH-96": {"1": {"z": {"GH-96": {"1": [[0, 0, 20.0], 25e9]}}}}}})
    >>> b.link(("z", "GH-96", 1), ("z", "GH-96", 1)).transfer_time(20e6)
    0.001
    """
    data = load_json(path) if data is None else data
    r = _Reader(Path(path))
    fits: dict = {}
    for zone, by_gpu in _obj(r, data, "(top level)").items():
        for gpu, by_count in _obj(r, by_gpu, zone).items():
            for count, by_zone in _obj(r, by_count, f"{zone}.{gpu}").items():
                sender = (zone, gpu, _int_key(r, count, f"{zone}.{gpu}.{count}"))
                row = fits.setdefault(sender, {})
                for zone2, by_gpu2 in _obj(r, by_zone, f"{zone}.{gpu}.{count}").items():
                    for gpu2, by_count2 in _obj(r, by_gpu2, f"{zone}.{gpu}.{count}.{zone2}").items():
                        for count2, value in _obj(r, by_count2, f"{zone}.{gpu}.{count}.{zone2}.{gpu2}").items():
                            where = f"{zone}.{gpu}.{count}.{zone2}.{gpu2}.{count2}"
                            receiver = (zone2, gpu2, _int_key(r, count2, where))
                            ok = (isinstance(value, list) and len(value) == 2 and isinstance(value[0], list)
                                  and value[0] and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                                       and math.isfinite(c) for c in value[0])
                                  and isinstance(value[1], (int, float)) and not isinstance(value[1], bool)
                                  and math.isfinite(value[1]) and value[1] > 0)
                            if not ok:
                                raise r.fail(where, "must be [[coefficients...], peak bytes/s > 0]")
                            row[receiver] = BandwidthFit(tuple(float(c) for c in value[0]), float(value[1]))
    return SailorBandwidths(fits, str(path))


def _optional_measure(r: _Reader, data: Mapping, key: str) -> float | None:
    return r.number(data, key, "") if key in data else None


def read_sailor_plan(path: str | Path, data: Any = None) -> SailorPlan:
    """Read a Sailor plan (``pipeline_list``, ``mbs``, optional ``gbs``; measurements kept apart).

    Raises
    ------
    InputError
        A missing or ill-typed field; stages that do not cover the layers in
        order; a replica list whose length differs from ``dp``; a replica over
        several nodes (Metis-style TP across nodes is outside the model).

    Examples
    --------
    >>> rep = [[["GH-96", 4, "z"]], 4]
    >>> plan = read_sailor_plan("p.json", {"pipeline_list": [{"num_stages": 1, "layers_per_stage": [[0, 1]],
    ...     "tmp_per_stage": [[rep]], "dp": [1]}], "mbs": 1, "gbs": 8, "real": 0.5})
    >>> plan.gpus, plan.measured.iteration_time
    (4, 0.5)
    """
    data = load_json(path) if data is None else data
    r = _Reader(Path(path))
    mbs = r.integer(data, "mbs", "", minimum=1)
    gbs = r.integer(data, "gbs", "", minimum=1) if "gbs" in data else None
    raw_pipelines = r.array(data, "pipeline_list", "")
    if not raw_pipelines:
        raise r.fail("pipeline_list", "must name at least one pipeline")
    pipelines = []
    for p, raw in enumerate(raw_pipelines):
        where = f"pipeline_list[{p}]"
        n = r.integer(raw, "num_stages", where, minimum=1)
        layers = r.array(raw, "layers_per_stage", where)
        tmps = r.array(raw, "tmp_per_stage", where)
        dp = r.array(raw, "dp", where)
        for name, value in (("layers_per_stage", layers), ("tmp_per_stage", tmps), ("dp", dp)):
            if len(value) != n:
                raise r.fail(f"{where}.{name}", f"has {len(value)} entries for num_stages={n}")
        stages = []
        expected = 0
        for s, stage in enumerate(layers):
            if (not isinstance(stage, list) or not stage
                    or any(isinstance(x, bool) or not isinstance(x, int) for x in stage)):
                raise r.fail(f"{where}.layers_per_stage[{s}]", "must be a non-empty list of layer indices")
            if stage != list(range(expected, expected + len(stage))):
                raise r.fail(f"{where}.layers_per_stage[{s}]",
                             f"must continue the layers in order from {expected}, got {stage}")
            expected += len(stage)
            stages.append(tuple(stage))
        replicas = []
        for s, stage in enumerate(tmps):
            field_ = f"{where}.tmp_per_stage[{s}]"
            count = dp[s]
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise r.fail(f"{where}.dp[{s}]", f"must be a positive integer, got {count!r}")
            if not isinstance(stage, list) or len(stage) != count:
                raise r.fail(field_, f"must list dp[{s}]={count} replicas")
            reps = []
            for j, rep in enumerate(stage):
                f = f"{field_}[{j}]"
                if not (isinstance(rep, list) and len(rep) == 2 and isinstance(rep[0], list)):
                    raise r.fail(f, "must be [[[GPU type, GPUs per node, zone]], TP degree]")
                if len(rep[0]) != 1:
                    raise r.fail(f, f"a replica over {len(rep[0])} nodes is outside the model (one node per replica)")
                node = rep[0][0]
                ok = (isinstance(node, list) and len(node) == 3 and isinstance(node[0], str)
                      and isinstance(node[1], int) and not isinstance(node[1], bool) and node[1] >= 1
                      and isinstance(node[2], str))
                if not ok:
                    raise r.fail(f"{f}[0][0]", f"must be [GPU type, GPUs per node, zone], got {node!r}")
                tp = rep[1]
                if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
                    raise r.fail(f"{f}[1]", f"TP degree must be a positive integer, got {tp!r}")
                if tp > node[1]:
                    raise r.fail(f"{f}[1]", f"TP degree {tp} exceeds the node's {node[1]} GPUs")
                reps.append(SailorReplica(node[0], node[1], node[2], tp))
            replicas.append(tuple(reps))
        pipelines.append(SailorPipeline(tuple(stages), tuple(replicas)))
    measured = SailorMeasurement(
        _optional_measure(r, data, "real"), _optional_measure(r, data, "red_grads"), _optional_measure(r, data, "max_mem"))
    return SailorPlan(tuple(pipelines), mbs, gbs, measured, str(path))
