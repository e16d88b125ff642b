"""Key performance indicators from the engine's line items, per factory and per path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from finmodel.metrics import irr, npv, payback_period
from finmodel.operations import Operations
from finmodel.scenario.model import Scenario

__all__ = ["FACTORY_KPIS", "PATH_KPIS", "factory_kpis", "path_kpis"]

# name -> (unit, description)
FACTORY_KPIS: dict[str, tuple[str, str]] = {
    "facility_mw": ("MW", "facility power (IT power x PUE)"),
    "cod_year": ("year", "commercial operation date (calendar year, fractional)"),
    "capex_initial_eur_m": ("EUR m", "construction and first GPU fleet"),
    "capex_total_eur_m": ("EUR m", "all capex over the horizon, refresh included"),
    "revenue_eur_m": ("EUR m", "revenue over the horizon"),
    "ebitda_eur_m": ("EUR m", "EBITDA over the horizon"),
    "ebitda_margin": ("share", "EBITDA / revenue over the horizon"),
    "project_irr": ("1/yr", "IRR of unlevered free cash flow"),
    "project_npv_eur_m": ("EUR m", "NPV of unlevered free cash flow at macro.project_discount_rate, "
                          "as at the end of period 0"),
    "project_payback_years": ("years", "periods until cumulative unlevered cash turns positive"),
    "gpu_hours_m": ("m GPU-hours", "GPU-hours sold over the horizon"),
    "gpu_hours_public_m": ("m GPU-hours", "GPU-hours for the public-access quota"),
    "energy_gwh": ("GWh", "electricity used over the horizon"),
}
PATH_KPIS: dict[str, tuple[str, str]] = {
    "capex_initial_eur_m": ("EUR m", "portfolio construction and first fleets"),
    "capex_total_eur_m": ("EUR m", "portfolio capex over the horizon"),
    "revenue_eur_m": ("EUR m", "portfolio revenue over the horizon"),
    "ebitda_eur_m": ("EUR m", "portfolio EBITDA over the horizon"),
    "project_irr": ("1/yr", "IRR of the portfolio's unlevered free cash flow"),
    "project_npv_eur_m": ("EUR m", "NPV of the portfolio's unlevered free cash flow"),
    "gpu_hours_m": ("m GPU-hours", "GPU-hours sold over the horizon"),
    "gpu_hours_public_m": ("m GPU-hours", "GPU-hours for the public-access quota"),
    "compute_hours_adjusted_m": ("m GPU-hour eq.", "compute delivered, price-performance adjusted"),
    "energy_gwh": ("GWh", "electricity used over the horizon"),
    "facility_mw": ("MW", "portfolio facility power"),
    "sites_operating": ("sites", "sites reaching commercial operation within the horizon"),
    "years_to_first_compute": ("years", "from portfolio close to the first site's COD"),
}


def factory_kpis(sc: Scenario, op: Operations, path_ids: np.ndarray) -> pd.DataFrame:
    """One row per (path, factory): columns ``path``, ``factory`` and ``FACTORY_KPIS``."""
    fcf = op["unlevered_fcf"]
    revenue = op.total("revenue")
    ebitda = op.total("ebitda")
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.where(revenue != 0, ebitda / revenue, np.nan)
    cols = {
        "facility_mw": op.facility_mw,
        "cod_year": sc.timeline.start_year + op.cod_years,
        "capex_initial_eur_m": op.capex_initial,
        "capex_total_eur_m": op.total("capex"),
        "revenue_eur_m": revenue,
        "ebitda_eur_m": ebitda,
        "ebitda_margin": margin,
        "project_irr": irr(fcf),
        "project_npv_eur_m": npv(sc.macro.project_discount_rate, fcf),
        "project_payback_years": payback_period(fcf),
        "gpu_hours_m": op.total("gpu_hours_m"),
        "gpu_hours_public_m": op.total("gpu_hours_public_m"),
        "energy_gwh": op.total("energy_gwh"),
    }
    n_p, n_f = fcf.shape[:2]
    names = [f.name for f in sc.factories]
    frame = pd.DataFrame({k: np.broadcast_to(v, (n_p, n_f)).ravel() for k, v in cols.items()})
    frame.insert(0, "factory", pd.Categorical.from_codes(np.tile(np.arange(n_f), n_p), names))
    frame.insert(0, "path", np.repeat(path_ids, n_f))
    return frame


def path_kpis(sc: Scenario, op: Operations, path_ids: np.ndarray) -> pd.DataFrame:
    """One row per path: the portfolio's KPIs (``PATH_KPIS``)."""
    fcf = op["unlevered_fcf"].sum(1)
    cod = op.cod_years
    horizon = sc.timeline.horizon_years
    cols = {
        "capex_initial_eur_m": op.capex_initial.sum(1),
        "capex_total_eur_m": op.total("capex").sum(1),
        "revenue_eur_m": op.total("revenue").sum(1),
        "ebitda_eur_m": op.total("ebitda").sum(1),
        "project_irr": irr(fcf),
        "project_npv_eur_m": npv(sc.macro.project_discount_rate, fcf),
        "gpu_hours_m": op.total("gpu_hours_m").sum(1),
        "gpu_hours_public_m": op.total("gpu_hours_public_m").sum(1),
        "compute_hours_adjusted_m": op.total("compute_hours_adjusted_m").sum(1),
        "energy_gwh": op.total("energy_gwh").sum(1),
        "facility_mw": op.facility_mw.sum(1),
        "sites_operating": (cod < horizon).sum(1),
        "years_to_first_compute": cod.min(1),
    }
    frame = pd.DataFrame(cols)
    frame.insert(0, "path", path_ids)
    return frame
