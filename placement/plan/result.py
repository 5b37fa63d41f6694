"""A hybrid-parallel plan: pipeline stages, each replicated and split across devices (docs/model.md §10).

A :class:`Plan` lists its stages in pipeline order.  Each :class:`PlanStage`
holds a set of layers, a tensor-parallel degree ``t``, a data-parallel degree
``d`` (it occupies ``t·d`` devices: ``d`` replicas of ``t`` devices each), the
configuration chosen for each layer, and — once evaluated by
:func:`pipesim.placement.plan.evaluate.evaluate_plan`, the one cost model for
plans — its time breakdown per sample and its memory per device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipesim.placement.display import Display, number, size

__all__ = ["FEASIBLE", "INFEASIBLE", "OPTIMAL", "Plan", "PlanStage", "read_plan"]

OPTIMAL = "optimal"
FEASIBLE = "feasible"
INFEASIBLE = "infeasible"


@dataclass(frozen=True)
class PlanStage:
    """One pipeline stage: ``nodes`` on ``tensor_parallel × data_parallel`` devices.

    ``devices`` are the device ids, replica by replica (``t`` consecutive ids
    per replica).  ``compute``, ``communication`` (pipeline transfers) and
    ``resync`` (data-parallel gradient exchange) are seconds per sample;
    ``time`` is their sum; ``memory`` is bytes per device with ``in_flight``
    microbatches stashed.  ``cluster_nodes`` (optional) names the cluster
    node of each device.

    Under the ``flush`` objective (:mod:`pipesim.placement.plan.flush`)
    ``compute`` and ``communication`` are seconds per microbatch on one
    replica, ``resync`` is 0, ``allreduce`` is the stage's gradient
    all-reduce per iteration, and ``link_in`` / ``link_out`` say which link
    (``fabric`` or ``network``) prices the transfers from the previous stage
    and to the next one.
    """

    nodes: tuple[int, ...]
    tensor_parallel: int
    data_parallel: int
    configuration: Mapping[int, str]
    devices: tuple[int, ...] = ()
    compute: float = math.nan
    communication: float = math.nan
    resync: float = math.nan
    memory: float = math.nan
    in_flight: int = 0
    cluster_nodes: tuple[str, ...] = ()
    allreduce: float = math.nan
    link_in: str | None = None
    link_out: str | None = None
    bytes_in: float = 0.0          # flush: bytes per microbatch to and from the previous stage (both directions)
    bytes_out: float = 0.0         # flush: the same with the next stage
    gradient_bytes: float = 0.0    # flush: the bytes per device a data-parallel all-reduce moves

    @property
    def time(self) -> float:
        return self.compute + self.communication + self.resync

    @property
    def device_count(self) -> int:
        return self.tensor_parallel * self.data_parallel

    def to_dict(self) -> dict[str, Any]:
        out = {
            "nodes": list(self.nodes),
            "tensor_parallel": self.tensor_parallel,
            "data_parallel": self.data_parallel,
            "devices": list(self.devices),
            "configuration": {str(v): c for v, c in self.configuration.items()},
            "time": {
                "compute": self.compute,
                "pipeline_communication": self.communication,
                "data_parallel_resync": self.resync,
                "total": self.time,
            },
            "memory_per_device": self.memory,
            "in_flight": self.in_flight,
        }
        if not math.isnan(self.allreduce):
            out["time"]["gradient_allreduce"] = self.allreduce
        if self.link_in or self.link_out:
            out["links"] = {"in": self.link_in, "out": self.link_out}
        if self.cluster_nodes:
            out["cluster_nodes"] = list(self.cluster_nodes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanStage:
        """The stage's choices from :meth:`to_dict` output (the numbers are recomputed on evaluation)."""
        return cls(
            nodes=tuple(int(v) for v in data["nodes"]),
            tensor_parallel=int(data["tensor_parallel"]),
            data_parallel=int(data["data_parallel"]),
            configuration={int(v): str(c) for v, c in data["configuration"].items()},
            devices=tuple(int(x) for x in data.get("devices", ())),
        )


@dataclass(frozen=True, repr=False)
class Plan:
    """A plan and its evaluation.

    ``status`` is ``optimal`` (proved best for the objective), ``feasible``
    (valid, optimality not claimed) or ``infeasible`` (then ``reason`` says
    why and ``stages`` may be empty).  ``time_per_sample`` is the largest
    stage time (Piper's objective); ``iteration_time`` is set for the
    ``flush`` objective.
    """

    status: str
    stages: tuple[PlanStage, ...] = ()
    time_per_sample: float = math.inf
    devices_used: int = 0
    objective: str = "piper"
    reason: str | None = None
    iteration_time: float | None = None
    seconds: float | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.status != INFEASIBLE

    @property
    def bottleneck(self) -> PlanStage | None:
        return max(self.stages, key=lambda s: s.time, default=None)

    def display(self) -> Display:
        """The plan as a table: one row per stage (layers, ``t``, ``d``, devices, time, memory per device).

        ``repr(plan)`` is its text and Jupyter shows its HTML (``_repr_html_``).

        Examples
        --------
        >>> stage = PlanStage((0, 1), 2, 1, {0: "a", 1: "a"}, compute=0.5, communication=0.0, resync=0.0,
        ...                   memory=2**30)
        >>> print(Plan(OPTIMAL, (stage,), time_per_sample=0.5, devices_used=2).display().text())
        plan (piper): optimal, time per sample 0.5 s, 2 devices
        stage  layers  t  d  devices  time (s)  memory/device
        0      2       2  1  2        0.5       1 GiB
        """
        title = f"plan ({self.objective}): {self.status}"
        if self.iteration_time is not None:
            title += f", iteration {number(self.iteration_time)} s"
        elif math.isfinite(self.time_per_sample):
            title += f", time per sample {number(self.time_per_sample)} s"
        title += f", {self.devices_used} devices"
        rows = [(str(i), str(len(s.nodes)), str(s.tensor_parallel), str(s.data_parallel), str(s.device_count),
                 number(s.time), size(s.memory)) for i, s in enumerate(self.stages)]
        return Display(title, ("stage", "layers", "t", "d", "devices", "time (s)", "memory/device"), rows,
                       notes=[self.reason] if self.reason else [])

    def __repr__(self) -> str:
        return self.display().text()

    def _repr_html_(self) -> str:
        return self.display().html()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "objective": self.objective,
            "time_per_sample": self.time_per_sample if math.isfinite(self.time_per_sample) else None,
            "devices_used": self.devices_used,
            "stages": [s.to_dict() for s in self.stages],
        }
        if self.iteration_time is not None:
            out["iteration_time"] = self.iteration_time
        if self.reason:
            out["reason"] = self.reason
        if self.seconds is not None:
            out["seconds"] = self.seconds
        if self.stats:
            out["stats"] = dict(self.stats)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """The plan's choices from :meth:`to_dict` output (evaluate it to get its numbers)."""
        return cls(
            status=str(data.get("status", FEASIBLE)),
            stages=tuple(PlanStage.from_dict(s) for s in data.get("stages", ())),
            objective=str(data.get("objective", "piper")),
        )


def read_plan(plan: str | Path | Mapping[str, Any]) -> Plan:
    """A saved plan (a file as ``pipesim plan -o`` writes it, or its parsed JSON), its choices only.

    Raises
    ------
    InputError
        The file is missing or not JSON, or its stages lack a field; the message names the file.

    Examples
    --------
    >>> read_plan({"stages": [{"nodes": [0, 1], "tensor_parallel": 1, "data_parallel": 2,
    ...                         "configuration": {"0": "vanilla", "1": "vanilla"}}]}).stages[0].data_parallel
    2
    >>> read_plan({"stages": [{"nodes": [0]}]})
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: plan: stages[0]: missing 'tensor_parallel' (as 'pipesim plan -o' writes it)
    """
    from pipesim.errors import InputError
    from pipesim.placement.formats import load_json

    source = "plan" if isinstance(plan, Mapping) else Path(plan)
    data = plan if isinstance(plan, Mapping) else load_json(source)
    if not isinstance(data, Mapping) or not isinstance(data.get("stages", []), list):
        raise InputError(source, None, "not a plan: expected an object with a list of stages (as 'pipesim plan -o' writes it)")
    for i, stage in enumerate(data.get("stages", [])):
        try:
            PlanStage.from_dict(stage)
        except KeyError as exc:
            raise InputError(source, f"stages[{i}]", f"missing {exc} (as 'pipesim plan -o' writes it)") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise InputError(source, f"stages[{i}]", f"not a plan stage ({exc})") from None
    return Plan.from_dict(data)
