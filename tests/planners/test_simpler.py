"""Pearson and MMRV against values computed by hand."""

import math

import pytest

from planners.simpler import mmrv, pearson, ranking_metrics


def test_perfect_ranking():
    r = [0.1, 0.4, 0.7, 0.9]
    assert pearson(r, r) == pytest.approx(1.0, abs=1e-6)
    assert mmrv(r, r) == 0.0
    # monotone but not linear: ranking perfect -> MMRV 0, Pearson < 1
    s = [0.0, 0.05, 0.1, 0.95]
    assert mmrv(r, s) == 0.0
    assert pearson(r, s) < 0.95


def test_inverted_ranking():
    r = [0.1, 0.5, 0.9]
    s = [0.9, 0.5, 0.1]
    assert pearson(r, s) == pytest.approx(-1.0, abs=1e-6)
    # i=0: worst violation vs j=2 -> |0.1-0.9| = 0.8; i=1: max(0.4, 0.4) = 0.4; i=2: 0.8
    assert mmrv(r, s) == pytest.approx((0.8 + 0.4 + 0.8) / 3)


def test_hand_computed_pearson():
    r = [0.2, 0.4, 0.6]
    s = [0.1, 0.5, 0.3]
    # centred r = (-.2, 0, .2); centred s = (-.2, .2, 0); sum products = .04; norms sqrt(.08*.08)=.08
    assert pearson(r, s) == pytest.approx(0.5, abs=1e-6)
    # violations: pair (1,2): s1>s2 but r1<r2 -> |0.4-0.6| = 0.2 for i=1 and i=2; i=0 none
    assert mmrv(r, s) == pytest.approx((0 + 0.2 + 0.2) / 3)


def test_ties():
    # sim ties two policies that reality separates: (s0>s1)=False != (r0>r1)=True -> violation
    r = [0.8, 0.2, 0.5]
    s = [0.4, 0.4, 0.1]
    # i=0: vs1 violation |0.6|; vs2 (s0>s2 T, r0>r2 T) ok -> 0.6
    # i=1: vs0 (F vs F) ok; vs2 (s1>s2 T, r1>r2 F) -> 0.3 -> 0.3
    # i=2: vs0 (F,F) ok; vs1 (F vs T) -> 0.3 -> 0.3
    assert mmrv(r, s) == pytest.approx((0.6 + 0.3 + 0.3) / 3)
    # constant sim -> Pearson 0 (denominator guarded by 1e-8), not NaN
    assert pearson(r, [0.5, 0.5, 0.5]) == 0.0
    # real ties: reality cannot tell them apart, sim can -> violation weighted |r_i - r_j| = 0
    assert mmrv([0.5, 0.5], [0.1, 0.9]) == 0.0


def test_pearson_matches_numpy_and_errors():
    import numpy as np

    rng = np.random.default_rng(0)
    r, s = rng.random(7), rng.random(7)
    assert pearson(r, s) == pytest.approx(float(np.corrcoef(r, s)[0, 1]), abs=1e-6)
    d = ranking_metrics(r, s)
    assert d["n"] == 7 and math.isfinite(d["mmrv"])
    with pytest.raises(ValueError, match="same length"):
        pearson([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="at least 2"):
        mmrv([0.1], [0.1])
