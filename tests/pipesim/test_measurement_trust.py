"""Honest measurement on a busy or drifting machine (issue 22, item 6): a verdict, never a silent correction."""

import math

import pytest

from pipesim.runtime.trust import LIMITS, Conditions

pytest.importorskip("onnxruntime")


def _quiet(**kw):
    base = dict(cores=2, load_before=0.1, load_after=0.2, reference_before=(1e-3, 1e-3),
                reference_after=(1.01e-3, 1.0e-3), steal=0.0)
    base.update(kw)
    return Conditions(**base)


def test_a_quiet_machine_is_trusted_and_each_kind_of_trouble_is_named():
    assert _quiet().trusted and _quiet().verdict().startswith("measurement trusted")
    contended = _quiet(reference_after=(2e-3, 1e-3))  # the wall clock doubled, the CPU time did not
    assert not contended.trusted and "50% of its core" in contended.verdict()
    drifted = _quiet(reference_after=(1.3e-3, 1.3e-3))  # the same kernel took 30% more CPU: clock or thermal drift
    assert not drifted.trusted and "drifted +30%" in drifted.verdict()
    stolen = _quiet(steal=0.05)
    assert "stole 5.0%" in stolen.verdict()
    loaded = _quiet(load_after=3.3)
    assert "load average 3.3 on 2 usable cores" in loaded.verdict()
    unknown = _quiet(steal=math.nan, load_before=math.nan, load_after=math.nan)
    assert unknown.trusted  # what cannot be read is not held against the measurement
    assert set(LIMITS) == {"core_share", "drift", "steal", "load_per_core"}


def test_a_profile_carries_its_conditions_and_is_never_rescaled_to_fit_the_run(tmp_path):
    import json

    from pipesim.runtime.profile import profile_model, profile_to_workload
    from pipesim.workloads.onnx_models import mlp_onnx

    model = mlp_onnx(layers=2, width=32)
    profile, _ = profile_model(model, runs=5, warmup=1, optimize=False)
    c = profile.conditions
    assert c is not None and c.reference_before[1] > 0 and c.reference_after[1] > 0
    assert isinstance(c.trusted, bool) and c.problems() == [] or not c.trusted
    # the only correction is the profiler's per-node bookkeeping, measured on a probe and reported
    raw, _ = profile_model(model, runs=5, warmup=1, optimize=False, subtract_profiler=False, check_conditions=False)
    assert raw.profiler_overhead == 0.0 and raw.conditions is None
    assert 0.0 <= profile.profiler_overhead < 50e-6
    # what the run and the node sum disagree on beyond it is reported, not spread over the nodes
    assert profile.profiler_excess == pytest.approx(profile.node_sum - profile.run_cpu)
    path = tmp_path / "w.json"
    profile_to_workload(model, path, runs=3, measure=False)
    section = json.loads(path.read_text())["profile"]
    assert {"conditions", "profiler_overhead_us", "profiler_excess_ms"} <= set(section)
    assert {"trusted", "problems", "reference_before", "reference_after", "steal"} <= set(section["conditions"])
