"""Operations: each factory's annual cash flows on every path, from its drivers.

Time: period t covers years [t, t + 1) after the portfolio's financial close; its flows are at
its end. A factory reaches close at ``close_year``, builds for ``build_years``, and reaches
commercial operation (COD) after the longer of the grid and chip-delivery delays. GPU fleets
serve ``gpu_life_years`` each, back to back from COD; each is paid at the first period end on or
after its purchase (at COD, or at close for the first fleet if ``gpus_bought_at_close``), at that
year's price, and resold at retirement. GPU-hour prices are set when each period's service starts
(anchor contracts reprice yearly): a fleet earns the launch price, times the market factor, in
its first year and ``(1 - erosion) ** age`` after that. Vectorised over paths and factories; loops run over
fleets (a handful) and, for the loss carry-forward, over periods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from finmodel.drivers import Drivers

__all__ = ["HOURS_PER_YEAR", "LINE_ITEMS", "Operations", "corporate_tax", "operate"]

Array = NDArray[np.float64]
HOURS_PER_YEAR = 8760.0

# name -> (unit, description): the line items of the operations layer, in display order
LINE_ITEMS: dict[str, tuple[str, str]] = {
    "operating_share": ("share", "share of the period with energised, selling capacity"),
    "gpu_hours_m": ("m GPU-hours", "GPU-hours sold"),
    "gpu_hours_public_m": ("m GPU-hours", "GPU-hours delivered to the public-access quota"),
    "compute_hours_adjusted_m": ("m GPU-hour eq.", "GPU-hours in first-fleet equivalents "
                                 "(price-performance adjusted)"),
    "energy_gwh": ("GWh", "electricity used"),
    "revenue_anchor": ("EUR m", "reserved / anchor contracts"),
    "revenue_on_demand": ("EUR m", "on-demand sales"),
    "revenue_public_users": ("EUR m", "public-access users' payments"),
    "revenue_public_fund": ("EUR m", "fund payments for the public-access discount"),
    "revenue": ("EUR m", "total revenue"),
    "energy_cost": ("EUR m", "electricity cost"),
    "other_opex": ("EUR m", "maintenance, staff, insurance, software, network"),
    "opex": ("EUR m", "total operating cost"),
    "ebitda": ("EUR m", "revenue - opex"),
    "depreciation": ("EUR m", "straight-line: fleets over their service, facility over its life"),
    "resale_proceeds": ("EUR m", "sale of retired GPU fleets"),
    "terminal_value": ("EUR m", "installed fleet at resale value + facility at book value, at horizon"),
    "taxable_income": ("EUR m", "EBITDA - depreciation + disposal gains (before interest)"),
    "tax": ("EUR m", "corporate tax with loss carry-forward (unlevered)"),
    "capex_construction": ("EUR m", "facility and grid connection"),
    "capex_gpu_initial": ("EUR m", "first GPU fleet"),
    "capex_gpu_refresh": ("EUR m", "replacement GPU fleets"),
    "capex": ("EUR m", "total capital expenditure"),
    "unlevered_fcf": ("EUR m", "EBITDA - tax - capex + resale + terminal value"),
    "cfads": ("EUR m", "cash flow available for debt service: EBITDA - tax - refresh capex + resale"),
}


@dataclass(frozen=True)
class Operations:
    """Line items (P, F, T) named in ``LINE_ITEMS`` plus per-factory facts (P, F)."""

    items: dict[str, Array]
    facility_mw: Array  # (P, F) MW
    cod_years: Array  # (P, F) years after portfolio close
    capex_initial: Array  # (P, F) EUR m: construction + first fleet

    def __getitem__(self, name: str) -> Array:
        return self.items[name]


def _overlap(t0: Array, t1: Array, a: Array, b: Array) -> Array:
    """Length of [t0, t1) intersected with [a, b); broadcasts."""
    return np.clip(np.minimum(t1, b) - np.maximum(t0, a), 0.0, None)


def _pay_period(time: Array, periods: int) -> Array:
    """Index of the period whose end is the first on or after ``time`` (clamped)."""
    return np.clip(np.ceil(time) - 1, 0, periods - 1).astype(np.int64)


def _at_period(amount: Array, period: Array, periods: int) -> Array:
    """(P, F) amounts placed in their (P, F) period index: (P, F, T)."""
    out = np.zeros((*amount.shape, periods))
    np.put_along_axis(out, period[..., None], amount[..., None], axis=-1)
    return out


def _pick(per_fleet: Array, fleet: Array) -> Array:
    """per_fleet (P, F, K) gathered at fleet indices (P, F, T) -> (P, F, T)."""
    return np.take_along_axis(per_fleet, np.minimum(fleet, per_fleet.shape[-1] - 1), axis=-1)


def corporate_tax(taxable_income: Array, tax_rate: Array) -> tuple[Array, Array]:
    """Tax with unlimited loss carry-forward.

    taxable_income: (P, F, T) EUR m; tax_rate: (P, F). Returns tax (P, F, T) EUR m and the
    unused losses (P, F) EUR m at the horizon.
    """
    tax = np.empty_like(taxable_income)
    pool = np.zeros(taxable_income.shape[:-1])
    rate = np.broadcast_to(tax_rate, pool.shape)
    for t in range(taxable_income.shape[-1]):
        income = taxable_income[..., t]
        profit = np.maximum(income, 0.0)
        used = np.minimum(pool, profit)
        tax[..., t] = rate * (profit - used)
        pool = pool - used + np.maximum(-income, 0.0)
    return tax, pool


def operate(d: Drivers) -> Operations:
    """Every factory's operations on every path. See the module docstring for timing.

    Fleets serve back to back from COD, so a period holds at most two: the one serving at the
    period's start (``k1``, from ``seg1_start``) and, if a fleet retires inside the period, its
    successor (``k2``, new, for ``seg2`` years). Per-fleet facts (cost, purchase time) live on a
    small fleet axis K and are gathered per period.
    """
    n_t = d.horizon_years
    shape = (d.n_paths, d.n_factories)

    def pf(x: Array) -> Array:
        return np.broadcast_to(np.asarray(x, dtype=float), shape)

    def col(x: Array) -> Array:
        return pf(x)[..., None]

    t0 = np.arange(n_t, dtype=float)
    t1 = t0 + 1.0
    gpus = pf(d.gpus)
    close = pf(d.close_year)
    build_end = close + pf(d.build_years)
    cod = build_end + np.maximum(pf(d.grid_delay_years), pf(d.chip_delay_years))
    life = pf(d.gpu_life_years)
    first_purchase = close if d.gpus_bought_at_close else cod

    mw = gpus * pf(d.it_kw_per_gpu) * pf(d.pue) / 1000.0
    facility_capex = mw * (pf(d.facility_capex_eur_m_per_mw) + pf(d.grid_capex_eur_m_per_mw))
    capex_construction = facility_capex[..., None] * (
        _overlap(t0, t1, close[..., None], build_end[..., None]) / col(d.build_years))

    # -- fleets: purchase time, cost and compute per GPU of each fleet k (P, F, K)
    n_fleets = int(np.ceil(np.max((n_t - np.minimum(cod, n_t)) / life))) + 2
    k_axis = np.arange(n_fleets, dtype=float)
    purchase = cod[..., None] + k_axis * life[..., None]
    purchase[..., 0] = first_purchase
    bought = purchase < n_t
    pay = _pay_period(purchase, n_t)
    compute_price = np.broadcast_to(d.compute_capex_eur_per_gpu, (*shape, n_t))
    fleet_cost = np.where(bought, gpus[..., None] * np.take_along_axis(compute_price, pay, -1) / 1e6,
                          0.0)
    fleet_compute = (1.0 + col(d.price_performance_growth_per_year)) ** (
        purchase - first_purchase[..., None])
    resale_5y = col(d.gpu_resale_share_5y)

    # -- which fleet serves when, per period (P, F, T)
    since_cod = t0 - cod[..., None]
    k1 = np.floor(np.maximum(since_cod, 0.0) / life[..., None]).astype(np.int64)
    seg1_start = np.maximum(t0, cod[..., None])
    boundary = cod[..., None] + (k1 + 1) * life[..., None]  # when fleet k1 retires
    seg1 = np.clip(np.minimum(t1, boundary) - seg1_start, 0.0, None)
    seg2 = np.clip(t1 - boundary, 0.0, None)  # successor k1 + 1, new
    k2 = k1 + 1
    age1 = seg1_start - _pick(purchase, k1)
    ramp = _overlap(t0, t1, cod[..., None], cod[..., None] + 1.0)  # within fleet 0's service
    u_steady = np.broadcast_to(d.utilisation_steady, (*shape, n_t))
    used1 = ramp * col(d.utilisation_launch_year) + (seg1 - ramp) * u_steady
    used2 = seg2 * u_steady
    util_years = used1 + used2
    serve_years = seg1 + seg2

    erosion_factor = (1.0 - col(d.gpu_hour_price_erosion_per_year)) ** age1
    hourly = gpus[..., None] * HOURS_PER_YEAR
    price_base = col(d.gpu_hour_price_launch_eur) * np.broadcast_to(
        d.gpu_hour_price_factor, (*shape, n_t))
    hours = hourly * util_years
    revenue_reserved = hourly * price_base * (used1 * erosion_factor + used2) / 1e6
    compute_hours = hourly * (used1 * _pick(fleet_compute, k1) + used2 * _pick(fleet_compute, k2))
    cost1, cost2 = _pick(fleet_cost, k1), _pick(fleet_cost, k2)
    fleet_dep = (cost1 * seg1 + cost2 * seg2) / life[..., None]
    fleet_opex_base = cost1 * seg1 + cost2 * seg2

    # -- purchases and retirements: a fleet boundary in (t, t + 1] is paid in period t
    m_end = np.where(t1 >= cod[..., None], np.floor((t1 - cod[..., None]) / life[..., None]), -1)
    m_start = np.where(t0 >= cod[..., None], np.floor(since_cod / life[..., None]), -1)
    event = (m_end > m_start) & (m_end >= 1)
    k_new = np.maximum(m_end, 0).astype(np.int64)
    capex_gpu_refresh = np.where(event, _pick(fleet_cost, k_new), 0.0)
    # fleet k retires when k + 1 starts; its age then is its life (fleet 0: from its purchase)
    age_at_retirement = np.broadcast_to(life[..., None], purchase.shape).copy()
    age_at_retirement[..., 0] = cod + life - first_purchase
    fleet_resale = fleet_cost * resale_5y ** (age_at_retirement / 5.0)  # (P, F, K)
    resale = np.where(event, _pick(fleet_resale, np.maximum(k_new - 1, 0)), 0.0)
    capex_gpu_initial = _at_period(fleet_cost[..., 0], pay[..., 0], n_t)

    k_h = np.floor(np.maximum(n_t - cod, 0.0) / life).astype(np.int64)[..., None]
    fleet_terminal = (_pick(fleet_cost, k_h) * resale_5y ** (
        (n_t - _pick(purchase, k_h)) / 5.0))[..., 0]

    # -- revenue by channel, energy, opex
    q = pf(d.public_access_share)
    anchor = pf(d.anchor_share_of_commercial)
    discount = pf(d.public_access_discount)
    channel = {
        "revenue_anchor": (1.0 - q) * anchor,
        "revenue_on_demand": (1.0 - q) * (1.0 - anchor) * (1.0 + pf(d.on_demand_premium)),
        "revenue_public_users": q * (1.0 - discount),
        "revenue_public_fund": q * discount if d.public_access_paid_by_fund else np.zeros(shape),
    }
    revenues = {name: revenue_reserved * share[..., None] for name, share in channel.items()}
    revenue = revenue_reserved * sum(channel.values())[..., None]

    kw_facility = gpus * pf(d.it_kw_per_gpu) * pf(d.pue)
    idle = col(d.idle_power_share)
    energy_mwh = (kw_facility * HOURS_PER_YEAR / 1000.0)[..., None] * (
        idle * serve_years + (1.0 - idle) * util_years)
    energy_cost = energy_mwh * np.broadcast_to(d.power_price_eur_mwh, (*shape, n_t)) / 1e6

    facility_active = np.clip(t1 - build_end[..., None], 0.0, 1.0)
    other_opex = col(d.other_opex_share_of_capex) * (
        facility_capex[..., None] * facility_active * d.opex_index + fleet_opex_base)
    opex = energy_cost + other_opex
    ebitda = revenue - opex

    life_f = float(d.facility_life_years)
    facility_dep = facility_capex[..., None] / life_f * _overlap(
        t0, t1, build_end[..., None], build_end[..., None] + life_f)
    depreciation = fleet_dep + facility_dep

    capex_gpu = capex_gpu_initial + capex_gpu_refresh
    fleet_book_at_horizon = capex_gpu.sum(-1) - fleet_dep.sum(-1)
    facility_book_at_horizon = capex_construction.sum(-1) - facility_dep.sum(-1)
    last = np.full(shape, n_t - 1)
    terminal = _at_period(fleet_terminal + facility_book_at_horizon, last, n_t)
    terminal_gain = _at_period(fleet_terminal - fleet_book_at_horizon, last, n_t)

    taxable = ebitda - depreciation + resale + terminal_gain
    tax, _ = corporate_tax(taxable, pf(d.tax_rate))
    capex = capex_construction + capex_gpu
    items = {
        "operating_share": np.minimum(serve_years, 1.0),
        "gpu_hours_m": hours / 1e6,
        "gpu_hours_public_m": hours * q[..., None] / 1e6,
        "compute_hours_adjusted_m": compute_hours / 1e6,
        "energy_gwh": energy_mwh / 1000.0,
        **revenues,
        "revenue": revenue,
        "energy_cost": energy_cost,
        "other_opex": other_opex,
        "opex": opex,
        "ebitda": ebitda,
        "depreciation": depreciation,
        "resale_proceeds": resale,
        "terminal_value": terminal,
        "taxable_income": taxable,
        "tax": tax,
        "capex_construction": capex_construction,
        "capex_gpu_initial": capex_gpu_initial,
        "capex_gpu_refresh": capex_gpu_refresh,
        "capex": capex,
        "unlevered_fcf": ebitda - tax - capex + resale + terminal,
        "cfads": ebitda - tax - capex_gpu_refresh + resale,
    }
    return Operations(items=items, facility_mw=mw, cod_years=cod,
                      capex_initial=capex_construction.sum(-1) + fleet_cost[..., 0])
