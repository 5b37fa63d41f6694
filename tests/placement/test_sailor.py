"""Sailor's inputs read as they are, and the plan estimate's cost model (docs/model.md §12.1-12.2)."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest

from pipesim.errors import InputError
from pipesim.placement.plan.sailor import (
    BUCKET_ELEMENTS,
    FRESH_HOST_BYTES,
    REBUILD_RATES,
    REBUILT_ELEMENT_BYTES,
    RUNTIME_RESERVE_BYTES,
    STATE_BYTES_PER_PARAM,
    SailorInputs,
    estimate_sailor_files,
    estimate_sailor_plan,
    load_sailor_inputs,
    optimizer_time,
    pipeline_time,
    profiled_params,
    rebuild_time,
    replica_memory,
    ring_allreduce_time,
    runtime_reserve,
)
from pipesim.placement.plan.sailor_format import (
    SailorReplica,
    read_bandwidths,
    read_layer_memory,
    read_profiles,
    read_sailor_plan,
    read_training_config,
)
from tests.strategies import SHARED

SAILOR = SHARED.parent / "sailor"
RUNS = sorted((SAILOR / "validation" / "OPT-350").glob("*.json")) if SAILOR.is_dir() else []


@pytest.fixture
def sailor_dir():
    if not SAILOR.is_dir():
        pytest.skip(f"Sailor's files are not at {SAILOR} (../shared is absent)")
    return SAILOR


# --- a tiny synthetic job: 4 layers, GPU types "fast" and "slow", one zone ---------------------------

def tiny_inputs(bandwidth_gbps: float = 10.0, fast: str = "fast") -> SailorInputs:
    """``fast`` names the fast GPU type (``GH-96``: one whose rebuild rates are measured)."""
    def times(scale):  # forward, backward, the profiled model's optimizer step
        return {str(l): [0.01 * scale, 0.02 * scale, 0.004 * scale] for l in range(4)}

    profiles = {"M": {fast: {"2": {"1": times(1), "2": times(0.5)}},
                      "slow": {"2": {"1": times(3)}}}}
    layer = {"params_floats": 1000, "act_output_floats": 500_000, "act_mem_floats": 250}
    info = {"M": {"1": {str(l): layer for l in range(4)},
                  "2": {str(l): {**layer, "params_floats": 500} for l in range(4)}}}
    fit = [[0.0, 0.0, bandwidth_gbps], bandwidth_gbps * 1e9]
    both = [[0.0, 0.0, 2 * bandwidth_gbps], 2 * bandwidth_gbps * 1e9]  # two pairs at once: a NIC per GPU
    bw = {"z": {g: {n: {"z": {h: {n: f} for h in (fast, "slow")}} for n, f in (("1", fit), ("2", both))}
                for g in (fast, "slow")}}
    config = {"model": "M", "global_batch_size": 16, "num_all_layers": 4, "optimizer": "Adam"}
    return SailorInputs(read_training_config("c.json", config), read_profiles("p.json", profiles),
                        read_layer_memory("i.json", info), read_bandwidths("b.json", bw))


def tiny_plan(stages, replicas, mbs=2, gbs=16, **measured):
    data = {"pipeline_list": [{
        "num_stages": len(stages), "layers_per_stage": stages,
        "tmp_per_stage": [[[[[g, 2, "z"]], tp] for g, tp in reps] for reps in replicas],
        "dp": [len(reps) for reps in replicas]}], "mbs": mbs, "gbs": gbs, **measured}
    return data


def test_pipeline_fill_drain_and_steady_state_by_hand():
    # three stages, four microbatches: every stage once, then three more at the slowest
    assert pipeline_time([1.0, 2.0, 1.0], 4) == (4.0, 6.0)
    assert pipeline_time([3.0], 1) == (3.0, 0.0)


def test_two_uneven_stages_by_hand():
    inputs = tiny_inputs()
    est = estimate_sailor_plan(read_sailor_plan("p.json", tiny_plan([[0], [1, 2, 3]], [[("fast", 1)], [("fast", 1)]])),
                               inputs)
    m = 16 // 2
    send = 500_000 * 2 * 4 / 10e9  # elements x mbs x fp32 bytes at 10 GB/s
    # blocking point-to-point: each stage sends and receives the activation and its gradient
    c0, c1 = 0.03 + 2 * send, 0.09 + 2 * send
    assert est.microbatches == m
    assert est.pipeline_fill_drain == pytest.approx(c0 + c1)
    assert est.pipeline_steady == pytest.approx((m - 1) * c1)
    assert est.bottleneck_stage == 1
    # the step was profiled on layer 0 and two "transformer" layers (3000 parameters): the last stage
    # holds 3000 parameters, so it takes the profiled step
    assert est.optimizer == pytest.approx(0.004)
    assert est.gradient_sync == 0.0
    assert est.iteration_time == pytest.approx(c0 + c1 + (m - 1) * c1 + 0.004)
    # memory: stage 0 keeps min(S - 0, M) = 2 microbatches of activations
    mem0 = 1000 * STATE_BYTES_PER_PARAM + 250 * 4 * 2 * 2 + runtime_reserve("fast")
    mem1 = 3000 * STATE_BYTES_PER_PARAM + 3 * 250 * 4 * 2 * 1 + runtime_reserve("fast")
    assert [s.memory_per_gpu for s in est.stages] == pytest.approx([mem0, mem1])
    assert est.memory_per_gpu == pytest.approx(max(mem0, mem1))


def test_slowest_replica_sets_the_stage_and_ring_all_reduce_by_hand():
    inputs = tiny_inputs()
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1, 2, 3]], [[("fast", 1), ("slow", 1)]]))
    est = estimate_sailor_plan(plan, inputs)
    assert est.microbatches == 4  # 16 / (mbs 2 x 2 replicas)
    assert est.stages[0].compute == pytest.approx(4 * 0.09)  # the slow replica binds
    grads = 4000 * 4  # fp32 gradients of the whole model (TP 1)
    assert est.gradient_sync == pytest.approx(2 * 1 * (grads / 2) / 10e9)
    assert est.optimizer == pytest.approx(0.012 * 4000 / 3000)  # the slow step, over 4/3 of the profiled model
    # a faster replica set finishes sooner; tensor parallelism halves the parameters per GPU
    both_fast = estimate_sailor_plan(read_sailor_plan("p.json", tiny_plan([[0, 1, 2, 3]], [[("fast", 2), ("fast", 2)]])),
                                     inputs)
    assert both_fast.iteration_time < est.iteration_time
    assert both_fast.memory_per_gpu < est.memory_per_gpu


def test_half_precision_halves_what_crosses_links():
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("fast", 1), ("fast", 1)], [("fast", 1), ("fast", 1)]]))
    fp32 = estimate_sailor_plan(plan, tiny_inputs())
    fp16 = estimate_sailor_plan(plan, tiny_inputs(), precision="fp16")
    assert fp16.stages[0].transfer == pytest.approx(fp32.stages[0].transfer / 2)
    assert fp16.gradient_sync == pytest.approx(fp32.gradient_sync / 2)
    with pytest.raises(InputError, match="precision: must be one of"):
        estimate_sailor_plan(plan, tiny_inputs(), precision="int3")


def test_slower_link_costs_more():
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("fast", 1)], [("fast", 1)]]))
    fast = estimate_sailor_plan(plan, tiny_inputs(10.0))
    slow = estimate_sailor_plan(plan, tiny_inputs(1.0))
    assert slow.iteration_time > fast.iteration_time
    assert slow.stages[0].transfer == pytest.approx(10 * fast.stages[0].transfer)


def test_measurements_never_change_the_prediction():
    inputs = tiny_inputs()
    base = tiny_plan([[0], [1, 2, 3]], [[("fast", 1)], [("slow", 1)]])
    a = estimate_sailor_plan(read_sailor_plan("p.json", {**base, "real": 1.0, "red_grads": 0.1, "max_mem": 1e9}),
                             inputs)
    b = estimate_sailor_plan(read_sailor_plan("p.json", {**base, "real": 99.0, "red_grads": 7.0, "max_mem": 5e10}),
                             inputs)
    c = estimate_sailor_plan(read_sailor_plan("p.json", base), inputs)
    assert a == b == c


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.pop("mbs"), "mbs"),
    (lambda d: d["pipeline_list"][0].update(dp=[1, 2]), "pipeline_list[0].tmp_per_stage[1]"),
    (lambda d: d["pipeline_list"][0].update(layers_per_stage=[[0], [2, 3]]), "pipeline_list[0].layers_per_stage[1]"),
    (lambda d: d["pipeline_list"][0]["tmp_per_stage"][0][0].__setitem__(1, 4), "pipeline_list[0].tmp_per_stage[0][0][1]"),
    (lambda d: d["pipeline_list"][0]["tmp_per_stage"][0][0][0][0].__setitem__(1, "four"),
     "pipeline_list[0].tmp_per_stage[0][0][0][0]"),
    (lambda d: d.update(real="fast"), "real"),
])
def test_bad_plan_names_the_file_and_field(edit, field):
    data = tiny_plan([[0], [1, 2, 3]], [[("fast", 1)], [("fast", 1)]])
    edit(data)
    with pytest.raises(InputError) as info:
        read_sailor_plan("bad.json", data)
    message = str(info.value)
    assert message.startswith(f"bad.json: {field}:") and "\n" not in message


def test_plan_needing_a_missing_profile_names_it():
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1, 2, 3]], [[("slow", 2)]]))
    with pytest.raises(InputError, match=r"p\.json: M\.slow\.2\.2: no profile for tensor-parallel degree 2"):
        estimate_sailor_plan(plan, tiny_inputs())
    short = read_sailor_plan("q.json", tiny_plan([[0, 1], [2]], [[("fast", 1)], [("fast", 1)]]))
    with pytest.raises(InputError, match=r"q\.json: pipeline_list\[0\]\.layers_per_stage: covers 3 layers"):
        estimate_sailor_plan(short, tiny_inputs())


def test_bad_profiles_and_bandwidths_name_the_field():
    with pytest.raises(InputError, match=r"p\.json: M\.g\.1\.1: layers must be numbered 0\.\.1"):
        read_profiles("p.json", {"M": {"g": {"1": {"1": {"0": [0, 0, 0], "2": [0, 0, 0]}}}}})
    with pytest.raises(InputError, match=r"b\.json: z\.g\.1\.z\.g\.1: must be"):
        read_bandwidths("b.json", {"z": {"g": {"1": {"z": {"g": {"1": [[1.0], 0]}}}}}})
    with pytest.raises(InputError, match=r"i\.json: M\.1\.0\.params_floats: missing"):
        read_layer_memory("i.json", {"M": {"1": {"0": {"act_output_floats": 1, "act_mem_floats": 1}}}})


# --- the shipped files ------------------------------------------------------------------------------

def test_every_shipped_file_reads(sailor_dir):
    inputs = load_sailor_inputs(sailor_dir / "training_config_opt_350.json")
    assert inputs.config.model == "OPT-350" and inputs.config.num_layers == 26
    assert set(inputs.profiles.times) >= {"OPT-350", "GPT-Neo-2.7", "LLAMA-3-8", "OPT-30"}
    assert len(inputs.layer_info.of("OPT-350", 4)) == 26
    assert inputs.bandwidths.link(("us-central1-a", "GH-96", 1), ("us-central1-a", "GH-96", 1)).peak > 1e10
    read_training_config(sailor_dir / "training_config_gpt_neo27.json")
    assert len(RUNS) == 15
    for path in RUNS:
        plan = read_sailor_plan(path)
        assert plan.measured.iteration_time > 0 and plan.measured.max_memory > 0
        assert plan.gpus == 4 * json.loads(path.read_text())["N"]


def test_optimizer_step_scales_from_the_profiled_model(sailor_dir):
    # Sailor's profiler times the step on the embedding, two transformer layers and the head
    # (profile.sh: --num_prof_layers 2); a whole OPT-350 replica holds 24 transformer layers
    inputs = load_sailor_inputs(sailor_dir / "training_config_opt_350.json")
    sizes = inputs.layer_info.of("OPT-350", 4)
    assert profiled_params(sizes) == sizes[0].params + 2 * sizes[1].params + sizes[25].params
    plan = read_sailor_plan(sailor_dir / "validation" / "OPT-350" / "N1_plan_config_N1_D1_M4_G32.json")
    est = estimate_sailor_plan(plan, inputs)
    step = inputs.profiles.layers("OPT-350", "GH-96", 1, 4)[0].optimizer
    whole = sum(x.params for x in sizes)
    assert est.optimizer == pytest.approx(step * whole / profiled_params(sizes))
    assert est.optimizer > 2.9 * step  # three times the profiled model's parameters
    assert optimizer_time(step, whole, whole) == step


def test_shipped_run_measurements_are_not_inputs(sailor_dir, tmp_path):
    path = sailor_dir / "validation" / "OPT-350" / "N8_plan_config_N8_D2.json"
    data = json.loads(path.read_text())
    changed = copy.deepcopy(data)
    changed.update(real=100.0, red_grads=50.0, max_mem=1)
    (tmp_path / "a.json").write_text(json.dumps(changed))
    config = sailor_dir / "training_config_opt_350.json"
    a = estimate_sailor_files(config, path)
    b = estimate_sailor_files(config, tmp_path / "a.json", profiles_dir=sailor_dir)
    assert a == b


def test_shipped_runs_memory_within_ten_percent(sailor_dir):
    # the time targets are checked by `python -m benchmarks.sailor_runs`; memory is deterministic and cheap
    inputs = load_sailor_inputs(sailor_dir / "training_config_opt_350.json")
    for path in RUNS:
        plan = read_sailor_plan(path)
        est = estimate_sailor_plan(plan, inputs)
        assert math.isfinite(est.iteration_time) and est.iteration_time > 0
        assert abs(est.memory_per_gpu / plan.measured.max_memory - 1) <= 0.10, path.name


def test_stages_with_different_replica_counts_run_different_microbatch_counts():
    inputs = tiny_inputs()
    # stage 0: two fast replicas (4 microbatches each); stage 1: one (8 microbatches)
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("fast", 1), ("fast", 1)], [("fast", 1)]]))
    est = estimate_sailor_plan(plan, inputs)
    a0, a1 = (s.compute + s.transfer for s in est.stages)
    assert est.pipeline_fill_drain == pytest.approx(a0 + a1)
    assert est.pipeline_steady == pytest.approx(max(3 * a0, 7 * a1))
    assert est.bottleneck_stage == 1


# --- links shared by a replica's GPUs (docs/model.md §12.2): Sailor's count-k fits are k pairs at once ---

def shared_link_inputs() -> SailorInputs:
    """Two GPU types on nodes of 2 GPUs whose one-pair fit (1 GB/s) disagrees with the two-pair one
    (8 GB/s for both pairs together), as Sailor's Titan-RTX / RTX-2080 measurements do."""
    base = tiny_inputs()
    one, two = [[0.0, 0.0, 1.0], 1e9], [[0.0, 0.0, 8.0], 8e9]
    bw = {"z": {g: {"1": {"z": {h: {"1": one} for h in ("fast", "slow")}},
                    "2": {"z": {h: {"2": two} for h in ("fast", "slow")}}} for g in ("fast", "slow")}}
    return SailorInputs(base.config, base.profiles, base.layer_info, read_bandwidths("b.json", bw))


def test_tensor_parallel_boundary_crosses_once_split_over_the_replicas_gpus():
    # Sailor's engine partitions the boundary tensor over the TP ranks: each of the 2 GPUs sends half,
    # both pairs at once, on the link measured for 2 pairs (8 GB/s together), not the whole tensor
    # per GPU on the one-pair link (1 GB/s)
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("fast", 2)], [("fast", 2)]]))
    est = estimate_sailor_plan(plan, shared_link_inputs())
    tensor = 500_000 * 2 * 4  # elements x mbs x fp32
    assert est.stages[0].transfer == pytest.approx(2 * tensor / 8e9)  # activation out, its gradient back
    # one GPU per replica: the one-pair link
    plan1 = read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("fast", 1)], [("fast", 1)]]))
    assert estimate_sailor_plan(plan1, shared_link_inputs()).stages[0].transfer == pytest.approx(2 * tensor / 1e9)


def test_tensor_parallel_ranks_share_the_link_in_the_gradient_ring():
    # every TP rank all-reduces its own shard at the same time: 2 rings through one node pair, each
    # at its share (8 GB/s / 2) of the 2-pair link
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1, 2, 3]], [[("fast", 2), ("fast", 2)]]))
    est = estimate_sailor_plan(plan, shared_link_inputs())
    shard = 4 * 500 * 4  # parameters per GPU at TP 2 x fp32
    assert est.gradient_sync == pytest.approx(2 * 1 * 2 * (shard / 2) / 8e9)


def test_gradient_buckets_hold_5e8_elements_as_deepspeed_counts_them():
    # DeepSpeed's ReduceGrads passes MEMORY_OPT_ALLREDUCE_SIZE = 5e8 as elements_per_buffer and fills a bucket
    # until its numel() exceeds it: 1.2 GB of fp32 gradients (3e8 elements) is one all-reduce, 3.6 GB two;
    # each bucket pays the ring's 2 (D - 1) step latencies once
    class Link:
        def transfer_time(self, sender, receiver, nbytes, streams=1):
            return 1e-3 + nbytes / 10e9

    reps = [SailorReplica("g", 1, "z", 1)] * 4
    assert BUCKET_ELEMENTS == 500_000_000
    steps = 2 * (4 - 1)
    assert ring_allreduce_time(1.2e9, reps, Link()) == pytest.approx(steps * (1e-3 + 1.2e9 / 4 / 10e9))
    assert ring_allreduce_time(3.6e9, reps, Link()) == pytest.approx(steps * (2e-3 + 3.6e9 / 4 / 10e9))
    # in fp16 a bucket of as many elements holds half the bytes
    assert ring_allreduce_time(1.2e9, reps, Link(), element_bytes=2) == pytest.approx(steps * (2e-3 + 1.2e9 / 4 / 10e9))


def test_a_received_tensor_is_rebuilt_at_the_rates_measured_on_gh200():
    # Sailor's reconstruct_tensor: zeros written into a host buffer by one core, a pageable copy to
    # the GPU, then the TP ranks' parts all-gathered inside the node
    x = 2**23  # the OPT-350M boundary at mbs 1 in fp32: 2048 x 1 x 1024 x 4 bytes (a reused heap buffer)
    host = x / 55e9 + x / 407e9
    assert rebuild_time(SailorReplica("GH-96", 4, "z", 1), x) == pytest.approx(host)  # TP 1: nothing to gather
    assert rebuild_time(SailorReplica("GH-96", 4, "z", 4), x) == pytest.approx(host + 86.7e-6 + x / 4 / 78.9e9)
    # no measured rates, no charge (as for the fused-kernel reserve)
    assert "RTX-2080" not in REBUILD_RATES
    assert rebuild_time(SailorReplica("RTX-2080", 8, "z", 8), x) == 0.0


def test_a_host_buffer_of_32_mib_or_more_is_zeroed_by_the_kernel_before_the_fill():
    # glibc maps a block of 32 MiB or more anew on every malloc (its mmap threshold rises no higher), so the
    # kernel zeroes each fresh page before torch.zeros' fill writes it: the same bytes zeroed twice by one core;
    # a smaller buffer is kept by the heap and its pages reused
    gh = SailorReplica("GH-96", 4, "z", 1)
    fill, copy_in = 55e9, 407e9
    big = 2**26  # the OPT-350M boundary at mbs 8: 64 MiB
    assert FRESH_HOST_BYTES == 32 * 2**20
    assert rebuild_time(gh, big) == pytest.approx(2 * big / fill + big / copy_in)
    assert 2.6e-3 < rebuild_time(SailorReplica("GH-96", 4, "z", 4), big) < 3.0e-3
    edge = 32 * 2**20  # mbs 4: with malloc's header the block is above the 32 MiB ceiling
    assert rebuild_time(gh, edge) == pytest.approx(2 * edge / fill + edge / copy_in)
    below = edge - 4096
    assert rebuild_time(gh, below) == pytest.approx(below / fill + below / copy_in)


def test_a_received_tensor_is_rebuilt_in_fp32_whatever_the_training_precision():
    # reconstruct_tensor builds torch.zeros(num_el, dtype=torch.float32): in bf16/fp16 the host buffer, the copy
    # and the all-gather still carry 4 bytes per element, while the transfer carries 2
    gh = SailorReplica("GH-96", 4, "z", 4)
    assert REBUILT_ELEMENT_BYTES == 4
    assert rebuild_time(gh, 2**25, element_bytes=2) == pytest.approx(rebuild_time(gh, 2**26))
    inputs = tiny_inputs(fast="GH-96")
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("GH-96", 2)], [("GH-96", 2)]]))
    full, half = estimate_sailor_plan(plan, inputs, "fp32"), estimate_sailor_plan(plan, inputs, "bf16")
    assert [s.rebuild for s in half.stages] == pytest.approx([s.rebuild for s in full.stages])
    assert all(h.transfer - h.rebuild < f.transfer - f.rebuild for h, f in zip(half.stages, full.stages))


def test_each_stage_rebuilds_what_it_receives():
    # two stages of GH-96 at TP 2: stage 0 receives the gradient, stage 1 the activation, once per
    # microbatch each; the rebuild is the receiver's alone, after the blocking transfer
    inputs = tiny_inputs(fast="GH-96")
    plan = read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("GH-96", 2)], [("GH-96", 2)]]))
    est = estimate_sailor_plan(plan, inputs)
    tensor = 500_000 * 2 * 4
    rebuild = rebuild_time(SailorReplica("GH-96", 2, "z", 2), tensor)
    assert rebuild > 0
    send = tensor / 20e9  # both TP ranks' halves at once on the two-pair link (20 GB/s together)
    for stage in est.stages:
        assert stage.rebuild == pytest.approx(rebuild)
        assert stage.transfer == pytest.approx(2 * send + rebuild)
    # the same plan on a GPU type without measured rates: transfers only
    other = estimate_sailor_plan(read_sailor_plan("p.json", tiny_plan([[0, 1], [2, 3]], [[("fast", 2)], [("fast", 2)]])),
                                 tiny_inputs())
    assert [s.transfer for s in other.stages] == pytest.approx([2 * send] * 2)
    assert est.iteration_time == pytest.approx(other.iteration_time + 2 * rebuild + (8 - 1) * rebuild)


def test_fused_kernel_memory_is_reserved_only_where_sailor_measured_it():
    # Sailor's 4.76 GB for loading Megatron's fused kernels "depends on GPU + platform" and was measured
    # on its GH200 nodes; every GPU keeps the 300 MB of CUDA context
    sizes = tiny_inputs().layer_info.of("M", 1)
    body = 4000 * STATE_BYTES_PER_PARAM + 4 * 250 * 4 * 2
    assert replica_memory(sizes, range(4), 2, 1, "RTX-2080") == pytest.approx(body + 300e6)
    assert replica_memory(sizes, range(4), 2, 1, "GH-96") == pytest.approx(body + 4.76e9 + 300e6)
    assert runtime_reserve("GH-96") == RUNTIME_RESERVE_BYTES


def test_several_pipelines_are_outside_the_model():
    one = tiny_plan([[0, 1, 2, 3]], [[("fast", 1)]])
    two = {**one, "pipeline_list": one["pipeline_list"] * 2}
    with pytest.raises(InputError, match=r"p\.json: pipeline_list: 2 pipelines"):
        estimate_sailor_plan(read_sailor_plan("p.json", two), tiny_inputs())


# --- the benchmark on other runs, with Sailor's own simulator beside it ----------------------------

def _runs_folder(sailor_dir, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    src = sailor_dir / "validation" / "OPT-350"
    for name in ("N2_plan_config_N2_D1.json", "N8_plan_config_N8_D4.json"):
        (runs / name).write_text((src / name).read_text())
    broken = json.loads((src / "N2_plan_config_N2_D1.json").read_text())
    broken["pipeline_list"][0]["layers_per_stage"][1][3] = 29  # a layer listed out of order, as in a Sailor file
    (runs / "N2_broken.json").write_text(json.dumps(broken))
    unmeasured = json.loads((src / "N2_plan_config_N2_D1.json").read_text())
    unmeasured["real"] = 0.0
    (runs / "N2_unmeasured.json").write_text(json.dumps(unmeasured))
    return runs


def test_benchmark_on_other_runs_lists_what_it_cannot_use(sailor_dir, tmp_path, capsys):
    from benchmarks import sailor_runs

    runs = _runs_folder(sailor_dir, tmp_path)
    config = sailor_dir / "training_config_opt_350.json"
    sailor = {"N2_plan_config_N2_D1": {"iteration_time": 0.5, "memory_per_gpu": 2**30},
              "N8_plan_config_N8_D4": {"iteration_time": 2.2988}}
    (tmp_path / "sailor.json").write_text(json.dumps(sailor))
    code = sailor_runs.main(["--runs", str(runs), "--config", str(config), "--profiles", str(sailor_dir),
                             "--sailor-results", str(tmp_path / "sailor.json"), "--json"])
    out = json.loads(capsys.readouterr().out)
    by = {r["run"]: r for r in out["runs"]}
    assert "must continue the layers" in by["N2_broken"]["skipped"]
    assert "no measurement" in by["N2_unmeasured"]["skipped"]
    assert out["summary"]["runs"] == 2 and out["summary"]["skipped"] == 2
    row = by["N2_plan_config_N2_D1"]
    assert row["sailor_time_error"] == pytest.approx(0.5 / row["time_measured"] - 1)
    assert by["N8_plan_config_N8_D4"]["sailor_time_error"] == pytest.approx(0.0)
    assert "sailor_memory" not in by["N8_plan_config_N8_D4"]
    assert out["summary"]["sailor"]["runs"] == 2
    assert out["summary"]["sailor"]["time_worst"] == pytest.approx(abs(row["sailor_time_error"]))
    # ours: the same numbers as the estimate
    est = estimate_sailor_files(config, runs / "N8_plan_config_N8_D4.json")
    assert by["N8_plan_config_N8_D4"]["time_predicted"] == pytest.approx(est.iteration_time)
    assert code == (0 if out["summary"]["targets_met"] else 1)
    # the table says the same, with Sailor's column
    sailor_runs.main(["--runs", str(runs), "--config", str(config), "--sailor-results", str(tmp_path / "sailor.json")])
    text = capsys.readouterr().out
    assert re.search(r"N2_broken +skipped: .*must continue the layers", text)
    assert "Sailor's simulator on the same 2 runs" in text


def test_benchmark_bad_arguments_are_one_line(sailor_dir, tmp_path, capsys):
    from benchmarks import sailor_runs

    runs = _runs_folder(sailor_dir, tmp_path)
    assert sailor_runs.main(["--runs", str(runs)]) == 2  # no config is named for a folder called "runs"
    assert "--config" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"N2_plan_config_N2_D1": {"time": 1}}')
    config = str(sailor_dir / "training_config_opt_350.json")
    assert sailor_runs.main(["--runs", str(runs), "--config", config, "--sailor-results", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json: iteration_time" in err
    assert sailor_runs.main(["--runs", str(tmp_path / "absent")]) == 2


def test_benchmark_reads_sailors_rtx_folder_with_the_opt_config(sailor_dir, tmp_path, capsys):
    # Sailor's repository keeps its RTX runs in a folder "mit"; its profiles have the RTX GPUs for OPT-350 only
    from benchmarks import sailor_runs

    runs = tmp_path / "mit"
    runs.mkdir()
    plan = tiny_plan([[l for l in range(13)], [l for l in range(13, 26)]],
                     [[("Titan-RTX", 4)], [("RTX-2080", 4)]], mbs=2, gbs=64, real=20.0, max_mem=6e9)
    for reps in plan["pipeline_list"][0]["tmp_per_stage"]:
        reps[0][0][0][1] = 4  # 4 GPUs per node
    (runs / "N2_D1.json").write_text(json.dumps({**plan, "zone": "us-central1-a"}).replace('"z"', '"us-central1-a"'))
    assert sailor_runs.main(["--runs", str(runs), "--json"]) in (0, 1)
    row = json.loads(capsys.readouterr().out)["runs"][0]
    assert "skipped" not in row and row["gpu_types"] == ["RTX-2080", "Titan-RTX"]


def test_benchmark_flags_two_plans_carrying_one_measurement(sailor_dir, tmp_path, capsys):
    # Sailor's RTX set (HEAD) holds N3 D1 with N6 D2's real, red_grads and max_mem to the last digit: two
    # different plans cannot measure the same three numbers, so the benchmark says so (and keeps the rows)
    from benchmarks import sailor_runs

    runs = _runs_folder(sailor_dir, tmp_path)
    src = json.loads((runs / "N8_plan_config_N8_D4.json").read_text())
    other = json.loads((runs / "N2_plan_config_N2_D1.json").read_text())
    copied = {**other, "real": src["real"], "red_grads": src["red_grads"], "max_mem": src["max_mem"]}
    (runs / "N2_copied.json").write_text(json.dumps(copied))
    nearly = {**other, "real": src["real"], "red_grads": src["red_grads"] + 1e-5, "max_mem": src["max_mem"]}
    (runs / "N2_nearly.json").write_text(json.dumps(nearly))  # one number differs: its own measurement
    config = str(sailor_dir / "training_config_opt_350.json")
    sailor_runs.main(["--runs", str(runs), "--config", config, "--json"])
    out = json.loads(capsys.readouterr().out)
    by = {r["run"]: r for r in out["runs"]}
    assert by["N2_copied"]["shared_with"] == ["N8_plan_config_N8_D4"]
    assert by["N8_plan_config_N8_D4"]["shared_with"] == ["N2_copied"]
    assert "shared_with" not in by["N2_nearly"] and "shared_with" not in by["N2_plan_config_N2_D1"]
    s = out["summary"]
    assert s["runs"] == 4  # flagged, not dropped
    own = [abs(by[n]["time_error"]) for n in ("N2_plan_config_N2_D1", "N2_nearly")]
    assert s["unshared"]["runs"] == 2 and s["unshared"]["time_worst"] == pytest.approx(max(own))
    sailor_runs.main(["--runs", str(runs), "--config", config])
    text = capsys.readouterr().out
    assert re.search(r"N2_copied .*measurement identical to N8_plan_config_N8_D4's", text)
    assert "without the runs that share a measurement (2)" in text
