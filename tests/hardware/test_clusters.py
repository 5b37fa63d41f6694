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


# --- heterogeneous clusters: zones, a bandwidth matrix between (zone, node type), prices (§12.3) ----------

def test_heterogeneous_presets_zones_prices_and_links():
    two = load_cluster("two-zone-a100-v100")
    assert two.zone_names == ["us-central1-a", "us-west1-b"] and two.gpu_types == ["A100-40", "V100-16"]
    assert two.price_per_gpu_hour(0) == pytest.approx(3.673385)
    assert two.price_per_hour == pytest.approx(8 * 3.673385 + 8 * 2.859998)
    cross = two.link("us-west1-b", "gcp-v100-16gbx4", "us-central1-a", "gcp-a100-40gbx4")  # either direction
    assert cross.bandwidth == pytest.approx(0.62e9) and cross.latency == pytest.approx(0.03)
    inside = two.link("us-west1-b", "gcp-v100-16gbx4", "us-west1-b", "gcp-v100-16gbx4")
    assert inside.bandwidth == pytest.approx(32e9 / 8 / 4)  # the VM's 32 Gbps shared by its 4 GPUs
    assert two.egress_price_per_gb("us-central1-a", "us-west1-b") == 0.02
    assert two.egress_price_per_gb("us-west1-b", "us-central1-a") == 0.02  # stated once, both ways
    assert two.egress_price_per_gb("us-west1-b", "us-west1-b") == 0.0
    # a homogeneous part keeps its zone and price
    part = two.part("gcp-v100-16gbx4")
    assert part.zone_names == ["us-west1-b"] and part.price_per_hour == pytest.approx(8 * 2.859998)
    gh = load_cluster("clariden-gh200x32")
    assert gh.device_count == 128 and gh.gpu_types == ["GH-96"]
    assert gh.nodes[0][0].device.memory == 96e9
    # existing presets are unchanged: one zone, no prices
    assert load_cluster("mixed-a100-v100").zone_names == ["local"]
    assert load_cluster("mixed-a100-v100").price_per_hour is None


def _write(tmp_path, text):
    path = tmp_path / "het.yaml"
    path.write_text(text)
    return path


HET = """
clusters:
  het:
    nodes:
      - {type: gcp-a100-40gbx4, count: 1, zone: a, price_per_gpu_hour: 2.5}
      - {type: gcp-v100-16gbx4, count: 3, zone: b}
    network:
      - {from: a, to: b, bandwidth: 1GB/s, latency: 10ms}
      - {from: a/gcp-a100-40gbx4, to: b/gcp-v100-16gbx4, bandwidth: 2GB/s}
    egress:
      - {from: a, to: b, price_per_gb: 0.05}
      - {from: b, to: a, price_per_gb: 0.01}
"""


def test_yaml_heterogeneous_cluster(tmp_path):
    c = load_cluster(_write(tmp_path, HET))
    assert c.device_count == 16 and c.zone_list() == ["a", "b"]
    assert c.price_per_gpu_hour(0) == 2.5 and c.price_per_gpu_hour(1) == pytest.approx(2.859998)
    assert c.link("a", "gcp-a100-40gbx4", "b", "gcp-v100-16gbx4").bandwidth == 2e9  # zone/type before zone
    assert (c.egress_price_per_gb("a", "b"), c.egress_price_per_gb("b", "a")) == (0.05, 0.01)


@pytest.mark.parametrize("edit, field", [
    (lambda t: t.replace("      - {from: a, to: b, bandwidth: 1GB/s, latency: 10ms}\n", "").replace(
        "      - {from: a/gcp-a100-40gbx4, to: b/gcp-v100-16gbx4, bandwidth: 2GB/s}\n", ""), "het.network"),
    (lambda t: t.replace("zone: b}", "zone: b/x}"), "nodes[1].zone"),
    (lambda t: t.replace("from: a, to: b, bandwidth", "from: a, to: c, bandwidth"), "network[0].to"),
    (lambda t: t.replace("price_per_gpu_hour: 2.5", "price_per_gpu_hour: -1"), "nodes[0].price_per_gpu_hour"),
    (lambda t: t.replace("price_per_gb: 0.05", "price_per_gb: cheap"), "egress[0].price_per_gb"),
    (lambda t: t.replace("bandwidth: 2GB/s", "bandwidth: fast"), "network[1].bandwidth"),
    (lambda t: t.replace("{from: b, to: a, price", "{from: b, to: z, price"), "egress[1].to"),
    (lambda t: t.replace("{from: b, to: a, price_per_gb: 0.01}", "{from: b, to: a}"), "egress[1]"),
    (lambda t: t.split("    egress:")[0] + "    egress: {a: b}\n", "het.egress"),
])
def test_heterogeneous_errors_name_the_field(tmp_path, edit, field):
    with pytest.raises(HardwareError) as info:
        load_cluster(_write(tmp_path, edit(HET)))
    assert field in str(info.value)


def test_hardware_show_draws_zones_prices_and_the_matrix(capsys):
    from pipesim.cli import main

    assert main(["hardware", "show", "two-zone-a100-v100", "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert [n["zone"] for n in data["nodes"]] == ["us-central1-a", "us-west1-b"]
    assert data["price_per_hour"] == pytest.approx(52.267064)
    cross = [e for e in data["network"] if e["from"] != e["to"] and e["from"].split("/")[0] != e["to"].split("/")[0]]
    assert cross[0]["bandwidth"] == pytest.approx(0.62e9) and cross[0]["price_per_gb"] == 0.02
    assert main(["hardware", "show", "two-zone-a100-v100"]) == 0
    out = capsys.readouterr().out
    assert "$0.02/GB" in out and "620 MB/s" in out and "us-west1-b" in out
