"""Predicted against measured: ``pipesim estimate`` on every published run of ``../shared/reference/published-runs.json``.

Each row is a real, measured pre-training step (NVIDIA DGX-A100 and DGX-H100,
BF16, FP16 and FP8) with its parallel configuration and source.  The row is
estimated exactly as a user would (:func:`pipesim.estimate`): its
architecture as a transformer decoder, its GPUs as DGX nodes, its
``tp, pp, cp, vp, mbs, gbs`` and precision.  Settings are Megatron-Core's
defaults except where the row states otherwise (``known_settings``):

* "full activation recomputation" → ``recompute="full"``;
* the MLP's activation where the row's model family states it (Nemotron-4:
  squared ReLU, unfused in its recipe; :data:`ACTIVATIONS`);
* "no distributed optimizer, no sequence parallelism (2021)" →
  ``distributed_optimizer=False, sequence_parallel=False``, and the software
  of 2021: no FlashAttention (Dao et al., May 2022) and no overlap of the
  gradient all-reduce with compute (Megatron-LM's ``overlap_grad_reduce``, 2023);
  FP16 gradients as Megatron-LM then kept them, and its default attention and
  hidden dropout of 0.1.

No constant is set per row or per model.  Prints one line per row and the
median and worst ``|predicted/measured − 1|``; writes a log-log plot.

    python -m benchmarks.published [--plot docs/images/published-runs.png] [--json out/published.json] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "published-runs.json"

#: the cluster preset of each system named by the rows
SYSTEMS = {"DGX-A100": "dgx-a100x4", "DGX-H100": "dgx-h100x16"}
#: an ungated MLP's activation by model family (the reference file's architectures do not name it; gated ones are
#: SwiGLU, the rest GeLU): Nemotron-4's squared ReLU (Parmar et al. 2024, arXiv:2402.16819 §2; the runs' recipe,
#: NVIDIA dgxc-benchmarking tag v24.11.1 nemotron/nemotron4-15b-synth.yaml: ``activation: squared-relu``,
#: ``bias_activation_fusion: false`` — Megatron-Core runs it as two unfused kernels, docs/model.md §11.2)
ACTIVATIONS = {"Nemotron-4": "squared-relu"}


def row_inputs(row: dict) -> dict:
    """The keyword arguments of :func:`pipesim.estimate` for one published row."""
    a, c = row["architecture"], row["config"]
    known = row.get("known_settings", "").lower()
    hardware = next(v for k, v in SYSTEMS.items() if row["system"].startswith(k))
    model = {"layers": a["layers"], "hidden": a["hidden"], "ffn_hidden": a["ffn_hidden"], "heads": a["heads"],
             "kv_heads": a["kv_heads"], "vocab": a["vocab"], "seq": a["seq"], "gated": a["gated"], "decoder": True,
             # modern (gated / grouped-query) decoders use RoPE and no biases; GPT-style ones learned positions
             "position": "rope" if a["gated"] or a["kv_heads"] != a["heads"] else "learned",
             "bias": not (a["gated"] or a["kv_heads"] != a["heads"]),
             "norm": "rmsnorm" if a["gated"] else "layernorm",
             "tied_embeddings": not (a["gated"] or a["kv_heads"] != a["heads"])}
    family = next((v for k, v in ACTIVATIONS.items() if row["model"].startswith(k)), None)
    if family and not a["gated"]:
        model["activation"] = family
    legacy = "(2021)" in known
    kwargs = dict(model={"generator": "transformer", "params": model}, hardware=hardware, nodes=row["gpus"] // 8, tp=c["tp"], pp=c["pp"], cp=c.get("cp") or 1,
                  vp=c.get("vp") or 1, mbs=c["mbs"], gbs=c["gbs"], precision=row["precision"])
    if "full activation recomputation" in known:
        kwargs["recompute"] = "full"
    if "no distributed optimizer" in known:
        kwargs["distributed_optimizer"] = False
    if "no sequence parallelism" in known:
        kwargs["sequence_parallel"] = False
    if legacy:
        kwargs.update(attention="unfused", dp_overlap=False, dropout=0.1)
    return kwargs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.published", description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=str(REFERENCE), help="the published runs (JSON)")
    parser.add_argument("--plot", default="out/published.png", help="where to write the plot (PNG)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown (for the README)")
    args = parser.parse_args(argv)
    import pipesim

    path = Path(args.reference)
    if not path.exists():
        print(f"{path}: not found (the development set lives in ../shared/reference)", file=sys.stderr)
        return 2
    rows = json.loads(path.read_text())["rows"]
    out = []
    print(f"{'id':6} {'model':16} {'GPUs':>5} {'prec':5} {'t,p,c,v,d,mbs,gbs':22} {'measured':>9} {'predicted':>9} "
          f"{'ratio':>6} {'GiB':>6} fits  recompute")
    for row in rows:
        kwargs = row_inputs(row)
        r = pipesim.estimate(**kwargs)
        c = row["config"]
        ratio = r.iteration_time / row["measured_step_s"]
        cfg = f"{c['tp']},{c['pp']},{c.get('cp') or 1},{c.get('vp') or 1},{c['dp']},{c['mbs']},{c['gbs']}"
        print(f"{row['id']:6} {row['model'][:16]:16} {row['gpus']:>5} {row['precision']:5} {cfg:22} "
              f"{row['measured_step_s']:9.3f} {r.iteration_time:9.3f} {ratio:6.3f} {r.memory_per_gpu / 2**30:6.1f} "
              f"{'yes ' if r.fits else 'NO  '}  {r.recompute}")
        out.append({"id": row["id"], "model": row["model"], "system": row["system"].split(" ")[0],
                    "gpus": row["gpus"], "precision": row["precision"],
                    "config": cfg, "measured_s": row["measured_step_s"], "predicted_s": r.iteration_time,
                    "ratio": ratio, "memory_gib": r.memory_per_gpu / 2**30, "fits": r.fits,
                    "recompute": r.recompute, "breakdown": r.to_dict()["breakdown"], "source": row["source"]["name"]})
    errors = [abs(o["ratio"] - 1) for o in out]
    print(f"\nrows: {len(out)}   median |pred/meas - 1|: {statistics.median(errors):.1%}   worst: {max(errors):.1%}   "
          f"within 10%: {sum(e <= 0.10 for e in errors)}   within 25%: {sum(e <= 0.25 for e in errors)}   "
          f"fit: {sum(o['fits'] for o in out)}/{len(out)}")
    if args.markdown:
        print("\n| run | GPUs | precision | t,p,c,v,d,mbs,gbs | measured s | predicted s | predicted/measured | GiB/GPU | fits |")
        print("|---|---:|---|---|---:|---:|---:|---:|---|")
        for o in out:
            print(f"| {o['model']} ({o['system']}) | {o['gpus']} | {o['precision']} | {o['config']} | "
                  f"{o['measured_s']:.3f} | {o['predicted_s']:.3f} | {o['ratio']:.3f} | {o['memory_gib']:.1f} | "
                  f"{'yes' if o['fits'] else 'no'} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    _plot(out, Path(args.plot))
    print(f"plot: {args.plot}")
    return 0


def _label_points(fig, ax, rows: list[dict]) -> None:
    """One label per point, at the first of a few offsets where it overlaps no other label and no point."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    points = [ax.transData.transform((r["measured_s"], r["predicted_s"])) for r in rows]
    taken = []
    candidates = [(7, -3, "left", "top"), (7, 9, "left", "bottom"), (-7, 3, "right", "bottom"),
                  (-7, -3, "right", "top"), (7, -14, "left", "top"), (7, 20, "left", "bottom"),
                  (-7, 14, "right", "bottom"), (-7, -14, "right", "top")]
    for r, (px, py) in sorted(zip(rows, points), key=lambda rp: -rp[0]["measured_s"]):
        text = f"{r['model']} {r['precision']}, {r['gpus']} GPUs ({r['ratio']:.2f})"
        for k, (dx, dy, ha, va) in enumerate(candidates):
            note = ax.annotate(text, (r["measured_s"], r["predicted_s"]), xytext=(dx, dy), textcoords="offset points",
                               fontsize=7, ha=ha, va=va, color="0.15",
                               arrowprops=dict(arrowstyle="-", color="0.55", lw=0.5, shrinkA=0, shrinkB=3)
                               if k > 0 else None)
            box = note.get_window_extent(renderer).expanded(1.02, 1.15)
            clash = any(box.overlaps(b) for b in taken) or any(
                box.contains(qx, qy) for qx, qy in points if (qx, qy) != (px, py))
            inside = ax.get_window_extent(renderer).contains(box.x0, box.y0) and \
                ax.get_window_extent(renderer).contains(box.x1, box.y1)
            if (not clash and inside) or k == len(candidates) - 1:
                taken.append(box)
                break
            note.remove()


def _plot(rows: list[dict], path: Path) -> None:
    """Predicted against measured step time, log axes, one labelled point per row, y = x and its ±10% band."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 6.2))
    meas = [r["measured_s"] for r in rows]
    pred = [r["predicted_s"] for r in rows]
    lo, hi = min(meas + pred) / 1.6, max(meas + pred) * 1.6
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.85", lw=0, label="±10%")
    ax.plot([lo, hi], [lo, hi], color="0.35", lw=1, label="predicted = measured")   # extended below
    styles = {"DGX-H100": ("tab:blue", "o", "DGX-H100 (NeMo / Megatron-Core)"),
              "DGX-A100": ("tab:orange", "s", "DGX-A100 (Megatron-LM, 2021)")}
    for system, (colour, marker, label) in styles.items():
        sel = [r for r in rows if r["system"] == system]
        if not sel:
            continue
        ax.scatter([r["measured_s"] for r in sel], [r["predicted_s"] for r in sel], color=colour, marker=marker,
                   s=36, zorder=3, label=label, edgecolors="white", linewidths=0.6)
        for r in sel:
            if not r["fits"]:   # a configuration that does not fit 80 GiB in the model: ringed in red
                ax.scatter(r["measured_s"], r["predicted_s"], s=110, facecolors="none", edgecolors="red", zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi * 3.2)          # room for the labels of the largest runs
    ax.set_ylim(lo, hi)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.plot([lo, hi * 3.2], [lo, hi * 3.2], color="0.35", lw=1)          # y = x across the whole frame
    ax.fill_between([lo, hi * 3.2], [lo * 0.9, hi * 2.88], [lo * 1.1, hi * 3.52], color="0.85", lw=0)
    _label_points(fig, ax, rows)
    ax.set_xlabel("measured step time (s)")
    ax.set_ylabel("pipesim estimate (s)")
    errors = sorted(abs(r["ratio"] - 1) for r in rows)
    median = errors[len(errors) // 2] if len(errors) % 2 else (errors[len(errors) // 2 - 1] + errors[len(errors) // 2]) / 2
    ax.set_title(f"pipesim estimate vs published training runs\n{len(rows)} runs: "
                 f"median |predicted/measured − 1| {median:.1%}, worst {max(errors):.1%}", fontsize=9)
    ax.grid(True, which="major", color="0.92", lw=0.6)
    ax.set_axisbelow(True)
    ax.legend(fontsize=7.5, loc="upper left", frameon=False)
    ax.text(0.99, 0.01, "label: model precision, GPUs (predicted/measured)", transform=ax.transAxes, fontsize=6.5,
            ha="right", va="bottom", color="0.4")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
