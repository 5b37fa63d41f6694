"""Model generators: FLOPs, parameters and training structure against analytic counts."""

import math

import pytest

from pipesim.hardware.catalog import load_system
from pipesim.hardware.costs import kernel_time, transfer_time
from pipesim.hardware.devices import dtype_bytes
from pipesim.workloads.gnmt import GNMTConfig, gnmt
from pipesim.workloads.inception import inception_v3
from pipesim.workloads.lower import TIME_UNIT, lower
from pipesim.workloads.opgraph import Kernel, Op, OpGraph
from pipesim.workloads.resnet import resnet50
from pipesim.workloads.transformer import SIZES, TransformerConfig, transformer

BERT_LARGE = SIZES["bert-large"]  # b=8, s=512, h=1024, 16 heads, 24 layers


def test_bert_large_layer_flops_match_the_analytic_count():
    b, s, h = BERT_LARGE.batch, BERT_LARGE.seq, BERT_LARGE.hidden
    analytic = 24 * b * s * h**2 + 4 * b * s**2 * h
    layers = [op for op in transformer(BERT_LARGE).ops if op.name.startswith("layer")]
    assert len(layers) == 24
    for op in layers:
        assert op.flops == pytest.approx(analytic, rel=0.01)


def test_bert_large_parameter_memory_is_exact():
    h = BERT_LARGE.hidden
    workload = lower(transformer(BERT_LARGE), load_system("a100x8"))
    e = dtype_bytes(BERT_LARGE.dtype)
    layers = [n for n in workload.graph.nodes.values() if n.name.startswith("layer")]
    for node in layers:
        assert node.memory == (12 * h * h + 13 * h) * e
    embedding = workload.graph.nodes[0]
    assert embedding.memory == (30522 * h + 512 * h + 2 * h + 2 * h) * e
    ops = transformer(BERT_LARGE)
    assert workload.graph.total_memory == ops.params * e
    assert 334e6 < ops.params < 336e6  # BERT-large: 335 M with the pooler


def test_operator_granularity_has_the_same_totals():
    config = TransformerConfig(layers=2, hidden=64, heads=4, seq=16, batch=2, vocab=100, max_positions=16)
    layer, operator = transformer(config), transformer(config, granularity="operator")
    assert len(layer.ops) == 4 and len(operator.ops) == 2 + 2 * 10
    assert operator.flops == pytest.approx(layer.flops)
    assert operator.params == layer.params
    with pytest.raises(ValueError, match="granularity"):
        transformer(config, granularity="block")


def test_gpt_decoder_head_projects_to_the_vocabulary():
    config = SIZES["gpt2"]
    ops = transformer(config)
    head = ops.ops[-1]
    t, h = config.batch * config.seq, config.hidden
    assert head.name == "lm_head" and head.flops == 2 * t * h * config.vocab
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(hidden=100, heads=16)


def test_resnet50_forward_flops_match_4_1_gmacs():
    ops = resnet50(batch=1)
    assert ops.flops / 2 == pytest.approx(4.1e9, rel=0.05)
    assert ops.params == 25_557_032  # torchvision's resnet50
    assert resnet50(batch=4).flops == pytest.approx(4 * ops.flops)


def test_inception_v3_is_branching():
    ops = inception_v3(batch=1)
    assert ops.flops / 2 == pytest.approx(5.7e9, rel=0.05)
    assert ops.params == 23_834_568  # torchvision's inception_v3 without the auxiliary head
    fan_out = max(sum(1 for s, _ in ops.edges if s == i) for i in range(len(ops.ops)))
    assert fan_out == 4  # a module input feeds four branches
    concat = next(i for i, op in enumerate(ops.ops) if op.name == "Mixed_7c.concat")
    assert sum(1 for _, d in ops.edges if d == concat) == 6


def test_gnmt_structure():
    config = GNMTConfig(layers=4, hidden=64, vocab=100, seq=5, batch=2)
    ops = gnmt(config)
    names = [op.name for op in ops.ops]
    assert names[:3] == ["encoder.embedding", "encoder.lstm1_forward", "encoder.lstm1_backward"]
    attention = names.index("attention")
    # the attention feeds every decoder layer after the first
    assert {names[d] for s, d in ops.edges if s == attention} == {"decoder.lstm2", "decoder.lstm3", "decoder.lstm4"}
    b, s, h = 2, 5, 64
    lstm = ops.ops[names.index("encoder.lstm3")]
    # input projection + recurrence + residual add
    expected = (2 * b * s * h * 4 * h + b * s * 4 * h) + s * (2 * b * h * 4 * h + b * 4 * h + 9 * b * h) + b * s * h
    assert lstm.flops == expected
    assert lstm.params == 2 * (4 * h * h + 4 * h)
    assert len(gnmt(config, granularity="operator").ops) > len(ops.ops)


def _one_op_graph(flops, nbytes, out_bytes, params):
    g = OpGraph("tiny", "fp16")
    a = g.add(Op("a", (Kernel(flops, nbytes),), params=params, output_bytes=out_bytes, stash_bytes=out_bytes))
    g.add(Op("b", (Kernel(flops, nbytes, repeat=3),)), [a])
    return g


def test_lowering_times_and_transfers_by_hand():
    system = load_system("mixed-a100x4-v100x4")
    workload = lower(_one_op_graph(1e12, 1e9, 8e6, 1000), system)
    a, b = workload.graph.nodes[0], workload.graph.nodes[1]
    for group in system.groups:
        expected = kernel_time(1e12, 1e9, group.device, "fp16") / TIME_UNIT
        assert a.time[group.name] == pytest.approx(expected)
        assert b.time[group.name] == pytest.approx(3 * expected)
    assert a.transfer == {
        "a100": pytest.approx((10e-6 + 8e6 / 31.5e9) / TIME_UNIT),
        "v100": pytest.approx((10e-6 + 8e6 / 15.75e9) / TIME_UNIT),
    }
    assert "cpu" not in a.transfer  # CPU cores sit on the host: they pay nothing (docs/model.md §2)
    assert b.transfer == {}
    assert [(d.name, d.count, d.memory) for d in workload.devices] == [
        ("a100", 4, 40e9), ("v100", 4, 32e9), ("cpu", 1, math.inf)
    ]


def test_training_adds_backward_and_update_nodes():
    system = load_system("a100x8")
    ops = _one_op_graph(1e12, 1e9, 8e6, 1000)
    workload = lower(ops, system, training=True, optimizer="adam")
    g = workload.graph
    assert len(g.forward_nodes) == 2 and len(g.backward_nodes) == 3  # two backward, one update
    fwd, bwd, update = g.nodes[0], g.nodes[2], g.nodes[4]
    assert bwd.is_backward and bwd.color_class == fwd.color_class == update.color_class
    assert bwd.flops == 2 * fwd.flops
    assert update.name == "a.update" and update.flops == 12 * 1000
    assert fwd.memory == 1000 * 2 * 4 + 8e6  # weights, grads, 2 Adam states (fp16) + stash
    assert (3, 2) in {(e.source, e.dest) for e in g.edges}  # gradients flow backwards
    # the A100s share an NVSwitch domain: GPU-to-GPU gradients move over NVLink 3
    assert g.nodes[3].transfer["a100"] == pytest.approx(transfer_time(8e6, system.group("a100").peer_link) / TIME_UNIT)


def test_links_as_the_hardware_has_them():
    from dataclasses import replace

    ops = _one_op_graph(1e12, 1e9, 8e6, 1000)
    a100x8 = load_system("a100x8")
    nvlink, pcie = a100x8.group("a100").peer_link, a100x8.group("a100").host_link
    peer = lower(ops, a100x8).graph.nodes[0].transfer
    assert peer == {"a100": pytest.approx(transfer_time(8e6, nvlink) / TIME_UNIT),
                    "cpu": pytest.approx(transfer_time(8e6, pcie) / TIME_UNIT)}  # the host core's tensors cross PCIe
    host = lower(ops, replace(a100x8, transfers="host")).graph.nodes[0].transfer
    assert host == {"a100": pytest.approx(transfer_time(8e6, pcie) / TIME_UNIT)}  # the paper's model
    # two accelerator classes: tensors between them go through the host
    mixed = load_system("mixed-a100x4-v100x4")
    assert not mixed.peer_domain and set(lower(ops, mixed).graph.nodes[0].transfer) == {"a100", "v100"}
