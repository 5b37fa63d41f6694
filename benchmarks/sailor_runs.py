"""Benchmark: Sailor's measured runs predicted from Sailor's own profiles (issue 20, item 4).

    python -m benchmarks.sailor_runs [--json] [--runs DIR [--config FILE] [--profiles DIR]]
                                     [--sailor-results FILE]

For every run (default ``../shared/workloads/sailor/validation/*/*.json``: a
plan run for real on GH200 nodes, with ``real`` seconds per iteration and
``max_mem`` peak bytes) it prints pipesim's predicted iteration time and peak
memory per GPU (:func:`pipesim.placement.plan.sailor.estimate_sailor_plan`,
docs/model.md §12.2) beside the measurement, the signed difference, and the
median and worst |error|.  No number of a run is used to predict it.

Targets: time median |error| <= 5 %, worst <= 15 %; memory within 10 %.
Exit code 1 when a target is missed, 2 on unusable arguments.  Nothing is
timed, so the result does not depend on what else runs on the machine.

Other runs (``--runs DIR``): any folder of Sailor plan files with
measurements, e.g. the runs in a fetched copy of eth-easl/sailor that the
project does not hold (another model, an earlier measurement of the same
plans, heterogeneous RTX clusters).  ``--config`` is the training config
(default: the one named for the folder, ``OPT-350``, ``GPT-Neo-2.7``, ``GPT-NEO`` or
``mit``, in the profiles folder), ``--profiles`` the folder holding
``profiles_tmp.json``, ``llm_info.json`` and ``multizone_bandwidths_het.json``
(default ``../shared/workloads/sailor``).  A plan file that cannot be read
(for instance a stage listing a layer twice) is listed with the reason and
left out of the summary; a run without a measurement (``real`` 0) likewise.

Sailor's other runs, from a snapshot of its repository at ``$SAILOR_REPO``
(``V=sailor/Planner/simulations/validation``; one folder per set, each plan
file copied as it is)::

    for f in $(git -C $SAILOR_REPO ls-tree -r --name-only HEAD $V/clariden/GPT-NEO); do
        git -C $SAILOR_REPO show HEAD:$f > runs/GPT-NEO/$(basename $f); done      # GPT-Neo-2.7B, GH200
    # likewise $V/mit at HEAD (RTX clusters), and at commit 37ded10 $V/clariden/OPT-350
    # (the first measurement of the 15 shipped plans) and $V/mit (earlier RTX plans)
    python -m benchmarks.sailor_runs --runs runs/GPT-NEO
    python -m benchmarks.sailor_runs --runs runs/mit             # OPT-350M on RTX 3090 / Titan RTX / RTX 2080

Sailor's own simulator beside ours (``--sailor-results FILE``): a JSON object
mapping each plan file's stem to ``{"iteration_time": s, "memory_per_gpu":
bytes}`` as Sailor's simulator predicts them; the table then shows its
prediction and error per run and its median and worst |error|.  Sailor's code
is never part of this repository; the file is produced outside it, from
Sailor's public code, this way (CPU only, no GPU needed)::

    # a snapshot of github.com/eth-easl/sailor (commit cf2c8e3) at $SAILOR_REPO
    mkdir -p /tmp/sailor-sim/root/sailor && cd /tmp/sailor-sim
    for f in $(git -C $SAILOR_REPO ls-tree -r --name-only HEAD sailor/Planner/simulations \\
            sailor/Planner/sailor_planner sailor/Planner/llm_info.json sailor/profiling sailor/providers); do
        mkdir -p root/sailor/$(dirname $f)
        git -C $SAILOR_REPO show HEAD:$f > root/sailor/$f || rm root/sailor/$f; done
    python3 -m venv .venv && . .venv/bin/activate && pip install numpy pandas
    # a driver that, per plan file, does what Sailor's
    # sailor/Planner/simulations/validation/validate.py does for --simulator SAILOR
    # (Simulator(ROOT, config with global_batch_size = the plan's gbs, llm_info,
    #  fp16=False, profiles_tmp.json, zone); simulate_iteration_time(plan)[0];
    #  max over stages and replicas of get_memory_footprint_on_gpu(plan, stage, tp)),
    # with a stub module standing in for torch, which sailor/profiling/profile_utils.py
    # imports but the simulator's code paths never call, and writes the JSON above.

(File by file: a snapshot may lack blobs — ``git archive`` of
``sailor/Planner/simulations`` stops at the missing
``profiles_tmp_aceso.json``, which the simulator does not read.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from pipesim.errors import InputError
from pipesim.placement.plan.sailor import estimate_sailor_plan, load_sailor_inputs
from pipesim.placement.plan.sailor_format import read_sailor_plan

SAILOR = Path(__file__).resolve().parents[1].parent / "shared" / "workloads" / "sailor"
CONFIGS = {"OPT-350": "training_config_opt_350.json", "GPT-Neo-2.7": "training_config_gpt_neo27.json",
           # Sailor's repository's folder names: its GPT-Neo runs, and its RTX runs ("mit", OPT-350M: the
           # only model its profiles time on RTX GPUs)
           "GPT-NEO": "training_config_gpt_neo27.json", "mit": "training_config_opt_350.json"}
TIME_MEDIAN, TIME_WORST, MEMORY_WORST = 0.05, 0.15, 0.10


def _run_order(path: Path) -> tuple:
    head = path.name.split("_")[0]
    return (int(head[1:]) if head[1:].isdigit() else 0, path.name)


def rows(runs: Path, config: Path, profiles: Path, label: str = "") -> list[dict]:
    """One row per plan file in ``runs``: prediction, measurement and difference (or why it was skipped)."""
    inputs = load_sailor_inputs(config, profiles)
    out = []
    for path in sorted(runs.glob("*.json"), key=_run_order):
        name = f"{label}/{path.stem}" if label else path.stem
        try:
            plan = read_sailor_plan(path)
            est = estimate_sailor_plan(plan, inputs)
        except InputError as e:
            out.append({"run": name, "stem": path.stem, "skipped": str(e)})
            continue
        real, mem = plan.measured.iteration_time, plan.measured.max_memory
        if not real or not mem:
            out.append({"run": name, "stem": path.stem, "skipped": "no measurement (real or max_mem is 0 or absent)"})
            continue
        pipe = plan.pipelines[0]
        out.append({
            "run": name,
            "stem": path.stem,
            "gpus": plan.gpus,
            "stages": len(pipe.stages),
            "dp": len(pipe.replicas[0]),
            "gpu_types": sorted({r.gpu for reps in pipe.replicas for r in reps}),
            "mbs": plan.mbs,
            "microbatches": est.microbatches,
            "time_predicted": est.iteration_time,
            "time_measured": real,
            "time_error": est.iteration_time / real - 1,
            "memory_predicted": est.memory_per_gpu,
            "memory_measured": mem,
            "memory_error": est.memory_per_gpu / mem - 1,
            "gradient_reduction_measured": plan.measured.gradient_reduction,
        })
    mark_shared(out)
    return out


def mark_shared(table: list[dict]) -> None:
    """Flag runs whose measurement another plan file of the set carries too (``shared_with``: their names).

    Two different plans run for real cannot give the same seconds per
    iteration, seconds of gradient reduction and peak bytes to the last
    digit; when two files carry the same three numbers at least one of them
    holds another plan's measurement, and the files do not say which.  Such
    runs stay in the table and the summary, flagged; the summary also gives
    the errors without them.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in table:
        if "skipped" in r or r.get("gradient_reduction_measured") is None:
            continue
        key = (r["time_measured"], r["gradient_reduction_measured"], r["memory_measured"])
        groups.setdefault(key, []).append(r)
    for group in groups.values():
        if len(group) > 1:
            for r in group:
                r["shared_with"] = [o["run"] for o in group if o is not r]


def shipped_rows(folder: Path = SAILOR) -> list[dict]:
    """The runs shipped in ``../shared`` (one folder per model)."""
    out = []
    for model_dir in sorted((folder / "validation").iterdir()):
        out += rows(model_dir, folder / CONFIGS[model_dir.name], folder, model_dir.name)
    return out


def add_sailor(table: list[dict], results: dict) -> None:
    """Put Sailor's simulator's predictions (by plan file stem) beside ours."""
    for r in table:
        s = results.get(r["stem"])
        if "skipped" in r or s is None:
            continue
        r["sailor_time"] = float(s["iteration_time"])
        r["sailor_time_error"] = r["sailor_time"] / r["time_measured"] - 1
        if s.get("memory_per_gpu"):
            r["sailor_memory"] = float(s["memory_per_gpu"])
            r["sailor_memory_error"] = r["sailor_memory"] / r["memory_measured"] - 1


def _stats(values: list[float]) -> dict:
    a = [abs(v) for v in values]
    return {"median": statistics.median(a), "mean": statistics.mean(a), "worst": max(a)} if a else {}


def summary(table: list[dict]) -> dict:
    done = [r for r in table if "skipped" not in r]
    t, m = _stats([r["time_error"] for r in done]), _stats([r["memory_error"] for r in done])
    out = {"runs": len(done), "skipped": len(table) - len(done)}
    if done:
        out.update(time_median=t["median"], time_mean=t["mean"], time_worst=t["worst"],
                   memory_median=m["median"], memory_mean=m["mean"], memory_worst=m["worst"],
                   targets_met=t["median"] <= TIME_MEDIAN and t["worst"] <= TIME_WORST and m["worst"] <= MEMORY_WORST)
    else:
        out["targets_met"] = False
    shared = [r for r in done if "shared_with" in r]
    own = [r for r in done if "shared_with" not in r]
    if shared and own:
        u = _stats([r["time_error"] for r in own])
        out["unshared"] = {"runs": len(own), "time_median": u["median"], "time_mean": u["mean"], "time_worst": u["worst"]}
        theirs_own = [r for r in own if "sailor_time_error" in r]
        if theirs_own:
            su = _stats([r["sailor_time_error"] for r in theirs_own])
            out["unshared"]["sailor"] = {"runs": len(theirs_own), "time_median": su["median"],
                                         "time_mean": su["mean"], "time_worst": su["worst"]}
    theirs = [r for r in done if "sailor_time_error" in r]
    if theirs:
        st = _stats([r["sailor_time_error"] for r in theirs])
        out["sailor"] = {"runs": len(theirs), "time_median": st["median"], "time_mean": st["mean"],
                         "time_worst": st["worst"]}
        sm = _stats([r["sailor_memory_error"] for r in theirs if "sailor_memory_error" in r])
        if sm:
            out["sailor"].update(memory_median=sm["median"], memory_worst=sm["worst"])
    return out


def _print(table: list[dict], s: dict) -> None:
    with_sailor = "sailor" in s
    width = max([len(r["run"]) for r in table] + [3])
    head = (f"{'run':{width}} {'GPUs':>4} {'PPxDP':>6} {'mbs':>3} {'M':>4} {'time pred':>9} {'real':>8} {'diff':>7}"
            f" {'mem pred':>9} {'real':>9} {'diff':>7}")
    print(head + (f" {'Sailor':>8} {'diff':>7}" if with_sailor else ""))
    for r in table:
        if "skipped" in r:
            print(f"{r['run']:{width}} skipped: {r['skipped']}")
            continue
        line = (f"{r['run']:{width}} {r['gpus']:4d} {r['stages']:>2}x{r['dp']:<3d} {r['mbs']:3d} {r['microbatches']:4d}"
                f" {r['time_predicted']:8.3f}s {r['time_measured']:7.3f}s {r['time_error'] * 100:+6.1f}%"
                f" {r['memory_predicted'] / 2**30:6.2f}GiB {r['memory_measured'] / 2**30:6.2f}GiB"
                f" {r['memory_error'] * 100:+6.1f}%")
        if "sailor_time" in r:
            line += f" {r['sailor_time']:7.3f}s {r['sailor_time_error'] * 100:+6.1f}%"
        if "shared_with" in r:
            line += f"  (measurement identical to {', '.join(r['shared_with'])}'s)"
        print(line)
    if not s["runs"]:
        print("no run with a measurement")
        return
    print(f"time |error|: median {s['time_median'] * 100:.1f}% (target <= {TIME_MEDIAN:.0%}), "
          f"mean {s['time_mean'] * 100:.1f}%, worst {s['time_worst'] * 100:.1f}% (target <= {TIME_WORST:.0%})")
    print(f"memory |error|: median {s['memory_median'] * 100:.1f}%, worst {s['memory_worst'] * 100:.1f}% "
          f"(target <= {MEMORY_WORST:.0%})")
    if with_sailor:
        o = s["sailor"]
        mem = (f"; memory median {o['memory_median'] * 100:.1f}%, worst {o['memory_worst'] * 100:.1f}%"
               if "memory_median" in o else "")
        print(f"Sailor's simulator on the same {o['runs']} runs: time |error| median {o['time_median'] * 100:.1f}%, "
              f"mean {o['time_mean'] * 100:.1f}%, worst {o['time_worst'] * 100:.1f}%{mem}")
    if "unshared" in s:
        u = s["unshared"]
        line = (f"without the runs that share a measurement ({s['runs'] - u['runs']}): time |error| median "
                f"{u['time_median'] * 100:.1f}%, mean {u['time_mean'] * 100:.1f}%, worst {u['time_worst'] * 100:.1f}%")
        if "sailor" in u:
            line += (f"; Sailor's simulator median {u['sailor']['time_median'] * 100:.1f}%, "
                     f"mean {u['sailor']['time_mean'] * 100:.1f}%, worst {u['sailor']['time_worst'] * 100:.1f}%")
        print(line)
    if s["skipped"]:
        print(f"{s['skipped']} run(s) skipped (listed above)")
    print("targets met" if s["targets_met"] else "targets MISSED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sailor_runs", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--runs", type=Path, help="a folder of Sailor plan files with measurements "
                        "(default: the runs shipped in ../shared)")
    parser.add_argument("--config", type=Path, help="the runs' training config (default: named for the folder)")
    parser.add_argument("--profiles", type=Path, help="folder with profiles_tmp.json, llm_info.json and "
                        "multizone_bandwidths_het.json (default: ../shared/workloads/sailor)")
    parser.add_argument("--sailor-results", type=Path, help="JSON of Sailor's simulator's predictions by plan "
                        "file stem, to show beside ours")
    args = parser.parse_args(argv)
    profiles = args.profiles or SAILOR
    try:
        if args.runs is None:
            if args.config or args.profiles:
                raise InputError(None, "--config/--profiles", "apply to --runs")
            if not SAILOR.is_dir():
                print(f"Sailor's runs are not at {SAILOR} (../shared is absent)", file=sys.stderr)
                return 2
            table = shipped_rows()
        else:
            if not args.runs.is_dir():
                raise InputError(args.runs, "--runs", "not a folder")
            config = args.config
            if config is None:
                named = CONFIGS.get(args.runs.name)
                if named is None:
                    raise InputError(args.runs, "--config", f"no training config is named for a folder called "
                                     f"{args.runs.name!r} (known: {', '.join(CONFIGS)}); give --config")
                config = profiles / named
            table = rows(args.runs, config, profiles)
        if args.sailor_results is not None:
            try:
                results = json.loads(args.sailor_results.read_text())
            except (OSError, ValueError) as e:
                raise InputError(args.sailor_results, "--sailor-results", f"not a readable JSON file ({e})") from None
            if not isinstance(results, dict) or not all(
                    isinstance(v, dict) and isinstance(v.get("iteration_time"), (int, float)) for v in results.values()):
                raise InputError(args.sailor_results, "iteration_time",
                                 "must map each plan file's stem to {\"iteration_time\": seconds, ...}")
            add_sailor(table, results)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = summary(table)
    if args.json:
        print(json.dumps({"runs": table, "summary": s}, indent=2))
    else:
        _print(table, s)
    return 0 if s["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
