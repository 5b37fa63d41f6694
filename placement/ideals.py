"""Enumerating the ideals (downsets) of a DAG (Tarnawski et al. 2020, §4).

An *ideal* of a DAG is a set of nodes closed under predecessors.  The DP's
states are the ideals of the contracted forward graph; contiguous sets are
exactly the differences ``I \\ J`` of nested ideals.

Ideals are produced level by level (level ``t`` holds the ideals with ``t``
nodes), so any ideal comes after all of its proper sub-ideals: the order the
DP needs.  Each level is computed at once with numpy: a node ``v`` can join
ideal ``I`` when none of its predecessors is missing from ``I``.  Ideals are
stored as rows of packed bits (``uint64`` words), which also makes subset tests
over many ideals a few vector operations.  The count of missing predecessors
of every node is carried from an ideal to the ideals grown from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipesim.errors import IdealLimitError

__all__ = ["IdealLimitError", "Ideals", "enumerate_ideals", "pack", "unpack"]




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

    ``bits[i]`` is ideal ``i`` as packed words; ``sizes[i]`` its node count.
    Ideal 0 is the empty set and the last ideal is the whole node set.
    Every other ideal ``i`` is ideal ``parent[i]`` plus node ``added[i]``, so
    per-ideal sums can be accumulated level by level (:meth:`accumulate`).
    """

    n: int
    bits: np.ndarray
    sizes: np.ndarray
    parent: np.ndarray
    added: np.ndarray

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
) -> Ideals:
    """Every ideal of the DAG on nodes ``0..n-1`` given each node's predecessors.

    Raises :class:`IdealLimitError` (with the count reached) past ``limit``.
    ``progress(level, count)`` is called after each level.
    """
    successor = np.zeros((n, n), dtype=np.int32)  # successor[u, v] = 1 iff u -> v
    for v, ps in enumerate(predecessors):
        for u in set(ps):
            successor[u, v] = 1
    level = np.zeros((1, n), dtype=bool)
    missing = successor.sum(axis=0, dtype=np.int32)[None, :]  # predecessors of v not in the ideal
    levels = [pack(level)]
    parents, added = [np.zeros(1, np.int64)], [np.full(1, -1, np.int64)]
    count = 1
    for size in range(1, n + 1):
        rows, cols = np.nonzero((missing == 0) & ~level)
        if len(rows) == 0:
            break
        grown = level[rows]
        grown[np.arange(len(rows)), cols] = True
        packed, first = np.unique(pack(grown), axis=0, return_index=True)
        rows, cols = rows[first], cols[first]
        parents.append(count - len(levels[-1]) + rows)
        added.append(cols)
        level, missing = grown[first], missing[rows] - successor[cols]
        count += len(packed)
        if count > limit:
            raise IdealLimitError(
                f"more than {limit:,} ideals (reached {count:,} with {size} of {n} nodes); "
                "raise the limit, or fuse nodes (e.g. --fuse-layers)"
            )
        levels.append(packed)
        if progress is not None:
            progress(size, count)
    bits = np.concatenate(levels)
    sizes = np.concatenate([np.full(len(b), i, dtype=np.int32) for i, b in enumerate(levels)])
    return Ideals(n=n, bits=bits, sizes=sizes, parent=np.concatenate(parents), added=np.concatenate(added))
