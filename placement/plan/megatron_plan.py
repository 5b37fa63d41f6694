"""The fastest Megatron-Core configuration of an LLM on a cluster that fits memory.

Problem: given a transformer, a homogeneous cluster (all of whose GPUs
train) and the global batch (a training hyper-parameter: fixed), choose the
tensor, pipeline, context and virtual-pipeline degrees, the microbatch size,
recomputation, sequence parallelism and the distributed optimizer for the
least iteration time of :func:`pipesim.placement.plan.megatron.estimate`
among the configurations that fit in memory.

Guarantee: exact for that model.  The space is discrete and small, and is
enumerated whole: ``t`` divides a node's GPUs and the heads; ``c`` a power of
two with ``2c`` dividing the sequence; ``p`` from 1 to the layers (Megatron's
uneven first/last stages when ``p`` does not divide them); ``t·p·c`` divides
the GPUs, ``d = GPUs/(t·p·c)``, ``mbs·d`` divides the global batch; ``v > 1``
when ``p·v`` divides the layers and ``p`` the microbatches; recomputation
none / selective / full; sequence parallelism on/off (``t > 1``); the
distributed optimizer on/off.  Every plan is one Megatron-Core can run: one
``t, c, d, v`` for every stage.  Nothing is pruned: every candidate is priced
with each recomputation (settings that rarely win, such as SP or the
distributed optimizer off, are priced too).  With ``per_stage=True`` the
plan whose stages choose their own degrees and recomputation is searched too
(:mod:`pipesim.placement.plan.megatron_stages`).

Tested against an independent brute force (tests/placement/test_megatron_plan.py).
Reference: docs/model.md §11.9.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from pipesim.errors import InfeasibleError, InputError
from pipesim.hardware.clusters import Cluster
from pipesim.placement.plan.megatron import (RECOMPUTE, Estimate, ParallelConfig, _estimate, stage_layers,
                                             tensor_parallel_degrees)

__all__ = ["MegatronPlan", "candidates", "plan_megatron"]


@dataclass(frozen=True)
class MegatronPlan:
    """The planner's pick, how many configurations it priced, how many fit, and its time."""

    best: Estimate
    searched: int
    fitting: int
    seconds: float
    reference: Estimate | None = None
    notes: tuple[str, ...] = field(default=())
    #: with ``per_stage=True``: the best plan whose stages choose their own tensor- and data-parallel degree
    #: and recomputation (Megatron-Core cannot run it unless ``per_stage.runnable``); the pick itself when none
    #: is faster
    per_stage: Estimate | None = None
    #: pipeline-wide settings (p, c, v, microbatch, SP, distributed optimizer) the per-stage search covered
    per_stage_searched: int = 0
    #: seconds the per-stage search took (part of ``seconds``)
    per_stage_seconds: float = 0.0

    @property
    def iteration_time(self) -> float:
        return self.best.iteration_time

    @property
    def memory_per_gpu(self) -> float:
        return self.best.memory_per_gpu

    def stages(self) -> list[dict[str, Any]]:
        """Per pipeline stage: its layers and degrees (the same t, c, v, d on every stage of a runnable pick; a
        per-stage plan's own t, d, microbatch and recomputation when no runnable configuration fits)."""
        e = self.best
        c = e.config
        split = stage_layers(e.model.layers, c.pp)

        def each(per_stage, uniform):  # a per-stage plan's own values, else the one value of every stage
            return per_stage or [uniform] * len(split)

        return [{"stage": i, "layers": n, "t": t, "c": c.cp, "v": c.vp, "d": d, "mbs": mbs, "recompute": recompute,
                 "sequence_parallel": c.sp, "distributed_optimizer": c.distributed_optimizer}
                for i, (n, t, d, mbs, recompute) in enumerate(zip(split, each(e.stage_tp, c.tp), each(e.stage_dp, e.dp),
                                                                   each(e.stage_mbs, c.mbs),
                                                                   each(e.stage_recompute, e.recompute)))]

    def to_dict(self) -> dict[str, Any]:
        out = {"objective": "megatron", "iteration_time": self.iteration_time, "memory_per_gpu": self.memory_per_gpu,
               "fits": self.best.fits, "runnable": self.best.runnable, "stages": self.stages(),
               "estimate": self.best.to_dict(),
               "searched": self.searched, "fitting": self.fitting, "seconds": self.seconds,
               "notes": list(self.notes)}
        if self.per_stage is not None:
            ps = self.per_stage.to_dict()
            out["per_stage"] = {"iteration_time": self.per_stage.iteration_time,
                                "memory_per_gpu": self.per_stage.memory_per_gpu,
                                "fits": self.per_stage.fits,
                                "runnable": self.per_stage.runnable,
                                "stage_recompute": list(self.per_stage.stage_recompute),
                                "stages": [{k: st[k] for k in ("stage", "layers", "t", "d", "mbs", "recompute")}
                                           for st in ps["stages"]],
                                "config": ps["config"],
                                "gain": self.iteration_time / self.per_stage.iteration_time - 1,
                                "searched": self.per_stage_searched, "seconds": self.per_stage_seconds}
        if self.reference is not None:
            out["reference"] = {"iteration_time": self.reference.iteration_time, "fits": self.reference.fits,
                                "config": self.reference.to_dict()["config"],
                                "speedup": self.reference.iteration_time / self.iteration_time}
        return out


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def degrees(model, cluster: Cluster, max_cp: int = 32) -> tuple[int, int, list[int], list[int]]:
    """The GPUs, the layers, the tensor-parallel degrees and the context-parallel degrees the planners try."""
    gpus = cluster.device_count
    cs = [c for c in (1, 2, 4, 8, 16, 32, 64) if c <= max_cp and model.seq % (2 * c) == 0 and c <= gpus]
    return gpus, model.layers, tensor_parallel_degrees(model, cluster.nodes[0][0].devices), cs


def candidates(model, cluster: Cluster, gbs: int, precision: str = "bf16", *, max_mbs: int = 16,
               max_cp: int = 32):
    """Every Megatron-Core configuration of the module docstring (recomputation left to the caller)."""
    gpus, L, ts, cs = degrees(model, cluster, max_cp)
    for t in ts:
        for c in cs:
            if gpus % (t * c):
                continue
            for p in range(1, L + 1):
                if gpus % (t * c * p):
                    continue
                d = gpus // (t * c * p)
                if gbs % d:
                    continue
                vs = [1] + ([v for v in _divisors(L // p) if v > 1] if p > 1 and L % p == 0 else [])
                for mbs in _divisors(gbs // d):
                    if mbs > max_mbs:
                        break
                    m = gbs // (mbs * d)
                    for v in vs:
                        if v > 1 and m % p:
                            continue
                        for sp in ((True, False) if t > 1 else (False,)):
                            for do in ((True, False) if d * c > 1 else (True,)):
                                yield ParallelConfig(tp=t, pp=p, cp=c, vp=v, mbs=mbs, gbs=gbs, precision=precision,
                                                     sequence_parallel=sp, distributed_optimizer=do)


def plan_megatron(model, cluster: Cluster, gbs: int, precision: str = "bf16", *,
                  reference: ParallelConfig | None = None, max_mbs: int = 16,
                  per_stage: bool = False, per_stage_budget: float = 60.0) -> MegatronPlan:
    """The least-iteration-time configuration that fits (see the module docstring).

    Parameters
    ----------
    model : TransformerConfig
    cluster : Cluster
        Homogeneous; every GPU trains.
    gbs : int
        Global batch in sequences (fixed).
    precision : {"bf16", "fp16", "fp8"}
    reference : ParallelConfig, optional
        A configuration to compare against (e.g. a published one); reported with the speed-up.
    max_mbs : int
        Largest microbatch size tried.
    per_stage : bool
        Also find the best plan whose stages choose their own tensor- and data-parallel degree and
        recomputation (:func:`search_per_stage`; the first stage holds the most activations, the last the
        fewest); Megatron-Core applies one setting to all stages, so this is shown beside the runnable pick
        with its gain.
    per_stage_budget : float
        Seconds the per-stage search may take; it stops there (with a note) at the best plan so far.  When no
        runnable configuration fits, the per-stage search still runs and its plan is the pick (``fitting == 0``,
        ``best.runnable`` false, a note says so; docs/model.md §11.9).

    Raises
    ------
    InfeasibleError
        No configuration fits in memory (with ``per_stage``: nor any per-stage plan).

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> from pipesim.workloads.llms import preset
    >>> from pipesim.placement.plan.megatron import with_nodes
    >>> r = plan_megatron(preset("llama3.1-8b"), with_nodes(load_cluster("dgx-h100x16"), 1), gbs=128)
    >>> r.best.fits, r.best.gpus
    (True, 8)
    """
    if not cluster.homogeneous:
        raise InputError(None, "hardware", f"{cluster.name} mixes node types: plan on one node type's part")
    if isinstance(gbs, bool) or not isinstance(gbs, int) or gbs < 1:
        raise InputError(None, "--gbs", f"must be a positive integer, got {gbs!r}")
    if isinstance(per_stage_budget, bool) or not isinstance(per_stage_budget, (int, float)) \
            or not per_stage_budget >= 0:
        raise InputError(None, "per_stage_budget", f"must be a non-negative number of seconds, got {per_stage_budget!r}")
    start = time.perf_counter()
    best: Estimate | None = None
    searched = fitting = 0
    for config in candidates(model, cluster, gbs, precision, max_mbs=max_mbs):
        for recompute in RECOMPUTE:
            try:
                est = _estimate(model, config, cluster, recompute)
            except InputError:
                break
            searched += 1
            if not est.fits:
                continue           # less recomputation needs more memory: try the next option up
            fitting += 1
            if best is None or est.iteration_time < best.iteration_time:
                best = est
    infeasible = (f"no configuration of {getattr(model, 'layers', '?')} layers fits the "
                  f"{cluster.device_count} GPUs' memory at global batch {gbs} ({searched} tried)")
    if best is not None:
        best = replace(best, config=replace(best.config, recompute=best.recompute))
    elif not per_stage:
        raise InfeasibleError(infeasible)
    notes = []
    searched_at = time.perf_counter()
    mixed, settings = None, 0
    if per_stage:
        from pipesim.placement.plan.megatron_stages import search_per_stage

        # with no runnable configuration that fits, the per-stage search still runs (each stage may fit with a
        # degree and recomputation of its own where no one setting fits them all): its plan is then the answer
        incumbent = best.iteration_time if best is not None else float("inf")
        mixed, settings, stopped = search_per_stage(model, cluster, gbs, precision, max_mbs=max_mbs,
                                                    budget=per_stage_budget, incumbent=incumbent)
        if stopped:
            notes.append(f"the per-stage search stopped at its {per_stage_budget:g} s budget after {settings} "
                         "pipeline settings: its plan is the best of those")
        if best is None:
            if mixed is None:
                raise InfeasibleError(f"{infeasible}, nor does any plan whose stages take their own degrees and "
                                      f"recomputation ({settings} pipeline settings"
                                      f"{', stopped at the per-stage budget' if stopped else ''})")
            notes.insert(0, "no configuration Megatron-Core can run fits: this is the fastest plan whose stages "
                            "take their own tensor-parallel degree and recomputation"
                            + ("" if mixed.runnable else ", which Megatron-Core cannot run"))
            best = mixed
        elif mixed is None:
            mixed = best           # no per-stage plan beats the runnable pick: it is its own best
    per_stage_seconds = time.perf_counter() - searched_at
    ref = None
    if reference is not None:
        from pipesim.placement.plan.megatron import estimate

        ref = estimate(model, cluster, reference)
        if ref.fits and ref.iteration_time < best.iteration_time * (1 - 1e-9):
            notes.append("the reference is faster than the search's pick: a bug")  # never expected (tested)
    end = time.perf_counter()
    return MegatronPlan(best, searched, fitting, end - start, ref, tuple(notes), mixed, settings, per_stage_seconds)

