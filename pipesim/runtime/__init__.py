"""Real runs: costs measured with ONNX Runtime, and a split executed as a pipeline of processes.

* :mod:`pipesim.runtime.session` — ONNX Runtime sessions as pipesim runs them
  (one thread, ONNX Runtime's graph optimisations on, as deployed, or off
  with ``optimize=False``), pinning, random inputs;
* :mod:`pipesim.runtime.channel` — shared-memory rings that move tensors
  between processes without pickling;
* :mod:`pipesim.runtime.profile` — per-node median times (an optimised
  graph's fused nodes shared back among the imported nodes) and the measured
  cost of handing a tensor to the next stage process, as a workload;
* :mod:`pipesim.runtime.calibrate` — a CPU device fitted to profiles;
* :mod:`pipesim.runtime.pipeline` — one sub-model and one pinned process per
  stage, microbatches streamed through the rings, measured beside the
  prediction and the simulation.

ONNX Runtime is an optional dependency (``pip install 'pipesim[onnx]'``);
importing a module that needs it without it raises :class:`~pipesim.errors.MissingExtraError`
saying so.
"""
