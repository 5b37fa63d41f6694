"""Rebuild the paper's comparison tables on every published workload.

Runs :func:`pipesim.comparison.compare` on the 16 throughput and 8 latency
workloads of ``../shared/workloads/paper`` (Tarnawski et al., NeurIPS 2020,
§6): the DP, PipeDream-style, local search, METIS partitioner, single
accelerator, the experts' splits (layer graphs) and the non-contiguous IP
(time-limited); on the latency workloads also the latency IP, the greedy and
the latency of every max-load split.  Writes ``compare.csv`` and
``compare.md`` to the output folder (default ``./out/``) and prints the
Markdown.

    python -m benchmarks.compare [OUT_DIR] [--only bert24] [--time-limit 60] [--restarts 10]

As in the paper's code, PipeDream-style fusion ignores the out-edges of the
input layers of BERT-24 (node 4) and GNMT (nodes 2, 40, 46), which
PipeDream's profiler does not see.  Experts' splits exist for the layer
graphs; a training graph without one uses its inference graph's split
(backward nodes follow their colour class).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from pipesim.comparison import (
    LATENCY,
    MAX_LOAD,
    METHODS,
    Comparison,
    Options,
    compare,
    rows_to_csv,
)
from pipesim.placement.formats import read_paper_workload

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "workloads" / "paper"
METHODS_RUN = ("dp", "pipedream", "local_search", "partitioner", "single", "expert", "ip_noncontiguous")
PIPEDREAM_IGNORED = {"bert24": (4,), "gnmt": (2, 40, 46)}  # layer graphs only; from the paper's dp.cpp


def expert_split(path: Path) -> Path | None:
    """The experts' split for a layer graph (the inference split for a training graph without one)."""
    if path.parent.name != "LayerGraphs":
        return None
    folder = PAPER / "expert-splits"
    for name in (path.stem, path.stem.replace("_training", "_inference")):
        if (folder / f"{name}_expert.json").exists():
            return folder / f"{name}_expert.json"
    return None


def ignored_sources(path: Path) -> tuple[int, ...]:
    if path.parent.name != "LayerGraphs":
        return ()
    return next((ids for model, ids in PIPEDREAM_IGNORED.items() if path.stem.startswith(model)), ())


def workloads(only: str | None) -> list[tuple[str, Path]]:
    """(kind, path) for every paper workload, throughput first."""
    found = []
    for kind in ("throughput", "latency"):
        for path in sorted((PAPER / kind).glob("*/*.json")):
            if only is None or only in str(path.relative_to(PAPER)):
                found.append((kind, path))
    return found


def _cell(row) -> str:
    if row.value is None:
        return f"{row.status}"
    text = f"{row.value:.4f}"
    if row.ratio is not None:
        text += f" ({row.ratio:.3f})"
    if row.contiguous is False:
        text += " nc"
    if row.feasible is False:
        text += " !"
    return text


def markdown(comparisons: list[tuple[str, Comparison]]) -> str:
    """One table per objective: a row per workload, a column per method."""
    lines = [
        "# The paper's comparison, rebuilt",
        "",
        "Each cell: value (ratio to the optimum: the DP for max-load, the latency IP for latency).",
        "`nc`: the split is not contiguous (it may beat the contiguous optimum); `!`: the split violates",
        "memory or support (the paper's single-accelerator figure ignores memory); `error`: see the CSV;",
        "†: the reference was not proven optimal (time limit), ratios are to its value.",
    ]
    for objective, title in ((MAX_LOAD, "Max-load (time per sample)"), (LATENCY, "Latency (one sample)")):
        chosen = [c for _, c in comparisons if c.by_objective(objective)]
        if not chosen:
            continue
        methods = list(dict.fromkeys(r.method for c in chosen for r in c.by_objective(objective)))
        lines += ["", f"## {title}", "", "| workload | " + " | ".join(methods) + " |",
                  "|---|" + "---|" * len(methods)]
        for c in chosen:
            cells = {r.method: _cell(r) for r in c.by_objective(objective)}
            label = c.workload if c.proven.get(objective) else f"{c.workload} †"
            lines.append(f"| {label} | " + " | ".join(cells.get(m, "—") for m in methods) + " |")
    skipped = [(c.workload, m, why) for _, c in comparisons for m, why in c.skipped.items()]
    if skipped:
        lines += ["", "## Not run", ""] + [f"- {w}: {m} — {why}" for w, m, why in skipped]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="out", help="output folder (default ./out/)")
    parser.add_argument("--only", help="run only workloads whose path contains this text")
    parser.add_argument("--methods", default=",".join(METHODS_RUN), help="comma-separated methods")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per IP and local search (default 60)")
    parser.add_argument("--restarts", type=int, default=10, help="local-search restarts (default 10)")
    parser.add_argument("--method-timeout", type=float, default=900.0,
                        help="abandon a method after this many seconds (default 900; 120 on latency workloads, "
                             "where max-load methods only supply splits)")
    args = parser.parse_args(argv)
    if not PAPER.is_dir():
        print(f"the paper's workloads are not at {PAPER}", file=sys.stderr)
        return 2
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")

    comparisons: list[tuple[str, Comparison]] = []
    for kind, path in workloads(args.only):
        started = time.perf_counter()
        workload = read_paper_workload(path)
        timeout = args.method_timeout if kind == "throughput" else min(args.method_timeout, 120.0)
        options = Options(expert=expert_split(path), restarts=args.restarts, time_limit=args.time_limit,
                          method_timeout=timeout, ignore_sources=ignored_sources(path))
        run = [m for m in methods if m != "expert" or options.expert is not None]
        name = f"{kind}/{path.parent.name}/{path.stem}"
        comparison = compare(workload, run, options, latency=(kind == "latency"), name=name)
        comparisons.append((kind, comparison))
        best = {r.method: r.value for r in comparison.by_objective(MAX_LOAD)}
        print(f"{name}: {time.perf_counter() - started:.1f} s, dp {best.get('dp', math.nan)}", file=sys.stderr)
        for method, why in comparison.skipped.items():
            print(f"  skipped {method}: {why}", file=sys.stderr)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.csv").write_text(rows_to_csv([c for _, c in comparisons]))
    text = markdown(comparisons)
    (out / "compare.md").write_text(text)
    print(text)
    print(f"wrote {out / 'compare.csv'} and {out / 'compare.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
