"""Ideal enumeration against brute force."""

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pipesim.placement.dp.ideals import enumerate_ideals, pack, unpack


@st.composite
def dags(draw):
    n = draw(st.integers(0, 9))
    preds = [[i for i in range(j) if draw(st.booleans())] for j in range(n)]
    return n, preds


@given(dags())
def test_ideals_are_exactly_the_downsets(dag):
    n, preds = dag
    expected = {
        frozenset(s)
        for r in range(n + 1)
        for s in itertools.combinations(range(n), r)
        if all(set(preds[v]) <= set(s) for v in s)
    }
    ideals = enumerate_ideals(n, preds)
    found = [frozenset(ideals.members(i)) for i in range(len(ideals))]
    assert len(found) == len(set(found)) == len(expected)
    assert set(found) == expected
    assert list(ideals.sizes) == sorted(ideals.sizes)  # sub-ideals come first
    assert found[0] == frozenset() and found[-1] == frozenset(range(n))


def test_pack_round_trip():
    rng = np.random.default_rng(0)
    member = rng.random((7, 130)) < 0.5
    assert (unpack(pack(member), 130) == member).all()
