"""One transformer layer, and the data-parallel reduction, as events on a GPU's compute and communication streams.

Problem: the Megatron-Core estimate (docs/model.md §11.4–11.5) prices the
exposed TP, CP and DP communication of a layer by closed forms over the whole
layer (``max(comm/t, comm − GEMM)``, ``step + (c−1)·max(0, step − block)``,
``max(bucket, RS − window)``).  This module runs the same pieces as events in
program order on two in-order streams per GPU — the compute stream (GEMM
chunks, attention blocks, fused element-wise kernels) and the communication
stream (each collective or ring step on its link, at the time
:mod:`pipesim.hardware.collectives` gives it) — with the dependencies
Megatron-Core and Transformer Engine give them:

* tensor parallelism with sequence parallelism and userbuffers overlap: the
  QKV and fc1 GEMMs in ``t`` chunks, chunk ``i`` waiting for the ring
  exchange of chunk ``i`` (chunk 0 is local); the projection and fc2 GEMMs in
  ``t`` chunks, each chunk's reduce-scatter after it (the last one exposed);
  backward the ring-exchanged output gradients under the projection and fc2
  data-gradient GEMMs and the bulk all-gathers / reduce-scatters beside the
  QKV and fc1 data- and weight-gradient GEMMs (the next kernel waits for both);
  without overlap each collective blocks the stream (all-reduces without
  sequence parallelism);
* context parallelism: attention in ``c`` blocks, block ``j`` waiting for the
  ring exchange of K/V block ``j`` (block 0 is local);
* data parallelism: the first stage's gradients ready bucket by bucket over
  its last backward, each bucket's reduce-scatter queued on the DP stream;
  the parameters' all-gather bucket by bucket before the forward that needs
  them.

Compute overlapped by a communication kernel is slowed by the SMs the kernel
holds (:func:`pipesim.hardware.gemm.overlap_slowdown`, per chunk).  Guarantee: a deterministic list schedule of two in-order streams (a few dozen
events), exact for the dependencies stated; the one model of exposed TP/CP/DP
communication, used by :func:`pipesim.placement.plan.megatron.estimate` and
run again, inside the pipeline, by :mod:`pipesim.simulation.megatron_sim`
(docs/model.md §11.10).  Without overlap every collective blocks the stream,
so the layer is the plain sum of its kernels and collectives.

Reference: docs/model.md §11.4, §11.5, §11.10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipesim.hardware.gemm import UB_COMM_SMS, UB_PIPELINE_SPLITS, overlap_slowdown

__all__ = ["LayerEvents", "dp_exposed", "dp_exposed_bound", "layer_events"]


class _Stream:
    """An in-order CUDA stream: an op starts when the stream is free and its inputs are ready.

    ``idle`` adds up, per cause (``"tp"``, ``"cp"``), the time the stream waited for an input from another stream.
    """

    def __init__(self) -> None:
        self.free = 0.0
        self.busy = 0.0
        self.idle = {"tp": 0.0, "cp": 0.0}

    def run(self, ready: float, duration: float, cause: str = "tp") -> float:
        if ready > self.free:
            self.idle[cause] += ready - self.free
        start = max(self.free, ready)
        self.busy += max(duration, 0.0)
        self.free = start + max(duration, 0.0)
        return self.free

    def wait(self, ready: float, cause: str) -> float:
        """The stream waits until ``ready`` (an input from another stream), charging the gap to ``cause``."""
        return self.run(ready, 0.0, cause)


@dataclass(frozen=True)
class LayerEvents:
    """One layer's forward and backward as the events run them: the compute stream's busy time (kernels, slowed
    where communication runs beside them) and its waits for TP and CP communication (the exposed part)."""

    forward: float
    backward: float
    compute_forward: float
    compute_backward: float
    tp_forward: float
    tp_backward: float
    cp_forward: float
    cp_backward: float


def _ring_gemm(comp: _Stream, comm: _Stream, now: float, gemm: float, exchange: float, parts: int, sms: int,
               name: str | None, nccl_sms: int = 0, cause: str = "tp", chunked: dict | None = None) -> float:
    """A GEMM (or attention) in ``parts`` chunks, chunk ``i ≥ 1`` waiting for its ring exchange."""
    k = UB_COMM_SMS[name][0] if name else nccl_sms
    gemm = (chunked or {}).get(name, gemm) if name else gemm
    arrived = [now] + [0.0] * (parts - 1)
    t = now
    for i in range(1, parts):
        t = comm.run(t, exchange / parts if name else exchange)
        arrived[i] = t
    end = now
    for i in range(parts):
        chunk = gemm / parts
        # the exchange of the next chunk runs beside this one
        beside = (exchange / parts if name else exchange) if i + 1 < parts else 0.0
        end = comp.run(arrived[i], chunk + overlap_slowdown(chunk, beside, k, sms), cause)
    return end


def _gemm_then_scatter(comp: _Stream, comm: _Stream, now: float, gemm: float, scatter: float, parts: int, sms: int,
                       name: str, chunked: dict | None = None) -> float:
    """A GEMM in ``parts`` chunks on the SMs the pipelined reduce-scatter leaves, each chunk's scatter after it.

    ``chunked[name]``: the chunks' time as launched on those SMs (shape-priced); else the whole GEMM's time
    slowed by the SMs it gives up."""
    k, margin = UB_COMM_SMS[name]
    if chunked and name in chunked:
        chunk = chunked[name] / parts
    else:
        chunk = gemm / parts + overlap_slowdown(gemm / parts, scatter, k, sms, margin)
    t = now
    for _ in range(parts):
        t = comp.run(t, chunk)
        comm.run(t, scatter / parts)
    return comp.wait(comm.free, "tp")          # the next kernel needs the scattered output


def _bulk(comp: _Stream, comm: _Stream, now: float, gemm: float, collective: float, sms: int, name: str) -> float:
    """A GEMM and an independent collective side by side; the next kernel waits for both."""
    k, margin = UB_COMM_SMS[name]
    end_comm = comm.run(now, collective)
    comp.run(now, gemm + overlap_slowdown(gemm, collective, k, sms, margin))
    return comp.wait(end_comm, "tp")


def _attention(comp: _Stream, cp: _Stream, now: float, attention: float, step: float, c: int, sms: int,
               nccl_sms: int) -> float:
    if c <= 1:
        return comp.run(now, attention)
    return _ring_gemm(comp, cp, now, attention, step, c, sms, None, nccl_sms, cause="cp")


def layer_events(ops: dict) -> LayerEvents:
    """Run one layer's forward and backward (the pieces of ``Estimate.layer_ops``) as events.

    Examples
    --------
    >>> ops = {"gemms": [[1.0, 1.0, 1.0]] * 4, "attention_forward": 1.0, "attention_backward": 2.5,
    ...        "elementwise_forward": 0.2, "elementwise_backward": 0.4, "t": 1, "c": 1, "sp": False,
    ...        "tp_overlap": False, "sms": 132, "nccl_sms": 24, "all_gather": 0.0, "reduce_scatter": 0.0,
    ...        "all_reduce": 0.0, "cp_step": 0.0}
    >>> e = layer_events(ops)
    >>> round(e.forward, 6), round(e.backward, 6), e.tp_forward      # nothing to overlap: the sum of the kernels
    (5.2, 10.9, 0.0)
    >>> e = layer_events({**ops, "t": 2, "sp": True, "all_gather": 0.1, "reduce_scatter": 0.1})
    >>> round(e.tp_forward, 6), round(e.forward - e.compute_forward, 6)   # four blocking collectives
    (0.4, 0.4)
    """
    (qkv, qkv_d, qkv_w), (proj, proj_d, proj_w), (fc1, fc1_d, fc1_w), (fc2, fc2_d, fc2_w) = ops["gemms"]
    t, c, sms, nccl = ops["t"], ops["c"], ops["sms"], ops["nccl_sms"]
    ag, rs, ar, step = ops["all_gather"], ops["reduce_scatter"], ops["all_reduce"], ops["cp_step"]
    ef, eb = ops["elementwise_forward"] / 2, ops["elementwise_backward"] / 2
    overlap = ops["tp_overlap"] and t > 1
    chunked = ops.get("chunked") or {}
    sp = ops["sp"] and t > 1

    # ---- forward -----------------------------------------------------------------------------
    comp, tp, cp = _Stream(), _Stream(), _Stream()
    now = comp.run(0.0, ef)                                    # norm (and the previous residual)
    for first, second, names in ((qkv, proj, ("qkv_fprop", "proj_fprop")), (fc1, fc2, ("fc1_fprop", "fc2_fprop"))):
        if overlap:
            now = _ring_gemm(comp, tp, now, first, ag, t, sms, names[0], chunked=chunked)
        else:
            if sp:
                now = comp.wait(tp.run(now, ag), "tp")
            now = comp.run(now, first)
        if names[0] == "qkv_fprop":
            now = _attention(comp, cp, now, ops["attention_forward"], step, c, sms, nccl)
        else:
            now = comp.run(now, ef)                            # the MLP's activation, the residual, the norm
        if overlap:
            now = _gemm_then_scatter(comp, tp, now, second, rs, UB_PIPELINE_SPLITS, sms, names[1], chunked)
        else:
            now = comp.run(now, second)
            if t > 1:
                now = comp.wait(tp.run(now, rs if sp else ar), "tp")
    forward, fwd_comp, fwd_idle = now, comp.busy, dict(comp.idle)

    # ---- backward (mirror order: fc2, fc1, proj, attention, qkv) ---------------------------------
    comp, tp, cp = _Stream(), _Stream(), _Stream()
    now = 0.0
    for row, row_d, row_w, col_d, col_w, names in (
            (fc2, fc2_d, fc2_w, fc1_d, fc1_w, ("fc2_dgrad", "fc1_dgrad", "fc1_wgrad")),
            (proj, proj_d, proj_w, qkv_d, qkv_w, ("proj_dgrad", "qkv_dgrad", "qkv_wgrad"))):
        # row-parallel GEMM (fc2 / proj): the output gradient is sequence-sharded under SP
        if overlap:
            now = _ring_gemm(comp, tp, now, row_d, ag, t, sms, names[0], chunked=chunked)
        else:
            if sp:
                now = comp.wait(tp.run(now, ag), "tp")
            now = comp.run(now, row_d)
        now = comp.run(now, row_w)
        if names[0] == "fc2_dgrad":
            now = comp.run(now, eb)                            # the activation's backward
        else:
            now = _attention(comp, cp, now, ops["attention_backward"], 2 * step, c, sms, nccl)
        # column-parallel GEMM (fc1 / qkv): re-gather its sharded input, reduce its data gradient
        if overlap:
            now = _bulk(comp, tp, now, col_d, ag, sms, names[1])
            now = _bulk(comp, tp, now, col_w, rs, sms, names[2])
        else:
            if sp:
                now = comp.wait(tp.run(now, ag), "tp")
            now = comp.run(now, col_d)
            if t > 1:
                now = comp.wait(tp.run(now, rs if sp else ar), "tp")
            now = comp.run(now, col_w)
        if names[0] == "fc2_dgrad":
            now = comp.run(now, eb)                            # the norm's and residual's backward
    return LayerEvents(forward, now, fwd_comp, comp.busy, fwd_idle["tp"], comp.idle["tp"], fwd_idle["cp"],
                       comp.idle["cp"])


def dp_exposed(dp: dict) -> float:
    """Exposed seconds of the DP gradient reduce-scatter (or all-reduce) and parameter all-gather, as events.

    Without overlap both run after the flush.  With it the first stage's gradients are ready in ``⌈1/bucket⌉``
    equal buckets over its last backward (``backward_window``), each bucket's reduction queued on the DP stream;
    the parameters are gathered bucket by bucket ahead of the forward (``forward_window``) that needs them.  The
    hidden part slows the compute beside it by the SMs of NCCL's kernels.

    >>> dp = {"reduce_scatter": 1.0, "all_gather": 1.0, "overlap": True, "bucket_fraction": 0.25,
    ...       "backward_window": 4.0, "forward_window": 4.0, "nccl_sms": 0, "sms": 132}
    >>> dp_exposed(dp)          # one bucket's reduce-scatter after the backward, one all-gather before the forward
    0.5
    >>> dp_exposed({**dp, "overlap": False})
    2.0
    """
    rs, ag = dp["reduce_scatter"], dp["all_gather"]
    if not dp["overlap"]:
        return rs + ag
    buckets = max(1, math.ceil(1.0 / dp["bucket_fraction"] - 1e-9))
    window_b, window_f = dp["backward_window"], dp["forward_window"]
    stream = _Stream()
    for i in range(buckets):
        stream.run(window_b * (i + 1) / buckets, rs / buckets)
    rs_exposed = max(0.0, stream.free - window_b)
    # forward: bucket i's layers start once its parameters are gathered (the gather of bucket 0 starts at once)
    stream, comp = _Stream(), _Stream()
    for i in range(buckets):
        gathered = stream.run(0.0, ag / buckets)
        comp.run(gathered, window_f / buckets)
    ag_exposed = max(0.0, comp.free - window_f)
    k, sms = dp["nccl_sms"], dp["sms"]
    interference = overlap_slowdown(window_b, rs - rs_exposed, k, sms) + overlap_slowdown(window_f, ag - ag_exposed,
                                                                                           k, sms)
    return rs_exposed + ag_exposed + interference


def dp_exposed_bound(dp: dict) -> float:
    """An upper bound on :func:`dp_exposed`, in closed form (for skipping its event schedule when it cannot matter).

    Bucket ``i`` of ``B`` is ready at ``W·(i+1)/B`` and the stream runs them in order, so the last one ends
    by ``max_i (W·(i+1)/B + (B−i)·X/B)`` for a collective of ``X`` seconds in all: what it outlasts the window
    ``W`` by is at most ``max(X/B, X − W·(B−1)/B)``, for the reduce-scatter and the all-gather alike; the hidden
    rest slows the compute by at most ``(X_rs + X_ag)·k/N``.

    >>> dp = {"reduce_scatter": 1.0, "all_gather": 1.0, "overlap": True, "bucket_fraction": 0.25,
    ...       "backward_window": 4.0, "forward_window": 4.0, "nccl_sms": 0, "sms": 132}
    >>> dp_exposed(dp) <= dp_exposed_bound(dp), dp_exposed_bound(dp)
    (True, 0.5)
    """
    rs, ag = dp["reduce_scatter"], dp["all_gather"]
    if not dp["overlap"]:
        return rs + ag
    buckets = max(1, math.ceil(1.0 / dp["bucket_fraction"] - 1e-9))
    tail = 0.0
    for x, window in ((rs, dp["backward_window"]), (ag, dp["forward_window"])):
        tail += max(x / buckets, x - window * (buckets - 1) / buckets, 0.0)
    return tail + (rs + ag) * dp["nccl_sms"] / dp["sms"]
