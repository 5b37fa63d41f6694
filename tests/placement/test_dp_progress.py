"""The DP reports progress through a callback and draws nothing itself (issue 11 item 5, issue 12)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipesim.placement import read_paper_workload
from pipesim.placement.dp.solve import solve_dp

PLACEMENT = Path(__file__).resolve().parents[2] / "placement"


def test_placement_never_imports_rich():
    for path in PLACEMENT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] == "rich" for name in names), f"{path} imports rich"


@pytest.mark.slow
def test_progress_callback_sees_both_stages_to_completion(shared_workloads):
    workload = read_paper_workload(shared_workloads / "throughput" / "LayerGraphs" / "gnmt_inference.json")
    calls: list[tuple[str, int, int]] = []
    result = solve_dp(workload, progress=lambda stage, done, total: calls.append((stage, done, total)))
    stages = [c[0] for c in calls]
    assert set(stages) == {"ideals", "dp"} and stages.index("dp") > max(i for i, s in enumerate(stages) if s == "ideals")
    for stage in ("ideals", "dp"):
        mine = [(done, total) for s, done, total in calls if s == stage]
        assert [d for d, _ in mine] == sorted(d for d, _ in mine)  # never goes back
        assert mine[-1][0] == mine[-1][1]  # ends complete
    assert calls[-1] == ("dp", result.stats["ideals"], result.stats["ideals"])


def test_rich_renderer_accepts_the_callback_protocol():
    from pipesim.commands.progress import progress_bar

    with progress_bar(enabled=True) as report:
        report("ideals", 1, 3)
        report("ideals", 3, 3)
        report("dp", 10, 10)
