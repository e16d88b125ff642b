"""Drivers: the drawn inputs of the cash-flow engine as arrays over (paths, factories, periods).

This is the seam between the scenario (and sampling) and operations: ``central_drivers`` gives
the one base-case path with every uncertain input at its central value; the sampling layer fills
the same structure with draws. USD inputs are converted to EUR here, once.

Shapes: ``(P, F)`` for per-path, per-factory values; ``(P, F, T)`` for time paths. Arrays may
have size-1 axes that broadcast (e.g. ``(1, F)`` for factory constants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
from numpy.typing import NDArray

from finmodel.scenario.model import Scenario

__all__ = [
    "Drivers",
    "central_drivers",
    "gpu_hour_price_shock_path",
    "power_price_mean_path",
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
    anchor_share_of_commercial: Array  # (P, F) share
    public_access_discount: Array  # (P, F) share of the reserved price (1 = free)
    public_access_paid_by_fund: bool  # True: the fund pays the discount to the project
    other_opex_share_of_capex: Array  # (P, F) 1/yr
    opex_index: Array  # (P, F, T) inflation index of facility-related opex, 1 in period 0
    power_price_eur_mwh: Array  # (P, F, T) EUR/MWh
    tax_rate: Array  # (P, F) share
    facility_life_years: int
    gpus_bought_at_close: bool

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


def gpu_hour_price_shock_path(shock: Array, shock_years: float, periods: int) -> Array:
    """Multiplier falling linearly by ``shock`` over ``shock_years``, then flat: (..., T)."""
    ramp = np.minimum((np.arange(periods) + 1.0) / shock_years, 1.0)
    return 1.0 - np.asarray(shock, float)[..., None] * ramp


def factory_gpus(sc: Scenario, it_kw_per_gpu: Array, pue: Array) -> Array:
    """(P, F) GPU count: given, or derived from the facility power budget per path."""
    out = []
    for i, fac in enumerate(sc.factories):
        if fac.gpus is not None:
            out.append(np.broadcast_to(float(fac.gpus), np.broadcast_shapes(
                np.shape(it_kw_per_gpu[:, i]), np.shape(pue[:, i]))))
        else:
            out.append(np.floor(fac.facility_mw * 1000.0 / (it_kw_per_gpu[:, i] * pue[:, i])))
    return np.stack(out, axis=1)


def central_drivers(sc: Scenario) -> Drivers:
    """One path (P = 1) with every uncertain input at its central value."""
    m, e, c, mac = sc.market, sc.energy, sc.costs, sc.macro
    n_f, n_t = sc.n_factories, sc.timeline.horizon_years

    def pf(value: float) -> Array:
        return np.full((1, n_f), float(value))

    def per_factory(getter) -> Array:
        return np.array([[float(getter(f)) for f in sc.factories]])

    fx = mac.eur_usd.central
    kw, pue = pf(e.it_kw_per_gpu.central), pf(e.pue.central)
    years = np.arange(n_t)
    gpu_price_usd = m.gpu_price_usd.central * (1.0 + m.gpu_price_growth_per_year.central) ** years
    compute_per_gpu = gpu_price_usd * (1.0 + m.system_cost_share_of_gpu_price.central) / fx
    level = pf(e.power_price_eur_mwh.central)
    start = level if e.power_price_start_eur_mwh is None else pf(e.power_price_start_eur_mwh)
    return Drivers(
        horizon_years=n_t,
        gpus=factory_gpus(sc, kw, pue),
        it_kw_per_gpu=kw,
        pue=pue,
        idle_power_share=pf(e.idle_power_share.central),
        close_year=per_factory(lambda f: f.start_delay_years),
        build_years=pf(c.build_months.central / 12.0),
        grid_delay_years=per_factory(lambda f: f.grid_delay_years.central),
        chip_delay_years=pf(m.chip_delivery_delay_months.central / 12.0),
        gpu_life_years=pf(m.gpu_useful_life_years.central),
        facility_capex_eur_m_per_mw=pf(c.facility_capex_usd_m_per_mw.central / fx),
        grid_capex_eur_m_per_mw=pf(c.grid_capex_eur_m_per_mw.central),
        compute_capex_eur_per_gpu=np.broadcast_to(compute_per_gpu, (1, n_f, n_t)).copy(),
        gpu_hour_price_launch_eur=pf(m.gpu_hour_price_launch_usd.central / fx),
        gpu_hour_price_factor=np.broadcast_to(
            gpu_hour_price_shock_path(np.asarray(m.gpu_hour_price_shock.central),
                                      m.gpu_hour_price_shock_years, n_t), (1, n_f, n_t)).copy(),
        gpu_hour_price_erosion_per_year=pf(m.gpu_hour_price_erosion_per_year.central),
        on_demand_premium=pf(m.on_demand_premium.central),
        price_performance_growth_per_year=pf(m.price_performance_growth_per_year.central),
        gpu_resale_share_5y=pf(m.gpu_resale_share_5y.central),
        utilisation_launch_year=pf(m.utilisation_launch_year.central),
        utilisation_steady=np.full((1, n_f, n_t), m.utilisation_steady.central),
        public_access_share=pf(m.public_access_share.central),
        anchor_share_of_commercial=pf(m.anchor_share_of_commercial),
        public_access_discount=pf(m.public_access_discount.central),
        public_access_paid_by_fund=m.public_access_payer == "fund",
        other_opex_share_of_capex=pf(c.other_opex_share_of_capex.central),
        opex_index=np.broadcast_to((1.0 + mac.inflation_per_year) ** years, (1, n_f, n_t)).copy(),
        power_price_eur_mwh=power_price_mean_path(level, start, e.power_price_half_life_years, n_t),
        tax_rate=per_factory(lambda f: f.tax_rate),
        facility_life_years=c.facility_life_years,
        gpus_bought_at_close=c.gpus_bought_at == "close",
    )
