"""The DP places a generated BERT-24 training graph on the mixed A100 + V100 box."""

import pytest

from pipesim.hardware.catalog import load_system
from pipesim.placement.dp.solve import solve_dp
from pipesim.placement.result import OPTIMAL
from pipesim.workloads.lower import lower
from pipesim.workloads.transformer import SIZES, transformer


def test_dp_gives_each_class_work_in_proportion_to_its_speed():
    system = load_system("mixed-a100x4-v100x4")
    workload = lower(transformer(SIZES["bert-large"]), system, training=True)
    result = solve_dp(workload)
    assert result.status == OPTIMAL and not result.evaluation.violations

    graph = workload.graph
    layer_ids = [v for v, n in graph.nodes.items() if n.name.startswith("layer") and not n.is_backward]
    # speed of a class = 1 / (its time for one layer's forward + backward + update)
    def layer_time(cls):
        return sum(graph.nodes[v].time[cls] for v in graph.color_classes[graph.color_class(layer_ids[0])])

    speed = {g.name: g.count / layer_time(g.name) for g in system.groups}
    flops = dict.fromkeys(speed, 0.0)
    for device in result.evaluation.devices:
        flops[device.device_class] += sum(graph.nodes[v].flops for v in device.nodes)
    total_flops, total_speed = sum(flops.values()), sum(speed.values())
    for cls in ("a100", "v100"):
        assert flops[cls] > 0
        assert flops[cls] / total_flops == pytest.approx(speed[cls] / total_speed, rel=0.10)
    # the single CPU core is ~500x slower than a GPU: at most its (tiny) share
    assert flops["cpu"] / total_flops <= speed["cpu"] / total_speed + 0.01
    # and the balance is real: every GPU is busy for most of the bottleneck's time
    for device in result.evaluation.devices:
        if device.device_class != "cpu":
            assert device.load >= 0.75 * result.max_load
