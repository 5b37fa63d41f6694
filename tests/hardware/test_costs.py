"""The cost formulas of hardware/costs.py against hand calculations."""

import math

import pytest

from pipesim.hardware.costs import (
    kernel_time,
    node_memory,
    optimizer_bytes,
    optimizer_flops,
    transfer_time,
)
from pipesim.hardware.devices import Device, Link
from pipesim.hardware.units import HardwareError

GPU = Device(
    "gpu",
    "accelerator",
    {"fp32": 10e12, "fp16": 100e12},
    memory_bandwidth=1e12,
    memory=40e9,
    compute_efficiency=0.5,
    memory_efficiency=0.8,
    launch_overhead=5e-6,
)


def test_compute_bound_kernel():
    # 1e12 FLOPs at 100 TFLOP/s x 0.5 = 20 ms; 1e9 bytes at 0.8 TB/s = 1.25 ms
    assert kernel_time(1e12, 1e9, GPU, "fp16") == pytest.approx(5e-6 + 0.02)


def test_memory_bound_kernel():
    # 1e9 FLOPs: 20 us; 8e9 bytes at 0.8 TB/s = 10 ms
    assert kernel_time(1e9, 8e9, GPU, "fp16") == pytest.approx(5e-6 + 0.01)


def test_missing_dtype_runs_at_fp32_and_empty_kernel_is_free():
    assert kernel_time(1e12, 0, GPU, "bf16") == pytest.approx(5e-6 + 1e12 / (10e12 * 0.5))
    assert kernel_time(0, 0, GPU, "fp16") == 0.0
    with pytest.raises(HardwareError, match="unknown data type 'fp7'"):
        kernel_time(1, 1, GPU, "fp7")


def test_transfer_time_is_latency_plus_bytes_over_bandwidth():
    link = Link("pcie", bandwidth=16e9, latency=10e-6)
    assert transfer_time(8e6, link) == pytest.approx(10e-6 + 8e6 / 16e9)
    assert transfer_time(0, link) == 0.0
    assert transfer_time(8e6, None) == 0.0


def test_node_memory():
    assert node_memory(1000, "fp16", training=False) == 2000
    # weights + gradients + 2 Adam states, each 2 bytes, + stash
    assert node_memory(1000, "fp16", training=True, optimizer="adam", stashed_activations=50) == 8050
    assert node_memory(1000, "fp32", training=True, optimizer="sgd") == 8000
    with pytest.raises(HardwareError, match="unknown optimizer 'lion'"):
        node_memory(1, "fp32", training=True, optimizer="lion")


def test_optimizer_update_cost():
    assert optimizer_flops(10, "adam") == 120
    assert optimizer_bytes(10, "fp32", "adam") == (3 + 4) * 10 * 4
    assert optimizer_bytes(10, "fp32", "sgd") == 3 * 10 * 4


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"kind": "fpga"}, "devices.gpu.kind"),
        ({"peak_flops": {}}, "devices.gpu.peak_flops"),
        ({"peak_flops": {"fp16": -1.0}}, "devices.gpu.peak_flops.fp16"),
        ({"memory_bandwidth": 0.0}, "devices.gpu.memory_bandwidth"),
        ({"compute_efficiency": 1.5}, "devices.gpu.compute_efficiency"),
        ({"launch_overhead": math.nan}, "devices.gpu.launch_overhead"),
    ],
)
def test_device_validation_names_the_field(changes, field):
    fields = dict(kind="accelerator", peak_flops={"fp16": 1e12}, memory_bandwidth=1e12)
    fields.update(changes)
    with pytest.raises(HardwareError) as info:
        Device("gpu", **fields)
    assert info.value.field == field


def test_training_recipes_match_practice():
    from pipesim.hardware.costs import DEFAULT_TRAINING_OPTIMIZER, training_bytes_per_param

    assert DEFAULT_TRAINING_OPTIMIZER == "mixed-adam"
    # fp16 weights 2 + fp16 grads 2 + fp32 master 4 + two fp32 moments 8 (ZeRO §3.1)
    assert training_bytes_per_param("fp16", "mixed-adam") == training_bytes_per_param("bf16", "mixed-adam") == 16
    assert training_bytes_per_param("fp32", "fp32-adam") == 16
    assert training_bytes_per_param("fp32", "sgd-momentum") == 12
    assert node_memory(1000, "fp16", training=True) == 16000
    assert node_memory(1000, "fp16", training=True, stashed_activations=50, microbatches_in_flight=4) == 16200
    # update: reads w, g, master, states; writes w, master, states
    assert optimizer_bytes(10, "fp16", "mixed-adam") == (2 * 2 + 2 + 2 * 4 + 2 * 2 * 4) * 10
    assert optimizer_flops(10, "sgd-momentum") == 40
