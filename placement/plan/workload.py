"""A workload for hybrid-parallel planning (docs/model.md §10; Tarnawski et al., NeurIPS 2021, §3).

Problem: describe a DNN as a DAG of layers where each layer can run at several
tensor-parallel degrees ``t`` and, for each ``t``, in several *configurations*
(e.g. ``"vanilla"`` or ``"activation recomp"``), together with the cluster it
is planned for: ``devices`` K accelerators of ``memory`` M bytes each, one
``bandwidth`` (bytes/s) from every device to the rest, and ``microbatches`` N
per batch.  This is Piper's input model; :mod:`pipesim.placement.plan.piper_format`
reads Piper's JSON into it and :mod:`pipesim.placement.plan.solve` plans on it.

A configuration of layer ``v`` on ``t`` devices has a time per sample ``p``
(forward + backward, on its ``t`` devices), parameter bytes ``w`` (what data
parallelism resynchronises), memory ``a·y + b`` per device with ``y``
microbatches in flight, and extra bytes per crossing edge: ``sync_fw[u]`` for
an edge ``u -> v`` entering the stage, ``sync_bw[x]`` for an edge ``v -> x``
leaving it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["Configuration", "Layer", "LayerEdge", "PlanningWorkload"]


@dataclass(frozen=True, slots=True)
class Configuration:
    """One way to run a layer on ``t`` devices (Piper's "TMPC")."""

    id: str
    time: float
    parameters: float
    memory_a: float
    memory_b: float
    sync_fw: Mapping[int, float] = field(default_factory=dict)
    sync_bw: Mapping[int, float] = field(default_factory=dict)

    def memory(self, in_flight: int) -> float:
        """Bytes per device with ``in_flight`` microbatches stashed."""
        return self.memory_a * in_flight + self.memory_b

    @property
    def recomputes(self) -> bool:
        """Whether this configuration recomputes activations (named so by its id)."""
        return "recomp" in self.id.lower()


@dataclass(frozen=True, slots=True)
class Layer:
    """A node of the DAG: its configurations per tensor-parallel degree."""

    id: int
    options: Mapping[int, tuple[Configuration, ...]]
    name: str | None = None

    def configuration(self, degree: int, id: str) -> Configuration | None:
        for config in self.options.get(degree, ()):
            if config.id == id:
                return config
        return None


@dataclass(frozen=True, slots=True)
class LayerEdge:
    """A data dependency ``source -> dest`` carrying ``bytes`` per sample each way."""

    source: int
    dest: int
    bytes: float


@dataclass(frozen=True)
class PlanningWorkload:
    """Layers, edges and the cluster limits a plan must respect (docs/model.md §10)."""

    layers: tuple[Layer, ...]
    edges: tuple[LayerEdge, ...]
    devices: int
    memory: float
    bandwidth: float
    microbatches: int
    source: Path | None = None
    label: str | None = None

    def with_limits(
        self,
        *,
        devices: int | None = None,
        memory: float | None = None,
        bandwidth: float | None = None,
        microbatches: int | None = None,
    ) -> PlanningWorkload:
        """A copy with some of K, M, BW, N replaced (``None`` keeps the file's)."""
        changes = {
            key: value
            for key, value in {"devices": devices, "memory": memory, "bandwidth": bandwidth, "microbatches": microbatches}.items()
            if value is not None
        }
        return replace(self, **changes)

    def with_name(self, label: str) -> PlanningWorkload:
        """A copy named ``label``."""
        return replace(self, label=label)

    @property
    def name(self) -> str:
        return self.label or (self.source.stem if self.source else "workload")

    def layer(self, id: int) -> Layer:
        for layer in self.layers:
            if layer.id == id:
                return layer
        raise KeyError(f"no layer with id {id}")

    @property
    def degrees(self) -> tuple[int, ...]:
        """Every tensor-parallel degree some layer offers, ascending."""
        return tuple(sorted({t for layer in self.layers for t in layer.options}))
