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

