"""Metrics reconciled with numpy-financial and with hand-worked values."""

from __future__ import annotations

import json
import warnings

import numpy as np
import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from finmodel.metrics import (
    _only_root_side,
    dscr,
    dscr_summary,
    irr,
    llcr,
    mirr,
    moic,
    npv,
    payback_period,
    sign_changes,
)


def _well_conditioned_root(values: np.ndarray, rate: float) -> bool:
    """True where the root is simple enough that numpy-financial's answer is itself accurate
    to 1e-9: |f'(x*)| x* not tiny against the size of the flows (a near-double root is not)."""
    x = 1.0 / (1.0 + rate)
    t = np.arange(values.size)
    deriv = np.sum(t * values * x ** t)  # x f'(x)
    size = np.sum(np.abs(values) * x ** t)
    return abs(deriv) > 1e-4 * size


# money-like flows: zero or between 0.01 and 1,000 in size (EUR m to the nearest EUR 10k)
money = st.one_of(st.just(0.0), st.floats(0.01, 1000.0), st.floats(-1000.0, -0.01))
flows = arrays(np.float64, st.integers(2, 30), elements=money)


@settings(max_examples=400, deadline=None)
@given(values=flows)
def test_irr_agrees_with_numpy_financial(values):
    ours = irr(values)
    ref = npf.irr(values)
    if np.isfinite(ref) and _well_conditioned_root(values, ref):
        assert ours == pytest.approx(ref, abs=1e-9, rel=1e-9)
    if np.isfinite(ours):
        scale = npv(ours, np.abs(values))
        assert abs(npv(ours, values)) <= 1e-9 * max(scale, 1e-300)


@settings(max_examples=200, deadline=None)
@given(values=flows, rate=st.floats(-0.9, 2.0))
def test_npv_agrees_with_numpy_financial(values, rate):
    assert npv(rate, values) == pytest.approx(npf.npv(rate, values), rel=1e-12, abs=1e-9)


def test_irr_vectorised_over_leading_axes_and_axis_argument():
    rng = np.random.default_rng(1)
    cf = rng.normal(10, 5, size=(3, 4, 12))
    cf[..., 0] = -60
    out = irr(cf)
    assert out.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert out[i, j] == pytest.approx(npf.irr(cf[i, j]), abs=1e-12)
    np.testing.assert_array_equal(irr(np.moveaxis(cf, -1, 0), axis=0), out)


def test_irr_textbook_values_and_nan():
    # numpy-financial's documented examples
    assert irr([-100, 39, 59, 55, 20]) == pytest.approx(0.28095, abs=1e-5)
    assert irr([-100, 0, 0, 74]) == pytest.approx(-0.0955, abs=1e-4)
    assert irr([-100, 100, 0, -7]) == pytest.approx(-0.0833, abs=1e-4)
    assert irr([-100, 100, 0, 7]) == pytest.approx(0.06206, abs=1e-5)
    assert irr([-5, 10.5, 1, -8, 1]) == pytest.approx(0.0886, abs=1e-4)
    assert np.isnan(irr([100, 50, 10]))  # never negative: no root
    assert np.isnan(irr([0, 0, 0]))
    assert irr([0, 0, -100, 110]) == pytest.approx(0.10, abs=1e-12)  # leading zeros ignored


@pytest.mark.parametrize("values", [
    [-100, 100], [-100, 50, 50], [-0.1, 0.03, 0.07], [0.1, -0.03, -0.07],  # r = 0, sums rounded
    [-3, 1, 1, 1.0000000000000002], [-3, 1, 1, 0.9999999999999998],  # r within rounding of 0
    [-1e6, 1e-3], [-1e-3, 1e6],  # r near -1 and far above the grid: off both ends
    [-100] + [1] * 23 + [1e3],
])
def test_irr_one_sign_change_at_and_near_zero_and_off_the_grid(values):
    """One sign change: the side of x = 1 is read off the sign of the flows' sum, also where
    that sum is zero or rounding; roots beyond both ends of the grid are bracketed."""
    assert irr(values) == pytest.approx(npf.irr(values), abs=1e-12, rel=1e-12)


def test_irr_counts_real_roots():
    # -100 + 230x - 132x^2 (x = 1/(1+r)) = 0 at r = 10% and 20%; -100, 50, 60 has one root;
    # 1, 2, 3 has no sign change; -10 + 5x - 3x^2 changes sign twice but its discriminant
    # 25 - 120 is negative: no real IRR
    flows = np.array([[-100, 230, -132], [-100, 50, 60], [1, 2, 3], [-10, 5, -3]])
    rates, roots = irr(flows, full_output=True)
    assert roots.tolist() == [2, 1, 0, 0]
    assert rates[0] == pytest.approx(0.10, abs=1e-12)  # closest to zero
    assert np.isnan(rates[2:]).all()
    assert sign_changes([[1, 0, -1, 0, 2, -3]]).tolist() == [3]


def test_irr_selection_rule_prefers_a_non_negative_root_when_asked():
    # f(x) = -100 (x - x1)(x - x2) with roots at r = -20% and 12%
    x1, x2 = 1 / 0.8, 1 / 1.12
    flows = -np.array([x1 * x2, -(x1 + x2), 1.0]) * 100  # f(x) = -100 (x - x1)(x - x2)
    assert irr(flows) == pytest.approx(0.12, abs=1e-12)  # 12% is closer to 0 than -20%
    x1 = 1 / 0.95  # now -5% and 12%: closest to zero is -5%, the non-negative rule gives 12%
    flows = -np.array([x1 * x2, -(x1 + x2), 1.0]) * 100
    assert irr(flows) == pytest.approx(-0.05, abs=1e-12)
    assert irr(flows, select="non_negative_first") == pytest.approx(0.12, abs=1e-12)
    with pytest.raises(ValueError, match="select='largest'"):
        irr(flows, select="largest")


@settings(max_examples=300, deadline=None)
@given(values=flows)
def test_root_count_agrees_with_numpy_roots(values):
    """The grid count equals the number of real x > 0 roots numpy finds, capped at 2, for
    flows whose roots are simple (a near-double root can show as a complex pair in numpy)."""
    _, n = irr(values, full_output=True)
    nz = np.flatnonzero(values)
    if nz.size < 2:
        assert n == 0
        return
    c = values[nz[0]:nz[-1] + 1]
    x = np.roots(c[::-1])
    real = np.sort(x[(x.imag == 0) & (x.real > 0)].real)
    if real.size > 1 and np.min(np.diff(real)) < 1e-3 * real.max():
        return  # a near-double root: the count is not well defined in floating point
    if np.any((np.abs(x.imag) > 0) & (np.abs(x.imag) < 1e-6 * np.abs(x))):
        return  # a root on the edge of being real
    assert n == min(real.size, 2)


def test_scalar_and_empty_inputs_as_numpy_financial():
    one = irr([-100, 50, 60])
    assert np.ndim(one) == 0 and isinstance(float(one), float)
    assert one == pytest.approx(npf.irr([-100, 50, 60]), abs=1e-12)
    json.dumps({"irr": one, "npv": npv(0.05, [-100, 50, 60])})  # scalars, not 0-d arrays
    assert np.isnan(irr([])) and np.isnan(npf.irr([]))
    assert npv(0.05, []) == npf.npv(0.05, []) == 0.0
    assert irr(np.empty((3, 0))).shape == (3,) and np.isnan(irr(np.empty((3, 0)))).all()
    np.testing.assert_array_equal(npv(0.05, np.empty((2, 0))), [0.0, 0.0])


def test_npv_at_minus_one_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(npv(-1.0, [-100, 50, 60]))
        np.testing.assert_array_equal(np.isnan(npv(np.array([-1.0, 0.0]), [[-100, 50], [-100, 50]])),
                                      [True, False])


@pytest.mark.parametrize("values, finance, reinvest", [
    ([-100, 50, -60, 70], 0.10, 0.12),  # numpy-financial's docstring example: -3.909%
    ([-4500, -800, 800, 800, 600, 600, 800, 800, 700, 3000], 0.08, 0.055),
    ([-120000, 39000, 30000, 21000, 37000, 46000], 0.10, 0.12),
    ([100, 200, -50, 300, -200], 0.05, 0.06),
    ([39000, 30000, 21000, 37000, 46000], 0.10, 0.12),  # no outflow: NaN
])
def test_mirr_agrees_with_numpy_financial(values, finance, reinvest):
    ours, ref = mirr(values, finance, reinvest), npf.mirr(values, finance, reinvest)
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, rel=1e-12)
    rows = mirr(np.array([values, values]), finance, reinvest)
    np.testing.assert_array_equal(rows, [ours, ours])


def test_moic_payback_dscr():
    cf = np.array([-100.0, 30, 40, 50, 60])
    assert moic(cf) == pytest.approx(180 / 100)
    # cumulative: -100, -70, -30, +20 -> pays back 30/50 into period 3's flow
    assert payback_period(cf) == pytest.approx(2.6)
    assert np.isnan(payback_period([-100.0, 10, 10]))
    np.testing.assert_allclose(dscr([13.5, 10, 5], [10, 0, 5]), [1.35, np.nan, 1.0])


def test_moic_payback_dscr_summary_row_by_row():
    """Each row on its own, over a (2, 2, T) batch: edge rows give NaN, never a neighbour's value."""
    cf = np.array([[[-100.0, 30, 40, 50, 60], [0.0, 0, 0, 0, 0]],
                   [[10.0, -5, 20, 0, 0], [-50.0, np.nan, 80, 0, 0]]])
    np.testing.assert_allclose(moic(cf), [[1.8, np.nan], [30 / 5, np.nan]])
    # row 3: cumulative 10, 5, 25 never negative -> 0; row 4: NaN flow -> never paid back
    np.testing.assert_allclose(payback_period(cf), [[2.6, 0.0], [0.0, np.nan]])
    np.testing.assert_allclose(payback_period(cf, axis=-1), payback_period(np.swapaxes(cf, 0, 2),
                                                                           axis=0).T)
    # DSCR only where debt is serviced (NaN elsewhere): lowest and mean of the tested years
    d = np.array([[1.35, np.nan, 1.0, 1.25], [np.nan] * 4])
    lowest, average = dscr_summary(d)
    np.testing.assert_allclose(lowest, [1.0, np.nan])
    np.testing.assert_allclose(average, [(1.35 + 1.0 + 1.25) / 3, np.nan])


def test_llcr_one_rate_per_row_equals_the_same_rate_every_period():
    rng = np.random.default_rng(3)
    cfads = rng.uniform(5, 50, (4, 6))
    balance = np.concatenate([rng.uniform(50, 100, (4, 4)), np.zeros((4, 2))], axis=1)
    rate = rng.uniform(0.03, 0.08, 4)
    np.testing.assert_allclose(llcr(cfads, rate, balance),
                               llcr(cfads, np.repeat(rate[:, None], 6, axis=1), balance),
                               rtol=1e-14)


def test_llcr_hand_worked():
    # loan 100 at 10 %, balances open 100 / 60 / 0; CFADS 66, 55 (loan ends in period 1)
    cfads = np.array([66.0, 55.0, 40.0])
    balance = np.array([100.0, 60.0, 0.0])
    out = llcr(cfads, 0.10, balance)
    assert out[0] == pytest.approx((66 / 1.1 + 55 / 1.1**2) / 100)
    assert out[1] == pytest.approx((55 / 1.1) / 60)
    assert np.isnan(out[2])


def test_llcr_at_one_period_is_that_period_of_the_series():
    rng = np.random.default_rng(4)
    cfads = rng.uniform(-5, 50, (5, 3, 8))
    balance = np.where(rng.random((5, 3, 8)) < 0.8, rng.uniform(1, 100, (5, 3, 8)), 0.0)
    rate = rng.uniform(0.02, 0.08, (5, 3))
    at = np.array([[0, 3, 7], [8, -1, 2], [5, 5, 5], [1, 6, 4], [2, 0, 7]])
    series = llcr(cfads, rate, balance)
    inside = (at >= 0) & (at < 8)
    expected = np.where(inside, np.take_along_axis(series, np.clip(at, 0, 7)[..., None], -1)[..., 0],
                        np.nan)
    np.testing.assert_array_equal(llcr(cfads, rate, balance, at=at), expected)


@pytest.mark.parametrize(("values", "side", "expected"), [
    # build, operate, a refresh dip, operate: sign changes -/+/-/+, but the cumulative sums
    # change sign once and the sums from the end never: one root, r > 0
    ([-100.0, -50, 40, 45, -30, 50, 55, 60], 1, 0.08897245633302298),
    # loses money after a dip: the sums from the end change sign once, forward ones never: r < 0
    ([-100.0, 30, -10, 20, 15, 10], -1, -0.13593715935163841),
    # -100 + 230x - 132x^2, roots r = 10 % and 20 %: the partial sums cannot tell, the grid does
    ([-100.0, 230, -132], 0, 0.10),
])
def test_partial_sums_show_when_the_root_is_unique(values, side, expected):
    """Where Descartes' rule on the partial sums proves the root unique, the grid is walked on
    one side of r = 0 only; the IRR is the same as numpy-financial's."""
    c = np.array(values)
    assert _only_root_side(c, np.abs(c).sum()) == side
    assert irr(c) == pytest.approx(expected, abs=1e-12)
    assert irr(c) == pytest.approx(npf.irr(c), abs=1e-12)


def test_two_roots_in_one_grid_cell_are_found():
    """Roots at x = 1.4718 and 1.4850 (r = -32.1 % and -32.7 %) fall between two grid points;
    found by hypothesis. numpy-financial returns the one closest to zero."""
    values = np.array([-1000.0, 1.0, 0.0, 0.0, 0.0, 848.5625, -478.3125])
    assert irr(values) == pytest.approx(npf.irr(values), abs=1e-12)
    assert irr(values) == pytest.approx(-0.3205791228967376, abs=1e-12)


def test_two_roots_beyond_the_grid_end_are_found():
    """f(x) = x^5 (x^2 / 64 - 6 x + 444) + small terms: two roots at x ~ 100.1 and 284
    (r = -99.0 % and -99.6 %), both past x = 100 where the grid used to end, so no sign change
    showed; found by hypothesis. numpy-financial returns the one closest to zero."""
    values = np.array([0.015625] * 5 + [444.0, -6.0, 0.015625])
    assert irr(values) == pytest.approx(-0.9900086976840325, abs=1e-12)


@pytest.mark.parametrize(("values", "expected"), [
    # roots r = 258.5 % and 264.0 % in one cell of the coarse geometric grid; f turns between
    ([-0.03, 0.0, 0.79, 0.0, -5.31, 0.0, -0.03, 9.98, -6.73, -36.96, 0.64, -30.92, 132.68,
      -0.59, -4.9, 14.27, 0.0, -925.77, -0.33, -8.94, -701.98, -0.02, -176.59, -0.18, -0.16,
      0.0, -23.7, -6.91], 2.584861381019187),
    # roots r = -64.0 % and -63.1 % in one cell, with no other root
    ([-201.28, 0.09, 0.12, -238.34, -0.08, -0.01, -48.56, 0.0, 0.48, 3.66, -456.45, 0.76, 0.0,
      2.8, 17.9, 0.18, -0.36, -0.42], -0.6311672488704199),
])
def test_a_close_pair_of_roots_inside_a_cell_is_found(values, expected):
    """Where f has the same sign at both ends of a grid cell but turns back across zero inside
    it, the turning point splits the cell into two brackets (found with a random-flow search
    against numpy-financial)."""
    assert irr(np.array(values)) == pytest.approx(expected, abs=1e-9)  # near-double roots
    assert irr(np.array(values)) == pytest.approx(npf.irr(values), abs=1e-9)
