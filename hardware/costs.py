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

* **Node memory** for ``P`` parameters of ``e`` bytes each::

      inference: P·e
      training:  P·e (weights) + P·e (gradients) + s·P·e (optimizer state) + A

  where ``s`` is the number of per-parameter optimizer states (SGD 0,
  momentum 1, Adam 2) and ``A`` the bytes of activations stashed for the
  backward pass.
* **Backward pass**: about twice the forward FLOPs and bytes (gradients with
  respect to both inputs and weights): :data:`BACKWARD_FACTOR`.
* **Optimizer update** of ``P`` parameters: ``OPTIMIZER_FLOPS[opt]·P`` FLOPs;
  it reads weights, gradients and states and writes weights and states:
  ``(3 + 2s)·P·e`` bytes.

References: Williams, Waterman, Patterson, "Roofline", CACM 2009 (the kernel
model); docs/model.md §2.3 (transfers through host memory); Rajbhandari et al., "ZeRO",
SC 2020 §3.1 (weights + gradients + optimizer states).
"""

from __future__ import annotations

from pipesim.hardware.devices import Device, Link, dtype_bytes
from pipesim.hardware.units import HardwareError

__all__ = [
    "BACKWARD_FACTOR",
    "OPTIMIZER_FLOPS",
    "OPTIMIZER_STATES",
    "kernel_time",
    "node_memory",
    "optimizer_bytes",
    "optimizer_flops",
    "optimizer_states",
    "transfer_time",
]

#: Backward FLOPs (and bytes) per forward FLOP (byte).
BACKWARD_FACTOR = 2.0

#: Per-parameter state tensors kept by each optimizer.
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}

#: FLOPs per parameter of one update step (Adam: two moment updates, bias
#: corrections, square root, division, scaled step).
OPTIMIZER_FLOPS = {"sgd": 2, "momentum": 4, "adam": 12}


def kernel_time(flops: float, bytes_moved: float, device: Device, dtype: str) -> float:
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
    if flops < 0 or bytes_moved < 0:
        raise HardwareError("kernel", f"FLOPs and bytes must be non-negative, got {flops!r} and {bytes_moved!r}")
    if flops == 0 and bytes_moved == 0:
        return 0.0
    compute = flops / (device.peak(dtype) * device.compute_efficiency)
    memory = bytes_moved / (device.memory_bandwidth * device.memory_efficiency)
    return device.launch_overhead + max(compute, memory)


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
    >>> optimizer_states("adam"), optimizer_states("sgd")
    (2, 0)
    """
    if optimizer not in OPTIMIZER_STATES:
        raise HardwareError("optimizer", f"unknown optimizer {optimizer!r} (known: {', '.join(OPTIMIZER_STATES)})")
    return OPTIMIZER_STATES[optimizer]


def node_memory(
    params: float, dtype: str, *, training: bool, optimizer: str = "adam", stashed_activations: float = 0.0
) -> float:
    """Bytes a node holds on its device (see the module docstring).

    Parameters
    ----------
    params : float
        Number of parameters.
    dtype : str
        Their data type (its size in bytes: :data:`~pipesim.hardware.devices.DTYPE_BYTES`).
    training : bool
        Inference holds the weights; training adds gradients, optimizer
        states and ``stashed_activations``.
    optimizer : {"adam", "momentum", "sgd"}
    stashed_activations : float
        Bytes kept for the backward pass (training only).

    Returns
    -------
    float

    Examples
    --------
    >>> node_memory(1e6, "fp16", training=False)
    2000000.0
    >>> node_memory(1e6, "fp16", training=True)   # weights, gradients, two Adam states
    8000000.0
    """
    weights = params * dtype_bytes(dtype)
    if not training:
        return weights
    return weights * (2 + optimizer_states(optimizer)) + stashed_activations


def optimizer_flops(params: float, optimizer: str = "adam") -> float:
    """FLOPs of one update step of ``params`` parameters (:data:`OPTIMIZER_FLOPS` per parameter).

    Examples
    --------
    >>> optimizer_flops(1e6, "adam")
    12000000.0
    """
    optimizer_states(optimizer)
    return OPTIMIZER_FLOPS[optimizer] * params


def optimizer_bytes(params: float, dtype: str, optimizer: str = "adam") -> float:
    """Bytes one update step moves: reads weights, gradients, states; writes weights, states.

    Examples
    --------
    >>> optimizer_bytes(1e6, "fp32", "adam")   # (3 + 2 * 2) * 1e6 * 4
    28000000.0
    """
    return (3 + 2 * optimizer_states(optimizer)) * params * dtype_bytes(dtype)
