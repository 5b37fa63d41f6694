"""Item 2 of issue 19: the Megatron-Core cost model (placement/plan/megatron.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesim.errors import InputError
from pipesim.hardware.clusters import load_cluster
from pipesim.hardware.collectives import Group, all_gather, all_reduce
from pipesim.hardware.gemm import gemm_efficiency, gemm_time
from pipesim.hardware.costs import kernel_time
from pipesim.placement.plan.megatron import (ParallelConfig, estimate, fp8_cast_bytes, fp8_stash_saving, pipeline_time,
                                            with_nodes)
from pipesim.simulation.formulas import iteration_time
from pipesim.workloads.llms import preset
from pipesim.workloads.transformer import TransformerConfig

H100 = load_cluster("dgx-h100x16")
A100 = load_cluster("dgx-a100x4")
L70 = preset("llama3.1-70b")


def run(model=L70, nodes=8, cluster=H100, **kw):
    kw.setdefault("gbs", 128)
    return estimate(model, with_nodes(cluster, nodes), ParallelConfig(**kw))


def test_breakdown_sums_to_the_iteration_and_reports_derived_quantities():
    r = run(tp=4, pp=4, cp=2, vp=5)
    assert r.breakdown.total == pytest.approx(r.iteration_time)
    assert r.dp == 2 and r.microbatches == 64
    tokens = 128 * L70.seq
    assert r.tokens_per_second_per_gpu == pytest.approx(tokens / r.iteration_time / 64)
    assert r.model_tflops_per_gpu == pytest.approx(L70.model_flops(tokens) / r.iteration_time / 64 / 1e12)
    d = r.to_dict()
    assert {"iteration_time", "memory_per_gpu", "fits", "tokens_per_second_per_gpu", "model_tflops_per_gpu",
            "breakdown"} <= set(d)
    assert set(d["breakdown"]) == {"compute", "bubble", "tp_comm", "cp_comm", "pp_comm", "dp_comm", "optimizer"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.1, 10), min_size=1, max_size=8), st.integers(1, 16), st.integers(1, 4))
def test_pipeline_closed_form_is_the_simulators(times, m, v):
    assert pipeline_time(times, m, v) == pytest.approx(iteration_time("interleaved-1f1b", times, [0] * len(times),
                                                                      [0] * len(times), m, v))


def test_bubble_is_p_minus_1_over_v_stage_times():
    # equal stages: (m + (p−1)/v)·T (Narayanan et al. 2021, §2.2)
    assert pipeline_time([2.0] * 8, 32, 4) == pytest.approx((32 + 7 / 4) * 2.0)
    r1, r5 = run(tp=4, pp=4, cp=2, vp=1, recompute="none"), run(tp=4, pp=4, cp=2, vp=5, recompute="none")
    assert r5.breakdown.bubble == pytest.approx(r1.breakdown.bubble / 5, rel=0.05)


def test_memory_falls_as_each_degree_grows():
    base = dict(recompute="none", gbs=256)
    for key, values in (("tp", (1, 2, 4, 8)), ("pp", (1, 2, 4, 8)), ("cp", (1, 2, 4))):
        mems = []
        for value in values:
            kw = {**base, key: value}
            mems.append(run(model=preset("llama3.1-8b"), nodes=8, **kw).memory_per_gpu)
        assert mems == sorted(mems, reverse=True), (key, mems)
    # more data-parallel ranks shard the distributed optimizer further
    assert run(tp=8, pp=2, nodes=16, recompute="none").memory_per_gpu < run(tp=8, pp=2, nodes=4,
                                                                              recompute="none").memory_per_gpu


def test_distributed_optimizer_sequence_parallel_and_recomputation_save_memory():
    full = run(tp=4, pp=4, recompute="none")
    assert run(tp=4, pp=4, recompute="none", distributed_optimizer=False).memory_per_gpu > full.memory_per_gpu
    assert run(tp=4, pp=4, recompute="none", sequence_parallel=False).memory_per_gpu > full.memory_per_gpu
    rec = run(tp=4, pp=4, recompute="full")
    assert rec.memory["activations"] < full.memory["activations"] / 5
    assert rec.iteration_time > full.iteration_time


def test_unfused_attention_holds_the_s_squared_scores_and_selective_recompute_drops_them():
    gpt = preset("gpt3-175b")
    flash = run(model=gpt, nodes=16, tp=8, pp=8, recompute="none")
    unfused = run(model=gpt, nodes=16, tp=8, pp=8, recompute="none", attention="unfused")
    selective = run(model=gpt, nodes=16, tp=8, pp=8, recompute="selective", attention="unfused")
    assert unfused.memory["activations"] > 1.5 * flash.memory["activations"]
    # Korthikanti et al.'s selective recomputation keeps what a fused kernel keeps: about the same memory
    assert selective.memory_per_gpu < unfused.memory_per_gpu
    assert selective.memory_per_gpu == pytest.approx(flash.memory_per_gpu, rel=0.05)
    assert unfused.iteration_time > flash.iteration_time


def test_default_recompute_is_the_fastest_that_fits():
    chosen = run(tp=4, pp=4, cp=2, vp=5)
    options = [run(tp=4, pp=4, cp=2, vp=5, recompute=r) for r in ("none", "selective", "full")]
    fitting = [o for o in options if o.fits]
    assert chosen.iteration_time == min(o.iteration_time for o in fitting)


def test_fp8_keeps_one_byte_copies_of_the_gemm_inputs_for_the_backward():
    # Transformer Engine saves the FP8 input of each linear layer for its weight gradient (§11.6): one pipeline stage,
    # one microbatch in flight, so the activations differ by layers × tokens × the per-token saving exactly
    kw = dict(tp=4, pp=1, cp=1, recompute="none", gbs=16)
    bf16, fp8 = run(nodes=2, **kw), run(nodes=2, precision="fp8", **kw)
    saving = fp8_stash_saving(L70, ParallelConfig(tp=4, precision="fp8"))
    assert saving == (2 * 8192 + 28672 - 8192) / 4
    assert bf16.memory["activations"] - fp8.memory["activations"] == pytest.approx(L70.layers * L70.seq * saving)
    # without sequence parallelism the QKV and fc1 inputs are whole on every rank: the saving grows
    assert fp8_stash_saving(L70, ParallelConfig(tp=4, precision="fp8", sequence_parallel=False)) > saving


def test_fp8_backward_pays_the_cast_transposes_of_the_output_gradients():
    kw = dict(tp=4, pp=1, cp=1, recompute="none", gbs=16)
    cfg = ParallelConfig(tp=4, precision="fp8")
    forward, backward = fp8_cast_bytes(L70, cfg)
    # forward: the two norms' FP8 outputs transposed (1 + 1 bytes of h/t each), the projection and fc2 inputs
    # cast-transposed (2 + 1 + 1); backward: the four output gradients cast-transposed (2 + 1 + 1)
    assert forward == 2 * 2 * 8192 / 4 + 4 * (8192 + 28672) / 4
    assert backward == 4 * (L70.qkv_width + 8192 + 2 * 28672 + 8192) / 4
    bf16, fp8 = run(nodes=2, **kw).layer_ops, run(nodes=2, precision="fp8", **kw).layer_ops
    device = H100.nodes[0][0].device
    tokens = L70.seq
    # the backward: twice the BF16 kernels' bytes plus the casts, a kernel of their own
    assert fp8["elementwise_backward"] == pytest.approx(bf16["elementwise_backward"]
                                                        + kernel_time(0.0, tokens * backward, device, "bf16"))
    assert fp8["elementwise_forward"] > bf16["elementwise_forward"]


def test_interleaved_schedules_overlap_pipeline_transfers_by_default():
    # Megatron-LM's overlap_p2p_comm (on with interleaving, forced off without it, §11.5): each transfer is exposed
    # only by what it outlasts the chunk beside it, the rest slows that chunk by NCCL's SMs
    from pipesim.hardware.collectives import p2p
    from pipesim.hardware.gemm import engine, overlap_slowdown

    kw = dict(tp=4, pp=4, cp=2, recompute="none")
    exposed = run(vp=5, pp_overlap=False, **kw)
    hidden = run(vp=5, **kw)
    assert hidden.config.pp_overlapped and not exposed.config.pp_overlapped
    assert hidden.to_dict()["config"]["pp_overlap"] is True
    node = H100.nodes[0][0]
    hop = p2p(2 * L70.seq // 2 * L70.hidden / 4, node, same_node=False)       # tp·cp·d = 16 > 8: across nodes
    m, v = exposed.microbatches, 5
    assert exposed.breakdown.pp_comm == pytest.approx(m * 2 * v * hop)
    chunk = 20 / v * hidden.layer_ops["model_forward"]
    eng = engine(node.device)
    assert hop < chunk
    assert hidden.breakdown.pp_comm == pytest.approx(m * 2 * v * overlap_slowdown(chunk, hop, eng.nccl_sms, eng.sms))
    assert hidden.iteration_time < exposed.iteration_time
    # no interleaving: Megatron forces the overlap off, the transfers stay in the stage time
    plain = run(vp=1, **kw)
    assert not plain.config.pp_overlapped
    assert plain.breakdown.pp_comm == pytest.approx(run(vp=1, pp_overlap=True, **kw).breakdown.pp_comm)


def test_fp8_is_faster_than_bf16_and_needs_fp8_hardware():
    assert run(tp=4, pp=4, precision="fp8").iteration_time < run(tp=4, pp=4).iteration_time
    with pytest.raises(InputError, match="FP8"):
        run(model=preset("gpt3-175b"), cluster=A100, nodes=4, tp=8, pp=4, precision="fp8")


@pytest.mark.parametrize("kw, field", [
    (dict(tp=3), "--tp/--pp/--cp"),
    (dict(tp=16, pp=1), "--tp"),
    (dict(tp=4, pp=3), "--tp/--pp/--cp"),
    (dict(tp=8, pp=8, vp=3), "--pp/--vp"),
    (dict(tp=8, gbs=100), "--gbs"),
    (dict(tp=8, vp=2), "--vp"),
])
def test_bad_configurations_name_the_flag(kw, field):
    with pytest.raises(InputError) as info:
        run(**kw)
    assert info.value.field == field


def test_gemm_model_quantisation_and_roofline():
    gpu = H100.nodes[0][0].device
    # a full wave of full tiles reaches the ceiling; one more tile costs a whole extra wave
    m, n = 128 * 12, 256 * 11          # 132 tiles: one full wave
    assert gemm_efficiency(m, n, 8192, gpu, "bf16") == pytest.approx(0.801)
    assert gemm_time(m + 128, n, 8192, gpu, "bf16") > 1.8 * gemm_time(m, n, 8192, gpu, "bf16")   # 143 tiles: 2 waves
    # a thin GEMM (k = 16) is memory-bound
    m = n = 16384
    t = gemm_time(m, n, 16, gpu, "bf16")
    assert t == pytest.approx(gpu.launch_overhead + 2 * (m * 16 + 16 * n + m * n) / (gpu.memory_bandwidth * 0.8))


def test_collectives_ring_times_and_group_bandwidth():
    node = H100.nodes[0][0]
    inside, across = Group.strided(8, 1, node), Group.strided(8, 8, node)
    assert inside.intra_node and not across.intra_node
    assert inside.bandwidth == pytest.approx(0.8 * 450e9)
    assert across.bandwidth == pytest.approx(0.9 * 50e9)
    size = 1e9
    assert all_gather(size, inside) == pytest.approx(7 / 8 * size / inside.bandwidth + 7 * 3e-6)
    assert all_reduce(size, inside) == pytest.approx(2 * all_gather(size, inside))
    # four members per node over two nodes: four rails, four times one adapter
    assert Group.strided(8, 2, node).bandwidth == pytest.approx(4 * 0.9 * 50e9)


def test_resizing_a_cluster():
    assert with_nodes(H100, 72).device_count == 576
    with pytest.raises(InputError):
        with_nodes(load_cluster("mixed-a100-v100"), 2)


def test_tensor_parallel_overlap_hides_communication():
    on, off = run(tp=8, pp=2, recompute="none"), run(tp=8, pp=2, recompute="none", tp_overlap=False)
    assert on.breakdown.tp_comm < off.breakdown.tp_comm
    # overlap is not free: the userbuffers kernels hold SMs, the GEMMs beside them run slower ...
    assert on.breakdown.compute > off.breakdown.compute
    # ... by less than the communication it hides
    assert on.breakdown.compute - off.breakdown.compute < off.breakdown.tp_comm - on.breakdown.tp_comm
    assert on.iteration_time < off.iteration_time


def test_overlap_slowdown_mechanism():
    from pipesim.hardware.gemm import overlap_slowdown

    # no overlap, or a kernel on no SMs: no change
    assert overlap_slowdown(1.0, 0.0, 24, 132) == 0.0
    assert overlap_slowdown(1.0, 0.3, 0, 132) == 0.0
    assert overlap_slowdown(1.0, 0.0, 24, 132, margin=True) == 0.0
    # more overlapped communication (up to the compute it hides under), or more SMs: more slowdown
    times = [overlap_slowdown(1.0, c, 24, 132) for c in (0.1, 0.4, 0.8, 1.0, 2.0)]
    assert times == sorted(times) and times[-1] == times[-2] == pytest.approx(24 / 132)
    assert overlap_slowdown(1.0, 0.5, 8, 132) < overlap_slowdown(1.0, 0.5, 24, 132)
    # a GEMM launched on the SMs left over runs at (SMs − k)/SMs of its rate for its whole duration
    assert 1.0 + overlap_slowdown(1.0, 0.1, 24, 132, margin=True) == pytest.approx(132 / 108)


def test_overlap_interference_only_where_communication_overlaps(monkeypatch):
    import dataclasses

    from pipesim.hardware import gemm

    def both(**kw):
        with_sms = run(**kw)
        monkeypatch.setitem(gemm.ENGINES, "h100-sxm", dataclasses.replace(gemm.ENGINES["h100-sxm"], nccl_sms=0))
        monkeypatch.setattr(gemm, "UB_COMM_SMS", {k: (0, False) for k in gemm.UB_COMM_SMS})
        monkeypatch.setattr("pipesim.placement.plan.megatron.UB_COMM_SMS", gemm.UB_COMM_SMS)
        monkeypatch.setattr("pipesim.placement.plan.megatron_layer.UB_COMM_SMS", gemm.UB_COMM_SMS)
        free = run(**kw)
        monkeypatch.undo()
        return with_sms, free

    # the 2021 software overlapped nothing: the interference term cannot reach it
    legacy, legacy_free = both(tp=8, pp=2, recompute="none", sequence_parallel=False, dp_overlap=False)
    assert legacy.iteration_time == pytest.approx(legacy_free.iteration_time, rel=1e-12)
    # TP, CP and DP overlap: each hidden collective slows the compute beside it
    on, free = both(tp=4, pp=4, cp=2, vp=5, recompute="none")
    assert on.breakdown.compute > free.breakdown.compute
    assert on.breakdown.cp_comm >= free.breakdown.cp_comm
    assert on.breakdown.dp_comm >= free.breakdown.dp_comm
    assert on.iteration_time > free.iteration_time


@pytest.mark.parametrize("name, nodes, kw", [
    ("llama3.1-70b", 8, dict(tp=4, pp=4, cp=2, vp=5)),
    ("gpt3-175b", 16, dict(tp=4, pp=8, vp=12, gbs=256)),
    ("llama3.1-405b", 2048, dict(tp=8, pp=16, gbs=2048)),   # Megatron's uneven first/last stages
])
def test_the_simulator_runs_the_estimate_within_two_percent(name, nodes, kw):
    from pipesim.simulation.megatron_sim import simulate_estimate

    e = run(model=preset(name), nodes=nodes, **kw)
    sim = simulate_estimate(e)
    assert abs(sim.difference) < 0.02
    assert sim.pipeline + sim.after_flush == pytest.approx(sim.simulated_iteration_time)


def test_uneven_stage_split():
    from pipesim.placement.plan.megatron import stage_layers

    for layers in (7, 80, 126):
        for p in range(1, layers + 1):
            split = stage_layers(layers, p)
            assert sum(split) == layers and len(split) == p and min(split) >= 1
            assert len(set(split[1:-1])) <= 1    # middle stages equal, as Megatron-Core requires


def test_activation_memory_is_korthikantis_34_sbh_for_gpt():
    # Korthikanti et al. 2022, Eq. 1 and §4.2.2: per layer s·b·h·(34 + 5·a·s/h) bytes without parallelism
    # (dropout on), s·b·h·(34/t + 5·a·s/(h·t)) with tensor and sequence parallelism
    from pipesim.placement.plan.megatron import layer_cost as _layer

    gpt = TransformerConfig(layers=4, hidden=1024, heads=16, seq=512, batch=1, vocab=1000, decoder=True,
                            max_positions=512)
    node = H100.nodes[0][0]
    s, b, h, a = 512, 2, 1024, 16
    for t in (1, 4):
        cfg = ParallelConfig(tp=t, mbs=b, gbs=b, attention="unfused", dropout=0.1)
        assert _layer(gpt, cfg, node).activations == pytest.approx(s * b * h * (34 + 5 * a * s / h) / t)


REFERENCE = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "reference" / "published-runs.json"


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/published-runs.json is absent")
def test_every_published_configuration_fits_and_is_predicted_within_25_percent():
    import json

    import pipesim
    from benchmarks.published import row_inputs

    for row in json.loads(REFERENCE.read_text())["rows"]:
        r = pipesim.estimate(**row_inputs(row))
        assert r.fits, row["id"]
        assert abs(r.iteration_time / row["measured_step_s"] - 1) <= 0.25, row["id"]


def _ops(**kw):
    ops = {"gemms": [[1.0, 1.0, 1.0]] * 4, "attention_forward": 1.0, "attention_backward": 2.5,
           "elementwise_forward": 0.2, "elementwise_backward": 0.4, "t": 4, "c": 1, "sp": True, "tp_overlap": False,
           "sms": 132, "nccl_sms": 0, "all_gather": 0.4, "reduce_scatter": 0.4, "all_reduce": 0.8, "cp_step": 0.0}
    ops.update(kw)
    return ops


def test_layer_events_without_overlap_are_the_sum_of_kernels_and_collectives():
    from pipesim.placement.plan.megatron_layer import layer_events

    e = layer_events(_ops())
    assert e.compute_forward == pytest.approx(4 + 1 + 0.2)
    assert e.tp_forward == pytest.approx(2 * 0.4 + 2 * 0.4)               # 2 AG + 2 RS, blocking
    assert e.tp_backward == pytest.approx(4 * 0.4 + 2 * 0.4)              # + the re-gathers
    assert e.forward == pytest.approx(e.compute_forward + e.tp_forward)
    no_sp = layer_events(_ops(sp=False))
    assert no_sp.tp_forward == pytest.approx(2 * 0.8) and no_sp.tp_backward == pytest.approx(2 * 0.8)


def test_layer_events_with_userbuffers_overlap():
    from pipesim.hardware.gemm import UB_COMM_SMS
    from pipesim.placement.plan.megatron_layer import layer_events

    free = {k: (0, False) for k in UB_COMM_SMS}
    import pipesim.placement.plan.megatron_layer as ml

    saved = dict(ml.UB_COMM_SMS)
    try:
        ml.UB_COMM_SMS.update(free)
        e = layer_events(_ops(tp_overlap=True))
        # ring-exchange all-gathers hide under their GEMM (chunk 0 is local); each pipelined reduce-scatter
        # leaves its last chunk (RS/4) exposed; bulk collectives shorter than their GEMMs hide
        assert e.tp_forward == pytest.approx(2 * 0.4 / 4)
        assert e.tp_backward == pytest.approx(0.0)
        # a collective longer than the GEMM it hides under shows its excess
        slow = layer_events(_ops(tp_overlap=True, all_gather=2.0))
        assert slow.tp_forward > e.tp_forward
    finally:
        ml.UB_COMM_SMS.update(saved)
    # with the recipe's SMs, the hidden collectives slow the GEMMs beside them
    e2 = layer_events(_ops(tp_overlap=True))
    assert e2.compute_forward > e.compute_forward and e2.compute_backward > e.compute_backward


def test_layer_events_context_parallel_ring():
    from pipesim.placement.plan.megatron_layer import layer_events

    hidden = layer_events(_ops(t=1, sp=False, c=2, cp_step=0.3))
    assert hidden.cp_forward == pytest.approx(0.0)              # one exchange under the local block (0.5 s)
    exposed = layer_events(_ops(t=1, sp=False, c=2, cp_step=0.8))
    assert exposed.cp_forward == pytest.approx(0.8 - 0.5)
    assert exposed.cp_backward == pytest.approx(1.6 - 1.25)


def test_dp_events():
    from pipesim.placement.plan.megatron_layer import dp_exposed

    dp = {"reduce_scatter": 1.0, "all_gather": 1.0, "overlap": True, "bucket_fraction": 0.25,
          "backward_window": 4.0, "forward_window": 4.0, "nccl_sms": 0, "sms": 132}
    assert dp_exposed(dp) == pytest.approx(0.5)
    assert dp_exposed({**dp, "backward_window": 0.4, "forward_window": 0.4}) == pytest.approx(0.7 + 0.7)   # RS chain from 0.1 s: ends 1.1; AG the same
    assert dp_exposed({**dp, "overlap": False}) == pytest.approx(2.0)
    assert dp_exposed({**dp, "nccl_sms": 24}) > dp_exposed(dp)


def test_squared_relu_is_priced_as_megatron_core_runs_it():
    """Nemotron-4's squared ReLU (docs/model.md §11.2): two unfused kernels, 4·e·f/t bytes forward against GeLU's 2."""
    from dataclasses import replace

    from pipesim.errors import InputError
    from pipesim.hardware.clusters import load_cluster
    from pipesim.placement.plan.megatron import ParallelConfig, layer_cost
    from pipesim.workloads.llms import load_llm, preset

    model = preset("nemotron4-15b")
    assert model.activation == "squared-relu"
    gelu = replace(model, activation="gelu")
    assert gelu.params() == model.params()
    node = load_cluster("dgx-h100x16").nodes[0][0]
    cfg = ParallelConfig(tp=4, mbs=4, gbs=64)
    relu2, plain = layer_cost(model, cfg, node), layer_cost(gelu, cfg, node)
    extra = relu2.ops["elementwise_forward"] - plain.ops["elementwise_forward"]
    tokens, e = 4 * model.seq, 2
    from pipesim.hardware.costs import kernel_time

    assert extra == pytest.approx(kernel_time(0.0, tokens * (4 - 2) * e * model.ffn / 4, node.device, "bf16"), rel=0.05)
    assert relu2.activations == plain.activations            # relu's output and pow's output: 2f, as GeLU keeps
    with pytest.raises(InputError, match="model.params.activation"):
        load_llm({"generator": "transformer", "params": {"preset": "nemotron4-15b", "activation": "silu"}})
    with pytest.raises(InputError, match="model.params.activation"):
        load_llm({"generator": "transformer", "params": {"preset": "llama3.1-8b", "activation": "squared-relu"}})


def test_causal_context_parallel_attention_runs_transformer_engines_load_balanced_steps():
    """Context parallelism with a causal mask (docs/model.md §11.2): step 0 causal on the rank's own s/c keys, the
    c − 1 later steps each 1/c of its FLOPs on s/(2c) keys (the last rank's half K/V, which paces the ring)."""
    from dataclasses import replace

    from pipesim.hardware.gemm import attention_time
    from pipesim.placement.plan.megatron import layer_cost

    model = preset("llama3.1-8b")
    node = H100.nodes[0][0]
    dev, s = node.device, model.seq
    for c in (2, 4):
        layer = layer_cost(model, ParallelConfig(cp=c, gbs=128), node)
        flops = 4.0 * (s // c) * s * model.hidden * 0.5                  # the rank's causal FLOPs
        for backward, key in ((False, "attention_forward"), (True, "attention_backward")):
            steps = attention_time(flops / c, dev, backward=backward, keys=s / c) \
                + (c - 1) * attention_time(flops / c, dev, backward=backward, keys=s / (2 * c))
            assert layer.ops[key] == pytest.approx(steps, rel=1e-12)
            assert layer.ops[key] > attention_time(flops, dev, backward=backward, keys=s / c)   # the whole-call price
    # without a causal mask every step is the rank's s/c queries on s/c keys
    encoder = replace(model, decoder=False, tied_embeddings=True)
    layer = layer_cost(encoder, ParallelConfig(cp=2, gbs=128), node)
    assert layer.ops["attention_forward"] == attention_time(4.0 * (s // 2) * s * model.hidden, dev, keys=s / 2)
