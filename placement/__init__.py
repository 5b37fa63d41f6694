"""Placement of DNN operator graphs on pipelines of devices.

The graph model, the paper's file formats, the one cost model (the evaluator)
and the solvers: the exact DP over ideals, MILPs and the paper's baselines.

The evaluator itself is :func:`pipesim.placement.evaluate.evaluate` (the
module, not re-exported here: a package attribute of the same name would hide
the module from tools that read the source, such as the API reference).
"""

from pipesim.placement.devices import ACCELERATOR, CPU, DeviceClass, paper_devices
from pipesim.placement.evaluate import (
    DeviceLoad,
    SplitEvaluation,
    is_contiguous,
)
from pipesim.placement.formats import (
    InputError,
    read_paper_workload,
    read_split,
    write_paper_workload,
    write_split,
)
from pipesim.placement.graph import Edge, Graph, GraphError, Node
from pipesim.placement.split import Split, SplitError, complete_split
from pipesim.placement.workload import Workload

__all__ = [
    "ACCELERATOR",
    "CPU",
    "DeviceClass",
    "DeviceLoad",
    "Edge",
    "Graph",
    "GraphError",
    "InputError",
    "Node",
    "Split",
    "SplitError",
    "SplitEvaluation",
    "Workload",
    "complete_split",
    "is_contiguous",
    "paper_devices",
    "read_paper_workload",
    "read_split",
    "write_paper_workload",
    "write_split",
]
