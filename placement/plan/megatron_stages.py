"""The fastest LLM training plan whose pipeline stages choose their own tensor- and data-parallel degree.

Problem: given a transformer, a homogeneous cluster and the global batch,
find, over the pipeline-wide settings of :mod:`~pipesim.placement.plan.megatron_plan`
(``p, c, v``, the microbatch of ``B`` sequences, sequence parallelism, the
distributed optimizer), the plan of least iteration time that fits memory
when each stage ``r`` runs its own tensor-parallel degree ``t_r`` on the
stage's ``GPUs/p`` GPUs — so ``d_r = GPUs/(p·c·t_r)`` replicas, each taking
``B/d_r`` sequences of every microbatch (Piper's per-stage data parallelism,
Tarnawski et al., NeurIPS 2021, §3) — and its own recomputation.
Megatron-Core cannot run such a plan; it is shown beside the runnable pick
with its gain.

Guarantee: exact for the model of :func:`pipesim.placement.plan.megatron.estimate`
(each stage priced by its :func:`~pipesim.placement.plan.megatron.stage_cost`,
the pick re-priced by ``_estimate``) over the plans whose first stage's
data-parallel reduction is the exposed one (docs/model.md §11.9 states the
bound).  Per setting, each stage keeps its least recomputation that fits per
``t`` (dominant); the objective is minimised by enumerating the first stage's
option, the largest optimizer shard and the largest stage time, every other
stage then taking its fastest allowed option.  Settings whose fastest stages
cannot beat the best so far are skipped; a time budget stops the search
cleanly.  Tested against brute force (tests/placement/test_megatron_stages.py).

Reference: docs/model.md §11.9.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

from pipesim.hardware.clusters import Cluster
from pipesim.placement.plan.megatron import (RECOMPUTE, Estimate, ParallelConfig, _estimate, end_costs, layer_cost,
                                             memory_capacity, optimizer_step, pipeline_hop, stage_cost, stage_dp,
                                             stage_layers)
from pipesim.placement.plan.megatron_layer import dp_exposed
from pipesim.placement.plan.megatron_plan import _divisors, degrees

__all__ = ["per_stage_keys", "search_per_stage"]
@dataclass(frozen=True)
class _Option:
    """One stage's choice: tensor-parallel degree ``t`` (so ``d = GPUs/(p·c·t)``) and recomputation, from
    stage ``start`` on (the memory of a middle stage falls with its index: fewer microbatches in flight)."""

    t: int
    recompute: str
    time: float
    forward: float
    shard: float
    start: int = 0
    #: what its data-parallel reduction depends on (:func:`_with_dp` prices it, after the lower bound)
    reduction: tuple = field(default=(), compare=False, repr=False)
    dp: float = 0.0


def _with_dp(options: list[_Option], node, cache: dict) -> list[_Option]:
    """The options with their stage's exposed data-parallel reduction alone (§11.5), cached: an event
    schedule of a few hundred buckets, the search's costliest piece."""
    out = []
    for o in options:
        cfg, layer, params, layers, d = o.reduction
        key = (cfg.tp, cfg.cp, cfg.mbs, cfg.sp, cfg.distributed_optimizer, params, layers, d)
        if key not in cache:
            cache[key] = dp_exposed(stage_dp(cfg, node, layer, params, layers, d)) if d * cfg.cp > 1 else 0.0
        out.append(replace(o, dp=cache[key]))
    return out


def per_stage_keys(model, cluster: Cluster, gbs: int, *, max_mbs: int = 16, max_cp: int = 32):
    """The pipeline-wide settings a per-stage plan keeps (``p, c, v``, the microbatch of ``B`` sequences,
    sequence parallelism, the distributed optimizer) with the tensor-parallel degrees each stage may take."""
    gpus, L, ts, cs = degrees(model, cluster, max_cp)
    for c in cs:
        for p in range(2, L + 1):
            if gpus % (p * c):
                continue
            per_stage = gpus // (p * c)
            tps = [t for t in ts if per_stage % t == 0]
            if not tps:
                continue
            for group in _divisors(gbs):                       # B: sequences per microbatch over a stage's replicas
                options = [t for t in tps if group % (per_stage // t) == 0 and group // (per_stage // t) <= max_mbs]
                if not options:
                    continue
                m = gbs // group
                vs = [1] + ([v for v in _divisors(L // p) if v > 1] if L % p == 0 and m % p == 0 else [])
                for v in vs:
                    for sp in ((True, False) if max(options) > 1 else (False,)):
                        for do in ((True, False) if per_stage * c > 1 else (True,)):
                            yield (p, c, v, group, sp, do), options


def _stage_options(model, cluster: Cluster, gbs: int, precision: str, key, tps, cache: dict):
    """Per stage class (first, middle, last) the options of each ``t`` with its least recomputation that fits
    (a class's list is empty when none fits it)."""
    p, c, v, group, sp, do = key
    node = cluster.nodes[0][0]
    gpus = cluster.device_count
    split = stage_layers(model.layers, p)
    m = gbs // group
    per = gpus // (p * c)
    capacity = memory_capacity(node)
    hop = None
    first, middle, last = [], [], []
    for t in tps:
        d = per // t
        cfg = ParallelConfig(tp=t, pp=p, cp=c, vp=v, mbs=group // d, gbs=gbs, precision=precision,
                             sequence_parallel=sp, distributed_optimizer=do)
        ck = (t, c, group // d, sp, precision)
        if ck not in cache:
            cache[ck] = (layer_cost(model, cfg, node), end_costs(model, cfg, node.device))
        layer, ends = cache[ck]
        if hop is None:
            hop = pipeline_hop(model, cfg, node, gpus)

        def cost(i, rc):
            return stage_cost(model, cfg, node, layer, ends, i, split, m, d, rc, hop)

        shard_div = d * c if do else 1
        for i, bucket in ((0, first), (p - 1, last)):
            for rc in RECOMPUTE:
                st = cost(i, rc)
                if st.memory <= capacity:
                    bucket.append(_Option(t, rc, st.time, st.forward, st.params / shard_div, i,
                                          (cfg, layer, st.params, split[i], d)))
                    break
        if p > 2:
            # memory falls with the stage index (1F1B holds p − i microbatches): the first middle stage each
            # recomputation fits, by bisection
            lo_prev = p - 1
            for rc in RECOMPUTE:
                lo, hi = 1, p - 1                   # hi: none of 1..p−2 fits
                while lo < hi:
                    mid = (lo + hi) // 2
                    if cost(mid, rc).memory <= capacity:
                        hi = mid
                    else:
                        lo = mid + 1
                if lo < lo_prev:
                    st = cost(lo, rc)
                    middle.append(_Option(t, rc, st.time, st.forward, st.params / shard_div, lo,
                                          (cfg, layer, st.params, split[1], d)))
                    lo_prev = lo
                if lo == 1:
                    break
    return first, middle, last


def _best_assignment(first, middle, last, p: int, m: int, v: int, opt_time, fwd_lb):
    """The least ``m·T_max + (Σ T − T_max)/v + dp_0 + optimizer(max shard)`` over one option per stage.

    Exact by enumeration of the first stage's option, the largest shard and the largest stage time: given
    those bounds every other stage takes its fastest allowed option (the objective grows with each stage's
    time, the largest, and the largest shard).  A later stage's option is allowed only where its reduction
    is hidden by the drain — ``dp_r − Σ_{q<r} fwd_q^min ≤ dp_0`` (``fwd_lb[r]`` the sum) — so the first stage's
    reduction is the exposed one.
    """
    best = None
    mids = sorted(middle, key=lambda o: o.time)
    shards = sorted({o.shard for o in first + middle + last})
    taus = sorted({o.time for o in first + middle + last})
    for o0 in first:
        lasts = [o for o in last if o.dp - fwd_lb[p - 1] <= o0.dp]
        # a middle option is allowed from the first stage where its memory fits and its reduction is hidden
        allowed = []
        for o in mids:
            start = o.start
            while start <= p - 2 and o.dp - fwd_lb[start] > o0.dp:
                start += 1
            if start <= p - 2:
                allowed.append((o, start))
        for omega in shards:
            if omega < o0.shard:
                continue
            opt = opt_time(omega)
            for tau in taus:
                if tau < o0.time:
                    continue
                ol = min((o for o in lasts if o.time <= tau and o.shard <= omega), key=lambda o: o.time, default=None)
                if ol is None:
                    continue
                chosen = []
                total, top, cover = o0.time + ol.time, max(o0.time, ol.time), p - 1
                for o, start in allowed:            # fastest first: each takes the stages it reaches first
                    if o.time > tau or o.shard > omega or start >= cover:
                        continue
                    total += (cover - start) * o.time
                    top = max(top, o.time)
                    chosen.append((o, start, cover))
                    cover = start
                    if cover <= 1:
                        break
                if p > 2 and cover > 1:
                    continue
                value = m * top + (total - top) / v + o0.dp + opt
                if best is None or value < best[0]:
                    best = (value, o0, ol, tuple(chosen))
    return best


def search_per_stage(model, cluster: Cluster, gbs: int, precision: str = "bf16", *, max_mbs: int = 16,
                     max_cp: int = 32, budget: float = 60.0,
                     incumbent: float = math.inf) -> tuple[Estimate | None, int, bool]:
    """The fastest plan whose stages each choose their tensor- and data-parallel degree and recomputation.

    Returns ``(estimate, settings searched, stopped at the budget)``; ``estimate`` is ``None`` when no plan
    fits or none beats ``incumbent`` seconds.  See docs/model.md §11.9 for the model and the search's bound.
    """
    start = time.perf_counter()
    node = cluster.nodes[0][0]
    cache: dict = {}
    dp_cache: dict = {}
    best = None
    searched = 0
    for key, tps in per_stage_keys(model, cluster, gbs, max_mbs=max_mbs, max_cp=max_cp):
        if time.perf_counter() - start > budget:
            return _evaluate(model, cluster, gbs, precision, best), searched, True
        searched += 1
        bound = min(incumbent, best[0] if best else math.inf)
        found = _search_key(model, cluster, gbs, precision, key, tps, cache, dp_cache, bound)
        if found is not None and found[0] < bound:
            best = (found[0], key, found[1:])
    return _evaluate(model, cluster, gbs, precision, best), searched, False


def _search_key(model, cluster: Cluster, gbs: int, precision: str, key: tuple, tps: list[int], cache: dict,
                dp_cache: dict, bound: float = math.inf):
    """The best assignment of one pipeline-wide setting ``key`` (:func:`_best_assignment`), or ``None`` when
    some stage has no option that fits or no assignment can beat ``bound`` seconds."""
    p, c, v, group, sp, do = key
    m = gbs // group
    node = cluster.nodes[0][0]
    first, middle, last = _stage_options(model, cluster, gbs, precision, key, tps, cache)
    if not first or not last or (p > 2 and not middle):
        return None
    # a lower bound on every assignment: each stage at its fastest
    tf, tl = min(o.time for o in first), min(o.time for o in last)
    tm = min((o.time for o in middle), default=0.0)
    top = max(tf, tl, tm)
    if m * top + (tf + (p - 2) * tm + tl - top) / v >= bound:
        return None
    first, middle, last = (_with_dp(x, node, dp_cache) for x in (first, middle, last))
    ff = min(o.forward for o in first)
    fm = min((o.forward for o in middle), default=0.0)
    fwd_lb = [0.0] + [ff + (r - 1) * fm for r in range(1, p)]
    return _best_assignment(first, middle, last, p, m, v, lambda shard: optimizer_step(shard, node), fwd_lb)


def _evaluate(model, cluster: Cluster, gbs: int, precision: str, best) -> Estimate | None:
    """The search's pick priced by :func:`~pipesim.placement.plan.megatron._estimate` (the one cost model)."""
    if best is None:
        return None
    value, (p, c, v, group, sp, do), (o0, ol, chosen) = best
    tps, rcs = [o0.t] + [0] * (p - 2) + [ol.t], [o0.recompute] + [""] * (p - 2) + [ol.recompute]
    for o, lo, hi in chosen:
        for i in range(lo, hi):
            tps[i], rcs[i] = o.t, o.recompute
    per = cluster.device_count // (p * c)
    cfg = ParallelConfig(tp=tps[0], pp=p, cp=c, vp=v, mbs=group // (per // tps[0]), gbs=gbs, precision=precision,
                         sequence_parallel=sp, distributed_optimizer=do)
    est = _estimate(model, cfg, cluster, tuple(rcs), tuple(tps))
    # the search's objective is the estimate's (an assertion of the one model, tested)
    assert est.fits and abs(est.iteration_time - value) <= 1e-9 * value, (est.iteration_time, value)
    return est
