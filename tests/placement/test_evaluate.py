"""The one cost model: hand-computed loads and properties on random DAGs."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipesim.placement import (
    ACCELERATOR,
    CPU,
    Edge,
    Graph,
    Split,
    SplitError,
    is_contiguous,
    paper_devices,
)
from pipesim.placement.evaluate import evaluate
from tests.strategies import node, workloads


@pytest.fixture
def diamond():
    #     a
    #   /   \
    #  b     c
    #   \   /
    #     d
    g = Graph(
        [
            node(1, 1.0, 10.0, memory=5, transfer=0.5),
            node(2, 2.0, 20.0, memory=5, transfer=0.25),
            node(3, 3.0, 30.0, memory=5, transfer=0.125),
            node(4, 4.0, 40.0, memory=5),
        ],
        [Edge(1, 2), Edge(1, 3), Edge(2, 4), Edge(3, 4)],
    )
    return g, paper_devices(2, 1, 10.0)


def test_hand_computed_loads(diamond):
    g, devices = diamond
    split = Split.from_lists({ACCELERATOR: [[1, 2], [3]], CPU: [[4]]})
    ev = evaluate(g, devices, split)
    acc0, acc1, cpu0 = ev.devices
    # acc0: a sends once (to acc1) although it has two successors; b sends to the CPU.
    assert acc0.compute == 3.0 and acc0.send == 0.5 + 0.25 and acc0.receive == 0.0
    # acc1: receives a once; c sends to the CPU.
    assert acc1.compute == 3.0 and acc1.send == 0.125 and acc1.receive == 0.5
    # the CPU pays no communication.
    assert cpu0.compute == 40.0 and cpu0.send == 0 and cpu0.receive == 0
    assert ev.max_load == 40.0
    assert ev.feasible and ev.contiguous


def test_receive_is_charged_once_per_source_and_device():
    g = Graph(
        [node(1, 1.0, transfer=2.0), node(2, 1.0), node(3, 1.0), node(4, 1.0)],
        [Edge(1, 2), Edge(1, 3), Edge(1, 4)],
    )
    ev = evaluate(g, paper_devices(3, 0, math.inf), Split.from_lists({ACCELERATOR: [[1], [2, 3], [4]]}))
    loads = {d.name: (d.send, d.receive) for d in ev.devices}
    assert loads == {"accelerator[0]": (2.0, 0.0), "accelerator[1]": (0.0, 2.0), "accelerator[2]": (0.0, 2.0)}


def test_violations_are_listed(diamond):
    g, devices = diamond
    # memory: 15 > 10 on acc0
    ev = evaluate(g, devices, Split.from_lists({ACCELERATOR: [[1, 2, 3], [4]], CPU: [[]]}))
    assert not ev.feasible
    assert ev.violations == ("accelerator[0] uses 15 B of memory, more than its 10 B",)
    # three accelerators in use but only two exist (an empty device does not count)
    ev = evaluate(g, devices, Split.from_lists({ACCELERATOR: [[1], [], [2], [3, 4]]}))
    assert ev.violations == ("the split uses 3 devices of class accelerator, more than the 2 available",)


def test_unsupported_and_color_class_violations():
    g = Graph(
        [node(1, 1.0, color=7), node(2, 1.0, color=7, supported=False)],
        [Edge(1, 2)],
    )
    ev = evaluate(g, paper_devices(2, 1, math.inf), Split.from_lists({ACCELERATOR: [[1], [2]]}))
    assert any("not supported" in v for v in ev.violations)
    assert any("colour class" in v for v in ev.violations)


def test_non_contiguous_device_is_flagged(diamond):
    g, devices = diamond
    # {a, d} on one device: the path a -> b -> d leaves and re-enters it.
    assert not is_contiguous(g, {1, 4})
    assert is_contiguous(g, {1, 2}) and is_contiguous(g, {2, 3})
    ev = evaluate(g, paper_devices(2, 0, math.inf), Split.from_lists({ACCELERATOR: [[1, 4], [2, 3]]}))
    assert not ev.devices[0].contiguous and not ev.contiguous


def test_contiguous_devices_in_a_cycle_are_not_a_pipeline():
    # X = {a, b}, Y = {c, d}, a -> d and c -> b: each set is contiguous, the stages form a cycle.
    g = Graph([node(1, 1.0), node(2, 1.0), node(3, 1.0), node(4, 1.0)], [Edge(1, 4), Edge(3, 2)])
    devices = paper_devices(2, 0, math.inf)
    ev = evaluate(g, devices, Split.from_lists({ACCELERATOR: [[1, 2], [3, 4]]}))
    assert all(d.contiguous for d in ev.devices)
    assert not ev.contiguous and ev.stage_order is None
    # the same sets, stages listed the other way round: still a cycle
    assert evaluate(g, devices, Split.from_lists({ACCELERATOR: [[3, 4], [1, 2]]})).stage_order is None
    # {b, d} after {a, c}: a pipeline, listed in pipeline order whatever the split's order
    ev = evaluate(g, devices, Split.from_lists({ACCELERATOR: [[2, 4], [1, 3]]}))
    assert ev.contiguous and ev.stage_order == ("accelerator[1]", "accelerator[0]")


def test_training_split_completed_from_color_classes():
    g = Graph(
        [node(1, 1.0, transfer=1.0, color=1), node(2, 2.0, transfer=1.0, color=2),
         node(3, 3.0, transfer=1.0, backward=True, color=2), node(4, 4.0, backward=True, color=1)],
        [Edge(1, 2), Edge(2, 3), Edge(3, 4), Edge(1, 4)],
    )
    ev = evaluate(g, paper_devices(2, 0, math.inf), Split.from_lists({ACCELERATOR: [[1], [2]]}))
    assert [d.nodes for d in ev.devices] == [(1, 4), (2, 3)]
    assert ev.devices[0].forward_compute == 1.0 and ev.devices[0].backward_compute == 4.0
    # acc0 sends 1 (to acc1), receives 3 (3 -> 4); acc1 receives 1, sends 3.
    assert ev.devices[0].load == 1 + 4 + 1 + 1
    assert ev.devices[1].load == 2 + 3 + 1 + 1


def test_bad_splits_raise():
    g = Graph([node(1, 1.0), node(2, 1.0)], [Edge(1, 2)])
    devices = paper_devices(2, 0, math.inf)
    with pytest.raises(SplitError, match="node 9"):
        evaluate(g, devices, Split.from_lists({ACCELERATOR: [[1, 2, 9]]}))
    with pytest.raises(SplitError, match="placed twice"):
        evaluate(g, devices, Split.from_lists({ACCELERATOR: [[1, 2], [2]]}))
    with pytest.raises(SplitError, match="node 2 is not placed"):
        evaluate(g, devices, Split.from_lists({ACCELERATOR: [[1]]}))
    with pytest.raises(SplitError, match="gpu"):
        evaluate(g, devices, Split.from_lists({"gpu": [[1, 2]]}))


@given(workloads())
def test_all_on_one_accelerator_pays_no_communication(workload):
    g = workload.graph
    ev = evaluate(g, workload.devices, Split.from_lists({ACCELERATOR: [list(g.nodes)]}))
    (d,) = ev.devices
    assert d.send == d.receive == 0
    assert d.compute == pytest.approx(g.total_time(ACCELERATOR))
    assert d.contiguous


@given(workloads(), st.data())
def test_compute_is_conserved_and_local(workload, data):
    g = workload.graph
    k = workload.devices[0].count
    classes = sorted(g.color_classes, key=str)
    home = {c: data.draw(st.integers(0, k)) for c in classes}  # k means the CPU

    def split_of(home):
        acc = [[v for c in classes if home[c] == i for v in g.color_classes[c]] for i in range(k)]
        return Split.from_lists({ACCELERATOR: acc, CPU: [[v for c in classes if home[c] == k for v in g.color_classes[c]]]})

    ev = evaluate(g, workload.devices, split_of(home))
    total = sum(g.nodes[v].time[d.device_class] for d in ev.devices for v in d.nodes)
    assert sum(d.compute for d in ev.devices) == pytest.approx(total)
    assert all(d.send >= 0 and d.receive >= 0 for d in ev.devices)
    assert all(d.send == d.receive == 0 for d in ev.devices if d.device_class == CPU)

    # moving one colour class changes the compute of its old and new device only
    moved = data.draw(st.sampled_from(classes))
    target = data.draw(st.integers(0, k))
    after = evaluate(g, workload.devices, split_of({**home, moved: target}))
    for before_d, after_d in zip(ev.devices, after.devices):
        index = k if before_d.device_class == CPU else before_d.index
        if index not in (home[moved], target):
            assert after_d.compute == pytest.approx(before_d.compute)
