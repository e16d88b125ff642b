"""Financing: sources and uses, senior and hardware loans, reserves, the cash waterfall, default.

Per factory, vectorised over paths and factories; one loop over periods, because the reserve
account, trapped cash, the subordinated loan and default are path-dependent.

Timing (annual periods, flows at period end, EUR m nominal):

* Construction: every facility is drawn pro rata to construction uses (facility, grid and the
  first GPU fleet). Commitments are fixed at close from the base case (``Terms``). On a path
  that costs less than the base case every facility is drawn in proportion; cost overruns fall
  on equity. Fees are paid at the factory's close and funded by equity.
* Senior loans (EIB and commercial, pari passu, same principal profile): interest before the
  first repayment period ``r0`` is capitalised (IDC). ``r0`` is the first full period after
  commercial operation, or ``close + eib.grace_years``, and never before the last construction
  draw. Principal of year k of the repayment window is ``profile[k]`` times the balance at
  ``r0``; anything still owed at the horizon is due in the last period (bullet).
* Hardware loans (``private.refresh_funding = "hardware_loan"``): each GPU refresh is funded
  ``Terms.hardware_share`` (the scenario's ``hardware_loan_share``, cut at close to what the
  base case carries at the target DSCR) by a senior annuity loan over
  ``hardware_loan_tenor_years`` and the rest by equity; with ``"equity"`` equity pays the
  whole refresh; with ``"cash"`` the refresh is paid from CFADS.
* Waterfall each period: CFADS -> senior interest and principal (reserve and trapped cash
  cover shortfalls) -> DSRA top-up to ``dsra_months`` of next period's senior service ->
  subordinated (fund) loan interest and principal (unpaid amounts accrue) -> lock-up test
  (DSCR below ``lockup_dscr`` traps the surplus until a test passes) -> equity.
* Default (``eib.default_trigger``): cash + reserves cannot pay senior service, or DSCR below
  ``default_dscr``. Lenders accelerate: cash, reserves and recovered assets (fleet at resale
  value + facility book value after the haircut, less enforcement costs) pay senior debt pro
  rata, then the subordinated loan, then equity. The factory's financing stops there.
* Before ``r0`` there is no debt service to test; operating losses then (e.g. an idle facility
  waiting for the grid) are funded by equity.
* Tax is recomputed with interest paid in operation deductible (capitalised IDC is not), with
  unlimited loss carry-forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from finmodel.drivers import Drivers
from finmodel.errors import Problem, ScenarioError
from finmodel.operations import Operations
from finmodel.scenario.model import Scenario

__all__ = ["FINANCING_ITEMS", "Financing", "Terms", "finance", "size_debt"]

Array = NDArray[np.float64]
_EPS = 1e-9  # EUR m: tolerance of payment tests
SIZING_ITERATIONS = 60

# name -> (unit, description): the financing layer's line items (P, F, T)
FINANCING_ITEMS: dict[str, tuple[str, str]] = {
    "construction_uses": ("EUR m", "facility, grid and first GPU fleet funded at construction"),
    "fees": ("EUR m", "front-end fees on senior commitments, paid at close"),
    "eib_draw": ("EUR m", "EIB loan drawn"),
    "commercial_draw": ("EUR m", "commercial senior loan drawn"),
    "fund_draw": ("EUR m", "fund instrument paid in (grant, equity or subordinated loan)"),
    "senior_idc": ("EUR m", "senior interest capitalised before the first repayment"),
    "eib_interest": ("EUR m", "EIB interest paid"),
    "eib_principal": ("EUR m", "EIB principal paid"),
    "eib_balance": ("EUR m", "EIB loan outstanding at the period end"),
    "commercial_interest": ("EUR m", "commercial senior interest paid"),
    "commercial_principal": ("EUR m", "commercial senior principal paid"),
    "commercial_balance": ("EUR m", "commercial senior loan outstanding at the period end"),
    "hardware_draw": ("EUR m", "hardware loans drawn for GPU refresh"),
    "hardware_interest": ("EUR m", "hardware loan interest paid"),
    "hardware_principal": ("EUR m", "hardware loan principal paid"),
    "hardware_balance": ("EUR m", "hardware loans outstanding at the period end"),
    "senior_debt_service": ("EUR m", "scheduled senior interest + principal (bullets excluded)"),
    "tax_levered": ("EUR m", "corporate tax after interest, with loss carry-forward"),
    "cfads": ("EUR m", "EBITDA - tax - refresh paid from cash + resale"),
    "dscr": ("ratio", "CFADS / scheduled senior debt service"),
    "dsra_balance": ("EUR m", "debt service reserve at the period end"),
    "trapped_cash": ("EUR m", "cash held by the lock-up at the period end"),
    "sub_interest_paid": ("EUR m", "fund subordinated loan interest paid"),
    "sub_principal_paid": ("EUR m", "fund subordinated loan principal paid"),
    "sub_balance": ("EUR m", "fund subordinated loan outstanding (with accrued interest)"),
    "equity_contribution": ("EUR m", "equity paid in: construction, fees, reserve, refresh, "
                            "pre-completion losses"),
    "distributions": ("EUR m", "cash paid to equity"),
    "equity_flow": ("EUR m", "distributions - contributions (all shareholders)"),
    "private_equity_flow": ("EUR m", "distributions - contributions (private shareholders)"),
    "fund_flow": ("EUR m", "fund's flows: - investments + returns (instrument only)"),
    "senior_recovery": ("EUR m", "paid to senior lenders on default"),
    "debt_balance": ("EUR m", "senior debt outstanding at the period end (EIB + commercial + "
                     "hardware)"),
}


@dataclass(frozen=True)
class Terms:
    """Deal terms fixed at financial close from the base case; arrays (F,)."""

    fund_eur_m: Array  # fund commitment
    eib_eur_m: Array  # EIB senior commitment (drawn amount before IDC)
    commercial_eur_m: Array  # commercial senior commitment
    construction_cost_eur_m: Array  # base-case construction uses
    repayment_years: NDArray[np.int64]  # length N of each factory's repayment window
    principal_profile: Array  # (F, N_max) share of the senior balance at r0 repaid in year k
    dscr_capacity_eur_m: Array  # senior commitment the base-case CFADS can carry at target DSCR
    hardware_share: Array  # share of each GPU refresh borrowed (at most the scenario's share)
    binding: tuple[str, ...]  # which cap set the senior debt: eib_share, gearing, dscr, equity
    eu_eur_m: Array | None = None  # EU part of the fund allocation (the host state pays the rest)


@dataclass(frozen=True)
class Financing:
    """Line items ``FINANCING_ITEMS`` (P, F, T) and per-factory outcomes (P, F)."""

    items: dict[str, Array]
    first_repayment: NDArray[np.int64]  # (P, F) period index r0
    default: NDArray[np.bool_]  # (P, F)
    default_period: Array  # (P, F) period index of default, NaN if none
    eib_exposure: Array  # (P, F) EIB balance at r0 (peak, after IDC)
    senior_exposure: Array  # (P, F) EIB + commercial balance at r0
    eib_loss: Array  # (P, F) EUR m unpaid EIB principal and interest after recovery
    private_equity_at_close: Array  # (P, F) EUR m private equity paid in at construction

    def __getitem__(self, name: str) -> Array:
        return self.items[name]


def _annuity_factor(rate: Array, years: int | Array) -> Array:
    """Level payment per unit borrowed: r / (1 - (1 + r)^-n), 1/n at r = 0."""
    rate = np.asarray(rate, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = rate / (1.0 - (1.0 + rate) ** -np.asarray(years, float))
    return np.where(np.abs(rate) < 1e-12, 1.0 / np.asarray(years, float), out)


def _first_repayment(sc: Scenario, d: Drivers, op: Operations, uses: Array) -> NDArray[np.int64]:
    """(P, F) first period with scheduled senior principal."""
    n_t = d.horizon_years
    shape = op.cod_years.shape
    if sc.eib.grace_years is None:
        r0 = np.ceil(op.cod_years - 1e-9)
    else:
        r0 = np.broadcast_to(d.close_year, shape) + sc.eib.grace_years
    drawn = uses > _EPS
    last_draw = np.where(drawn.any(-1), n_t - 1 - np.argmax(drawn[..., ::-1], axis=-1), -1)
    return np.clip(np.maximum(r0, last_draw + 1), 1, n_t - 1).astype(np.int64)


def _profile_share(sc: Scenario, terms: Terms, k: NDArray[np.int64], rate: Array) -> Array:
    """(P, F, T) share of the balance at r0 repaid in repayment year k (P, F, T), 0 outside the
    window; rate: (P, F) EIB rate (annuity)."""
    n = terms.repayment_years[None, :, None]
    inside = (k >= 0) & (k < n)
    if sc.eib.repayment == "annuity":  # level service at the EIB rate: numpy_financial.ppmt
        r = rate[..., None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            share = r * (1.0 + r) ** np.maximum(k, 0) / ((1.0 + r) ** n - 1.0)
        share = np.where(np.abs(r) < 1e-12, 1.0 / n, share)
    elif sc.eib.repayment == "linear":
        share = np.broadcast_to(1.0 / n, k.shape)
    else:
        f_idx = np.arange(k.shape[1])[None, :, None]
        share = terms.principal_profile[f_idx, np.clip(k, 0, terms.principal_profile.shape[1] - 1)]
    return np.where(inside, share, 0.0)


def finance(sc: Scenario, d: Drivers, op: Operations, terms: Terms,
            test_covenants: bool = True) -> Financing:
    """Every factory's financing on every path. ``test_covenants=False`` (debt sizing) never
    defaults."""
    n_t = d.horizon_years
    shape = op.cod_years.shape
    eib, prv = sc.eib, sc.private
    r_e = np.broadcast_to(d.base_rate + d.eib_margin, shape)
    r_c = np.broadcast_to(d.base_rate + d.senior_spread, shape)
    r_s = sc.fund.sub_loan_rate
    haircut = np.broadcast_to(d.facility_recovery_haircut, shape)
    close = np.broadcast_to(d.close_year, shape).astype(np.int64)

    uses = op["capex_construction"] + op["capex_gpu_initial"]
    cost = uses.sum(-1)
    scale = np.minimum(1.0, cost / terms.construction_cost_eur_m)
    with np.errstate(invalid="ignore", divide="ignore"):
        timing = np.where(cost[..., None] > 0, uses / cost[..., None], 0.0)
    draw_e = (terms.eib_eur_m * scale)[..., None] * timing
    draw_c = (terms.commercial_eur_m * scale)[..., None] * timing
    draw_f = (terms.fund_eur_m * scale)[..., None] * timing
    fees = np.zeros((*shape, n_t))
    fee_total = eib.upfront_fee * terms.eib_eur_m + prv.commercial_upfront_fee * terms.commercial_eur_m
    np.put_along_axis(fees, np.clip(close, 0, n_t - 1)[..., None],
                      np.broadcast_to(fee_total, shape)[..., None], axis=-1)
    instrument = sc.fund.instrument
    fund_is_equity = instrument == "equity"
    fund_is_sub = instrument == "sub_loan"
    # shareholders pay what the senior loans (and a grant or loan from the fund) do not, plus fees
    equity_build = uses + fees - draw_e - draw_c - (0.0 if fund_is_equity else draw_f)

    refresh = op["capex_gpu_refresh"]
    draw_h = np.zeros_like(refresh)
    refresh_in_cfads = np.zeros_like(refresh)
    if prv.refresh_funding == "hardware_loan":
        draw_h = terms.hardware_share[:, None] * refresh
        draw_h[..., -1] = 0.0  # a refresh in the last period is paid by equity
        equity_refresh = refresh - draw_h
    elif prv.refresh_funding == "equity":
        equity_refresh = refresh
    else:
        equity_refresh = np.zeros_like(refresh)
        refresh_in_cfads = refresh
    life_h = prv.hardware_loan_tenor_years
    pay_cohort = draw_h * _annuity_factor(r_c, life_h)[..., None]
    cum = np.concatenate([np.zeros((*shape, 1)), np.cumsum(pay_cohort, axis=-1)], axis=-1)
    t_idx = np.arange(n_t)
    hw_pay = cum[..., t_idx] - cum[..., np.clip(t_idx - life_h, 0, None)]  # cohorts s in [t-L, t-1]

    r0 = _first_repayment(sc, d, op, uses)
    ebitda, taxable0, resale = op["ebitda"], op["taxable_income"], op["resale_proceeds"]
    terminal_last = op["terminal_value"][..., -1]
    fleet_value, facility_book = op["fleet_value"], op["facility_book_value"]
    tax_rate = np.broadcast_to(d.tax_rate, shape)
    months = eib.dsra_months / 12.0
    covenant_dscr = test_covenants and eib.default_trigger == "dscr_or_payment"

    def time_first(a: Array) -> Array:  # (P, F, T) -> contiguous (T, P, F) for the period loop
        return np.ascontiguousarray(np.moveaxis(np.broadcast_to(a, (*shape, n_t)), -1, 0))

    share_t = time_first(_profile_share(sc, terms, t_idx - r0[..., None], r_e))
    ebitda_t, taxable_t, resale_t = time_first(ebitda), time_first(taxable0), time_first(resale)
    refresh_cf_t, hw_pay_t = time_first(refresh_in_cfads), time_first(hw_pay)
    draw_e_t, draw_c_t = time_first(draw_e), time_first(draw_c)
    draw_h_t, draw_f_t = time_first(draw_h), time_first(draw_f)
    fleet_t, facility_t = time_first(fleet_value), time_first(facility_book)
    names = [n for n in FINANCING_ITEMS if n not in ("construction_uses", "fees", "eib_draw",
                                                      "commercial_draw", "fund_draw", "hardware_draw")]
    out = {name: np.zeros((n_t, *shape)) for name in names}  # time-first while looping
    out["dscr"][:] = np.nan
    b_e, b_c, b_h, b_s = (np.zeros(shape) for _ in range(4))
    b0_e, b0_c, b0_s = (np.zeros(shape) for _ in range(3))
    dsra, trapped, pool = (np.zeros(shape) for _ in range(3))
    alive = np.ones(shape, bool)
    default_period = np.full(shape, np.nan)
    eib_loss = np.zeros(shape)
    extra_equity = np.zeros((n_t, *shape))
    residual_to_equity = np.zeros((n_t, *shape))
    n_rep = terms.repayment_years[None, :]

    def scheduled(t: int, be: Array, bc: Array, b0e: Array, b0c: Array) -> tuple[Array, Array]:
        share = share_t[t]
        return np.minimum(share * b0e, be), np.minimum(share * b0c, bc)

    for t in range(n_t):
        last = t == n_t - 1
        repaying = t >= r0
        starts = t == r0
        np.copyto(b0_e, b_e, where=starts)
        np.copyto(b0_c, b_c, where=starts)
        np.copyto(b0_s, b_s, where=starts)
        # senior loans: interest on the opening balance; capitalised before r0
        int_e, int_c = b_e * r_e, b_c * r_c
        prin_e, prin_c = scheduled(t, b_e, b_c, b0_e, b0_c)
        prin_e, prin_c = prin_e * repaying, prin_c * repaying
        int_h = b_h * r_c
        pay_h = np.minimum(hw_pay_t[t], b_h * (1.0 + r_c))
        service = np.where(repaying, int_e + int_c + prin_e + prin_c, 0.0) + pay_h
        if last:  # everything still owed falls due at the horizon
            bullet = b_e + int_e + b_c + int_c + b_h * (1.0 + r_c) - service
            prin_e, prin_c, pay_h = b_e, b_c, b_h * (1.0 + r_c)
        else:
            bullet = 0.0
        # tax after interest paid in operation
        interest_paid = np.where(repaying | last, int_e + int_c, 0.0) + int_h + np.where(
            repaying | last, b_s * r_s, 0.0)
        income = taxable_t[t] - interest_paid
        profit = np.maximum(income, 0.0)
        used = np.minimum(pool, profit)
        tax = tax_rate * (profit - used)
        pool = pool - used + np.maximum(-income, 0.0)
        cfads = ebitda_t[t] - tax + resale_t[t] - refresh_cf_t[t]
        cash = cfads + (terminal_last if last else 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            dscr = np.where(service > _EPS, cfads / service, np.nan)
        due = service + bullet
        # before r0: pre-completion losses are funded by equity
        top_up_equity = np.where(~repaying & alive & (not last), np.maximum(-cash, 0.0), 0.0)
        cash = cash + top_up_equity
        available = cash + dsra + trapped
        fails = (available < due - _EPS) & test_covenants
        if covenant_dscr:
            fails |= (service > _EPS) & (dscr < eib.default_dscr)
        defaults = alive & fails
        ok = alive & ~fails

        # -- default: accelerate, recover, pay seniors pro rata, then the fund's loan, then equity
        if defaults.any():
            assets = 0.0 if last else (fleet_t[t] + facility_t[t] * (1.0 - haircut)) * (
                1.0 - eib.enforcement_cost_share)
            pot = np.maximum(available + assets, 0.0)
            owed_e = b_e + int_e
            owed_c = b_c + int_c
            owed_h = b_h * (1.0 + r_c) + draw_h_t[t]
            owed = owed_e + owed_c + owed_h
            paid = np.minimum(pot, owed)
            with np.errstate(invalid="ignore", divide="ignore"):
                recovered = np.where(owed > 0, paid / owed, 1.0)
            owed_s = b_s * (1.0 + r_s) + draw_f_t[t] * fund_is_sub
            paid_s = np.minimum(pot - paid, owed_s)
            np.copyto(eib_loss, owed_e * (1.0 - recovered), where=defaults)
            out["senior_recovery"][t] = np.where(defaults, paid, 0.0)
            out["sub_principal_paid"][t] = np.where(defaults, paid_s, 0.0)
            residual_to_equity[t] = np.where(defaults, pot - paid - paid_s, 0.0)
            default_period[defaults] = t

        # -- normal operation
        surplus = cash - due
        from_trapped = np.minimum(trapped, np.maximum(-surplus, 0.0))
        trapped_next = trapped - from_trapped
        surplus = surplus + from_trapped
        from_dsra = np.minimum(dsra, np.maximum(-surplus, 0.0))
        dsra_next = dsra - from_dsra
        surplus = np.maximum(surplus + from_dsra, 0.0)
        capitalise = ~repaying & (not last)
        new_e = np.where(capitalise, b_e + int_e, b_e - prin_e) + draw_e_t[t]
        new_c = np.where(capitalise, b_c + int_c, b_c - prin_c) + draw_c_t[t]
        new_h = b_h * (1.0 + r_c) - pay_h + draw_h_t[t]
        # reserve: next period's scheduled senior service
        if last:
            target = np.zeros(shape)
        else:
            nxt = t + 1
            b0e_n = np.where(nxt == r0, new_e, b0_e)
            b0c_n = np.where(nxt == r0, new_c, b0_c)
            pe, pc = scheduled(nxt, new_e, new_c, b0e_n, b0c_n)
            rep_n = nxt >= r0
            target = months * (np.where(rep_n, new_e * r_e + new_c * r_c + pe + pc, 0.0)
                               + np.minimum(hw_pay_t[nxt], new_h * (1.0 + r_c)))
        release = np.maximum(dsra_next - target, 0.0)
        surplus = surplus + release
        dsra_next = dsra_next - release
        gap = np.maximum(target - dsra_next, 0.0)
        funded_by_equity = np.where(~repaying & (t + 1 == r0), gap, 0.0)  # initial reserve
        top_up = np.where(repaying, np.minimum(gap, surplus), 0.0)
        surplus = surplus - top_up
        dsra_next = dsra_next + top_up + funded_by_equity
        # fund subordinated loan
        accrued = b_s * (1.0 + r_s)
        if fund_is_sub:
            sched = np.where(repaying & (t - r0 < n_rep), b0_s / n_rep, 0.0)
            due_s = np.minimum(accrued, b_s * r_s + sched) if not last else accrued
            pay_s = np.where(repaying | last, np.minimum(surplus, due_s), 0.0)
            int_s = np.minimum(pay_s, b_s * r_s)
            surplus = surplus - pay_s
            new_s = accrued - pay_s + draw_f_t[t]
            if last:  # unpaid at the horizon is written off: the fund's flows show the loss
                new_s = np.zeros(shape)
        else:
            pay_s = int_s = new_s = np.zeros(shape)
        # lock-up
        locked = (service > _EPS) & (dscr < eib.lockup_dscr) & (not last)
        dist = np.where(locked, 0.0, surplus + trapped_next)
        trapped_next = np.where(locked, trapped_next + surplus, 0.0)
        if last:
            dist = dist + dsra_next + trapped_next
            dsra_next = np.zeros(shape)
            trapped_next = np.zeros(shape)

        def put(name: str, value: Array, t: int = t, ok: NDArray[np.bool_] = ok) -> None:
            out[name][t] = np.where(ok, value, out[name][t])

        put("eib_interest", np.where(capitalise, 0.0, int_e))
        put("eib_principal", prin_e)
        put("commercial_interest", np.where(capitalise, 0.0, int_c))
        put("commercial_principal", prin_c)
        put("senior_idc", np.where(capitalise, int_e + int_c, 0.0))
        put("hardware_interest", np.minimum(int_h, pay_h))
        put("hardware_principal", pay_h - np.minimum(int_h, pay_h))
        put("senior_debt_service", service)
        put("eib_balance", new_e)
        put("commercial_balance", new_c)
        put("hardware_balance", new_h)
        put("dsra_balance", dsra_next)
        put("trapped_cash", trapped_next)
        put("sub_interest_paid", int_s)
        put("sub_principal_paid", pay_s - int_s)
        put("sub_balance", new_s)
        put("distributions", dist)
        out["tax_levered"][t] = np.where(alive, tax, 0.0)
        out["cfads"][t] = np.where(alive, cfads, 0.0)
        out["dscr"][t] = np.where(alive, dscr, np.nan)
        extra_equity[t] += np.where(ok, top_up_equity + funded_by_equity, 0.0)

        b_e = np.where(ok, new_e, 0.0)
        b_c = np.where(ok, new_c, 0.0)
        b_h = np.where(ok, new_h, 0.0)
        b_s = np.where(ok, new_s, 0.0)
        dsra = np.where(ok, dsra_next, 0.0)
        trapped = np.where(ok, trapped_next, 0.0)
        alive = ok

    out = {name: np.moveaxis(arr, 0, -1) for name, arr in out.items()}
    extra_equity = np.moveaxis(extra_equity, 0, -1)
    residual_to_equity = np.moveaxis(residual_to_equity, 0, -1)

    defaulted = ~np.isnan(default_period)
    end = np.where(defaulted, default_period, n_t)[..., None]
    running = t_idx <= end  # periods up to and including the default
    # shareholders' flows besides paying for construction
    other = (out["distributions"] + residual_to_equity - extra_equity
             - np.where(running, equity_refresh, 0.0))
    equity_build = np.where(running, equity_build, 0.0)
    equity_flow = other - equity_build
    if fund_is_equity:
        fund_in = draw_f.sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            phi = np.where(equity_build.sum(-1) > 0, fund_in / equity_build.sum(-1), 0.0)
        fund_flow = -draw_f + phi[..., None] * other
    elif fund_is_sub:
        fund_flow = -draw_f + out["sub_interest_paid"] + out["sub_principal_paid"]
    else:
        fund_flow = -draw_f
    private_flow = equity_flow - (fund_flow if fund_is_equity else 0.0)
    private_at_close = equity_build.sum(-1) - (draw_f.sum(-1) if fund_is_equity else 0.0)

    debt_balance = out["eib_balance"] + out["commercial_balance"] + out["hardware_balance"]
    b0_senior = b0_e + b0_c

    items = {
        "construction_uses": uses,
        "fees": fees,
        "eib_draw": draw_e,
        "commercial_draw": draw_c,
        "fund_draw": draw_f,
        "hardware_draw": np.where(running, draw_h, 0.0),
        **out,
        "equity_contribution": (equity_build + extra_equity
                                + np.where(running, equity_refresh, 0.0)),
        "distributions": out["distributions"] + residual_to_equity,
        "equity_flow": equity_flow,
        "private_equity_flow": private_flow,
        "fund_flow": fund_flow,
        "debt_balance": debt_balance,
    }
    return Financing(
        items=items, first_repayment=r0, default=defaulted, default_period=default_period,
        eib_exposure=b0_e, senior_exposure=b0_senior, eib_loss=eib_loss,
        private_equity_at_close=private_at_close,
    )


def size_debt(sc: Scenario, d: Drivers, op: Operations, fund_eur_m: Array) -> Terms:
    """Size the senior debt on the base case (P = 1) as lenders do: the smallest of the EIB
    share, the gearing cap, what leaves equity non-negative, and what the base-case CFADS
    carries at ``eib.target_dscr``; sculpted loans follow the base-case CFADS. Iterates to a
    fixed point because CFADS depends on the interest tax shield."""
    eib, prv = sc.eib, sc.private
    n_f = sc.n_factories
    uses = (op["capex_construction"] + op["capex_gpu_initial"])[0]  # (F, T)
    cost = uses.sum(-1)
    wanted_e = eib.share_of_cost * cost
    wanted_c = prv.commercial_debt_share * cost
    wanted = wanted_e + wanted_c
    room = np.maximum(cost - fund_eur_m, 0.0)
    caps = {"eib_share": wanted, "gearing": eib.gearing_max * cost, "equity": room}
    close = np.broadcast_to(d.close_year, (1, n_f))[0].astype(int)
    r0_guess = _first_repayment(sc, d, op, uses[None])[0]
    n_rep = close + eib.tenor_years - r0_guess
    problems = [Problem("eib.tenor_years", eib.tenor_years,
                        f"the loan of factory {sc.factories[i].name!r} would mature before its "
                        f"first repayment (period {r0_guess[i]} after portfolio close); use a "
                        f"longer tenor or a shorter grace period")
                for i in range(n_f) if n_rep[i] < 1]
    if problems:
        raise ScenarioError(problems, "financing")
    n_max = int(n_rep.max())
    profile = np.zeros((n_f, n_max))
    for i, n in enumerate(n_rep):
        profile[i, :n] = 1.0 / n
    senior = np.minimum.reduce(list(caps.values()))
    capacity = np.full(n_f, np.inf)
    hw_share = np.full(n_f, prv.hardware_loan_share if prv.refresh_funding == "hardware_loan" else 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        split = np.where(wanted > 0, wanted_e / wanted, 1.0)
    for _ in range(SIZING_ITERATIONS):
        terms = Terms(fund_eur_m, senior * split, senior * (1.0 - split), cost, n_rep, profile,
                      capacity, hw_share, ())
        fin = finance(sc, d, op, terms, test_covenants=False)
        new_hw = _hardware_share(sc, fin, hw_share)
        new_capacity, new_profile = _dscr_capacity(sc, d, fin, terms, senior)
        new_senior = np.minimum(np.minimum.reduce(list(caps.values())), new_capacity)
        converged = (np.allclose(new_senior, senior, rtol=1e-10, atol=1e-9)
                     and np.allclose(new_profile, profile, rtol=1e-10, atol=1e-12)
                     and np.allclose(new_hw, hw_share, rtol=1e-10, atol=1e-12))
        senior, capacity, profile, hw_share = new_senior, new_capacity, new_profile, new_hw
        if converged:
            break
    binding = tuple(
        min({**caps, "dscr": capacity}.items(), key=lambda kv: kv[1][i])[0] for i in range(n_f))
    return Terms(fund_eur_m, senior * split, senior * (1.0 - split), cost, n_rep, profile,
                 capacity, hw_share, binding)


def _hardware_share(sc: Scenario, fin: Financing, share: Array) -> Array:
    """(F,) largest share of each refresh (up to the scenario's) whose annuity service stays
    within the base-case CFADS / target DSCR in every period."""
    wanted = sc.private.hardware_loan_share if sc.private.refresh_funding == "hardware_loan" else 0.0
    service = (fin["hardware_interest"] + fin["hardware_principal"])[0]  # (F, T)
    cover = fin["cfads"][0] / sc.eib.target_dscr
    with np.errstate(invalid="ignore", divide="ignore"):
        per_unit = np.where(share[:, None] > 0, service / share[:, None], 0.0)
        room = np.where(per_unit > _EPS, np.maximum(cover, 0.0) / per_unit, np.inf)
    return np.clip(np.minimum(wanted, room.min(-1)), 0.0, wanted)


def _dscr_capacity(sc: Scenario, d: Drivers, fin: Financing, terms: Terms,
                   senior: Array) -> tuple[Array, Array]:
    """Senior commitment (F,) the base-case CFADS carries at the target DSCR, and the
    principal profile (F, N_max) for the next sizing round."""
    eib = sc.eib
    target = eib.target_dscr
    r0 = fin.first_repayment[0]
    cfads = fin["cfads"][0]
    hw_service = (fin["hardware_interest"] + fin["hardware_principal"])[0]
    r_e = float((d.base_rate + d.eib_margin)[0, 0])
    r_c = float((d.base_rate + d.senior_spread)[0, 0])
    n_f = len(r0)
    n_max = terms.principal_profile.shape[1]
    capacity = np.zeros(n_f)
    profile = np.zeros((n_f, n_max))
    # balance at r0 per unit of commitment (IDC compounding)
    growth = np.where(senior > 0, fin.senior_exposure[0] / np.maximum(senior, 1e-12), 1.0)
    for i in range(n_f):
        n = int(terms.repayment_years[i])
        window = slice(int(r0[i]), int(r0[i]) + n)
        b0 = fin.senior_exposure[0, i]
        # pari passu tranches share the principal shares; interest at their blended rate
        rate = ((fin.eib_exposure[0, i] * r_e + (b0 - fin.eib_exposure[0, i]) * r_c) / b0
                if b0 > 0 else r_e)
        free = np.zeros(n)
        cf = cfads[i, window] / target - hw_service[i, window]
        free[: cf.size] = cf
        disc = (1.0 + rate) ** -np.arange(1.0, n + 1.0)
        ks = np.arange(n)
        if eib.repayment == "sculpted":
            # service = alpha * free cover; principal = service - interest, never negative
            # (no capitalisation in operation), the rest at the end. The shares do not depend
            # on alpha, because balance and service scale together.
            avail = np.maximum(free, 0.0)
            pv = float(avail @ disc)
            bal, shares = 1.0, np.zeros(n)
            for k in range(n):
                principal = max(avail[k] / pv - rate * bal, 0.0) if pv > 0 else 0.0
                principal = min(principal, bal) if k < n - 1 else bal
                shares[k] = principal
                bal -= principal
        elif eib.repayment == "annuity":  # level service at the EIB rate, as on every path
            shares = r_e * (1 + r_e) ** ks / ((1 + r_e) ** n - 1) if r_e else np.full(n, 1 / n)
        else:
            shares = np.full(n, 1.0 / n)
        profile[i, :n] = shares
        balance_before = 1.0 - np.concatenate([[0.0], np.cumsum(shares)[:-1]])
        per_unit = shares + rate * balance_before  # service per unit of balance at r0
        with np.errstate(divide="ignore", invalid="ignore"):
            cap_b0 = float(np.min(np.where(per_unit > 1e-15, np.maximum(free, 0.0) / per_unit,
                                           np.inf)))
        capacity[i] = cap_b0 / growth[i] if growth[i] > 0 else 0.0
    return capacity, profile
