import pytest

from pipesim.hardware.catalog import load_system
from pipesim.hardware.units import HardwareError
from pipesim.hardware.whatif import (
    ClassEdit,
    apply_edits,
    parse_assignments,
    parse_edits,
)


def test_apply_edits_scales_one_class_only():
    base = load_system("mixed-a100x4-v100x4")
    edited = apply_edits(base, parse_assignments(["a100.speed=2", "a100.link=0.5", "v100.count=6", "v100.memory=2"]))
    a100, base_a100 = edited.group("a100"), base.group("a100")
    assert a100.device.peak("fp16") == 2 * base_a100.device.peak("fp16")
    assert a100.device.memory_bandwidth == 2 * base_a100.device.memory_bandwidth
    assert a100.host_link.bandwidth == base_a100.host_link.bandwidth / 2
    assert edited.group("v100").count == 6
    assert edited.group("v100").device.memory == 2 * base.group("v100").device.memory
    assert edited.group("cpu") == base.group("cpu")
    assert base.group("v100").count == 4  # the original is untouched


def test_compute_only_and_device_swap():
    base = load_system("v100x4-pcie")
    edited = apply_edits(base, parse_edits({"v100": {"compute": 3, "device": "h100-sxm"}}))
    group = edited.group("v100")
    assert group.device.name == "h100-sxm"
    assert group.device.peak("fp16") == 3 * 989.5e12
    assert group.device.memory_bandwidth == 3.35e12


@pytest.mark.parametrize(
    "texts, message",
    [
        (["tpu.speed=2"], "no device class 'tpu'"),
        (["v100.colour=2"], "v100.colour: unknown field"),
        (["v100.speed=-1"], "v100.speed: a scale factor must be a positive"),
        (["v100.count=1.5"], "v100.count: must be a non-negative integer"),
        (["v100speed2"], "expected CLASS.FIELD=VALUE"),
        (["v100.device=tpu"], "unknown device 'tpu'"),
    ],
)
def test_bad_edits_name_the_field(texts, message):
    with pytest.raises(HardwareError, match=message):
        apply_edits(load_system("v100x4-pcie"), parse_assignments(texts))


def test_class_edit_defaults_change_nothing():
    base = load_system("a100x8")
    assert apply_edits(base, {"a100": ClassEdit()}) == base
