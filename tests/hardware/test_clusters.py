"""Cluster presets: nodes x devices, fabric and network with sources; heterogeneous clusters; errors."""

import pytest
from pipesim.hardware.clusters import cluster_names, load_cluster
from pipesim.hardware.units import HardwareError


def test_presets():
    assert {"dgx-a100x4", "dgx-h100x16", "mixed-a100-v100"} <= set(cluster_names())
    a100 = load_cluster("dgx-a100x4")
    assert (a100.node_count, a100.device_count) == (4, 32)
    node = a100.nodes[0][0]
    assert node.device.memory == 80e9 and node.fabric.bandwidth == 300e9
    assert node.network_bandwidth_per_device == 25e9  # 200 Gb/s per GPU
    assert load_cluster("dgx-h100x16").device_count == 128
    mixed = load_cluster("mixed-a100-v100")
    assert not mixed.homogeneous
    v100 = mixed.nodes[1][0]
    assert v100.network_bandwidth_per_device == 50e9 / 8  # 4x EDR shared by 8 GPUs
    assert [mixed.node_of_device(d) for d in (0, 15, 16, 31)] == [0, 1, 2, 3]


def test_yaml_file_and_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "clusters:\n  mine:\n    nodes:\n      - {type: dgx-a100, count: 2}\n"
    )
    assert load_cluster(path).device_count == 16
    path.write_text("node_types:\n  x:\n    device: a100-80gb\n    devices: 4\n    fabric: nvlink3\n"
                    "    nic: {bandwidth: 100Gbps, per: rack}\nclusters:\n  mine: {nodes: [{type: x, count: 1}]}\n")
    with pytest.raises(HardwareError, match="nic.per"):
        load_cluster(path)
    with pytest.raises(HardwareError, match="unknown cluster"):
        load_cluster("nope")
