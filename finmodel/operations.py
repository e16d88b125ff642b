"""Operations: each factory's annual cash flows on every path, from its drivers.

Time: period t covers years [t, t + 1) after the portfolio's financial close; its flows are at
its end. A factory reaches close at ``close_year``, builds for ``build_years``, and reaches
commercial operation (COD) after the longer of the grid and chip-delivery delays. GPU fleets
serve ``gpu_life_years`` each, back to back from COD (with ``retire_unprofitable_fleets``, only
until the end of the first period in which their cash margin per GPU-hour is negative while a
new fleet's would not be: then they are resold and replaced early); each is paid at the first
period end on or after its purchase (at COD, or at close for the first fleet if
``gpus_bought_at_close``), at that year's price, and resold at retirement.

Prices: a fleet's market price per GPU-hour is the launch price times the market factor of the
period times ``(1 - erosion) ** age`` (age at the start of its service in the period), times
its generation step ``((1 + growth) (1 - erosion)) ** (years after the first fleet)``: a new
generation brings more compute per GPU, each unit of it cheaper. Market channels (on demand,
public access) sell used hours at that price. Anchor contracts cover a share of commercial
capacity: signed at the start of a fleet's service, and renewed every ``anchor_contract_years``,
at the market price of the signing period scaled to the term (the average erosion over the term
against a one-year contract's), held for the term; with ``anchor_take_or_pay`` they pay for the
contracted capacity whether it is used or not.

The fleet vintages, the contracts and the loss carry-forward carry state from one period to the
next, so every period of a (path, factory) row is worked out in one compiled loop
(``_operate_rows``), which writes each line item once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from finmodel.compiled import by_row, by_row_and_period, kernel
from finmodel.drivers import Drivers

__all__ = ["HOURS_PER_YEAR", "LINE_ITEMS", "LineItemTotals", "LineItems", "Operations", "corporate_tax",
           "operate"]

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
    "revenue_anchor": ("EUR m", "anchor contracts (take-or-pay at the contract price)"),
    "revenue_on_demand": ("EUR m", "on-demand sales"),
    "revenue_public_users": ("EUR m", "public-access users' payments"),
    "revenue_public_fund": ("EUR m", "fund payments for the public-access discount"),
    "revenue": ("EUR m", "total revenue"),
    "energy_cost": ("EUR m", "electricity cost"),
    "opex_staff_maintenance": ("EUR m", "staff and maintenance"),
    "opex_network_software": ("EUR m", "network, bandwidth and software"),
    "opex_insurance_property": ("EUR m", "insurance and property tax"),
    "other_opex": ("EUR m", "non-energy opex: staff, maintenance, network, software, insurance, "
                   "property tax"),
    "opex": ("EUR m", "total operating cost"),
    "ebitda": ("EUR m", "revenue - opex"),
    "depreciation": ("EUR m", "straight-line: fleets over their service, facility and replaced "
                     "plant over their lives"),
    "resale_proceeds": ("EUR m", "sale of retired GPU fleets"),
    "terminal_value": ("EUR m", "installed fleet at resale value + facility at book value, at horizon"),
    "fleet_value": ("EUR m", "resale value of the GPU fleet owned at the period end"),
    "facility_book_value": ("EUR m", "facility and grid connection at book value, at the period end"),
    "taxable_income": ("EUR m", "EBITDA - depreciation + disposal gains (before interest)"),
    "tax": ("EUR m", "corporate tax with loss carry-forward (unlevered)"),
    "capex_construction": ("EUR m", "facility and grid connection"),
    "capex_gpu_initial": ("EUR m", "first GPU fleet"),
    "capex_gpu_refresh": ("EUR m", "replacement GPU fleets"),
    "capex_plant_replacement": ("EUR m", "replacement of the mechanical and electrical plant at the "
                                "end of its life (paid from the lifecycle reserve)"),
    "plant_reserve_contribution": ("EUR m", "lifecycle reserve built up evenly over the plant's life "
                                   "before each replacement (deducted from CFADS)"),
    "capex": ("EUR m", "total capital expenditure"),
    "unlevered_fcf": ("EUR m", "EBITDA - tax - capex + resale + terminal value"),
    "pre_financing_cash": ("EUR m", "EBITDA - unlevered tax - refresh capex - lifecycle reserve "
                           "contribution + resale (before financing; the financing layer's CFADS "
                           "adds interest shields and refresh funding)"),
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


class LineItemTotals:
    """Line items by name (``items``, (P, F, T)) and their horizon totals (``sums``, (P, F)),
    some filled in by the kernel that wrote the items; the base of ``Operations`` and
    ``financing.Financing``."""

    items: Mapping[str, Array]
    sums: dict[str, Array]

    def __getitem__(self, name: str) -> Array:
        return self.items[name]

    def total(self, name: str) -> Array:
        """(P, F) sum over the horizon of a line item (computed once)."""
        if name not in self.sums:
            self.sums[name] = self.items[name].sum(-1)
        return self.sums[name]


@dataclass(frozen=True)
class Operations(LineItemTotals):
    """Line items (P, F, T) named in ``LINE_ITEMS`` plus per-factory facts (P, F)."""

    items: LineItems
    facility_mw: Array  # (P, F) MW
    cod_years: Array  # (P, F) years after portfolio close
    capex_initial: Array  # (P, F) EUR m: construction + first fleet
    terminal_at_horizon: Array  # (P, F) EUR m: the last period's terminal value
    plant_reserve_at_horizon: Array  # (P, F) EUR m: lifecycle reserve released at the horizon
    sums: dict[str, Array]  # (P, F) horizon totals the kernel added up (``total`` fills in others)


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
def _tax_step(income: float, rate: float, losses: float) -> tuple[float, float]:
    """One year of ``corporate_tax``: (tax, losses carried forward) from the losses brought in."""
    profit = max(income, 0.0)
    used = min(losses, profit)
    return rate * (profit - used), losses - used + max(-income, 0.0)


@kernel
def _tax_rows(income: Array, rate: Array, tax: Array, pool: Array) -> None:
    """The loss carry-forward of ``corporate_tax`` on rows (R, T); pool (R,) left at the end."""
    for i in range(income.shape[0]):
        losses = 0.0
        for t in range(income.shape[1]):
            tax[i, t], losses = _tax_step(income[i, t], rate[i], losses)
        pool[i] = losses


OPEX_ITEMS = ("opex_staff_maintenance", "opex_network_software", "opex_insurance_property")

# the (P, F, T) arrays the kernel writes: line items, and what derived line items start from
_KERNEL_ITEMS = ("gpu_hours_m", "energy_gwh", "revenue_market_basis", "revenue", "energy_cost",
                 "other_opex", "ebitda", "depreciation", "resale_proceeds", "taxable_income", "tax",
                 "capex_construction", "capex_gpu_initial", "capex_gpu_refresh", "unlevered_fcf",
                 "pre_financing_cash", "serving_years", "compute_years", "fleet_value",
                 "facility_book_value", "revenue_contract_basis", "capex_plant_replacement",
                 "plant_reserve_contribution")
# and the (P, F) facts
_KERNEL_FACTS = ("terminal_at_horizon", "construction_total", "fleet_cost_initial",
                 "fleet_cost_total", "gpu_hours_total", "compute_years_total", "revenue_total",
                 "ebitda_total", "energy_total", "replacement_total", "plant_reserve_at_horizon")


@kernel
def _decay(log_factor: float, years: float) -> float:
    """factor ** years from log(factor), with factor ** 0 = 1 also for factor = 0."""
    return np.exp(log_factor * years) if years > 0 else 1.0


@kernel
def _overlap(t0: float, t1: float, a: float, b: float) -> float:
    """Length of [t0, t1) intersected with [a, b)."""
    return max(min(t1, b) - max(t0, a), 0.0)


@kernel
def _signing_price(signed: float, purchase: float, factor: Array, log_keep: float) -> float:
    """Market price index, per unit of launch price, of a contract signed at ``signed`` for a
    fleet bought at ``purchase``: the market factor of the period it is signed in times
    ``keep ** age``. factor: (T,) the market factor by period."""
    j = min(max(int(np.floor(signed + 1e-9)), 0), factor.size - 1)
    return factor[j] * _decay(log_keep, signed - purchase)


@kernel
def _contracted(a: float, b: float, signed: float, price: float, term: float, purchase: float,
                factor: Array, log_keep: float) -> tuple[float, float, float]:
    """Integral over [a, b) of the contract price index of a fleet bought at ``purchase``, whose
    current contract was signed at ``signed`` (<= a) at ``price``, renewing every ``term``
    years at ``_signing_price``. Returns (integral, signed, price) of the contract running at
    b, the state for the next period: each period costs one price per renewal."""
    while signed + term <= a:  # contracts that ended before a
        signed += term
        price = _signing_price(signed, purchase, factor, log_keep)
    total = 0.0
    while True:
        total += (min(b, signed + term) - max(a, signed)) * price
        if signed + term >= b:
            return total, signed, price
        signed += term
        price = _signing_price(signed, purchase, factor, log_keep)


@kernel
def _index_at(index: Array, t: int) -> float:
    """A cost index (T,) at period t, extended beyond the horizon at its last year's growth (so
    that what is reserved for a later replacement does not depend on where the horizon ends)."""
    n = index.size
    if t < n:
        return index[t]
    growth = index[n - 1] / index[n - 2] if n > 1 and index[n - 2] != 0 else 1.0
    return index[n - 1] * growth ** (t - n + 1)


@kernel
def _of_row(a: Array, p: int, f: int) -> Array:
    """Row (T,) of a (P or 1, F or 1, T) array for path p and factory f."""
    return a[p if a.shape[0] > 1 else 0, f if a.shape[1] > 1 else 0]


@kernel
def _operate_rows(n_f, gpus, mw, facility_capex, close, build_end, build_years, cod,
                  first_purchase, j0, life, u_launch, log_keep, log_resale, log_growth,
                  launch_price, anchor_share, market_channels, contract_years, take_or_pay, idle,
                  other_share, tax_rate, facility_life, plant_share, plant_life, retire_early,
                  price, u_steady, hour_factor, power, opex_index, out, facts):
    """Every period of each row (one path and factory, row = path x n_f + factory), compiled.

    Per row (R,): GPUs, facility MW, facility capex (EUR m), close, build end, build years,
    COD and first purchase (years after close), first purchase period ``j0`` (int), fleet
    life (years), launch-year utilisation, logs of the yearly price retention, the yearly
    resale retention and 1 + price-performance growth, launch price (EUR per GPU-hour), the
    anchor contracts' share of capacity, the market channels' total share (at the market
    price), the contract term (years), idle power share, other opex share, tax rate.
    ``take_or_pay`` (bool) and facility life (years); the mechanical and electrical plant's
    share of facility capex (R,) and its life (years); ``retire_early`` (bool): the economic
    retirement rule. Per period (P or 1, F or 1, T): GPU
    price (EUR), steady utilisation, GPU-hour price factor, power price (EUR/MWh), opex index.
    Fills ``out``, a tuple of one (R, T) array per name in ``_KERNEL_ITEMS``, and ``facts``
    (len(_KERNEL_FACTS), R).

    Fleets serve back to back from COD, so a period holds at most two: the one serving at its
    start (bought at ``purchase``, costing ``cost``) and, if that one retires inside the
    period, a new successor for the rest of it. A retirement at a period end counts in that
    period.
    """
    n_rows, n_t = gpus.size, out[0].shape[1]
    hourly_m = HOURS_PER_YEAR / 1e6
    most = int(n_t / plant_life) + 2  # plant replacements a row can reserve for
    plant_due, plant_cost = np.empty(most), np.empty(most)
    plant_pay = np.empty(most, np.int64)
    for i in range(n_rows):
        p, f = i // n_f, i % n_f
        price_i, u_i = _of_row(price, p, f), _of_row(u_steady, p, f)
        factor_i, power_i = _of_row(hour_factor, p, f), _of_row(power, p, f)
        index_i = _of_row(opex_index, p, f)
        hours_per_year = gpus[i] * hourly_m  # m GPU-hours per fleet-year sold
        mwh_per_year = mw[i] * (HOURS_PER_YEAR / 1e3)  # GWh per year at full power
        facility_dep_per_year = facility_capex[i] / facility_life
        cost = gpus[i] * price_i[j0[i]] / 1e6 if first_purchase[i] < n_t else 0.0
        initial_cost = cost
        purchase, compute, boundary = first_purchase[i], 1.0, cod[i] + life[i]
        generation = 1.0
        log_step = log_growth[i] + log_keep[i]  # generation step per year: (1 + g) (1 - e)
        # plant replacements: due every plant life from the end of construction, at the cost
        # index of the period paid in (extended beyond the horizon), while a part of the life
        # before them lies inside the horizon
        n_plant = 0
        if plant_share[i] > 0.0:
            while build_end[i] + (n_plant + 1) * plant_life - plant_life < n_t:
                n_plant += 1
        for k in range(n_plant):
            plant_due[k] = build_end[i] + (k + 1) * plant_life
            plant_pay[k] = max(int(np.ceil(plant_due[k])) - 1, 0)
            plant_cost[k] = plant_share[i] * facility_capex[i] * _index_at(index_i, plant_pay[k])
        # a contract's price against a one-year contract's: the average erosion over its term
        term = contract_years[i]
        keep = np.exp(log_keep[i])
        level = 1.0 if keep == 1.0 else (1.0 - keep ** term) / (term * (1.0 - keep))
        signed = cod[i]  # the running anchor contract of the serving fleet: signed at, price
        signed_price = _signing_price(signed, purchase, factor_i, log_keep[i])
        losses = construction_total = refresh_total = fleet_dep_total = facility_dep_total = 0.0
        replacement_total = reserve = 0.0
        hours_total = compute_total = revenue_total = ebitda_total = energy_total = 0.0
        book = terminal = 0.0
        for t in range(n_t):
            # the fleets
            start = max(float(t), cod[i])
            age_factor = _decay(log_keep[i], start - purchase)  # the serving fleet's price erosion
            if retire_early and start < t + 1.0 < boundary and t + 1.0 < n_t:
                # retire the serving fleet at this period's end if its cash margin per GPU-hour
                # (market price - energy - its share of opex) is negative and a new fleet's
                # would not be
                kwh = mw[i] / gpus[i] * power_i[t]  # EUR of energy per GPU-hour (MWh x EUR/MWh)
                hours_used = HOURS_PER_YEAR * max(u_i[t], 1e-9)
                old_margin = (launch_price[i] * factor_i[t] * generation * age_factor - kwh
                              - other_share[i] * cost * 1e6 / gpus[i] / hours_used)
                if old_margin < 0.0:
                    new_margin = (launch_price[i] * factor_i[t]
                                  * np.exp(log_step * (t + 1.0 - first_purchase[i])) - kwh
                                  - other_share[i] * price_i[t] / hours_used)
                    if new_margin > 0.0:
                        boundary = t + 1.0
            seg1 = max(min(t + 1.0, boundary) - start, 0.0)
            seg2 = max(t + 1.0 - boundary, 0.0)
            ramp = max(min(t + 1.0, cod[i] + 1.0) - start, 0.0)
            u_t = u_i[t]
            used1 = ramp * u_launch[i] + (seg1 - ramp) * u_t
            used2 = seg2 * u_t
            # a fleet retires in this period: resell it, buy the next (if within the horizon)
            event = boundary > t and boundary <= t + 1.0
            new_cost = gpus[i] * (price_i[t] / 1e6) if event and boundary < n_t else 0.0
            # the successor's compute per GPU (needed only where it serves or is bought)
            new_compute = (np.exp(log_growth[i] * (boundary - first_purchase[i]))
                           if event or seg2 > 0.0 else 0.0)
            new_generation = (np.exp(log_step * (boundary - first_purchase[i]))
                              if event or seg2 > 0.0 else 0.0)
            # used hours at the market price, and contracted hours at the contract price, both
            # per unit of launch price
            market = factor_i[t] * (used1 * age_factor * generation + used2 * new_generation)
            contract1 = 0.0
            if seg1 > 0.0:
                contract1, signed, signed_price = _contracted(
                    start, start + seg1, signed, signed_price, term, purchase, factor_i, log_keep[i])
                contract1 *= generation * level
            # a successor serves less than a year here, so within its first contract (term >= 1)
            contract2 = (seg2 * _signing_price(boundary, boundary, factor_i, log_keep[i])
                         * new_generation * level if seg2 > 0.0 else 0.0)
            if not take_or_pay:  # contracted capacity pays only for the hours used
                contract1 *= used1 / seg1 if seg1 > 0.0 else 0.0
                contract2 *= used2 / seg2 if seg2 > 0.0 else 0.0
            serving = seg1 + seg2
            used = used1 + used2
            compute_years = used1 * compute + used2 * new_compute
            fleet_dep = (cost * seg1 + new_cost * seg2) / life[i]
            fleet_in_service = cost * seg1 + new_cost * seg2
            resale = 0.0
            if event:
                resale = cost * _decay(log_resale[i], boundary - purchase)
                cost, purchase, compute = new_cost, boundary, new_compute
                generation = new_generation
                signed = boundary
                signed_price = _signing_price(signed, purchase, factor_i, log_keep[i])
                boundary += life[i]
            fleet_value = cost * _decay(log_resale[i], t + 1.0 - purchase) if t >= j0[i] else 0.0
            # revenue, costs, EBITDA
            hours = hours_per_year * used
            market_basis = hours_per_year * launch_price[i] * market
            contract_basis = hours_per_year * launch_price[i] * (contract1 + contract2)
            revenue = contract_basis * anchor_share[i] + market_basis * market_channels[i]
            energy = mwh_per_year * (used + idle[i] * (serving - used))  # idle power while serving
            energy_cost = energy * power_i[t] / 1e3
            facility_active = min(max(t + 1.0 - build_end[i], 0.0), 1.0)
            other_opex = other_share[i] * (
                facility_capex[i] * facility_active * index_i[t] + fleet_in_service)
            ebitda = revenue - energy_cost - other_opex
            # capex, depreciation, book values
            construction = facility_capex[i] * (
                _overlap(float(t), t + 1.0, close[i], build_end[i]) / build_years[i])
            initial = initial_cost if t == j0[i] else 0.0
            facility_dep = facility_dep_per_year * _overlap(
                float(t), t + 1.0, build_end[i], build_end[i] + facility_life)
            # mechanical and electrical plant replaced every ``plant_life`` years from the end
            # of construction, at that period's cost index, paid at the period end on or after
            # it and depreciated over its life; a lifecycle reserve is built up evenly over the
            # life before each replacement (what a lender deducts from CFADS), and what it holds
            # at the horizon is released then
            replacement = contribution = 0.0
            for k in range(n_plant):
                due = plant_due[k]
                contribution += plant_cost[k] / plant_life * _overlap(float(t), t + 1.0,
                                                                      due - plant_life, due)
                if due < n_t:
                    if plant_pay[k] == t:
                        replacement += plant_cost[k]
                    facility_dep += plant_cost[k] / plant_life * _overlap(float(t), t + 1.0, due,
                                                                          due + plant_life)
            reserve += contribution - replacement
            book += construction + replacement - facility_dep
            construction_total += construction
            replacement_total += replacement
            refresh_total += new_cost
            fleet_dep_total += fleet_dep
            facility_dep_total += facility_dep
            hours_total += hours
            compute_total += compute_years
            revenue_total += revenue
            ebitda_total += ebitda
            energy_total += energy
            # tax (unlevered, losses carried forward) and cash
            taxable = ebitda - (fleet_dep + facility_dep) + resale
            if t == n_t - 1:  # the fleet's resale value and the facility's book value
                fleet_terminal = cost * _decay(log_resale[i], n_t - purchase)
                fleet_book = initial_cost + refresh_total - fleet_dep_total
                taxable += fleet_terminal - fleet_book  # gain on the fleet at horizon
                terminal = fleet_terminal + (construction_total + replacement_total
                                             - facility_dep_total)
            tax, losses = _tax_step(taxable, tax_rate[i], losses)
            pre_financing_cash = ebitda - tax - new_cost - contribution + resale
            # the project's own cash: the plant is paid when replaced (the reserve is its own money)
            fcf = pre_financing_cash + contribution - replacement - construction - initial + terminal
            # in _KERNEL_ITEMS order
            out[0][i, t] = hours
            out[1][i, t] = energy
            out[2][i, t] = market_basis
            out[3][i, t] = revenue
            out[4][i, t] = energy_cost
            out[5][i, t] = other_opex
            out[6][i, t] = ebitda
            out[7][i, t] = fleet_dep + facility_dep
            out[8][i, t] = resale
            out[9][i, t] = taxable
            out[10][i, t] = tax
            out[11][i, t] = construction
            out[12][i, t] = initial
            out[13][i, t] = new_cost
            out[14][i, t] = fcf
            out[15][i, t] = pre_financing_cash
            out[16][i, t] = serving
            out[17][i, t] = compute_years
            out[18][i, t] = fleet_value
            out[19][i, t] = book
            out[20][i, t] = contract_basis
            out[21][i, t] = replacement
            out[22][i, t] = contribution
        for k, value in enumerate((terminal, construction_total, initial_cost,
                                   initial_cost + refresh_total, hours_total, compute_total,
                                   revenue_total, ebitda_total, energy_total, replacement_total,
                                   reserve)):
            facts[k, i] = value


def _per_period(a: Array, shape: tuple[int, int], periods: int) -> Array:
    """A per-period driver that broadcasts to (*shape, periods), as the contiguous
    (P or 1, F or 1, T) array the kernel reads (which does not check bounds)."""
    a = np.asarray(a, dtype=float)
    a = a.reshape((1,) * (3 - a.ndim) + a.shape)
    if np.broadcast_shapes(a.shape, (*shape, periods)) != (*shape, periods):
        raise ValueError(f"a per-period driver of shape {a.shape} does not broadcast to "
                         f"{(*shape, periods)}")
    return np.ascontiguousarray(a)


def operate(d: Drivers) -> Operations:
    """Every factory's operations on every path. See the module docstring for timing."""
    n_t = d.horizon_years
    shape = (d.n_paths, d.n_factories)

    def pf(x: Array) -> Array:
        return np.broadcast_to(np.asarray(x, dtype=float), shape)

    def row(x: Array) -> Array:
        return by_row(x, shape)

    gpus = pf(d.gpus)
    close = pf(d.close_year)
    build_end = close + pf(d.build_years)
    cod = build_end + np.maximum(pf(d.grid_delay_years), pf(d.chip_delay_years))
    first_purchase = close if d.gpus_bought_at_close else cod
    mw = gpus * pf(d.it_kw_per_gpu) * pf(d.pue) / 1000.0
    facility_capex = mw * (pf(d.facility_capex_eur_m_per_mw) + pf(d.grid_capex_eur_m_per_mw))

    q = pf(d.public_access_share)
    anchor = pf(d.anchor_share_of_commercial)
    discount = pf(d.public_access_discount)
    anchor_share = (1.0 - q) * anchor  # of capacity, at the contract price
    market_channel = {  # of used hours, at the market price
        "revenue_on_demand": (1.0 - q) * (1.0 - anchor) * (1.0 + pf(d.on_demand_premium)),
        "revenue_public_users": q * (1.0 - discount),
        "revenue_public_fund": q * discount if d.public_access_paid_by_fund else np.zeros(shape),
    }
    opex_share = {name: pf(getattr(d, f"{name.removeprefix('opex_')}_share_of_capex"))
                  for name in OPEX_ITEMS}
    # first purchase at the first period end on or after it (clamped to the horizon)
    j0 = np.clip(np.ceil(first_purchase) - 1, 0, n_t - 1).astype(np.int64)
    with np.errstate(divide="ignore"):  # erosion 1 or resale 0: log 0 = -inf, handled by _decay
        log_keep = np.log1p(-row(d.gpu_hour_price_erosion_per_year))
        log_resale = np.log(row(d.gpu_resale_share_5y)) / 5.0
    # the kernel writes every cell; one array per item, as one block of them all would be
    # above glibc's largest mmap threshold (32 MB) and so be mapped and faulted in afresh
    out = tuple(np.empty((shape[0] * shape[1], n_t)) for _ in _KERNEL_ITEMS)
    facts = np.empty((len(_KERNEL_FACTS), shape[0] * shape[1]))
    _operate_rows(shape[1], row(gpus), row(mw), row(facility_capex), row(close), row(build_end),
                  row(d.build_years), row(cod), row(first_purchase), by_row(j0, shape, np.int64),
                  row(d.gpu_life_years), row(d.utilisation_launch_year), log_keep, log_resale,
                  np.log1p(row(d.price_performance_growth_per_year)),
                  row(d.gpu_hour_price_launch_eur), row(anchor_share), row(sum(market_channel.values())),
                  row(d.anchor_contract_years), bool(d.anchor_take_or_pay),
                  row(d.idle_power_share), row(sum(opex_share.values())), row(d.tax_rate),
                  float(d.facility_life_years), row(d.plant_share_of_facility),
                  float(d.plant_life_years), bool(d.retire_unprofitable_fleets),
                  *(_per_period(a, shape, n_t) for a in (
                      d.compute_capex_eur_per_gpu, d.utilisation_steady, d.gpu_hour_price_factor,
                      d.power_price_eur_mwh, d.opex_index)), out, facts)
    k = {name: a.reshape(*shape, n_t) for name, a in zip(_KERNEL_ITEMS, out, strict=True)}
    fact = {name: facts[n].reshape(shape) for n, name in enumerate(_KERNEL_FACTS)}
    computed = {name: k[name] for name in _KERNEL_ITEMS if name in LINE_ITEMS}
    hourly_m = (gpus * (HOURS_PER_YEAR / 1e6))[..., None]
    market_basis = k["revenue_market_basis"]
    other_share = sum(opex_share.values())

    def terminal() -> Array:
        out = np.zeros((*shape, n_t))
        out[..., -1] = fact["terminal_at_horizon"]
        return out

    derived: dict[str, Callable[[], Array]] = {
        "operating_share": lambda: np.minimum(k["serving_years"], 1.0),
        "gpu_hours_public_m": lambda: k["gpu_hours_m"] * q[..., None],
        "compute_hours_adjusted_m": lambda: hourly_m * k["compute_years"],
        "opex": lambda: k["energy_cost"] + k["other_opex"],
        "capex": lambda: (k["capex_construction"] + (k["capex_gpu_initial"] + k["capex_gpu_refresh"])
                          + k["capex_plant_replacement"]),
        "terminal_value": terminal,
        "revenue_anchor": lambda: k["revenue_contract_basis"] * anchor_share[..., None],
        **{name: (lambda share=share: market_basis * share[..., None])
           for name, share in market_channel.items()},
        **{name: (lambda share=share: k["other_opex"] * np.divide(
            share, other_share, out=np.zeros(shape), where=other_share > 0)[..., None])
           for name, share in opex_share.items()},
    }
    items = LineItems(computed, derived)
    sums = {
        "revenue": fact["revenue_total"],
        "ebitda": fact["ebitda_total"],
        "energy_gwh": fact["energy_total"],
        "gpu_hours_m": fact["gpu_hours_total"],
        "gpu_hours_public_m": fact["gpu_hours_total"] * q,
        "compute_hours_adjusted_m": hourly_m[..., 0] * fact["compute_years_total"],
        "capex": fact["construction_total"] + fact["fleet_cost_total"] + fact["replacement_total"],
    }
    return Operations(items=items, facility_mw=mw, cod_years=cod,
                      terminal_at_horizon=fact["terminal_at_horizon"],
                      plant_reserve_at_horizon=fact["plant_reserve_at_horizon"],
                      capex_initial=fact["construction_total"] + fact["fleet_cost_initial"],
                      sums=sums)
