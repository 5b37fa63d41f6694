"""Real runs: profiling with ONNX Runtime, cutting a model into stage sub-models, executing a pipeline.

No timing is asserted here (timings live in benchmarks/fidelity.py): these tests check that the
machinery is right — every node profiled, sub-models that compute what the whole model computes,
a pipeline whose outputs equal the unsplit model's, a calibration that recovers known rates.
"""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

pytest.importorskip("onnxruntime")

from pipesim.placement.split import Split  # noqa: E402
from pipesim.runtime.calibrate import ProfiledNode, calibrate, error_percentiles, report  # noqa: E402
from pipesim.runtime.pipeline import cut_stages, execute, stage_node_sets  # noqa: E402
from pipesim.runtime.profile import Handoff, profile_model, profiled_workload  # noqa: E402
from pipesim.runtime.session import make_session, random_inputs  # noqa: E402
from pipesim.workloads.onnx_import import import_onnx, prepare_onnx  # noqa: E402
from pipesim.workloads.onnx_models import encoder_onnx, resnet_onnx  # noqa: E402


def _small_encoder():
    return encoder_onnx(layers=2, hidden=16, heads=2, seq=4, vocab=32, tied_head=True)


def _run_stages(stages, feeds):
    """Run the stage sub-models one after the other in this process, as the pipeline passes tensors."""
    env = dict(feeds)
    for stage in stages:
        session = make_session(stage.model)
        produced = session.run(stage.computes, {x: env[x] for x in stage.reads})
        env.update(zip(stage.computes, produced))
        env = {s.name: env[s.name] for s in stage.outputs}  # only the boundary flows on
    return env


@pytest.mark.slow
@pytest.mark.parametrize("cuts", [[20], [7, 40], [1, 2, 3]])
def test_stage_sub_models_compute_what_the_whole_model_computes(cuts):
    model = prepare_onnx(_small_encoder(), batch=2)
    n = len(model.graph.node)
    bounds = [0, *cuts, n]
    stages = cut_stages(model, [(f"cpu[{k}]", list(range(a, b))) for k, (a, b) in enumerate(zip(bounds, bounds[1:]))])
    for stage in stages:
        onnx.checker.check_model(stage.model)
    feeds = random_inputs(model)
    want = make_session(model).run(None, feeds)
    got = _run_stages(stages, feeds)
    for out, w in zip(model.graph.output, want):
        np.testing.assert_allclose(got[out.name], w, rtol=1e-5, atol=1e-5)


def test_profile_times_every_node_and_builds_a_cpu_workload():
    profile, model = profile_model(resnet_onnx(blocks=(1,), width=4, image=16, classes=3), batch=1, runs=2, warmup=1)
    assert len(profile.nodes) == len(model.graph.node)
    assert all(n.samples == 2 for n in profile.nodes)
    assert all(n.median > 0 for n in profile.nodes)
    profile.handoff = Handoff(overhead=1e-5, bandwidth=1e10, wakeup=0.0)
    ops = import_onnx(model, check=False)
    workload = profiled_workload(profile, ops)
    assert [dc.name for dc in workload.devices] == ["cpu"]
    first = workload.graph.nodes[0]
    assert first.time == {"cpu": pytest.approx(profile.nodes[0].median * 1e3)}
    assert first.transfer["cpu"] == pytest.approx((1e-5 + ops.ops[0].output_bytes / 1e10) * 1e3)


@pytest.mark.slow
def test_a_real_pipeline_reproduces_the_unsplit_outputs(tmp_path):
    model = prepare_onnx(_small_encoder(), batch=2)
    profile, _ = profile_model(model, batch=2, runs=1, warmup=0)
    profile.handoff = Handoff(overhead=1e-5, bandwidth=1e10, wakeup=0.0)
    profile.cores = [0, 1]
    workload = profiled_workload(profile, import_onnx(model, check=False))
    n = len(model.graph.node)
    split = Split.from_lists({"cpu": [set(range(n // 2, n)), set(range(n // 2))]})  # listed out of order
    assert [len(nodes) for _, nodes in stage_node_sets(workload, split)] == [n // 2, n - n // 2]
    result = execute(model, workload, split, microbatches=4, latency_probes=3, stage_dir=tmp_path)
    assert result.outputs_match and result.max_abs_difference <= 1e-5
    data = result.to_dict()
    for key in ("measured_time_per_sample", "predicted_time_per_sample", "simulated_time_per_sample"):
        assert data[key] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage0.onnx", "stage1.onnx"]
    assert len(data["stages"]) == 2 and all(s["measured_busy"] > 0 for s in data["stages"])
    # the run says whether its numbers can be trusted: CPU time beside wall time, contention and drift measured
    assert all(s["measured_busy_cpu"] > 0 for s in data["stages"])
    assert isinstance(data["trusted"], bool) and data["conditions"]["reference_after"][1] > 0


@pytest.mark.slow
def test_calibration_recovers_known_rates():
    rng = np.random.default_rng(0)
    truth = {"matmul": (80e9, 20e9), "elementwise": (50e9, 12e9)}
    nodes = []
    for i in range(60):
        cls = "matmul" if i % 2 else "elementwise"
        flops = float(rng.uniform(1e5, 1e8)) if cls == "matmul" else float(rng.uniform(1e3, 1e6))
        nbytes = float(rng.uniform(1e4, 1e7))
        r, m = truth[cls]
        t = 14e-6 + max(flops / r, nbytes / m)
        nodes.append(ProfiledNode(f"p{i % 2}", f"n{i}", cls, flops, nbytes, t, 10 * t))
    fit = calibrate(nodes)
    assert fit.overhead == pytest.approx(14e-6, rel=0.25)
    for cls, (r, m) in truth.items():
        assert fit.rates[cls][1] == pytest.approx(m, rel=0.25)
    assert fit.rates["matmul"][0] == pytest.approx(80e9, rel=0.25)
    summary = report(nodes)
    assert summary["before"]["p50"] == pytest.approx(0.1)
    assert summary["after"]["within_2x"] == 1.0 and "held_out" in summary
    device = fit.device("fitted")
    assert max(ce for ce, _ in device.class_efficiency.values()) == 1.0
    assert error_percentiles([2.0], [1.0])["p50"] == 2.0


@pytest.mark.slow
def test_profile_solve_execute_from_the_command_line(tmp_path):
    model_path = tmp_path / "enc.onnx"
    onnx.save(_small_encoder(), str(model_path))
    w, split = tmp_path / "w.json", tmp_path / "split.json"

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "pipesim", *map(str, args)], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("profile", model_path, "--batch", 2, "--runs", 2, "-o", w)
    profile = json.loads(w.read_text())["profile"]
    assert profile["batch"] == 2 and profile["handoff"]["bandwidth"] > 0
    cli("solve", w, "-o", split)
    out = json.loads(cli("execute", model_path, split, "--workload", w, "--microbatches", 3, "--json",
                         "--stages", tmp_path / "stages"))
    assert out["outputs_match"] and out["batch"] == 2
    assert {"measured_time_per_sample", "predicted_time_per_sample", "simulated_time_per_sample"} <= set(out)
    fitted = tmp_path / "cpu.yaml"
    cli("hardware", "calibrate", w, "-o", fitted)
    from pipesim.hardware.catalog import load_system

    assert load_system(fitted).groups[0].device.class_efficiency


@pytest.mark.slow
def test_bad_inputs_are_one_line_errors(tmp_path):
    junk = tmp_path / "w.json"
    junk.write_text("{}")
    done = subprocess.run([sys.executable, "-m", "pipesim", "hardware", "calibrate", str(junk), "-o",
                           str(tmp_path / "x.yaml")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "profile" in done.stderr and "Traceback" not in done.stderr


def test_the_bundled_example_model_is_what_its_script_writes():
    from pathlib import Path

    bundled = Path(__file__).parents[2] / "scenarios" / "examples" / "encoder-small.onnx"
    model = encoder_onnx(layers=2, hidden=64, heads=4, seq=32, vocab=256, seed=0)
    assert bundled.read_bytes() == model.SerializeToString()


@pytest.mark.slow
def test_execute_with_inputs_from_a_file(tmp_path):
    model = prepare_onnx(_small_encoder(), batch=2)
    profile, _ = profile_model(model, batch=2, runs=1, warmup=0)
    profile.handoff, profile.cores = Handoff(1e-5, 1e10, 0.0), [0, 1]
    workload = profiled_workload(profile, import_onnx(model, check=False))
    n = len(model.graph.node)
    feeds = random_inputs(model, seed=7)
    result = execute(model, workload, Split.from_lists({"cpu": [set(range(n // 3)), set(range(n // 3, n))]}),
                     microbatches=3, latency_probes=1, inputs=[feeds])
    assert result.outputs_match
