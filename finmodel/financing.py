"""Financing: sources and uses, senior and hardware loans, reserves, the cash waterfall, default.

Per factory on every path. The period loop is path-dependent (the reserve account, trapped cash,
the subordinated loan, default), so each row (one path and factory) is worked out in one compiled
kernel (``_waterfall``): first its set-up (draw schedules, fees, how refreshes are funded), then
the waterfall period by period.

Timing (annual periods, flows at period end, EUR m nominal):

* Construction: every facility is drawn pro rata to construction uses (facility, grid and the
  first GPU fleet). Commitments are fixed at close from the base case (``Terms``). On a path
  that costs less than the base case every facility is drawn in proportion; cost overruns fall
  on equity. Fees are paid at the factory's close and funded by equity.
* Senior loans (EIB and commercial, pari passu, same principal profile): drawn only within
  ``eib.availability_years`` of the site's close (later uses are paid by equity); interest
  before the first repayment period ``r0`` is capitalised (IDC). ``r0`` is the first full
  period after commercial operation, or ``close + eib.grace_years``, and never before the last
  construction draw. The loans mature at close + ``eib.tenor_years`` on every path: principal of
  year k of the repayment window is ``profile[k]`` times the balance at ``r0``; a path whose
  ``r0`` is later than the base case's repays over the years left (``_repayment_window``).
  Anything still owed at the horizon is due in the last period (bullet).
* Hardware loans (``private.refresh_funding = "hardware_loan"``): each GPU refresh is funded
  by a senior annuity loan sized at the refresh on the path (``_hardware_loan``): at most
  ``hardware_loan_share`` of the refresh, and the level annuity that the CFADS of the fleet it
  replaces, year by year of its life, carries at the target DSCR after the senior loans'
  scheduled service, over
  ``min(hardware_loan_tenor_years, the path's fleet life)`` years; equity pays the rest. With
  ``"equity"`` equity pays the whole refresh; with ``"cash"`` a maintenance reserve, built from
  the surplus after senior debt service and the DSRA towards the fleet's own cost by the end of
  its life, pays it, and equity pays what the reserve lacks.
  The senior loans are sized at close first; the hardware loans take what they leave.
* Waterfall each period: CFADS -> senior interest and principal (reserve and trapped cash
  cover shortfalls) -> DSRA top-up to ``dsra_months`` of next period's senior service ->
  subordinated (fund) loan interest and principal (unpaid amounts accrue) -> lock-up test
  (DSCR below ``lockup_dscr`` traps the surplus until a test passes) -> equity.
* Credit events, each its own outcome: a *covenant breach* is a DSCR test below
  ``default_dscr`` (the lock-up traps the surplus meanwhile); the sponsors may cure up to
  ``eib.equity_cures_max`` breaches with equity (up to the default DSCR), never two tests in a
  row. In a lock-up year a cash sweep prepays the senior loans (``eib.cash_sweep_to``: pro
  rata, or one first) with ``eib.cash_sweep_share`` of the trapped cash
  (``cash_sweep_share_repeat`` from the second lock-up year in a row). A *payment default* is
  cash, trapped cash and reserve short of the senior service due. Lenders accelerate on a
  payment default, or
  (``eib.default_trigger = "dscr_or_payment"``) after ``eib.breaches_to_acceleration``
  uncured breaches in a row; a passing or cured test ends the run. On
  acceleration (a *default*) cash, reserves and recovered assets (fleet at resale
  value + facility book value after the haircut, less enforcement costs) pay senior debt pro
  rata, then the subordinated loan, then equity. The factory's financing stops there.
* Before ``r0`` there is no debt service to test; operating losses then (e.g. an idle facility
  waiting for the grid), and losses in any period with no senior service due (a refresh paid
  from cash once the debt is repaid), are funded by equity: nothing due, no default.
* Tax is recomputed with borrowing costs deductible: interest paid in operation, and the
  capitalised IDC depreciated with the facility (over ``costs.facility_life_years`` from
  ``r0``). With ``tax.interest_limitation`` (EU ATAD art. 4) they are deductible up to
  ``tax.interest_limit_share_of_ebitda`` of EBITDA or ``tax.interest_safe_harbour_eur_m``, the
  rest carried forward; tax losses are carried forward without limit.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from finmodel.compiled import by_row, by_row_and_period, kernel
from finmodel.drivers import Drivers
from finmodel.errors import Problem, ScenarioError
from finmodel.operations import LineItemTotals, Operations, _tax_step
from finmodel.scenario.model import Scenario

__all__ = ["FINANCING_ITEMS", "Financing", "Terms", "finance", "repayment_schedule", "size_debt"]

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
    "cfads": ("EUR m", "EBITDA - tax + resale - lifecycle reserve contribution (GPU refreshes are "
              "paid by loans, equity or the maintenance reserve)"),
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
    "covenant_breach": ("flag", "1 in a year whose DSCR test falls below eib.default_dscr (cured or "
                        "not); summed over factories: the sites in breach"),
    "maintenance_reserve": ("EUR m", "maintenance reserve for the next GPU refresh at the period end "
                            "(refresh_funding = cash)"),
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
    hardware_share: Array  # largest share of each GPU refresh a hardware loan may lend (each is
    # sized at its refresh, on the path: see ``_hardware_loan``)
    binding: tuple[str, ...]  # which cap set the senior debt: eib_share, gearing, dscr, equity
    eu_eur_m: Array | None = None  # EU part of the fund allocation (the host state pays the rest)
    sized_on: str = ""  # the scenario whose base case sized these terms (``close_on``)
    sizing_case: str = "central"  # what the senior debt was sized on (``eib.sizing_case``)
    cfads_scale: Array | None = None  # (F,) a downside sizing case's CFADS as a share of the base
    # case's (None: sized on the base case's own CFADS)


@dataclass(frozen=True)
class Financing(LineItemTotals):
    """Line items ``FINANCING_ITEMS`` (P, F, T) and per-factory outcomes (P, F)."""

    items: dict[str, Array]
    first_repayment: NDArray[np.int64]  # (P, F) period index r0
    default: NDArray[np.bool_]  # (P, F) lenders accelerated: a payment default or persistent breach
    default_period: Array  # (P, F) period index of default, NaN if none
    payment_default: NDArray[np.bool_]  # (P, F) cash, trapped cash and reserve short of what was due
    breach_periods: Array  # (P, F) annual DSCR tests below eib.default_dscr while financed
    first_breach_period: Array  # (P, F) period index of the first breach, NaN if none
    eib_default: NDArray[np.bool_]  # (P, F) a default while EIB principal or interest was owed
    eib_owed_at_default: Array  # (P, F) EUR m EIB principal and interest owed when it defaulted
    equity_cures: Array  # (P, F) covenant breaches the sponsors cured with equity
    eib_exposure: Array  # (P, F) EIB balance at r0 (peak, after IDC)
    senior_exposure: Array  # (P, F) EIB + commercial balance at r0
    eib_loss: Array  # (P, F) EUR m unpaid EIB principal and interest after recovery
    private_equity_at_close: Array  # (P, F) EUR m private equity paid in at construction
    sums: dict[str, Array]  # (P, F) horizon totals of the draws, kept as line items or not


def _repayment_floor(sc: Scenario, d: Drivers, op: Operations) -> Array:
    """(P, F) first repayment period before the construction draws are considered: the first
    full period after COD, or close + ``eib.grace_years``."""
    if sc.eib.grace_years is None:
        return np.ceil(op.cod_years - 1e-9)
    return np.broadcast_to(d.close_year, op.cod_years.shape) + sc.eib.grace_years


@kernel
def _first_repayment_row(floor: float, uses: Array) -> int:
    """First period with scheduled senior principal: ``floor``, never before the period after
    the last construction draw (uses (T,)), within 1..T - 1."""
    last_draw = -1
    for t in range(uses.size):
        if uses[t] > _EPS:
            last_draw = t
    return int(min(max(max(floor, last_draw + 1.0), 1.0), uses.size - 1.0))


@kernel
def _first_repayment_rows(floor: Array, uses: Array, out: NDArray[np.int64]) -> None:
    """``_first_repayment_row`` for rows: floor (R,), uses (R, T) into out (R,)."""
    for i in range(uses.shape[0]):
        out[i] = _first_repayment_row(floor[i], uses[i])


def _first_repayment(sc: Scenario, d: Drivers, op: Operations, uses: Array) -> NDArray[np.int64]:
    """(P, F) first period with scheduled senior principal, from construction uses (P, F, T)."""
    shape, n_t = op.cod_years.shape, d.horizon_years
    out = np.empty(shape[0] * shape[1], np.int64)
    _first_repayment_rows(by_row(_repayment_floor(sc, d, op), shape),
                          by_row_and_period(uses, shape, n_t), out)
    return out.reshape(shape)


_REPAYMENT_KINDS = ("annuity", "linear", "sculpted")
_INSTRUMENTS = ("grant", "equity", "sub_loan")

# what the waterfall kernel writes: line items (R, T), then per-row outcomes (R,)
_WATERFALL_ITEMS = (
    "construction_uses", "fees", "eib_draw", "commercial_draw", "fund_draw",
    "eib_interest", "eib_principal", "commercial_interest", "commercial_principal", "senior_idc",
    "hardware_interest", "hardware_principal", "senior_debt_service", "eib_balance",
    "commercial_balance", "hardware_balance", "dsra_balance", "trapped_cash",
    "sub_interest_paid", "sub_principal_paid", "sub_balance", "distributions", "tax_levered",
    "cfads", "dscr", "senior_recovery", "hardware_draw", "equity_contribution", "equity_flow",
    "private_equity_flow", "fund_flow", "debt_balance", "covenant_breach", "maintenance_reserve",
)
_ROW_OUTCOMES = ("default_period", "eib_loss", "eib_exposure", "commercial_exposure",
                 "private_equity_at_close", "first_repayment", "eib_draw", "commercial_draw",
                 "fund_draw", "payment_default", "first_breach_period", "breaches", "eib_owed_at_default",
                 "equity_cures")
(_USES, _FEES, _EIB_DRAW, _COM_DRAW, _FUND_DRAW,
 _EIB_INT, _EIB_PRIN, _COM_INT, _COM_PRIN, _IDC, _HW_INT, _HW_PRIN, _SERVICE, _EIB_BAL, _COM_BAL,
 _HW_BAL, _DSRA, _TRAPPED, _SUB_INT, _SUB_PRIN, _SUB_BAL, _DIST, _TAX, _CFADS, _DSCR, _RECOVERY,
 _HW_DRAW, _CONTRIBUTION, _EQUITY_FLOW, _PRIVATE_FLOW, _FUND_FLOW, _DEBT, _BREACH, _MRA) = range(
    len(_WATERFALL_ITEMS))
# the ``flows`` input: a tuple of (R, T) operations line items in this order
_FLOWS = ("ebitda", "taxable_income", "resale_proceeds", "capex_gpu_refresh", "capex_construction",
          "capex_gpu_initial", "fleet_value", "facility_book_value", "plant_reserve_contribution")
(_EBITDA, _TAXABLE, _RESALE, _REFRESH, _CONSTRUCTION, _INITIAL, _FLEET, _FACILITY,
 _PLANT) = range(len(_FLOWS))
_REFRESH_FUNDING = ("hardware_loan", "equity", "cash")
_SWEEP_TO = ("pro_rata", "eib_first", "commercial_first")


@kernel
def _annuity_factor(rate: float, years: int) -> float:
    """Level payment per unit borrowed: r / (1 - (1 + r)^-n), 1/n at r = 0."""
    if abs(rate) < 1e-12:
        return 1.0 / years
    return rate / (1.0 - (1.0 + rate) ** -float(years))


@kernel
def _principal_share(kind: int, rate: float, k: int, n: int, profile: Array, f: int,
                     scale: float) -> float:
    """Share of the senior balance at r0 repaid in repayment year k of n (0 outside the
    window): annuity at ``rate`` (numpy_financial.ppmt), linear, or the sculpted ``profile``
    (F, N_max) row of factory f times ``scale`` (see ``_repayment_window``)."""
    if k < 0 or k >= n:
        return 0.0
    if kind == 0:
        if abs(rate) < 1e-12:
            return 1.0 / n
        return rate * (1.0 + rate) ** float(k) / ((1.0 + rate) ** float(n) - 1.0)
    if kind == 1 or scale <= 0.0:
        return 1.0 / n
    return profile[f, k] * scale


@kernel
def _repayment_window(n_terms: int, maturity: int, start: int, profile: Array,
                      f: int) -> tuple[int, float]:
    """Years n of a path's repayment window and the scale of its sculpted shares. The loan
    matures at ``maturity`` (close + tenor, a period index after the last repayment) on every
    path: a site whose first repayment ``start`` is later than the base case's repays over the
    years left, at least one; a sculpted profile keeps its shape, scaled to sum to 1 over
    them (0 if it has none there: linear then)."""
    n = min(n_terms, maturity - start)
    n = max(n, 1)
    scale = 1.0
    if n < n_terms:
        total = 0.0
        for k in range(n):
            total += profile[f, k]
        scale = 1.0 / total if total > 1e-12 else 0.0
    return n, scale


@kernel
def _senior_service_at(u: int, kind: int, re: float, rc: float, start: int, n: int, profile: Array,
                       f: int, scale: float, b0_e: float, b0_c: float) -> float:
    """Scheduled EIB and commercial service in period u of a loan whose balances at its first
    repayment ``start`` are b0_e and b0_c (0 before ``start`` and after the window)."""
    k = u - start
    if k < 0 or k >= n:
        return 0.0
    repaid = 0.0
    for j in range(k):
        repaid += _principal_share(kind, re, j, n, profile, f, scale)
    share = _principal_share(kind, re, k, n, profile, f, scale)
    return share * (b0_e + b0_c) + (1.0 - repaid) * (b0_e * re + b0_c * rc)


@kernel
def _hardware_loan(wanted: float, cfads: Array, fleet_start: int, t: int, target_dscr: float,
                   tenor: int, factor: float, hw_pay: Array, kind: int, re: float, rc: float,
                   start: int, n: int, profile: Array, f: int, scale: float, b0_e: float,
                   b0_c: float) -> float:
    """A hardware loan sized at its refresh in period t: at most ``wanted``, and an annuity
    (``factor`` per euro over ``tenor`` years) that the lender's view of the new fleet's CFADS
    carries at the target DSCR in each of those years, after the senior loans' scheduled
    service and the hardware annuities already due. The lender's view of the new fleet in its
    year k is the CFADS (cfads (T,), written up to t - 1) of the fleet it replaces in its own
    year k, from ``fleet_start`` (its last year beyond its life): what is known at the
    refresh, not the path's future, and a profile that falls as an installed fleet's hourly
    price erodes. The horizon plays no part."""
    if fleet_start < 0 or fleet_start >= t or wanted <= 0.0:
        return 0.0
    room = np.inf
    for k in range(1, tenor + 1):
        seen = min(fleet_start + k, t - 1)
        left = (cfads[seen] / target_dscr - hw_pay[t + k]
                - _senior_service_at(t + k, kind, re, rc, start, n, profile, f, scale, b0_e, b0_c))
        room = min(room, left)
    return min(wanted, max(room, 0.0) / factor)


@kernel
def _waterfall(flows, r_e, r_c, r_h, haircut, tax_rate, terminal, floor, fee_period, n_rep, life, profile,
               deal, consts, flags, slots, out, ends):
    """The set-up and the period loop of ``finance`` for each row (one path and factory),
    compiled.

    flows: tuple of (R, T) operations line items named in ``_FLOWS``; r_e, r_c, r_h (EIB,
    commercial and hardware loan rates), haircut,
    tax_rate, terminal (EUR m, at the horizon), floor (the first repayment period before the
    construction draws are considered): (R,); fee_period, n_rep, life (years a fleet serves):
    (R,) int; profile (F, N_max): sculpted principal shares; deal (6, F): EIB, commercial and
    fund commitments, base-case construction cost, fees, largest share of a refresh lent by a
    hardware loan; consts: sub-loan rate, DSRA years of service, default and lock-up DSCR,
    enforcement cost share, target DSCR, interest limit share of EBITDA, interest safe harbour,
    cash sweep share in a first and in a later lock-up year; flags (int): repayment kind, fund
    instrument, hardware-loan tenor, test covenants, DSCR default trigger, refresh funding,
    breaches to acceleration, EIB tenor, availability years, interest limitation, facility
    life, equity cures allowed, which loan the sweep prepays.
    Item k of ``_WATERFALL_ITEMS`` goes to ``out[slots[k]]`` (out: (n_kept, R, T)), or nowhere
    where slots[k] < 0; fills ``ends`` (len(_ROW_OUTCOMES), R). A row stops at its default.
    Each row is worked in a buffer and copied out once, so that only the items kept cost
    memory traffic.
    """
    (r_s, dsra_years, default_dscr, lockup_dscr, enforcement, target_dscr, limit_share,
     safe_harbour, sweep_first, sweep_repeat) = consts
    (kind, instrument, tenor_h, test_covenants, covenant_dscr, refresh_funding, n_accelerate,
     tenor, availability, limit_interest, facility_life, cures_max, sweep_to) = flags
    fund_is_equity, fund_is_sub = instrument == 1, instrument == 2
    n_rows, n_t = flows[0].shape
    n_f = profile.shape[0]
    buf = np.empty((len(slots), n_t))  # one row's line items
    draw_h = np.zeros(n_t)  # hardware loans drawn for refresh
    equity_build = np.zeros(n_t)  # equity for construction and fees
    equity_refresh = np.zeros(n_t)  # refresh paid by equity
    hw_pay = np.zeros(n_t + 64)  # hardware annuities due per period (also past the horizon)
    extra_equity = np.zeros(n_t)  # pre-completion losses and initial reserve, paid by equity
    residual = np.zeros(n_t)  # what is left for equity after a default
    for i in range(n_rows):
        re, rc, rh, f = r_e[i], r_c[i], r_h[i], i % n_f
        buf[_RECOVERY, :] = 0.0  # every other item is written for every period up to a default
        # construction: every facility drawn pro rata to uses, up to its commitment scaled
        # down on a path that costs less than the base case; fees at close; the rest equity
        cost = 0.0
        for t in range(n_t):
            buf[_USES, t] = flows[_CONSTRUCTION][i, t] + flows[_INITIAL][i, t]
            cost += buf[_USES, t]
        scale = cost / deal[3, f]
        scale = 1.0 if scale > 1.0 else scale
        drawn_e = drawn_c = drawn_f = 0.0
        for t in range(n_t):
            timing = buf[_USES, t] / cost if cost > 0 else 0.0
            # senior loans are drawn only in their availability period: the rest is cancelled
            available_t = t - fee_period[i] < availability
            buf[_EIB_DRAW, t] = deal[0, f] * scale * timing if available_t else 0.0
            buf[_COM_DRAW, t] = deal[1, f] * scale * timing if available_t else 0.0
            buf[_FUND_DRAW, t] = deal[2, f] * scale * timing
            buf[_FEES, t] = deal[4, f] if t == fee_period[i] else 0.0
            drawn_e += buf[_EIB_DRAW, t]
            drawn_c += buf[_COM_DRAW, t]
            drawn_f += buf[_FUND_DRAW, t]
            equity_build[t] = (buf[_USES, t] + buf[_FEES, t] - buf[_EIB_DRAW, t]
                               - buf[_COM_DRAW, t] - (0.0 if fund_is_equity else buf[_FUND_DRAW, t]))
            # GPU refresh: equity, less a hardware loan or the maintenance reserve (sized in the
            # period loop, with what is known then)
            draw_h[t] = 0.0
            equity_refresh[t] = flows[_REFRESH][i, t]
        start = _first_repayment_row(floor[i], buf[_USES])
        n, window_scale = _repayment_window(n_rep[i], fee_period[i] + tenor, start, profile, f)
        # a hardware loan lasts no longer than the fleet it finances serves on this path
        life_row = life[i] if life[i] >= 1 else 1
        tenor_row = min(tenor_h, life_row)
        factor_h = _annuity_factor(rh, tenor_row)
        fleet_start, fleet_cost = -1, 0.0  # period the GPU fleet in service was bought, its cost
        for t in range(n_t):
            extra_equity[t] = residual[t] = 0.0
            if flows[_INITIAL][i, t] > _EPS:
                fleet_start = t
                fleet_cost += flows[_INITIAL][i, t]
        mra = 0.0  # maintenance reserve (refresh_funding = "cash")
        hw_pay[:] = 0.0
        b_e = b_c = b_h = b_s = 0.0
        idc_total = interest_carried = 0.0
        cures_left, cured_last, locked = cures_max, False, 0  # equity cures, lock-up years in a row
        b0_e = b0_c = b0_s = 0.0
        dsra = trapped = pool = 0.0
        end = n_t  # last period financed (the default period, if any)
        ends[0, i] = np.nan
        ends[9, i] = ends[11, i] = ends[12, i] = ends[13, i] = 0.0
        ends[10, i] = np.nan
        run = 0  # consecutive covenant breaches up to this period
        for t in range(n_t):
            last = t == n_t - 1
            repaying = t >= start
            if t == start:
                b0_e, b0_c, b0_s = b_e, b_c, b_s
            refresh_t = flows[_REFRESH][i, t]
            if refresh_t > _EPS:
                if refresh_funding == 0 and t < n_t - 1:  # sized on what the lender knows now
                    loan = _hardware_loan(deal[5, f] * refresh_t, buf[_CFADS],
                                          fleet_start, t, target_dscr, tenor_row, factor_h, hw_pay,
                                          kind, re, rc, start, n, profile, f, window_scale,
                                          b0_e if repaying else b_e, b0_c if repaying else b_c)
                    draw_h[t] = loan
                    equity_refresh[t] -= loan
                    for u in range(t + 1, t + 1 + tenor_row):
                        hw_pay[u] += loan * factor_h
                elif refresh_funding == 2:  # the maintenance reserve pays, equity the rest
                    from_mra = min(mra, refresh_t)
                    mra -= from_mra
                    equity_refresh[t] -= from_mra
                fleet_start, fleet_cost = t, refresh_t
            share = _principal_share(kind, re, t - start, n, profile, f, window_scale) if repaying else 0.0
            # senior loans: interest on the opening balance; capitalised before r0
            int_e, int_c, int_h = b_e * re, b_c * rc, b_h * rh
            prin_e = min(share * b0_e, b_e)
            prin_c = min(share * b0_c, b_c)
            pay_h = min(hw_pay[t], b_h * (1.0 + rh))
            service = (int_e + int_c + prin_e + prin_c if repaying else 0.0) + pay_h
            bullet = 0.0
            if last:  # everything still owed falls due at the horizon
                bullet = b_e + int_e + b_c + int_c + b_h * (1.0 + rh) - service
                prin_e, prin_c, pay_h = b_e, b_c, b_h * (1.0 + rh)
            # tax after borrowing costs (interest paid in operation, the capitalised IDC
            # depreciated with the facility from r0, interest carried forward), limited to a
            # share of EBITDA or the safe harbour where the interest limitation applies; tax
            # losses carried forward
            senior_paid = repaying or last
            borrowing = ((int_e + int_c if senior_paid else 0.0) + int_h
                         + (b_s * r_s if senior_paid else 0.0) + interest_carried
                         + (idc_total / facility_life if start <= t < start + facility_life else 0.0))
            deduct = borrowing
            if limit_interest != 0:
                deduct = min(borrowing, max(limit_share * max(flows[_EBITDA][i, t], 0.0), safe_harbour))
            interest_carried = borrowing - deduct
            tax, pool = _tax_step(flows[_TAXABLE][i, t] - deduct, tax_rate[i], pool)
            cfads = flows[_EBITDA][i, t] - tax + flows[_RESALE][i, t] - flows[_PLANT][i, t]
            cash = cfads + (terminal[i] if last else 0.0)
            dscr = cfads / service if service > _EPS else np.nan
            due = service + bullet
            buf[_TAX, t] = tax
            buf[_CFADS, t] = cfads
            buf[_DSCR, t] = dscr
            # before r0: pre-completion losses are funded by equity
            # losses with no senior service due (before r0, or with no debt left) are an
            # equity funding need, not a default
            top_up_equity = max(-cash, 0.0) if (not repaying and not last) or due <= _EPS else 0.0
            # credit events: a covenant breach (DSCR below default_dscr) traps cash through
            # the lock-up and accelerates only after n_accelerate uncured breaches in a row; the
            # sponsors may cure one (equity up to the default DSCR), never two tests in a row;
            # a payment default (cash, trapped cash and reserve short of what is due)
            # accelerates at once
            cure = 0.0
            breach = test_covenants != 0 and service > _EPS and dscr < default_dscr
            buf[_BREACH, t] = 1.0 if breach else 0.0
            if breach:
                ends[11, i] += 1.0
                if np.isnan(ends[10, i]):
                    ends[10, i] = t
                if cures_left > 0 and not cured_last:
                    cure = default_dscr * service - cfads
                    cures_left -= 1
                    cured_last = True
                    ends[13, i] += 1.0
                    run = 0
                else:
                    cured_last = False
                    run += 1
            else:
                cured_last = False
                run = 0
            top_up_equity += cure
            cash += top_up_equity
            available = cash + dsra + trapped
            short = test_covenants != 0 and available < due - _EPS
            fails = short or (covenant_dscr != 0 and run >= n_accelerate)
            if fails:  # accelerate, recover, pay seniors pro rata, then the fund's loan, equity
                assets = 0.0 if last else (flows[_FLEET][i, t] + flows[_FACILITY][i, t] * (
                    1.0 - haircut[i])) * (1.0 - enforcement)
                pot = max(available + mra + assets, 0.0)
                owed_e = b_e + int_e
                owed = owed_e + b_c + int_c + b_h * (1.0 + rh) + draw_h[t]
                paid = min(pot, owed)
                recovered = paid / owed if owed > 0 else 1.0
                owed_s = b_s * (1.0 + r_s) + (buf[_FUND_DRAW, t] if fund_is_sub else 0.0)
                paid_s = min(pot - paid, owed_s)
                # the period loop's items stop at the default: zero (DSCR NaN) from here on,
                # but for this period's tax, CFADS, scheduled service and DSCR
                buf[_EIB_INT:, t:] = 0.0
                buf[_DSCR, t + 1:] = np.nan
                buf[_TAX, t], buf[_CFADS, t], buf[_DSCR, t] = tax, cfads, dscr
                buf[_SERVICE, t] = service  # what fell due, so that ratios of sums see it
                buf[_BREACH, t] = 1.0 if breach else 0.0
                buf[_RECOVERY, t] = paid
                buf[_SUB_PRIN, t] = paid_s
                residual[t] = pot - paid - paid_s
                end = t
                ends[0, i] = t
                ends[1, i] = owed_e * (1.0 - recovered)
                ends[9, i] = 1.0 if short else 0.0
                ends[12, i] = owed_e
                break
            # cash short of service: trapped cash first, then the reserve
            surplus = cash - due
            from_trapped = min(trapped, max(-surplus, 0.0))
            trapped -= from_trapped
            surplus += from_trapped
            from_dsra = min(dsra, max(-surplus, 0.0))
            dsra -= from_dsra
            surplus = max(surplus + from_dsra, 0.0)
            capitalise = not repaying and not last
            new_e = (b_e + int_e if capitalise else b_e - prin_e) + buf[_EIB_DRAW, t]
            new_c = (b_c + int_c if capitalise else b_c - prin_c) + buf[_COM_DRAW, t]
            new_h = b_h * (1.0 + rh) - pay_h + draw_h[t]
            # reserve target: next period's scheduled senior service
            target = 0.0
            if not last:
                nxt = t + 1
                if nxt >= start:
                    b0e_n, b0c_n = (new_e, new_c) if nxt == start else (b0_e, b0_c)
                    share_n = _principal_share(kind, re, nxt - start, n, profile, f, window_scale)
                    target = (new_e * re + new_c * rc + min(share_n * b0e_n, new_e)
                              + min(share_n * b0c_n, new_c))
                target = dsra_years * (target + min(hw_pay[nxt], new_h * (1.0 + rh)))
            release = max(dsra - target, 0.0)
            surplus += release
            dsra -= release
            gap = max(target - dsra, 0.0)
            funded_by_equity = gap if not repaying and t + 1 == start else 0.0  # initial reserve
            top_up = min(gap, surplus) if repaying else 0.0
            surplus -= top_up
            dsra += top_up + funded_by_equity
            # maintenance reserve: built from the surplus towards the fleet's own cost by the
            # end of its life (the lender's estimate of the next refresh)
            if refresh_funding == 2 and not last and fleet_start >= 0:
                mra_target = fleet_cost * min((t - fleet_start + 1.0) / life_row, 1.0)
                deposit = min(surplus, max(mra_target - mra, 0.0))
                mra += deposit
                surplus -= deposit
            # fund subordinated loan: scheduled interest and principal, unpaid amounts accrue
            pay_s = int_s = new_s = 0.0
            if fund_is_sub:
                accrued = b_s * (1.0 + r_s)
                sched = b0_s / n if repaying and t - start < n else 0.0
                due_s = accrued if last else min(accrued, b_s * r_s + sched)
                pay_s = min(surplus, due_s) if repaying or last else 0.0
                int_s = min(pay_s, b_s * r_s)
                surplus -= pay_s
                # unpaid at the horizon is written off: the fund's flows show the loss
                new_s = 0.0 if last else accrued - pay_s + buf[_FUND_DRAW, t]
            # lock-up: the surplus is trapped; a cash sweep prepays the senior loans pro rata
            # with a share of the trapped cash (a larger share from the second year in a row)
            if service > _EPS and dscr < lockup_dscr and not last:
                dist = 0.0
                trapped += surplus
                locked += 1
                sweep = min(trapped * (sweep_first if locked == 1 else sweep_repeat), new_e + new_c)
                if sweep > 0.0:
                    if sweep_to == 0:
                        sweep_e = sweep * new_e / (new_e + new_c)
                    elif sweep_to == 1:
                        sweep_e = min(sweep, new_e)
                    else:
                        sweep_e = sweep - min(sweep, new_c)
                    prin_e += sweep_e
                    prin_c += sweep - sweep_e
                    new_e -= sweep_e
                    new_c -= sweep - sweep_e
                    trapped -= sweep
            else:
                locked = 0
                dist = surplus + trapped
                trapped = 0.0
            if last:
                dist += dsra + trapped + mra
                dsra = trapped = mra = 0.0
            buf[_EIB_INT, t] = 0.0 if capitalise else int_e
            buf[_EIB_PRIN, t] = prin_e
            buf[_COM_INT, t] = 0.0 if capitalise else int_c
            buf[_COM_PRIN, t] = prin_c
            buf[_IDC, t] = int_e + int_c if capitalise else 0.0
            idc_total += buf[_IDC, t]
            buf[_HW_INT, t] = min(int_h, pay_h)
            buf[_HW_PRIN, t] = pay_h - min(int_h, pay_h)
            buf[_SERVICE, t] = service
            buf[_EIB_BAL, t] = new_e
            buf[_COM_BAL, t] = new_c
            buf[_HW_BAL, t] = new_h
            buf[_DSRA, t] = dsra
            buf[_TRAPPED, t] = trapped
            buf[_MRA, t] = mra
            buf[_SUB_INT, t] = int_s
            buf[_SUB_PRIN, t] = pay_s - int_s
            buf[_SUB_BAL, t] = new_s
            buf[_DIST, t] = dist
            extra_equity[t] = top_up_equity + funded_by_equity
            b_e, b_c, b_h, b_s = new_e, new_c, new_h, new_s
        ends[2, i] = b0_e
        ends[3, i] = b0_c
        # shareholders' and the fund's flows over the periods financed (up to a default)
        build = 0.0
        for t in range(min(end + 1, n_t)):
            build += equity_build[t]
        phi = drawn_f / build if fund_is_equity and build > 0 else 0.0  # fund's equity share
        ends[4, i] = build - (drawn_f if fund_is_equity else 0.0)
        ends[5, i] = start
        ends[6, i] = drawn_e
        ends[7, i] = drawn_c
        ends[8, i] = drawn_f
        for t in range(n_t):
            running = t <= end
            refresh = equity_refresh[t] if running else 0.0
            build_t = equity_build[t] if running else 0.0
            other = buf[_DIST, t] + residual[t] - extra_equity[t] - refresh
            fund = -buf[_FUND_DRAW, t]
            if fund_is_equity:
                fund += phi * other
            elif fund_is_sub:
                fund += buf[_SUB_INT, t] + buf[_SUB_PRIN, t]
            buf[_HW_DRAW, t] = draw_h[t] if running else 0.0
            buf[_CONTRIBUTION, t] = build_t + extra_equity[t] + refresh
            buf[_DIST, t] += residual[t]
            buf[_EQUITY_FLOW, t] = other - build_t
            buf[_FUND_FLOW, t] = fund
            buf[_PRIVATE_FLOW, t] = other - build_t - (fund if fund_is_equity else 0.0)
            buf[_DEBT, t] = buf[_EIB_BAL, t] + buf[_COM_BAL, t] + buf[_HW_BAL, t]
        for item in range(len(slots)):
            if slots[item] >= 0:
                out[slots[item], i, :] = buf[item, :]


def repayment_schedule(sc: Scenario, terms: Terms, factory: int, close: int, first_repayment: int,
                       rate: float, periods: int) -> tuple[int, Array]:
    """One factory's repayment window on a path, as the waterfall uses it: the years n repaid
    (to maturity at ``close`` + tenor) and the (T,) share of the senior balance at the first
    repayment repaid in each period; ``rate``: the EIB loan rate (annuity)."""
    kind = _REPAYMENT_KINDS.index(sc.eib.repayment)
    profile = np.ascontiguousarray(terms.principal_profile, dtype=float)
    start = int(first_repayment)
    n, scale = _repayment_window(int(terms.repayment_years[factory]),
                                 int(close) + sc.eib.tenor_years, start, profile, factory)
    return n, np.array([_principal_share(kind, float(rate), t - start, n, profile, factory, scale)
                        for t in range(periods)])


def finance(sc: Scenario, d: Drivers, op: Operations, terms: Terms,
            test_covenants: bool = True, keep: Collection[str] | None = None) -> Financing:
    """Every factory's financing on every path. ``test_covenants=False`` (debt sizing) never
    defaults. ``keep``: the line items to return (default: all of ``FINANCING_ITEMS``); a
    Monte Carlo run keeps only what its KPIs read."""
    n_t = d.horizon_years
    shape = op.cod_years.shape
    rows = shape[0] * shape[1]
    eib, prv = sc.eib, sc.private
    flows = tuple(by_row_and_period(op[name], shape, n_t) for name in _FLOWS)
    kept = [name for name in _WATERFALL_ITEMS if keep is None or name in keep]
    slots = np.array([kept.index(n) if n in kept else -1 for n in _WATERFALL_ITEMS], np.int64)
    out = np.empty((len(kept), rows, n_t))
    ends = np.zeros((len(_ROW_OUTCOMES), rows))
    fees = eib.upfront_fee * terms.eib_eur_m + prv.commercial_upfront_fee * terms.commercial_eur_m
    deal = np.array([terms.eib_eur_m, terms.commercial_eur_m, terms.fund_eur_m,
                     terms.construction_cost_eur_m, fees, terms.hardware_share], dtype=float)
    flags = np.array([
        _REPAYMENT_KINDS.index(eib.repayment), _INSTRUMENTS.index(sc.fund.instrument),
        prv.hardware_loan_tenor_years, test_covenants,
        test_covenants and eib.default_trigger == "dscr_or_payment",
        _REFRESH_FUNDING.index(prv.refresh_funding), eib.breaches_to_acceleration, eib.tenor_years,
        eib.availability_years, sc.tax.interest_limitation, d.facility_life_years,
        eib.equity_cures_max if test_covenants else 0, _SWEEP_TO.index(eib.cash_sweep_to)],
        dtype=np.int64)
    _waterfall(
        flows, by_row(d.base_rate + d.eib_margin, shape),
        by_row(d.base_rate + d.senior_spread, shape), by_row(d.base_rate + d.hardware_loan_spread, shape),
        by_row(d.facility_recovery_haircut, shape),
        by_row(d.tax_rate, shape), by_row(op.terminal_at_horizon + op.plant_reserve_at_horizon, shape),
        by_row(_repayment_floor(sc, d, op), shape),
        by_row(np.clip(np.broadcast_to(d.close_year, shape).astype(np.int64), 0, n_t - 1), shape,
               np.int64),
        by_row(terms.repayment_years[None, :], shape, np.int64),
        by_row(np.rint(d.gpu_life_years), shape, np.int64),
        np.ascontiguousarray(terms.principal_profile, dtype=float), deal,
        np.array([sc.fund.sub_loan_rate, eib.dsra_months / 12.0, eib.default_dscr,
                  eib.lockup_dscr, eib.enforcement_cost_share, eib.target_dscr,
                  sc.tax.interest_limit_share_of_ebitda, sc.tax.interest_safe_harbour_eur_m,
                  eib.cash_sweep_share, eib.cash_sweep_share_repeat]),
        flags, slots, out, ends)
    items = {name: out[k].reshape(*shape, n_t) for k, name in enumerate(kept)}
    outcome = {name: e.reshape(shape) for name, e in zip(_ROW_OUTCOMES, ends, strict=True)}
    b0_e = outcome["eib_exposure"]
    return Financing(
        items=items, first_repayment=outcome["first_repayment"].astype(np.int64),
        default=~np.isnan(outcome["default_period"]), default_period=outcome["default_period"],
        payment_default=outcome["payment_default"] > 0, breach_periods=outcome["breaches"],
        first_breach_period=outcome["first_breach_period"],
        eib_default=outcome["eib_owed_at_default"] > _EPS,
        eib_owed_at_default=outcome["eib_owed_at_default"], equity_cures=outcome["equity_cures"],
        eib_exposure=b0_e, senior_exposure=b0_e + outcome["commercial_exposure"],
        eib_loss=outcome["eib_loss"], private_equity_at_close=outcome["private_equity_at_close"],
        sums={name: outcome[name] for name in ("eib_draw", "commercial_draw", "fund_draw")},
    )


def years_to_first_repayment(sc: Scenario, d: Drivers, op: Operations) -> NDArray[np.int64]:
    """(F,) years from each site's close to its first scheduled senior repayment on the base
    case (drivers and operations of one path): the EIB tenor must be longer than each."""
    uses = (op["capex_construction"] + op["capex_gpu_initial"])[:1]  # (1, F, T)
    close = np.broadcast_to(d.close_year, (1, sc.n_factories))[0].astype(np.int64)
    return _first_repayment(sc, d, op, uses)[0] - close


def size_debt(sc: Scenario, d: Drivers, op: Operations, fund_eur_m: Array,
              cfads_scale: Array | None = None) -> Terms:
    """Size the senior debt on the base case (P = 1) as lenders do: the smallest of the EIB
    share, the gearing cap, what leaves equity non-negative, and what the base-case CFADS (times
    ``cfads_scale`` (F,) for a downside case) carries at ``eib.target_dscr``; sculpted loans
    follow that CFADS. Iterates to a fixed point because CFADS depends on the interest tax
    shield."""
    eib, prv = sc.eib, sc.private
    n_f = sc.n_factories
    uses = (op["capex_construction"] + op["capex_gpu_initial"])[0]  # (F, T)
    cost = uses.sum(-1)
    wanted_e = eib.share_of_cost * cost
    wanted_c = prv.commercial_debt_share * cost
    wanted = wanted_e + wanted_c
    room = np.maximum(cost - fund_eur_m, 0.0)
    caps = {"eib_share": wanted, "gearing": eib.gearing_max * cost, "equity": room}
    wait = years_to_first_repayment(sc, d, op)
    n_rep = eib.tenor_years - wait
    problems = [Problem("eib.tenor_years", eib.tenor_years,
                        f"the loan of factory {sc.factories[i].name!r} would mature before its "
                        f"first repayment ({wait[i]} years after its close on the base case); "
                        f"use a tenor of at least {wait.max() + 1} years or a shorter grace period")
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
        new_capacity, new_profile = _dscr_capacity(sc, d, fin, terms, senior, cfads_scale)
        new_senior = np.minimum(np.minimum.reduce(list(caps.values())), new_capacity)
        converged = (np.allclose(new_senior, senior, rtol=1e-10, atol=1e-9)
                     and np.allclose(new_profile, profile, rtol=1e-10, atol=1e-12))
        senior, capacity, profile = new_senior, new_capacity, new_profile
        if converged:
            break
    binding = tuple(
        min({**caps, "dscr": capacity}.items(), key=lambda kv: kv[1][i])[0] for i in range(n_f))
    return Terms(fund_eur_m, senior * split, senior * (1.0 - split), cost, n_rep, profile,
                 capacity, hw_share, binding, cfads_scale=cfads_scale)


def _dscr_capacity(sc: Scenario, d: Drivers, fin: Financing, terms: Terms, senior: Array,
                   cfads_scale: Array | None = None) -> tuple[Array, Array]:
    """Senior commitment (F,) the base-case CFADS (times ``cfads_scale`` (F,), a downside case)
    carries at the target DSCR, and the principal profile (F, N_max) for the next sizing
    round."""
    eib = sc.eib
    target = eib.target_dscr
    r0 = fin.first_repayment[0]
    cfads = fin["cfads"][0] if cfads_scale is None else fin["cfads"][0] * cfads_scale[:, None]
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
        # the senior loans come first: hardware loans are sized later, on what they leave
        cf = cfads[i, window] / target
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
