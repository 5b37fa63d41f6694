"""Expert splits scored by the evaluator equal an independent re-derivation.

The oracle below follows the paper's split scorer literally (its code lumps
every CPU node into one group, which agrees with ours for one CPU core): group
loads from original nodes, communication per original source node, charged once
to its own group and once to each other group it feeds.
"""

import json
from collections import defaultdict

import pytest

from pipesim.placement import read_paper_workload, read_split
from pipesim.placement.evaluate import evaluate

PAIRS = [
    ("bert24_inference", "bert24_inference"),
    ("bert24_training", "bert24_training"),
    ("gnmt_inference", "gnmt_inference"),
    ("gnmt_training", "gnmt_training"),
    ("inceptionv3_inference", "inceptionv3_inference"),
    ("inceptionv3_training", "inceptionv3_inference"),
    ("resnet50_inference", "resnet50_inference"),
    ("resnet50_training", "resnet50_inference"),
]


def paper_style_max_load(workload_path, split_path):
    w = json.loads(workload_path.read_text())
    s = json.loads(split_path.read_text())
    group = {v: 0 for cpu in s["cpus"] for v in cpu["nodes"]}
    for i, fpga in enumerate(s["fpgas"], start=1):
        group.update({v: i for v in fpga["nodes"]})
    color = {n["id"]: n["colorClass"] for n in w["nodes"]}
    by_color = defaultdict(set)
    for v in group:
        by_color[color[v]].add(group[v])
    for n in w["nodes"]:
        if n["id"] not in group:
            (group[n["id"]],) = by_color[color[n["id"]]]
    load = defaultdict(float)
    for n in w["nodes"]:
        load[group[n["id"]]] += n["cpuLatency"] if group[n["id"]] == 0 else n["fpgaLatency"]
    cost, feeds = {}, defaultdict(set)
    for e in w["edges"]:
        cost[e["sourceId"]] = e["cost"]
        if group[e["sourceId"]] != group[e["destId"]]:
            feeds[e["sourceId"]].add(group[e["destId"]])
    for u, groups in feeds.items():
        for g in groups | {group[u]}:
            if g != 0:
                load[g] += cost[u]
    return max(load.values())


@pytest.mark.parametrize("workload, split", PAIRS)
def test_expert_split_max_load(shared_workloads, workload, split):
    wpath = shared_workloads / "throughput/LayerGraphs" / f"{workload}.json"
    spath = shared_workloads / "expert-splits" / f"{split}_expert.json"
    w = read_paper_workload(wpath)
    ev = evaluate(w.graph, w.devices, read_split(spath))
    assert ev.feasible, ev.violations
    assert ev.max_load == pytest.approx(paper_style_max_load(wpath, spath), rel=1e-12)
