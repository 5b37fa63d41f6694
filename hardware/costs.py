"""What an operator, a tensor transfer and a node's state cost on given hardware.

The formulas (all in SI units: seconds, bytes, FLOP):

* **Kernel time** (roofline with efficiency and launch overhead)::

      t = launch_overhead + max(F / (peak_flops[dtype] · compute_efficiency),
                                B / (memory_bandwidth · memory_efficiency))

  for a kernel of ``F`` FLOPs that moves ``B`` bytes to and from device
  memory.  A kernel with neither FLOPs nor bytes (a reshape, a view) costs
  nothing, launch included.  A device without a rate for ``dtype`` computes at
  its fp32 rate.
* **Transfer time** of a tensor of ``b`` bytes over a link::

      t = latency + b / bandwidth        (0 when b = 0: nothing is sent)

* **Node memory** for ``P`` parameters with model data type of ``e`` bytes::

      inference: P·e
      training:  P·(w + g + m + s·b) + k·A

  where the optimizer recipe (:data:`OPTIMIZERS`) gives ``w`` bytes per
  weight, ``g`` per gradient, ``m`` per fp32 master copy, ``s`` state
  tensors of ``b`` bytes each, and ``A`` is the bytes of activations stashed
  for one microbatch (the operators' output tensors at the graph's batch, which
  is the microbatch), kept for ``k`` microbatches in flight (1 by default;
  a 1F1B pipeline keeps up to its stage count on the first stage):

  ================  ====  ====  ====  =========  ===========================
  recipe            w     g     m     s × b      bytes/param (e = 2 / e = 4)
  ================  ====  ====  ====  =========  ===========================
  ``mixed-adam``    2     2     4     2 × 4      16 (default for training)
  ``fp32-adam``     4     4     0     2 × 4      16
  ``sgd-momentum``  4     4     0     1 × 4      12
  ``adam``          e     e     0     2 × e      8 / 16 (the paper's: all at the model's type)
  ``momentum``      e     e     0     1 × e      6 / 12
  ``sgd``           e     e     0     0          4 / 8
  ================  ====  ====  ====  =========  ===========================

  Mixed precision (Micikevicius et al., ICLR 2018) keeps fp16/bf16 weights
  and gradients, an fp32 master copy and fp32 Adam moments: 16 bytes per
  parameter (ZeRO §3.1's "2 + 2 + 12").
* **Backward pass**: about twice the forward FLOPs and bytes (gradients with
  respect to both inputs and weights): :data:`BACKWARD_FACTOR`.
* **Optimizer update** of ``P`` parameters: ``OPTIMIZER_FLOPS[kind]·P``
  FLOPs; it reads weights, gradients, master copy and states and writes
  weights, master copy and states: ``(2w + g + 2m + 2·s·b)·P`` bytes.

References: Williams, Waterman, Patterson, "Roofline", CACM 2009 (the kernel
model); docs/model.md §2.3 (transfers through host memory); Rajbhandari et al., "ZeRO",
SC 2020 §3.1 (weights + gradients + optimizer states).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipesim.hardware.devices import Device, Link, dtype_bytes
from pipesim.hardware.units import HardwareError

__all__ = [
    "BACKWARD_FACTOR",
    "DEFAULT_TRAINING_OPTIMIZER",
    "OPTIMIZERS",
    "OPTIMIZER_FLOPS",
    "OPTIMIZER_STATES",
    "OptimizerRecipe",
    "kernel_parts",
    "kernel_time",
    "node_memory",
    "optimizer_bytes",
    "optimizer_flops",
    "optimizer_recipe",
    "optimizer_states",
    "roofline_time",
    "training_bytes_per_param",
    "transfer_time",
]

#: Backward FLOPs (and bytes) per forward FLOP (byte).
BACKWARD_FACTOR = 2.0


@dataclass(frozen=True)
class OptimizerRecipe:
    """Bytes per parameter a training recipe keeps (``None``: the model's data type size)."""

    weight: int | None
    grad: int | None
    master: int
    states: int
    state: int | None
    kind: str  # the update rule: "adam", "momentum" or "sgd"


#: Training recipes (see the module docstring's table).
OPTIMIZERS = {
    "mixed-adam": OptimizerRecipe(2, 2, 4, 2, 4, "adam"),
    "fp32-adam": OptimizerRecipe(4, 4, 0, 2, 4, "adam"),
    "sgd-momentum": OptimizerRecipe(4, 4, 0, 1, 4, "momentum"),
    "adam": OptimizerRecipe(None, None, 0, 2, None, "adam"),
    "momentum": OptimizerRecipe(None, None, 0, 1, None, "momentum"),
    "sgd": OptimizerRecipe(None, None, 0, 0, None, "sgd"),
}

#: The recipe training uses unless told otherwise: mixed-precision Adam, as large models train.
DEFAULT_TRAINING_OPTIMIZER = "mixed-adam"

#: Per-parameter state tensors kept by each optimizer.
OPTIMIZER_STATES = {name: r.states for name, r in OPTIMIZERS.items()}

#: FLOPs per parameter of one update step (Adam: two moment updates, bias
#: corrections, square root, division, scaled step).
OPTIMIZER_FLOPS = {"sgd": 2, "momentum": 4, "adam": 12}


def optimizer_recipe(optimizer: str) -> OptimizerRecipe:
    """The recipe named ``optimizer``; :class:`HardwareError` naming the known ones otherwise."""
    if optimizer not in OPTIMIZERS:
        raise HardwareError("optimizer", f"unknown optimizer {optimizer!r} (known: {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[optimizer]


def training_bytes_per_param(dtype: str, optimizer: str = DEFAULT_TRAINING_OPTIMIZER) -> int:
    """``w + g + m + s·b`` of the module docstring.

    Examples
    --------
    >>> training_bytes_per_param("fp16", "mixed-adam"), training_bytes_per_param("fp32", "fp32-adam")
    (16, 16)
    >>> training_bytes_per_param("fp16", "adam"), training_bytes_per_param("fp32", "sgd-momentum")
    (8, 12)
    """
    r, e = optimizer_recipe(optimizer), dtype_bytes(dtype)
    return (r.weight or e) + (r.grad or e) + r.master + r.states * (r.state or e)


def kernel_time(flops: float, bytes_moved: float, device: Device, dtype: str, op_class: str | None = None) -> float:
    """Roofline time (seconds) of one kernel on ``device``.

    Parameters
    ----------
    flops : float
        FLOPs the kernel performs.
    bytes_moved : float
        Bytes it reads from and writes to device memory.
    device : Device
    dtype : str
        The data type of the arithmetic (``fp16``, ``fp32``…); a type the
        device has no rate for runs at its fp32 rate.
    op_class : str, optional
        The operator class (``matmul``, ``conv``, ``elementwise``…): selects
        the device's fitted efficiencies for that class, when it has them.

    Returns
    -------
    float
        ``launch_overhead + max(compute time, memory time)``; 0 for a kernel
        with neither FLOPs nor bytes.

    Raises
    ------
    HardwareError
        Negative FLOPs or bytes, or a data type the cost model does not
        know (:data:`~pipesim.hardware.devices.DTYPE_BYTES`).

    Examples
    --------
    >>> from pipesim.hardware.devices import Device
    >>> gpu = Device("toy", "accelerator", {"fp32": 1e12}, memory_bandwidth=1e11)
    >>> kernel_time(2e9, 1e8, gpu, "fp32")   # compute-bound: 2e9 / 1e12
    0.002
    >>> kernel_time(0, 0, gpu, "fp32")       # a view: free
    0.0
    """
    return roofline_time(*kernel_parts(flops, bytes_moved, device, dtype, op_class))


def kernel_parts(flops: float, bytes_moved: float, device: Device, dtype: str,
                 op_class: str | None = None) -> tuple[float, float, float]:
    """``(launch, compute, memory)`` seconds of one kernel: the roofline before its ``max``.

    Kept per node in generated workloads, so that a what-if edit of the
    compute rate or the memory bandwidth re-prices them exactly
    (:func:`roofline_time`).  All zero for a kernel with neither FLOPs nor bytes.

    >>> from pipesim.hardware.devices import Device
    >>> kernel_parts(2e9, 1e8, Device("toy", "accelerator", {"fp32": 1e12}, memory_bandwidth=1e11), "fp32")
    (0.0, 0.002, 0.001)
    """
    if flops < 0 or bytes_moved < 0:
        raise HardwareError("kernel", f"FLOPs and bytes must be non-negative, got {flops!r} and {bytes_moved!r}")
    if flops == 0 and bytes_moved == 0:
        return 0.0, 0.0, 0.0
    compute_eff, memory_eff = device.efficiencies(op_class)
    compute = flops / (device.peak(dtype) * compute_eff)
    memory = bytes_moved / (device.memory_bandwidth * memory_eff)
    return device.launch_overhead, compute, memory


def roofline_time(launch: float, compute: float, memory: float, compute_speed: float = 1.0,
                  memory_speed: float = 1.0) -> float:
    """``launch + max(compute / compute_speed, memory / memory_speed)``: the roofline, optionally sped up."""
    return launch + max(compute / compute_speed, memory / memory_speed)


def transfer_time(nbytes: float, link: Link | None) -> float:
    """Seconds to move ``nbytes`` over ``link`` (``None``: already in place, free).

    Parameters
    ----------
    nbytes : float
    link : Link or None

    Returns
    -------
    float
        ``link.latency + nbytes / link.bandwidth``; 0 without a link or bytes.

    Raises
    ------
    HardwareError
        ``nbytes`` is negative.

    Examples
    --------
    >>> from pipesim.hardware.devices import Link
    >>> round(transfer_time(1e6, Link("pcie", 1e10, latency=1e-5)), 9)
    0.00011
    >>> transfer_time(1e6, None)
    0.0
    """
    if nbytes < 0:
        raise HardwareError("transfer", f"bytes must be non-negative, got {nbytes!r}")
    if link is None or nbytes == 0:
        return 0.0
    return link.latency + nbytes / link.bandwidth


def optimizer_states(optimizer: str) -> int:
    """Per-parameter state tensors the optimizer keeps (:data:`OPTIMIZER_STATES`).

    Raises
    ------
    HardwareError
        An unknown optimizer.

    Examples
    --------
    >>> optimizer_states("adam"), optimizer_states("mixed-adam"), optimizer_states("sgd")
    (2, 2, 0)
    """
    return optimizer_recipe(optimizer).states


def node_memory(
    params: float,
    dtype: str,
    *,
    training: bool,
    optimizer: str = DEFAULT_TRAINING_OPTIMIZER,
    stashed_activations: float = 0.0,
    microbatches_in_flight: int = 1,
) -> float:
    """Bytes a node holds on its device (see the module docstring).

    Parameters
    ----------
    params : float
        Number of parameters.
    dtype : str
        Their data type (its size in bytes: :data:`~pipesim.hardware.devices.DTYPE_BYTES`).
    training : bool
        Inference holds the weights; training adds gradients, master copy,
        optimizer states and ``stashed_activations``.
    optimizer : str
        A training recipe of :data:`OPTIMIZERS` (default ``mixed-adam``).
    stashed_activations : float
        Bytes kept for the backward pass for one microbatch (training only).
    microbatches_in_flight : int
        Microbatches whose activations are stashed at once.

    Returns
    -------
    float

    Examples
    --------
    >>> node_memory(1e6, "fp16", training=False)
    2000000.0
    >>> node_memory(1e6, "fp16", training=True)   # mixed-precision Adam: 16 bytes per parameter
    16000000.0
    >>> node_memory(1e6, "fp16", training=True, optimizer="adam")   # weights, gradients, two states at fp16
    8000000.0
    """
    if not training:
        return params * dtype_bytes(dtype)
    return params * training_bytes_per_param(dtype, optimizer) + microbatches_in_flight * stashed_activations


def optimizer_flops(params: float, optimizer: str = DEFAULT_TRAINING_OPTIMIZER) -> float:
    """FLOPs of one update step of ``params`` parameters (:data:`OPTIMIZER_FLOPS` of the recipe's rule).

    Examples
    --------
    >>> optimizer_flops(1e6, "adam"), optimizer_flops(1e6, "mixed-adam")
    (12000000.0, 12000000.0)
    """
    return OPTIMIZER_FLOPS[optimizer_recipe(optimizer).kind] * params


def optimizer_bytes(params: float, dtype: str, optimizer: str = DEFAULT_TRAINING_OPTIMIZER) -> float:
    """Bytes one update step moves: reads weights, gradients, master copy, states; writes weights, master, states.

    Examples
    --------
    >>> optimizer_bytes(1e6, "fp32", "adam")   # (3 + 2 * 2) * 1e6 * 4
    28000000.0
    """
    r, e = optimizer_recipe(optimizer), dtype_bytes(dtype)
    return (2 * (r.weight or e) + (r.grad or e) + 2 * r.master + 2 * r.states * (r.state or e)) * params
