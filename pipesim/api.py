"""pipesim's Python API: load, solve, evaluate, simulate and run scenarios, workload first.

Every function here is re-exported by :mod:`pipesim` (``pipesim.solve``,
``pipesim.simulation``, …); each takes the workload first and returns one
result type with ``to_dict()``.  The command line is a thin layer over these
functions.  All errors are :class:`~pipesim.errors.PipesimError`.

Examples
--------
A two-layer chain on two accelerators, solved, evaluated and simulated:

>>> import pipesim
>>> from pipesim.placement import Edge, Graph, Node, Workload, paper_devices
>>> nodes = [Node(1, {"accelerator": 2.0, "cpu": 20.0}, memory=1.0),
...          Node(2, {"accelerator": 1.0, "cpu": 10.0}, memory=1.0)]
>>> w = Workload(Graph(nodes, [Edge(1, 2)]), paper_devices(2, 0, 100.0))
>>> r = pipesim.solve(w, method="dp")
>>> r.status, r.max_load
('optimal', 2.0)
>>> pipesim.evaluate(w, r.split).max_load
2.0
>>> s = pipesim.simulate(w, r.split, microbatches=50)
>>> round(s.time_per_sample, 6)
2.0
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipesim.errors import InputError, SplitError
from pipesim.placement.evaluate import SplitEvaluation
from pipesim.placement.evaluate import evaluate as _evaluate
from pipesim.placement.formats import load_json, read_split, write_split
from pipesim.placement.methods import LATENCY_METHODS, Progress, get_method
from pipesim.placement.result import FEASIBLE, PlacementResult
from pipesim.placement.split import Split
from pipesim.placement.workload import Workload
from pipesim.workloads.io import load_workload

__all__ = [
    "estimate",
    "evaluate",
    "latency",
    "load_planning_workload",
    "load_scenario",
    "load_split",
    "load_workload",
    "plan_megatron",
    "run_scenario",
    "save_split",
    "simulate",
    "solve",
]


def _as_split(split: Split | SplitEvaluation | PlacementResult) -> Split:
    if isinstance(split, PlacementResult):
        if split.evaluation is None:
            raise InputError(None, "split", f"the {split.method} result has no split ({split.status}: {split.message})")
        return split.evaluation.split
    if isinstance(split, SplitEvaluation):
        return split.split
    return split


def load_planning_workload(path: str | Path):
    """The workload :func:`plan` and :func:`evaluate_plan` take: Piper's JSON file, or a planning scenario.

    Parameters
    ----------
    path : str or Path
        Piper's input format (layers with TMPCs: ``maxDevices``,
        ``maxMemoryPerDevice``, ``bandwidth``, ``mbsInBatch``), or a scenario
        YAML whose generated model is planned on its ``hardware.cluster``
        (``solve.method: plan``).

    Returns
    -------
    PlanningWorkload

    Raises
    ------
    InputError
        The file is missing, not Piper's format, or a scenario that does not plan.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "w.json"
    >>> _ = path.write_text(json.dumps({"nodes": [{"id": 1}], "edges": []}))
    >>> load_planning_workload(path)
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: .../w.json: nodes: not Piper's format (nodes need TMPCs)
    """
    from pipesim.placement.plan.piper_format import read_piper_workload

    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        scenario = load_scenario(path)
        if not scenario.plans:
            raise InputError(path, "solve.method", "must be plan for a planning workload (a split's workload is "
                             "pipesim.load_workload's)")
        return scenario.planning_workload()
    return read_piper_workload(path)


def load_split(path: str | Path, workload: Workload) -> Split:
    """Read a split file and check it against ``workload``.

    Parameters
    ----------
    path : str or Path
        A split in the paper's format (``fpgas``, ``cpus``, and ``devices``
        for other classes).
    workload : Workload
        The workload the split places.

    Returns
    -------
    Split

    Raises
    ------
    InputError
        The file cannot be read, or the split does not fit the workload
        (unknown nodes or device classes); the message names the file.

    Examples
    --------
    >>> import pipesim
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0))   # two layers, two accelerators
    >>> import json, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "split.json"
    >>> _ = path.write_text(json.dumps({"fpgas": [{"nodes": [1]}, {"nodes": [2]}], "cpus": []}))
    >>> pipesim.load_split(path, w)
    Split(assignment={'accelerator': (frozenset({1}), frozenset({2})), 'cpu': ()})
    >>> _ = path.write_text(json.dumps({"fpgas": [{"nodes": [1, 2, 3]}]}))
    >>> pipesim.load_split(path, w)
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: /.../split.json: node 3 in the split is not in the graph
    """
    split = read_split(Path(path), load_json(path))
    try:
        _evaluate(workload.graph, workload.devices, split)
    except SplitError as exc:
        raise InputError(path, None, str(exc)) from None
    return split


def save_split(split: Split | SplitEvaluation | PlacementResult, path: str | Path) -> None:
    """Write ``split`` in the paper's split format (with loads when given an evaluation or a result).

    Missing folders are created; the file reads back with :func:`load_split`.

    Parameters
    ----------
    split : Split, SplitEvaluation or PlacementResult
    path : str or Path

    Raises
    ------
    InputError
        The file cannot be written, or the result has no split.

    Examples
    --------
    >>> import pipesim
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0))   # two layers, two accelerators
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "out" / "split.json"
    >>> r = pipesim.solve(w)
    >>> pipesim.save_split(r, path)
    >>> pipesim.load_split(path, w)   # an empty "cpus" section reads back as no CPU devices
    Split(assignment={'accelerator': (frozenset({1}), frozenset({2})), 'cpu': ()})
    """
    if isinstance(split, PlacementResult):
        if split.evaluation is None:
            raise InputError(None, "split", f"the {split.method} result has no split ({split.status})")
        split = split.evaluation
    write_split(path, split)


def evaluate(workload: Workload, split: Split | SplitEvaluation | PlacementResult) -> SplitEvaluation:
    """The one cost model: per-device compute, transfers, memory and load, and the max-load.

    Parameters
    ----------
    workload : Workload
    split : Split, SplitEvaluation or PlacementResult

    Returns
    -------
    SplitEvaluation
        ``devices`` (one :class:`~pipesim.placement.evaluate.DeviceLoad`
        each), ``max_load`` (time per sample), ``violations``,
        ``contiguous``.

    Raises
    ------
    SplitError
        The split names unknown nodes or device classes.

    Examples
    --------
    >>> import pipesim
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0))   # two layers, two accelerators
    >>> from pipesim.placement import Split
    >>> e = pipesim.evaluate(w, Split.from_lists({"accelerator": [[1, 2]]}))
    >>> e.max_load, e.feasible, [d.name for d in e.devices]
    (3.0, True, ['accelerator[0]'])
    """
    return _evaluate(workload.graph, workload.devices, _as_split(split))


def solve(workload: Workload, method: str = "dp", *, progress: Progress | bool | None = None,
          **options: Any) -> PlacementResult:
    """Place ``workload`` with ``method``; one call shape for every method.

    Parameters
    ----------
    workload : Workload
    method : str
        ``dp`` (optimal contiguous), ``ip``, ``ip_noncontiguous``,
        ``pipedream``, ``local_search``, ``partitioner``, ``single`` or
        ``expert`` (see :data:`pipesim.placement.methods.METHODS`).
    progress : callable or bool, optional
        ``progress(stage, done, total)`` for the DP; ``True`` streams a
        MILP solver's log to stderr.
    **options
        The method's options (``merge``, ``ideal_limit``, ``time_limit``,
        ``gap``, ``seed``, ``restarts``, ``split``, …), checked by the
        registry.

    Returns
    -------
    PlacementResult
        ``split``, ``max_load``, ``status`` (``optimal``, ``feasible``,
        ``time_limit``, ``infeasible``), ``bound``, ``gap``, ``to_dict()``.

    Raises
    ------
    InputError
        An unknown method or option, or a bad option value.
    ResourceLimitError
        The DP would need more ideals than ``ideal_limit``.

    Examples
    --------
    >>> import pipesim
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0))   # two layers, two accelerators
    >>> r = pipesim.solve(w, method="dp", merge="none")
    >>> r.status, r.max_load, r.bound
    ('optimal', 2.0, 2.0)
    >>> pipesim.solve(w, method="single").max_load
    3.0
    >>> pipesim.solve(w, method="local_search", restarts=2, seed=0).status
    'feasible'
    """
    return get_method(method)(workload, progress=progress, **options)


def latency(workload: Workload, method: str = "ip", split: Split | SplitEvaluation | PlacementResult | None = None,
            **options: Any):
    """The time for one sample through an inference graph (docs/model.md §4.4).

    Parameters
    ----------
    workload : Workload
        An inference graph (no backward nodes).
    method : {"ip", "greedy"}
        The latency IP (options ``q``, ``solver``, ``time_limit``, ``gap``,
        ``warm_start``, ``threads``) or the paper's greedy.
    split : optional
        Score this split instead of solving.

    Returns
    -------
    LatencyResult
        ``latency``, ``status``, ``bound``, ``gap``, ``schedule`` (pieces).

    Raises
    ------
    InputError
        A training graph, an unknown method or option, or options given
        together with a split.

    Examples
    --------
    >>> import pipesim
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0))   # two layers, two accelerators
    >>> pipesim.latency(w, method="greedy").latency
    3.0
    >>> from pipesim.placement import Split
    >>> pipesim.latency(w, split=Split.from_lists({"accelerator": [[1], [2]]})).latency
    3.0
    """
    from pipesim.placement.latency import LatencyResult, latency_of_split

    if split is not None:
        if options:
            raise InputError(None, sorted(options)[0], "not an option when a split is given")
        began = time.perf_counter()
        schedule = latency_of_split(workload, _as_split(split))
        return LatencyResult("split", FEASIBLE, schedule, seconds=time.perf_counter() - began)
    return get_method(method, LATENCY_METHODS)(workload, **options)


def simulate(workload: Workload, split: Split | SplitEvaluation | PlacementResult, *, schedule: str | None = None,
             microbatches: int | None = None, comm: str = "paper", **options: Any):
    """Run ``split`` on a stream of microbatches in a discrete-event simulation (SimPy).

    Parameters
    ----------
    workload : Workload
    split : Split, SplitEvaluation or PlacementResult
    schedule : str, optional
        A pipeline schedule (default: ``1f1b`` for training graphs,
        ``stream`` for inference); see :data:`pipesim.simulation.SCHEDULES`.
    microbatches : int, optional
        How many microbatches to run (default: enough to settle).
    comm : {"paper", "overlap"}
        ``paper``: transfers occupy the device (the solver's model);
        ``overlap``: they run on links beside compute.
    **options
        ``minibatch``, ``in_flight``, ``links`` (see
        :func:`pipesim.simulation.simulate`).

    Returns
    -------
    SimulationResult
        ``time_per_sample`` (simulated), ``predicted_time_per_sample`` (the
        evaluator's max-load), ``difference``, per-device statistics,
        ``to_dict()``.

    Raises
    ------
    InputError
        An unknown schedule or communication mode, a training schedule for
        an inference graph, or a count below 1.

    Examples
    --------
    >>> import pipesim
    >>> from pipesim.placement.examples import chain
    >>> w = chain((2.0, 1.0))   # two layers, two accelerators
    >>> s = pipesim.simulate(w, pipesim.solve(w), microbatches=20)
    >>> s.schedule, s.predicted_time_per_sample, round(s.time_per_sample, 9)
    ('stream', 2.0, 2.0)
    """
    from pipesim.simulation import simulate as _simulate

    return _simulate(workload, _as_split(split), schedule=schedule, microbatches=microbatches, comm=comm, **options)


def load_scenario(path: str | Path, overrides: Iterable[str | tuple[str, Any]] = ()):
    """Read and validate a scenario file (see :func:`pipesim.scenario.load_scenario`).

    Parameters
    ----------
    path : str or Path
        A YAML scenario (its format: :mod:`pipesim.scenario`).
    overrides : iterable
        ``"PATH=VALUE"`` texts (as ``--set`` takes them) or ``(path, value)``
        pairs, applied before validation.

    Returns
    -------
    Scenario
        Validated; :func:`run_scenario` runs it.

    Raises
    ------
    ScenarioError
        Every problem of the file at once (an :class:`~pipesim.errors.InputError`).

    Examples
    --------
    >>> import pipesim, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "tiny.yaml"
    >>> _ = path.write_text("model: {generator: transformer, params: {layers: 2, hidden: 64, heads: 4, seq: 16}}\\n"
    ...                     "hardware: {preset: a100x8}\\n")
    >>> scenario = pipesim.load_scenario(path, overrides=["solve.method=pipedream"])
    >>> scenario.name, scenario.method
    ('tiny', 'pipedream')
    """
    from pipesim.scenario import load_scenario as _load

    return _load(path, overrides)


def run_scenario(scenario, out_dir: str | Path | None = None, *, report: str | Path | None = None,
                 progress: Any = None):
    """Build, solve, evaluate and simulate a scenario; with ``out_dir``, write its artefacts there.

    Parameters
    ----------
    scenario : Scenario, str or Path
        A scenario (from :func:`load_scenario`) or the path of one.
    out_dir : str or Path, optional
        Where to write ``result.json``, ``split.json``, ``workload.json``,
        ``trace.json``, ``gantt.png``, ``loads.png`` (as the scenario's
        ``output.artefacts`` asks).  ``None``: write nothing.
    report : str or Path, optional
        Also write the HTML report here.

    Returns
    -------
    Outcome or LLMOutcome
        ``workload``, ``result`` (the solver's), ``simulation``, ``summary()``,
        ``to_dict()``; ``files`` lists what was written.  An LLM scenario
        (``solve: {method: plan, options: {objective: megatron, gbs: G}}``,
        given by its path) returns :class:`pipesim.llm_scenario.LLMOutcome`:
        ``plan`` (docs/model.md §11.9), ``simulation`` (§11.10), ``summary()``,
        ``to_dict()`` (``result.json``'s content, as ``pipesim run`` writes it).
        A heterogeneous scenario (``model: {sailor: TRAINING_CONFIG.json}``,
        ``hardware: {cluster: …}``) returns
        :class:`pipesim.hetero_scenario.HeteroOutcome`: ``plan`` (§12.4),
        ``simulation`` (§12.6), ``summary()``, ``to_dict()``.

    Raises
    ------
    PipesimError
        The scenario is invalid, its method fails on purpose (e.g. too many
        ideals), or its simulation cannot run.

    Examples
    --------
    >>> import pipesim, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "tiny.yaml"
    >>> _ = path.write_text("model: {generator: transformer, params: {layers: 2, hidden: 64, heads: 4, seq: 16}}\\n"
    ...                     "hardware: {preset: a100x8}\\n"
    ...                     "simulate: {microbatches: 10}\\n")
    >>> outcome = pipesim.run_scenario(path)
    >>> outcome.result.status, outcome.files
    ('optimal', {})
    >>> sorted(pipesim.run_scenario(path, path.parent / "out").files)
    ['gantt', 'loads', 'report', 'result', 'split', 'trace', 'workload']
    """
    from pipesim.pipeline import execute

    if isinstance(scenario, (str, Path)):
        from pipesim.llm_scenario import llm_scenario_data, run_llm_scenario

        llm = llm_scenario_data(scenario)
        if llm is not None:   # an LLM scenario (objective megatron): plan and simulate as `pipesim run` does
            if report is not None:
                raise InputError(report, None, "LLM (objective: megatron) scenarios write result.json, no report")
            return run_llm_scenario(scenario, out_dir, data=llm, step=None)
        from pipesim.hetero_scenario import hetero_scenario_data, run_hetero_scenario

        hetero = hetero_scenario_data(scenario)
        if hetero is not None:   # a heterogeneous scenario (model: {sailor: …}): plan and simulate, as `pipesim run`
            if report is not None:
                raise InputError(report, None, "heterogeneous (model: sailor) scenarios write result.json, no report")
            return run_hetero_scenario(scenario, out_dir, data=hetero, step=None)
        scenario = load_scenario(scenario)
    outcome = execute(scenario, progress=progress)
    if out_dir is not None or report is not None:
        from pipesim.artefacts import write_artefacts

        outcome.files = write_artefacts(outcome, out_dir if out_dir is not None else scenario.output_dir, report)
    return outcome


def estimate(model, hardware, *, nodes: int | None = None, tp: int = 1, pp: int = 1, cp: int = 1, vp: int = 1,
             mbs: int = 1, gbs: int, precision: str = "bf16", recompute: str | None = None,
             sequence_parallel: bool | None = None, distributed_optimizer: bool = True, attention: str = "flash",
             tp_overlap: bool | None = None, dp_overlap: bool = True, grad_reduce_fp32: bool = False,
             dropout: float = 0.0, pp_overlap: bool | None = None):
    """Step time and memory of one Megatron-Core configuration of an LLM on a cluster (docs/model.md §11).

    Parameters
    ----------
    model : str, Path, dict or TransformerConfig
        A preset name (``llama3.1-70b``…, :data:`pipesim.workloads.llms.LLMS`), a YAML file with a
        ``model:`` section, such a mapping, or a config.
    hardware : str, Path or Cluster
        A cluster preset or YAML file (homogeneous).
    nodes : int, optional
        Resize the cluster to this many nodes.
    tp, pp, cp, vp, mbs, gbs : int
        Tensor, pipeline, context parallel degrees, virtual stages per pipeline rank, microbatch size,
        global batch (sequences).  ``d = GPUs / (tp·pp·cp)``.
    precision : {"bf16", "fp16", "fp8"}
    recompute : {"none", "selective", "full"} or None
        ``None``: the fastest that fits.
    sequence_parallel, distributed_optimizer, attention, tp_overlap, dp_overlap, grad_reduce_fp32, dropout, pp_overlap
        See :class:`pipesim.placement.plan.megatron.ParallelConfig`.

    Returns
    -------
    Estimate
        ``iteration_time``, ``memory_per_gpu``, ``fits``, ``breakdown``, ``to_dict()``.

    Examples
    --------
    >>> import pipesim
    >>> r = pipesim.estimate("llama3.1-70b", "dgx-h100x16", nodes=8, tp=4, pp=4, cp=2, vp=5, gbs=128)
    >>> r.dp, r.microbatches, r.fits
    (2, 64, True)
    """
    from pipesim.hardware.clusters import Cluster, load_cluster
    from pipesim.placement.plan.megatron import ParallelConfig
    from pipesim.placement.plan.megatron import estimate as _estimate
    from pipesim.placement.plan.megatron import with_nodes
    from pipesim.workloads.llms import load_llm

    config = load_llm(model)
    cluster = hardware if isinstance(hardware, Cluster) else load_cluster(hardware)
    if nodes is not None:
        cluster = with_nodes(cluster, nodes)
    parallel = ParallelConfig(tp=tp, pp=pp, cp=cp, vp=vp, mbs=mbs, gbs=gbs, precision=precision, recompute=recompute,
                              sequence_parallel=sequence_parallel, distributed_optimizer=distributed_optimizer,
                              attention=attention, tp_overlap=tp_overlap, dp_overlap=dp_overlap,
                              grad_reduce_fp32=grad_reduce_fp32, dropout=dropout, pp_overlap=pp_overlap)
    return _estimate(config, cluster, parallel)

def plan_megatron(model, hardware, *, nodes: int | None = None, gbs: int, precision: str = "bf16",
                  per_stage: bool = False, max_mbs: int = 16, per_stage_budget: float = 60.0):
    """The fastest Megatron-Core configuration of an LLM that fits its cluster (docs/model.md §11.9).

    Searches t, p, c, v, d, the microbatch size, recomputation, sequence parallelism and the distributed
    optimizer, exhaustively, by the model of :func:`estimate`: the pick is optimal for that model.

    Parameters
    ----------
    model : str, Path, dict or TransformerConfig
        As :func:`estimate` takes it (a preset name such as ``llama3.1-70b``, a YAML file, a mapping).
    hardware : str, Path or Cluster
        A homogeneous cluster preset or YAML file.
    nodes : int, optional
        Resize the cluster to this many nodes.
    gbs : int
        The global batch in sequences (the user's, never changed).
    precision : {"bf16", "fp16", "fp8"}
    per_stage : bool
        Also find the best plan whose stages choose their own tensor- and data-parallel degree and
        recomputation (``.per_stage``, an :class:`Estimate` with ``stage_tp``, ``stage_dp``, ``stage_mbs``,
        ``stage_recompute``; ``.runnable`` is False when Megatron-Core cannot run it), docs/model.md §11.9.
        When no runnable configuration fits, that plan is ``.best`` (``.fitting == 0``, a note says so).
    max_mbs : int
        Largest microbatch size tried.
    per_stage_budget : float
        Seconds the per-stage search may take; it stops there with a note, at the best plan so far.

    Returns
    -------
    MegatronPlan
        ``.best`` (an :class:`Estimate`), ``.iteration_time``, ``.memory_per_gpu``, ``.stages()``, ``to_dict()``.

    Raises
    ------
    InfeasibleError
        No configuration fits in memory (with ``per_stage``: nor any per-stage plan).

    Examples
    --------
    >>> import pipesim
    >>> p = pipesim.plan_megatron("llama3.1-8b", "dgx-h100x16", nodes=1, gbs=128)
    >>> p.best.fits, p.best.gpus
    (True, 8)
    """
    from pipesim.hardware.clusters import Cluster, load_cluster
    from pipesim.placement.plan.megatron import with_nodes
    from pipesim.placement.plan.megatron_plan import plan_megatron as _plan
    from pipesim.workloads.llms import load_llm

    cluster = hardware if isinstance(hardware, Cluster) else load_cluster(hardware)
    if nodes is not None:
        cluster = with_nodes(cluster, nodes)
    return _plan(load_llm(model), cluster, gbs, precision, per_stage=per_stage, max_mbs=max_mbs,
                 per_stage_budget=per_stage_budget)

