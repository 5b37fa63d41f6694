"""Honest schedule tables and charts: unknown figures are dashes, every column is labelled, units on axes."""

from __future__ import annotations

import json

import pytest

from pipesim.cli import main
from pipesim.placement import Edge, Graph, Node, Workload
from pipesim.placement.devices import DeviceClass
from pipesim.simulation.schedule_comparison import compare_schedules, schedule_table, write_schedule_plot


def training_chain(stash: float | None) -> Workload:
    """Four layers, forward 1, backward 2, stashing ``stash`` bytes each (``None``: sizes not given)."""
    n = 4
    nodes = [Node(i, {"gpu": 1.0}, color_class=i, memory=1.0) for i in range(n)]
    nodes += [Node(n + i, {"gpu": 2.0}, is_backward=True, color_class=i) for i in range(n)]
    edges = [Edge(i, i + 1, 1.0) for i in range(n - 1)] + [Edge(n + i + 1, n + i, 1.0) for i in range(n - 1)]
    edges += [Edge(i, n + i, stash) for i in range(n)]
    return Workload(Graph(nodes, edges), (DeviceClass("gpu", 4, 2**40),))


def write_paper(tmp_path, with_sizes: bool):
    nodes = [{"id": i, "supportedOnFpga": 1, "cpuLatency": 10.0, "fpgaLatency": 1.0 + i % 2, "isBackwardNode": 0,
              "size": 1.0, "colorClass": i} for i in range(4)]
    nodes += [{"id": 4 + i, "supportedOnFpga": 1, "cpuLatency": 20.0, "fpgaLatency": 2.0, "isBackwardNode": 1,
               "colorClass": i} for i in range(4)]
    edges = [{"sourceId": i, "destId": i + 1, "cost": 0.1} for i in range(3)]
    edges += [{"sourceId": 5 + i, "destId": 4 + i, "cost": 0.1} for i in range(3)]
    edges += [{"sourceId": i, "destId": 4 + i, "cost": 0.1, **({"size": 2.0**30} if with_sizes else {})}
              for i in range(4)]
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"maxSizePerFPGA": 1e12, "maxFPGAs": 4, "maxCPUs": 0, "nodes": nodes, "edges": edges}))
    return path


@pytest.mark.parametrize("with_sizes", [False, True])
def test_schedule_compare_prints_a_dash_for_an_unknown_stash(tmp_path, capsys, with_sizes):
    path = write_paper(tmp_path, with_sizes)
    assert main(["schedule", "compare", str(path), "--stages", "2", "--microbatches", "4"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "schedule" in line and "peak stash" in line)
    cells = [c.strip() for c in header.strip("┃").split("┃")]
    assert all(cells), f"an unlabelled column: {cells}"
    gpipe = next(line for line in out.splitlines() if line.startswith("│ gpipe"))
    stash = [c.strip() for c in gpipe.strip("│").split("│")][6]
    assert (stash == "—") != with_sizes
    if with_sizes:
        assert stash == "8 GiB"  # GPipe: 4 microbatches x 2 layers per stage x 1 GiB
    assert main(["schedule", "compare", str(path), "--stages", "2", "--microbatches", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert (rows[0]["peak_activation"] is None) != with_sizes


def test_an_overflow_or_an_error_gets_a_labelled_note():
    rows = compare_schedules(training_chain(1.0), 2, 4, schedules=("gpipe", "zbv"))
    table = schedule_table(rows, "t")
    assert [c.header for c in table.columns][-1] == "in flight"  # nothing to note: no extra column
    from dataclasses import replace

    noted = schedule_table([replace(rows[0], memory_overflows=2), *rows[1:]], "t")
    assert [c.header for c in noted.columns][-1] == "note"
    assert noted.columns[-1]._cells[0] == "memory overflow on 2 device(s)"


def test_schedules_png_has_units_and_a_legend_clear_of_the_bars(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    rows = compare_schedules(training_chain(1.0), 2, 4, schedules=("gpipe", "1f1b-flush", "zb-h1"))
    write_schedule_plot(rows, tmp_path / "s.png", "t")
    (fig,) = figures
    iteration, bubble, stash = fig.axes
    assert iteration.get_ylabel() == "ms per iteration" and bubble.get_ylabel() and stash.get_ylabel() == "GiB"
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = iteration.get_legend().get_window_extent(renderer)
    for bar in iteration.patches:
        assert not legend.overlaps(bar.get_window_extent(renderer)), "the legend covers a bar"


@pytest.mark.slow
@pytest.mark.parametrize("shown", [5, 18, 32])
def test_the_gantt_legend_matches_the_chart(tmp_path, monkeypatch, shown):
    """Every drawn microbatch has its own colour, none grey, and the colour bar spans exactly those drawn;
    the bar kinds are white swatches that no microbatch can be mistaken for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from pipesim.simulation.explorer import uniform_chain
    from pipesim.simulation.gantt import microbatch_colours, write_gantt
    from pipesim.simulation.simulator import simulate

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    workload, split = uniform_chain(4)
    result = simulate(workload, split, schedule="1f1b", microbatches=40)
    write_gantt(result.run, tmp_path / "g.png", shown)
    (fig,) = figures
    chart, colourbar = fig.axes
    faces = {tuple(round(c, 6) for c in col.get_facecolor()[0][:3]) for col in chart.collections}
    expected = {tuple(round(c, 6) for c in colour[:3]) for colour in microbatch_colours(shown)}
    assert faces == expected and len(expected) == shown
    assert all(max(c) - min(c) > 0.15 for c in expected), "a grey microbatch"
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert not any("microbatch" in label for label in labels) and "forward (F)" in labels
    for patch in legend.get_patches():
        assert to_rgba(patch.get_facecolor())[:3] == (1.0, 1.0, 1.0)
    assert colourbar.get_ylabel() == f"microbatch (0–{shown - 1})"
    assert colourbar.get_ylim() == (0.0, float(shown))


def test_flushed_predictions_are_exact_on_a_generated_transformer():
    """Optimizer-update nodes run after a stage's gradient is sent: the prediction hands the gradient over
    then (formulas.handed_over), so the order model is exact where it was 3.6% high on 1F1B-flush."""
    from pipesim.scenario import scenario_from_data

    s = scenario_from_data({"model": {"generator": "transformer", "training": True,
                                      "params": {"layers": 6, "hidden": 512, "heads": 8, "seq": 256, "vocab": 8000,
                                                 "decoder": True}},
                            "hardware": {"preset": "a100x8"}}, "t.yaml")
    rows = compare_schedules(s.workload(), 4, 8)
    assert all(r.error is None for r in rows)
    assert max(abs(r.difference) for r in rows) < 1e-9, [(r.schedule, r.difference) for r in rows]


@pytest.mark.slow
def test_a_flushed_run_compares_like_with_like():
    """The summary of a flushed schedule sets the predicted iteration (bubble included) beside the simulated
    one; the max-load (no flush) is shown as the solver's objective, not as the prediction."""
    from pipesim.pipeline import execute
    from pipesim.report.pages import summary_rows
    from pipesim.scenario import scenario_from_data

    s = scenario_from_data({"model": {"generator": "transformer", "training": True,
                                      "params": {"layers": 4, "hidden": 256, "heads": 4, "seq": 128, "vocab": 4000}},
                            "hardware": {"preset": "a100x8", "whatif": {"a100": {"count": 4}, "cpu": {"count": 0}}},
                            "simulate": {"schedule": "1f1b-flush", "minibatch": 8, "microbatches": 24}}, "t.yaml")
    outcome = execute(s)
    summary = outcome.summary()
    sim = outcome.simulation
    assert summary["predicted_time_per_sample"] == pytest.approx(sim.predicted_iteration_time / 8)
    assert summary["max_load"] == outcome.result.max_load < summary["predicted_time_per_sample"]  # the bubble
    assert summary["relative_difference"] == pytest.approx(sim.simulated_iteration_time / sim.predicted_iteration_time - 1)
    assert abs(summary["relative_difference"]) < 1e-9  # a transformer chain: the prediction is exact
    rows = {what: (model, simulated) for what, model, simulated in summary_rows(summary)}
    per_pass = next(what for what in rows if what.startswith("time per pass"))
    assert "flush included" in per_pass
    assert any(what.startswith("max-load") for what in rows)


def test_simulate_summary_compares_a_flushed_schedule_like_with_like():
    from pipesim.simulation.explorer import uniform_chain
    from pipesim.simulation.simulator import simulate
    from pipesim.simulation.summary import summary_table

    workload, split = uniform_chain(4)
    result = simulate(workload, split, schedule="1f1b-flush", microbatches=24, minibatch=8)
    rows = dict(zip(summary_table(result).columns[0]._cells, summary_table(result).columns[1]._cells))
    per_sample = (8 + 4 - 1) * 3.0 / 8  # (m + p - 1)(F + B) per iteration, over m microbatches
    assert float(rows["predicted time-per-sample (iteration ÷ minibatch)"]) == pytest.approx(per_sample)
    assert float(rows["simulated time-per-sample (iteration ÷ minibatch)"]) == pytest.approx(per_sample)
    assert float(rows["max-load (steady state without flushes)"]) == 3.0
    assert result.difference == pytest.approx(0.0, abs=1e-12)
