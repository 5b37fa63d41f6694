"""On random workloads the simulator agrees with the evaluator and never deadlocks (docs/model.md §6.5).

* ``paper`` mode, contiguous split (a topological order cut into pieces),
  streaming or 1F1B: steady-state time-per-sample = max-load within 0.5%;
* streaming works for any split, contiguous or not, and reaches max-load too
  (a device may be visited several times per microbatch);
* with the default links (each transfer takes exactly c(u), no sharing)
  ``overlap`` is never slower than ``paper``;
* training schedules on a non-contiguous split may deadlock: that is
  reported, never hung on.
"""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipesim.placement import Split
from pipesim.placement.evaluate import evaluate
from pipesim.placement.devices import ACCELERATOR
from pipesim.simulation import LinkModel, SimulationError, simulate
from tests.pipesim.simulate_helpers import (
    all_supported,
    by_colour_class,
    chain,
    topological_chunks,
)
from tests.strategies import workloads

cuts = st.lists(st.integers(0, 8), max_size=3)


@settings(max_examples=40)
@given(workloads(max_nodes=7), cuts)
def test_contiguous_split_reaches_max_load(workload, cut):
    workload = all_supported(workload)
    split = topological_chunks(workload, cut)
    for schedule in ("stream", "1f1b") if workload.graph.is_training else ("stream",):
        result = simulate(workload, split, schedule=schedule, microbatches=20 * (len(cut) + 1) + 8)
        assume(result.evaluation.contiguous)
        assert result.simulated_time_per_sample == pytest.approx(result.predicted_time_per_sample, rel=5e-3, abs=1e-9)


@settings(max_examples=40)
@given(workloads(max_nodes=7), st.data())
def test_streaming_any_split_reaches_max_load(workload, data):
    workload = all_supported(workload)
    split = by_colour_class(workload, {v: data.draw(st.integers(0, 2)) for v in workload.graph.forward_nodes})
    result = simulate(workload, split, schedule="stream", microbatches=80)
    assert result.simulated_time_per_sample == pytest.approx(result.predicted_time_per_sample, rel=5e-3, abs=1e-9)


@pytest.mark.slow
@settings(max_examples=30)
@given(workloads(max_nodes=7), cuts, st.sampled_from(["1f1b", "gpipe", "1f1b-flush"]))
def test_overlap_is_never_slower_than_paper(workload, cut, schedule):
    workload = all_supported(workload)
    split = topological_chunks(workload, cut)
    stream = {comm: simulate(workload, split, schedule="stream", microbatches=60, comm=comm) for comm in ("paper", "overlap")}
    assert stream["overlap"].simulated_time_per_sample <= stream["paper"].simulated_time_per_sample + 1e-9
    assume(workload.graph.is_training and evaluate(workload.graph, workload.devices, split).contiguous)
    runs = {comm: simulate(workload, split, schedule=schedule, microbatches=24, minibatch=5, comm=comm) for comm in ("paper", "overlap")}
    paper, overlap = runs["paper"].run, runs["overlap"].run
    assert all(o <= p + 1e-9 for o, p in zip(overlap.completion, paper.completion))  # every microbatch


def test_slower_or_shared_links_cost_time():
    workload, split = chain([1.0, 1.0, 1.0], transfer=1.0)
    base = simulate(workload, split, comm="overlap", microbatches=30)
    slow = simulate(workload, split, comm="overlap", microbatches=30, links=LinkModel(time_scale={"accelerator[1]": 3.0}))
    shared = simulate(
        workload, split, comm="overlap", microbatches=30,
        links=LinkModel(shared=(("accelerator[0]", "accelerator[1]", "accelerator[2]"),)),
    )
    # accelerator[1] receives and sends one tensor per microbatch: 2 time units on its link, 6 when three times slower
    assert base.simulated_time_per_sample == pytest.approx(2.0)
    assert slow.simulated_time_per_sample == pytest.approx(6.0)
    # one link for all: the four transfers per microbatch queue on it
    assert shared.simulated_time_per_sample == pytest.approx(4.0)


def test_non_contiguous_training_split_streams_or_reports_a_deadlock():
    workload, _ = chain([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    split = Split.from_lists({ACCELERATOR: [[0, 2], [1]]})  # accelerator[0] is visited twice per pass
    assert simulate(workload, split, schedule="stream").simulated_time_per_sample == pytest.approx(4.0)
    assert simulate(workload, split, schedule="gpipe", microbatches=8, minibatch=4).measurements.minibatch_times
    with pytest.raises(SimulationError, match="try --schedule stream"):
        simulate(workload, split, schedule="1f1b")


def test_link_model_times():
    links = LinkModel(time_scale={"accelerator[0]": 2.0}, bandwidth={"accelerator[1]": 100.0})
    assert LinkModel().transfer_time("accelerator[0]", 1.5, 1e9) == 1.5  # the default is the workload's c(u)
    assert links.transfer_time("accelerator[0]", 1.5, None) == 3.0
    assert links.transfer_time("accelerator[1]", 1.5, 500.0) == 5.0  # bytes / bandwidth where the size is known
    assert links.transfer_time("accelerator[1]", 1.5, None) == 1.5
    assert links.transfer_time("cpu[0]", 0.0, 500.0) == 0.0  # the model says this device pays nothing
    with pytest.raises(ValueError):
        LinkModel(time_scale={"accelerator[0]": 0.0})
    with pytest.raises(ValueError):
        LinkModel(shared=(("accelerator[0]", "accelerator[1]"), ("accelerator[1]",)))
