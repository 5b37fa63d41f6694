"""In-flight activations: the simulator and the solvers count the same bytes (pipesim.placement.activations)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from pipesim.cli import main
from pipesim.placement import Edge, Graph, Node, Workload
from pipesim.placement.activations import IN_FLIGHT_SCHEDULES, in_flight, memory_in_flight, stash_bytes
from pipesim.placement.devices import DeviceClass
from pipesim.placement.milp import solve_ip
from pipesim.placement.result import FEASIBLE
from pipesim.placement.split import Split
from pipesim.scenario import load_scenario
from pipesim.simulation.explorer import uniform_chain
from pipesim.simulation.simulator import simulate

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def uneven_chain(times: list[tuple[float, float]], stash: float = 1.0) -> tuple[Workload, Split]:
    """A training chain, one stage per device, stage ``k`` taking ``times[k]`` forward and backward."""
    p = len(times)
    nodes = [Node(k, {"d": f}, color_class=k, memory=10.0) for k, (f, _) in enumerate(times)]
    nodes += [Node(p + k, {"d": b}, is_backward=True, color_class=k) for k, (_, b) in enumerate(times)]
    edges = [Edge(k, k + 1, 0.0) for k in range(p - 1)] + [Edge(p + k + 1, p + k, 0.0) for k in range(p - 1)]
    edges += [Edge(k, p + k, stash) for k in range(p)]
    return Workload(Graph(nodes, edges), (DeviceClass("d", p),)), Split.from_lists({"d": [[k] for k in range(p)]})


@pytest.mark.parametrize("schedule", IN_FLIGHT_SCHEDULES)
@pytest.mark.parametrize("stages", [1, 2, 3, 5])
@pytest.mark.parametrize("microbatches", [1, 2, 3, 8])
def test_the_simulator_holds_what_the_solvers_count(schedule, stages, microbatches):
    # uniform and uneven stage times: a rank runs its order one action at a time, so the peak is the order's
    cases = [uniform_chain(stages), uneven_chain([(1.0 + (k % 2), 2.0 + 3 * (k == stages - 1)) for k in range(stages)])]
    for workload, split in cases:
        flushed = schedule != "1f1b"
        run = simulate(workload, split, schedule=schedule, microbatches=3 * microbatches if flushed else microbatches,
                       minibatch=microbatches if flushed else None)
        assert [d.peak_in_flight for d in run.measurements.devices] == [
            in_flight(schedule, q, stages, microbatches) for q in range(stages)]


def test_default_microbatches_are_the_simulators():
    workload, split = uniform_chain(3)
    run = simulate(workload, split, schedule="gpipe")
    assert run.minibatch == 12 and [d.peak_in_flight for d in run.measurements.devices] == [
        in_flight("gpipe", q, 3) for q in range(3)]


def test_peak_memory_counts_each_microbatch_once():
    # node memory 10 counts one microbatch's stash; 1F1B's first of 3 stages holds 3: 10 + 2 x 4
    workload, split = uneven_chain([(1.0, 2.0)] * 3, stash=4.0)
    run = simulate(workload, split, schedule="1f1b", microbatches=12)
    for q, d in enumerate(run.measurements.devices):
        stash, known = stash_bytes(workload.graph, split.assignment["d"][q])
        assert known and stash == 4.0
        assert d.peak_memory == memory_in_flight(10.0, stash, 3 - q) == 10.0 + (2 - q) * 4.0


def chain_of(stash: float, memory: float):
    from tests.placement.test_dp_in_flight import chain

    return chain(stash=stash, memory=memory)


def test_the_ip_holds_the_activations_in_flight():
    # three layers of 1 byte stashing 1 byte each, 2 bytes per accelerator: one layer per device fits the
    # static model, but the first of three 1F1B stages holds 1 + 2 x 1 bytes
    from tests.placement.test_dp_in_flight import chain, fits_some_order

    w = chain(stash=1.0, memory=2.0)
    static = solve_ip(w)
    assert static.max_load == 3.0 and not fits_some_order(w.graph, static.evaluation, "1f1b", 8)
    held = solve_ip(w, schedule="1f1b", microbatches=8)
    assert held.status == FEASIBLE and "in flight" in held.message and "time limit" not in held.message
    assert fits_some_order(w.graph, held.evaluation, "1f1b", 8)
    # the DP's exact split as the start: kept, since the charged IP finds nothing better
    from pipesim.placement.methods import METHODS

    started = METHODS["ip"](w, schedule="1f1b", microbatches=8, warm_start="dp")
    assert started.status == FEASIBLE and started.max_load == 6.0
    assert fits_some_order(w.graph, started.evaluation, "1f1b", 8)


def test_the_ip_is_optimal_when_the_static_optimum_holds_its_activations():
    w = chain_of(stash=1.0, memory=10.0)
    result = solve_ip(w, schedule="1f1b", microbatches=8)
    assert result.status == "optimal" and result.max_load == solve_ip(w).max_load


def write_memory_bound(tmp_path: Path, memory: str, options: dict | None = None) -> Path:
    data = yaml.safe_load((SCENARIOS / "memory-bound.yaml").read_text())
    data["hardware"]["devices"][0]["memory"] = memory
    if options:
        data["solve"]["options"] = options
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_a_split_the_schedule_cannot_hold_is_flagged_everywhere(tmp_path, capsys):
    # the paper's static model on 14 GB V100s picks a first stage that 1F1B's four microbatches overflow
    scenario = write_memory_bound(tmp_path, "14GB", {"schedule": "none"})
    out = tmp_path / "out"
    assert main(["run", str(scenario), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "NOT RUNNABLE under 1f1b" in printed and "OVERFLOW" in printed
    summary = json.loads((out / "result.json").read_text())["summary"]
    assert summary["runnable"] is False and summary["memory_model"] == "static"
    assert summary["memory_overflows"][0]["device"] == "v100[0]" and "NOT RUNNABLE" in summary["warning"]
    report = (out / "report.html").read_text()
    assert '<p class="warning">NOT RUNNABLE under 1f1b' in report and "OVERFLOW" in report


@pytest.mark.slow
def test_a_scenario_naming_a_schedule_solves_with_its_activations(tmp_path, capsys):
    scenario = write_memory_bound(tmp_path, "14GB")
    out = tmp_path / "out"
    assert main(["run", str(scenario), "-o", str(out)]) == 0
    assert "NOT RUNNABLE" not in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["summary"]["runnable"] is True and result["summary"]["memory_model"] == "1f1b"
    assert result["solve"]["status"] == "optimal"
    assert not result["simulation"]["memory_overflows"]
    # ... at the same time per pass as the static model's (unrunnable) split on this model
    assert math.isclose(result["summary"]["predicted_time_per_sample"], 62.4620803372698, rel_tol=1e-9)


def test_the_bundled_memory_bound_scenario_fits():
    # 16 GB V100s: GPT-2 XL's first stage holds 4 microbatches under 1F1B and still fits
    scenario = load_scenario(SCENARIOS / "memory-bound.yaml")
    from pipesim.pipeline import execute

    outcome = execute(scenario)
    assert outcome.summary()["runnable"] is True
    first = outcome.simulation.measurements.devices[0]
    assert first.peak_in_flight == 4 and first.peak_memory <= first.capacity


@pytest.mark.slow
def test_a_sweep_point_the_schedule_cannot_hold_says_so(tmp_path):
    from pipesim.sweep import run_point

    data = yaml.safe_load(write_memory_bound(tmp_path, "14GB", {"schedule": "none"}).read_text())
    row = run_point(data, tmp_path / "s.yaml", [("simulate.microbatches", 20)])
    assert row["status"] == "ok" and row["runnable"] is False and "NOT RUNNABLE under 1f1b" in row["error"]
    fine = run_point(data, tmp_path / "s.yaml", [("simulate.microbatches", 20), ("solve.options.schedule", "1f1b")])
    assert fine["runnable"] is True and fine["error"] is None
