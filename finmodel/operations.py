"""Operations: each factory's annual cash flows on every path, from its drivers.

Time: period t covers years [t, t + 1) after the portfolio's financial close; its flows are at
its end. A factory reaches close at ``close_year``, builds for ``build_years``, and reaches
commercial operation (COD) after the longer of the grid and chip-delivery delays. GPU fleets
serve ``gpu_life_years`` each, back to back from COD; each is paid at the first period end on or
after its purchase (at COD, or at close for the first fleet if ``gpus_bought_at_close``), at that
year's price, and resold at retirement. GPU-hour prices are set when each period's service starts
(anchor contracts reprice yearly): a fleet earns the launch price, times the market factor, in
its first year and ``(1 - erosion) ** age`` after that. Numpy over (paths, factories, periods);
the two loops over periods that carry state, the fleet vintages and the loss carry-forward, are
compiled kernels over rows (one path and factory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from finmodel.compiled import by_row, by_row_and_period, kernel
from finmodel.drivers import Drivers

__all__ = ["HOURS_PER_YEAR", "LINE_ITEMS", "LineItems", "Operations", "corporate_tax", "operate"]

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
    "fleet_value": ("EUR m", "resale value of the GPU fleet owned at the period end"),
    "facility_book_value": ("EUR m", "facility and grid connection at book value, at the period end"),
    "taxable_income": ("EUR m", "EBITDA - depreciation + disposal gains (before interest)"),
    "tax": ("EUR m", "corporate tax with loss carry-forward (unlevered)"),
    "capex_construction": ("EUR m", "facility and grid connection"),
    "capex_gpu_initial": ("EUR m", "first GPU fleet"),
    "capex_gpu_refresh": ("EUR m", "replacement GPU fleets"),
    "capex": ("EUR m", "total capital expenditure"),
    "unlevered_fcf": ("EUR m", "EBITDA - tax - capex + resale + terminal value"),
    "pre_financing_cash": ("EUR m", "EBITDA - unlevered tax - refresh capex + resale (before "
                           "financing; the financing layer's CFADS adds interest shields and "
                           "refresh funding)"),
}


class LineItems(Mapping[str, Array]):
    """Line items by name, in ``LINE_ITEMS`` order; derived ones are computed on first use."""

    def __init__(self, computed: dict[str, Array], derived: dict[str, Callable[[], Array]]):
        self._computed = computed
        self._derived = derived

    def __getitem__(self, name: str) -> Array:
        if name not in self._computed:
            if name not in self._derived:
                raise KeyError(f"no line item {name!r}; choose from {', '.join(LINE_ITEMS)}")
            self._computed[name] = self._derived.pop(name)()
        return self._computed[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in LINE_ITEMS if name in self._computed or name in self._derived)

    def __len__(self) -> int:
        return len(self._computed) + len(self._derived)


@dataclass(frozen=True)
class Operations:
    """Line items (P, F, T) named in ``LINE_ITEMS`` plus per-factory facts (P, F)."""

    items: LineItems
    facility_mw: Array  # (P, F) MW
    cod_years: Array  # (P, F) years after portfolio close
    capex_initial: Array  # (P, F) EUR m: construction + first fleet
    terminal_at_horizon: Array  # (P, F) EUR m: the last period's terminal value
    sums: dict[str, Array]  # (P, F) horizon totals of some derived items, without building them

    def __getitem__(self, name: str) -> Array:
        return self.items[name]

    def total(self, name: str) -> Array:
        """(P, F) sum over the horizon of a line item (computed once)."""
        if name not in self.sums:
            self.sums[name] = self.items[name].sum(-1)
        return self.sums[name]


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


def corporate_tax(taxable_income: Array, tax_rate: Array) -> tuple[Array, Array]:
    """Tax with unlimited loss carry-forward.

    taxable_income: (P, F, T) EUR m; tax_rate: (P, F). Returns tax (P, F, T) EUR m and the
    unused losses (P, F) EUR m at the horizon.
    """
    lead, n_t = np.shape(taxable_income)[:-1], np.shape(taxable_income)[-1]
    flat = by_row_and_period(taxable_income, lead, n_t)
    tax, pool = np.empty_like(flat), np.empty(flat.shape[0])
    _tax_rows(flat, by_row(tax_rate, lead), tax, pool)
    return tax.reshape(*lead, n_t), pool.reshape(lead)


@kernel
def _tax_rows(income: Array, rate: Array, tax: Array, pool: Array) -> None:
    """The loss carry-forward of ``corporate_tax`` on rows (R, T); pool (R,) left at the end."""
    for i in range(income.shape[0]):
        losses = 0.0
        for t in range(income.shape[1]):
            profit = max(income[i, t], 0.0)
            used = min(losses, profit)
            tax[i, t] = rate[i] * (profit - used)
            losses = losses - used + max(-income[i, t], 0.0)
        pool[i] = losses


_FLEET_ITEMS = ("sold", "serve", "used", "compute", "dep", "opex_base", "refresh", "resale", "value")


@kernel
def _decay(log_factor: float, years: float) -> float:
    """factor ** years from log(factor), with factor ** 0 = 1 also for factor = 0."""
    return np.exp(log_factor * years) if years > 0 else 1.0


@kernel
def _walk_fleets(gpus, life, u_launch, log_keep, log_resale, log_growth, cod, first_purchase,
                 j0, price, u_steady, out, ends):
    """The period loop of ``_fleets`` for each row (one path and factory), compiled.

    Per row (R,): GPUs, fleet life (years), launch-year utilisation, log of the yearly price
    retention and of the yearly resale retention, log of 1 + price-performance growth, COD and
    first purchase (years after close), first purchase period ``j0`` (int). Per row and period
    (R, T): GPU price (EUR) and steady utilisation. Fills ``out`` (len(_FLEET_ITEMS), R, T)
    and ``ends`` (2, R): terminal fleet value and initial fleet cost (EUR m).
    """
    n_rows, n_t = price.shape
    for i in range(n_rows):
        cost = gpus[i] * price[i, j0[i]] / 1e6 if first_purchase[i] < n_t else 0.0
        ends[1, i] = cost
        purchase, compute, boundary = first_purchase[i], 1.0, cod[i] + life[i]
        for t in range(n_t):
            start = max(float(t), cod[i])
            seg1 = max(min(t + 1.0, boundary) - start, 0.0)
            seg2 = max(t + 1.0 - boundary, 0.0)
            ramp = max(min(t + 1.0, cod[i] + 1.0) - start, 0.0)
            u_t = u_steady[i, t]
            used1 = ramp * u_launch[i] + (seg1 - ramp) * u_t
            used2 = seg2 * u_t
            # a fleet retires in this period: resell it, buy the next (if within the horizon)
            event = boundary > t and boundary <= t + 1.0
            new_cost = gpus[i] * (price[i, t] / 1e6) if event and boundary < n_t else 0.0
            # the successor's compute per GPU (needed only where it serves or is bought)
            new_compute = (np.exp(log_growth[i] * (boundary - first_purchase[i]))
                           if event or seg2 > 0.0 else 0.0)
            out[0, i, t] = used1 * _decay(log_keep[i], start - purchase) + used2
            out[1, i, t] = seg1 + seg2
            out[2, i, t] = used1 + used2
            out[3, i, t] = used1 * compute + used2 * new_compute
            out[4, i, t] = (cost * seg1 + new_cost * seg2) / life[i]
            out[5, i, t] = cost * seg1 + new_cost * seg2
            out[6, i, t] = new_cost
            out[7, i, t] = 0.0
            if event:
                out[7, i, t] = cost * _decay(log_resale[i], boundary - purchase)
                cost, purchase, compute = new_cost, boundary, new_compute
                boundary += life[i]
            out[8, i, t] = cost * _decay(log_resale[i], t + 1.0 - purchase) if t >= j0[i] else 0.0
        ends[0, i] = cost * _decay(log_resale[i], n_t - purchase)


def _fleets(d: Drivers, shape: tuple[int, int], cod: Array, first_purchase: Array) -> dict[str, Array]:
    """Walk the GPU fleets through time, one period at a time for each (path, factory).

    Fleets serve back to back from COD, so a period holds at most two: the one serving at its
    start (bought at ``purchase``, costing ``cost``) and, if that one retires inside the
    period, a new successor for the rest of it. A retirement at a period end counts in that
    period. Returns (P, F, T) arrays: utilisation-weighted years at launch price (``sold``),
    serving years, sold years, compute-weighted sold years, fleet depreciation, fleet cost in
    service (opex base), refresh capex, resale proceeds and the owned fleet's resale value at
    each period end; and (P, F) terminal fleet value.
    """
    n_t = d.horizon_years
    rows = shape[0] * shape[1]

    with np.errstate(divide="ignore"):  # erosion 1 or resale 0: log 0 = -inf, handled by _decay
        log_keep = np.log1p(-by_row(d.gpu_hour_price_erosion_per_year, shape))
        log_resale = np.log(by_row(d.gpu_resale_share_5y, shape)) / 5.0
    j0 = _pay_period(first_purchase, n_t)
    out = np.empty((len(_FLEET_ITEMS), rows, n_t))  # the kernel writes every cell
    ends = np.empty((2, rows))
    _walk_fleets(by_row(d.gpus, shape), by_row(d.gpu_life_years, shape),
                 by_row(d.utilisation_launch_year, shape), log_keep, log_resale,
                 np.log1p(by_row(d.price_performance_growth_per_year, shape)),
                 by_row(cod, shape), by_row(first_purchase, shape), by_row(j0, shape, np.int64),
                 by_row_and_period(d.compute_capex_eur_per_gpu, shape, n_t),
                 by_row_and_period(d.utilisation_steady, shape, n_t),
                 out, ends)
    result = {name: out[k].reshape(*shape, n_t) for k, name in enumerate(_FLEET_ITEMS)}
    result["terminal"] = ends[0].reshape(shape)
    result["initial_cost"] = ends[1].reshape(shape)
    result["initial"] = _at_period(result["initial_cost"], j0, n_t)
    return result


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
    first_purchase = close if d.gpus_bought_at_close else cod

    mw = gpus * pf(d.it_kw_per_gpu) * pf(d.pue) / 1000.0
    facility_capex = mw * (pf(d.facility_capex_eur_m_per_mw) + pf(d.grid_capex_eur_m_per_mw))
    capex_construction = facility_capex[..., None] * (
        _overlap(t0, t1, close[..., None], build_end[..., None]) / col(d.build_years))

    fl = _fleets(d, shape, cod, first_purchase)
    hours_m = (gpus * (HOURS_PER_YEAR / 1e6))[..., None] * fl["used"]  # m GPU-hours
    price_base = col(d.gpu_hour_price_launch_eur) * d.gpu_hour_price_factor
    revenue_reserved = (gpus * (HOURS_PER_YEAR / 1e6))[..., None] * price_base * fl["sold"]

    q = pf(d.public_access_share)
    anchor = pf(d.anchor_share_of_commercial)
    discount = pf(d.public_access_discount)
    channel = {
        "revenue_anchor": (1.0 - q) * anchor,
        "revenue_on_demand": (1.0 - q) * (1.0 - anchor) * (1.0 + pf(d.on_demand_premium)),
        "revenue_public_users": q * (1.0 - discount),
        "revenue_public_fund": q * discount if d.public_access_paid_by_fund else np.zeros(shape),
    }
    revenue = revenue_reserved * sum(channel.values())[..., None]

    idle = col(d.idle_power_share)
    energy_gwh = (mw * (HOURS_PER_YEAR / 1e3))[..., None] * (  # idle power while serving
        fl["used"] + idle * (fl["serve"] - fl["used"]))
    energy_cost = energy_gwh * d.power_price_eur_mwh / 1e3

    facility_active = np.clip(t1 - build_end[..., None], 0.0, 1.0)
    other_opex = col(d.other_opex_share_of_capex) * (
        facility_capex[..., None] * facility_active * d.opex_index + fl["opex_base"])
    ebitda = revenue - energy_cost - other_opex

    life_f = float(d.facility_life_years)
    facility_dep = facility_capex[..., None] / life_f * _overlap(
        t0, t1, build_end[..., None], build_end[..., None] + life_f)
    depreciation = fl["dep"] + facility_dep

    capex_gpu_initial, capex_gpu_refresh, resale = fl["initial"], fl["refresh"], fl["resale"]
    construction_total = capex_construction.sum(-1)  # (P, F)
    gpu_capex_total = fl["initial_cost"] + capex_gpu_refresh.sum(-1)
    fleet_book_at_horizon = gpu_capex_total - fl["dep"].sum(-1)
    facility_book_at_horizon = construction_total - facility_dep.sum(-1)
    terminal_at_horizon = fl["terminal"] + facility_book_at_horizon

    def terminal() -> Array:
        out = np.zeros((*shape, n_t))
        out[..., -1] = terminal_at_horizon
        return out

    taxable = ebitda - depreciation + resale
    taxable[..., -1] += fl["terminal"] - fleet_book_at_horizon  # gain on the fleet at horizon
    tax, _ = corporate_tax(taxable, pf(d.tax_rate))
    pre_financing_cash = ebitda - tax - capex_gpu_refresh + resale
    unlevered_fcf = pre_financing_cash - capex_construction - capex_gpu_initial
    unlevered_fcf[..., -1] += terminal_at_horizon
    computed = {
        "gpu_hours_m": hours_m,
        "energy_gwh": energy_gwh,
        "revenue": revenue,
        "energy_cost": energy_cost,
        "other_opex": other_opex,
        "ebitda": ebitda,
        "depreciation": depreciation,
        "resale_proceeds": resale,
        "taxable_income": taxable,
        "tax": tax,
        "capex_construction": capex_construction,
        "capex_gpu_initial": capex_gpu_initial,
        "capex_gpu_refresh": capex_gpu_refresh,
        "unlevered_fcf": unlevered_fcf,
        "pre_financing_cash": pre_financing_cash,
    }
    hourly_m = (gpus * (HOURS_PER_YEAR / 1e6))[..., None]
    derived: dict[str, Callable[[], Array]] = {
        "operating_share": lambda: np.minimum(fl["serve"], 1.0),
        "gpu_hours_public_m": lambda: hours_m * q[..., None],
        "compute_hours_adjusted_m": lambda: hourly_m * fl["compute"],
        "opex": lambda: energy_cost + other_opex,
        "capex": lambda: capex_construction + (capex_gpu_initial + capex_gpu_refresh),
        "fleet_value": lambda: fl["value"],
        "terminal_value": terminal,
        "facility_book_value": lambda: np.cumsum(capex_construction - facility_dep, axis=-1),
        **{name: (lambda share=share: revenue_reserved * share[..., None])
           for name, share in channel.items()},
    }
    items = LineItems(computed, derived)
    sums = {
        "gpu_hours_public_m": hours_m.sum(-1) * q,
        "compute_hours_adjusted_m": hourly_m[..., 0] * fl["compute"].sum(-1),
        "capex": construction_total + gpu_capex_total,
    }
    return Operations(items=items, facility_mw=mw, cod_years=cod,
                      terminal_at_horizon=terminal_at_horizon,
                      capex_initial=construction_total + fl["initial_cost"], sums=sums)
