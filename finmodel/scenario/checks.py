"""Consistency checks across fields (PyPSA style: functions that return named problems)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from finmodel.errors import Problem

if TYPE_CHECKING:
    from finmodel.scenario.model import Scenario

__all__ = ["cross_field_problems", "nearest_correlation", "site_euro_cap"]

SIZING_TOLERANCE = 0.005  # gpus and facility_mw may both be given if they agree within 0.5 %


def cross_field_problems(sc: Scenario) -> list[Problem]:
    """Every problem that needs more than one field to see, in a stable order."""
    return [
        *_check_eib(sc),
        *_check_covenants(sc),
        *_check_factories(sc),
        *_check_allocation(sc),
        *_check_tranches(sc),
        *_check_correlation(sc),
        *_check_close_on(sc),
    ]


def _check_close_on(sc: Scenario) -> list[Problem]:
    from finmodel.scenario.io import list_scenarios
    from finmodel.scenario.model import closest

    if sc.close_on is None:
        return []
    names = list_scenarios()
    if sc.close_on not in names:
        return [Problem("close_on", sc.close_on, f"not a shipped preset{closest(sc.close_on, names)}; "
                                                 f"choose from {', '.join(names)}")]
    return []


def _check_eib(sc: Scenario) -> list[Problem]:
    eib, out = sc.eib, []
    if eib.share_of_cost > eib.share_of_cost_max:
        out.append(Problem("eib.share_of_cost", eib.share_of_cost,
                           f"EIB share of cost above its cap eib.share_of_cost_max = "
                           f"{eib.share_of_cost_max:g}"))
    if eib.tenor_years > sc.timeline.horizon_years:
        out.append(Problem("eib.tenor_years", eib.tenor_years,
                           f"tenor must fit the horizon (timeline.horizon_years = "
                           f"{sc.timeline.horizon_years})"))
    if eib.availability_years > sc.timeline.horizon_years:
        out.append(Problem("eib.availability_years", eib.availability_years,
                           f"the availability period must fit the horizon (timeline.horizon_years = "
                           f"{sc.timeline.horizon_years})"))
    if eib.grace_years is not None and eib.grace_years >= eib.tenor_years:
        out.append(Problem("eib.grace_years", eib.grace_years,
                           f"grace must be shorter than the tenor ({eib.tenor_years} years)"))
    debt = eib.share_of_cost + sc.private.commercial_debt_share
    if debt > eib.gearing_max + 1e-12:
        out.append(Problem("private.commercial_debt_share", sc.private.commercial_debt_share,
                           f"EIB ({eib.share_of_cost:g}) plus commercial debt exceed the gearing "
                           f"cap eib.gearing_max = {eib.gearing_max:g}"))
    return out


def _check_covenants(sc: Scenario) -> list[Problem]:
    eib, out = sc.eib, []
    if not eib.default_dscr < eib.lockup_dscr:
        out.append(Problem("eib.lockup_dscr", eib.lockup_dscr,
                           f"lock-up DSCR must be above the default DSCR ({eib.default_dscr:g})"))
    if not eib.lockup_dscr <= eib.target_dscr:
        out.append(Problem("eib.target_dscr", eib.target_dscr,
                           f"target DSCR must be at least the lock-up DSCR ({eib.lockup_dscr:g})"))
    return out


def _check_factories(sc: Scenario) -> list[Problem]:
    out: list[Problem] = []
    fund = sc.fund
    seen: dict[str, int] = {}
    for i, fac in enumerate(sc.factories):
        where = f"factories[{i}]"
        if fac.name in seen:
            out.append(Problem(f"{where}.name", fac.name,
                               f"factory names must be unique (also factories[{seen[fac.name]}])"))
        seen.setdefault(fac.name, i)
        if fac.public_share_of_capex > fund.public_share_of_capex_max:
            out.append(Problem(f"{where}.public_share_of_capex", fac.public_share_of_capex,
                               f"public share of capex above the cap "
                               f"fund.public_share_of_capex_max = {fund.public_share_of_capex_max:g}"
                               f" (factory {fac.name!r})"))
        if fac.public_eur_m_max is not None and fac.public_eur_m_max > fund.public_eur_m_per_site_max:
            out.append(Problem(f"{where}.public_eur_m_max", fac.public_eur_m_max,
                               f"site cap above the fund's per-site cap "
                               f"fund.public_eur_m_per_site_max = {fund.public_eur_m_per_site_max:g}"))
        if fac.start_delay_years >= sc.timeline.horizon_years:
            out.append(Problem(f"{where}.start_delay_years", fac.start_delay_years,
                               f"must be less than timeline.horizon_years = "
                               f"{sc.timeline.horizon_years}"))
        if fac.gpus is not None and fac.facility_mw is not None:
            implied = fac.gpus * sc.energy.it_kw_per_gpu.central * sc.energy.pue.central / 1000.0
            if abs(implied - fac.facility_mw) > SIZING_TOLERANCE * fac.facility_mw:
                out.append(Problem(f"{where}.facility_mw", fac.facility_mw,
                                   f"disagrees with gpus = {fac.gpus}, which at the central "
                                   f"IT kW per GPU and PUE needs {implied:.1f} MW; give only one"))
    return out


def _check_allocation(sc: Scenario) -> list[Problem]:
    fund, out = sc.fund, []
    explicit = [f.fund_eur_m for f in sc.factories]
    if fund.allocation == "explicit":
        for i, amount in enumerate(explicit):
            if amount is None:
                out.append(Problem(f"factories[{i}].fund_eur_m", None,
                                   "fund.allocation = 'explicit' needs an amount for every factory"))
            else:
                cap = site_euro_cap(sc, i)
                if amount > cap:
                    out.append(Problem(f"factories[{i}].fund_eur_m", amount,
                                       f"above the site's public cap of {cap:g} EUR m "
                                       f"(factory {sc.factories[i].name!r})"))
        total = sum(a for a in explicit if a is not None)
        if total > fund.size_eur_m:
            out.append(Problem("fund.size_eur_m", fund.size_eur_m,
                               f"explicit fund commitments total {total:,.1f} EUR m, above the "
                               f"fund size"))
    else:
        for i, amount in enumerate(explicit):
            if amount is not None:
                out.append(Problem(f"factories[{i}].fund_eur_m", amount,
                                   f"an explicit amount needs fund.allocation = 'explicit' "
                                   f"(it is {fund.allocation!r})"))
    return out


def _check_tranches(sc: Scenario) -> list[Problem]:
    out: list[Problem] = []
    total = sum(t.share for t in sc.tranches)
    if abs(total - 1.0) > 1e-9:
        out.append(Problem("tranches", [t.share for t in sc.tranches],
                           f"tranche shares must add up to 1 (they add up to {total:g})"))
    for attr in ("name", "priority"):
        seen: dict[object, int] = {}
        for i, tr in enumerate(sc.tranches):
            value = getattr(tr, attr)
            if value in seen:
                out.append(Problem(f"tranches[{i}].{attr}", value,
                                   f"tranche {attr}s must be unique (also tranches[{seen[value]}])"))
            seen.setdefault(value, i)
    return out


def site_euro_cap(sc: Scenario, i: int) -> float:
    """EUR m of public money factory i may get at most: its own cap, else the fund's per-site cap."""
    fac = sc.factories[i]
    return fac.public_eur_m_max if fac.public_eur_m_max is not None else sc.fund.public_eur_m_per_site_max


def _check_correlation(sc: Scenario) -> list[Problem]:
    from finmodel.scenario.fields import dist_paths

    corr, out = sc.correlation, []
    names = corr.inputs
    valid = dist_paths(sc)
    for k, name in enumerate(names):
        if name not in valid:
            from finmodel.scenario.model import closest

            out.append(Problem(f"correlation.inputs[{k}]", name,
                               "not an uncertain input" + closest(name, valid)))
    if len(set(names)) != len(names):
        out.append(Problem("correlation.inputs", names, "names must be unique"))
    n = len(names)
    m = corr.matrix
    if len(m) != n or any(len(row) != n for row in m):
        shape = f"{len(m)}x{len(m[0]) if m else 0}"
        out.append(Problem("correlation.matrix", shape,
                           f"must be {n}x{n}, one row and column per correlation.inputs entry"))
        return out
    if n == 0:
        return out
    a = np.asarray(m, dtype=float)
    if np.any(np.abs(a) > 1):
        out.append(Problem("correlation.matrix", m, "entries must lie in [-1, 1]"))
    if not np.allclose(np.diag(a), 1.0, atol=1e-12):
        out.append(Problem("correlation.matrix", np.diag(a).tolist(), "diagonal must be all 1"))
    if not np.allclose(a, a.T, atol=1e-12):
        i, j = np.unravel_index(np.argmax(np.abs(a - a.T)), a.shape)
        out.append(Problem("correlation.matrix", m,
                           f"must be symmetric: [{i}][{j}] = {a[i, j]:g} but [{j}][{i}] = "
                           f"{a[j, i]:g}"))
    elif np.linalg.eigvalsh(a).min() < -1e-10:
        near = np.round(nearest_correlation(a), 3).tolist()
        out.append(Problem("correlation.matrix", m,
                           f"not positive semi-definite (smallest eigenvalue "
                           f"{np.linalg.eigvalsh(a).min():.3g}); the nearest valid matrix is {near}"))
    return out


def nearest_correlation(a: np.ndarray, tol: float = 1e-10, max_iter: int = 500) -> np.ndarray:
    """Nearest correlation matrix in Frobenius norm (Higham 2002, alternating projections).

    a: (n, n) symmetric; returns (n, n) symmetric, unit diagonal, positive semi-definite.
    """
    y = np.asarray(a, dtype=float).copy()
    ds = np.zeros_like(y)
    for _ in range(max_iter):
        r = y - ds
        w, v = np.linalg.eigh((r + r.T) / 2)
        x = (v * np.clip(w, 0, None)) @ v.T
        ds = x - r
        y_new = x.copy()
        np.fill_diagonal(y_new, 1.0)
        if np.linalg.norm(y_new - y) <= tol * np.linalg.norm(y):
            y = y_new
            break
        y = y_new
    return (y + y.T) / 2
