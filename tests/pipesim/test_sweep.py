"""Sweeps: the grid, rows as points finish, resume after an interruption, failures, processes and Dask."""

from __future__ import annotations

import json

import pytest
import yaml

from pipesim.cli import main
from pipesim.scenario import ScenarioError
from pipesim.sweep import grid, read_rows, run_sweep
from tests.pipesim.test_scenario import BASE

VARY = {"hardware.whatif.a100.count": [1, 2, 3], "hardware.whatif.a100.link": [0.25, 1.0]}
TIMING = ("seconds", "cpu_seconds", "traceback")


def _data() -> dict:
    return {**BASE, "hardware": {**BASE["hardware"], "prices": {"a100": 2.0}}}


def _comparable(rows: list[dict]) -> dict[str, dict]:
    return {r["key"]: {k: v for k, v in r.items() if k not in TIMING} for r in rows}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict]:
    """The uninterrupted sweep, in this process."""
    return run_sweep(_data(), "tiny.yaml", VARY, tmp_path_factory.mktemp("ref")).rows


def test_grid_is_the_product_in_order():
    points = grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert [p.params for p in points[:3]] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}]
    assert len({p.key for p in points}) == 6


def test_rows_and_throughput_grow_with_devices(reference):
    assert len(reference) == 6 and all(r["status"] == "ok" for r in reference)
    by = {(r["params"]["hardware.whatif.a100.count"], r["params"]["hardware.whatif.a100.link"]): r for r in reference}
    assert by[(3, 1.0)]["predicted_throughput"] >= by[(1, 1.0)]["predicted_throughput"]
    assert by[(2, 1.0)]["predicted_throughput"] >= by[(2, 0.25)]["predicted_throughput"]
    assert all(r["cost_per_million_samples"] > 0 for r in reference)


def test_interrupted_sweep_resumes_to_the_same_rows(tmp_path, reference):
    def stop_after_two(row, done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(_data(), "tiny.yaml", VARY, tmp_path, on_row=stop_after_two)
    assert len(read_rows(tmp_path / "sweep.jsonl")) == 2
    with (tmp_path / "sweep.jsonl").open("a") as f:  # killed while writing the third row
        f.write('{"key": "{\\"hardware')
    resumed = run_sweep(_data(), "tiny.yaml", VARY, tmp_path)
    assert resumed.skipped == 2 and resumed.ran == 4
    assert _comparable(resumed.rows) == _comparable(reference)
    assert len(read_rows(tmp_path / "sweep.jsonl")) == 6
    assert len((tmp_path / "sweep.csv").read_text().strip().splitlines()) == 7  # header + 6 rows
    again = run_sweep(_data(), "tiny.yaml", VARY, tmp_path)
    assert again.ran == 0 and again.skipped == 6


def test_bad_grid_values_are_rejected_before_any_point_runs(tmp_path):
    with pytest.raises(ScenarioError) as info:
        run_sweep(_data(), "tiny.yaml", {"hardware.whatif.a100.count": [2, -1, "many"], "hardware.whatif.a100.device": ["quantum-9000"]}, tmp_path)
    problems = dict(info.value.problems)
    assert any("a100.count=-1" in where for where in problems) and any("a100.count=many" in where for where in problems)
    assert any("quantum-9000" in where for where in problems)
    assert not (tmp_path / "sweep.jsonl").exists()


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    vary = {"solve.options.ideal_limit": [2_000_000, 1]}  # valid values; the second runs out of ideals
    result = run_sweep(_data(), "tiny.yaml", vary, tmp_path)
    assert [r["status"] for r in result.rows] == ["ok", "error"]
    assert "ideal" in result.rows[1]["error"]
    retried = run_sweep(_data(), "tiny.yaml", vary, tmp_path, retry_failed=True)
    assert retried.ran == 1


def test_local_processes_give_the_same_rows(tmp_path, reference):
    result = run_sweep(_data(), "tiny.yaml", VARY, tmp_path, workers=2)
    assert _comparable(result.rows) == _comparable(reference)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_rows(tmp_path, reference, capsys):
    import distributed  # the dask extra: part of .[test], so missing is a failure, not a skip

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(_data()))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = run_sweep(_data(), "tiny.yaml", VARY, tmp_path / "api", dask=cluster.scheduler_address)
        vary = [f"--vary={p}={','.join(map(str, v))}" for p, v in VARY.items()]
        assert main(["sweep", str(path), *vary, "--dask", cluster.scheduler_address, "-o", str(tmp_path / "cli"),
                     "--json", "--no-progress"]) == 0
    assert _comparable(result.rows) == _comparable(reference)
    out = capsys.readouterr().out
    assert _comparable(json.loads(out[out.index("{"):])["rows"]) == _comparable(reference)


@pytest.mark.slow
def test_sweep_command_writes_rows_plot_and_report(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**_data(), "sweep": {"vary": {"hardware.whatif.a100.count": [1, 2]}}}))
    report = tmp_path / "sweep.html"
    argv = ["sweep", str(path), "-o", str(tmp_path / "sw"), "--workers", "1", "--report", str(report), "--no-progress"]
    assert main(argv) == 0
    # --vary replaces the scenario's sweep.vary; a new grid has new points
    assert main(argv + ["--vary", "hardware.whatif.a100.count=1,2", "--vary", "hardware.whatif.a100.link=0.5,1", "--json"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{"):])
    assert printed["ran"] == 4 and len(printed["rows"]) == 4
    assert (tmp_path / "sw" / "sweep.png").stat().st_size > 0
    assert "data:image/png;base64," in report.read_text()
    assert main(["sweep", str(path), "--vary", "nothing"]) == 2
    assert main(["sweep", str(path), "--vary", "hardware..x=1,2"]) == 2


def test_a_second_sweep_into_a_busy_folder_is_refused(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "sweep.lock").write_text(str(holder.pid))
        with pytest.raises(Exception, match="another sweep"):
            run_sweep(_data(), "tiny.yaml", {"hardware.whatif.a100.count": [1]}, tmp_path)
    finally:
        holder.kill()
        holder.wait()
    (tmp_path / "sweep.lock").write_text(str(holder.pid))  # stale now: taken over
    assert run_sweep(_data(), "tiny.yaml", {"hardware.whatif.a100.count": [1]}, tmp_path).ran == 1
    assert not (tmp_path / "sweep.lock").exists()


def test_sweep_plot_with_three_varied_fields_uses_small_multiples(tmp_path):
    import matplotlib.image

    from pipesim.report.plots import sweep_plot

    rows = [{"params": {"x": x, "a": a, "b": b}, "status": "ok", "simulated_throughput": x * a + len(b)}
            for x in (1, 2, 4) for a in (1, 2) for b in ("p", "q", "r")]
    sweep_plot(rows, ["x", "a", "b"], tmp_path / "three.png", "three fields")
    sweep_plot([r for r in rows if r["params"]["b"] == "p"], ["x", "a"], tmp_path / "two.png", "two fields")
    three, two = (matplotlib.image.imread(tmp_path / f"{n}.png").shape[0] for n in ("three", "two"))
    assert three > 2 * two  # one row of panels per value of the third field, not nine lines in one panel
