"""The simulator reproduces the closed forms of pipeline schedules exactly (ISSUE 6, docs/model.md §6.5)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipesim.placement.evaluate import evaluate
from pipesim.simulation import simulate
from tests.pipesim.simulate_helpers import chain

times = st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0])


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b-flush"])
@pytest.mark.parametrize("stages", [1, 2, 3, 5])
@pytest.mark.parametrize("m", [1, 2, 4, 7])
@pytest.mark.parametrize("f, b", [(1.0, 2.0), (3.0, 1.0)])
def test_flushed_minibatch_takes_m_plus_s_minus_1_times_f_plus_b(schedule, stages, m, f, b):
    workload, split = chain([f] * stages, [b] * stages)
    result = simulate(workload, split, schedule=schedule, microbatches=3 * m, minibatch=m)
    expected = (m + stages - 1) * (f + b)
    assert result.measurements.minibatch_times == (expected,) * 3
    assert result.measurements.makespan == 3 * expected
    assert result.simulated_time_per_sample == expected / m
    bubble = (stages - 1) / (m + stages - 1)
    assert result.measurements.minibatch_bubble_fractions == pytest.approx([bubble] * 3, abs=1e-12)


@pytest.mark.slow
@given(st.lists(times, min_size=1, max_size=6), st.sampled_from([0.0, 0.25, 1.0]))
def test_streaming_chain_reaches_the_largest_stage_load(loads, transfer):
    workload, split = chain(loads, transfer=transfer)
    result = simulate(workload, split, schedule="stream")
    predicted = evaluate(workload.graph, workload.devices, split).max_load
    assert result.predicted_time_per_sample == predicted
    assert result.simulated_time_per_sample == pytest.approx(predicted, rel=1e-12)


@given(st.integers(1, 6), st.lists(times, min_size=6, max_size=6), st.lists(times, min_size=6, max_size=6))
def test_1f1b_stage_i_holds_at_most_s_minus_i_microbatches(stages, forward, backward):
    workload, split = chain(forward[:stages], backward[:stages], transfer=0.25)
    result = simulate(workload, split, schedule="1f1b", microbatches=4 * stages + 3)
    for d in result.measurements.devices:
        assert d.peak_in_flight == stages - d.stage  # at most S - i, and the warm-up fills it
    assert result.simulated_time_per_sample == pytest.approx(result.predicted_time_per_sample, rel=1e-9)


def test_stream_latency_with_one_microbatch_in_flight_is_the_sum_of_loads():
    workload, split = chain([1.0, 2.0, 3.0], transfer=0.5)
    result = simulate(workload, split, schedule="stream", in_flight=1, microbatches=10)
    loads = [d.load for d in result.evaluation.devices if d.nodes]
    assert result.measurements.latency_p50 == result.measurements.latency_p99 == pytest.approx(sum(loads))
    assert result.simulated_time_per_sample == pytest.approx(sum(loads))
