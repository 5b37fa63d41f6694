"""Graph validation: each malformed input names the culprit."""

import math

import pytest

from pipesim.placement import Edge, Graph, GraphError
from tests.strategies import node


def test_valid_graph_topological_order():
    g = Graph([node(3, 1.0), node(1, 1.0), node(2, 1.0)], [Edge(1, 2), Edge(3, 2), Edge(3, 1)])
    assert g.topological_order == [3, 1, 2]
    assert g.successors(3) == [2, 1] or sorted(g.successors(3)) == [1, 2]
    assert not g.is_training


@pytest.mark.parametrize(
    "nodes, edges, message",
    [
        ([node(1, 1.0), node(1, 2.0)], [], "node 1: duplicate node id"),
        ([node(1, 1.0)], [Edge(1, 9)], "unknown node id 9"),
        ([node(1, 1.0)], [Edge(1, 1)], "self-loop"),
        ([node(1, 1.0), node(2, 1.0), node(3, 1.0)], [Edge(1, 2), Edge(2, 3), Edge(3, 1)], "cycle: 1 -> 2 -> 3 -> 1"),
        ([node(1, -1.0)], [], "node 1: time on 'accelerator' must be a finite non-negative number"),
        ([node(1, math.nan)], [], "must be a finite non-negative number, got nan"),
        ([node(1, 1.0, memory=math.inf)], [], "node 1: memory"),
        ([node(1, 1.0, transfer=-2.0)], [], "node 1: transfer time"),
        ([node(1, 1.0, backward=True), node(2, 1.0)], [Edge(1, 2)], "from backward node 1 to forward node 2"),
    ],
)
def test_invalid_graphs(nodes, edges, message):
    with pytest.raises(GraphError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Graph(nodes, edges)


def test_parallel_edges_are_merged():
    g = Graph([node(1, 1.0), node(2, 1.0)], [Edge(1, 2), Edge(1, 2)])
    assert len(g.edges) == 1
