"""Achievable matrix-multiply and fused-attention throughput of a GPU, by shape and precision.

Problem: a GPU's datasheet peak is never reached, and how close a GEMM gets
depends on its shape.  This module prices one GEMM ``[M, K] × [K, N]`` (and
a FlashAttention call) on a :class:`~pipesim.hardware.devices.Device` from
three documented causes (docs/model.md §11.2):

1. **The large-GEMM ceiling** ``η`` per GPU and precision: the best fraction of
   the dense peak cuBLAS reaches on large, aligned shapes — the *maximum
   achievable matmul FLOPS* (MAMF) measured by S. Bekman's ``mamf-finder.py``
   (ml-engineering, "Maximum Achievable Matmul FLOPS comparison table", BF16,
   CUDA 12.1): A100 SXM 267.9 of 312 TFLOPS (0.859), H100 SXM 792.1 of 989
   (0.801).  The clock a GPU holds at its power limit is inside this number.
2. **Tile and wave quantisation** (NVIDIA, *Matrix Multiplication Background
   User's Guide*, "Tile quantization" and "Wave quantization"): cuBLAS computes
   the output in tiles of ``tm × tn``, one per SM at a time; a shape that
   leaves tiles partly empty, or a last wave of tiles that leaves SMs idle,
   wastes that fraction::

       tiles = ⌈M/tm⌉·⌈N/tn⌉,   q = (M·N) / (tiles·tm·tn) · tiles / (⌈tiles/SMs⌉·SMs)

3. **Memory bound** (the roofline, Williams et al. 2009): a GEMM cannot finish
   before its operands and result cross HBM once, ``e·(MK + KN + MN)`` bytes at
   the device's streaming bandwidth (``memory_bandwidth × memory_efficiency``).

So ``time = launch + max(2MNK / (peak·η·q), bytes / (BW·η_mem))``.

FlashAttention (Dao 2023, FlashAttention-2 §4; Shah et al. 2024,
FlashAttention-3 §4) is priced at its own published fraction of peak, forward
and backward (the backward is 2.5× the forward's FLOPs: five matrix products
against two), which rises with the key length ``s`` of a call as both papers'
benchmarks show (few query/key blocks per head leave the SMs and the
software pipeline under-filled): ``η(s) = η_∞ · s / (s + s½)`` with
``s½ = 512`` tokens (:data:`ATTENTION_HALF_LENGTH`).  A GPU without an entry here falls back to its preset's flat
``compute_efficiency`` and no quantisation (stated in the result of
:func:`engine`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipesim.hardware.devices import Device, dtype_bytes

__all__ = ["ATTENTION_BACKWARD_FLOPS", "ENGINES", "UB_COMM_SMS", "UB_PIPELINE_SPLITS", "GemmEngine", "attention_time", "engine",
           "gemm_efficiency", "gemm_time", "overlap_slowdown"]

#: FlashAttention's backward FLOPs per forward FLOP (FlashAttention-2 §4: 5 matmuls against 2).
ATTENTION_BACKWARD_FLOPS = 2.5
#: key length at which FlashAttention reaches half its long-sequence rate: read from the causal, head-dim-128
#: curves of FlashAttention-2 (A100, Fig. 4-5) and FlashAttention-3 (H100, Fig. 5-6), which rise from about
#: 0.5 of their plateau at 512 tokens to within a few percent of it at 8k-16k
ATTENTION_HALF_LENGTH = 512


@dataclass(frozen=True)
class GemmEngine:
    """What limits a GPU's matrix units: SMs, cuBLAS's output tile, the large-GEMM ceiling, FlashAttention's rates."""

    sms: int
    tile: tuple[int, int]
    ceiling: dict[str, float]
    attention_forward: float
    attention_backward: float
    source: str = ""
    #: SMs one NCCL collective or send/receive kernel occupies while it runs (one CTA per channel); ``0`` where
    #: no published figure is held (the overlap is then priced without interference, docs/model.md §11.4)
    nccl_sms: int = 0

    def ceiling_for(self, dtype: str) -> float:
        return self.ceiling.get(dtype, self.ceiling.get("bf16", 0.7))


#: Device preset name -> its engine.  SM counts: NVIDIA A100 and H100 whitepapers (108 and 132 SMs;
#: V100: 80).  Tiles: the 256×128 (Ampere) and 128×256 (Hopper) CTA tiles of cuBLAS's largest
#: tensor-core kernels (the User's Guide's examples).  FP8 ceiling: the MAMF table's FP8 (``float8_e4m3fn``)
#: entry, H100 SXM 1402.6 of 1979 TFLOPS (0.709, torch 2.7 + CUDA 12.6).  FlashAttention rates: FA-2 on A100
#: (forward ≈ 0.65, backward ≈ 0.55 of 312 TFLOPS at head dim 128, FlashAttention-2 Fig. 4–5);
#: FA-3 / cuDNN on H100 (forward ≈ 0.60, backward ≈ 0.48 of 989 TFLOPS, causal, head dim 128,
#: sequences 2k–16k, FlashAttention-3 Fig. 5–6).  These are the plateau rates η_∞ (long sequences).
ENGINES: dict[str, GemmEngine] = {
    "h100-sxm": GemmEngine(132, (128, 256), {"bf16": 0.801, "fp16": 0.801, "fp8": 0.709}, 0.60, 0.48,
                           "MAMF H100 SXM 792.1/989 (BF16), 1402.6/1979 (FP8); FlashAttention-3", nccl_sms=24),
    "a100-80gb": GemmEngine(108, (256, 128), {"bf16": 0.859, "fp16": 0.859}, 0.65, 0.55,
                            "MAMF A100 SXM 267.9/312; FlashAttention-2"),
    "a100-40gb": GemmEngine(108, (256, 128), {"bf16": 0.859, "fp16": 0.859}, 0.65, 0.55,
                            "MAMF A100 SXM 267.9/312; FlashAttention-2"),
    "v100": GemmEngine(80, (128, 128), {"fp16": 0.75}, 0.5, 0.4, "assumption: no MAMF entry"),
}


#: SMs of Transformer Engine's userbuffers kernels while a tensor-parallel collective overlaps a GEMM of the layer,
#: and whether the GEMM is launched on the remaining SMs for its whole duration (``set_sm_margin``, "pipeline"
#: method) or shares the GPU with the communication kernel only while it runs ("bulk" and "ring_exchange").
#: NeMo's H100 recipe ``userbuffers_bf16_h100_h8192_tp4_mbs1_seqlen8192`` (NeMo,
#: nemo/collections/llm/recipes/tp_overlap_configs/userbuffers.py; the same table serves its FP8 recipe):
#: forward all-gathers by ring exchange (1 SM), forward reduce-scatters pipelined in 4 chunks with 24 (output
#: projection) and 16 (fc2) SMs reserved; backward the bulk all-gathers of the sharded inputs under the data-
#: gradient GEMMs (4 and 2 SMs) and the bulk reduce-scatters of the data gradients under the weight-gradient GEMMs
#: (24 and 4 SMs); the output-gradient all-gathers by ring exchange (1 SM).  TE reserves ``_math_sms = SMs −
#: num_sm`` for the GEMM when ``set_sm_margin`` (transformer_engine/common/comm_gemm_overlap/comm_gemm_overlap.cpp).
UB_COMM_SMS: dict[str, tuple[int, bool]] = {
    "qkv_fprop": (1, False), "fc1_fprop": (1, False),          # ring-exchange all-gathers
    "proj_fprop": (24, True), "fc2_fprop": (16, True),          # pipelined reduce-scatters, SM margin
    "qkv_dgrad": (4, False), "fc1_dgrad": (2, False),           # bulk all-gathers of the inputs
    "qkv_wgrad": (24, False), "fc1_wgrad": (4, False),          # bulk reduce-scatters of the data gradients
    "proj_dgrad": (1, False), "fc2_dgrad": (1, False),          # ring-exchange all-gathers of output gradients
}


#: chunks of Transformer Engine's pipelined reduce-scatter overlap (``num_splits`` of NeMo's H100 recipes)
UB_PIPELINE_SPLITS = 4


def overlap_slowdown(compute: float, comm: float, comm_sms: int, sms: int, margin: bool = False) -> float:
    """Extra seconds a kernel of ``compute`` seconds takes when a communication kernel on ``comm_sms`` of its ``sms``
    SMs overlaps it for ``comm`` seconds (docs/model.md §11.4, "Overlap is not free").

    A collective's kernel is resident on ``comm_sms`` SMs (one CTA per NCCL channel, or the userbuffers
    ``num_sm``) for as long as it runs, so the compute kernel overlapped with it progresses at
    ``(sms − comm_sms)/sms`` of its rate for that time: ``+ min(comm, compute) · comm_sms/sms``.  With
    ``margin`` (Transformer Engine's ``set_sm_margin``) the GEMM is launched on ``sms − comm_sms`` SMs for its
    whole duration: ``+ compute · comm_sms/(sms − comm_sms)``.  No overlap, no SMs: no change.

    >>> overlap_slowdown(1.0, 0.0, 24, 132), overlap_slowdown(1.0, 0.5, 0, 132)
    (0.0, 0.0)
    >>> round(overlap_slowdown(1.0, 0.5, 24, 132), 4), round(overlap_slowdown(1.0, 0.5, 24, 132, margin=True), 4)
    (0.0909, 0.2222)
    """
    if compute <= 0 or comm <= 0 or comm_sms <= 0 or sms <= comm_sms:
        return 0.0
    if margin:
        return compute * comm_sms / (sms - comm_sms)
    return min(max(comm, 0.0), compute) * comm_sms / sms


def engine(device: Device) -> GemmEngine:
    """The device's engine; a device without one gets its flat ``compute_efficiency`` and no quantisation.

    >>> from pipesim.hardware.clusters import load_cluster
    >>> engine(load_cluster("dgx-h100x16").nodes[0][0].device).sms
    132
    """
    key = device.name.split(".")[-1]
    if key in ENGINES:
        return ENGINES[key]
    eff = device.compute_efficiency
    return GemmEngine(1, (1, 1), {"bf16": eff, "fp16": eff, "fp8": eff}, eff, eff, "preset compute_efficiency")


def gemm_efficiency(m: int, n: int, k: int, device: Device, dtype: str, batch: int = 1,
                    sms: int | None = None) -> float:
    """Fraction of ``device``'s ``dtype`` peak a ``[m, k] × [k, n]`` GEMM reaches when compute-bound: ``η·q``.

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> h100 = load_cluster("dgx-h100x16").nodes[0][0].device
    >>> round(gemm_efficiency(8192, 8192, 8192, h100, "bf16"), 3)   # 256 tiles: 2 waves of 132, the second short
    0.777
    >>> round(gemm_efficiency(128 * 132, 256, 4096, h100, "bf16"), 3)  # exactly one full wave
    0.801
    >>> round(gemm_efficiency(128 * 132, 256, 4096, h100, "bf16", sms=108), 3)  # on 108 SMs: two waves
    0.401
    """
    eng = engine(device)
    tm, tn = eng.tile
    tiles = math.ceil(m / tm) * math.ceil(n / tn) * batch
    tile_q = (m * n * batch) / (tiles * tm * tn)
    # ``sms``: the SMs the GEMM is launched on (Transformer Engine's set_sm_margin leaves the rest to a
    # communication kernel): fewer tiles at a time, each at the same per-SM rate
    avail = eng.sms if sms is None else max(1, min(sms, eng.sms))
    wave_q = tiles / (math.ceil(tiles / avail) * eng.sms)
    return eng.ceiling_for(dtype) * tile_q * wave_q


def gemm_time(m: int, n: int, k: int, device: Device, dtype: str, batch: int = 1, out_dtype: str | None = None,
              sms: int | None = None) -> float:
    """Seconds of ``batch`` GEMMs ``[m, k] × [k, n]`` at ``dtype`` (inputs; output at ``out_dtype``, default bf16).

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> h100 = load_cluster("dgx-h100x16").nodes[0][0].device
    >>> t = gemm_time(8192, 8192, 8192, h100, "bf16")
    >>> round(2 * 8192 ** 3 / t / 1e12)    # achieved TFLOPS
    766
    """
    if m <= 0 or n <= 0 or k <= 0:
        return 0.0
    peak = device.peak(dtype)
    compute = 2.0 * m * n * k * batch / (peak * gemm_efficiency(m, n, k, device, dtype, batch, sms))
    e_in, e_out = dtype_bytes(dtype), dtype_bytes(out_dtype or ("bf16" if dtype == "fp8" else dtype))
    memory = batch * (e_in * (m * k + k * n) + e_out * m * n) / (device.memory_bandwidth * device.memory_efficiency)
    return device.launch_overhead + max(compute, memory)


def attention_time(flops_forward: float, device: Device, *, backward: bool = False, keys: float | None = None) -> float:
    """Seconds of FlashAttention calls of ``flops_forward`` forward FLOPs (at BF16; TE runs attention in BF16 under FP8).

    ``backward=True`` prices the backward pass: :data:`ATTENTION_BACKWARD_FLOPS` × the FLOPs at the backward
    rate.  ``keys``: the key length of each call (default: long, the plateau rate).

    >>> from pipesim.hardware.clusters import load_cluster
    >>> h100 = load_cluster("dgx-h100x16").nodes[0][0].device
    >>> round(attention_time(1e12, h100, keys=512) / attention_time(1e12, h100), 2)   # half the rate at s½
    2.0
    """
    if flops_forward <= 0:
        return 0.0
    eng = engine(device)
    peak = device.peak("bf16") if "bf16" in device.peak_flops else device.peak("fp16")
    fill = 1.0 if keys is None else keys / (keys + ATTENTION_HALF_LENGTH)
    if backward:
        return device.launch_overhead + ATTENTION_BACKWARD_FLOPS * flops_forward / (peak * eng.attention_backward * fill)
    return device.launch_overhead + flops_forward / (peak * eng.attention_forward * fill)
