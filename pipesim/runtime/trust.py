"""Whether a measurement on this machine can be trusted: contention and drift, measured around it.

Problem: ``profile`` and ``execute`` time real runs on a machine other
processes may share.  Under other load the wall clock runs long while the
CPU time a thread used stays honest; a machine that warms up, throttles or is
preempted by its hypervisor drifts between the start and the end of a
measurement.  A number taken then is not the machine's number, and saying so
is better than rescaling it.

:func:`measure_conditions` is called before a measurement and
:meth:`Conditions.finish` after; together they record

* a **reference kernel** (a fixed 192x192 fp32 ``MatMul`` in ONNX Runtime, one
  thread, pinned like the measurement) timed before and after, in wall time
  and in the CPU time its thread used: the wall/CPU ratio is the share of the
  core the measurement had (1 on an idle core), the CPU-time change between
  before and after is drift (clock or thermal changes, not contention);
* the **steal** time of the virtual machine (``/proc/stat``) over the
  measurement, as a share of the usable cores' time;
* the 1-minute **load average** against the usable cores.

:meth:`Conditions.problems` names each limit exceeded (:data:`LIMITS`);
a measurement with none is *trusted*.  Guarantee: a verdict, never a
correction — pipesim does not rescale a measurement to fit the conditions.
Reference: issue 22, item 6 (a profile at load 3.3 collapsed small operators
after an even rescaling; three runs of one BERT split measured -28%, -34%, -3%).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["LIMITS", "Conditions", "measure_conditions", "reference_kernel", "steal_ticks"]

#: Limits beyond which a measurement is not trusted.
LIMITS = {
    "core_share": 0.9,  # the reference kernel had at least 90% of its core (wall <= CPU / 0.9)
    "drift": 0.10,  # its CPU time changed by at most 10% between before and after
    "steal": 0.02,  # the hypervisor took at most 2% of the cores' time
    "load_per_core": 1.0,  # at most one runnable task per usable core on average
}

_REFERENCE_SIZE = 192


def reference_kernel(runs: int = 30) -> tuple[float, float]:
    """Median (wall, CPU) seconds of the reference ``MatMul`` over ``runs`` runs in the calling thread."""
    from onnx import TensorProto, helper

    from pipesim.runtime.session import make_session

    n = _REFERENCE_SIZE
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])
    model = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["a", "a"], ["y"])], "reference", [a], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = make_session(model)
    feed = {"a": np.random.default_rng(0).random((n, n), np.float32)}
    session.run(None, feed)
    walls, cpus = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.thread_time()
        session.run(None, feed)
        walls.append(time.perf_counter() - t)
        cpus.append(time.thread_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def steal_ticks() -> tuple[int, int] | None:
    """(steal, total) clock ticks of all CPUs since boot (``/proc/stat``), or ``None`` where unavailable."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:]]
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks[:8])


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return math.nan


@dataclass
class Conditions:
    """The machine around one measurement (seconds; shares as fractions).

    Examples
    --------
    >>> c = Conditions(cores=2, load_before=0.2, load_after=3.5, reference_before=(1e-3, 1e-3),
    ...                reference_after=(2e-3, 1.05e-3), steal=0.0)
    >>> c.problems()
    ['the reference kernel had 52% of its core (others ran on it)', 'load average 3.5 on 2 usable cores']
    >>> c.trusted
    False
    """

    cores: int
    load_before: float
    load_after: float = math.nan
    reference_before: tuple[float, float] = (math.nan, math.nan)  # (wall, CPU)
    reference_after: tuple[float, float] = (math.nan, math.nan)
    steal: float = math.nan
    _ticks: tuple[int, int] | None = field(default=None, repr=False)

    def finish(self, *, runs: int = 30) -> "Conditions":
        """Take the after-measurements (reference kernel, steal, load); returns ``self``."""
        self.reference_after = reference_kernel(runs)
        ticks = steal_ticks()
        if ticks is not None and self._ticks is not None and ticks[1] > self._ticks[1]:
            self.steal = (ticks[0] - self._ticks[0]) / (ticks[1] - self._ticks[1])
        self.load_after = _load()
        return self

    @property
    def core_share(self) -> float:
        """The smaller of the reference kernel's CPU/wall before and after (1: it had its core)."""
        shares = [c / w for w, c in (self.reference_before, self.reference_after) if w > 0 and math.isfinite(w)]
        return min(1.0, min(shares)) if shares else math.nan

    @property
    def drift(self) -> float:
        """Relative change of the reference kernel's CPU time from before to after."""
        before, after = self.reference_before[1], self.reference_after[1]
        return after / before - 1 if before > 0 and math.isfinite(after) else math.nan

    def problems(self) -> list[str]:
        """Each limit of :data:`LIMITS` the measurement exceeded, as a sentence."""
        out = []
        if self.core_share < LIMITS["core_share"]:
            out.append(f"the reference kernel had {self.core_share:.0%} of its core (others ran on it)")
        if abs(self.drift) > LIMITS["drift"]:
            out.append(f"the reference kernel's CPU time drifted {self.drift:+.0%} from before to after")
        if self.steal > LIMITS["steal"]:
            out.append(f"the hypervisor stole {self.steal:.1%} of the CPU time")
        load = max(x for x in (self.load_before, self.load_after, 0.0) if math.isfinite(x))
        if load > LIMITS["load_per_core"] * self.cores:
            out.append(f"load average {load:.1f} on {self.cores} usable cores")
        return out

    @property
    def trusted(self) -> bool:
        return not self.problems()

    def verdict(self) -> str:
        """One line: ``trusted`` or ``NOT TRUSTED: reasons``."""
        problems = self.problems()
        return "measurement trusted (quiet machine)" if not problems else "NOT TRUSTED: " + "; ".join(problems)

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data.update(core_share=self.core_share, drift=self.drift, trusted=self.trusted, problems=self.problems())
        return data


def measure_conditions(cores: int, *, runs: int = 30) -> Conditions:
    """The before-measurements: load, steal counter, reference kernel (call :meth:`Conditions.finish` after)."""
    ticks = steal_ticks()
    load = _load()
    return Conditions(cores=cores, load_before=load, reference_before=reference_kernel(runs), _ticks=ticks)
