"""Vectorised financial metrics over any leading shape; time runs along ``axis`` (default last).

Conventions follow numpy-financial: the first flow is at t = 0 and is not discounted, rates are
per period, and "no solution" is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from finmodel.compiled import by_row_and_period, fma_kernel, kernel

__all__ = ["IRR_SELECTIONS", "dscr", "dscr_summary", "irr", "llcr", "mirr", "moic", "npv",
           "payback_period", "sign_changes"]

FloatArray = NDArray[np.float64]

# Grid of discount factors x = 1 / (1 + r) scanned for roots when flows change sign more than once:
# steps of 0.05 in r for -0.5 <= r <= 1, geometric in x (ratio ~1.05-1.26) from there out to
# r = 1e6 and r = -0.999999. A cell holds a root where f changes sign across it, or a pair where
# f turns back across zero inside it (split at the turning point). For flows whose sizes differ
# by less than a factor 1e6 every root lies on the grid (Cauchy's bounds).
_X_GRID = np.concatenate([
    np.geomspace(1e-6, 1e-3, 30, endpoint=False),
    np.geomspace(1e-3, 0.5, 30, endpoint=False),
    1.0 / (1.0 + np.linspace(1.0, -0.5, 31)),
    np.geomspace(2.0, 100.0, 81)[1:],
    np.geomspace(100.0, 1e6, 41)[1:],
])


def npv(rate: ArrayLike, cashflows: ArrayLike, axis: int = -1) -> FloatArray:
    """Net present value: sum_t cf_t / (1 + rate)^t, t = 0, 1, ...

    rate: scalar or array broadcastable to the leading shape of ``cashflows``;
    cashflows: (..., T). Returns (...): a scalar for 1-D input, 0 for no flows, NaN at
    rate = -1 (where the discount factor does not exist).
    """
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    r = np.asarray(rate, dtype=float)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):  # rate -1: NaN below, no warning
        discount = np.where(r != -1.0, (1.0 + r) ** -np.arange(cf.shape[-1]), np.nan)
    lead, n_t = np.broadcast_shapes(cf.shape[:-1], discount.shape[:-1]), cf.shape[-1]
    if n_t == 0:  # no flows: worth nothing, as in numpy-financial
        return np.zeros(lead)[()]
    out = np.empty(lead)
    # row by row, so that a row's NPV does not depend on the other rows (a BLAS matrix-vector
    # product does, in its last bit, which would break bit-identical results across chunk sizes)
    _npv_rows(by_row_and_period(cf, lead, n_t),
              discount.reshape(1, n_t) if discount.size == n_t
              else by_row_and_period(discount, lead, n_t), out.reshape(-1))
    return out if out.ndim else out[()]


@kernel
def _npv_rows(cf: FloatArray, discount: FloatArray, out: FloatArray) -> None:
    """``npv`` on rows (R, T) with discount factors (1 or R, T) into out (R,)."""
    one = discount.shape[0] == 1
    for i in range(cf.shape[0]):
        d = discount[0] if one else discount[i]
        acc = 0.0
        for t in range(cf.shape[1]):
            acc += cf[i, t] * d[t]
        out[i] = acc


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


_K0 = int(np.searchsorted(0.5 * (_X_GRID[1:] + _X_GRID[:-1]), 1.0, side="right"))
_RATE_FAR = 1.0 - 1.0 / _X_GRID[-1]  # |r| beyond the grid's x end
_NEWTON_ITERATIONS = 200


@fma_kernel
def _horner(c: FloatArray, x: float) -> tuple[float, float]:
    """f(x) = sum_k c_k x^k and f'(x); c: (m,). Four Horner chains in x^4 each for f and f'
    (coefficients k = j mod 4), which the CPU works on side by side, in fused multiply-adds:
    evaluations in a Newton iteration wait on each other, so latency is the cost."""
    x2 = x * x
    x4 = x2 * x2
    n = c.size
    full = n - n % 4  # c[:full] in whole groups of four, c[full:] the top partial group
    f0 = f1 = f2 = f3 = d0 = d1 = d2 = d3 = 0.0  # d_j: f' has coefficients (k + 1) c_(k+1)
    if full < n:
        f0 = c[full]
        if full + 1 < n:
            f1, d0 = c[full + 1], (full + 1) * c[full + 1]
        if full + 2 < n:
            f2, d1 = c[full + 2], (full + 2) * c[full + 2]
        if full + 3 < n:
            f3, d2 = c[full + 3], (full + 3) * c[full + 3]
    above = c[full] if full < n else 0.0  # c_(k+4) for the group at k
    for k in range(full - 4, -1, -4):
        f0 = f0 * x4 + c[k]
        f1 = f1 * x4 + c[k + 1]
        f2 = f2 * x4 + c[k + 2]
        f3 = f3 * x4 + c[k + 3]
        d0 = d0 * x4 + (k + 1) * c[k + 1]
        d1 = d1 * x4 + (k + 2) * c[k + 2]
        d2 = d2 * x4 + (k + 3) * c[k + 3]
        d3 = d3 * x4 + (k + 4) * above
        above = c[k]
    return (f0 + x * f1) + x2 * (f2 + x * f3), (d0 + x * d1) + x2 * (d2 + x * d3)


@kernel
def _sign(v: float) -> float:
    return 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)


@kernel
def _hermite_root(lo: float, hi: float, f_lo: float, f_hi: float, d_lo: float, d_hi: float) -> float:
    """Root in (lo, hi) of the cubic that matches f and f' at both ends, where f changes sign:
    a start for Newton with an error of order h^4 (the secant's: h^2; h = hi - lo), found by
    Newton steps on the cubic kept inside [0, 1] in s = (x - lo) / h. NaN if not found."""
    h = hi - lo
    a = 2.0 * (f_lo - f_hi) + h * (d_lo + d_hi)  # p(s) = a s^3 + b s^2 + h d_lo s + f_lo
    b = 3.0 * (f_hi - f_lo) - h * (2.0 * d_lo + d_hi)
    s_lo, s_hi = 0.0, 1.0
    s = f_lo / (f_lo - f_hi)  # the secant point
    for _ in range(8):
        p = ((a * s + b) * s + h * d_lo) * s + f_lo
        if (p > 0) == (f_lo > 0):
            s_lo = s
        else:
            s_hi = s
        newton = s - p / ((3.0 * a * s + 2.0 * b) * s + h * d_lo)
        s_new = newton if s_lo < newton < s_hi else 0.5 * (s_lo + s_hi)
        done = abs(s_new - s) <= 1e-12
        s = s_new
        if done:
            break
    x = lo + s * h
    return x if lo < x < hi else np.nan


@kernel
def _refine(c: FloatArray, lo: float, hi: float, f_lo: float, f_hi: float, d_lo: float,
            d_hi: float) -> float:
    """Root of f in [lo, hi] where f(lo) and f(hi) differ in sign: Newton steps kept inside the
    shrinking bracket, bisection otherwise, from the root of the Hermite cubic when the slopes
    d_lo, d_hi at the ends are finite, else the secant point when f_hi is finite, else the
    midpoint. Stops once a step is below 1e-14 relative, or a Newton step is below 1e-9 and a
    thousandth of the one before (quadratic convergence: what is left is of order its square).
    f_lo: f(lo), or NaN to compute."""
    if np.isnan(f_lo):
        f_lo = _horner(c, lo)[0]
    x = 0.5 * (lo + hi)
    if np.isfinite(f_hi):
        secant = lo - f_lo * (hi - lo) / (f_hi - f_lo)
        if np.isfinite(secant) and lo < secant < hi:
            x = secant
        if np.isfinite(d_lo) and np.isfinite(d_hi) and f_lo != 0 and f_hi != 0:
            cubic = _hermite_root(lo, hi, f_lo, f_hi, d_lo, d_hi)
            if np.isfinite(cubic):
                x = cubic
    if f_lo == 0:
        x = lo
    last_step = 0.0  # no ratio before the second step: a first step proves nothing
    for _ in range(_NEWTON_ITERATIONS):
        f, df = _horner(c, x)
        if _sign(f) == _sign(f_lo):
            lo, f_lo = x, f
        else:
            hi = x
        newton = x - f / df
        is_newton = False
        if f == 0:
            x_new = x
        elif np.isfinite(newton) and lo <= newton <= hi:
            x_new, is_newton = newton, True
        else:
            x_new = 0.5 * (lo + hi)
        scale = max(1.0, abs(x_new))
        step = abs(x_new - x)
        done = (step <= 1e-14 * scale or hi - lo <= 1e-14 * scale or f == 0
                or (is_newton and step <= 1e-9 * scale and step <= 1e-3 * last_step))
        x, last_step = x_new, step
        if done:
            break
    return x


@kernel
def _bracket_above(c: FloatArray, lo: float, positive_at_lo: bool) -> float:
    """Grow hi = 4 lo, 16 lo, ... until f(hi) has the other sign than at lo."""
    hi = max(lo, 0.5) * 4.0
    for _ in range(600):
        if (_horner(c, hi)[0] > 0) != positive_at_lo:
            break
        hi *= 4.0
    return hi


@kernel
def _slope_and_curvature(c: FloatArray, x: float) -> tuple[float, float]:
    """f'(x) and f''(x) of f(x) = sum_k c_k x^k; c: (m,)."""
    f = df = d2f = 0.0
    for k in range(c.size - 1, -1, -1):
        d2f = d2f * x + 2.0 * df
        df = df * x + f
        f = f * x + c[k]
    return df, d2f


@kernel
def _turning_point(c: FloatArray, lo: float, hi: float, rising_at_lo: bool) -> float:
    """Root of f' in [lo, hi], where f' has the sign given by rising_at_lo at lo and the
    other at hi: Newton steps on f' kept inside the bracket, bisection otherwise."""
    x = 0.5 * (lo + hi)
    for _ in range(_NEWTON_ITERATIONS):
        d, d2 = _slope_and_curvature(c, x)
        if (d > 0) == rising_at_lo:
            lo = x
        else:
            hi = x
        newton = x - d / d2
        x_new = newton if np.isfinite(newton) and lo <= newton <= hi else 0.5 * (lo + hi)
        done = abs(x_new - x) <= 1e-14 * max(1.0, abs(x_new)) or d == 0
        x = x_new
        if done:
            break
    return x


@kernel
def _pair_in_cell(c: FloatArray, x0: float, x1: float, f0: float, f1: float, d0: float,
                  d1: float) -> float:
    """Root closest to r = 0 of a pair sharing the cell [x0, x1], where f has the same sign
    at both ends (f0, f1) and slopes (d0, d1) that turn it towards zero inside; NaN if the
    turning point stays on the same side of zero."""
    if not (f0 > 0 and d0 < 0 < d1) and not (f0 < 0 and d0 > 0 > d1):
        return np.nan
    xm = _turning_point(c, x0, x1, d0 > 0)
    fm = _horner(c, xm)[0]
    if (fm > 0) == (f0 > 0) and fm != 0:
        return np.nan
    r_a = 1.0 / _refine(c, x0, xm, f0, fm, np.nan, np.nan) - 1.0
    r_b = 1.0 / _refine(c, xm, x1, fm, f1, np.nan, np.nan) - 1.0
    return r_a if abs(r_a) <= abs(r_b) else r_b


@kernel
def _irr_multi(c: FloatArray, x: FloatArray, k0: int, f: FloatArray, df: FloatArray,
               stamp: NDArray[np.int64], row: int) -> tuple[float, bool]:
    """Root closest to r = 0 of flows c (m,) that change sign several times, c[0] != 0 and
    c[-1] != 0. Grid cells are scanned outwards from r = 0 on both sides in order of |r|, only
    as far as a root could still be closer; a cell holds a root where f changes sign, or a
    pair where f turns back across zero inside it. Then the grid's two open ends. Returns
    (rate, needs_roots): NaN and True where numpy's polynomial roots must settle the row
    (roots beyond the grid that its ends cannot separate). Only cells inside Cauchy's bounds
    on the roots are scanned. f, df, stamp (G,): work space; f[g], df[g] hold f and f' at x[g]
    where stamp[g] == row."""
    n_g = x.size
    big = small = 0.0
    for k in range(c.size):
        if k < c.size - 1:
            big = max(big, abs(c[k]))
        if k > 0:
            small = max(small, abs(c[k]))
    x_upper = 1.0 + big / abs(c[c.size - 1])  # every root x lies in [x_lower, x_upper]
    x_lower = abs(c[0]) / (abs(c[0]) + small)

    def at(g):
        if stamp[g] != row:
            f[g], df[g] = _horner(c, x[g])
            stamp[g] = row
        return f[g]

    # cells j = [x_j, x_j+1]: r >= 0 left of k0 (nearest j = k0 - 1), r < 0 from k0 (nearest k0)
    j_l, j_r = k0 - 1, k0
    root_l = root_r = np.nan
    best = np.inf  # the root closest to zero found so far
    while True:
        left = j_l >= 0 and x[j_l + 1] >= x_lower and np.isnan(root_l)
        right = j_r < n_g - 1 and x[j_r] <= x_upper and np.isnan(root_r)
        near_l = 1.0 / x[j_l + 1] - 1.0 if left else np.inf
        near_r = 1.0 - 1.0 / x[j_r] if right else np.inf
        if min(near_l, near_r) >= abs(best) or (near_l == np.inf and near_r == np.inf):
            break  # no cell left that could hold a root closer to zero
        j = j_l if near_l <= near_r else j_r
        lo, hi = at(j), at(j + 1)
        if (lo > 0) != (hi > 0):
            root = 1.0 / _refine(c, x[j], x[j + 1], lo, hi, df[j], df[j + 1]) - 1.0
        else:
            root = _pair_in_cell(c, x[j], x[j + 1], lo, hi, df[j], df[j + 1])
        if near_l <= near_r:
            root_l = root
            j_l -= 1
        else:
            root_r = root
            j_r += 1
        if abs(root) < abs(best) or (abs(root) == abs(best) and root > best):  # ties: r >= 0
            best = root
    # beyond the grid: r in (-1, x_max) where f changes sign between x_max and infinity, and
    # r above the grid where it changes between 0+ and x_min
    if x_upper > x[n_g - 1]:
        pos_max = at(n_g - 1) > 0
        if (c[c.size - 1] > 0) != pos_max:
            r = 1.0 / _refine(c, x[n_g - 1], _bracket_above(c, x[n_g - 1], pos_max), np.nan, np.nan,
                                np.nan, np.nan) - 1.0
            if abs(r) < abs(best):
                best = r
        if not abs(best) < _RATE_FAR:  # more roots may hide there
            return np.nan, True
    if x_lower < x[0] and not np.isfinite(best):
        if (c[0] > 0) != (at(0) > 0):
            best = 1.0 / _refine(c, 0.0, x[0], c[0], np.nan, np.nan, np.nan) - 1.0
        else:
            return np.nan, True
    return (best, False) if np.isfinite(best) else (np.nan, False)


@kernel
def _irr_rows(cf: FloatArray, x: FloatArray, k0: int, rates: FloatArray,
              changes: NDArray[np.int64], needs_roots: NDArray[np.bool_],
              unique: NDArray[np.bool_]) -> None:
    """IRR of each row of cf (n, T) into rates (n,), sign changes into changes (n,); rows that
    need numpy's polynomial roots are flagged in needs_roots (n,), rows with exactly one real
    root (by Descartes' rule) in unique (n,)."""
    f, df = np.empty(x.size), np.empty(x.size)
    stamp = np.full(x.size, -1)
    for i in range(cf.shape[0]):
        rates[i] = np.nan
        first, last, n_changes, finite = -1, -1, 0, True
        scale = total = moment = 0.0  # sum |v|, sum v = f(1), sum t v
        for t in range(cf.shape[1]):
            v = cf[i, t]
            scale += abs(v)
            total += v
            moment += t * v
            if not np.isfinite(v):
                finite = False
            if v != 0:
                if first < 0:
                    first = t
                elif (v > 0) != (cf[i, last] > 0):
                    n_changes += 1
                last = t
        changes[i] = n_changes
        if not finite or n_changes == 0:
            continue
        c = cf[i, first:last + 1]
        slope = moment - first * total  # f'(1) of c = cf[i, first:]
        if n_changes == 1:  # one root x in (0, inf): below x = 1 if f(1) and f(0+) = c[0] differ
            side = 1 if (total > 0) != (c[0] > 0) else -1
        else:
            side = _only_root_side(c, scale)
        unique[i] = side != 0
        if total == 0 and side != 0:
            rates[i] = 0.0
        elif side != 0:
            rates[i] = 1.0 / _walk_to_root(c, x, k0, side, total, slope) - 1.0
        else:
            f[k0], df[k0], stamp[k0] = total, slope, i  # x[k0] = 1
            rates[i], needs_roots[i] = _irr_multi(c, x, k0, f, df, stamp, i)


@kernel
def _walk_to_root(c: FloatArray, x: FloatArray, k0: int, side: int, f_one: float,
                  d_one: float) -> float:
    """The only root x of flows c (m,), known to lie below x = 1 (side 1) or above it (side -1):
    grid cells are walked away from x = 1 (= x[k0]) until f changes sign, then refined.
    f_one, d_one: f(1) and f'(1)."""
    step = -1 if side > 0 else 1
    j, f_j, d_j = k0, f_one, d_one
    while True:
        nxt = j + step
        if nxt < 0:  # beyond the grid's small end: between 0 and x[0]
            return _refine(c, 0.0, x[0], c[0], f_j, c[1] if c.size > 1 else 0.0, d_j)
        if nxt >= x.size:  # beyond its large end
            hi = _bracket_above(c, x[x.size - 1], f_j > 0)
            return _refine(c, x[x.size - 1], hi, f_j, _horner(c, hi)[0], np.nan, np.nan)
        f_next, d_next = _horner(c, x[nxt])
        if (f_next > 0) != (f_j > 0) or f_next == 0:
            if step < 0:
                return _refine(c, x[nxt], x[j], f_next, f_j, d_next, d_j)
            return _refine(c, x[j], x[nxt], f_j, f_next, d_j, d_next)
        j, f_j, d_j = nxt, f_next, d_next


@kernel
def _only_root_side(c: FloatArray, scale: float) -> int:
    """Where flows c (m,) with several sign changes have their only root, if partial sums show
    it: 1 for x in (0, 1), -1 for x > 1, 0 if they do not tell. scale: sum of |c|.

    For x in (0, 1), f(x) / (1 - x) is the power series with coefficients A_0, ..., A_n, A_n,
    A_n, ... (A_j = c_0 + ... + c_j), so by Descartes' rule f has at most as many roots there
    as the partial sums have sign changes; the partial sums from the end (c_n, c_n + c_(n-1),
    ...) bound the roots in x > 1 alike. One change on one side and none on the other: the
    root is unique. Partial sums within rounding of zero give no answer."""
    n = c.size
    tol = 1e-12 * scale
    forward = backward = 0
    sign_f = sign_b = 0.0
    acc_f = acc_b = 0.0
    for k in range(n):
        acc_f += c[k]
        acc_b += c[n - 1 - k]
        if abs(acc_f) <= tol or abs(acc_b) <= tol:
            return 0
        if acc_f * sign_f < 0:
            forward += 1
        if acc_b * sign_b < 0:
            backward += 1
        if forward + backward > 1:  # neither (1, 0) nor (0, 1) any more
            return 0
        sign_f, sign_b = _sign(acc_f), _sign(acc_b)
    if forward + backward == 1:
        return 1 if forward else -1
    return 0


@kernel
def _count_roots_rows(cf: FloatArray, rows: NDArray[np.int64], x: FloatArray,
                      out: NDArray[np.int64]) -> None:
    """Number of real IRRs, capped at 2, of the listed rows of cf (n, T) into out (n,): sign
    changes of f across the grid's cells, pairs where f turns back across zero inside a cell
    (as in ``_irr_multi``) and a root beyond either open end of the grid."""
    n_g = x.size
    for i in rows:
        first, last = -1, -1
        for t in range(cf.shape[1]):
            if cf[i, t] != 0:
                if first < 0:
                    first = t
                last = t
        if first < 0 or first == last:
            out[i] = 0
            continue
        c = cf[i, first:last + 1]
        f_prev, d_prev = _horner(c, x[0])
        count = 1 if (c[0] > 0) != (f_prev > 0) and f_prev != 0 else 0  # between 0+ and x[0]
        for j in range(1, n_g):
            if count >= 2:
                break
            f_j, d_j = _horner(c, x[j])
            if f_j == 0 or (f_j > 0) != (f_prev > 0):
                count += 1 if f_prev != 0 else 0
            elif np.isfinite(_pair_in_cell(c, x[j - 1], x[j], f_prev, f_j, d_prev, d_j)):
                count += 2
            f_prev, d_prev = f_j, d_j
        if count < 2 and f_prev != 0 and (f_prev > 0) != (c[c.size - 1] > 0):
            count += 1  # between the grid's end and infinity
        out[i] = min(count, 2)


def _real_irrs(values: FloatArray) -> FloatArray:
    """Every real IRR (r > -1, i.e. x > 0) of one row, ascending: numpy's polynomial roots, real
    where their imaginary part is exactly 0 (LAPACK returns real eigenvalues so)."""
    nz = np.flatnonzero(values)
    if nz.size < 2:
        return np.empty(0)
    res = np.roots(values[nz[0]:nz[-1] + 1][::-1])
    res = res[(res.imag == 0) & (res.real > 0)].real
    return np.sort(1.0 / res - 1.0)


def _irr_roots(values: FloatArray) -> float:
    """numpy-financial's rule on one row: the real root with x > 0 closest to r = 0."""
    rate = _real_irrs(values)
    if rate.size == 0:
        return np.nan
    return float(rate[np.argmin(np.abs(rate))])


IRR_SELECTIONS = ("closest_to_zero", "non_negative_first")


def irr(
    cashflows: ArrayLike, axis: int = -1, *, full_output: bool = False,
    select: str = "closest_to_zero",
) -> FloatArray | tuple[FloatArray, NDArray[np.int64]]:
    """Internal rate of return of each row, vectorised; numpy-financial semantics.

    cashflows: (..., T) with the first flow at t = 0. Returns (...) rates per period (a scalar
    for 1-D input), NaN where no real root exists or there are no flows. Where the flows change
    sign more than once several roots may exist; ``select`` picks one:

    * ``"closest_to_zero"`` (numpy-financial 1.0's rule, the default): the root closest to 0;
    * ``"non_negative_first"`` (numpy-financial's later rule): the smallest root >= 0 if there
      is one, else the root closest to zero.

    With ``full_output`` also returns (...) int: the number of real IRRs of each row (0, 1,
    or 2 for "two or more"). Rows whose count Descartes' rule leaves open (several sign
    changes, partial sums that do not settle it) are counted on the root-finding grid
    (``_count_roots_rows``, about 5 us a row).

    In x = 1 / (1 + r) the flows are a polynomial f. Where the root is unique (one sign change,
    or partial sums that show it by Descartes' rule, see ``_only_root_side``) a grid of x is
    walked from r = 0 on the root's side until f changes sign; otherwise the grid cells nearest
    r = 0 on each side are searched. A cell's root is refined by Newton steps kept inside the
    bracket, from the root of the cubic that matches f and f' at the cell's ends. Rows whose
    roots the grid cannot separate (two roots in a cell or beyond an open end of the grid, a
    rare case) go to ``numpy.roots``.
    """
    if select not in IRR_SELECTIONS:
        raise ValueError(f"select={select!r}: choose from {', '.join(IRR_SELECTIONS)}")
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    lead = cf.shape[:-1]
    flat = np.ascontiguousarray(cf.reshape(math.prod(lead), cf.shape[-1]))
    rates = np.full(flat.shape[0], np.nan)
    changes = np.zeros(flat.shape[0], dtype=np.int64)
    needs_roots = np.zeros(flat.shape[0], dtype=bool)
    unique = np.zeros(flat.shape[0], dtype=bool)
    if flat.shape[1]:
        _irr_rows(flat, _X_GRID, _K0, rates, changes, needs_roots, unique)
    for i in np.flatnonzero(needs_roots):
        rates[i] = _irr_roots(flat[i])
    counts = None
    if full_output or select != "closest_to_zero":
        counts = np.where(unique, 1, 0)
        _count_roots_rows(flat, np.flatnonzero((changes > 1) & ~unique), _X_GRID, counts)
        if select == "non_negative_first":
            for i in np.flatnonzero((counts > 1) & ~(rates >= 0)):
                roots = _real_irrs(flat[i])
                if (roots >= 0).any():
                    rates[i] = roots[roots >= 0].min()
    rates = rates.reshape(lead)[()]
    if full_output:
        return rates, counts.reshape(lead)[()]
    return rates


def mirr(cashflows: ArrayLike, finance_rate: ArrayLike, reinvest_rate: ArrayLike,
         axis: int = -1) -> FloatArray:
    """Modified IRR, as ``numpy_financial.mirr``: outflows discounted at ``finance_rate``,
    inflows compounded at ``reinvest_rate`` to the last period.

    cashflows: (..., T); rates: scalars or broadcastable to (...). Returns (...) per period
    (a scalar for 1-D input), NaN for rows without both an inflow and an outflow."""
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    n = cf.shape[-1]
    fin, rein = np.asarray(finance_rate, float), np.asarray(reinvest_rate, float)
    inflow = np.abs(npv(rein, np.where(cf > 0, cf, 0.0)))
    outflow = np.abs(npv(fin, np.where(cf < 0, cf, 0.0)))
    ok = (cf > 0).any(-1) & (cf < 0).any(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (inflow / np.where(ok, outflow, 1.0)) ** (1.0 / max(n - 1, 1)) * (1.0 + rein) - 1.0
    return np.where(ok, out, np.nan)[()]


def moic(cashflows: ArrayLike, axis: int = -1) -> FloatArray:
    """Multiple on invested capital: sum of inflows / sum of outflows (NaN if nothing invested).

    cashflows: (..., T). Returns (...)."""
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    out = np.empty(cf.shape[:-1])
    _moic_rows(by_row_and_period(cf, cf.shape[:-1], cf.shape[-1]), out.reshape(-1))
    return out


@kernel
def _moic_rows(cf: FloatArray, out: FloatArray) -> None:
    """``moic`` on rows (R, T) into out (R,)."""
    for i in range(cf.shape[0]):
        invested = returned = 0.0
        for t in range(cf.shape[1]):
            v = cf[i, t]
            if v < 0:
                invested -= v
            else:
                returned += v  # NaN lands here: no number out
        out[i] = returned / invested if invested > 0 else np.nan


def payback_period(cashflows: ArrayLike, axis: int = -1) -> FloatArray:
    """First period index at which cumulative cash turns >= 0 and stays so; NaN if never (or if
    a flow is NaN).

    Interpolated linearly inside the period, so 2.5 means halfway through period 3's flow.
    cashflows: (..., T). Returns (...) periods.
    """
    cf = np.moveaxis(np.asarray(cashflows, dtype=float), axis, -1)
    out = np.empty(cf.shape[:-1])
    _payback_rows(by_row_and_period(cf, cf.shape[:-1], cf.shape[-1]), out.reshape(-1))
    return out


@kernel
def _payback_rows(cf: FloatArray, out: FloatArray) -> None:
    """``payback_period`` on rows (R, T) into out (R,)."""
    n_t = cf.shape[1]
    for i in range(cf.shape[0]):
        cumulative, last_negative, deficit = 0.0, -1, 0.0
        for t in range(n_t):
            cumulative += cf[i, t]
            if cumulative < 0:
                last_negative, deficit = t, cumulative
        if np.isnan(cumulative):  # a missing flow: no payback can be told
            out[i] = np.nan
        elif last_negative < 0:
            out[i] = 0.0
        elif last_negative == n_t - 1:
            out[i] = np.nan
        else:  # paid back during the next period's flow
            flow = cf[i, last_negative + 1]
            out[i] = last_negative + (-deficit / flow if flow > 0 else 0.0)


def dscr(cfads: ArrayLike, debt_service: ArrayLike) -> FloatArray:
    """Debt service cover ratio per period; NaN where no debt service is due. Shapes broadcast."""
    c = np.asarray(cfads, dtype=float)
    d = np.asarray(debt_service, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, c / d, np.nan)


def dscr_summary(dscr_by_period: ArrayLike, axis: int = -1) -> tuple[FloatArray, FloatArray]:
    """Lowest and average DSCR over the periods with debt service (non-NaN DSCR); NaN if none.

    dscr_by_period: (..., T). Returns two (...) arrays."""
    d = np.moveaxis(np.asarray(dscr_by_period, dtype=float), axis, -1)
    lowest, average = np.empty(d.shape[:-1]), np.empty(d.shape[:-1])
    _dscr_summary_rows(by_row_and_period(d, d.shape[:-1], d.shape[-1]), lowest.reshape(-1),
                       average.reshape(-1))
    return lowest, average


@kernel
def _dscr_summary_rows(d: FloatArray, lowest: FloatArray, average: FloatArray) -> None:
    """``dscr_summary`` on rows (R, T) into lowest and average (R,)."""
    for i in range(d.shape[0]):
        low, total, n = np.inf, 0.0, 0
        for t in range(d.shape[1]):
            v = d[i, t]
            if not np.isnan(v):
                low = min(low, v)
                total += v
                n += 1
        lowest[i] = low if n > 0 else np.nan
        average[i] = total / n if n > 0 else np.nan


def llcr(cfads: ArrayLike, rate: ArrayLike, balance: ArrayLike, axis: int = -1,
         at: ArrayLike | None = None) -> FloatArray:
    """Loan life cover ratio per period: PV of CFADS from this period to the loan's last period
    (flows at period ends, discounted at ``rate``) over the opening balance; NaN without debt.

    cfads, balance: (..., T) EUR m, balance = opening balance of each period;
    rate: scalar, (...) or (..., T) per-period loan rate. Returns (..., T); with ``at``, a (...)
    int period index, only the LLCR at that period, (...) (NaN where ``at`` is outside 0..T-1).
    """
    c = np.moveaxis(np.asarray(cfads, dtype=float), axis, -1)
    b = np.moveaxis(np.asarray(balance, dtype=float), axis, -1)
    r = np.asarray(rate, dtype=float)
    r = np.moveaxis(r, axis, -1) if r.ndim == c.ndim else r[..., None]
    shape = np.broadcast_shapes(c.shape, b.shape, r.shape)
    lead, t_len = shape[:-1], shape[-1]
    rows = int(np.prod(lead, dtype=np.int64))
    periods = (np.empty(0, np.int64) if at is None
               else np.ascontiguousarray(np.broadcast_to(at, lead), dtype=np.int64).reshape(-1))
    out = np.empty((rows, t_len if at is None else 1))
    rates = by_row_and_period(r, lead, r.shape[-1])  # (R, 1) or (R, T)
    _llcr_rows(by_row_and_period(c, lead, t_len), rates, by_row_and_period(b, lead, t_len),
               periods, out)
    if at is not None:
        return out.reshape(lead)
    return np.moveaxis(out.reshape(shape), -1, axis)


@kernel
def _llcr_rows(cfads: FloatArray, rate: FloatArray, balance: FloatArray,
               at: NDArray[np.int64], out: FloatArray) -> None:
    """``llcr`` on rows (R, T): discount CFADS back from the loan's last period. rate: (R, T),
    or (R, 1) for one rate per row. at: empty, and out (R, T) gets every period; or (R,)
    period indices, and out (R, 1) gets the LLCR at that period."""
    per_period = rate.shape[1] > 1
    series = at.size == 0
    for i in range(cfads.shape[0]):
        last = -1
        for t in range(cfads.shape[1]):
            if balance[i, t] > 1e-9:
                last = t
        if not series:
            out[i, 0] = np.nan
        pv = 0.0
        for t in range(cfads.shape[1] - 1, -1, -1):
            # times the discount factor, not divided by 1 + rate: keeps the division off the
            # chain of dependent steps
            discount = 1.0 / (1.0 + rate[i, t if per_period else 0])
            pv = (pv + (cfads[i, t] if t <= last else 0.0)) * discount
            ratio = pv / balance[i, t] if balance[i, t] > 1e-9 else np.nan
            if series:
                out[i, t] = ratio
            elif t == at[i]:
                out[i, 0] = ratio
                break
