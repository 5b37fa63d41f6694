"""Enumerating the ideals (downsets) of a DAG (Tarnawski et al. 2020, §4).

An *ideal* of a DAG is a set of nodes closed under predecessors.  The DP's
states are the ideals of the contracted forward graph; contiguous sets are
exactly the differences ``I \\ J`` of nested ideals.

Ideals are produced level by level (level ``t`` holds the ideals with ``t``
nodes), so any ideal comes after all of its proper sub-ideals: the order the
DP needs.  Ideals are stored as rows of packed bits (``uint64`` words), which
also makes subset tests over many ideals a few word operations.

Each ideal ``I`` of size ``t`` is grown exactly once, from ``I`` minus its
maximal element of highest index (a node ``v`` joins a parent ``P`` when all
its predecessors are in ``P`` and no maximal element of ``P`` above ``v``
stays maximal in ``P ∪ {v}``).  So a level is never generated with
duplicates: its exact size is counted before anything is allocated, the ideal
limit and the memory budget (:class:`~pipesim.placement.memory.MemoryBudget`)
are checked first, and a level is built in bounded chunks.  Per ideal the
enumeration carries the count of missing predecessors of every node (one byte
per node for in-degrees below 255) and the maximal elements (packed), which
the DP reuses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipesim.errors import IdealLimitError
from pipesim.placement.dp.kernels import kernel
from pipesim.placement.interrupt import raise_if_stopped
from pipesim.placement.memory import MemoryBudget

__all__ = ["IdealLimitError", "Ideals", "enumerate_ideals", "pack", "unpack"]

#: Bytes of new ideals built at once (the count of each chunk is known before it is allocated).
CHUNK_BYTES = 1 << 26


def pack(member: np.ndarray) -> np.ndarray:
    """Rows of booleans -> rows of little-endian uint64 words."""
    n = member.shape[1]
    words = max(1, -(-n // 64))
    padded = np.zeros((member.shape[0], words * 64), dtype=bool)
    padded[:, :n] = member
    return np.packbits(padded, axis=1, bitorder="little").view(np.uint64)


def unpack(bits: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack`."""
    return np.unpackbits(np.ascontiguousarray(bits).view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)


@dataclass(frozen=True)
class Ideals:
    """All ideals of an ``n``-node DAG, ordered by size.

    ``bits[i]`` is ideal ``i`` as packed words; ``sizes[i]`` its node count;
    ``maximal[i]`` its maximal elements (no successor inside), packed.
    Ideal 0 is the empty set and the last ideal is the whole node set.
    Every other ideal ``i`` is ideal ``parent[i]`` plus node ``added[i]``, so
    per-ideal sums can be accumulated level by level (:meth:`accumulate`).
    """

    n: int
    bits: np.ndarray
    sizes: np.ndarray
    parent: np.ndarray
    added: np.ndarray
    maximal: np.ndarray

    def levels(self) -> list[slice]:
        """Index ranges of the ideals of each size 1, 2, …, n."""
        bounds = np.searchsorted(self.sizes, np.arange(1, self.n + 2))
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def accumulate(self, per_node: np.ndarray) -> np.ndarray:
        """``out[i] = Σ_{v in ideal i} per_node[v]`` for every ideal (rows of any shape)."""
        out = np.zeros((len(self), *per_node.shape[1:]), dtype=per_node.dtype)
        for level in self.levels():
            out[level] = out[self.parent[level]] + per_node[self.added[level]]
        return out

    def __len__(self) -> int:
        return len(self.bits)

    def members(self, i: int) -> list[int]:
        return [int(v) for v in np.flatnonzero(unpack(self.bits[i : i + 1], self.n)[0])]

    def membership(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Boolean matrix (ideal x node) for the selected ideals."""
        return unpack(self.bits[rows], self.n)


def enumerate_ideals(
    n: int,
    predecessors: Sequence[Sequence[int]],
    *,
    limit: int = 2_000_000,
    progress: Callable[[int, int], None] | None = None,
    budget: MemoryBudget | None = None,
) -> Ideals:
    """Every ideal of the DAG on nodes ``0..n-1`` given each node's predecessors.

    Parameters
    ----------
    n : int
        Number of nodes.
    predecessors : sequence of sequences of int
        ``predecessors[v]``: the nodes with an edge into ``v``.
    limit : int
        Most ideals allowed.
    progress : callable, optional
        ``progress(level, count)`` is called after each level.
    budget : MemoryBudget, optional
        Checked before each chunk of ideals is allocated (default: a new
        :class:`~pipesim.placement.memory.MemoryBudget`).

    Returns
    -------
    Ideals

    Raises
    ------
    IdealLimitError
        Past ``limit`` ideals (with the count reached), before the level that
        crosses it is built.
    ResourceLimitError
        When the next chunk of ideals would not fit in ``budget``.

    Examples
    --------
    >>> ideals = enumerate_ideals(3, [[], [0], [0]])  # 0 -> 1, 0 -> 2
    >>> [ideals.members(i) for i in range(len(ideals))]
    [[], [0], [0, 1], [0, 2], [0, 1, 2]]
    """
    budget = MemoryBudget() if budget is None else budget
    words = max(1, -(-n // 64))
    preds = [sorted(set(int(u) for u in ps)) for ps in predecessors]
    indegree = np.array([len(ps) for ps in preds], dtype=np.int64)
    # The smallest type that holds every in-degree plus a sentinel marking "already in the ideal".
    kind = next(t for t in (np.uint8, np.uint16, np.uint32) if indegree.max(initial=0) < np.iinfo(t).max)
    sentinel = np.iinfo(kind).max
    succ_lists: list[list[int]] = [[] for _ in range(n)]
    for v, ps in enumerate(preds):
        for u in ps:
            succ_lists[u].append(v)
    succ_ptr = np.zeros(n + 1, dtype=np.int64)
    succ_ptr[1:] = np.cumsum([len(s) for s in succ_lists])
    succ_idx = np.array([v for s in succ_lists for v in s], dtype=np.int64)
    word_of = np.arange(n, dtype=np.int64) // 64
    mask_of = np.left_shift(np.uint64(1), np.arange(n, dtype=np.uint64) % np.uint64(64))
    pred_bits = np.zeros((n, words), np.uint64)  # direct predecessors of each node, packed
    for v, ps in enumerate(preds):
        for u in ps:
            pred_bits[v, word_of[u]] |= mask_of[u]
    # above[v]: the nodes of higher index than v (packed); v may not join P if a maximal
    # element of P in kill[v] = above[v] minus v's predecessors would stay maximal.
    above = np.where(np.arange(words)[None, :] > word_of[:, None], ~np.uint64(0), np.uint64(0))
    above[np.arange(n), word_of] = ~(np.left_shift(mask_of, np.uint64(1)) - np.uint64(1))
    kill = above & ~pred_bits

    row_bytes = 2 * words * 8 + n * np.dtype(kind).itemsize + 16
    level = [(np.zeros((1, words), np.uint64), np.zeros((1, words), np.uint64), indegree.astype(kind)[None, :])]
    bits_parts, max_parts = [level[0][0]], [level[0][1]]
    parents, added = [np.zeros(1, np.int64)], [np.full(1, -1, np.int64)]
    count, first_of_level, per_level = 1, 0, [1]
    for size in range(1, n + 1):
        children = [_count_children(missing, maximal, kill, work=missing.size) for _, maximal, missing in level]
        new = int(sum(int(c.sum()) for c in children))
        if new == 0:
            break
        if count + new > limit:
            raise IdealLimitError(
                f"more than {limit:,} ideals (reached {count + new:,} with {size} of {n} nodes)"
            )
        budget.reserve(new * row_bytes, f"enumerating {new:,} ideals of {size} nodes")
        grown, offset = [], first_of_level
        for (bits, maximal, missing), per_parent in zip(level, children):
            ends = np.cumsum(per_parent)
            start = 0
            while start < len(per_parent):
                # the parents whose children fill about CHUNK_BYTES (at least one parent)
                before = ends[start - 1] if start else 0
                stop = max(start + 1, int(np.searchsorted(ends, before + CHUNK_BYTES // row_bytes, side="right")))
                k = int(ends[stop - 1] - before)
                if k:
                    out = (np.empty((k, words), np.uint64), np.empty((k, words), np.uint64), np.empty((k, n), kind))
                    parent, node = np.empty(k, np.int64), np.empty(k, np.int64)
                    _grow(bits, maximal, missing, kill, pred_bits, word_of, mask_of, succ_ptr, succ_idx,
                          start, stop, sentinel, offset, *out, parent, node, work=(stop - start) * n)
                    grown.append(out)
                    bits_parts.append(out[0])
                    max_parts.append(out[1])
                    parents.append(parent)
                    added.append(node)
                start = stop
                raise_if_stopped()  # Ctrl-C between chunks (see pipesim.placement.interrupt)
            offset += len(per_parent)
        first_of_level = count
        count += new
        per_level.append(new)
        level = grown
        if progress is not None:
            progress(size, count)
    del level
    budget.reserve(count * (4 * words * 8 + 8 * 4 + 4), f"storing {count:,} ideals")
    bits = np.concatenate(bits_parts)
    del bits_parts
    maximal = np.concatenate(max_parts)
    del max_parts
    sizes = np.repeat(np.arange(len(per_level), dtype=np.int32), per_level)
    parent, added = np.concatenate(parents), np.concatenate(added)
    # Order each level by its words as numbers (word 0 first), as before issue 12: ideals
    # sharing high nodes sit together, which keeps the DP's accesses local.
    order = np.arange(count)
    start = 0
    for size in per_level:
        level = slice(start, start + size)
        order[level] = start + np.lexsort(bits[level].T[::-1])
        start += size
    position = np.empty(count, dtype=np.int64)
    position[order] = np.arange(count)
    parent = position[parent[order]]
    parent[0] = 0
    return Ideals(n=n, bits=bits[order], sizes=sizes, parent=parent, added=added[order], maximal=maximal[order])


@kernel
def _count_children(missing, maximal, kill):  # pragma: no cover - compiled
    """How many ideals each parent grows canonically (see the module docstring)."""
    parents, n = missing.shape
    words = maximal.shape[1]
    out = np.zeros(parents, dtype=np.int64)
    for p in range(parents):
        c = 0
        for v in range(n):
            if missing[p, v] == 0:
                ok = True
                for w in range(words):
                    if maximal[p, w] & kill[v, w]:
                        ok = False
                        break
                if ok:
                    c += 1
        out[p] = c
    return out


@kernel
def _grow(bits, maximal, missing, kill, pred_bits, word_of, mask_of, succ_ptr, succ_idx, first, last, sentinel,
          offset, out_bits, out_max, out_missing, out_parent, out_added):  # pragma: no cover - compiled
    """The canonical children of parents ``first..last-1``, written to the ``out_*`` rows."""
    n = missing.shape[1]
    words = maximal.shape[1]
    k = 0
    for p in range(first, last):
        for v in range(n):
            if missing[p, v] != 0:
                continue
            ok = True
            for w in range(words):
                if maximal[p, w] & kill[v, w]:
                    ok = False
                    break
            if not ok:
                continue
            for w in range(words):
                out_bits[k, w] = bits[p, w]
                out_max[k, w] = maximal[p, w] & ~pred_bits[v, w]
            out_bits[k, word_of[v]] |= mask_of[v]
            out_max[k, word_of[v]] |= mask_of[v]
            for u in range(n):
                out_missing[k, u] = missing[p, u]
            out_missing[k, v] = sentinel
            for t in range(succ_ptr[v], succ_ptr[v + 1]):
                out_missing[k, succ_idx[t]] -= 1
            out_parent[k] = offset + p
            out_added[k] = v
            k += 1
