"""``pipesim hardware list|show|calibrate``: the built-in hardware presets, and fitting a CPU.

``list`` prints every cluster, system, device and link preset; ``show NAME``
prints one cluster, system (or device, or link, or a system YAML file) with
every figure, optionally after what-if edits (``--whatif a100.speed=2``,
systems only); ``calibrate PROFILE... -o cpu.yaml`` fits a CPU device to
``pipesim profile`` workloads (:mod:`pipesim.runtime.calibrate`).
"""

from __future__ import annotations

import math

from rich.table import Table

from pipesim.commands.common import console, print_json, writable
from pipesim.output import write_text
from pipesim.commands.graph import system_from_args
from pipesim.errors import HardwareError, InputError
from pipesim.hardware.catalog import builtin_catalog, safe_load_text
from pipesim.hardware.clusters import Cluster, builtin_clusters, load_cluster
from pipesim.hardware.devices import Device, Link, System
from pipesim.hardware.units import (
    BANDWIDTH,
    BYTES,
    FLOPS,
    TIME,
    format_quantity,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("hardware", help="list and show hardware presets")
    sub = p.add_subparsers(dest="action", required=True)
    lst = sub.add_parser("list", help="every built-in cluster, system, device and link")
    lst.add_argument("--json", action="store_true", help="print JSON instead of tables")
    lst.set_defaults(run=run)
    show = sub.add_parser("show", help="one cluster, system, device or link with all its figures")
    show.add_argument("name", help="preset name (cluster, system, device or link) or a system/cluster YAML file")
    show.add_argument("--whatif", action="append", metavar="CLASS.FIELD=VALUE", help="what-if edit (systems only; repeatable)")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(run=run)
    cal = sub.add_parser("calibrate", help="fit a CPU device to 'pipesim profile' workloads")
    cal.add_argument("profiles", nargs="+", help="profiled workload files (pipesim profile -o)")
    cal.add_argument("-o", "--output", required=True, help="output hardware YAML file")
    cal.add_argument("--name", default="this-cpu-core", help="name of the fitted device (default this-cpu-core)")
    cal.add_argument("--no-probe", action="store_true",
                     help="fit the strided class (Transpose...) from the profiles only, without timing "
                          "transposes of up to 32 MiB on this machine first")
    cal.add_argument("--json", action="store_true", help="print JSON instead of text")
    cal.set_defaults(run=run)


def device_dict(d: Device) -> dict:
    return {
        "name": d.name,
        "description": d.description,
        "kind": d.kind,
        "peak_flops": dict(d.peak_flops),
        "memory_bandwidth": d.memory_bandwidth,
        "memory": None if math.isinf(d.memory) else d.memory,
        "compute_efficiency": d.compute_efficiency,
        "memory_efficiency": d.memory_efficiency,
        "launch_overhead": d.launch_overhead,
        "efficiency_by_class": {c: {"compute": ce, "memory": me} for c, (ce, me) in d.class_efficiency.items()},
    }


def link_dict(link: Link | None) -> dict | None:
    if link is None:
        return None
    return {"name": link.name, "description": link.description, "bandwidth": link.bandwidth, "latency": link.latency}


def system_dict(s: System) -> dict:
    return {
        "name": s.name,
        "description": s.description,
        "classes": [
            {
                "name": g.name,
                "count": g.count,
                "device": device_dict(g.device),
                "host_link": link_dict(g.host_link),
                "peer_link": link_dict(g.peer_link),
            }
            for g in s.groups
        ],
    }


def cluster_dict(c: Cluster) -> dict:
    return {
        "name": c.name,
        "description": c.description,
        "devices": c.device_count,
        "nodes": [
            {
                "type": t.name,
                "count": count,
                "description": t.description,
                "device": device_dict(t.device),
                "devices_per_node": t.devices,
                "fabric": link_dict(t.fabric),
                "nic": {**link_dict(t.nic), "per": "device" if t.nic_per_device else "node"},
                "network_bandwidth_per_device": t.network_bandwidth_per_device,
                "gpu_type": t.gpu,
                "zone": zone,
                "price_per_gpu_hour": c.price_per_gpu_hour(i),
            }
            for i, (t, count, zone) in enumerate(c.entries())
        ],
        "price_per_hour": c.price_per_hour,
        "network": [
            {"from": f"{za}/{ta}", "to": f"{zb}/{tb}", **link_dict(c.link(za, ta, zb, tb)),
             "price_per_gb": c.egress_price_per_gb(za, zb)}
            for (za, ta), (zb, tb) in _end_pairs(c)
        ],
    }


def _end_pairs(c: Cluster) -> list:
    ends = list(dict.fromkeys((z, t.name) for t, _, z in c.entries()))
    return [(a, b) for i, a in enumerate(ends) for b in ends[i:]]


def _show_cluster(c: Cluster) -> None:
    table = Table(title=f"{c.name}: {c.description} ({c.node_count} nodes, {c.device_count} devices)")
    zoned = c.zones or c.prices or c.network
    for header in ("nodes", "node type", "devices/node", "device", "memory", "intra-node fabric", "network (NIC)",
                   "network per device", *(("GPU type", "zone", "$/GPU-h") if zoned else ())):
        table.add_column(header)
    for i, (t, count) in enumerate(c.nodes):
        price = c.price_per_gpu_hour(i)
        extra = (t.gpu, c.zone_list()[i], "—" if price is None else f"{price:.4g}") if zoned else ()
        nic = f"{format_quantity(t.nic.bandwidth, BANDWIDTH)} per {'device' if t.nic_per_device else 'node'}, " \
              f"{format_quantity(t.nic.latency, TIME)}"
        table.add_row(
            str(count), t.name, str(t.devices), t.device.name, format_quantity(t.device.memory, BYTES),
            f"{format_quantity(t.fabric.bandwidth, BANDWIDTH)}, {format_quantity(t.fabric.latency, TIME)}", nic,
            format_quantity(t.network_bandwidth_per_device, BANDWIDTH), *extra,
        )
    console.print(table)
    if zoned:  # the bandwidth matrix between (zone, node type) pairs, per device and direction
        ends = list(dict.fromkeys((z, t.name) for t, _, z in c.entries()))
        matrix = Table(title=f"network between (zone, node type), per device; $/GB crossing zones"
                             f"{'' if c.price_per_hour is None else f'; cluster {c.price_per_hour:.4g} $/h'}")
        matrix.add_column("from \\ to")
        for z, t in ends:
            matrix.add_column(f"{z}\n{t}")
        for za, ta in ends:
            cells = []
            for zb, tb in ends:
                link = c.link(za, ta, zb, tb)
                price = c.egress_price_per_gb(za, zb)
                cells.append(f"{format_quantity(link.bandwidth, BANDWIDTH)}, {format_quantity(link.latency, TIME)}"
                             + (f"\n${price:g}/GB" if price else ""))
            matrix.add_row(f"{za}\n{ta}", *cells)
        console.print(matrix)


def _link_text(link: Link | None) -> str:
    if link is None:
        return "—"
    return f"{link.name} ({format_quantity(link.bandwidth, BANDWIDTH)}, {format_quantity(link.latency, TIME)})"


def _peaks(d: Device) -> str:
    return ", ".join(f"{t} {format_quantity(r, FLOPS)}" for t, r in d.peak_flops.items())


def _device_rows(table: Table, d: Device) -> None:
    table.add_row("kind", d.kind)
    table.add_row("peak", _peaks(d))
    table.add_row("memory bandwidth", format_quantity(d.memory_bandwidth, BANDWIDTH))
    table.add_row("memory", format_quantity(d.memory, BYTES))
    table.add_row("efficiency (compute / memory)", f"{d.compute_efficiency:g} / {d.memory_efficiency:g}")
    table.add_row("launch overhead", format_quantity(d.launch_overhead, TIME))


def _show_system(s: System) -> None:
    table = Table(title=f"{s.name}: {s.description}")
    for header in ("class", "count", "device", "kind", "peak", "memory bw", "memory", "host link", "peer link"):
        table.add_column(header)
    for g in s.groups:
        d = g.device
        table.add_row(
            g.name, str(g.count), d.name, d.kind, _peaks(d), format_quantity(d.memory_bandwidth, BANDWIDTH),
            format_quantity(d.memory, BYTES), _link_text(g.host_link), _link_text(g.peer_link),
        )
    console.print(table)


def _list(as_json: bool) -> int:
    catalog = builtin_catalog()
    clusters = builtin_clusters()
    if as_json:
        print_json(
            {
                "clusters": [cluster_dict(c) for c in clusters.values()],
                "systems": [system_dict(s) for s in catalog.systems.values()],
                "devices": [device_dict(d) for d in catalog.devices.values()],
                "links": [link_dict(link) for link in catalog.links.values()],
            }
        )
        return 0
    systems = Table(title="systems")
    for header in ("name", "classes", "description"):
        systems.add_column(header)
    for s in catalog.systems.values():
        systems.add_row(s.name, ", ".join(f"{g.count}x {g.name} ({g.device.name})" for g in s.groups), s.description)
    devices = Table(title="devices")
    for header in ("name", "kind", "peak", "memory bw", "memory", "description"):
        devices.add_column(header)
    for d in catalog.devices.values():
        devices.add_row(d.name, d.kind, _peaks(d), format_quantity(d.memory_bandwidth, BANDWIDTH),
                        format_quantity(d.memory, BYTES), d.description)
    links = Table(title="links")
    for header in ("name", "bandwidth", "latency", "description"):
        links.add_column(header)
    for link in catalog.links.values():
        links.add_row(link.name, format_quantity(link.bandwidth, BANDWIDTH), format_quantity(link.latency, TIME),
                      link.description)
    cluster_table = Table(title="clusters")
    for header in ("name", "nodes", "devices", "description"):
        cluster_table.add_column(header)
    for c in clusters.values():
        cluster_table.add_row(c.name, ", ".join(f"{n}x {t.name}" for t, n in c.nodes), str(c.device_count),
                              c.description)
    for table in (cluster_table, systems, devices, links):
        console.print(table)
    return 0


def _show(name: str, assignments: list[str] | None, as_json: bool) -> int:
    catalog = builtin_catalog()
    if name in builtin_clusters() or (name.endswith((".yaml", ".yml")) and _defines_clusters(name)):
        if assignments:
            raise InputError(None, "--whatif", "what-if edits apply to systems, not clusters")
        cluster = load_cluster(name)
        if as_json:
            print_json(cluster_dict(cluster))
        else:
            _show_cluster(cluster)
        return 0
    if name in catalog.devices and name not in catalog.systems and not assignments:
        d = catalog.devices[name]
        if as_json:
            print_json(device_dict(d))
            return 0
        table = Table(title=f"{d.name}: {d.description}", show_header=False)
        table.add_column("what")
        table.add_column("value")
        _device_rows(table, d)
        console.print(table)
        return 0
    if name in catalog.links and name not in catalog.systems and not assignments:
        link = catalog.links[name]
        if as_json:
            print_json(link_dict(link))
        else:
            console.print(f"{link.name}: {link.description}: {_link_text(link)}")
        return 0
    known = (*catalog.systems, *builtin_clusters(), *catalog.devices, *catalog.links)
    if name not in known and not name.endswith((".yaml", ".yml")):
        raise InputError(None, "hardware", f"unknown preset {name!r}; 'hardware show' takes a system "
                         f"({', '.join(sorted(catalog.systems))}), a cluster ({', '.join(sorted(builtin_clusters()))}), "
                         f"a device ({', '.join(sorted(catalog.devices))}), a link ({', '.join(sorted(catalog.links))}) "
                         "or a YAML file")
    system = system_from_args(name, assignments)
    if as_json:
        print_json(system_dict(system))
    else:
        _show_system(system)
    return 0


def _defines_clusters(path: str) -> bool:
    import yaml

    try:
        with open(path) as f:
            data = safe_load_text(f.read(), path)
    except (OSError, yaml.YAMLError, RecursionError, HardwareError):
        return False
    return isinstance(data, dict) and "clusters" in data


def _calibrate(args) -> int:
    from pipesim.runtime.calibrate import calibrate, device_yaml, measure_strided, read_profiles, report

    output = writable(args.output, "hardware file", "--output")  # before the work: a bad path fails at once
    nodes = read_profiles(args.profiles)
    probes = [] if args.no_probe else measure_strided()
    nodes = nodes + probes
    device = calibrate(nodes).device(args.name, description="a CPU core fitted to ONNX Runtime profiles")
    summary = report(nodes)
    write_text(output, device_yaml(device, list(args.profiles), summary), "--output")
    if args.json:
        print_json({"device": device_dict(device), "errors": summary, "written": args.output})
        return 0
    console.print(f"{args.name}: overhead {format_quantity(device.launch_overhead, TIME)}, "
                  f"peak {format_quantity(max(device.peak_flops.values()), FLOPS)}, "
                  f"bandwidth {format_quantity(device.memory_bandwidth, BANDWIDTH)}")
    for label, e in summary.items():
        console.print(f"per-node measured/predicted {label:>8}: p10/p50/p90 = {e['p10']:.2f}/{e['p50']:.2f}/"
                      f"{e['p90']:.2f}, {e['within_2x']:.0%} of {e['nodes']} nodes within 2x")
    if probes:
        console.print("strided probes (ONNX Runtime, one core): " + ", ".join(
            f"{p.name} {p.bytes / p.measured / 1e9:.3g} GB/s" for p in probes))
    strided = device.efficiencies("strided")[1] * device.memory_bandwidth
    console.print(f"strided class (Transpose, GatherElements...): {format_quantity(strided, BANDWIDTH)}")
    console.print(f"wrote {args.output}")
    return 0


def run(args) -> int:
    if args.action == "calibrate":
        return _calibrate(args)
    if args.action == "list":
        return _list(args.json)
    return _show(args.name, args.whatif, args.json)
