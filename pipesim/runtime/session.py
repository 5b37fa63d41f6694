"""ONNX Runtime sessions as pipesim runs them.

Every measurement and every stage uses the same session settings, so that a
node's profiled time is the time it takes inside a stage:

* one intra-op and one inter-op thread, sequential execution (one stage is one
  core; the issue's measurements were made that way);
* graph optimisations **on** at ONNX Runtime's default level (``optimize=True``):
  the graph that is deployed is the graph that is timed.  Its fusions rename
  and merge nodes; :func:`pipesim.runtime.profile.attribute_fused` maps each
  optimised node's time back to the imported nodes it covers, so workload
  node ``i`` is still model node ``i``, and each stage's sub-model is
  optimised by its own session (a fusion never crosses a stage boundary in the
  split; it may in the whole model).  ``optimize=False`` runs the graph as
  imported, node for node (the profile then needs no mapping);
* the process pinned to one core (``os.sched_setaffinity``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from pipesim.errors import InputError, require_extra

__all__ = ["make_session", "ort", "pin_to_core", "random_inputs", "usable_cores"]


def ort():
    """The ``onnxruntime`` module, or a :class:`~pipesim.errors.MissingExtraError` telling how to install it."""
    onnxruntime = require_extra("onnxruntime", "onnx")
    onnxruntime.set_default_logger_severity(3)
    return onnxruntime


def usable_cores() -> list[int]:
    """The cores this process may run on, in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def pin_to_core(core: int | None) -> None:
    """Run the calling process on ``core`` only (no-op where affinity is unsupported)."""
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def make_session(model: onnx.ModelProto | bytes, *, threads: int = 1, profile_prefix: str | Path | None = None,
                 optimize: bool = True, optimized_path: str | Path | None = None):
    """An ONNX Runtime CPU session with pipesim's settings (see the module docstring).

    ``optimized_path``: where ONNX Runtime writes the optimised graph it runs
    (to map its nodes back to the model's).
    """
    rt = ort()
    options = rt.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (rt.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else rt.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
        # the weights go to a file beside it: only the graph is read back (and a model over 2 GB can be written)
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                         Path(optimized_path).name + ".data")
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # a waiting stage must not burn its core
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    data = model if isinstance(model, bytes) else model.SerializeToString()
    try:
        return rt.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime's own exceptions for models it cannot run
        raise InputError(None, "onnxruntime", str(exc).strip().splitlines()[0]) from None


def _numpy_dtype(elem_type: int) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def input_specs(model: onnx.ModelProto) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    """(name, static shape, dtype) of each graph input that is not an initializer."""
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for info in model.graph.input:
        if info.name in inits:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in info.type.tensor_type.shape.dim)
        specs.append((info.name, dims, _numpy_dtype(info.type.tensor_type.elem_type)))
    return specs


def random_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the model's (static) input shapes.

    Integer inputs (token ids) are drawn below the smallest first dimension of
    the float initializers read by a ``Gather`` on them (an embedding's
    vocabulary), else below 2, so lookups stay in range.
    """
    rng = np.random.default_rng(seed)
    inits = {t.name: t for t in model.graph.initializer}
    out = {}
    for name, shape, dtype in input_specs(model):
        if np.issubdtype(dtype, np.integer):
            tables = [inits[n.input[0]].dims[0] for n in model.graph.node
                      if n.op_type == "Gather" and len(n.input) > 1 and n.input[1] == name and n.input[0] in inits]
            out[name] = rng.integers(0, min(tables, default=2), size=shape).astype(dtype)
        elif dtype == np.bool_:
            out[name] = rng.random(shape) < 0.5
        else:
            out[name] = rng.standard_normal(shape).astype(dtype)
    return out
