"""Iteration time and peak memory of a Sailor plan, from Sailor's own profiles (docs/model.md §12.2).

Problem: given a Sailor plan (pipeline stages, each with data-parallel
replicas of possibly different GPU types, TP degrees and zones), a microbatch
size and a global batch, predict the seconds per training iteration and the
peak bytes on any GPU, from Sailor's per-layer profiles, per-layer memory and
measured link bandwidths — the inputs Sailor's planner itself uses.

Model (one term per cause, each defined once here and reused by the planner):

* stage compute ``c_s`` = the slowest replica's sum of forward + backward layer
  times (a stage waits for all its replicas);
* stage transfers ``p_s``: per microbatch, every point-to-point transfer the
  stage takes part in — receive and send the activation, receive and send its
  gradient — because the engine's sends and receives block both ends
  (DeepSpeed's ``p2p.send``/``recv``).  A boundary tensor crosses once:
  Sailor's engine splits it over the ``k`` tensor-parallel ranks
  (``PartitionedTensor``), the ``k`` parts cross at once and the receiver
  all-gathers them inside its node.  Sailor measured its ``k``-GPUs-per-node
  bandwidth with ``k`` pairs sending at once and records their total rate,
  so the transfer takes the tensor over that ``k``-pair fit between the two
  replicas' (zone, GPU type);
* rebuilding a received tensor (``reconstruct_tensor``): before the forward
  (activation) or backward (gradient) can use it, every receiving GPU fills a
  fresh host buffer of the whole tensor (in fp32, whatever the training
  precision) with zeros on one CPU core, copies it
  to the GPU from pageable memory, writes its part in and all-gathers the
  parts over the replica's TP ranks inside the node — after a blocking
  ``.to('cpu')``, so the GPU waits.  A host buffer of 32 MiB or more is
  fresh memory every time (glibc maps it anew and unmaps it on free), so the
  kernel first zeroes each page the fill touches: the same bytes zeroed twice
  (:data:`FRESH_HOST_BYTES`).  Charged at measured rates where they are
  known (:data:`REBUILD_RATES`: GH200), nothing elsewhere;
* pipeline (1F1B with flush): ``sum_s (c_s + p_s) + (M - 1) * max_s (c_s + p_s)``
  — fill and drain go through every stage once; the steady state runs at the
  slowest stage, so uneven stages are charged where they bind (stages with
  different replica counts: ``max_s (M_s - 1)(c_s + p_s)``);
* optimizer step: the profile's step time is that of the model Sailor's
  profiler ran — the embedding, two transformer layers and the head
  (``profile.sh`` passes ``--num_prof_layers 2``) — so a stage's step is it
  scaled by the stage's parameters over that model's (Adam's step is
  elementwise, linear in the parameters); stages step in parallel, so the
  slowest counts;
* gradient synchronisation: per stage a ring all-reduce of the stage's
  gradients over its replicas, in DeepSpeed's buckets of 5e8 elements, each bucket
  ``2 (D - 1)`` steps of ``bytes / D`` on the ring's slowest link; every
  tensor-parallel rank reduces its shard in its own ring at the same time, so
  the ``k`` rings between two nodes share the ``k``-pair fit; stages
  synchronise in parallel, after the flush;
* memory per GPU: parameters × 24 bytes (fp32 weights 4, Adam's two moments 8,
  fp32 gradients 4, the communication buffer 4 and DeepSpeed's start-up
  copies 4, as Sailor accounts them), plus activations of ``min(S - s, M)``
  microbatches in flight at stage ``s`` (1F1B), plus the runtime's reserve:
  300 MB of CUDA context, and on GH200 Megatron's fused kernels (4.76 GB,
  measured by Sailor there only).

Numbers cross links in the training precision: 4 bytes (fp32) by default, as
Sailor's measured runs train (its launch script enables neither fp16 nor bf16,
and its simulator validates them with ``fp16=False``).

Guarantee: the prediction reads only the plan's structure, ``mbs`` and
``gbs``, never its measurements (``real``, ``red_grads``, ``max_mem``).

Reference: Strati et al., "Sailor: Automating Distributed Training over
Dynamic, Heterogeneous, and Geo-distributed Clusters", SOSP 2025, §4.2
(simulator); facts read from eth-easl/sailor, pipesim's own code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipesim.errors import InputError
from pipesim.placement.plan.sailor_format import (
    SailorBandwidths,
    SailorLayerInfo,
    SailorPlan,
    SailorProfiles,
    SailorReplica,
    SailorTrainingConfig,
    read_bandwidths,
    read_layer_memory,
    read_profiles,
    read_sailor_plan,
    read_training_config,
)

__all__ = [
    "BUCKET_ELEMENTS",
    "CONTEXT_BYTES",
    "FRESH_HOST_BYTES",
    "KERNEL_LOADING_BYTES",
    "PRECISION_BYTES",
    "REBUILD_RATES",
    "REBUILT_ELEMENT_BYTES",
    "RUNTIME_RESERVE_BYTES",
    "RebuildRates",
    "STATE_BYTES_PER_PARAM",
    "SailorEstimate",
    "SailorInputs",
    "Network",
    "SailorStageEstimate",
    "boundary_time",
    "estimate_sailor_files",
    "estimate_sailor_plan",
    "optimizer_time",
    "p2p_time",
    "parallel_ranks",
    "pipeline_time",
    "profiled_params",
    "rebuild_time",
    "replica_memory",
    "ring_allreduce_time",
    "runtime_reserve",
    "load_sailor_inputs",
]

PRECISION_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}  # bytes per activation / gradient element
# DeepSpeed's all-reduce bucket, in elements: the pipeline engine's ReduceGrads passes MEMORY_OPT_ALLREDUCE_SIZE
# (5e8) as ``elements_per_buffer`` and ``allreduce_no_retain`` adds tensors to a bucket until their ``numel()``
# exceeds it (deepspeed/runtime/engine.py, DeepSpeed 0.16.5 as in Sailor's image): 2 GB of fp32 gradients
BUCKET_ELEMENTS = 500_000_000
# fp32 master 4 + Adam moments 8 + fp32 gradients 4 + communication buffer 4 + DeepSpeed start-up copies 4
STATE_BYTES_PER_PARAM = 24
CONTEXT_BYTES = 300e6  # CUDA context on every GPU (Sailor's memory model)
# Loading Megatron's fused kernels, which Sailor notes "depends on GPU + platform" and measured on its
# GH200 nodes only; other GPUs keep the context alone (Sailor's RTX runs peak 0.5-1.1 GiB above the rest)
KERNEL_LOADING_BYTES = {"GH-96": 4.76e9}
RUNTIME_RESERVE_BYTES = KERNEL_LOADING_BYTES["GH-96"] + CONTEXT_BYTES  # a GH200 runtime's reserve


@dataclass(frozen=True)
class RebuildRates:
    """Measured rates of the steps by which a GPU rebuilds a received boundary tensor (:func:`rebuild_time`)."""

    host_fill: float  # bytes/s one CPU core writes zeros into host memory
    host_to_device: float  # bytes/s of a copy from pageable host memory to the GPU
    gather_latency: float  # s, an all-gather of the TP ranks' parts inside the node, beyond its bytes
    gather_bandwidth: float  # bytes/s of one rank's part in that all-gather


# Per GPU type (Sailor's names); a type not listed is charged no rebuild (its rates are not measured).
# GH-96 (a GH200 superchip: Grace CPU, LPDDR5X, NVLink-C2C; Sailor's runs: 4 per node, NVLink among them):
# * host_fill: one Grace core's memset of LPDDR5X, 55.9 GB/s at 62 MB and 54.1 GB/s at 88 MB (67 GB/s at
#   11 MB, 46 GB/s at 250 MB) - the Grace Hopper benchmark of Fusco et al. (arXiv:2408.11556) run on a
#   GH200 480 GB, results in github.com/ntua-el20062/grace-hopper-benchmark (results_og/memset/host/single);
# * host_to_device: cudaMemcpy from numa_alloc'd (pageable) host memory to cudaMalloc memory, 407 GB/s
#   (same results, memcpy/cuda/heatmap/MMH_CMC): over NVLink-C2C (450 GB/s per direction, NVIDIA);
# * gather: NCCL all-gather of 4 GH-96 in one node, fp32, measured by Sailor's authors with Aceso's
#   profiler (eth-easl/sailor, Aceso/profiler/GH-96/profiled-data-fp32/comm_profile.pkl): 0.193 ms with
#   8 MiB per rank, 0.937 ms with 64 MiB, i.e. 86.7 us + part / 78.9 GB/s (2 GPUs: within 3 % of it).
REBUILD_RATES = {"GH-96": RebuildRates(host_fill=55e9, host_to_device=407e9,
                                       gather_latency=86.7e-6, gather_bandwidth=78.9e9)}

# A host buffer of at least this many bytes is fresh, zero-filled memory from the kernel on every allocation.
# glibc's malloc serves a request of at least its mmap threshold with mmap and gives it back with munmap on free;
# the threshold starts at 128 KiB and rises to the size of a freed mapped block, but only up to
# DEFAULT_MMAP_THRESHOLD_MAX = 4 * 1024 * 1024 * sizeof(long) = 32 MiB on 64-bit systems (mallopt(3), "M_MMAP_THRESHOLD").
# A buffer below it is mapped once, then kept and reused by the heap; at or above it (a block carries a header, so a
# request of 32 MiB is above it) every allocation is a new anonymous mapping, whose pages the kernel zeroes when they
# are first touched (mmap(2): MAP_ANONYMOUS contents are initialised to zero).  PyTorch's CPU tensors come from
# malloc (c10's alloc_cpu: posix_memalign; Sailor's image is NGC PyTorch 24.10, glibc 2.35).
FRESH_HOST_BYTES = 32 * 2**20
# Sailor's reconstruct_tensor builds a received tensor as torch.zeros(num_el, dtype=torch.float32), whatever the
# training precision (deepspeed/utils.py in eth-easl/sailor)
REBUILT_ELEMENT_BYTES = 4


@dataclass(frozen=True)
class SailorInputs:
    """Everything a prediction reads besides the plan."""

    config: SailorTrainingConfig
    profiles: SailorProfiles
    layer_info: SailorLayerInfo
    bandwidths: SailorBandwidths


def load_sailor_inputs(config_path: str | Path, profiles_dir: str | Path | None = None) -> SailorInputs:
    """Read a training config and, from ``profiles_dir`` (default: the config's folder),
    ``profiles_tmp.json``, ``llm_info.json`` and ``multizone_bandwidths_het.json``."""
    config_path = Path(config_path)
    folder = Path(profiles_dir) if profiles_dir is not None else config_path.parent
    if not folder.is_dir():
        raise InputError(folder, "profiles", "not a folder")
    return SailorInputs(
        config=read_training_config(config_path),
        profiles=read_profiles(folder / "profiles_tmp.json"),
        layer_info=read_layer_memory(folder / "llm_info.json"),
        bandwidths=read_bandwidths(folder / "multizone_bandwidths_het.json"),
    )


@dataclass(frozen=True)
class SailorStageEstimate:
    """One pipeline stage's share of the iteration (seconds) and its peak memory (bytes)."""

    pipeline: int
    stage: int
    layers: tuple[int, int]  # first, last
    replicas: int
    gpu_types: tuple[str, ...]
    compute: float  # forward + backward per microbatch, slowest replica
    transfer: float  # activation + gradient sends and receives per microbatch, with `rebuild`
    optimizer: float
    gradient_sync: float
    memory_per_gpu: float  # max over the stage's GPUs
    rebuild: float = 0.0  # the part of `transfer` spent rebuilding received tensors (reconstruct_tensor)


@dataclass(frozen=True)
class SailorEstimate:
    """Predicted seconds per iteration and peak bytes per GPU, with the breakdown.

    ``iteration_time = pipeline_fill_drain + pipeline_steady + optimizer + gradient_sync``.
    """

    iteration_time: float
    memory_per_gpu: float
    microbatches: int
    pipeline_fill_drain: float
    pipeline_steady: float
    optimizer: float
    gradient_sync: float
    bottleneck_stage: int
    stages: tuple[SailorStageEstimate, ...]

    def to_dict(self) -> dict:
        return {
            "iteration_time": self.iteration_time,
            "memory_per_gpu": self.memory_per_gpu,
            "microbatches": self.microbatches,
            "breakdown": {
                "pipeline_fill_drain": self.pipeline_fill_drain,
                "pipeline_steady": self.pipeline_steady,
                "optimizer": self.optimizer,
                "gradient_sync": self.gradient_sync,
                "bottleneck_stage": self.bottleneck_stage,
            },
            "stages": [
                {
                    "pipeline": s.pipeline, "stage": s.stage, "layers": list(s.layers), "replicas": s.replicas,
                    "gpu_types": list(s.gpu_types), "compute": s.compute, "transfer": s.transfer,
                    "rebuild": s.rebuild,
                    "optimizer": s.optimizer, "gradient_sync": s.gradient_sync, "memory_per_gpu": s.memory_per_gpu,
                }
                for s in self.stages
            ],
        }


class Network(Protocol):
    """What the model asks of a network: seconds for ``streams`` GPUs of one replica's node to each
    send ``nbytes`` to a GPU of another replica's node, all at once."""

    def transfer_time(self, sender: SailorReplica, receiver: SailorReplica, nbytes: float,
                      streams: int = 1) -> float: ...


def parallel_ranks(a: SailorReplica, b: SailorReplica) -> int:
    """GPUs of ``a``'s node that talk to ``b``'s at once: one per tensor-parallel rank pair.

    >>> parallel_ranks(SailorReplica("G", 8, "z", 8), SailorReplica("H", 4, "z", 4))
    4
    """
    return min(a.tp, b.tp)


def ring_allreduce_time(nbytes: float, replicas: Sequence[SailorReplica], network: Network,
                        element_bytes: int = 4) -> float:
    """Ring all-reduce of ``nbytes`` per GPU over ``replicas`` in buckets of :data:`BUCKET_ELEMENTS`
    elements of ``element_bytes`` each (s).

    Each bucket takes ``2 (D - 1)`` steps of ``bucket / D`` bytes; every step
    waits for the ring's slowest link.  Every tensor-parallel rank reduces
    its own shard in its own ring at the same time, so a step between two
    nodes carries :func:`parallel_ranks` transfers that share the link.
    """
    d = len(replicas)
    if d <= 1 or nbytes <= 0:
        return 0.0
    pairs = [(replicas[j], replicas[(j + 1) % d]) for j in range(d)]
    total = 0.0
    remaining = nbytes
    while remaining > 0:
        bucket = min(BUCKET_ELEMENTS * element_bytes, remaining)
        total += 2 * (d - 1) * max(network.transfer_time(a, b, bucket / d, parallel_ranks(a, b)) for a, b in pairs)
        remaining -= bucket
    return total


def p2p_time(sender: SailorReplica, receiver: SailorReplica, nbytes: float, network: Network) -> float:
    """Seconds to move one boundary tensor of ``nbytes`` from a replica to one of the next or previous stage.

    Sailor's engine splits the tensor over the sender's tensor-parallel
    ranks (``PartitionedTensor``), each rank sends its part to its
    counterpart and the receiver all-gathers the parts inside its node: the
    tensor crosses once, in :func:`parallel_ranks` parts at the same time.
    """
    k = parallel_ranks(sender, receiver)
    return network.transfer_time(sender, receiver, nbytes / k, k)


def rebuild_time(receiver: SailorReplica, nbytes: float, element_bytes: int = 4) -> float:
    """Seconds a GPU of ``receiver`` spends rebuilding a received boundary tensor of ``nbytes``
    (``element_bytes`` per element: the training precision).

    Sailor's engine (``reconstruct_tensor``, before the forward of an
    activation or the backward of a gradient) reads the partition's meta data
    with a blocking ``.to('cpu')``, so the GPU has drained its queue, then
    builds the whole tensor as ``torch.zeros(n).cuda()`` — zeros written into
    fresh host memory by one CPU core (``torchrun`` sets ``OMP_NUM_THREADS=1``)
    and copied to the GPU from pageable memory — writes its part in and
    all-gathers the parts over the replica's ``TP`` ranks (each part
    ``1 / TP`` of the whole; none at TP 1).  The GPU is idle throughout.
    The whole is built in fp32 whatever the training precision
    (``torch.zeros(num_el, dtype=torch.float32)``), so the host buffer, the
    copy and the all-gather carry 4 bytes per element
    (:data:`REBUILT_ELEMENT_BYTES`).

    A buffer of :data:`FRESH_HOST_BYTES` or more is a new anonymous mapping
    on every receive (glibc's mmap threshold stops rising at 32 MiB), so
    before the fill writes a page the kernel zeroes it (``clear_page``): a
    second zero fill of the same bytes by the same core, charged at the same
    measured rate.  Smaller buffers are reused by the heap and zeroed once.

    Rates: :data:`REBUILD_RATES`; a GPU type without measured rates is
    charged nothing.  Left out: the copies inside GPU memory (the parts and
    one clone of the whole, ~0.05 ms for 64 MiB at GH200's 4 TB/s), and of
    first touching a fresh page all but its zeroing — the trap into the
    kernel and mapping the page, and unmapping the buffer after the copy
    (no measurement of them; docs/benchmarks.md).

    >>> round(rebuild_time(SailorReplica("GH-96", 4, "z", 4), 2**26) * 1e3, 2)  # 64 MiB, TP 4: fresh pages
    2.9
    >>> round(rebuild_time(SailorReplica("GH-96", 4, "z", 4), 2**23) * 1e3, 2)  # 8 MiB: the heap's pages
    0.29
    >>> round(rebuild_time(SailorReplica("GH-96", 4, "z", 4), 2**25, element_bytes=2) * 1e3, 2)  # the same in bf16
    2.9
    >>> rebuild_time(SailorReplica("RTX-2080", 8, "z", 8), 2**26)
    0.0
    """
    rates = REBUILD_RATES.get(receiver.gpu)
    if rates is None or nbytes <= 0:
        return 0.0
    built = nbytes * REBUILT_ELEMENT_BYTES / element_bytes  # bytes of the fp32 whole
    zero_fills = 2 if built >= FRESH_HOST_BYTES else 1  # the kernel's page zeroing, then the fill's own
    host = zero_fills * built / rates.host_fill + built / rates.host_to_device
    gather = rates.gather_latency + built / receiver.tp / rates.gather_bandwidth if receiver.tp > 1 else 0.0
    return host + gather


def boundary_time(replicas: Sequence[SailorReplica], peers: Sequence[SailorReplica], nbytes: float,
                  network: Network, element_bytes: int = 4) -> float:
    """One stage's share of one boundary per microbatch: send and receive (blocking) and rebuild what
    it received (:func:`rebuild_time`), slowest pairing.

    Replica ``j`` talks to peer ``j mod len(peers)`` (Sailor's pairing).
    """
    return max(2 * p2p_time(rep, peers[j % len(peers)], nbytes, network) + rebuild_time(rep, nbytes, element_bytes)
               for j, rep in enumerate(replicas))


def profiled_params(sizes: Sequence) -> int:
    """Parameters of the model Sailor's profiler timed the optimizer step on (per GPU at one TP degree).

    The profiler runs the model with two transformer layers and copies their
    times to every transformer layer (``profile.sh``: ``--num_prof_layers 2``);
    the transformer layers are the run of layers from layer 1 with layer 1's
    parameter count, and the profiled model keeps two of them beside the
    other layers (embedding, head, final norm).

    Examples
    --------
    >>> from types import SimpleNamespace as L
    >>> profiled_params([L(params=50), L(params=10), L(params=10), L(params=10), L(params=10), L(params=40)])
    110
    """
    if len(sizes) < 2:
        return sum(x.params for x in sizes)
    run = 1
    while 1 + run < len(sizes) and sizes[1 + run].params == sizes[1].params:
        run += 1
    return sum(x.params for x in sizes) - (run - min(run, 2)) * sizes[1].params


def optimizer_time(step: float, params: float, profiled: float) -> float:
    """Seconds of one GPU's optimizer step over ``params`` parameters.

    ``step`` is the profile's optimizer column, timed on ``profiled``
    parameters (:func:`profiled_params`); the step is elementwise, so it
    scales with the parameters.

    >>> optimizer_time(0.001, 300, 100)
    0.003
    """
    return step * params / max(1, profiled)


def runtime_reserve(gpu: str) -> float:
    """Bytes a GPU of type ``gpu`` holds besides the model: the CUDA context, and the fused kernels where measured.

    >>> runtime_reserve("GH-96") / 1e9, runtime_reserve("RTX-2080") / 1e9
    (5.06, 0.3)
    """
    return KERNEL_LOADING_BYTES.get(gpu, 0.0) + CONTEXT_BYTES


def replica_memory(sizes: Sequence, layers: Sequence[int], mbs: int, in_flight: int, gpu: str) -> float:
    """Peak bytes on one GPU of type ``gpu`` of a replica holding ``layers`` (``sizes``: the LayerMemory at its TP degree)."""
    params = sum(sizes[l].params for l in layers)
    act = sum(sizes[l].activation_bytes for l in layers) * mbs * in_flight
    return params * STATE_BYTES_PER_PARAM + act + runtime_reserve(gpu)


def pipeline_time(stage_times: list[float], microbatches: int | Sequence[int]) -> tuple[float, float]:
    """1F1B with flush: (fill + drain, steady) seconds for per-microbatch stage times.

    ``microbatches`` may differ by stage (a stage with fewer replicas runs
    more microbatches on each): the steady state is the longest
    ``(M_s − 1) · a_s``; with one ``M`` it is ``(M − 1) · max_s a_s``.

    Examples
    --------
    >>> pipeline_time([1.0, 2.0, 1.0], 4)
    (4.0, 6.0)
    >>> pipeline_time([1.0, 2.0], [8, 4])
    (3.0, 7.0)
    """
    counts = [microbatches] * len(stage_times) if isinstance(microbatches, int) else list(microbatches)
    return sum(stage_times), max((m - 1) * a for m, a in zip(counts, stage_times))


def estimate_sailor_plan(plan: SailorPlan, inputs: SailorInputs, precision: str = "fp32",
                         network: Network | None = None) -> SailorEstimate:
    """Predict a Sailor plan's iteration time and peak memory per GPU (docs/model.md §12.2).

    Parameters
    ----------
    plan : SailorPlan
        From :func:`~pipesim.placement.plan.sailor_format.read_sailor_plan`;
        its measurements are never read.
    inputs : SailorInputs
        From :func:`load_sailor_inputs`.
    precision : {"fp32", "fp16", "bf16"}
        The training precision: bytes per element of the activations and
        gradients that cross links (Sailor's runs: fp32).
    network : optional
        Transfer times between replicas; default the measured bandwidths in
        ``inputs`` (a planner passes its cluster's network, §12.3).

    Returns
    -------
    SailorEstimate

    Raises
    ------
    InputError
        The plan's stages do not cover the model's layers, or the profiles,
        layer memory or bandwidths lack an entry the plan needs (named).
    """
    if precision not in PRECISION_BYTES:
        raise InputError(None, "precision", f"must be one of {sorted(PRECISION_BYTES)}, got {precision!r}")
    elem = PRECISION_BYTES[precision]
    config, profiles, info = inputs.config, inputs.profiles, inputs.layer_info
    bw = inputs.bandwidths if network is None else network
    model = config.model
    gbs = plan.gbs if plan.gbs is not None else config.global_batch_size
    mbs = plan.mbs
    if len(plan.pipelines) > 1:
        raise InputError(plan.source, "pipeline_list", f"{len(plan.pipelines)} pipelines: the model (§12.2) "
                         "covers one pipeline (its stages may differ in replicas, GPU types and TP)")
    dp_first = len(plan.pipelines[0].replicas[0])
    microbatches = math.ceil(gbs / (mbs * dp_first))
    # boundary tensors are the same at every TP degree: each rank holds the full activation
    unsplit = info.of(model, 1)
    if len(unsplit) != config.num_layers:
        raise InputError(info.source, f"{model}.1", f"has {len(unsplit)} layers, the config {config.num_layers}")

    stage_rows: list[SailorStageEstimate] = []
    pipeline_totals = []
    optimizer = 0.0
    sync = 0.0
    memory = 0.0
    bottleneck = 0
    for p, pipe in enumerate(plan.pipelines):
        covered = sum(len(s) for s in pipe.stages)
        if covered != config.num_layers:
            raise InputError(plan.source, f"pipeline_list[{p}].layers_per_stage",
                             f"covers {covered} layers, the model {model!r} has {config.num_layers}")
        n_stages = len(pipe.stages)
        # each replica of stage s runs M_s microbatches (Sailor's plans may give stages different dp)
        stage_micro = [math.ceil(gbs / (mbs * len(r))) for r in pipe.replicas]
        per_stage = []
        for s, layers in enumerate(pipe.stages):
            reps = pipe.replicas[s]
            where = f"pipeline_list[{p}].tmp_per_stage[{s}]"
            compute = 0.0
            opt = 0.0
            mem = 0.0
            for rep in reps:
                times = profiles.layers(model, rep.gpu, mbs, rep.tp, where)
                if len(times) != config.num_layers:
                    raise InputError(profiles.source, f"{model}.{rep.gpu}.{mbs}.{rep.tp}",
                                     f"has {len(times)} layers, the config {config.num_layers}")
                compute = max(compute, sum(times[l].forward + times[l].backward for l in layers))
                sizes = info.of(model, rep.tp)
                params = sum(sizes[l].params for l in layers)
                opt = max(opt, optimizer_time(times[layers[0]].optimizer, params, profiled_params(sizes)))
                mem = max(mem, replica_memory(sizes, layers, mbs, min(n_stages - s, stage_micro[s]), rep.gpu))
            # blocking point-to-point: the stage is busy for both directions of both its boundaries
            # and rebuilds the tensor it receives at each (§12.2)
            transfer = 0.0
            rebuild = 0.0
            for other, boundary in ((s + 1, layers[-1]), (s - 1, pipe.stages[s - 1][-1] if s > 0 else None)):
                if 0 <= other < n_stages:
                    nbytes = unsplit[boundary].output_elements * mbs * elem
                    transfer += boundary_time(reps, pipe.replicas[other], nbytes, bw, elem)
                    rebuild += max(rebuild_time(rep, nbytes, elem) for rep in reps)
            # the ring carries the largest shard (the smallest TP degree holds the most parameters)
            grad_bytes = max(sum(info.of(model, rep.tp)[l].params for l in layers) for rep in reps) * elem
            stage_sync = ring_allreduce_time(grad_bytes, list(reps), bw, elem)
            per_stage.append(compute + transfer)
            optimizer = max(optimizer, opt)
            sync = max(sync, stage_sync)
            memory = max(memory, mem)
            stage_rows.append(SailorStageEstimate(
                pipeline=p, stage=s, layers=(layers[0], layers[-1]), replicas=len(reps),
                gpu_types=tuple(sorted({r.gpu for r in reps})), compute=compute, transfer=transfer,
                optimizer=opt, gradient_sync=stage_sync, memory_per_gpu=mem, rebuild=rebuild))
        fill, steady = pipeline_time(per_stage, stage_micro)
        binding = max(range(n_stages), key=lambda i: (stage_micro[i] - 1) * per_stage[i] + per_stage[i] * 1e-12)
        pipeline_totals.append((fill + steady, fill, steady, binding))
    _, fill, steady, bottleneck = max(pipeline_totals)
    return SailorEstimate(
        iteration_time=fill + steady + optimizer + sync,
        memory_per_gpu=memory,
        microbatches=microbatches,
        pipeline_fill_drain=fill,
        pipeline_steady=steady,
        optimizer=optimizer,
        gradient_sync=sync,
        bottleneck_stage=bottleneck,
        stages=tuple(stage_rows),
    )


def estimate_sailor_files(config_path: str | Path, plan_path: str | Path,
                          profiles_dir: str | Path | None = None, precision: str = "fp32") -> SailorEstimate:
    """:func:`estimate_sailor_plan` on files: a training config, a plan and the profiles' folder."""
    return estimate_sailor_plan(read_sailor_plan(plan_path), load_sailor_inputs(config_path, profiles_dir), precision)
