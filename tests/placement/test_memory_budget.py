"""Memory-bounded solving (issue 12 item 3) and huge device counts (issue 12 item 2).

The DP must stop with a one-line ResourceLimitError, naming what works for
the graph, instead of allocating past its budget (and being killed), and a
device count of 10**9 must cost no more than one per super-node.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings

from pipesim.errors import IdealLimitError, ResourceLimitError
from pipesim.placement.devices import DeviceClass, paper_devices
from pipesim.placement.dp.solve import solve_dp
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.dp.ideals import enumerate_ideals
from pipesim.placement.memory import MemoryBudget
from pipesim.placement.milp import solve_ip
from pipesim.placement.workload import Workload
from tests.strategies import workloads


def _wide(width: int, layers: bool = False) -> Workload:
    """A source, ``width`` parallel nodes and a sink: about 2**width ideals (like an imported graph)."""
    layer = (lambda i: i // 4) if layers else (lambda i: None)
    nodes = [Node(i, {"accelerator": 1.0, "cpu": 3.0}, transfer={"accelerator": 0.01}, layer_id=layer(i))
             for i in range(width + 2)]
    edges = [Edge(0, i) for i in range(1, width + 1)] + [Edge(i, width + 1) for i in range(1, width + 1)]
    return Workload(Graph(nodes, edges), paper_devices(4, 1, 1e12))


@pytest.mark.slow
def test_a_level_past_the_limit_is_refused_before_it_is_built():
    # 3000 independent nodes: level 2 has 4.5 million ideals; building it first took 27 GB.
    with pytest.raises(IdealLimitError, match="4,501,501"):
        enumerate_ideals(3000, [[] for _ in range(3000)], limit=2_000_000)


@pytest.mark.slow
def test_enumeration_stops_at_the_memory_budget():
    with pytest.raises(ResourceLimitError, match="enumerating .* ideals"):
        enumerate_ideals(3000, [[] for _ in range(3000)], limit=10**12, budget=MemoryBudget(50 * 2**20))


def test_dp_stops_at_its_memory_budget_and_names_what_works():
    with pytest.raises(ResourceLimitError) as caught:
        solve_dp(_wide(18), ideal_limit=10**9, memory_budget=20 * 2**20)
    message = str(caught.value)
    assert "\n" not in message and "--method ip" in message
    assert "--fuse-layers" not in message  # the nodes have no layer ids: fusing cannot help


def test_the_ideal_limit_names_layer_fusion_only_where_it_helps():
    with pytest.raises(IdealLimitError, match="--fuse-layers") as caught:
        solve_dp(_wide(16, layers=True), ideal_limit=1000)
    assert "--method ip" in str(caught.value) and "--ideal-limit" in str(caught.value)


def test_solving_within_the_budget_is_unchanged():
    assert solve_dp(_wide(8), memory_budget=2**30).max_load == solve_dp(_wide(8)).max_load


@pytest.mark.slow
def test_address_space_limit_gives_a_resource_error_not_a_memory_error():
    # In a child under ulimit -v 2 GB: before issue 12 this raised numpy's MemoryError (a traceback).
    script = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2_000_000_000, 2_000_000_000))
        from pipesim.errors import ResourceLimitError
        from tests.placement.test_memory_budget import _wide
        from pipesim.placement.dp.solve import solve_dp
        try:
            solve_dp(_wide(3000), ideal_limit=10**12)
        except ResourceLimitError as exc:
            print("ResourceLimitError", exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ResourceLimitError") and "address-space" in proc.stdout


def _chain(n: int, accelerators: int) -> Workload:
    nodes = [Node(i, {"accelerator": 1.0 + i % 3, "cpu": 5.0}, memory=1.0, transfer={"accelerator": 0.1})
             for i in range(n)]
    return Workload(Graph(nodes, [Edge(i, i + 1) for i in range(n - 1)]), paper_devices(accelerators, 1, 10.0))


def test_a_billion_accelerators_cost_no_more_than_one_per_node():
    # Before issue 12: "Unable to allocate 29.8 GiB" for the DP's device grid.
    huge, enough = solve_dp(_chain(6, 10**9)), solve_dp(_chain(6, 6))
    assert huge.max_load == enough.max_load and huge.status == enough.status
    assert solve_ip(_chain(6, 10**9)).max_load == pytest.approx(enough.max_load)


@pytest.mark.slow
@settings(max_examples=40)
@given(workloads(max_nodes=5, max_accelerators=2, max_cpus=1))
def test_device_counts_past_the_node_count_change_nothing(workload):
    many = Workload(workload.graph, tuple(DeviceClass(dc.name, dc.count + 10**9, dc.memory) for dc in workload.devices))
    plenty = Workload(workload.graph, tuple(DeviceClass(dc.name, dc.count + len(workload.graph.nodes), dc.memory)
                                            for dc in workload.devices))
    assert solve_dp(many).max_load == solve_dp(plenty).max_load
