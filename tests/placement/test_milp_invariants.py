"""The IP's invariants raise InternalError (issue 12 item 4), not ``assert`` (gone under ``python -O``)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import pipesim.placement.milp as milp
from pipesim.errors import InternalError
from pipesim.placement.devices import paper_devices
from pipesim.placement.graph import Edge, Graph, Node
from pipesim.placement.workload import Workload


def _chain() -> Workload:
    nodes = [Node(i, {"accelerator": 1.0, "cpu": 5.0}, transfer={"accelerator": 0.1}) for i in range(3)]
    return Workload(Graph(nodes, [Edge(0, 1), Edge(1, 2)]), paper_devices(2, 1, 1e9))


def test_milp_has_no_assert_statements():
    tree = ast.parse(Path(milp.__file__).read_text())
    assert not [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]


def test_an_infeasible_ip_split_is_an_internal_error(monkeypatch):
    real = milp.evaluate

    def broken(graph, devices, split):
        return dataclasses.replace(real(graph, devices, split), violations=["made up"])

    monkeypatch.setattr(milp, "evaluate", broken)
    with pytest.raises(InternalError, match="violates the model"):
        milp.solve_ip(_chain())


def test_an_evaluator_above_the_objective_is_an_internal_error(monkeypatch):
    real = milp.evaluate

    class Inflated:  # the real evaluation with a max-load above anything the IP can have found
        def __init__(self, evaluation):
            self.evaluation = evaluation

        def __getattr__(self, name):
            return getattr(self.evaluation, name)

        max_load = 1e30

    monkeypatch.setattr(milp, "evaluate", lambda graph, devices, split: Inflated(real(graph, devices, split)))
    with pytest.raises(InternalError, match="exceeds the IP objective"):
        milp.solve_ip(_chain())
