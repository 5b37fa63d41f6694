"""A CPU device fitted to measured profiles: per-operator-class efficiencies and per-operator overhead.

The roofline of :mod:`pipesim.hardware.costs` predicts a node of ``F`` FLOPs
moving ``B`` bytes in ``t = o + max(F / R_c, B / M_c)``, where ``o`` is the
per-operator overhead and ``R_c``, ``M_c`` the achieved FLOP rate and memory
rate of the node's operator class ``c`` (``matmul``, ``conv``,
``elementwise``…).  :func:`calibrate` fits ``o`` (one for the device) and
``R_c, M_c`` (per class) to the nodes of one or more profiles written by
``pipesim profile`` by least squares on ``log(t_pred / t_measured)`` — a grid
search over ``o`` (at most the 5th percentile of the measured node times: no
node runs faster than the overhead) and, for each class, over ``(R_c, M_c)``:
the objective is the per-node error people read, and the grid cannot diverge.

The device written has ``peak_flops = max_c R_c`` and ``memory_bandwidth =
max_c M_c``, so every class's efficiency (``R_c / peak``, ``M_c / bandwidth``)
is a fraction at most 1 (``efficiency_by_class`` in the YAML); a class no
profile contains takes the rates of its kin (:data:`KIN`: a convolution runs
like a matmul, a softmax like a normalisation…), else the median; a class
with fewer than :data:`MIN_NODES` nodes is fitted together with its kin.  Nodes with neither FLOPs nor
bytes (views) are left out: the roofline gives them nothing.

Strided data movement (``Transpose``, element-wise gathers: the ``strided``
class) has its own measured bandwidth: :func:`measure_strided` times
transposes of matrices up to 32 MiB on this machine, and the class's
bandwidth is the median of those out of cache (a profile's small transposes
stay in cache and would predict a large one many times too fast).

Nodes ONNX Runtime ran as one fused node (``ort_node`` in the profile) were
timed together: they are one point of the fit (FLOPs and bytes summed, the
class of the member with the most FLOPs), never their roofline shares.

:func:`error_percentiles` gives the distribution of ``measured / predicted``
per node (p10/p50/p90, share within 2x) that ``pipesim hardware calibrate``
prints before (the profile's own roofline device) and after; with several
profiles it also fits on all but one and predicts the one left out.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipesim.errors import InputError
from pipesim.hardware.devices import CPU_KIND, Device
from pipesim.hardware.units import BANDWIDTH, FLOPS, TIME, format_quantity
from pipesim.placement.formats import load_json
from pipesim.workloads.onnx_import import OP_CLASSES

__all__ = ["Calibration", "PROBE_SHAPES", "ProfiledNode", "calibrate", "device_yaml", "error_percentiles",
           "measure_strided", "read_profiles"]

#: Where a class no profile contains takes its rates from: the kin that runs the same kind of kernel.
KIN = {
    "conv": ("matmul",), "matmul": ("conv",), "softmax": ("normalization", "elementwise"),
    "normalization": ("softmax", "elementwise"), "pool": ("reduction", "elementwise"),
    "reduction": ("pool", "elementwise"), "elementwise": ("movement",), "movement": ("elementwise", "strided"),
    "strided": ("movement", "elementwise"), "other": ("elementwise", "movement"),
}

#: Fewer nodes of a class than this and it is fitted together with its kin.
MIN_NODES = 4

_OVERHEADS = np.geomspace(2e-7, 1e-4, 40)
_RATES = np.geomspace(1e8, 2e12, 60)


@dataclass(frozen=True)
class ProfiledNode:
    source: str
    name: str
    op_class: str
    flops: float
    bytes: float
    measured: float  # seconds
    roofline: float  # seconds, the profile's own roofline device


def read_profiles(paths: list[str | Path]) -> list[ProfiledNode]:
    """The nodes of profiled workload files (``pipesim profile -o``); :class:`InputError` for other files."""
    nodes = []
    for path in paths:
        data = load_json(path)  # the one JSON reader: missing, broken or hostile files are one line
        if not isinstance(data, dict) or not isinstance(data.get("profile"), dict):
            raise InputError(path, "profile", "is missing: pass workloads written by 'pipesim profile'")
        fused: dict[str, list[ProfiledNode]] = {}
        for i, node in enumerate(data.get("nodes", [])):
            info = node.get("profile")
            if not isinstance(info, dict):
                raise InputError(path, f"nodes[{i}].profile", "is missing")
            one = ProfiledNode(str(path), str(node.get("name", i)), str(info.get("op_class") or "other"),
                               float(info["flops"]), float(info["bytes"]), float(node["time"]["cpu"]) * 1e-3,
                               float((node.get("roofline") or {}).get("cpu") or 0.0) * 1e-3)
            if info.get("ort_node"):
                fused.setdefault(info["ort_node"], []).append(one)
            else:
                nodes.append(one)
        # nodes ONNX Runtime ran as one fused node were timed together (their shares are the roofline's, not
        # measurements): one point of the fit, with their summed FLOPs and bytes, of its main member's class
        for name, members in fused.items():
            if len(members) == 1:
                nodes.append(members[0])
                continue
            main = max(members, key=lambda n: (n.flops, n.roofline))  # a MatMul with its fused Add is a matmul
            nodes.append(ProfiledNode(str(path), name, main.op_class, sum(n.flops for n in members),
                                      sum(n.bytes for n in members), sum(n.measured for n in members),
                                      sum(n.roofline for n in members)))
    return nodes


@dataclass
class Calibration:
    overhead: float
    rates: dict[str, tuple[float, float]]  # op class -> (FLOP/s, bytes/s)

    def rate(self, op_class: str) -> tuple[float, float]:
        """The fitted rates of ``op_class``, else of its nearest fitted kin (:data:`KIN`), else the median."""
        for c in (op_class, *KIN.get(op_class, ())):
            if c in self.rates:
                return self.rates[c]
        return self._default()

    def predict(self, node: ProfiledNode) -> float:
        if node.flops == 0 and node.bytes == 0:
            return 0.0
        r, m = self.rate(node.op_class)
        return self.overhead + max(node.flops / r, node.bytes / m)

    def _default(self) -> tuple[float, float]:
        rates = [r for r, _ in self.rates.values() if math.isfinite(r)] or [1e10]
        bandwidths = [m for _, m in self.rates.values() if math.isfinite(m)] or [1e10]
        return float(np.median(rates)), float(np.median(bandwidths))

    def device(self, name: str, dtype: str = "fp32", description: str = "") -> Device:
        """The fitted device (efficiencies as fractions of the best class's rates)."""
        peak = max((r for r, _ in self.rates.values() if math.isfinite(r)), default=1e12)
        bandwidth = max((m for _, m in self.rates.values() if math.isfinite(m)), default=1e12)
        per_class = {c: (min(1.0, r / peak), min(1.0, m / bandwidth))
                     for c, (r, m) in ((c, self.rate(c)) for c in sorted(set(OP_CLASSES) | set(self.rates)))}
        default = self._default()
        peaks = {dtype: peak} if dtype == "fp32" else {dtype: peak, "fp32": peak}
        return Device(name, CPU_KIND, peaks, bandwidth, compute_efficiency=min(1.0, default[0] / peak),
                      memory_efficiency=min(1.0, default[1] / bandwidth), launch_overhead=self.overhead,
                      description=description, class_efficiency=per_class)


#: The source named by the nodes of :func:`measure_strided`.
PROBE_SOURCE = "strided probe"

#: Bytes (read + written) from which a probe's transpose is out of cache (8 MiB: past a core's L2).
PROBE_OUT_OF_CACHE = 8 * 2**20

#: Probe shapes of :func:`measure_strided`: (rows, columns) of fp32 matrices from 1 MiB to 32 MiB, beyond the caches.
PROBE_SHAPES = ((512, 512), (1024, 1024), (2048, 1024), (4096, 2048))


def measure_strided(*, runs: int = 7, core: int | None = None) -> list[ProfiledNode]:
    """Strided data movement measured with ONNX Runtime: a ``Transpose`` of each probe shape.

    A profile holds the transposes its model has, often small ones (a BERT's
    per-head transposes stay in cache) that say little about a large one
    (GPT-2's 154 MB embedding transposed on every forward: 132 ms measured,
    costed as a 10 ms copy before this class existed).  The probes time,
    pinned to one core, one thread, the median of ``runs`` transposes of a
    ``rows x columns`` fp32 matrix for each of :data:`PROBE_SHAPES`, costed
    the way the importer costs a ``Transpose`` (its input read and output
    written), so :func:`calibrate` fits the ``strided`` class from them and
    the profiles' own transposes.
    """
    import os
    import time

    from onnx import TensorProto, helper

    from pipesim.runtime.session import make_session, pin_to_core, usable_cores

    allowed = usable_cores()
    out = []
    try:
        pin_to_core(allowed[0] if core is None else core)
        rng = np.random.default_rng(0)
        for rows, cols in PROBE_SHAPES:
            x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, cols])
            probes = {"Transpose": ([helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0])], [x],
                                    {"x": rng.random((rows, cols), np.float32)}, 2 * rows * cols * 4.0)}
            for op, (nodes, inputs, feeds, nbytes) in probes.items():
                y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
                model = helper.make_model(helper.make_graph(nodes, "probe", inputs, [y]),
                                          opset_imports=[helper.make_opsetid("", 17)])
                model.ir_version = 8
                session = make_session(model)
                session.run(None, feeds)
                times = []
                for _ in range(runs):
                    t = time.perf_counter()
                    session.run(None, feeds)
                    times.append(time.perf_counter() - t)
                out.append(ProfiledNode(PROBE_SOURCE, f"{op} {rows}x{cols}", "strided", 0.0, nbytes,
                                        float(np.median(times)), 0.0))
    finally:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(allowed))
    return out


def _usable(nodes: list[ProfiledNode]) -> list[ProfiledNode]:
    return [n for n in nodes if (n.flops > 0 or n.bytes > 0) and n.measured > 0]


def calibrate(nodes: list[ProfiledNode]) -> Calibration:
    """Fit the overhead and per-class rates (see the module docstring)."""
    nodes = _usable(nodes)
    if not nodes:
        raise InputError(None, "profiles", "have no node with FLOPs or bytes and a measured time")
    probes = [n for n in nodes if n.source == PROBE_SOURCE]
    counts = Counter(n.op_class for n in nodes)
    # a class seen in fewer than MIN_NODES nodes (ResNet's one Gemm) is fitted with its kin (the convolutions)
    fit_as = {c: next((k for k in KIN.get(c, ()) if counts[k] >= MIN_NODES), c) if counts[c] < MIN_NODES else c
              for c in counts}
    nodes = [replace(n, op_class=fit_as[n.op_class]) for n in nodes]
    classes = sorted(set(fit_as.values()))
    best: tuple[float, Calibration] | None = None
    # no node runs faster than the overhead: a model of large kernels alone cannot push it up
    ceiling = float(np.percentile([n.measured for n in nodes], 5))
    for o in [x for x in _OVERHEADS if x <= ceiling] or [_OVERHEADS[0]]:
        total, rates = 0.0, {}
        for c in classes:
            group = [n for n in nodes if n.op_class == c]
            f = np.array([n.flops for n in group])[None, None, :]
            b = np.array([n.bytes for n in group])[None, None, :]
            t = np.log(np.array([n.measured for n in group]))[None, None, :]
            pred = o + np.maximum(f / _RATES[:, None, None], b / _RATES[None, :, None])
            err = ((np.log(pred) - t) ** 2).sum(axis=2)
            i, j = np.unravel_index(int(np.argmin(err)), err.shape)
            total += float(err[i, j])
            # a class without FLOPs (data movement) says nothing about its FLOP rate
            rates[c] = (float(_RATES[i]) if f.any() else math.inf, float(_RATES[j]) if b.any() else math.inf)
        if best is None or total < best[0]:
            best = (total, Calibration(float(o), rates))
    fitted = best[1]
    fitted.rates.update({c: fitted.rates[g] for c, g in fit_as.items() if c != g})
    # the strided class's bandwidth is what the probes measured beyond the caches: the large transposes are the
    # ones that cost (small ones are overhead-bound, and would otherwise pull the fit to cache speed)
    large = [n.bytes / max(n.measured - fitted.overhead, 1e-12) for n in probes if n.bytes >= PROBE_OUT_OF_CACHE]
    if large:
        fitted.rates["strided"] = (math.inf, float(np.median(large)))
    return fitted


def error_percentiles(measured: list[float], predicted: list[float]) -> dict:
    """``measured / predicted`` per node: p10, p50, p90 and the share within 2x.

    Examples
    --------
    >>> error_percentiles([1, 2, 4], [1, 1, 1])["p50"]
    2.0
    """
    pairs = [(m, p) for m, p in zip(measured, predicted) if m > 0 and p > 0]
    if not pairs:
        return {"nodes": 0, "p10": math.nan, "p50": math.nan, "p90": math.nan, "within_2x": math.nan}
    ratio = np.array([m / p for m, p in pairs])
    return {
        "nodes": len(ratio),
        "p10": float(np.percentile(ratio, 10)),
        "p50": float(np.percentile(ratio, 50)),
        "p90": float(np.percentile(ratio, 90)),
        "within_2x": float(np.mean((ratio >= 0.5) & (ratio <= 2.0))),
    }


def report(nodes: list[ProfiledNode]) -> dict:
    """Errors before (profile's roofline) and after (fitted), in-sample and leave-one-profile-out."""
    nodes = _usable(nodes)
    fit = calibrate(nodes)
    out = {
        "before": error_percentiles([n.measured for n in nodes], [n.roofline for n in nodes]),
        "after": error_percentiles([n.measured for n in nodes], [fit.predict(n) for n in nodes]),
    }
    sources = sorted({n.source for n in nodes if n.source != PROBE_SOURCE})  # the probes are in every fit
    if len(sources) > 1:
        held = []
        for s in sources:
            other = calibrate([n for n in nodes if n.source != s])
            held.extend((n.measured, other.predict(n)) for n in nodes if n.source == s)
        out["held_out"] = error_percentiles([m for m, _ in held], [p for _, p in held])
    return out


def _num(x: float) -> str:
    """A number YAML reads as a float (PyYAML needs a dot in ``5.0e-05``)."""
    text = f"{x:.4g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if exponent and "." not in mantissa else text


def device_yaml(device: Device, sources: list[str], summary: dict) -> str:
    """The device as a hardware YAML file (``--hardware``-usable through a system that names it)."""
    lines = [
        f"# Fitted by 'pipesim hardware calibrate' from: {', '.join(sources)}",
        f"# per-node measured/predicted before: p10/p50/p90 = {summary['before']['p10']:.2f}/"
        f"{summary['before']['p50']:.2f}/{summary['before']['p90']:.2f}; after: {summary['after']['p10']:.2f}/"
        f"{summary['after']['p50']:.2f}/{summary['after']['p90']:.2f}",
        "devices:",
        f"  {device.name}:",
        f"    description: {json.dumps(device.description or 'a CPU core fitted to ONNX Runtime profiles')}",
        "    kind: cpu",
        "    peak_flops:",
        *(f"      {t}: {format_quantity(v, FLOPS).replace(' ', '')}" for t, v in device.peak_flops.items()),
        f"    memory_bandwidth: {format_quantity(device.memory_bandwidth, BANDWIDTH).replace(' ', '')}",
        "    memory: unlimited",
        f"    compute_efficiency: {_num(device.compute_efficiency)}",
        f"    memory_efficiency: {_num(device.memory_efficiency)}",
        f"    launch_overhead: {format_quantity(device.launch_overhead, TIME).replace(' ', '')}",
        "    efficiency_by_class:",
        *(f"      {c}: {{compute: {_num(ce)}, memory: {_num(me)}}}" for c, (ce, me) in sorted(device.class_efficiency.items())),
        "systems:",
        f"  {device.name}-cores:",
        f"    description: this machine's cores with the fitted {device.name}",
        "    classes:",
        f"      - {{name: cpu, device: {device.name}, count: 2}}",
    ]
    return "\n".join(lines) + "\n"
