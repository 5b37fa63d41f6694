"""Per-stage degrees (issue 19 item 4, docs/model.md §11.9): stages choosing their own tensor- and data-parallel
degree and recomputation, priced by the estimate's own stage costs, searched exactly for that model."""

from __future__ import annotations

import contextlib
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesim.cli import main
from pipesim.errors import InfeasibleError, InputError
from pipesim.hardware.clusters import load_cluster
from pipesim.placement.plan.megatron import RECOMPUTE, ParallelConfig, _estimate, with_nodes
from pipesim.placement.plan.megatron_plan import plan_megatron
from pipesim.placement.plan.megatron_stages import _Option, _best_assignment, _search_key, search_per_stage
from pipesim.workloads.llms import load_llm
from pipesim.workloads.transformer import TransformerConfig

H100 = load_cluster("dgx-h100x16")
NODE = with_nodes(H100, 1)
#: four layers with long sequences: memory binds, and the best plan gives its stages different tensor-parallel
#: degrees (t = 2, 1 with c = 2 at global batch 32)
TIGHT = TransformerConfig(layers=4, hidden=8192, ffn_hidden=28672, heads=64, kv_heads=8, vocab=128256, seq=16384,
                          batch=1, decoder=True, gated=True, tied_embeddings=False, position="rope", norm="rmsnorm",
                          bias=False, max_positions=16384)


# ---- the assignment search against brute force (hypothesis) ----------------------------------------------
def _options(draw, n, p, first_start=None):
    out = []
    for k in range(n):
        out.append(_Option(t=k + 1, recompute="none", time=draw(st.integers(1, 9)) / 4,
                           forward=draw(st.integers(1, 4)) / 8, shard=float(draw(st.integers(1, 3))),
                           start=first_start if first_start is not None else draw(st.integers(1, max(1, p - 2))),
                           dp=draw(st.integers(0, 6)) / 4))
    return out


@st.composite
def instances(draw):
    p = draw(st.integers(2, 5))
    first = _options(draw, draw(st.integers(1, 3)), p, 0)
    last = _options(draw, draw(st.integers(1, 3)), p, p - 1)
    middle = _options(draw, draw(st.integers(1, 3)), p) if p > 2 else []
    return p, draw(st.sampled_from((1, 2, 4))), draw(st.integers(1, 8)), first, middle, last


@settings(max_examples=300, deadline=None)
@given(instances())
def test_assignment_search_equals_brute_force(instance):
    p, v, m, first, middle, last = instance
    ff, fm = min(o.forward for o in first), min((o.forward for o in middle), default=0.0)
    fwd_lb = [0.0] + [ff + (r - 1) * fm for r in range(1, p)]

    def opt(shard):
        return 0.3 * shard

    best = None
    for o0, ol in itertools.product(first, last):
        if ol.dp - fwd_lb[p - 1] > o0.dp:
            continue
        # every middle stage: any option whose memory allows it there and whose reduction the drain hides
        allowed = [[o for o in middle if o.start <= i and o.dp - fwd_lb[i] <= o0.dp] for i in range(1, p - 1)]
        for mids in itertools.product(*allowed):
            stages = [o0, *mids, ol]
            times = [o.time for o in stages]
            value = m * max(times) + (sum(times) - max(times)) / v + o0.dp + opt(max(o.shard for o in stages))
            best = value if best is None else min(best, value)
    found = _best_assignment(first, middle, last, p, m, v, opt, fwd_lb)
    if best is None:
        assert found is None
    else:
        assert found[0] == pytest.approx(best, rel=1e-12)
        o0, ol, chosen = found[1:]
        covered = sorted(i for _, lo, hi in chosen for i in range(lo, hi))
        assert covered == list(range(1, p - 1))


# ---- the one cost model ---------------------------------------------------------------------------------
def test_uniform_stage_degrees_are_the_estimate():
    model = load_llm("llama3.1-70b")
    cluster = with_nodes(H100, 8)
    cfg = ParallelConfig(tp=4, pp=4, cp=2, vp=5, gbs=128)
    plain = _estimate(model, cfg, cluster, "selective")
    staged = _estimate(model, cfg, cluster, ("selective",) * 4, (4, 4, 4, 4))
    assert staged.iteration_time == plain.iteration_time and staged.memory_per_gpu == plain.memory_per_gpu
    assert plain.runnable and plain.stage_tp == (4,) * 4 and plain.stage_dp == (2,) * 4


def test_stage_degrees_price_each_stage_by_its_own_degree():
    cfg = ParallelConfig(tp=4, pp=2, mbs=1, gbs=32, sequence_parallel=True)       # B = mbs·d = 1·1 sequences
    with pytest.raises(InputError, match="stage_tp"):
        _estimate(TIGHT, cfg, NODE, ("none", "none"), (4, 2))                      # 2 replicas cannot split 1
    cfg = ParallelConfig(tp=4, pp=2, mbs=2, gbs=32, sequence_parallel=True)       # B = 2
    mixed = _estimate(TIGHT, cfg, NODE, ("none", "none"), (4, 2))
    assert mixed.stage_tp == (4, 2) and mixed.stage_dp == (1, 2) and mixed.stage_mbs == (2, 1)
    assert not mixed.runnable and mixed.to_dict()["runnable"] is False
    # stage 1 is priced as stage 1 of the uniform t = 2 configuration (same microbatch: 2 replicas × 1)
    two = _estimate(TIGHT, ParallelConfig(tp=2, pp=2, mbs=1, gbs=32, sequence_parallel=True), NODE, "none")
    four = _estimate(TIGHT, cfg, NODE, "none")
    assert mixed.stage_forward[1] == two.stage_forward[1] and mixed.stage_backward[1] == two.stage_backward[1]
    assert mixed.stage_forward[0] == four.stage_forward[0]
    assert dict(mixed.stage_memory)[1] == dict(two.stage_memory)[1]
    with pytest.raises(InputError, match=r"stage_tp\[1\]"):
        _estimate(TIGHT, cfg, NODE, "none", (4, 3))
    # cfg sets the microbatch (B = mbs·d = 2); the estimate reports the first stage's degrees
    other = _estimate(TIGHT, cfg, NODE, ("none", "none"), (2, 2))
    assert other.config.tp == 2 and other.dp == 2 and other.config.mbs == 1 and other.stage_mbs == (1, 1)
    assert other.iteration_time == two.iteration_time
    with pytest.raises(InputError, match="stage_tp"):
        _estimate(TIGHT, cfg, NODE, "none", (4,))


def test_per_stage_recomputation_recomputes_only_where_memory_needs_it():
    model, cluster = load_llm("llama3.1-70b"), with_nodes(H100, 8)
    config = ParallelConfig(tp=4, pp=4, cp=1, vp=1, gbs=128)          # d = 4, B = 4
    assert not _estimate(model, config, cluster, "none").fits          # the first stage holds 4 microbatches
    from pipesim.placement.plan.megatron_stages import _evaluate

    found = _search_key(model, cluster, 128, "bf16", (4, 1, 1, 4, True, True), [4], {}, {})
    mixed = _evaluate(model, cluster, 128, "bf16", (found[0], (4, 1, 1, 4, True, True), found[1:]))
    full = _estimate(model, config, cluster, "full")
    assert mixed.fits and mixed.recompute == "per-stage" and mixed.stage_tp == (4,) * 4
    assert mixed.stage_recompute[0] != "none" and mixed.stage_recompute[-1] == "none"
    assert mixed.iteration_time < full.iteration_time
    for i, r in enumerate(mixed.stage_recompute):       # each stage's choice is its least recomputation that fits
        if r != "none":
            lighter = RECOMPUTE[RECOMPUTE.index(r) - 1]
            worse = _estimate(model, config, cluster, tuple(lighter if j == i else x
                                                             for j, x in enumerate(mixed.stage_recompute)))
            assert not worse.fits


# ---- the whole search against brute force over every stage's degree and recomputation -------------------
def _every_plan(model, cluster, gbs, cps=(1, 2, 4, 8), max_mbs=16):
    """Every pipeline setting, every tensor-parallel degree and recomputation of every stage, by _estimate."""
    gpus = cluster.device_count
    for p, c, v, group in itertools.product(range(2, model.layers + 1), cps, range(1, 5), range(1, gbs + 1)):
        if gpus % (p * c) or gbs % group:
            continue
        per = gpus // (p * c)
        ts = [t for t in range(1, 9) if per % t == 0 and group % (per // t) == 0 and group // (per // t) <= max_mbs]
        for sp, do, tps, rcs in itertools.product((True, False), (True, False), itertools.product(ts, repeat=p),
                                                  itertools.product(RECOMPUTE, repeat=p)):
            cfg = dict(tp=tps[0], pp=p, cp=c, vp=v, mbs=group // (per // tps[0]), gbs=gbs, sequence_parallel=sp,
                       distributed_optimizer=do)
            with contextlib.suppress(InputError):          # degrees the model or the GPUs do not allow
                yield _estimate(model, ParallelConfig(**cfg), cluster, rcs, tps)


def _brute_force(model, cluster, gbs):
    return min((e for e in _every_plan(model, cluster, gbs) if e.fits), key=lambda e: e.iteration_time)


@pytest.mark.slow
def test_per_stage_search_is_exact_against_brute_force():
    brute = _brute_force(TIGHT, NODE, 32)
    assert "drain" not in brute.dp_ops          # its first stage's reduction is the exposed one (the search's space)
    assert not brute.runnable                   # the instance is one where stages differ
    found, settings_searched, stopped = search_per_stage(TIGHT, NODE, 32)
    assert not stopped and settings_searched > 0
    assert found.iteration_time == pytest.approx(brute.iteration_time, rel=1e-12)


def test_per_stage_search_stops_at_its_budget():
    found, searched, stopped = search_per_stage(TIGHT, NODE, 32, budget=0.0)
    assert stopped and searched == 0 and found is None
    plan = plan_megatron(TIGHT, NODE, 32, per_stage=True, per_stage_budget=0.0)
    assert any("budget" in n for n in plan.notes) and plan.per_stage is plan.best
    with pytest.raises(InputError, match="per_stage_budget"):
        plan_megatron(TIGHT, NODE, 32, per_stage=True, per_stage_budget=-1)


def test_plan_cli_per_stage_shows_stage_degrees_and_gain(capsys):
    assert main(["plan", "llama3.1-8b", "--hardware", "dgx-h100x16", "--nodes", "1", "--gbs", "32", "--per-stage",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ps = data["per_stage"]
    assert ps["gain"] >= 0 and ps["iteration_time"] <= data["iteration_time"]
    assert all({"t", "d", "mbs", "recompute"} <= set(s) for s in ps["stages"])
    assert ps["runnable"] == (len({(s["t"], s["d"], s["recompute"]) for s in ps["stages"]}) == 1)


# ---- one validator of the model's tensor-parallel degrees and of whole-number fields ----------------------
def test_one_tensor_parallel_check_serves_estimate_planners_and_profiles(capsys, tmp_path):
    from pipesim.placement.plan.layer_profiles import _tp_degrees
    from pipesim.placement.plan.megatron import tensor_parallel_degrees, tensor_parallel_problem
    from pipesim.placement.plan.megatron_plan import candidates

    model = TransformerConfig(layers=4, hidden=768, heads=12, kv_heads=4, seq=1024, vocab=1000, decoder=True,
                              max_positions=1024)
    node = NODE.nodes[0][0]
    assert tensor_parallel_degrees(model, 8) == [1, 2, 4]                 # 8 divides no 12 heads
    assert {c.tp for c in candidates(model, NODE, 8)} == {1, 2, 4}
    assert _tp_degrees(model, node) == [1, 2, 4]
    problem = tensor_parallel_problem(model, 8, 8)
    with pytest.raises(InputError, match="--tp") as plain:
        _estimate(model, ParallelConfig(tp=8, gbs=8), NODE, "none")
    with pytest.raises(InputError, match=r"stage_tp\[1\]") as staged:
        _estimate(model, ParallelConfig(tp=4, pp=2, mbs=1, gbs=8), NODE, "none", (4, 8))
    assert plain.value.problem == staged.value.problem == problem
    # the CLI: one line naming the field, exit 2
    assert main(["estimate", "llama3.1-8b", "--hardware", "dgx-h100x16", "--nodes", "1", "--tp", "3", "--pp", "1",
                 "--mbs", "1", "--gbs", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--tp" in err and len(err.splitlines()) == 1
    assert main(["estimate", "llama3.1-8b", "--hardware", "dgx-h100x16", "--nodes", "1", "--tp", "1", "--pp", "0",
                 "--mbs", "1", "--gbs", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--pp" in err and "positive" in err and len(err.splitlines()) == 1
    f = tmp_path / "m.yaml"
    f.write_text("model: {generator: transformer, params: {layers: 0, hidden: 64, heads: 4, seq: 16}}\n")
    assert main(["estimate", str(f), "--hardware", "dgx-h100x16", "--nodes", "1", "--tp", "1", "--pp", "1",
                 "--mbs", "1", "--gbs", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(f) in err and "model.params.layers: must be a positive whole number" in err
    assert len(err.splitlines()) == 1


def test_cli_table_marks_a_per_stage_plan_not_runnable():
    from dataclasses import replace

    from rich.console import Console

    from pipesim.commands.plan import _per_stage_table

    plan = plan_megatron(TIGHT, NODE, 32)
    cfg = ParallelConfig(tp=4, pp=2, mbs=2, gbs=32, sequence_parallel=True)
    mixed = _estimate(TIGHT, cfg, NODE, ("full", "none"), (4, 2))
    console = Console(width=200, record=True)
    console.print(_per_stage_table(replace(plan, per_stage=mixed, per_stage_searched=7)))
    text = console.export_text()
    assert "NOT runnable by Megatron-Core" in text and "7 pipeline settings" in text
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    assert [[c.strip() for c in r] for r in rows] == [["0", "2", "4", "1", "2", "full"],
                                                      ["1", "2", "2", "2", "1", "none"]]
    data = replace(plan, per_stage=mixed).to_dict()["per_stage"]
    assert data["runnable"] is False and [s["t"] for s in data["stages"]] == [4, 2]
    assert data["gain"] == pytest.approx(plan.iteration_time / mixed.iteration_time - 1)


@pytest.mark.slow
def test_scenario_option_per_stage(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("model: {generator: transformer, params: {preset: llama3.1-8b}}\nhardware: {cluster: dgx-h100x8}\n"
                 "solve: {method: plan, options: {objective: megatron, gbs: 32, per_stage: true}}\n")
    assert main(["plan", str(f), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["per_stage"]["iteration_time"] <= data["iteration_time"] and data["per_stage"]["stages"]
    f.write_text(f.read_text().replace("per_stage: true", "per_stage: 3"))
    for command in (["plan", str(f)], ["run", str(f), "--no-progress", "-o", str(tmp_path / "out")]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert "solve.options.per_stage" in err and len(err.splitlines()) == 1


# ---- no runnable configuration fits: the per-stage search still answers -------------------------------------
def test_per_stage_plan_is_the_answer_when_no_runnable_configuration_fits(monkeypatch, capsys):
    # the runnable search finding nothing (its candidates emptied) must not end the planner: with per_stage the
    # per-stage search runs and its plan, marked not runnable, is the pick
    import pipesim.placement.plan.megatron_plan as mp

    expected, _, _ = search_per_stage(TIGHT, NODE, 32)
    monkeypatch.setattr(mp, "candidates", lambda *a, **k: iter(()))
    with pytest.raises(InfeasibleError, match=r"no configuration of 4 layers fits .* \(0 tried\)$"):
        plan_megatron(TIGHT, NODE, 32)
    plan = plan_megatron(TIGHT, NODE, 32, per_stage=True)
    assert plan.fitting == 0 and plan.best is plan.per_stage
    assert plan.iteration_time == expected.iteration_time and plan.best.fits and not plan.best.runnable
    assert plan.notes[0].startswith("no configuration Megatron-Core can run fits")
    data = plan.to_dict()
    assert data["runnable"] is False and data["per_stage"]["gain"] == 0
    assert [s["t"] for s in data["stages"]] == list(expected.stage_tp)
    assert [s["d"] for s in data["stages"]] == list(expected.stage_dp)
    assert [s["recompute"] for s in data["stages"]] == list(expected.stage_recompute)
    # the CLI shows it (model file: TIGHT's parameters)
    monkeypatch.setattr("pipesim.workloads.llms.load_llm", lambda _path: TIGHT)
    assert main(["plan", "tight", "--hardware", "dgx-h100x16", "--nodes", "1", "--gbs", "32", "--per-stage"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "no configuration Megatron-Core can run fits; the plan above" in out and "NOT runnable" in out


def test_per_stage_infeasible_is_one_line_naming_both_searches(capsys, tmp_path):
    f = tmp_path / "huge.yaml"      # two layers of width 65,536: no plan of any kind fits 8 H100s
    f.write_text("model: {generator: transformer, params: {layers: 2, hidden: 65536, heads: 512, seq: 4096, "
                 "vocab: 32000, decoder: true}}\n")
    assert main(["plan", str(f), "--hardware", "dgx-h100x16", "--nodes", "1", "--gbs", "8", "--per-stage"]) == 3  # infeasible (EXIT_CODES)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no configuration of 2 layers fits the 8 GPUs' memory" in err
    assert "nor does any plan whose stages take their own degrees and recomputation" in err


def test_run_of_a_scenario_says_when_no_runnable_configuration_fits(monkeypatch, tmp_path, capsys):
    import pipesim.placement.plan.megatron_plan as mp

    monkeypatch.setattr(mp, "candidates", lambda *a, **k: iter(()))
    f = tmp_path / "s.yaml"
    f.write_text("model: {generator: transformer, params: {preset: llama3.1-8b}}\nhardware: {cluster: dgx-h100x8}\n"
                 "solve: {method: plan, options: {objective: megatron, gbs: 32, per_stage: true}}\n")
    assert main(["run", str(f), "--no-progress", "-o", str(tmp_path / "out")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "note: no configuration Megatron-Core can run fits" in out
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["plan"]["fitting"] == 0 and result["plan"]["notes"][0].startswith("no configuration Megatron-Core")
