"""docs/model.md §3 preprocessing, step by step."""

import math

import pytest

from pipesim.placement import Edge, Graph, Workload, paper_devices
from pipesim.placement.dp.contract import contract
from pipesim.placement.dp.solve import solve_dp
from tests.strategies import node


def groups(c):
    return sorted(sorted(m) for m in c.members)


def test_colour_classes_contract_and_cycles_fuse():
    # a and c share a class; a -> b -> c makes {a, c} <-> b a cycle, so all three fuse.
    g = Graph([node(1, 1.0, color=1), node(2, 1.0, color=2), node(3, 1.0, color=1), node(4, 1.0, color=4)],
              [Edge(1, 2), Edge(2, 3), Edge(3, 4)])
    c = contract(g, merge="none")
    assert groups(c) == [[1, 2, 3], [4]]
    assert c.edges == ((0, 1),)


def test_backward_nodes_join_their_forward_partner():
    g = Graph([node(1, 1.0, transfer=1.0, color=1), node(2, 1.0, transfer=1.0, color=2),
               node(3, 2.0, transfer=1.0, backward=True, color=2), node(4, 2.0, backward=True, color=1)],
              [Edge(1, 2), Edge(2, 3), Edge(3, 4)])
    c = contract(g, merge="none")
    assert groups(c) == [[1, 4], [2, 3]]
    assert c.super_of[4] == c.super_of[1]


def test_orphan_backward_node_gets_a_mirrored_forward_partner():
    # backward 11 (class 9, no forward node) feeds backward 12 (class 2): the artificial
    # forward partner of class 9 must come after forward node 2 (mirror of 11 -> 12).
    g = Graph([node(1, 1.0, color=1), node(2, 1.0, color=2),
               node(11, 1.0, backward=True, color=9), node(12, 1.0, backward=True, color=2)],
              [Edge(1, 2), Edge(11, 12)])
    c = contract(g, merge="none")
    orphan, partner = c.super_of[11], c.super_of[2]
    assert (partner, orphan) in c.edges
    assert all(g.nodes[v].is_backward for v in c.members[orphan])


def test_zero_cost_source_merges_into_its_only_neighbour():
    g = Graph([node(1, 0.0, cpu=0.0, transfer=1.0), node(2, 3.0, transfer=1.0), node(3, 3.0)],
              [Edge(1, 2), Edge(2, 3)])
    assert groups(contract(g)) == [[1, 2], [3]]
    assert groups(contract(g, merge="none")) == [[1], [2], [3]]


def test_merging_is_skipped_where_memory_could_bind():
    # node 1 costs nothing but holds memory; memory binds (total 6 > 4).
    g = Graph([node(1, 0.0, cpu=0.0, memory=3.0, transfer=1.0), node(2, 3.0, memory=3.0)], [Edge(1, 2)])
    tight = paper_devices(2, 0, 4.0)
    assert groups(contract(g, tight)) == [[1], [2]]
    assert groups(contract(g, tight, merge="paper")) == [[1, 2]]
    assert groups(contract(g, paper_devices(2, 0, 10.0))) == [[1, 2]]  # everything fits: exact
    # and the DP sees the difference: merged, nothing fits on one device
    w = Workload(g, tight)
    assert solve_dp(w).max_load == pytest.approx(3.0 + 1.0)
    assert math.isinf(solve_dp(w, merge="paper").max_load)


def test_merging_respects_support():
    g = Graph([node(1, 0.0, cpu=0.0, transfer=1.0, supported=False), node(2, 3.0)], [Edge(1, 2)])
    assert groups(contract(g, paper_devices(1, 1, math.inf))) == [[1], [2]]


def test_layer_fusion_and_ordering_constraints():
    from pipesim.placement.graph import Node
    nodes = [Node(i, {"accelerator": 1.0, "cpu": 10.0}, layer_id=i // 2) for i in range(4)]
    g = Graph(nodes, [Edge(0, 2), Edge(1, 3)])
    assert groups(contract(g, merge="none", fuse_layers=True)) == [[0, 1], [2, 3]]
    c = contract(g, merge="none", order=[(2, 1)])
    assert (c.super_of[2], c.super_of[1]) in c.edges
    with pytest.raises(ValueError, match="merge: must be one of"):
        contract(g, merge="sometimes")
