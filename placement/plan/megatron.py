"""Megatron-Core training of a transformer on a cluster: step time and memory of one parallel configuration.

Problem: given a transformer (:class:`~pipesim.workloads.transformer.TransformerConfig`),
a homogeneous cluster and a Megatron-Core parallel configuration (tensor ``t``,
pipeline ``p``, context ``c``, virtual pipeline ``v``, data ``d = GPUs/(t·p·c)``,
microbatch size, global batch, precision, recomputation, sequence parallelism,
distributed optimizer), return the time of one global batch broken into
compute, pipeline bubble, exposed TP/CP/PP/DP communication and the optimizer
step, and the memory of the fullest GPU (first or last pipeline stage).

Guarantee: a closed form, every term from a stated cause (docs/model.md §11):
GEMMs at the shape-dependent achievable rate of :mod:`pipesim.hardware.gemm`,
FlashAttention at its published rate, memory-bound kernels at HBM streaming
bandwidth (:func:`pipesim.hardware.costs.kernel_time`), NCCL collectives of
:mod:`pipesim.hardware.collectives` on the ranks' actual links (Megatron's rank
order tp → cp → dp → pp), overlapped communication slowing the compute beside it by the SMs its kernels
hold (Transformer Engine's userbuffers ``num_sm``, NCCL's CTAs), pipeline transfers overlapped with the chunk beside
them under interleaving (Megatron-LM's ``overlap_p2p_comm``), FP8 as Transformer Engine runs it (cast-transposes,
1-byte copies of the GEMM inputs kept for the weight gradient), the interleaved 1F1B bubble ``(p−1)/v`` microbatches
(Narayanan et al., SC'21 §2.2), activation memory after Korthikanti et al. 2022
(arXiv:2205.05198, §4) for grouped-query attention, gated MLPs and fused
attention, and Megatron's distributed-optimizer byte counts (Megatron-LM docs,
"Distributed Optimizer").  No constant is fitted to a measured run.

Reference: docs/model.md §11.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipesim.errors import InputError
from pipesim.hardware.clusters import Cluster, NodeType
from pipesim.hardware.collectives import Group, all_gather, all_reduce, p2p, reduce_scatter
from pipesim.hardware.costs import kernel_time, optimizer_bytes
from pipesim.hardware.gemm import UB_COMM_SMS, attention_time, engine, gemm_time, overlap_slowdown
from pipesim.placement.options import require_positive_ints
from pipesim.placement.plan.megatron_layer import dp_exposed, dp_exposed_bound, layer_events

#: the model: a :class:`pipesim.workloads.transformer.TransformerConfig`, duck-typed because
#: placement/ does not import pipesim/ (the layering of docs/model.md §9)
TransformerConfig = Any

__all__ = ["ALLOWANCE_FIXED", "ALLOWANCE_FRAGMENTATION", "PRECISIONS", "RECOMPUTE", "Breakdown", "Estimate",
           "ParallelConfig", "StageCost", "estimate", "fp8_cast_bytes", "fp8_stash_saving", "memory_capacity",
           "optimizer_step", "pipeline_hop", "pipeline_time", "stage_cost", "stage_degrees", "stage_dp", "stage_layers", "tensor_parallel_degrees",
           "tensor_parallel_problem", "with_nodes"]

PRECISIONS = ("bf16", "fp16", "fp8")
RECOMPUTE = ("none", "selective", "full")

#: CUDA context, cuBLAS/cuDNN workspaces and NCCL channel buffers, per GPU (bytes): the CUDA context of a
#: PyTorch process is ≈ 0.5 GiB, NCCL keeps 4 MiB per channel and peer for several communicators, TE/cuBLAS
#: workspaces are tens of MiB per stream.  A stated allowance, not a fit (docs/model.md §11.6).
ALLOWANCE_FIXED = 2 * 2**30
#: PyTorch's caching allocator loses a share of the dynamic (activation) memory to fragmentation.
ALLOWANCE_FRAGMENTATION = 0.10
#: Megatron pads the vocabulary to a multiple of 128 · t (``--make-vocab-size-divisible-by 128``).
VOCAB_DIVISOR = 128
#: Megatron-Core's DDP bucket: max(40M, 1M · d) parameters (``DistributedDataParallelConfig.bucket_size``).
BUCKET_PARAMS = 40_000_000


@dataclass(frozen=True)
class ParallelConfig:
    """One Megatron-Core configuration.  ``None`` takes Megatron-Core's default (see the fields).

    ``recompute=None`` chooses the cheapest of none/selective/full that fits
    (:func:`estimate`); ``sequence_parallel=None`` is on when ``tp > 1``;
    ``pp_overlap=None`` overlaps the pipeline transfers with the compute of
    the chunks beside them when the schedule is interleaved (Megatron-LM's
    ``overlap_p2p_comm``, on by default with interleaving and forced off
    without it); ``tp_overlap=None`` overlaps TP communication with GEMMs when sequence
    parallelism is on (Transformer Engine userbuffers, as NeMo's recipes run);
    ``dp_overlap`` overlaps gradient reduce-scatter / all-reduce and parameter
    all-gather with compute (Megatron-Core's ``overlap_grad_reduce``,
    ``overlap_param_gather``); ``attention`` is ``flash`` (fused) or
    ``unfused`` (materialised scores and softmax, as Megatron-LM ran before 2022);
    ``grad_reduce_fp32`` keeps and reduces gradients in fp32 instead of the
    parameters' bf16 (NeMo's performance recipes reduce in bf16); ``dropout``
    is the attention and hidden dropout probability (Megatron-LM's 0.1 of the
    GPT runs of 2021; 0 in Llama and Nemotron pre-training recipes): with it,
    masks are written and kept, and unfused attention drops its probabilities
    in a kernel of its own.
    """

    tp: int = 1
    pp: int = 1
    cp: int = 1
    vp: int = 1
    mbs: int = 1
    gbs: int = 1
    precision: str = "bf16"
    recompute: str | None = None
    sequence_parallel: bool | None = None
    distributed_optimizer: bool = True
    tp_overlap: bool | None = None
    pp_overlap: bool | None = None
    dp_overlap: bool = True
    attention: str = "flash"
    grad_reduce_fp32: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(None, "dropout", f"must be in [0, 1), got {self.dropout!r}")
        require_positive_ints(self, ("tp", "pp", "cp", "vp", "mbs", "gbs"))
        if self.precision not in PRECISIONS:
            raise InputError(None, "precision", f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.recompute is not None and self.recompute not in RECOMPUTE:
            raise InputError(None, "recompute", f"must be one of {', '.join(RECOMPUTE)}, got {self.recompute!r}")
        if self.attention not in ("flash", "unfused"):
            raise InputError(None, "attention", f"must be flash or unfused, got {self.attention!r}")

    @property
    def sp(self) -> bool:
        return self.tp > 1 if self.sequence_parallel is None else (self.sequence_parallel and self.tp > 1)

    @property
    def pp_overlapped(self) -> bool:
        return self.vp > 1 if self.pp_overlap is None else (self.pp_overlap and self.vp > 1)

    @property
    def tp_overlapped(self) -> bool:
        return self.sp if self.tp_overlap is None else (self.tp_overlap and self.sp)


@dataclass(frozen=True)
class Breakdown:
    """Seconds of one global batch by cause (they sum to the iteration time)."""

    compute: float
    bubble: float
    tp_comm: float
    cp_comm: float
    pp_comm: float
    dp_comm: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.compute + self.bubble + self.tp_comm + self.cp_comm + self.pp_comm + self.dp_comm + self.optimizer


@dataclass(frozen=True)
class Estimate:
    """The predicted step of one configuration (:func:`estimate`)."""

    model: TransformerConfig
    config: ParallelConfig
    gpus: int
    dp: int
    microbatches: int
    recompute: str
    iteration_time: float
    breakdown: Breakdown
    memory_per_gpu: float
    memory: dict[str, float]
    capacity: float
    tokens_per_second_per_gpu: float
    model_tflops_per_gpu: float
    notes: tuple[str, ...] = field(default=())
    #: per pipeline stage, one microbatch's forward time (all its chunks; compute, exposed TP/CP, transfers)
    stage_forward: tuple[float, ...] = field(default=())
    #: per pipeline stage, one microbatch's backward time (with recomputation)
    stage_backward: tuple[float, ...] = field(default=())
    #: seconds after the pipeline flush: exposed DP communication + the optimizer step
    after_flush: float = 0.0
    #: the recomputation of each pipeline stage
    stage_recompute: tuple[str, ...] = field(default=())
    #: (stage, bytes per GPU) of the stages whose memory was computed (all of them with per-stage recomputation)
    stage_memory: tuple[tuple[int, float], ...] = field(default=())
    #: one layer's pieces (GEMMs, attention, collectives) and the DP reduction's, for the event simulation of
    #: pipesim.simulation.megatron_events (docs/model.md §11.10)
    layer_ops: dict = field(default_factory=dict, compare=False, repr=False)
    dp_ops: dict = field(default_factory=dict, compare=False, repr=False)
    #: per pipeline stage, its tensor-parallel degree, data-parallel degree and sequences per replica and
    #: microbatch (all equal in a Megatron-Core configuration; a per-stage plan's own, docs/model.md §11.9)
    stage_tp: tuple[int, ...] = field(default=())
    stage_dp: tuple[int, ...] = field(default=())
    stage_mbs: tuple[int, ...] = field(default=())

    @property
    def runnable(self) -> bool:
        """Whether Megatron-Core can run it: one tensor- and data-parallel degree and one recomputation on
        every stage."""
        return len(set(self.stage_tp)) <= 1 and len(set(self.stage_dp)) <= 1 and len(set(self.stage_recompute)) <= 1

    @property
    def fits(self) -> bool:
        return self.memory_per_gpu <= self.capacity

    def to_dict(self) -> dict:
        c = self.config
        return {
            "iteration_time": self.iteration_time,
            "memory_per_gpu": self.memory_per_gpu,
            "fits": self.fits,
            "tokens_per_second_per_gpu": self.tokens_per_second_per_gpu,
            "model_tflops_per_gpu": self.model_tflops_per_gpu,
            "breakdown": asdict(self.breakdown),
            "memory": dict(self.memory),
            "memory_capacity": self.capacity,
            "config": {"gpus": self.gpus, "tp": c.tp, "pp": c.pp, "cp": c.cp, "vp": c.vp, "dp": self.dp,
                       "mbs": c.mbs, "gbs": c.gbs, "microbatches": self.microbatches, "precision": c.precision,
                       "recompute": self.recompute, "sequence_parallel": c.sp,
                       "distributed_optimizer": c.distributed_optimizer, "tp_overlap": c.tp_overlapped, "pp_overlap": c.pp_overlapped,
                       "dp_overlap": c.dp_overlap, "attention": c.attention,
                       "grad_reduce_fp32": c.grad_reduce_fp32, "dropout": c.dropout},
            "params": self.model.params(),
            "stage_recompute": list(self.stage_recompute),
            "stages": [{"stage": i, "layers": n, "forward": f, "backward": b,
                        "recompute": self.stage_recompute[i] if self.stage_recompute else self.recompute,
                        "t": self.stage_tp[i] if self.stage_tp else c.tp,
                        "d": self.stage_dp[i] if self.stage_dp else self.dp,
                        "mbs": self.stage_mbs[i] if self.stage_mbs else c.mbs}
                       for i, (n, f, b) in enumerate(zip(stage_layers(self.model.layers, c.pp), self.stage_forward,
                                                         self.stage_backward))],
            "runnable": self.runnable,
            "notes": list(self.notes),
        }


def memory_capacity(node: NodeType) -> float:
    """Bytes a GPU holds: NVIDIA's "80 GB" is 80 GiB of HBM (nvidia-smi shows 81,559 MiB on an H100 80GB)."""
    return node.device.memory / 1e9 * 2**30


def with_nodes(cluster: Cluster, nodes: int) -> Cluster:
    """``cluster`` resized to ``nodes`` nodes of its (single) node type.

    >>> from pipesim.hardware.clusters import load_cluster
    >>> with_nodes(load_cluster("dgx-h100x16"), 72).device_count
    576
    """
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise InputError(None, "--nodes", f"must be a positive integer, got {nodes!r}")
    if not cluster.homogeneous:
        raise InputError(None, "--nodes", f"{cluster.name} mixes node types: give a one-type cluster")
    node = cluster.nodes[0][0]
    return Cluster(f"{cluster.name}@{nodes}", ((node, nodes),), cluster.description, cluster.sources)


# --------------------------------------------------------------------------------------------
# per-layer pieces (one GPU, one microbatch)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layer:
    forward: float          # compute seconds, forward
    backward: float         # compute seconds, backward
    attention_forward: float  # the attention core's forward (what selective recomputation repeats)
    tp_forward: float       # exposed TP communication, forward
    tp_backward: float
    cp_forward: float       # exposed CP communication
    cp_backward: float
    activations: float      # bytes stashed for the backward pass
    input_bytes: float      # bytes of the layer's input as full recomputation keeps it
    ops: dict = field(default_factory=dict)  # the pieces, for the event simulation (pipesim.simulation.megatron_events)


def _elementwise(nbytes: float, device) -> float:
    return kernel_time(0.0, nbytes, device, "bf16") if nbytes > 0 else 0.0


def fp8_cast_bytes(model: TransformerConfig, cfg: ParallelConfig) -> tuple[float, float]:
    """Bytes per token and layer of Transformer Engine's FP8 casts, forward and backward (docs/model.md §11.2).

    Hopper's FP8 GEMMs take only the "TN" layout, so each FP8 operand that a backward GEMM reads transposed is
    also written transposed (Transformer Engine, "Using FP8 with Transformer Engine": ``cast_transpose``;
    ``_Linear`` saves the transposed FP8 input for the weight gradient).  Forward: the two norms write their
    output in FP8 directly (``layernorm_fwd_fp8``, no cast) and its transpose is one more pass (read 1, write 1
    byte per element of ``h/σ``); the inputs of the output projection (``h/t``) and of fc2 (``f/t``) are
    cast-transposed from BF16 (read 2, write 1 + 1).  Backward: the output gradient of each of the four GEMMs is
    cast-transposed (read 2, write 1 + 1) — ``qkv_width/t`` and ``up/t`` for the column-parallel GEMMs, ``h/σ``
    for the row-parallel ones (sequence-sharded under SP).

    >>> from pipesim.workloads.llms import preset
    >>> f, b = fp8_cast_bytes(preset("llama3.1-8b"), ParallelConfig(precision="fp8"))
    >>> f, b     # 2·2·4096 + 4·(4096 + 14336);  4·(6144 + 4096 + 28672 + 4096)
    (90112.0, 172032.0)
    """
    t = cfg.tp
    sp_div = t if cfg.sp else 1
    h, f = model.hidden, model.ffn
    up = (2 if model.gated else 1) * f
    forward = 2 * 2 * h / sp_div + 4 * (h / t + f / t)
    backward = 4 * (model.qkv_width / t + h / sp_div + up / t + h / sp_div)
    return float(forward), float(backward)


def fp8_stash_saving(model: TransformerConfig, cfg: ParallelConfig) -> float:
    """Bytes per token and layer FP8 saves on the activations kept for the backward (docs/model.md §11.6).

    Transformer Engine's linear layers keep the FP8 (1-byte) copy of their input for the weight gradient instead
    of the BF16 one (``_Linear``/``_LayerNormLinear``: ``inputmat_t if fp8_wgrad``): the QKV and fc1 inputs
    (``h/σ`` each) and the fc2 input (``f/t``) shrink from 2 bytes to 1; the output projection keeps a 1-byte
    copy of the attention output beside the BF16 one FlashAttention keeps for its own backward (``+h/t``).

    >>> from pipesim.workloads.llms import preset
    >>> fp8_stash_saving(preset("llama3.1-70b"), ParallelConfig(tp=4, precision="fp8"))   # (2·8192 + 28672 − 8192)/4
    9216.0
    """
    t = cfg.tp
    sp_div = t if cfg.sp else 1
    h, f = model.hidden, model.ffn
    return float(2 * h / sp_div + f / t - h / t)


def _gemm3(m: int, n: int, k: int, device, dtype: str) -> tuple[float, float]:
    """Forward ``[m,k]×[k,n]`` and its backward (data gradient ``[m,n]×[n,k]``, weight gradient ``[k,m]×[m,n]``)."""
    return gemm_time(m, n, k, device, dtype), gemm_time(m, k, n, device, dtype) + gemm_time(k, n, m, device, dtype)


def layer_cost(model: TransformerConfig, cfg: ParallelConfig, node: NodeType) -> _Layer:
    """One transformer layer, one microbatch, on one GPU of ``node``: compute, exposed TP/CP, stash (§11.2–11.6)."""
    device = node.device
    t, c, b, s = cfg.tp, cfg.cp, cfg.mbs, model.seq
    h, f, kv = model.hidden, model.ffn, model.groups * model.head_dim
    up = (2 if model.gated else 1) * f
    tokens = b * s // c                       # tokens this GPU's sequence shard holds
    e = 2                                      # bf16/fp16 activations
    gemm_dtype = "fp8" if cfg.precision == "fp8" else ("fp16" if cfg.precision == "fp16" else "bf16")
    # the four GEMMs of a layer, TP-sharded (Shoeybi et al. 2019: column-parallel QKV and fc1, row-parallel proj and fc2)
    shapes = [(tokens, model.qkv_width // t, h), (tokens, h, h // t), (tokens, up // t, h), (tokens, h, f // t)]
    fwd = bwd = 0.0
    gemms = []                                 # (forward, data gradient, weight gradient) of qkv, proj, fc1, fc2
    for m, n, k in shapes:
        a = gemm_time(m, n, k, device, gemm_dtype)
        dg, wg = gemm_time(m, k, n, device, gemm_dtype), gemm_time(k, n, m, device, gemm_dtype)
        gemms.append((a, dg, wg))
        fwd, bwd = fwd + a, bwd + dg + wg
    # the attention core: per GPU, s/c queries of b sequences against s keys, heads/t heads
    causal = model.decoder
    attn_flops = 4.0 * tokens * s * (h / t) * (0.5 if causal else 1.0)
    if cfg.attention == "flash":
        if c > 1 and causal:
            # Transformer Engine's load-balanced causal ring (AttnFuncWithCPAndKVP2P): rank r holds sequence
            # chunks r and 2c−1−r; step 0 is causal attention of its s/c queries on its own s/c keys, every later
            # step i is 1/c of the rank's FLOPs as full attention — all its queries on the first half (s/(2c)
            # keys) of the K/V that arrived when i ≤ r, the second half of its queries on all s/c keys when i > r.
            # Rank c−1 runs every later step on s/(2c) keys; a ring goes at its slowest rank's pace (§11.4)
            share = attn_flops / c
            attn_f = attention_time(share, device, keys=s / c) \
                + (c - 1) * attention_time(share, device, keys=s / (2 * c))
            attn_b = attention_time(share, device, backward=True, keys=s / c) \
                + (c - 1) * attention_time(share, device, backward=True, keys=s / (2 * c))
        else:
            # one call over all s keys, or (context parallelism without a causal mask) one per ring step, each
            # of the rank's s/c queries on s/c keys
            attn_f = attention_time(attn_flops, device, keys=s / c)
            attn_b = attention_time(attn_flops, device, backward=True, keys=s / c)
        attn_stash = e * tokens * (h + 2 * kv + h) / t + 4 * tokens * model.heads / t  # Q, K, V, O + softmax stats
    else:
        heads = model.heads // t
        d = model.head_dim
        sc = b * heads * s * s                                   # score elements (full matrix computed)
        gdt = "fp16" if cfg.precision == "fp16" else "bf16"
        attn_f = gemm_time(s, s, d, device, gdt, batch=b * heads) + gemm_time(s, d, s, device, gdt, batch=b * heads)
        attn_b = 2 * attn_f
        # fused scale-mask-softmax: read scores, write probabilities; backward reads both, writes the gradient
        attn_f += _elementwise(2 * e * sc, device)
        attn_b += _elementwise(3 * e * sc, device)
        # Q, K, V, the context (the output projection's input) and the probabilities (Korthikanti's s² term)
        attn_stash = e * tokens * (h + 2 * kv + h) / t + e * sc
        if cfg.dropout > 0:
            # dropout of the probabilities: read 2, write 2 + a 1-byte mask; backward reads grad and mask, writes 2;
            # the mask and the dropped probabilities are kept (Korthikanti et al. Table 2: 5·a·s²·b in all)
            attn_f += _elementwise((2 * e + 1) * sc, device)
            attn_b += _elementwise((2 * e + 1) * sc, device)
            attn_stash += (e + 1) * sc
    # memory-bound kernels (fused as Megatron-Core + TE run them), bytes per token
    sp_div = t if cfg.sp else 1
    norm_bytes = 2 * (2 * e * h) / sp_div                        # two norms: read and write h
    residual_bytes = 2 * (3 * e * h) / sp_div                    # two bias-dropout-adds: read 2h, write h
    # SwiGLU reads 2f writes f; GeLU reads f writes f (both fused with their bias, Megatron-Core's
    # bias_activation_fusion); squared ReLU has no fused kernel in Megatron-Core: it runs as torch.pow(F.relu(x), 2)
    # (megatron/core/activations.py squared_relu), two kernels each reading f and writing f
    act_bytes = (3 if model.gated else (4 if getattr(model, "activation", "gelu") == "squared-relu" else 2)) * e * f / t
    rope_bytes = (2 * e * (h + kv) / t) if model.position == "rope" else 0.0
    cast_f, cast_b = fp8_cast_bytes(model, cfg) if cfg.precision == "fp8" else (0.0, 0.0)
    mask_bytes = (2 * h / sp_div) if cfg.dropout > 0 else 0.0    # two hidden-dropout masks, 1 byte per element
    plain = norm_bytes + residual_bytes + act_bytes + rope_bytes + mask_bytes
    elem_f = _elementwise(tokens * (plain + cast_f), device)
    # the backward of each kernel moves about twice its forward's bytes; the FP8 casts of the backward are their
    # own kernels (the output gradients' cast-transposes), counted by fp8_cast_bytes
    elem_b = 2 * (_elementwise(tokens * plain, device) if cast_f else elem_f) + _elementwise(tokens * cast_b, device)
    # tensor parallelism: 2 all-reduces (no SP) or 2 all-gathers + 2 reduce-scatters (SP) each way, of b·s/c·h
    # (Shoeybi et al. 2019's f and g operators; Korthikanti et al. 2022 §4.2.2), backward with SP also the
    # re-gather of the two sharded GEMM inputs for the weight gradients; context parallelism (ring attention):
    # c−1 exchanges of this rank's K and V shard (backward also dK, dV: 2×), each beside one block of attention.
    # How much is exposed, and how much the hidden part slows the compute beside it, is the event schedule of
    # the layer's kernels and collectives on the GPU's streams (placement/plan/megatron_layer.py, §11.4).
    tp_group = Group.strided(t, 1, node)
    full = e * tokens * h
    step = 0.0
    if c > 1:
        cp_group = Group.strided(c, t, node)
        step = p2p(e * tokens * 2 * kv / t, node, same_node=cp_group.intra_node)
    eng = engine(device)
    ops = {"gemms": [list(g) for g in gemms], "attention_forward": attn_f, "attention_backward": attn_b,
           "elementwise_forward": elem_f, "elementwise_backward": elem_b, "t": t, "c": c, "sp": cfg.sp,
           "tp_overlap": cfg.tp_overlapped, "sms": eng.sms, "nccl_sms": eng.nccl_sms,
           "all_gather": all_gather(full, tp_group) if t > 1 else 0.0,
           "reduce_scatter": reduce_scatter(full, tp_group) if t > 1 else 0.0,
           "all_reduce": all_reduce(full, tp_group) if t > 1 else 0.0,
           "cp_step": step}
    if cfg.tp_overlapped:
        # the GEMMs beside a pipelined reduce-scatter are launched on the SMs it leaves (set_sm_margin): their
        # tiles run in waves of SMs − num_sm (§11.2's quantisation).  Transformer Engine launches the chunks of an
        # overlapped GEMM round-robin on several compute streams (NVTE_COMM_OVERLAP_MAX_STREAMS = 3), so a chunk's
        # last wave is filled by the next chunk's tiles: the chunks are priced as one GEMM, not each on its own.
        (mp, np_, kp), (m2, n2, k2) = shapes[1], shapes[3]
        ops["chunked"] = {
            "proj_fprop": gemm_time(mp, np_, kp, device, gemm_dtype, sms=eng.sms - UB_COMM_SMS["proj_fprop"][0]),
            "fc2_fprop": gemm_time(m2, n2, k2, device, gemm_dtype, sms=eng.sms - UB_COMM_SMS["fc2_fprop"][0]),
        }
    events = layer_events(ops)
    forward, backward = events.compute_forward, events.compute_backward   # kernels, slowed where overlapped
    tp_f, tp_b, cp_f, cp_b = events.tp_forward, events.tp_backward, events.cp_forward, events.cp_backward
    # stashed activations per layer (Korthikanti et al. 2022 §4.1 with SP, flash attention, GQA, gated MLP):
    #   norm inputs 2·2h, QKV input 2h, fc1 input 2h (all ÷t with SP), attention core, fc1 output 2·up/t,
    #   activation output 2f/t (the fc2 input)
    stash = tokens * (e * (2 * h + h + h) / sp_div + e * (up + f) / t) + attn_stash + tokens * mask_bytes
    if cfg.precision == "fp8":
        stash -= tokens * fp8_stash_saving(model, cfg)
    # what the estimate charges per layer (the stage times are sums of these); the simulator re-runs the events
    ops.update(model_forward=forward + tp_f + cp_f, model_backward=backward + tp_b + cp_b)
    return _Layer(forward, backward, attn_f, tp_f, tp_b, cp_f, cp_b, stash, e * tokens * h / sp_div, ops)


def padded_vocab(model: TransformerConfig, t: int) -> int:
    """The vocabulary as Megatron holds it: padded to a multiple of 128·t (``--make-vocab-size-divisible-by``)."""
    return math.ceil(model.vocab / (VOCAB_DIVISOR * t)) * VOCAB_DIVISOR * t


def end_costs(model: TransformerConfig, cfg: ParallelConfig, device) -> tuple[float, float, float]:
    """The first stage's embedding and the last stage's head, per microbatch on one GPU (docs/model.md §11.5).

    Returns ``(embedding, head, head_forward)`` seconds: the embedding's lookup (write b·s·h) and its
    gradient's scatter-add (read + write); the head's final norm, logits GEMM (Megatron keeps the output
    layer in BF16) and vocab-parallel cross entropy in fp32 (forward: read the logits, write an fp32 copy
    and the exponentials; backward: read the softmax, write the gradient), forward and backward, and the
    head's forward share (the logits GEMM and half the cross entropy).
    """
    t, e, h = cfg.tp, 2, model.hidden
    tokens = cfg.mbs * model.seq // cfg.cp
    vocab = padded_vocab(model, t)
    embed = kernel_time(0.0, 3 * e * tokens * h, device, "bf16")
    lf, lb = _gemm3(tokens, vocab // t, h, device, "fp16" if cfg.precision == "fp16" else "bf16")
    ce = kernel_time(0.0, tokens * vocab / t * (2 + 4 + 4 + 4 + 4 + 2), device, "bf16")
    head = lf + lb + ce + kernel_time(0.0, 3 * 2 * e * tokens * h / (t if cfg.sp else 1), device, "bf16")
    return embed, head, lf + ce / 2


def pipeline_time(stage_times: list[float], microbatches: int, virtual: int = 1) -> float:
    """Time of ``microbatches`` through 1F1B (``virtual = 1``) or interleaved 1F1B stages of these per-microbatch times.

    ``m·T + (Σ_r T_r − T)/v`` with ``T = max_r T_r``, plus ``(p − m)·T·(1 − 1/v)`` when ``m < p`` — the
    closed form of docs/model.md §6.3 (:func:`pipesim.simulation.formulas.iteration_time`, equal to the
    simulator on uniform stages; tests/placement/test_megatron.py checks that the two agree).

    >>> pipeline_time([1.0] * 4, 8), pipeline_time([1.0] * 4, 8, 2)
    (11.0, 9.5)
    """
    p, m, v = len(stage_times), microbatches, virtual
    top = max(stage_times)
    short = (p - m) * top * (1 - 1 / v) if m < p else 0.0
    return m * top + (sum(stage_times) - top) / v + short


def stage_layers(layers: int, p: int) -> list[int]:
    """Layers per pipeline stage as Megatron-Core splits them.

    Equal when ``p`` divides ``layers``; otherwise the middle stages take
    ``⌈L/p⌉`` each and the first and last stages share the rest
    (``--decoder-first-pipeline-num-layers`` / ``--decoder-last-pipeline-num-layers``;
    they also hold the embedding and the output layer).

    >>> stage_layers(80, 4), stage_layers(126, 16), stage_layers(126, 2)
    ([20, 20, 20, 20], [7, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7], [63, 63])
    """
    if layers % p == 0:
        return [layers // p] * p
    if p == 2:
        return [layers // 2, layers - layers // 2]
    k = math.ceil(layers / p)
    rest = layers - (p - 2) * k
    while rest < 2:           # too few left for the ends: shrink the middle
        k -= 1
        rest = layers - (p - 2) * k
    first = rest // 2
    return [first] + [k] * (p - 2) + [rest - first]


def tensor_parallel_problem(model: TransformerConfig, t: int, devices: int) -> str | None:
    """Why ``t``-way tensor parallelism cannot run ``model`` on nodes of ``devices`` GPUs, or ``None``.

    The one check of a tensor-parallel degree (the estimate, the planners and Sailor profiles use it): ``t``
    divides a node's GPUs (TP stays on NVLink) and the attention heads, and is a multiple or a divisor of
    the key/value heads (Megatron-Core shards or replicates them; docs/model.md §11.7).

    >>> from pipesim.workloads.llms import preset
    >>> tensor_parallel_problem(preset("llama3.1-8b"), 16, 8)
    '16 must divide the 8 GPUs of a node (TP stays on NVLink)'
    >>> tensor_parallel_problem(preset("llama3.1-8b"), 4, 8) is None
    True
    """
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        return f"must be a positive integer, got {t!r}"
    if devices % t:
        return f"{t} must divide the {devices} GPUs of a node (TP stays on NVLink)"
    if model.heads % t or model.groups % t and t % model.groups:
        return f"{t} must divide the attention heads ({model.heads}) and key/value heads"
    return None


def tensor_parallel_degrees(model: TransformerConfig, devices: int) -> list[int]:
    """Every ``t`` that :func:`tensor_parallel_problem` accepts on nodes of ``devices`` GPUs.

    >>> from pipesim.workloads.llms import preset
    >>> tensor_parallel_degrees(preset("llama3.1-70b"), 8)
    [1, 2, 4, 8]
    """
    return [t for t in range(1, devices + 1) if tensor_parallel_problem(model, t, devices) is None]


def _check(model: TransformerConfig, cfg: ParallelConfig, cluster: Cluster) -> tuple[NodeType, int, int]:
    if not cluster.homogeneous:
        raise InputError(None, "hardware", f"{cluster.name} mixes node types: estimate on one node type's part")
    node = cluster.nodes[0][0]
    gpus = cluster.device_count
    t, p, c, v = cfg.tp, cfg.pp, cfg.cp, cfg.vp
    if gpus % (t * p * c):
        raise InputError(None, "--tp/--pp/--cp", f"t·p·c = {t * p * c} does not divide the {gpus} GPUs")
    d = gpus // (t * p * c)
    problem = tensor_parallel_problem(model, t, node.devices)
    if problem:
        raise InputError(None, "--tp", problem)
    if v > 1 and model.layers % (p * v):
        raise InputError(None, "--pp/--vp", f"p·v = {p * v} must divide the {model.layers} layers")
    if model.layers < p:
        raise InputError(None, "--pp", f"{p} stages for {model.layers} layers")
    if v > 1 and p == 1:
        raise InputError(None, "--vp", "virtual pipeline stages need --pp > 1")
    if model.seq % (2 * c) and c > 1:
        raise InputError(None, "--cp", f"the sequence ({model.seq}) must split into 2·c = {2 * c} chunks")
    if c > 1 and cfg.attention != "flash":
        raise InputError(None, "--cp", "context parallelism needs fused attention")
    if cfg.gbs % (cfg.mbs * d):
        raise InputError(None, "--gbs", f"{cfg.gbs} is not a multiple of mbs·d = {cfg.mbs}·{d}")
    m = cfg.gbs // (cfg.mbs * d)
    if v > 1 and m % p:
        raise InputError(None, "--gbs", f"interleaving needs microbatches ({m}) divisible by p ({p})")
    if cfg.precision == "fp8" and "fp8" not in node.device.peak_flops:
        raise InputError(None, "--precision", f"{node.device.name} has no FP8 tensor cores")
    return node, d, m


def pipeline_hop(model: TransformerConfig, cfg: ParallelConfig, node: NodeType, gpus: int) -> float:
    """One pipeline transfer (seconds): ``e·T·h/t`` bytes per GPU between neighbouring stages (§11.5).

    With equal GPUs per stage, ``t_r·d_r`` is the same on every stage, so a GPU sends and receives the same
    bytes whichever degrees its neighbours run (§11.9).
    """
    if cfg.pp == 1:
        return 0.0
    pp_group = Group.strided(cfg.pp, gpus // cfg.pp, node)
    act = 2 * (cfg.mbs * model.seq // cfg.cp) * model.hidden / cfg.tp
    return p2p(act, node, same_node=pp_group.intra_node)


def optimizer_step(shard: float, node: NodeType) -> float:
    """Mixed-precision Adam over ``shard`` parameters on one GPU (30 bytes per parameter moved; §11.5)."""
    return kernel_time(0.0, optimizer_bytes(shard, "bf16", "mixed-adam"), node.device, "bf16")


@dataclass(frozen=True)
class StageCost:
    """One pipeline stage on one of its GPUs: per microbatch (seconds) and memory (bytes), docs/model.md §11.5–11.6.

    The one place a stage is priced: :func:`estimate` sums these, and the per-stage planner
    (:mod:`pipesim.placement.plan.megatron_plan`) searches over them.
    """

    time: float        # per microbatch: compute + exposed TP/CP + pipeline transfers (+ embedding / head)
    forward: float     # its forward share (the simulator's, §11.10)
    compute: float     # compute only (with recomputation, embedding and head)
    layer_tp: float    # exposed TP communication per layer (with recomputation)
    layer_cp: float    # exposed CP communication per layer
    pp: float          # pipeline transfers per microbatch (what of them is exposed)
    params: float      # parameters on one GPU of the stage
    memory: float      # bytes on one GPU of the stage
    parts: dict = field(default_factory=dict, compare=False)


def stage_cost(model: TransformerConfig, cfg: ParallelConfig, node: NodeType, layer: _Layer,
               ends: tuple[float, float, float], stage: int, split: list[int], microbatches: int, dp: int,
               recompute: str, hop: float, memory: bool = True) -> StageCost:
    """Stage ``stage`` of ``split`` under ``cfg`` (its own ``tp`` and ``mbs``) with ``dp`` replicas (§11.5–11.6).

    ``layer`` is :func:`layer_cost` of ``cfg``, ``ends`` :func:`end_costs` of ``cfg``, ``hop`` one pipeline
    transfer (seconds).  ``memory=False`` leaves the memory out (0: a stage the caller does not look at,
    as :func:`estimate` does for the middle stages of a Megatron-Core configuration).  Every stage of a
    Megatron-Core configuration has the same ``cfg``; a per-stage plan gives each its own (docs/model.md §11.9).
    """
    p, v, c, t, b, s, h = cfg.pp, cfg.vp, cfg.cp, cfg.tp, cfg.mbs, model.seq, model.hidden
    e = 2
    tokens = b * s // c
    n = split[stage]
    i, m = stage, microbatches
    extra = {"none": 0.0, "selective": layer.attention_forward,
             "full": layer.forward + layer.tp_forward + layer.cp_forward}[recompute]
    lt = layer.forward + layer.backward + extra
    ltp = layer.tp_forward + layer.tp_backward + (layer.tp_forward if recompute == "full" else 0.0)
    lcp = layer.cp_forward + layer.cp_backward + (layer.cp_forward if recompute == "full" else 0.0)
    # pipeline transfers: one activation (÷t, Megatron's scatter/gather optimisation) per chunk boundary and
    # microbatch, forward and backward, each a send/receive pair on the link between neighbouring stages.  As
    # in §10.2 they are part of a stage's time per microbatch — all of it without overlap, what outlasts the
    # chunk beside it with Megatron-LM's overlap_p2p_comm (interleaved schedules, §11.5).
    pp_per_mb = 2 * v * hop
    if cfg.pp_overlapped and p > 1:
        # Megatron-LM's interleaved schedule with overlap_p2p_comm posts each chunk's send and the next chunk's
        # receive (isend/irecv) before it computes the current chunk and waits for them after it
        # (megatron/core/pipeline_parallel/schedules.py): a transfer is exposed only by what it outlasts the
        # chunk beside it on this rank — one chunk's forward (the shorter of the two passes), the stage's layers
        # ÷ v (interleaving needs p·v | L: equal stages) — and the hidden part slows that chunk by the SMs
        # NCCL's send/receive kernel holds (§11.4)
        chunk = n / v * (layer.forward + layer.tp_forward + layer.cp_forward)
        eng = engine(node.device)
        pp_per_mb = 2 * v * (max(0.0, hop - chunk) + overlap_slowdown(chunk, hop, eng.nccl_sms, eng.sms))
    embed, head, head_forward = ends
    time = n * (lt + ltp + lcp) + pp_per_mb
    forward = n * (layer.forward + layer.tp_forward + layer.cp_forward) + pp_per_mb / 2
    if i == 0:
        time += embed
        forward += embed / 3
    if i == p - 1:
        time += head
        forward += head_forward
    compute = n * lt + (embed if i == 0 else 0.0) + (head if i == p - 1 else 0.0)
    # ---- parameters on one GPU -----------------------------------------------------------------
    vocab = padded_vocab(model, t)
    embed_params = model.embedding_params() / t
    head_params = (0 if model.tied_embeddings else vocab * h) / t + model.norm_params
    if p == 1:
        params = embed_params + model.layers * model.layer_params() / t + head_params
    else:
        params = n * model.layer_params() / t
        if i == 0:
            params += embed_params
        if i == p - 1:
            params += head_params + (vocab * h / t if model.tied_embeddings and model.decoder else 0.0)
    # ---- memory --------------------------------------------------------------------------------
    if not memory:
        return StageCost(time, forward, compute, ltp, lcp, pp_per_mb, params, 0.0)
    grad_bytes = 4 if cfg.grad_reduce_fp32 else 2   # the DDP gradient buffer's type
    weights = params * (e + (1 if cfg.precision == "fp8" else 0))   # FP8 keeps a 1-byte copy of each weight
    grads = params * grad_bytes
    # fp32 master weights and Adam moments (12 bytes), plus an fp32 copy of 16-bit gradients: Megatron's
    # "bf16 param, fp32 grads: 6 + 12/d" and "16-bit grads: 4 + 16/d" (d = 1 without the distributed optimizer)
    state_bytes = 12 if grad_bytes == 4 else 16
    states = params * state_bytes / (dp * c if cfg.distributed_optimizer else 1)
    if v > 1:
        chunks = min(m * v, 2 * (p - 1 - i) + (v - 1) * p + 1)
        layers_in_flight = chunks * (n // v)
    else:
        layers_in_flight = min(p - i, m) * n
    if recompute == "full":
        acts = layers_in_flight * layer.input_bytes + layer.activations
    elif recompute == "selective" and cfg.attention == "unfused":
        acts = layers_in_flight * (layer.activations - e * b * (model.heads // t) * s * s) \
            + e * b * (model.heads // t) * s * s
    else:
        acts = layers_in_flight * layer.activations
    if i == 0:
        acts += min(p, m) * e * tokens * h / (t if cfg.sp else 1)          # embedding output per microbatch
    if i == p - 1 and model.decoder:
        acts += tokens * vocab / t * (2 + 4)                            # bf16 logits + fp32 softmax, one microbatch
    allowance = ALLOWANCE_FIXED + ALLOWANCE_FRAGMENTATION * acts
    total = weights + grads + states + acts + allowance
    parts = {"weights": weights, "gradients": grads, "optimizer_states": states, "activations": acts,
             "allowance": allowance, "stage": i}
    return StageCost(time, forward, compute, ltp, lcp, pp_per_mb, params, total, parts)


def stage_dp(cfg: ParallelConfig, node: NodeType, layer: _Layer, params: float, layers: int,
             dp: int) -> dict:
    """A stage's data-parallel reduction (gradient reduce-scatter or all-reduce, parameter all-gather) as the
    events of :func:`~pipesim.placement.plan.megatron_layer.dp_exposed` take it (docs/model.md §11.5)."""
    t, c, e = cfg.tp, cfg.cp, 2
    grad_bytes = 4 if cfg.grad_reduce_fp32 else 2
    dp_group = Group.strided(dp, t * c, node)
    # the gradient reduce runs over data- and context-parallel ranks together (Megatron's dp-cp group)
    dpcp_group = Group.strided(dp * c, t, node) if c > 1 else dp_group
    if cfg.distributed_optimizer:
        rs = reduce_scatter(grad_bytes * params, dpcp_group)
        ag = all_gather(e * params, dpcp_group)
    else:
        rs = all_reduce(grad_bytes * params, dpcp_group)
        ag = 0.0
    eng = engine(node.device)
    ops = {"reduce_scatter": rs, "all_gather": ag, "overlap": bool(cfg.dp_overlap and dp * c > 1),
           "bucket_fraction": 1.0, "backward_window": 0.0, "forward_window": 0.0, "nccl_sms": eng.nccl_sms,
           "sms": eng.sms}
    if cfg.dp_overlap and dp * c > 1:
        # grads of a bucket reduce as soon as the last microbatch's backward produces them; parameters gather
        # bucket by bucket under the next step's first forward (events: placement/plan/megatron_layer.py)
        n = dp * c
        bucket = max(BUCKET_PARAMS, 1_000_000 * n)
        ops.update(bucket_fraction=min(1.0, bucket / max(params, 1.0)),
                   backward_window=layers * (layer.backward + layer.tp_backward),
                   forward_window=layers * (layer.forward + layer.tp_forward))
    return ops


def stage_degrees(model: TransformerConfig, cfg: ParallelConfig, cluster: Cluster,
                  stage_tp: tuple[int, ...] | None) -> tuple[list[ParallelConfig], list[int]]:
    """Each stage's configuration and data-parallel degree (docs/model.md §11.9).

    Without ``stage_tp`` every stage is ``cfg`` with ``d = GPUs/(t·p·c)``.  With it, stage ``r`` runs
    ``t_r``-way tensor parallelism on the same ``GPUs/p`` GPUs, so ``d_r = GPUs/(p·c·t_r)`` replicas, each
    taking ``B/d_r`` sequences of every microbatch of ``B = mbs·d`` sequences (``cfg``'s microbatch across its
    replicas): Piper's per-stage data parallelism (Tarnawski et al., NeurIPS 2021, §3).
    """
    node = cluster.nodes[0][0]
    gpus, p, c = cluster.device_count, cfg.pp, cfg.cp
    d = gpus // (cfg.tp * p * c)
    if stage_tp is None:
        return [cfg] * p, [d] * p
    if len(stage_tp) != p:
        raise InputError(None, "stage_tp", f"needs {p} tensor-parallel degrees, one per stage, got {len(stage_tp)}")
    group = cfg.mbs * d
    configs, dps, cache = [], [], {}
    for r, t in enumerate(stage_tp):
        problem = tensor_parallel_problem(model, t, node.devices)
        if problem:
            raise InputError(None, f"stage_tp[{r}]", problem)
        if gpus % (p * c * t):
            raise InputError(None, f"stage_tp[{r}]", f"{t} must divide the {gpus // (p * c)} GPUs of a stage ÷ c")
        d_r = gpus // (p * c * t)
        if group % d_r:
            raise InputError(None, f"stage_tp[{r}]", f"{d_r} replicas do not split a microbatch of {group} sequences")
        if t not in cache:
            cache[t] = cfg if t == cfg.tp else replace(cfg, tp=t, mbs=group // d_r)
        configs.append(cache[t])
        dps.append(d_r)
    return configs, dps


def _estimate(model: TransformerConfig, cfg: ParallelConfig, cluster: Cluster,
              recompute: str | tuple[str, ...], stage_tp: tuple[int, ...] | None = None) -> Estimate:
    """The estimate with ``recompute`` on every stage, or per stage (a tuple of ``p`` choices), and, with
    ``stage_tp``, a tensor-parallel degree per stage (:func:`stage_degrees`; not Megatron-Core's)."""
    node, d, m = _check(model, cfg, cluster)
    device = node.device
    gpus = cluster.device_count
    p, v = cfg.pp, cfg.vp
    s = model.seq
    split = stage_layers(model.layers, p)
    per_stage = not isinstance(recompute, str)
    choices = tuple(recompute) if per_stage else (recompute,) * p
    if len(choices) != p or any(r not in RECOMPUTE for r in choices):
        raise InputError(None, "recompute", f"must be one of {', '.join(RECOMPUTE)} (per stage: {p} of them)")
    configs, dps = stage_degrees(model, cfg, cluster, stage_tp)
    mixed = len(set(dps)) > 1
    layers, ends = {}, {}
    for sc in configs:
        if sc.tp not in layers:
            layers[sc.tp] = layer_cost(model, sc, node)
            ends[sc.tp] = end_costs(model, sc, device)
    hop = pipeline_hop(model, cfg, node, gpus)
    shown = range(p) if per_stage or mixed else sorted({0, min(1, p - 1), p - 1})
    stages = [stage_cost(model, sc, node, layers[sc.tp], ends[sc.tp], i, split, m, d_r, rc, hop,
                         memory=i in shown) for i, (sc, d_r, rc) in enumerate(zip(configs, dps, choices))]
    stage_time = [st.time for st in stages]
    stage_fwd = [st.forward for st in stages]
    stage_bwd = [total - f for total, f in zip(stage_time, stage_fwd)]
    slowest = max(range(p), key=lambda i: stage_time[i])
    # ---- pipeline: 1F1B / interleaved 1F1B, the simulator's closed form (docs/model.md §6.3):
    #      m·max_r T_r + (Σ_r T_r − max_r T_r)/v, the bubble (p−1)/v stage times on equal stages
    #      (Narayanan et al. 2021 §2.2)
    pipeline = pipeline_time(stage_time, m, v)
    bubble = max(0.0, pipeline - m * stage_time[slowest])
    pp_comm = m * stages[slowest].pp
    # ---- data parallelism: the first stage runs the step's last backward (1F1B drains towards it): its
    # gradient reduction is the one on the critical path
    dp_ops = stage_dp(configs[0], node, layers[configs[0].tp], stages[0].params, split[0], dps[0])
    dp_comm = dp_exposed(dp_ops)
    # the other stages' reductions start earlier: stage r's last backward ends (and its next first forward
    # starts) at least the forward time of stages 0..r−1 before (after) the first stage's; what a reduction
    # outlasts that by is exposed too (it binds when a stage with more parameters than the first follows a short
    # first stage: Megatron's uneven split, many stages).  Its event schedule is run only when a closed-form bound
    # on it (dp_exposed_bound) exceeds the first stage's exposure
    drain, ahead = 0.0, 0.0
    whole = dp_ops["reduce_scatter"] + dp_ops["all_gather"]
    for r in range(1, p):
        ahead += stage_fwd[r - 1]
        if dps[r] * configs[r].cp <= 1:
            continue
        # same degrees: the collectives' time grows at most in proportion to the bytes (affine in them)
        if not mixed and whole * max(1.0, stages[r].params / max(stages[0].params, 1.0)) - ahead <= dp_comm:
            continue
        ops = stage_dp(configs[r], node, layers[configs[r].tp], stages[r].params, split[r], dps[r])
        if dp_exposed_bound(ops) - ahead > max(dp_comm, drain):
            drain = max(drain, dp_exposed(ops) - ahead)
    if drain > dp_comm:
        dp_ops["drain"] = drain
        dp_comm = drain
    # ---- optimizer step: Adam over this rank's shard (mixed precision: 30 bytes per parameter moved); all stages
    # step after a global gradient-norm reduction, so the stage with the largest shard sets its time
    shard = max(st.params / (d_r * sc.cp if sc.distributed_optimizer else 1)
                for st, d_r, sc in zip(stages, dps, configs))
    opt = optimizer_step(shard, node)
    # ---- totals ------------------------------------------------------------------------------
    compute = m * stages[slowest].compute
    tp_total = m * split[slowest] * stages[slowest].layer_tp
    cp_total = m * split[slowest] * stages[slowest].layer_cp
    breakdown = Breakdown(compute, bubble, tp_total, cp_total, pp_comm, dp_comm, opt)
    iteration = breakdown.total
    # ---- memory: the first, second and last stage hold the most (all stages when they differ) --------
    stage_memory = [(i, stages[i].memory) for i in shown]
    worst = max(shown, key=lambda i: stages[i].memory)    # the first of equals, as before
    memory_per_gpu, mem = stages[worst].memory, dict(stages[worst].parts)
    tokens_step = cfg.gbs * s
    tflops = model.model_flops(tokens_step) / iteration / gpus / 1e12
    label = choices[0] if len(set(choices)) == 1 else "per-stage"
    # the configuration reported is the first stage's (with per-stage degrees: its t, its replicas' microbatch)
    return Estimate(model, configs[0], gpus, dps[0], m, label, iteration, breakdown, memory_per_gpu, mem,
                    memory_capacity(node), tokens_step / iteration / gpus, tflops,
                    stage_forward=tuple(stage_fwd), stage_backward=tuple(stage_bwd), after_flush=dp_comm + opt,
                    stage_recompute=choices, stage_memory=tuple(stage_memory),
                    layer_ops=dict(layers[configs[0].tp].ops), dp_ops=dp_ops,
                    stage_tp=tuple(sc.tp for sc in configs), stage_dp=tuple(dps),
                    stage_mbs=tuple(sc.mbs for sc in configs))


def estimate(model: TransformerConfig, cluster: Cluster, config: ParallelConfig) -> Estimate:
    """The predicted step time and memory of ``config`` (docs/model.md §11).

    Parameters
    ----------
    model : TransformerConfig
        The transformer (its ``seq``; the microbatch size is ``config.mbs``).
    cluster : Cluster
        A homogeneous cluster; all its GPUs train (``d = GPUs / (t·p·c)``).
    config : ParallelConfig
        ``recompute=None`` picks the fastest of none, selective, full that fits
        (full when none fits).

    Returns
    -------
    Estimate

    Raises
    ------
    InputError
        Degrees that do not divide the GPUs, heads, layers or batch.

    Examples
    --------
    >>> from pipesim.hardware.clusters import load_cluster
    >>> from pipesim.workloads.llms import preset
    >>> r = estimate(preset("llama3.1-8b"), load_cluster("dgx-h100x16"), ParallelConfig(tp=1, cp=2, mbs=1, gbs=1024))
    >>> r.dp, r.microbatches, r.fits
    (64, 16, True)
    """
    if config.recompute is not None:
        return _estimate(model, config, cluster, config.recompute)
    options = [_estimate(model, config, cluster, r) for r in RECOMPUTE]
    fitting = [o for o in options if o.fits]
    best = min(fitting, key=lambda o: o.iteration_time) if fitting else options[-1]
    return best
