"""Issue 18's battery: hostile outputs, sizes, exit codes and messages.

Each case is run as a user runs it (``main([...])``): an error is one line on
stderr naming the path or the option, exit code 2 (3 for an infeasible
answer), and never a traceback.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from pipesim.cli import main
from pipesim.output import atomic_path, save_figure, write_text

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "scenarios" / "examples"
WORKLOAD, SPLIT, ONNX = EXAMPLES / "encoder10.json", EXAMPLES / "encoder10_split.json", EXAMPLES / "encoder-small.onnx"
SHARED = ROOT.parent / "shared" / "workloads"
PIPER = SHARED / "piper" / "bert32a100.json"


def one_line_error(capsys, code, *words, exit_code=2):
    err = capsys.readouterr().err
    assert code == exit_code, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


# ------------------------------------------------------------ item 2: outputs
def _unwritable_places(tmp_path) -> dict[str, pathlib.Path]:
    """Folders where nothing can be written: below a regular file, and a read-only folder."""
    blocker = tmp_path / "somefile"
    blocker.write_text("a regular file, not a folder")
    places = {"through-a-file": blocker}
    if os.geteuid() != 0:
        read_only = tmp_path / "read-only"
        read_only.mkdir()
        read_only.chmod(0o555)
        places["read-only"] = read_only
    elif not os.access("/sys", os.W_OK) or _refuses("/sys"):  # root ignores chmod; /sys refuses even root
        places["read-only"] = pathlib.Path("/sys")
    return places


def _refuses(folder: str) -> bool:
    try:
        pathlib.Path(folder, ".pipesim-probe").write_text("")
    except OSError:
        return True
    pathlib.Path(folder, ".pipesim-probe").unlink()
    return False


def _training_workload(tmp_path) -> pathlib.Path:
    path = tmp_path / "train.json"
    assert main(["graph", "generate", "transformer", "--layers", "2", "--hidden", "64", "--heads", "4", "--seq", "16",
                 "--training", "-o", str(path)]) == 0
    return path


#: option -> (command with {out} for the bad path, suffix of the path, needs)
OUTPUTS = {
    "simulate --trace": (["simulate", str(WORKLOAD), str(SPLIT), "--trace", "{out}"], ".json", None),
    "simulate --gantt": (["simulate", str(WORKLOAD), str(SPLIT), "--gantt", "{out}"], ".png", None),
    "run -o": (["run", str(ROOT / "scenarios" / "mixed-a100-v100.yaml"), "--no-progress", "-o", "{out}"], "", None),
    "run --report": (["run", str(ROOT / "scenarios" / "mixed-a100-v100.yaml"), "--no-progress", "-o", "{tmp}/run",
                      "--report", "{out}"], ".html", None),
    "sweep -o": (["sweep", str(ROOT / "scenarios" / "sweep-count-bandwidth.yaml"), "--no-progress", "-o", "{out}"], "", None),
    "sweep --report": (["sweep", str(ROOT / "scenarios" / "sweep-count-bandwidth.yaml"), "--no-progress",
                        "-o", "{tmp}/sweep", "--report", "{out}"], ".html", None),
    "schedule show --png": (["schedule", "show", "gpipe", "--stages", "2", "--microbatches", "4", "--png", "{out}"], ".png", None),
    "schedule export -o": (["schedule", "export", "gpipe", "--stages", "2", "--microbatches", "4", "-o", "{out}"], ".csv", None),
    "schedule compare --png": (["schedule", "compare", "{train}", "--stages", "2", "--microbatches", "4", "--png", "{out}"],
                               ".png", None),
    "plan --plot": (["plan", str(PIPER), "--hardware", "dgx-a100x4", "--sweep", "8", "--plot", "{out}"], ".png", "shared"),
    "plan -o": (["plan", str(PIPER), "-o", "{out}"], ".json", "shared"),
    "profile -o": (["profile", str(ONNX), "--runs", "1", "-o", "{out}"], ".json", "onnx"),
    "hardware calibrate -o": (["hardware", "calibrate", str(WORKLOAD), "-o", "{out}"], ".yaml", None),
    "execute --stages": (["execute", str(ONNX), str(SPLIT), "--stages", "{out}"], "", "onnx"),
    "solve -o": (["solve", str(WORKLOAD), "-o", "{out}"], ".json", None),
    "latency -o": (["latency", str(WORKLOAD), "--method", "greedy", "-o", "{out}"], ".json", None),
    "graph generate -o": (["graph", "generate", "transformer", "--layers", "2", "-o", "{out}"], ".json", None),
}


@pytest.mark.parametrize("place", ["through-a-file", "read-only"])
@pytest.mark.parametrize("option", OUTPUTS)
def test_an_unwritable_output_is_one_line_naming_path_and_option(tmp_path, capsys, option, place):
    command, suffix, needs = OUTPUTS[option]
    if needs == "shared" and not PIPER.is_file():
        pytest.skip(f"Piper's workloads are not at {SHARED} (../shared is absent)")
    if needs == "onnx":
        pytest.importorskip("onnxruntime")
    places = _unwritable_places(tmp_path)
    if place not in places:
        pytest.skip("no read-only folder on this machine (root ignores chmod and /sys is writable)")
    out = places[place] / f"pipesim-out{suffix}"
    train = _training_workload(tmp_path) if "{train}" in command else None
    capsys.readouterr()
    args = [a.format(out=out, tmp=tmp_path, train=train) for a in command]
    flag = args[args.index(str(out)) - 1]
    long_flag = {"-o": "--output"}.get(flag, flag)
    one_line_error(capsys, main(args), str(out), long_flag)


def test_a_failed_write_leaves_the_good_file_and_no_debris(tmp_path, capsys, monkeypatch):
    """A disk that fills half way through the chart: the previous chart stays whole, no temporary file is left."""
    from matplotlib.figure import Figure

    gantt = tmp_path / "run.png"
    assert main(["simulate", str(WORKLOAD), str(SPLIT), "--gantt", str(gantt)]) == 0
    good = gantt.read_bytes()
    capsys.readouterr()

    def full_disk(self, fname, **kwargs):
        pathlib.Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device", str(fname))

    monkeypatch.setattr(Figure, "savefig", full_disk)
    one_line_error(capsys, main(["simulate", str(WORKLOAD), str(SPLIT), "--gantt", str(gantt)]), str(gantt),
                   "No space left on device")
    assert gantt.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.png"]


def test_output_helper_keeps_mode_and_replaces_whole(tmp_path):
    target = tmp_path / "a.json"
    write_text(target, "one")
    target.chmod(0o640)
    write_text(target, "two")
    assert target.read_text() == "two" and target.stat().st_mode & 0o777 == 0o640
    with pytest.raises(KeyError), atomic_path(target) as tmp:
        tmp.write_text("three, half")
        raise KeyError("interrupted")
    assert target.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_save_figure_takes_the_format_from_the_target(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "a.svg")
    save_figure(fig, tmp_path / "a.png")
    assert (tmp_path / "a.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")


def test_run_output_folder_that_is_a_file_names_the_option(tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("x")
    one_line_error(capsys, main(["run", str(ROOT / "scenarios" / "mixed-a100-v100.yaml"), "-o", str(blocker)]),
                   str(blocker), "--output", "folder")


def test_plan_plot_needs_a_sweep(tmp_path, capsys):
    one_line_error(capsys, main(["plan", str(WORKLOAD), "--plot", str(tmp_path / "p.png")]), "--plot", "--sweep")



# ------------------------------------------------------------ item 4: hostile sizes
DEEP = 200_000
DEEP_YAML = 200_000  # refused before PyYAML, whose scanner slows with the square of the depth


@pytest.fixture
def deep(tmp_path):
    """``[[[[…]]]]`` nested 200,000 deep, as JSON and as a YAML scenario/hardware file."""
    json_path = tmp_path / "deep.json"
    json_path.write_text("[" * DEEP + "]" * DEEP)
    yaml_path = tmp_path / "deep.yaml"
    yaml_path.write_text("[" * DEEP_YAML + "]" * DEEP_YAML + "\n")
    return json_path, yaml_path


@pytest.mark.parametrize("command", [
    ["info", "{j}"], ["evaluate", "{j}", "{s}"], ["evaluate", "{w}", "{j}"], ["solve", "{j}"],
    ["simulate", "{w}", "{j}"], ["latency", "{w}", "--split", "{j}"], ["compare", "{j}"],
    ["plan", "{j}"], ["plan", "{p}", "--evaluate", "{j}"], ["graph", "whatif", "{j}", "--whatif", "accelerator.count=2",
                                                           "-o", "{tmp}/x.json"],
    ["hardware", "calibrate", "{j}", "-o", "{tmp}/cpu.yaml"], ["schedule", "compare", "{j}", "--stages", "2",
                                                              "--microbatches", "4"],
    ["run", "{y}"], ["sweep", "{y}"], ["hardware", "show", "{y}"], ["plan", "{y}"],
])
def test_deeply_nested_files_are_one_line(deep, tmp_path, capsys, command):
    json_path, yaml_path = deep
    if "{p}" in command and not PIPER.is_file():
        pytest.skip(f"Piper's workloads are not at {SHARED} (../shared is absent)")
    args = [a.format(j=json_path, y=yaml_path, w=WORKLOAD, s=SPLIT, p=PIPER, tmp=tmp_path) for a in command]
    err = one_line_error(capsys, main(args))
    assert "deep" in err and ("deep.json" in err or "deep.yaml" in err), err


def test_a_schedule_too_large_for_memory_is_refused_before_allocating(capsys):
    import time

    started = time.perf_counter()
    err = one_line_error(capsys, main(["schedule", "show", "gpipe", "--stages", "100000000", "--microbatches", "8"]),
                         "100,000,000", "needed")
    assert time.perf_counter() - started < 30, "refused only after building the chain"
    assert "TiB" in err


def test_a_simulation_too_large_for_memory_is_refused(capsys):
    one_line_error(capsys, main(["simulate", str(WORKLOAD), str(SPLIT), "--microbatches", "1000000000"]), "needed")



def test_a_model_too_large_for_memory_is_refused_before_building(tmp_path, capsys):
    one_line_error(capsys, main(["graph", "generate", "transformer", "--layers", "100000000", "-o",
                                 str(tmp_path / "huge.json")]), "100,000,000 layers", "needed")
    assert not (tmp_path / "huge.json").exists()

class _CountingList(list):
    """A list that counts full passes and membership tests (how often a method walks every edge)."""

    passes = 0
    lookups = 0

    def __iter__(self):
        _CountingList.passes += 1
        return super().__iter__()

    def __contains__(self, item):
        _CountingList.lookups += 1
        return super().__contains__(item)


def test_building_and_fusing_an_operator_graph_walks_the_edges_a_constant_number_of_times(monkeypatch):
    """Seen: 8,000 layers took 263 s (an ``in list`` check per edge added, a scan of every edge per layer)."""
    from pipesim.workloads import opgraph
    from pipesim.workloads.transformer import TransformerConfig, transformer

    monkeypatch.setattr(_CountingList, "passes", 0)
    monkeypatch.setattr(_CountingList, "lookups", 0)
    built = transformer(TransformerConfig(layers=300, hidden=64, heads=4, seq=16), granularity="operator")
    inputs: dict[int, list[int]] = {}
    for s, d in built.edges:
        inputs.setdefault(d, []).append(s)
    ops = opgraph.OpGraph(built.name, built.dtype, edges=_CountingList(), layer_names=dict(built.layer_names))
    for i, op in enumerate(built.ops):  # the generator's calls again, into a graph whose edges count their use
        ops.add(op, inputs.get(i, []) + inputs.get(i, [])[:1])  # a repeated input is one edge
    assert ops.edges == built.edges and len(ops.edges) > 3000
    assert _CountingList.lookups == 0 and _CountingList.passes == 0  # add() never walks the edges
    before = _CountingList.passes
    fused = ops.by_layer()
    assert len(fused.ops) >= 300
    assert _CountingList.passes - before <= 3, "by_layer walks every edge once per layer"


def test_lowering_prices_each_distinct_operator_once(monkeypatch):
    """Equal layers share their roofline: 100,000 layers price a handful of distinct kernels."""
    from pipesim.hardware.catalog import load_system
    from pipesim.workloads import lower as lower_module
    from pipesim.workloads.transformer import TransformerConfig, transformer

    calls = []
    real = lower_module._priced
    monkeypatch.setattr(lower_module, "_priced", lambda *a, **k: calls.append(1) or real(*a, **k))
    small, large = (transformer(TransformerConfig(layers=n, hidden=64, heads=4, seq=16)) for n in (50, 400))
    system = load_system("a100x8")
    lower_module.lower(small, system)
    priced_small = len(calls)
    calls.clear()
    workload = lower_module.lower(large, system)
    assert len(calls) == priced_small  # independent of the number of layers
    times = [n.time for n in workload.graph.nodes.values()]
    assert times[1] is not times[2] and times[1] == times[2]  # equal numbers, but each node owns its dict


# ------------------------------------------------------------ item 5: honest exit codes and values
EXIT_INFEASIBLE = 3


@pytest.fixture
def piper():
    if not PIPER.is_file():
        pytest.skip(f"Piper's workloads are not at {SHARED} (../shared is absent)")
    return PIPER


@pytest.mark.parametrize("command", [[], ["plan"], ["solve"], ["run"]])
def test_exit_codes_are_documented_in_the_help(capsys, command):
    assert main([*command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "3 no feasible answer" in out and "2 bad input" in out and "130 interrupted" in out


@pytest.mark.slow
def test_an_infeasible_plan_exits_3_with_its_reason(piper, capsys):
    assert main(["plan", str(piper), "--memory", "1KiB"]) == EXIT_INFEASIBLE
    assert "infeasible" in capsys.readouterr().out
    assert main(["plan", str(piper), "--memory", "1KiB", "--json"]) == EXIT_INFEASIBLE
    plan = json.loads(capsys.readouterr().out)
    assert plan["status"] == "infeasible" and "memory" in plan["reason"]


def test_evaluating_a_plan_that_breaks_the_workload_exits_3(piper, tmp_path, capsys):
    saved = tmp_path / "plan.json"
    assert main(["plan", str(piper), "-o", str(saved)]) == 0
    used = json.loads(saved.read_text())["devices_used"]
    assert used > 1
    capsys.readouterr()
    assert main(["plan", str(piper), "--evaluate", str(saved), "--devices", str(used - 1)]) == EXIT_INFEASIBLE
    assert f"uses {used} devices, more than the {used - 1}" in capsys.readouterr().out
    data = json.loads(saved.read_text())
    data["stages"][0]["nodes"] = data["stages"][0]["nodes"][:-2]
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps(data))
    assert main(["plan", str(piper), "--evaluate", str(missing), "--json"]) == EXIT_INFEASIBLE
    assert "in no stage" in json.loads(capsys.readouterr().out)["reason"]
    assert main(["plan", str(piper), "--evaluate", str(saved)]) == 0  # the plan itself is fine


@pytest.mark.parametrize("flag, value", [("--memory", "0"), ("--bandwidth", "0"), ("--memory", "-1"),
                                         ("--memory", "-1GiB"), ("--bandwidth", "-2GiB/s"), ("--memory", "0GiB")])
def test_plan_rejects_sizes_that_are_not_positive(flag, value, capsys):
    # checked before the workload is read: the file need not exist
    err = one_line_error(capsys, main(["plan", "no-such-workload.json", flag, value]), flag, "must be positive")
    assert f"{flag}: {flag}" not in err and "expected one argument" not in err


def test_solve_takes_a_negative_looking_size_and_rejects_it(capsys):
    err = one_line_error(capsys, main(["solve", str(WORKLOAD), "--memory", "-1GiB"]), "--memory", "positive size")
    assert "expected one argument" not in err


def test_plan_flush_on_a_piper_file_needs_a_cluster(piper, capsys):
    import time

    started = time.perf_counter()
    one_line_error(capsys, main(["plan", str(piper), "--objective", "flush"]), "--objective flush", "--hardware")
    assert time.perf_counter() - started < 30


@pytest.mark.slow
def test_plan_and_run_give_one_answer_per_scenario(tmp_path, capsys):
    """The scenario says objective: flush; plan used Piper's objective (5 stages where run gave 4)."""
    scenario = tmp_path / "small-plan.yaml"
    scenario.write_text("name: small-plan\nmodel:\n  generator: transformer\n"
                        "  params: {layers: 4, hidden: 256, heads: 4, seq: 128, batch: 1, vocab: 1000}\n"
                        "hardware:\n  cluster: dgx-a100x4\n"
                        "solve:\n  method: plan\n  options: {objective: flush, microbatches: 8}\n")
    assert main(["plan", str(scenario), "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert main(["run", str(scenario), "--json", "--no-progress", "-o", str(tmp_path / "out")]) == 0
    ran = json.loads(capsys.readouterr().out)["plan"]
    assert planned["objective"] == ran["objective"] == "flush"
    assert planned["iteration_time"] == pytest.approx(ran["iteration_time"])
    assert [s["nodes"] for s in planned["stages"]] == [s["nodes"] for s in ran["stages"]]
    assert main(["plan", str(scenario), "--json", "--objective", "piper"]) == 0  # the flag still chooses
    assert json.loads(capsys.readouterr().out)["objective"] == "piper"


# ------------------------------------------------------------ item 8: messages
def test_top_level_help_is_plain_text(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":mod:" not in out and "pipesim.api" in out


@pytest.mark.parametrize("command, words", [
    (["solve", str(WORKLOAD), "--method", "bogus"], ["unknown method 'bogus'", "dp", "local_search", "partitioner"]),
    (["latency", str(WORKLOAD), "--method", "bogus"], ["unknown method 'bogus'", "greedy"]),
    (["hardware", "show", "bogus"], ["a100x8", "dgx-a100x4", "a100-80gb", "nvlink3", "YAML"]),
    (["graph", "generate", "resnet50", "--layers", "5", "-o", "{tmp}/r.json"], ["--layers", "not a parameter of resnet50"]),
    (["plan", "x.json", "--memory", "-1"], ["--memory: must be positive"]),
])
def test_messages_say_what_is_accepted(tmp_path, capsys, command, words):
    err = one_line_error(capsys, main([a.format(tmp=tmp_path) for a in command]), *words)
    assert "_method_name" not in err and "invalid" not in err


def test_compare_takes_all_methods(capsys):
    assert main(["compare", str(WORKLOAD), "--methods", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    ran = {row["method"] for row in result["max_load"]} | set(result["skipped"])
    from pipesim.placement.methods import METHODS

    assert ran == set(METHODS)


def test_compare_of_only_a_missing_extra_is_an_error(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pymetis", None)  # as if pipesim[metis] were not installed
    one_line_error(capsys, main(["compare", str(WORKLOAD), "--methods", "partitioner"]), "pip install 'pipesim[metis]'")


def test_an_edge_to_a_missing_node_is_reported_as_such(tmp_path, capsys):
    node = {"supportedOnFpga": 1, "cpuLatency": 1, "fpgaLatency": 1, "size": 1, "isBackwardNode": 0}
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"maxSizePerFPGA": 100, "maxFPGAs": 2, "maxCPUs": 1,
                                "nodes": [{"id": 1, **node}, {"id": 2, **node}],
                                "edges": [{"sourceId": 1, "destId": 2, "cost": 1}, {"sourceId": 1, "destId": 99, "cost": 2}]}))
    err = one_line_error(capsys, main(["info", str(path)]), str(path), "edges[1].destId", "unknown node id 99")
    assert "different costs" not in err


def test_interleaved_schedules_need_their_chunk_count(tmp_path, capsys):
    workload, split = tmp_path / "t.json", tmp_path / "s.json"
    assert main(["graph", "generate", "transformer", "--layers", "4", "--hidden", "64", "--heads", "4", "--seq", "16",
                 "--training", "--hardware", "mixed-a100x4-v100x4", "-o", str(workload)]) == 0
    assert main(["solve", str(workload), "-o", str(split)]) == 0
    capsys.readouterr()
    one_line_error(capsys, main(["simulate", str(workload), str(split), "--schedule", "interleaved-1f1b"]),
                   "--virtual-stages", "interleaved-1f1b")
    assert main(["simulate", str(workload), str(split), "--schedule", "interleaved-1f1b", "--virtual-stages", "1",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schedule"] == "interleaved-1f1b"
    assert main(["simulate", str(workload), str(split), "--schedule", "zbv", "--json"]) == 0  # zbv's V is fixed: 2


def test_the_mip_solver_banner_is_not_shown(capfd):
    assert main(["solve", str(WORKLOAD), "--method", "ip", "--json"]) == 0
    out, err = capfd.readouterr()
    assert "HiGHS" not in out and "HiGHS" not in err and "Copyright" not in err
    assert json.loads(out)["status"] == "optimal"


def test_execute_with_another_models_workload_names_it(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    other = tmp_path / "other.json"
    assert main(["graph", "generate", "transformer", "--layers", "2", "-o", str(other)]) == 0
    capsys.readouterr()
    one_line_error(capsys, main(["execute", str(ONNX), str(SPLIT), "--workload", str(other), "--microbatches", "3"]),
                   str(other), str(ONNX))


# ------------------------------------------------------------ item 9: Python API parity
def test_evaluate_plan_takes_paths_as_plan_does(piper, tmp_path):
    import pipesim

    planned = pipesim.plan(str(piper))
    again = pipesim.evaluate_plan(str(piper), planned)  # seen: AttributeError ('str' has no 'layers')
    assert again.feasible and again.time_per_sample == pytest.approx(planned.time_per_sample)
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(planned.to_dict()))
    assert pipesim.evaluate_plan(piper, saved).time_per_sample == pytest.approx(planned.time_per_sample)
    loaded = pipesim.load_planning_workload(piper)
    assert pipesim.evaluate_plan(loaded, saved).time_per_sample == pytest.approx(planned.time_per_sample)
    assert "load_planning_workload" in pipesim.__all__


def test_load_planning_workload_reads_a_planning_scenario_and_refuses_others(tmp_path):
    import pipesim

    gpt3 = pipesim.load_planning_workload(ROOT / "scenarios" / "gpt3-dgx-a100x4.yaml")
    assert len(gpt3.layers) > 32 and gpt3.microbatches == 32
    with pytest.raises(pipesim.InputError, match="solve.method"):
        pipesim.load_planning_workload(ROOT / "scenarios" / "mixed-a100-v100.yaml")
    with pytest.raises(pipesim.InputError, match="Piper's format"):
        pipesim.load_planning_workload(WORKLOAD)


def test_a_broken_plan_file_is_one_line(piper, tmp_path, capsys):
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"stages": [{"nodes": [1]}]}))
    one_line_error(capsys, main(["plan", str(piper), "--evaluate", str(bad)]), str(bad), "stages[0]", "tensor_parallel")


def test_the_api_guide_lists_every_schedule_and_the_planner():
    from pipesim.simulation import SCHEDULES

    guide = (ROOT / "docs" / "api.md").read_text()
    assert all(f"`{name}`" in guide for name in SCHEDULES), [n for n in SCHEDULES if f"`{n}`" not in guide]
    for name in ("plan(", "evaluate_plan(", "load_planning_workload("):
        assert f"| `{name}" in guide
    assert "bert24_training.json\")" not in guide  # the first example runs from a fresh clone


@pytest.mark.parametrize("command", [
    ["run", str(ROOT / "scenarios" / "mixed-a100-v100.yaml"), "--no-progress", "-o", "{out}"],
    ["sweep", str(ROOT / "scenarios" / "sweep-count-bandwidth.yaml"), "--no-progress", "-o", "{out}"],
])
def test_an_existing_read_only_output_folder_fails_before_the_work(tmp_path, capsys, command):
    places = _unwritable_places(tmp_path)
    if "read-only" not in places:
        pytest.skip("no read-only folder on this machine")
    folder = places["read-only"]
    one_line_error(capsys, main([a.format(out=folder) for a in command]), str(folder), "--output", "cannot be written")


def test_a_scenario_with_an_interleaved_schedule_needs_its_chunk_count(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("model: {generator: transformer, params: {layers: 2, hidden: 64, heads: 4, seq: 16}, training: true}\n"
                        "hardware: {preset: a100x8}\nsimulate: {schedule: interleaved-1f1b, microbatches: 8}\n")
    one_line_error(capsys, main(["run", str(scenario), "--no-progress", "-o", str(tmp_path / "out")]),
                   "simulate.virtual_stages")


def test_outputs_to_devices_and_links_are_written_in_place(tmp_path):
    """``-o /dev/stdout`` writes to it (a rename would replace the device node); a link keeps pointing at its file."""
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    write_text("/dev/null", "discarded")
    assert pathlib.Path("/dev/null").exists() and not pathlib.Path("/dev/null").is_file()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_text(fifo, "through a pipe")
    reader.join(10)
    assert got == ["through a pipe"] and not fifo.is_file()


@pytest.mark.parametrize("command", [
    ["hardware", "show", "{bad}"],
    ["run", "{bad}", "--no-progress", "-o", "{tmp}/out"],
    ["estimate", "{bad}", "--hardware", "dgx-h100x8", "--tp", "1", "--pp", "1", "--mbs", "1", "--gbs", "8"],
    ["plan", "{bad}"],
], ids=["hardware", "scenario", "model", "plan"])
def test_a_yaml_syntax_error_is_one_line_with_its_position(tmp_path, capsys, command):
    """Seen: PyYAML's message spans six lines (the offending line drawn with a caret)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  nodes:\n    - {a: 1\n    - b\n")
    code = main([part.format(bad=bad, tmp=tmp_path) for part in command])
    one_line_error(capsys, code, str(bad), "not valid YAML (line ")
