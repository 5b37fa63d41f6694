"""`pipesim compare`: one row per method, ratios to the DP, JSON/CSV output, one-line errors."""

import csv
import io
import json

import pytest

from pipesim.cli import main
from pipesim.placement import Edge, Graph, Workload, paper_devices, write_paper_workload
from tests.strategies import node


def diamond():
    """1 -> {2, 3} -> 4 on two accelerators (memory 100) and one CPU core, 10x slower."""
    nodes = [node(1, acc=1.0, memory=1.0, transfer=0.5), node(2, acc=2.0, transfer=0.25),
             node(3, acc=2.0, transfer=0.25), node(4, acc=1.0)]
    edges = [Edge(1, 2), Edge(1, 3), Edge(2, 4), Edge(3, 4)]
    return Workload(Graph(nodes, edges), paper_devices(2, 1, 100.0))


@pytest.fixture
def files(tmp_path):
    w = tmp_path / "w.json"
    write_paper_workload(w, diamond())
    s = tmp_path / "expert.json"
    s.write_text(json.dumps({"fpgas": [{"nodes": [1, 2]}, {"nodes": [3, 4]}], "cpus": [{"nodes": []}]}))
    return w, s


def test_compare_json_rows_and_ratios(files, capsys):
    w, s = files
    assert main(["compare", str(w), "--split", str(s), "--restarts", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in out["max_load"]}
    assert list(rows) == ["dp", "pipedream", "local_search", "partitioner", "single", "expert"]
    assert rows["dp"]["ratio"] == 1.0 and rows["dp"]["contiguous"] is True
    assert rows["single"]["max_load"] == pytest.approx(6.0) and rows["single"]["devices_used"] == 1
    assert rows["expert"]["max_load"] == pytest.approx(3.0 + 0.5 + 0.25)  # 1+2 compute, send 1, receive 3
    for r in rows.values():
        assert r["feasible"] and (r["ratio"] >= 1.0 - 1e-12 or not r["contiguous"])
    assert out["reference_proven_optimal"]["max_load"] is True


def test_compare_table_and_csv(files, capsys):
    w, _ = files
    assert main(["compare", str(w), "--methods", "dp,single"]) == 0
    assert "max-load on w" in capsys.readouterr().out
    assert main(["compare", str(w), "--methods", "dp,single", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["method"] for r in rows] == ["dp", "single"]
    assert float(rows[1]["ratio"]) == pytest.approx(6.0 / float(rows[0]["value"]))


def test_compare_latency_rows(files, capsys):
    w, _ = files
    assert main(["compare", str(w), "--methods", "dp,single", "--latency", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    methods = [r["method"] for r in out["latency"]]
    assert "latency" not in out["skipped"]
    assert methods == ["latency_ip", "latency_greedy", "dp", "single"]
    assert all(r["latency"] is not None for r in out["latency"])


@pytest.mark.parametrize("extra, message", [
    (["--methods", "dp,bogus"], "unknown method 'bogus'"),
    (["--split", "missing.json"], "missing.json"),
])
def test_compare_bad_input_is_one_line(files, capsys, extra, message):
    w, _ = files
    assert main(["compare", str(w), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_compare_unsupported_input_type(tmp_path, capsys):
    path = tmp_path / "scenario.toml"
    path.write_text("")
    assert main(["compare", str(path)]) == 2
    assert "unsupported input type" in capsys.readouterr().err


def test_compare_abandons_a_slow_method_and_skips_what_cannot_run(files, monkeypatch):
    import time

    from pipesim import comparison
    from pipesim.placement import methods
    from pipesim.placement.formats import read_paper_workload

    monkeypatch.setitem(methods.METHODS, "slow", methods.Method("slow", lambda w: time.sleep(5), "sleeps"))
    workload = read_paper_workload(files[0])
    result = comparison.compare(workload, ["slow", "single", "expert"], method_timeout=0.2)
    rows = {r.method: r for r in result.rows}
    assert rows["slow"].status == "timeout" and rows["slow"].seconds < 2
    assert rows["single"].value == pytest.approx(6.0)
    assert "expert" not in rows and "needs split" in result.skipped["expert"]


def test_compare_reads_a_scenario_file(files, tmp_path, capsys):
    w, _ = files
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"model:\n  workload: {w.name}\nsolve:\n  method: local_search\n  options: {{restarts: 3}}\n")
    assert main(["compare", str(scenario), "--methods", "dp,local_search", "--json"]) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)["max_load"]}
    assert rows["dp"]["ratio"] == 1.0 and rows["local_search"]["feasible"]
