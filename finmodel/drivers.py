"""Drivers: the drawn inputs of the cash-flow engine as arrays over (paths, factories, periods).

This is the seam between the scenario (and sampling) and operations: ``central_drivers`` gives
the one base-case path with every uncertain input at its central value; the sampling layer fills
the same structure with draws. USD inputs are converted to EUR here, once.

Shapes: ``(P, F)`` for per-path, per-factory values; ``(P, F, T)`` for time paths. Arrays may
have size-1 axes that broadcast (e.g. ``(1, F)`` for factory constants).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np
from numpy.typing import NDArray

from finmodel.compiled import by_row, by_row_and_period, kernel
from finmodel.sampling import PathNoise
from finmodel.scenario.model import Scenario

__all__ = [
    "Drivers",
    "build_drivers",
    "central_drivers",
    "drivers_from_draws",
    "gpu_hour_price_shock_path",
    "power_price_mean_path",
    "sizing_drivers",
]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Drivers:
    """Inputs of ``operations.operate``; every money value in EUR (nominal)."""

    horizon_years: int
    gpus: Array  # (P, F) GPUs installed per fleet
    it_kw_per_gpu: Array  # (P, F) kW
    pue: Array  # (P, F) ratio
    idle_power_share: Array  # (P, F) share of full power drawn when idle
    close_year: Array  # (P, F) years after portfolio close at which the site reaches close
    build_years: Array  # (P, F) years of construction
    grid_delay_years: Array  # (P, F) years
    chip_delay_years: Array  # (P, F) years
    gpu_life_years: Array  # (P, F) whole years a fleet serves
    facility_capex_eur_m_per_mw: Array  # (P, F) EUR m per MW of facility power
    grid_capex_eur_m_per_mw: Array  # (P, F) EUR m per MW
    compute_capex_eur_per_gpu: Array  # (P, F, T) GPU + servers/network per GPU bought in year t
    gpu_hour_price_launch_eur: Array  # (P, F) reserved EUR per GPU-hour of a new fleet
    gpu_hour_price_factor: Array  # (P, F, T) market multiplier on GPU-hour prices (shock, noise)
    gpu_hour_price_erosion_per_year: Array  # (P, F) yearly fall of a chip's price with age
    on_demand_premium: Array  # (P, F) share above reserved
    price_performance_growth_per_year: Array  # (P, F) compute per euro gain of new generations
    gpu_resale_share_5y: Array  # (P, F) resale share of cost at age 5 (share^(age/5))
    utilisation_launch_year: Array  # (P, F) share, first 12 months of operation
    utilisation_steady: Array  # (P, F, T) share
    public_access_share: Array  # (P, F) share of sold hours
    anchor_share_of_commercial: Array  # (P, F) share of commercial capacity
    anchor_contract_years: Array  # (P, F) years a contract's price holds
    anchor_take_or_pay: bool  # True: contracted capacity is paid whether used or not
    retire_unprofitable_fleets: bool  # True: the economic retirement rule (see operations)
    public_access_discount: Array  # (P, F) share of the reserved price (1 = free)
    public_access_paid_by_fund: bool  # True: the fund pays the discount to the project
    staff_maintenance_share_of_capex: Array  # (P, F) 1/yr of the capex in service
    network_software_share_of_capex: Array  # (P, F) 1/yr
    insurance_property_share_of_capex: Array  # (P, F) 1/yr
    opex_index: Array  # (P, F, T) inflation index of facility-related opex, 1 in period 0
    power_price_eur_mwh: Array  # (P, F, T) EUR/MWh
    tax_rate: Array  # (P, F) share
    facility_life_years: int
    plant_share_of_facility: Array  # (P, F) share of facility capex in plant replaced at its life's end
    plant_life_years: int  # years the mechanical and electrical plant lasts
    gpus_bought_at_close: bool
    base_rate: Array  # (P, 1) 1/yr swap rate fixed at close, under every senior loan
    eib_margin: Array  # (P, 1) 1/yr
    senior_spread: Array  # (P, 1) 1/yr commercial senior loans
    hardware_loan_spread: Array  # (P, 1) 1/yr hardware (GPU-backed) loans
    facility_recovery_haircut: Array  # (P, 1) share of facility book value lost on enforcement

    @property
    def shape(self) -> tuple[int, int]:
        """(P, F) after broadcasting every array's first two axes."""
        p, f = np.broadcast_shapes(*(np.shape(v)[:2] for v in self._arrays().values()))
        return int(p), int(f)

    @property
    def n_paths(self) -> int:
        return self.shape[0]

    @property
    def n_factories(self) -> int:
        return self.shape[1]

    def _arrays(self) -> dict[str, Array]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def select_factories(self, index: int | slice | list[int]) -> Drivers:
        """The same drivers for a subset of factories (axis 1)."""
        idx = [index] if isinstance(index, int) else index
        return replace(self, **{name: arr[:, idx] if arr.shape[1] > 1 else arr
                                for name, arr in self._arrays().items()})


def power_price_mean_path(level: Array, start: Array, half_life_years: float, periods: int) -> Array:
    """Deterministic log-mean path reverting from ``start`` to ``level``: (..., T) EUR/MWh.

    log p_t = log level + (log start - log level) * exp(-kappa t), kappa = ln 2 / half-life.
    """
    kappa = math.log(2.0) / half_life_years
    decay = np.exp(-kappa * np.arange(periods))
    lv, st = np.log(np.asarray(level, float))[..., None], np.log(np.asarray(start, float))[..., None]
    return np.exp(lv + (st - lv) * decay)


def gpu_hour_price_shock_path(shock: Array, shock_years: float, periods: int,
                              start_years: float = 0.0) -> Array:
    """Multiplier falling linearly by ``shock`` over ``shock_years`` from ``start_years`` after
    close (period ends: period t has fallen by the share of the ramp done by t + 1), then
    flat: (..., T)."""
    ramp = np.clip((np.arange(periods) + 1.0 - start_years) / shock_years, 0.0, 1.0)
    return 1.0 - np.asarray(shock, float)[..., None] * ramp


def factory_gpus(sc: Scenario, it_kw_per_gpu: Array, pue: Array) -> Array:
    """(P, F) GPU count: given, or derived from the facility power budget per path."""
    shape = np.broadcast_shapes(it_kw_per_gpu.shape, pue.shape, (1, sc.n_factories))
    kw_per_gpu = np.broadcast_to(it_kw_per_gpu * pue, shape)  # facility kW per GPU
    out = np.empty(shape)
    for i, fac in enumerate(sc.factories):
        out[:, i] = fac.gpus if fac.gpus is not None else np.floor(
            fac.facility_mw * 1000.0 / kw_per_gpu[:, i])
    return out


def _logit(u: Array) -> Array:
    u = np.clip(u, 1e-9, 1.0 - 1e-9)
    return np.log(u / (1.0 - u))


def build_drivers(sc: Scenario, value, n_paths: int, noise: PathNoise | None = None) -> Drivers:
    """Drivers for ``n_paths`` paths.

    value(path) -> (n_paths,) values of the input at a dotted path (drawn, or its central value);
    noise: standardised shocks for the time paths, or None for the deterministic central paths.
    """
    m, e, c, mac = sc.market, sc.energy, sc.costs, sc.macro
    n_f, n_t = sc.n_factories, sc.timeline.horizon_years
    years = np.arange(n_t, dtype=float)

    def market(path: str) -> Array:  # (n, 1): one value per path, shared by all sites
        return np.asarray(value(path), float).reshape(n_paths, 1)

    def per_factory(field: str) -> Array:  # (n, F)
        return np.column_stack([np.asarray(value(f"factories[{i}].{field}"), float).reshape(n_paths)
                                for i in range(n_f)])

    fx = market("macro.eur_usd")
    kw, pue = market("energy.it_kw_per_gpu"), market("energy.pue")

    # chip market: trend x random walk in logs, global
    gpu_price_usd = market("market.gpu_price_usd")[..., None] * (
        1.0 + market("market.gpu_price_growth_per_year")[..., None]) ** years
    # power: log-mean reversion to the drawn level, with noise and occasional shocks
    level = market("energy.power_price_eur_mwh")
    start = level if e.power_price_start_eur_mwh is None else np.full_like(level, e.power_price_start_eur_mwh)
    power = power_price_mean_path(level, start, e.power_price_half_life_years, n_t)
    hour_factor = gpu_hour_price_shock_path(market("market.gpu_hour_price_shock"),
                                            m.gpu_hour_price_shock_years, n_t,
                                            m.gpu_hour_price_shock_start_years)
    u_level = market("market.utilisation_steady")
    u_steady = np.broadcast_to(u_level[..., None], (n_paths, 1, n_t))
    if noise is not None:
        gpu_price_usd = gpu_price_usd * np.exp(m.gpu_price_volatility * _random_walk(noise.chip))
        power, hour_factor, u_steady = _site_paths(sc, noise, power, hour_factor, u_level)
    compute_per_gpu = gpu_price_usd * (1.0 + market("market.system_cost_share_of_gpu_price"))[..., None] \
        / fx[..., None]
    return Drivers(
        horizon_years=n_t,
        gpus=factory_gpus(sc, kw, pue),
        it_kw_per_gpu=kw,
        pue=pue,
        idle_power_share=market("energy.idle_power_share"),
        close_year=np.array([[float(f.start_delay_years) for f in sc.factories]]),
        build_years=market("costs.build_months") / 12.0,
        grid_delay_years=per_factory("grid_delay_years"),
        chip_delay_years=market("market.chip_delivery_delay_months") / 12.0,
        gpu_life_years=market("market.gpu_useful_life_years"),
        facility_capex_eur_m_per_mw=market("costs.facility_capex_usd_m_per_mw") / fx,
        grid_capex_eur_m_per_mw=market("costs.grid_capex_eur_m_per_mw"),
        compute_capex_eur_per_gpu=compute_per_gpu,
        gpu_hour_price_launch_eur=market("market.gpu_hour_price_launch_usd") / fx,
        gpu_hour_price_factor=hour_factor,
        gpu_hour_price_erosion_per_year=market("market.gpu_hour_price_erosion_per_year"),
        on_demand_premium=market("market.on_demand_premium"),
        price_performance_growth_per_year=market("market.price_performance_growth_per_year"),
        gpu_resale_share_5y=market("market.gpu_resale_share_5y"),
        utilisation_launch_year=market("market.utilisation_launch_year"),
        utilisation_steady=u_steady,
        public_access_share=market("market.public_access_share"),
        anchor_share_of_commercial=np.full((1, 1), m.anchor_share_of_commercial),
        anchor_contract_years=market("market.anchor_contract_years"),
        anchor_take_or_pay=m.anchor_take_or_pay,
        retire_unprofitable_fleets=m.retire_unprofitable_fleets,
        public_access_discount=market("market.public_access_discount"),
        public_access_paid_by_fund=m.public_access_payer == "fund",
        staff_maintenance_share_of_capex=market("costs.staff_maintenance_share_of_capex"),
        network_software_share_of_capex=market("costs.network_software_share_of_capex"),
        insurance_property_share_of_capex=market("costs.insurance_property_share_of_capex"),
        opex_index=((1.0 + mac.inflation_per_year) ** years)[None, None, :],
        power_price_eur_mwh=power,
        tax_rate=np.array([[f.tax_rate for f in sc.factories]]),
        facility_life_years=c.facility_life_years,
        plant_share_of_facility=market("costs.plant_share_of_facility"),
        plant_life_years=c.plant_life_years,
        gpus_bought_at_close=c.gpus_bought_at == "close",
        base_rate=market("macro.base_rate"),
        eib_margin=market("eib.margin"),
        senior_spread=market("private.senior_spread"),
        hardware_loan_spread=market("private.hardware_loan_spread"),
        facility_recovery_haircut=market("eib.facility_recovery_haircut"),
    )


def _random_walk(shocks: Array) -> Array:
    """W_0 = 0, W_t = W_{t-1} + shock_t along the last axis."""
    walk = np.cumsum(shocks, axis=-1)
    walk -= walk[..., :1]  # numpy buffers the overlapping operand
    return walk


def _site_paths(sc: Scenario, noise: PathNoise, power_mean: Array, hour_trend: Array,
                utilisation_level: Array) -> tuple[Array, Array, Array]:
    """The time paths of each site (n, F, T): power price (EUR/MWh), GPU-hour price factor and
    steady utilisation, from the mean paths (n, 1, T), the utilisation level (n, 1) and the
    noise.

    * power: log deviation from the mean path, an exact discrete Ornstein-Uhlenbeck process
      from x_0 = 0 with log jumps that revert like any deviation;
    * GPU-hour price: the trend times exp(x), x_0 = 0, driven by the demand shocks: an OU
      deviation reverting to the trend with ``market.gpu_hour_price_half_life_years``, or a
      random walk (volatility x cumulative shocks) where that is empty;
    * utilisation: logistic of logit(level) + a stationary OU deviation (half-life one year)
      driven by the same demand shocks.

    OU step: x_t = x_(t-1) e^(-k) + s_t sqrt((1 - e^(-2k)) / (2k)), k = ln 2 / half-life,
    s_t the N(0, 1) shock times the volatility; stationary start x_0 = s_0 / sqrt(2k).
    """
    e, m = sc.energy, sc.market
    *lead, n_t = np.broadcast_shapes(noise.power.shape, noise.power_jumps.shape, noise.demand.shape)
    n_p, n_f = lead
    out = np.empty((3, n_p * n_f, n_t))
    power_ou, utilisation_ou = _ou(e.power_price_half_life_years), _ou(1.0)
    half_life = m.gpu_hour_price_half_life_years
    hour_ou = _ou(half_life)[:2] if half_life is not None else (1.0, 1.0)  # a walk: no decay
    jumps = np.ascontiguousarray(np.broadcast_to(noise.power_jumps, (n_p, n_f, n_t)))
    _site_rows(by_row_and_period(noise.power, lead, n_t), jumps.reshape(-1, n_t),
               by_row_and_period(noise.demand, lead, n_t), n_f,
               by_row_and_period(power_mean, (n_p, 1), n_t),
               by_row_and_period(hour_trend, (n_p, 1), n_t),
               by_row(_logit(utilisation_level), (n_p, 1)),
               e.power_price_volatility, *power_ou[:2], e.power_price_jump_log_size,
               m.gpu_hour_price_volatility, *hour_ou, m.utilisation_volatility, *utilisation_ou, out)
    return tuple(out[k].reshape(n_p, n_f, n_t) for k in range(3))


def _ou(half_life_years: float) -> tuple[float, float, float]:
    """Decay e^(-k), shock scale sqrt((1 - e^(-2k)) / (2k)) and stationary scale 1 / sqrt(2k)
    of the one-year OU step with half-life ``half_life_years``."""
    kappa = math.log(2.0) / half_life_years
    return (math.exp(-kappa), math.sqrt((1.0 - math.exp(-2.0 * kappa)) / (2.0 * kappa)),
            1.0 / math.sqrt(2.0 * kappa))


@kernel
def _site_rows(power_z, jumps, demand_z, n_f, power_mean, hour_trend, logit_level,
               power_vol, power_decay, power_scale, jump_size,
               hour_vol, hour_decay, hour_scale, util_vol, util_decay, util_scale, util_start, out):
    """The recursions of ``_site_paths`` for each row (one path and factory, path = row // n_f),
    compiled: shocks and jump flags (R, T); mean paths (P, T), logit of the utilisation level
    (P,); out (3, R, T) power, GPU-hour price factor, utilisation."""
    n_rows, n_t = power_z.shape
    for i in range(n_rows):
        p = i // n_f
        x_power, x_hour = 0.0, 0.0
        x_util = demand_z[i, 0] * util_vol * util_start
        for t in range(n_t):
            if t > 0:
                x_power = x_power * power_decay + power_z[i, t] * power_vol * power_scale
                if jumps[i, t]:
                    x_power += jump_size
                x_hour = x_hour * hour_decay + demand_z[i, t] * hour_vol * hour_scale
                x_util = x_util * util_decay + demand_z[i, t] * util_vol * util_scale
            out[0, i, t] = power_mean[p, t] * np.exp(x_power)
            out[1, i, t] = hour_trend[p, t] * np.exp(x_hour)
            out[2, i, t] = 1.0 / (1.0 + np.exp(-(x_util + logit_level[p])))


def central_value(sc: Scenario):
    """value(path) for the base case: every input at its central value, one path."""
    from finmodel.scenario.fields import resolve

    def value(path: str) -> Array:
        return np.array([resolve(sc, path).central])

    return value


def drivers_from_draws(sc: Scenario, draws: Mapping[str, Array], n_paths: int,
                       noise: PathNoise | None) -> Drivers:
    """Drivers for ``n_paths`` paths: inputs in ``draws`` (dotted path -> (n_paths,)) take
    those values, every other input its central value; ``noise`` None: central time paths."""
    central = central_value(sc)

    def value(path: str) -> Array:
        return draws[path] if path in draws else np.repeat(central(path), n_paths)

    return build_drivers(sc, value, n_paths, noise)


def sizing_drivers(sc: Scenario, case: str = "central") -> Drivers:
    """One path (P = 1) with every uncertain input at its central value, its mean or its median
    (``case``: central, mean or p50); central time paths."""
    if case == "central":
        return central_drivers(sc)
    from finmodel.sampling import marginal

    grid = (np.arange(20_000) + 0.5) / 20_000  # the mean as the average of the quantile function
    stat = {"mean": lambda m: float(np.mean(m.ppf(grid))), "p50": lambda m: float(m.ppf(0.5))}[case]
    draws = {path: np.array([stat(marginal(spec))]) for path, spec in sc.uncertain_inputs().items()}
    return drivers_from_draws(sc, draws, 1, noise=None)


def central_drivers(sc: Scenario) -> Drivers:
    """One path (P = 1) with every uncertain input at its central value."""
    return drivers_from_draws(sc, {}, 1, noise=None)
