"""Vectorised financial metrics over any leading shape; time runs along ``axis`` (default last).

Conventions follow numpy-financial: the first flow is at t = 0 and is not discounted, rates are
per period, and "no solution" is NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["dscr", "irr", "llcr", "moic", "npv", "payback_period", "sign_changes"]

FloatArray = NDArray[np.float64]

# Grid of discount factors x = 1 / (1 + r) scanned for roots when flows change sign more than once:
# steps of 0.02 in r for -0.5 <= r <= 1, geometric in x (ratio ~1.05-1.25) towards r = -0.99
# and r = 1000, so that two roots rarely share a cell.
_RATE_GRID = np.unique(np.concatenate([
    1.0 / np.geomspace(2.0, 100.0, 81) - 1.0, np.linspace(-0.5, 1.0, 76),
    1.0 / np.geomspace(0.001, 0.5, 30) - 1.0,
]))
_X_GRID = np.sort(1.0 / (1.0 + _RATE_GRID))


def npv(rate: ArrayLike, cashflows: ArrayLike, axis: int = -1) -> FloatArray:
    """Net present value: sum_t cf_t / (1 + rate)^t, t = 0, 1, ...

    rate: scalar or array broadcastable to the leading shape of ``cashflows``;
    cashflows: (..., T). Returns (...).
    """
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    r = np.asarray(rate, dtype=float)[..., None]
    discount = (1.0 + r) ** -np.arange(cf.shape[-1])
    return np.sum(cf * discount, axis=-1)


def sign_changes(cashflows: ArrayLike, axis: int = -1) -> NDArray[np.int64]:
    """Number of sign changes in each row, zeros skipped. (...,) int; > 1 means several IRRs
    may exist."""
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    s = np.sign(cf)
    if s.all():  # no zeros: the common case
        return np.sum(s[..., 1:] != s[..., :-1], axis=-1)
    # carry the last non-zero sign forward so that zeros do not count
    idx = np.where(s != 0, np.arange(s.shape[-1]), 0)
    np.maximum.accumulate(idx, axis=-1, out=idx)
    filled = np.take_along_axis(s, idx, axis=-1)
    return np.sum((filled[..., 1:] * filled[..., :-1]) < 0, axis=-1)


def _horner(cols: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """f(x) = sum_t c_t x^t and f'(x) per row; cols: (T, n) flows by period, x: (n,)."""
    f = np.zeros_like(x)
    df = np.zeros_like(x)
    for t in range(cols.shape[0] - 1, -1, -1):
        np.multiply(df, x, out=df)
        df += f
        np.multiply(f, x, out=f)
        f += cols[t]
    return f, df


def _refine(cf: FloatArray, lo: FloatArray, hi: FloatArray, iters: int = 200,
            f_hi: FloatArray | None = None) -> FloatArray:
    """Root of f in [lo, hi] per row, where f(lo) and f(hi) differ in sign.

    Starts from the secant point when f(hi) is given (else the midpoint); Newton steps kept
    inside the shrinking bracket (bisection otherwise); a row stops once its step is below
    1e-14 relative.
    """
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    cols = np.ascontiguousarray(cf.T)  # (T, n)
    f_lo, _ = _horner(cols, lo)
    start = 0.5 * (lo + hi)
    if f_hi is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = lo - f_lo * (hi - lo) / (f_hi - f_lo)
        start = np.where(np.isfinite(secant) & (secant > lo) & (secant < hi), secant, start)
    x = np.where(f_lo == 0, lo, start)
    active = np.arange(cf.shape[0])
    c, a_lo, a_hi, a_flo, a_x = cols, lo, hi, f_lo, x.copy()
    done = np.zeros(x.size, dtype=bool)
    for _ in range(iters):
        f, df = _horner(c, a_x)
        same = np.sign(f) == np.sign(a_flo)
        a_lo = np.where(same, a_x, a_lo)
        a_flo = np.where(same, f, a_flo)
        a_hi = np.where(same, a_hi, a_x)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = a_x - f / df
        ok = np.isfinite(newton) & (newton >= a_lo) & (newton <= a_hi)
        x_new = np.where(f == 0, a_x, np.where(ok, newton, 0.5 * (a_lo + a_hi)))
        step = np.abs(x_new - a_x)
        tol = 1e-14 * np.maximum(1.0, np.abs(x_new))
        keep = (step > tol) & (a_hi - a_lo > tol) & (f != 0)
        x[active] = np.where(done, x[active], x_new)
        done |= ~keep
        if done.all():
            break
        a_x = x_new
        if done.sum() > 0.5 * done.size:  # compact the active set once half the rows are done
            keep = ~done
            active, c = active[keep], np.ascontiguousarray(c[:, keep])
            a_lo, a_hi, a_flo, a_x, done = a_lo[keep], a_hi[keep], a_flo[keep], a_x[keep], done[keep]
    return x


def _bracket_above(cf: FloatArray, lo: FloatArray, positive_at_lo: NDArray[np.bool_]) -> FloatArray:
    """Grow hi = 4 lo, 16 lo, ... until f(hi) has the other sign than at lo (rows that have one)."""
    hi = np.maximum(lo, 0.5) * 4.0
    cols = np.ascontiguousarray(cf.T)
    for _ in range(600):
        f_hi, _ = _horner(cols, hi)
        need = (f_hi > 0) == positive_at_lo
        if not need.any():
            break
        hi = np.where(need, hi * 4.0, hi)
    return hi


def _irr_single(cf: FloatArray) -> FloatArray:
    """IRR of rows with exactly one sign change: the unique root x in (0, inf).

    Rows have no leading zeros, so f(0+) has the sign of the first flow.
    """
    lo = np.zeros(cf.shape[0])
    hi = _bracket_above(cf, lo, cf[:, 0] > 0)
    return 1.0 / _refine(cf, lo, hi) - 1.0


_K0 = int(np.searchsorted(0.5 * (_X_GRID[1:] + _X_GRID[:-1]), 1.0, side="right"))
_POWERS_CACHE: dict[int, FloatArray] = {}


def _grid_powers(periods: int) -> FloatArray:
    """(T, G) matrix of x_g ** t for the rate grid."""
    if periods not in _POWERS_CACHE:
        _POWERS_CACHE[periods] = _X_GRID[None, :] ** np.arange(periods)[:, None]
    return _POWERS_CACHE[periods]


def _irr_multi(cf: FloatArray) -> FloatArray:
    """IRR of rows that change sign several times: numpy-financial's choice of the real root
    closest to zero, found by scanning a grid of rates, refining the brackets next to r = 0, and
    checking the two open ends of the grid. Rows have no leading zeros."""
    n = cf.shape[0]
    f = cf @ _grid_powers(cf.shape[1])  # (n, G), x ascending = rate descending
    pos = f > 0
    change = pos[:, 1:] != pos[:, :-1]  # (n, G-1) brackets [x_j, x_j+1]
    best_r = np.full(n, np.inf)
    # nearest bracket on each side of r = 0: r >= 0 left of x = 1 (the last such cell), r < 0
    # right of it (the first); refine a side only if its cell may hold the root closest to 0
    left, right = change[:, :_K0][:, ::-1], change[:, _K0:]
    has_l, has_r = left.any(axis=1), right.any(axis=1)
    j_l = _K0 - 1 - np.argmax(left, axis=1)
    j_r = _K0 + np.argmax(right, axis=1)
    rate = 1.0 / _X_GRID - 1.0
    near_l = np.where(has_l, rate[np.minimum(j_l + 1, len(rate) - 1)], np.inf)  # smallest |r|
    far_l = np.where(has_l, rate[j_l], np.inf)
    near_r = np.where(has_r, -rate[j_r], np.inf)
    far_r = np.where(has_r, -rate[np.minimum(j_r + 1, len(rate) - 1)], np.inf)
    for has, j, mine_near, other_far in ((has_l, j_l, near_l, far_r), (has_r, j_r, near_r, far_l)):
        rows = np.flatnonzero(has & (mine_near <= other_far))
        if rows.size == 0:
            continue
        jr = j[rows]
        x = _refine(cf[rows], _X_GRID[jr], _X_GRID[jr + 1], f_hi=f[rows, jr + 1])
        r = 1.0 / x - 1.0
        better = np.abs(r) < np.abs(best_r[rows])
        best_r[rows[better]] = r[better]
    # beyond the grid: a root with r in (-1, -0.99) where f changes sign between x_max and
    # infinity, and one with r > 1000 where it changes between 0+ and x_min
    nz = cf != 0
    at_inf = cf[np.arange(n), cf.shape[1] - 1 - np.argmax(nz[:, ::-1], axis=1)] > 0
    rows = np.flatnonzero(at_inf != pos[:, -1])
    if rows.size:
        lo = np.full(rows.size, _X_GRID[-1])
        hi = _bracket_above(cf[rows], lo, pos[rows, -1])
        r = 1.0 / _refine(cf[rows], lo, hi) - 1.0
        better = np.abs(r) < np.abs(best_r[rows])
        best_r[rows[better]] = r[better]
    rows = np.flatnonzero(((cf[:, 0] > 0) != pos[:, 0]) & ~np.isfinite(best_r))
    if rows.size:
        x = _refine(cf[rows], np.zeros(rows.size), np.full(rows.size, _X_GRID[0]))
        best_r[rows] = 1.0 / x - 1.0
    # no root found, yet the sampled NPV turns back towards zero: two roots may share a cell
    # (a near-double root). A parabola through each local extremum of the grid values tells;
    # numpy's polynomial roots settle the (rare) rows where it crosses zero.
    unfound = np.flatnonzero(~np.isfinite(best_r))
    for i in unfound[_pair_in_a_cell(f[unfound])]:
        best_r[i] = _irr_roots(cf[i])
    return np.where(np.isfinite(best_r), best_r, np.nan)


def _pair_in_a_cell(f: FloatArray) -> NDArray[np.bool_]:
    """(n,) True where a parabola through three neighbouring grid values of f (n, G) has its
    vertex between them on the other side of zero."""
    x0, x1, x2 = _X_GRID[:-2], _X_GRID[1:-1], _X_GRID[2:]
    f0, f1, f2 = f[:, :-2], f[:, 1:-1], f[:, 2:]
    turning = (f1 - f0) * (f2 - f1) < 0
    s01, s12 = (f1 - f0) / (x1 - x0), (f2 - f1) / (x2 - x1)
    a = (s12 - s01) / (x2 - x0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = s01 - a * (x1 + x0)
        xv = -b / (2.0 * a)
        fv = f1 + (xv - x1) * (s01 + a * (xv - x0))  # the parabola at its vertex
    return np.any(turning & (np.sign(fv) != np.sign(f1)) & (xv > x0) & (xv < x2), axis=1)


def _irr_roots(values: FloatArray) -> float:
    """numpy-financial's rule on one row: the real root with x > 0 closest to r = 0."""
    res = np.roots(values[::-1])
    res = res[(res.imag == 0) & (res.real > 0)].real
    if res.size == 0:
        return np.nan
    rate = 1.0 / res - 1.0
    return float(rate[np.argmin(np.abs(rate))])


def _drop_leading_zeros(cf: FloatArray) -> FloatArray:
    """Shift each row left past its leading zeros (x = 0 is never a root we want)."""
    lead = np.argmax(cf != 0, axis=1)
    if not lead.any():
        return cf
    idx = np.arange(cf.shape[1])[None, :] + lead[:, None]
    shifted = np.take_along_axis(cf, np.minimum(idx, cf.shape[1] - 1), axis=1)
    return np.where(idx < cf.shape[1], shifted, 0.0)


def irr(
    cashflows: ArrayLike, axis: int = -1, *, full_output: bool = False
) -> FloatArray | tuple[FloatArray, NDArray[np.bool_]]:
    """Internal rate of return of each row, vectorised; numpy-financial semantics.

    cashflows: (..., T) with the first flow at t = 0. Returns (...) rates per period, NaN where
    no real root exists. Where the flows change sign more than once several roots may exist;
    like ``numpy_financial.irr`` the root closest to zero is returned. With ``full_output`` also
    returns a (...) bool array flagging those rows.
    """
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    lead = cf.shape[:-1]
    flat = _drop_leading_zeros(cf.reshape(-1, cf.shape[-1]))
    changes = sign_changes(flat)
    out = np.full(flat.shape[0], np.nan)
    finite = np.isfinite(flat).all(axis=1)
    one = (changes == 1) & finite
    many = (changes > 1) & finite
    if one.any():
        out[one] = _irr_single(flat[one])
    if many.any():
        out[many] = _irr_multi(flat[many])
    rates = out.reshape(lead)
    if full_output:
        return rates, (changes > 1).reshape(lead)
    return rates


def moic(cashflows: ArrayLike, axis: int = -1) -> FloatArray:
    """Multiple on invested capital: sum of inflows / sum of outflows (NaN if nothing invested)."""
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    invested = -np.sum(np.minimum(cf, 0.0), axis=-1)
    returned = np.sum(np.maximum(cf, 0.0), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(invested > 0, returned / invested, np.nan)


def payback_period(cashflows: ArrayLike, axis: int = -1) -> FloatArray:
    """First period index at which cumulative cash turns >= 0 and stays so; NaN if never.

    Interpolated linearly inside the period, so 2.5 means halfway through period 3's flow.
    """
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    cum = np.cumsum(cf, axis=-1)
    negative = cum < 0
    t_len = cf.shape[-1]
    # last index with a negative cumulative; payback happens in the period after it
    last_neg = np.where(negative.any(axis=-1),
                        t_len - 1 - np.argmax(negative[..., ::-1], axis=-1), -1)
    out = np.full(cf.shape[:-1], np.nan)
    ok = (last_neg >= 0) & (last_neg < t_len - 1)
    idx = np.clip(last_neg + 1, 0, t_len - 1)
    before = np.take_along_axis(cum, np.clip(last_neg, 0, t_len - 1)[..., None], -1)[..., 0]
    flow = np.take_along_axis(cf, idx[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(flow > 0, -before / flow, 0.0)
    out[ok] = (last_neg + frac)[ok]
    out[last_neg < 0] = 0.0
    return out


def dscr(cfads: ArrayLike, debt_service: ArrayLike) -> FloatArray:
    """Debt service cover ratio per period; NaN where no debt service is due. Shapes broadcast."""
    c = np.asarray(cfads, dtype=float)
    d = np.asarray(debt_service, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, c / d, np.nan)


def llcr(cfads: ArrayLike, rate: ArrayLike, balance: ArrayLike, axis: int = -1) -> FloatArray:
    """Loan life cover ratio per period: PV of CFADS from this period to the loan's last period
    (flows at period ends, discounted at ``rate``) over the opening balance; NaN without debt.

    cfads, balance: (..., T) EUR m, balance = opening balance of each period;
    rate: scalar, (...) or (..., T) per-period loan rate. Returns (..., T).
    """
    c = np.moveaxis(np.asarray(cfads, dtype=float), axis, -1)
    b = np.moveaxis(np.asarray(balance, dtype=float), axis, -1)
    r = np.asarray(rate, dtype=float)
    r = np.moveaxis(r, axis, -1) if r.ndim == c.ndim else r[..., None]
    r = np.broadcast_to(r, c.shape)
    alive = b > 1e-9
    t_len = c.shape[-1]
    last = np.where(alive.any(axis=-1), t_len - 1 - np.argmax(alive[..., ::-1], axis=-1), -1)
    in_life = np.arange(t_len) <= last[..., None]
    pv = np.zeros_like(c)
    acc = np.zeros(c.shape[:-1])
    for k in range(t_len - 1, -1, -1):
        acc = (acc + np.where(in_life[..., k], c[..., k], 0.0)) / (1.0 + r[..., k])
        pv[..., k] = acc
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(alive, pv / b, np.nan)
    return np.moveaxis(out, -1, axis)
