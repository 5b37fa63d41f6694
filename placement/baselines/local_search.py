"""Baseline: local search over colour-class assignments, with restarts.

Problem: the paper's local-search baseline (Tarnawski et al., NeurIPS 2020,
§6; ``dp.cpp -localSearch 10``): assign every colour class to a random
device, then repeatedly apply the best move of one class to another device
while that lowers the max-load; keep the best of several restarts.

This version differs from the paper's in three deliberate ways:

* it respects memory and support: a class only goes to a device class that
  runs all its nodes; a random start that overflows memory is first repaired
  by moves that lower the total overflow (objective ``(overflow, max_load,
  Σ load²)``, compared lexicographically; the paper ignored memory);
* it uses every device (CPU cores too), not only accelerators;
* when no move improves, it tries the best swap of two classes on different
  devices; the sum of squared loads breaks ties between equal max-loads, so
  the search does not stop merely because two devices share the maximum.

Only moves and swaps that touch a most-loaded device (a class on it, or a
class that exchanges data with it) are examined: any other change leaves the
max-load where it is.

Speed: loads are kept incrementally (:class:`LoadState`): moving a class
re-charges only the transfers of its nodes and of their predecessors.  Tests
check these loads against :func:`pipesim.placement.evaluate.evaluate`, which also
scores the returned split.

Guarantee: a split with no violation whenever the search finds one (status
``feasible``); runs with the same ``seed`` repeat exactly.  The split need not
be contiguous and may beat the DP's contiguous optimum.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Sequence

from pipesim.errors import InfeasibleError
from pipesim.placement.baselines.units import (
    Device,
    Unit,
    devices_of,
    result_from_assignment,
    units_of,
)
from pipesim.placement.result import TIME_LIMIT, PlacementResult
from pipesim.placement.workload import Workload

__all__ = ["LoadState", "solve_local_search"]

Key = tuple[float, float, float]


class LoadState:
    """Per-device loads and memory of a unit-to-device assignment, updated move by move.

    ``where[u]`` is the device index of unit ``u``; :meth:`move` changes it
    and updates loads in time proportional to the unit's nodes, their
    predecessors and the number of devices.

    Parameters
    ----------
    workload : Workload
    units : sequence of Unit
        The colour classes (:func:`~pipesim.placement.baselines.units.units_of`).
    devices : sequence of (str, int)
        The devices (:func:`~pipesim.placement.baselines.units.devices_of`).
    where : sequence of int
        The device index of every unit.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond()
    >>> from pipesim.placement.baselines.units import devices_of, units_of
    >>> state = LoadState(w, units_of(w.graph, ["accelerator", "cpu"]), devices_of(w), [0, 0, 0, 0])
    >>> state.key()
    (0.0, 6.0, 36.0)
    >>> state.move(3, 1)   # the fourth unit (node 4) to accelerator[1]
    >>> state.key(), state.bottleneck()
    ((0.0, 5.0, 34.0), [0])
    """

    def __init__(self, workload: Workload, units: Sequence[Unit], devices: Sequence[Device], where: Sequence[int]):
        graph = workload.graph
        self.units = units
        self.devices = devices
        self.capacity = [workload.device_class(cls).memory for cls, _ in devices]
        n_dev = len(devices)
        index = {v: i for i, v in enumerate(graph.nodes)}
        node_ids = list(graph.nodes)
        self.unit_of = [0] * len(node_ids)
        for u, unit in enumerate(units):
            for v in unit.nodes:
                self.unit_of[index[v]] = u
        # transfer[i][d]: what device d pays to send or receive node i's output.
        self.transfer = [[graph.nodes[v].transfer.get(cls, 0.0) for cls, _ in devices] for v in node_ids]
        self.successors = [[index[w] for w in graph.dag.successors(v)] for v in node_ids]
        self.time = [[unit.time.get(cls, math.inf) for cls, _ in devices] for unit in units]
        self.neighbours: list[list[int]] = []  # units that exchange data with unit u
        self.affected: list[list[int]] = []  # nodes whose transfers a move of unit u can change
        self.in_edges: list[list[tuple[int, int]]] = []  # (predecessor node, edges into unit u)
        for unit in units:
            own = [index[v] for v in unit.nodes]
            preds = Counter(index[p] for v in unit.nodes for p in graph.dag.predecessors(v))
            self.in_edges.append(sorted(preds.items()))
            self.affected.append(sorted(set(own) | set(preds)))
            touching = {self.unit_of[p] for p in preds} | {self.unit_of[w] for i in own for w in self.successors[i]}
            self.neighbours.append(sorted(touching))

        self.where = list(where)
        self.load = [0.0] * n_dev
        self.memory = [0.0] * n_dev
        # count[i][d]: successors of node i on device d, only devices that hold some (sparse: fast).
        self.count: list[dict[int, int]] = [{} for _ in node_ids]
        for u, d in enumerate(self.where):
            self.load[d] += self.time[u][d]
            self.memory[d] += units[u].memory
        for i, succ in enumerate(self.successors):
            for w in succ:
                d = self.where[self.unit_of[w]]
                self.count[i][d] = self.count[i].get(d, 0) + 1
        for i in range(len(node_ids)):
            self._charge(i, 1.0)

    def _charge(self, i: int, sign: float) -> None:
        """Add (``sign=1``) or remove (``-1``) node ``i``'s send and receive costs."""
        count = self.count[i]
        if not count:
            return
        home = self.where[self.unit_of[i]]
        transfer, load = self.transfer[i], self.load
        sent = False
        for d in count:
            if d != home:
                load[d] += sign * transfer[d]
                sent = True
        if sent:
            load[home] += sign * transfer[home]

    def move(self, u: int, b: int) -> None:
        """Put unit ``u`` on device index ``b``."""
        a = self.where[u]
        if a == b:
            return
        for i in self.affected[u]:
            self._charge(i, -1.0)
        self.load[a] -= self.time[u][a]
        self.load[b] += self.time[u][b]
        self.memory[a] -= self.units[u].memory
        self.memory[b] += self.units[u].memory
        for p, k in self.in_edges[u]:
            count = self.count[p]
            if count[a] == k:
                del count[a]
            else:
                count[a] -= k
            count[b] = count.get(b, 0) + k
        self.where[u] = b
        for i in self.affected[u]:
            self._charge(i, 1.0)

    def overflow(self) -> float:
        """Bytes over capacity, summed over all devices."""
        return sum(max(0.0, m - c) for m, c in zip(self.memory, self.capacity))

    def key(self) -> Key:
        """``(memory overflow, max_load, Σ load²)``: lower is better, compared in order."""
        return (self.overflow(), max(self.load), sum(x * x for x in self.load))

    def bottleneck(self) -> list[int]:
        """Devices at the max-load (within rounding), or over memory while any is."""
        if self.overflow() > 0:
            return [d for d, (m, c) in enumerate(zip(self.memory, self.capacity)) if m > c]
        top = max(self.load)
        return [d for d, x in enumerate(self.load) if x >= top - 1e-9 * max(1.0, abs(top))]


def _better(new: tuple[float, ...], old: tuple[float, ...]) -> bool:
    """Lexicographic ``new < old``, ignoring differences at rounding level."""
    for x, y in zip(new, old):
        tol = 1e-9 * max(1.0, abs(x), abs(y))
        if x < y - tol:
            return True
        if x > y + tol:
            return False
    return False


class _Search:
    """One descent from a given start: best improving move, else best improving swap."""

    def __init__(self, state: LoadState, allowed: list[list[int]]):
        self.state = state
        self.allowed = allowed  # allowed[u]: device indices whose class runs all of unit u
        self.moves = self.swaps = 0

    def _fits(self, u: int, d: int) -> bool:
        """Whether moving ``u`` to ``d`` keeps memory (any move may help while memory overflows)."""
        s = self.state
        return s.memory[d] + s.units[u].memory <= s.capacity[d] or s.overflow() > 0

    def _try(self, changes: list[tuple[int, int]]) -> Key:
        """The key after applying ``changes`` (unit, device), then undo them."""
        s = self.state
        undo = [(u, s.where[u]) for u, _ in changes]
        for u, d in changes:
            s.move(u, d)
        key = s.key()
        for u, d in reversed(undo):
            s.move(u, d)
        return key

    def _best_move(self, current: Key, hot: list[int]) -> tuple[Key, list[tuple[int, int]]] | None:
        s = self.state
        on_hot = {u for u, d in enumerate(s.where) if d in hot}
        candidates = sorted(on_hot | {w for u in on_hot for w in s.neighbours[u]})
        best: tuple[Key, list[tuple[int, int]]] | None = None
        for u in candidates:
            for d in self.allowed[u]:
                if d == s.where[u] or not self._fits(u, d):
                    continue
                key = self._try([(u, d)])
                if _better(key, current) and (best is None or _better(key, best[0])):
                    best = (key, [(u, d)])
        return best

    def _best_swap(self, current: Key, hot: list[int]) -> tuple[Key, list[tuple[int, int]]] | None:
        s = self.state
        best: tuple[Key, list[tuple[int, int]]] | None = None
        for u in (u for u, d in enumerate(s.where) if d in hot):
            a = s.where[u]
            for w, b in enumerate(s.where):
                # Only a lighter class coming in can relieve the bottleneck's compute.
                if b == a or s.time[w][a] >= s.time[u][a] or a not in self.allowed[w] or b not in self.allowed[u]:
                    continue
                mu, mw = s.units[u].memory, s.units[w].memory
                if s.overflow() == 0 and (s.memory[a] - mu + mw > s.capacity[a] or s.memory[b] - mw + mu > s.capacity[b]):
                    continue
                key = self._try([(u, b), (w, a)])
                if _better(key, current) and (best is None or _better(key, best[0])):
                    best = (key, [(u, b), (w, a)])
        return best

    def run(self, deadline: float) -> bool:
        """Descend to a local optimum; ``False`` if the deadline stopped it first."""
        s = self.state
        while True:
            if time.perf_counter() > deadline:
                return False
            current, hot = s.key(), s.bottleneck()
            step = self._best_move(current, hot)
            if step is None:
                step = self._best_swap(current, hot)
                if step is None:
                    return True
                self.swaps += 1
            else:
                self.moves += 1
            for u, d in step[1]:
                s.move(u, d)


def solve_local_search(
    workload: Workload,
    *,
    restarts: int = 10,
    seed: int = 0,
    time_limit: float | None = None,
) -> PlacementResult:
    """Best local optimum over ``restarts`` random starts (``seed`` makes it reproducible).

    ``time_limit`` (seconds) stops the search early; the best split found so
    far is returned with status ``time_limit``.

    Parameters
    ----------
    workload : Workload
    restarts : int
        Random starts (at least 1).
    seed : int
        Seed of the random starts; the same seed repeats the run exactly.
    time_limit : float, optional
        Seconds.

    Returns
    -------
    PlacementResult
        ``feasible`` (or ``infeasible`` when no start could be repaired to
        fit memory, or ``time_limit``); no bound.  The split need not be
        contiguous.

    Raises
    ------
    ValueError
        The workload has no devices.

    Examples
    --------
    >>> from pipesim.placement.examples import diamond
    >>> w = diamond()
    >>> r = solve_local_search(w, restarts=3, seed=0)
    >>> r.status, r.max_load
    ('feasible', 4.0)
    """
    started = time.perf_counter()
    deadline = math.inf if time_limit is None else started + time_limit
    graph = workload.graph
    devices = devices_of(workload)
    if not devices:
        raise InfeasibleError("the workload has no devices")
    units = units_of(graph, [dc.name for dc in workload.devices])
    allowed = [[d for d, (cls, _) in enumerate(devices) if unit.fits(cls)] or [0] for unit in units]
    rng = random.Random(seed)

    best_key: tuple[float, float] | None = None
    best_where: list[int] = []
    moves = swaps = done = 0
    finished = True
    for _ in range(max(1, restarts)):
        start = [rng.choice(choices) for choices in allowed]
        search = _Search(LoadState(workload, units, devices, start), allowed)
        finished = search.run(deadline)
        moves, swaps, done = moves + search.moves, swaps + search.swaps, done + 1
        key = search.state.key()[:2]
        if best_key is None or _better(key, best_key):
            best_key, best_where = key, list(search.state.where)
        if not finished:
            break

    placement = {v: devices[best_where[u]] for u, unit in enumerate(units) for v in unit.nodes}
    stats = {"restarts": done, "seed": seed, "moves": moves, "swaps": swaps}
    result = result_from_assignment("local_search", workload, placement, started, stats=stats)
    if not finished and result.evaluation is not None and result.evaluation.feasible:
        result.status = TIME_LIMIT
        result.message = f"stopped by the time limit after {done} restart(s)"
    return result
