"""Speed of the Megatron-Core planner (``pipesim plan --objective megatron``, docs/model.md §11.9).

Targets (issue 19): Llama 3.1 405B on 576 H100 in ≤ 30 s and on 16,384 H100
in ≤ 120 s on the development machine, memory ≤ 2 GB.  Prints, per case, the
configurations priced, the pick, the wall time and the process's peak
resident memory; then the same with ``per_stage=True`` (``pipesim plan
--per-stage``: stages choosing their own tensor- and data-parallel degree and
recomputation, docs/model.md §11.9), its extra time and its gain over the
runnable pick, under the same targets.  The machine is shared: times are
indicative.

    python -m benchmarks.llm_plan
"""

from __future__ import annotations

import resource
import sys
import time
from itertools import groupby

CASES = (("llama3.1-405b", 72, 2048, 30.0), ("llama3.1-405b", 2048, 2048, 120.0))


def main() -> int:
    from pipesim.hardware.clusters import load_cluster
    from pipesim.placement.plan.megatron import with_nodes
    from pipesim.placement.plan.megatron_plan import plan_megatron
    from pipesim.workloads.llms import preset

    ok = True
    for name, nodes, gbs, target in CASES:
        cluster = with_nodes(load_cluster("dgx-h100x16"), nodes)
        start = time.perf_counter()
        plan = plan_megatron(preset(name), cluster, gbs)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        c = plan.best.to_dict()["config"]
        print(f"{name} on {cluster.device_count} H100, gbs {gbs}: {plan.searched} configurations, {plan.fitting} fit; "
              f"pick t={c['tp']} p={c['pp']} c={c['cp']} v={c['vp']} d={c['dp']} mbs={c['mbs']} "
              f"recompute={c['recompute']}: {plan.iteration_time:.2f} s/step, "
              f"{plan.memory_per_gpu / 2**30:.1f} GiB; planned in {seconds:.2f} s (target {target:.0f} s), "
              f"peak RSS {peak / 2**30:.2f} GiB")
        ok &= seconds <= target and peak <= 2 * 2**30
        start = time.perf_counter()
        plan = plan_megatron(preset(name), cluster, gbs, per_stage=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        ps = plan.per_stage
        runs = [(len(list(group)), key) for key, group in groupby(zip(ps.stage_tp, ps.stage_dp, ps.stage_recompute))]
        stages = ", ".join(f"{n}× {t}/{d}/{r}" for n, (t, d, r) in runs)
        print(f"  --per-stage: {plan.per_stage_searched} pipeline settings in {plan.per_stage_seconds:.2f} s "
              f"(whole plan {seconds:.2f} s, target {target:.0f} s); per-stage plan {ps.iteration_time:.2f} s/step, "
              f"gain {plan.iteration_time / ps.iteration_time - 1:+.3%}, "
              f"{'runnable' if ps.runnable else 'not runnable by Megatron-Core'}; stages t/d/recompute: {stages}; "
              f"peak RSS {peak / 2**30:.2f} GiB" + "".join(f"; {n}" for n in plan.notes))
        ok &= seconds <= target and peak <= 2 * 2**30
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
