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
    return np.where(np.arange(periods) == period[..., None], amount[..., None], 0.0)


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
    """Every factory's operations on every path. See the module docstring for timing."""
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

    mw = gpus * pf(d.it_kw_per_gpu) * pf(d.pue) / 1000.0
    facility_capex = mw * (pf(d.facility_capex_eur_m_per_mw) + pf(d.grid_capex_eur_m_per_mw))
    build_share = _overlap(t0, t1, close[..., None], build_end[..., None]) / col(d.build_years)
    capex_construction = facility_capex[..., None] * build_share

    erosion = col(d.gpu_hour_price_erosion_per_year)
    price_factor = np.broadcast_to(d.gpu_hour_price_factor, (*shape, n_t))
    u_steady = np.broadcast_to(d.utilisation_steady, (*shape, n_t))
    compute_price = np.broadcast_to(d.compute_capex_eur_per_gpu, (*shape, n_t))
    resale_5y = pf(d.gpu_resale_share_5y)
    growth = pf(d.price_performance_growth_per_year)

    z = np.zeros((*shape, n_t))
    capex_gpu_initial, capex_gpu_refresh = z.copy(), z.copy()
    hours, revenue_reserved, compute_hours = z.copy(), z.copy(), z.copy()
    util_years, serve_years = z.copy(), z.copy()
    depreciation, fleet_opex_base, resale = z.copy(), z.copy(), z.copy()
    fleet_terminal = np.zeros(shape)

    first_purchase = close if d.gpus_bought_at_close else cod
    ramp = _overlap(t0, t1, cod[..., None], cod[..., None] + 1.0)
    n_fleets = int(np.ceil(np.max((n_t - np.minimum(cod, n_t)) / life))) + 1
    for k in range(n_fleets):
        start = cod + k * life
        end = start + life
        purchase = first_purchase if k == 0 else start
        bought = purchase < n_t
        if not bought.any():
            break
        j = _pay_period(purchase, n_t)
        unit_price = np.take_along_axis(compute_price, j[..., None], axis=-1)[..., 0]
        capex_k = np.where(bought, gpus * unit_price / 1e6, 0.0)
        (capex_gpu_initial if k == 0 else capex_gpu_refresh)[...] += _at_period(capex_k, j, n_t)

        serve = _overlap(t0, t1, start[..., None], end[..., None])
        ramp_k = ramp if k == 0 else 0.0
        used = ramp_k * col(d.utilisation_launch_year) + (serve - ramp_k) * u_steady
        age = np.where(serve > 0, np.maximum(t0, start[..., None]) - purchase[..., None], 0.0)
        price = col(d.gpu_hour_price_launch_eur) * (1.0 - erosion) ** age * price_factor
        hours_k = gpus[..., None] * HOURS_PER_YEAR * used
        hours += hours_k
        revenue_reserved += hours_k * price / 1e6
        compute_hours += hours_k * ((1.0 + growth) ** (purchase - first_purchase))[..., None]
        util_years += used
        serve_years += serve
        depreciation += capex_k[..., None] / life[..., None] * serve
        fleet_opex_base += capex_k[..., None] * serve

        retired = bought & (end <= n_t)
        proceeds = np.where(retired, capex_k * resale_5y ** ((end - purchase) / 5.0), 0.0)
        resale += _at_period(proceeds, _pay_period(end, n_t), n_t)
        in_use_at_horizon = bought & (end > n_t)
        fleet_terminal += np.where(in_use_at_horizon,
                                   capex_k * resale_5y ** ((n_t - purchase) / 5.0), 0.0)

    q = col(d.public_access_share)
    anchor = col(d.anchor_share_of_commercial)
    discount = col(d.public_access_discount)
    revenue_anchor = revenue_reserved * (1.0 - q) * anchor
    revenue_on_demand = revenue_reserved * (1.0 - q) * (1.0 - anchor) * (1.0 + col(d.on_demand_premium))
    revenue_public_users = revenue_reserved * q * (1.0 - discount)
    revenue_public_fund = revenue_reserved * q * discount if d.public_access_paid_by_fund else z.copy()
    revenue = revenue_anchor + revenue_on_demand + revenue_public_users + revenue_public_fund

    kw_facility = gpus * pf(d.it_kw_per_gpu) * pf(d.pue)
    idle = col(d.idle_power_share)
    energy_mwh = kw_facility[..., None] * HOURS_PER_YEAR * (idle * serve_years
                                                            + (1.0 - idle) * util_years) / 1000.0
    energy_cost = energy_mwh * np.broadcast_to(d.power_price_eur_mwh, (*shape, n_t)) / 1e6

    facility_active = np.clip(t1 - build_end[..., None], 0.0, 1.0)
    opex_index = np.broadcast_to(d.opex_index, (*shape, n_t))
    other_opex = col(d.other_opex_share_of_capex) * (
        facility_capex[..., None] * facility_active * opex_index + fleet_opex_base)
    opex = energy_cost + other_opex
    ebitda = revenue - opex

    life_f = float(d.facility_life_years)
    facility_dep = facility_capex[..., None] / life_f * _overlap(
        t0, t1, build_end[..., None], build_end[..., None] + life_f)
    fleet_dep = depreciation
    depreciation = fleet_dep + facility_dep

    capex_gpu = capex_gpu_initial + capex_gpu_refresh
    fleet_book_at_horizon = capex_gpu.sum(-1) - fleet_dep.sum(-1)
    facility_book_at_horizon = capex_construction.sum(-1) - facility_dep.sum(-1)
    terminal = _at_period(fleet_terminal + facility_book_at_horizon, np.full(shape, n_t - 1), n_t)
    terminal_gain = _at_period(fleet_terminal - fleet_book_at_horizon, np.full(shape, n_t - 1), n_t)

    taxable = ebitda - depreciation + resale + terminal_gain
    tax, _ = corporate_tax(taxable, pf(d.tax_rate))
    capex = capex_construction + capex_gpu
    items = {
        "operating_share": np.minimum(serve_years, 1.0),
        "gpu_hours_m": hours / 1e6,
        "gpu_hours_public_m": hours * q / 1e6,
        "compute_hours_adjusted_m": compute_hours / 1e6,
        "energy_gwh": energy_mwh / 1000.0,
        "revenue_anchor": revenue_anchor,
        "revenue_on_demand": revenue_on_demand,
        "revenue_public_users": revenue_public_users,
        "revenue_public_fund": revenue_public_fund,
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
                      capex_initial=capex_construction.sum(-1) + capex_gpu_initial.sum(-1))
