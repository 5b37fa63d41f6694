"""Real runs: costs measured with ONNX Runtime, and a split executed as a pipeline of processes.

* :mod:`pipesim.runtime.session` — ONNX Runtime sessions as pipesim runs them
  (one thread, graph optimisations off so node ``i`` runs as node ``i``),
  pinning, random inputs;
* :mod:`pipesim.runtime.channel` — shared-memory rings that move tensors
  between processes without pickling;
* :mod:`pipesim.runtime.profile` — per-node median times and the measured
  cost of handing a tensor to the next stage process, as a workload;
* :mod:`pipesim.runtime.calibrate` — a CPU device fitted to profiles;
* :mod:`pipesim.runtime.pipeline` — one sub-model and one pinned process per
  stage, microbatches streamed through the rings, measured beside the
  prediction and the simulation.

ONNX Runtime is an optional dependency (``pip install 'pipesim[onnx]'``);
importing a module that needs it without it raises :class:`~pipesim.errors.MissingExtraError`
saying so.
"""
