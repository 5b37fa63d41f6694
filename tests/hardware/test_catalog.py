"""Presets load, cite their sources, and bad descriptions fail naming the field."""

import re

import pytest
import yaml

from pipesim.hardware.catalog import (
    PRESETS,
    Catalog,
    builtin_catalog,
    load_system,
    preset_names,
)
from pipesim.hardware.devices import ACCELERATOR_KIND, CPU_KIND
from pipesim.hardware.units import HardwareError

REQUIRED_DEVICES = {"v100", "a100-40gb", "a100-80gb", "h100-sxm"}
REQUIRED_LINKS = {"pcie3-x16", "pcie4-x16", "pcie5-x16", "nvlink2", "nvlink3", "nvlink4"}


def test_required_presets_exist():
    catalog = builtin_catalog()
    assert REQUIRED_DEVICES <= set(catalog.devices)
    assert any(d.kind == CPU_KIND for d in catalog.devices.values())
    assert REQUIRED_LINKS <= set(catalog.links)
    assert {"a100x8", "v100x4-pcie", "mixed-a100x4-v100x4"} <= set(preset_names())


def test_datasheet_figures():
    c = builtin_catalog()
    assert c.devices["a100-80gb"].peak("fp16") == 312e12
    assert c.devices["a100-80gb"].memory == 80e9
    assert c.devices["a100-40gb"].memory_bandwidth == 1555e9
    assert c.devices["v100"].peak("fp16") == 125e12
    assert c.devices["h100-sxm"].memory_bandwidth == 3.35e12
    assert c.links["pcie4-x16"].bandwidth == 31.5e9
    assert c.links["nvlink3"].bandwidth == 300e9


def test_every_preset_value_cites_a_source():
    """Each line that sets a number in devices.yaml and links.yaml carries a comment."""
    for name in ("devices.yaml", "links.yaml", "systems.yaml"):
        for lineno, line in enumerate((PRESETS / name).read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r":\s*[0-9]", code) and not code.strip().startswith("description"):
                assert "#" in line, f"{name}:{lineno} has no source comment: {line.strip()}"


def test_systems():
    a100x8 = load_system("a100x8")
    assert [(g.name, g.count, g.kind) for g in a100x8.groups] == [("a100", 8, ACCELERATOR_KIND), ("cpu", 1, CPU_KIND)]
    assert a100x8.group("a100").peer_link.name == "nvlink3"
    mixed = load_system("mixed-a100x4-v100x4")
    assert mixed.class_names == ("a100", "v100", "cpu")
    assert not mixed.is_paper_shaped and a100x8.is_paper_shaped


def _bad(**sections):
    catalog = Catalog(dict(builtin_catalog().devices), dict(builtin_catalog().links))
    catalog.add(sections)


@pytest.mark.parametrize(
    "sections, field, message",
    [
        ({"devices": {"x": {"kind": "accelerator", "peak_flops": {"fp16": "1TFLOPS"}}}}, "devices.x.memory_bandwidth", "missing"),
        ({"devices": {"x": {"kind": "gpu", "peak_flops": {"fp16": 1}, "memory_bandwidth": 1}}}, "devices.x.kind", "must be"),
        ({"devices": {"x": {"kind": "cpu", "peak_flops": {"fp16": "1GB"}, "memory_bandwidth": 1}}}, "devices.x.peak_flops.fp16", "bytes quantity"),
        ({"devices": {"x": {"kind": "cpu", "peak_flops": {"fp32": 1}, "memory_bandwidth": 1, "colour": 1}}}, "devices.x.colour", "unknown field"),
        ({"links": {"l": {"bandwidth": "-3GB/s"}}}, "links.l.bandwidth", "cannot read"),
        ({"links": {"l": {"bandwidth": 0}}}, "links.l.bandwidth", "positive"),
        ({"systems": {"s": {"classes": [{"name": "g", "device": "tpu", "count": 1}]}}}, "systems.s.classes[0].device", "unknown device 'tpu'"),
        ({"systems": {"s": {"classes": [{"name": "g", "device": "v100", "count": -1}]}}}, "systems.s.classes[0].count", "non-negative"),
        ({"systems": {"s": {"classes": [{"name": "g", "device": "v100", "count": 1}]}}}, "classes.g.host_link", "link to host"),
        ({"systems": {"s": {"classes": [{"name": "g", "device": "v100", "count": 1, "host_link": "usb"}]}}}, "systems.s.classes[0].host_link", "unknown link 'usb'"),
        ({"systems": {"s": {"classes": []}}}, "systems.s.classes", "non-empty"),
    ],
)
def test_validation_names_the_field(sections, field, message):
    with pytest.raises(HardwareError, match=message) as info:
        _bad(**sections)
    assert info.value.field == field


def test_unknown_preset():
    with pytest.raises(HardwareError, match="unknown preset 'tpu-pod'.*a100x8"):
        load_system("tpu-pod")


def test_user_yaml_file_uses_builtin_devices(tmp_path):
    path = tmp_path / "mybox.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "links": {"slow": {"bandwidth": "1GB/s", "latency": "1ms"}},
                "systems": {
                    "mybox": {
                        "classes": [
                            {"name": "gpu", "device": "h100-sxm", "count": 2, "host_link": "slow"},
                            {"name": "cpu", "device": "xeon-8380-core", "count": 4},
                        ]
                    }
                },
            }
        )
    )
    system = load_system(path)
    assert system.group("gpu").host_link.latency == 1e-3
    assert system.group("cpu").count == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("systems: {b: {classes: [{name: g, device: v100, count: 1, host_link: {bandwidth: 2 parsecs}}]}}")
    with pytest.raises(HardwareError, match=r"bad.yaml: systems.b.classes\[0\].host_link.bandwidth"):
        load_system(bad)


def test_a_system_names_how_its_transfers_are_priced(tmp_path):
    import pytest as _pytest

    from pipesim.hardware.catalog import load_system as _load
    from pipesim.hardware.units import HardwareError as _HardwareError

    path = tmp_path / "box.yaml"
    path.write_text("systems:\n  box:\n    transfers: host\n    classes:\n"
                    "      - {name: a100, device: a100-80gb, count: 2, host_link: pcie4-x16, peer_link: nvlink3}\n")
    assert _load(path).transfer_links() == {"a100": (_load("a100x8").group("a100").host_link,)}
    path.write_text(path.read_text().replace("transfers: host", "transfers: nvlink"))
    with _pytest.raises(_HardwareError, match="transfers"):
        _load(path)
