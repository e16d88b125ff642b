"""Key performance indicators from the engine's line items, per factory and per path."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

from finmodel.compiled import by_row, by_row_and_period, kernel
from finmodel.engine import Model
from finmodel.metrics import dscr_summary, irr, moic, npv, payback_period
from finmodel.scenario.model import Scenario

__all__ = ["FACTORY_KPIS", "LINES_READ", "PATH_KPIS", "TRANCHE_KPIS", "Columns",
           "factory_kpi_columns", "factory_kpis", "path_kpi_columns", "path_kpis",
           "tranche_kpi_columns", "tranche_kpis"]

# a table as columns of equal length: name -> (rows,) array, or a pandas.Categorical
Columns = dict[str, np.ndarray | pd.Categorical]

# the financing line items the KPIs (and the fund's tranches) read: a Monte Carlo chunk keeps
# only these (see engine.run)
LINES_READ = ("cfads", "dscr", "eib_balance", "commercial_balance", "private_equity_flow",
              "fund_flow", "hardware_interest", "hardware_principal", "hardware_balance")

_LOSS_EPS = 1e-6  # EUR m: an EIB loss below this is rounding, not a loss

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
    "fund_eur_m": ("EUR m", "fund instrument paid in"),
    "eu_eur_m": ("EUR m", "EU part of the fund money paid in (host state: the rest)"),
    "eib_eur_m": ("EUR m", "EIB loan drawn (before IDC)"),
    "private_equity_eur_m": ("EUR m", "private equity paid in during construction"),
    "equity_irr": ("1/yr", "IRR of private shareholders' flows"),
    "equity_npv_eur_m": ("EUR m", "NPV of private shareholders' flows at private.equity_hurdle_irr"),
    "equity_moic": ("x", "private shareholders' distributions / contributions"),
    "min_dscr": ("ratio", "lowest DSCR while senior debt is serviced"),
    "avg_dscr": ("ratio", "average DSCR while senior debt is serviced"),
    "llcr": ("ratio", "loan life cover ratio at the first repayment, over all senior debt sharing the "
             "CFADS (EIB, commercial and hardware loans)"),
    "plcr": ("ratio", "project life cover ratio at the first repayment (CFADS to the horizon), over "
             "all senior debt sharing the CFADS"),
    "default": ("flag", "1 if lenders accelerated: a payment default, or eib.breaches_to_acceleration "
                "covenant breaches in a row"),
    "default_year": ("year", "calendar year of default (empty if none)"),
    "payment_default": ("flag", "1 if cash, trapped cash and reserve fell short of senior service due"),
    "covenant_breach": ("flag", "1 if a DSCR test fell below eib.default_dscr (cured or not)"),
    "breach_years": ("years", "DSCR tests below eib.default_dscr while the debt was serviced"),
    "first_breach_year": ("year", "calendar year of the first covenant breach (empty if none)"),
    "eib_default": ("flag", "1 if the default came while EIB principal or interest was owed"),
    "eib_loss": ("flag", "1 if the EIB lost money (recovery short of its claim)"),
    "eib_lgd": ("share", "EIB loss / what the EIB was owed at default (empty without an EIB default)"),
    "years_to_default": ("years", "from the first repayment to the default (empty if none)"),
    "eib_exposure_eur_m": ("EUR m", "EIB balance at the first repayment (after IDC)"),
    "eib_loss_eur_m": ("EUR m", "EIB principal and interest not recovered"),
    "fund_irr": ("1/yr", "IRR of the fund's instrument (empty for a grant)"),
    "fund_moic": ("x", "fund's returns / investments"),
    "public_cost_eur_m": ("EUR m", "PV at macro.public_discount_rate of the public tranches' "
                          "pro-rata share of the fund's net outflows and the payments for public "
                          "access"),
    "private_per_public": ("EUR per EUR", "private equity, commercial debt and private fund "
                           "tranches per public fund euro"),
    "public_cost_per_public_gpu_hour_eur": ("EUR per GPU-hour", "public cost / PV of public-access "
                                            "GPU-hours (both at the public discount rate)"),
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
    "equity_irr": ("1/yr", "IRR of private shareholders' flows across the portfolio"),
    "equity_irr_multiple": ("flag", "1 if those flows have more than one real IRR (equity_irr is "
                            "then the one closest to zero)"),
    "equity_below_hurdle": ("flag", "1 if that IRR is below private.equity_hurdle_irr, or there is "
                            "none (the shareholders do not get their money back)"),
    "equity_moic": ("x", "private shareholders' distributions / contributions"),
    "any_default": ("flag", "1 if lenders accelerated at one factory or more (payment default or "
                    "persistent covenant breach)"),
    "defaults": ("sites", "factories that defaulted"),
    "any_payment_default": ("flag", "1 if at least one factory missed senior service"),
    "any_covenant_breach": ("flag", "1 if at least one factory breached its DSCR covenant"),
    "any_eib_default": ("flag", "1 if at least one factory defaulted while owing the EIB"),
    "any_eib_loss": ("flag", "1 if the EIB lost money on at least one factory"),
    "eib_lgd": ("share", "EIB loss / what the EIB was owed at its defaults (ratio of sums; empty "
                "without an EIB default)"),
    "min_dscr": ("ratio", "lowest DSCR of any factory"),
    "eib_exposure_eur_m": ("EUR m", "EIB balances at first repayment"),
    "eib_loss_eur_m": ("EUR m", "EIB principal and interest not recovered"),
    "eib_loss_share": ("share", "EIB loss / EIB exposure"),
    "fund_invested_eur_m": ("EUR m", "fund money paid into the factories"),
    "eu_eur_m": ("EUR m", "EU part of the fund money paid in"),
    "host_state_eur_m": ("EUR m", "host states' part of the fund money paid in"),
    "fund_irr": ("1/yr", "IRR of the fund's flows (empty for grants)"),
    "fund_loss_eur_m": ("EUR m", "fund money paid in and not returned"),
    "public_cost_eur_m": ("EUR m", "PV of the public tranches' net outflows and public-access "
                          "payments"),
    "private_capital_eur_m": ("EUR m", "private equity and commercial senior debt at construction"),
    "private_per_public": ("EUR per EUR", "private capital (equity, commercial debt, private fund "
                           "tranches) per public fund euro"),
    "private_per_public_incl_eib": ("EUR per EUR", "private capital per euro of public fund and EIB "
                                    "money"),
    "public_cost_per_public_gpu_hour_eur": ("EUR per GPU-hour", "public cost / PV of public-access "
                                            "GPU-hours"),
    "first_loss_drawn_share": ("share", "share of the first-loss tranche lost"),
    "private_per_first_loss": ("EUR per EUR", "private money (private tranches, equity, commercial "
                               "debt) per first-loss euro"),
}
TRANCHE_KPIS: dict[str, tuple[str, str]] = {
    "contributed_eur_m": ("EUR m", "paid into the fund"),
    "received_eur_m": ("EUR m", "paid out by the fund"),
    "irr": ("1/yr", "IRR of the tranche's flows"),
    "moic": ("x", "received / contributed"),
    "loss_eur_m": ("EUR m", "contributed and not received"),
    "loss": ("flag", "1 if the tranche lost money"),
}


def public_share(sc: Scenario) -> float:
    """Share of every fund commitment paid by public tranches (each tranche pays its share)."""
    return float(sum(t.share for t in sc.tranches if t.public))


def _public(sc: Scenario, m: Model) -> tuple[np.ndarray, np.ndarray]:
    """(P, F) PV of public cost and of public-access GPU-hours at the public discount rate.
    A site's public cost counts the public tranches' pro-rata share of the fund's flows there
    (the portfolio's, ``_public_cost``, follows the tranche waterfall)."""
    def compute() -> tuple[np.ndarray, np.ndarray]:
        rate = sc.macro.public_discount_rate
        payments = m.operations["revenue_public_fund"]
        cost = npv(rate, payments - public_share(sc) * m.financing["fund_flow"])
        return cost, npv(rate, m.operations["gpu_hours_public_m"])
    return m.once("public", compute)  # path and factory KPIs share it


def _public_cost(sc: Scenario, m: Model) -> np.ndarray:
    """(P,) PV of the portfolio's public cost: payments for public access less the public
    tranches' flows out of the fund's waterfall (a private tranche's money is not public)."""
    public = [k for k, t in enumerate(sc.tranches) if t.public]
    flows = m.tranches.flows[:, public].sum(1) if public else 0.0  # (P, T)
    return npv(sc.macro.public_discount_rate,
               m.portfolio("revenue_public_fund") - flows)


def _eu_paid(m: Model, fund_in: np.ndarray) -> np.ndarray:
    """(P, F) EU part of the fund money paid in: the EU's share of each allocation."""
    terms = m.terms
    eu = terms.eu_eur_m if terms.eu_eur_m is not None else np.zeros_like(terms.fund_eur_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(terms.fund_eur_m > 0, eu / terms.fund_eur_m, 0.0)
    return fund_in * share


def _dscr_stats(m: Model) -> tuple[np.ndarray, np.ndarray]:
    """(P, F) lowest and average DSCR over the years with senior debt service (NaN if none)."""
    return m.once("dscr", lambda: dscr_summary(m.financing["dscr"]))


def _cover_ratios(m: Model, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, F) LLCR and PLCR at the first repayment r0 over all the senior debt that shares the
    CFADS: the EIB and commercial loans and the hardware loans that rank pari passu with them.

    LLCR = PV of CFADS from r0 to the senior loans' last repayment / (their balance at r0 + PV
    of the hardware loans' service in those years + PV of the hardware balance left at their
    end); PLCR the same to the horizon (where every loan is settled). Discounted at the EIB loan
    rate, rate: (P, 1); flows at period ends. NaN without senior debt."""
    fin = m.financing
    shape, n_t = fin.first_repayment.shape, fin["cfads"].shape[-1]
    rows = by_row_and_period
    out = np.empty((2, shape[0] * shape[1]))
    _cover_rows(rows(fin["cfads"], shape, n_t), rows(fin["eib_balance"], shape, n_t),
                rows(fin["commercial_balance"], shape, n_t), rows(fin["hardware_interest"], shape, n_t),
                rows(fin["hardware_principal"], shape, n_t), rows(fin["hardware_balance"], shape, n_t),
                by_row(fin.first_repayment, shape, np.int64), by_row(rate, shape), out)
    return out[0].reshape(shape), out[1].reshape(shape)


@kernel
def _cover_rows(cfads, eib, commercial, hw_interest, hw_principal, hw_balance, r0, rate, out):
    """``_cover_ratios`` on rows: (R, T) line items (balances at period ends), r0 (R,) int,
    rate (R,); fills out (2, R) with the LLCR and the PLCR."""
    n_t = cfads.shape[1]
    for i in range(cfads.shape[0]):
        start = min(max(r0[i], 0), n_t - 1)
        last = -1  # the last period with a senior balance at its start
        for t in range(1, n_t):
            if eib[i, t - 1] + commercial[i, t - 1] > 1e-9:
                last = t
        b0 = eib[i, start - 1] + commercial[i, start - 1] if start > 0 else 0.0
        if b0 <= 1e-9:
            out[0, i] = out[1, i] = np.nan
            continue
        pv_life = pv_all = hw_life = hw_all = 0.0
        disc = 1.0
        for t in range(start, n_t):
            disc /= 1.0 + rate[i]
            service = hw_interest[i, t] + hw_principal[i, t]
            pv_all += cfads[i, t] * disc
            hw_all += service * disc
            if t <= last:
                pv_life += cfads[i, t] * disc
                hw_life += service * disc
                if t == last:
                    hw_life += hw_balance[i, t] * disc
        out[0, i] = pv_life / (b0 + hw_life)
        out[1, i] = pv_all / (b0 + hw_all)


def _labels(codes: np.ndarray, names: tuple[str, ...]) -> pd.Categorical:
    """Factory or tranche labels from codes into ``names``."""
    return pd.Categorical.from_codes(codes, dtype=_label_type(names))


@functools.lru_cache(maxsize=64)
def _label_type(names: tuple[str, ...]) -> pd.CategoricalDtype:
    """Made once per set of names: pandas checks the names at 0.4 ms a time, per chunk."""
    return pd.CategoricalDtype(list(names))


def factory_kpis(sc: Scenario, m: Model, path_ids: np.ndarray, rates: np.ndarray) -> pd.DataFrame:
    """One row per (path, factory): columns ``path``, ``factory`` and ``FACTORY_KPIS``.

    rates: (P, 1) EIB loan rate of each path (for the LLCR)."""
    return pd.DataFrame(factory_kpi_columns(sc, m, path_ids, rates))


def factory_kpi_columns(sc: Scenario, m: Model, path_ids: np.ndarray, rates: np.ndarray) -> Columns:
    """``factory_kpis`` as columns (P x F,), path by path, without building a DataFrame."""
    op, fin = m.operations, m.financing
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
    private = fin["private_equity_flow"]
    fund_in = fin.total("fund_draw")
    share_public = public_share(sc)
    min_dscr, avg_dscr = _dscr_stats(m)
    public_cost, public_hours = _public(sc, m)
    llcr_r0, plcr_r0 = _cover_ratios(m, rates)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols.update({
            "fund_eur_m": fund_in,
            "eu_eur_m": _eu_paid(m, fund_in),
            "eib_eur_m": fin.total("eib_draw"),
            "private_equity_eur_m": fin.private_equity_at_close,
            "equity_irr": irr(private),
            "equity_npv_eur_m": npv(sc.private.equity_hurdle_irr, private),
            "equity_moic": moic(private),
            "min_dscr": min_dscr,
            "avg_dscr": avg_dscr,
            "llcr": llcr_r0,
            "plcr": plcr_r0,
            "default": fin.default.astype(float),
            "default_year": sc.timeline.start_year + fin.default_period,
            "payment_default": fin.payment_default.astype(float),
            "covenant_breach": (fin.breach_periods > 0).astype(float),
            "breach_years": fin.breach_periods,
            "first_breach_year": sc.timeline.start_year + fin.first_breach_period,
            "eib_default": fin.eib_default.astype(float),
            "eib_loss": (fin.eib_loss > _LOSS_EPS).astype(float),
            "eib_lgd": np.where(fin.eib_default, fin.eib_loss / np.where(fin.eib_default,
                                                                         fin.eib_owed_at_default, 1.0),
                                np.nan),
            "years_to_default": fin.default_period - fin.first_repayment,
            "eib_exposure_eur_m": fin.eib_exposure,
            "eib_loss_eur_m": fin.eib_loss,
            "fund_irr": irr(fin["fund_flow"]) if sc.fund.instrument != "grant" else np.nan,
            "fund_moic": moic(fin["fund_flow"]),
            "public_cost_eur_m": public_cost,
            "private_per_public": np.where(fund_in * share_public > 1e-9, (
                fin.private_equity_at_close + fin.total("commercial_draw")
                + (1.0 - share_public) * fund_in) / (fund_in * share_public), np.nan),
            "public_cost_per_public_gpu_hour_eur": np.where(public_hours > 0,
                                                             public_cost / public_hours, np.nan),
        })
    n_p, n_f = fcf.shape[:2]
    return {"path": np.repeat(path_ids, n_f),
            "factory": _labels(np.tile(np.arange(n_f), n_p), tuple(f.name for f in sc.factories)),
            **{k: np.broadcast_to(v, (n_p, n_f)).ravel() for k, v in cols.items()}}


def path_kpis(sc: Scenario, m: Model, path_ids: np.ndarray) -> pd.DataFrame:
    """One row per path: column ``path`` and the portfolio's KPIs (``PATH_KPIS``)."""
    return pd.DataFrame(path_kpi_columns(sc, m, path_ids))


def path_kpi_columns(sc: Scenario, m: Model, path_ids: np.ndarray) -> Columns:
    """``path_kpis`` as columns (P,), without building a DataFrame."""
    op, fin, tr = m.operations, m.financing, m.tranches
    fcf = m.portfolio("unlevered_fcf")
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
    private = m.portfolio("private_equity_flow")
    equity_irr, equity_irr_roots = irr(private, full_output=True)
    fund_flow = m.portfolio("fund_flow")
    fund_in = fin.total("fund_draw").sum(1)
    eib_exposure = fin.eib_exposure.sum(1)
    eib_in = fin.total("eib_draw").sum(1)
    private_capital = fin.private_equity_at_close.sum(1) + fin.total("commercial_draw").sum(1)
    public_hours = _public(sc, m)[1].sum(1)
    public_cost = _public_cost(sc, m)
    min_dscr, _ = _dscr_stats(m)
    first_loss = max(range(len(sc.tranches)), key=lambda k: sc.tranches[k].priority)
    private_tranches = sum((tr.contributed[:, k] for k, t in enumerate(sc.tranches) if not t.public),
                           np.zeros(len(path_ids)))
    public_in = fund_in - private_tranches  # the public tranches' part of the fund money
    eu_paid = _eu_paid(m, fin.total("fund_draw")).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cols.update({
            "equity_irr": equity_irr,
            "equity_irr_multiple": (equity_irr_roots > 1).astype(float),
            "equity_below_hurdle": ~(equity_irr >= sc.private.equity_hurdle_irr) * 1.0,
            "equity_moic": moic(private),
            "any_default": fin.default.any(1).astype(float),
            "defaults": fin.default.sum(1),
            "any_payment_default": fin.payment_default.any(1).astype(float),
            "any_covenant_breach": (fin.breach_periods > 0).any(1).astype(float),
            "any_eib_default": fin.eib_default.any(1).astype(float),
            "any_eib_loss": (fin.eib_loss > _LOSS_EPS).any(1).astype(float),
            "eib_lgd": np.where(fin.eib_default.any(1), fin.eib_loss.sum(1) / np.maximum(
                np.where(fin.eib_default, fin.eib_owed_at_default, 0.0).sum(1), 1e-300), np.nan),
            "min_dscr": np.nanmin(min_dscr, 1),
            "eib_exposure_eur_m": eib_exposure,
            "eib_loss_eur_m": fin.eib_loss.sum(1),
            "eib_loss_share": np.where(eib_exposure > 0, fin.eib_loss.sum(1) / eib_exposure, np.nan),
            "fund_invested_eur_m": fund_in,
            "eu_eur_m": eu_paid,
            "host_state_eur_m": fund_in - eu_paid,
            "fund_irr": irr(fund_flow) if sc.fund.instrument != "grant" else np.nan,
            "fund_loss_eur_m": np.maximum(-fund_flow.sum(-1), 0.0),
            "public_cost_eur_m": public_cost,
            "private_capital_eur_m": private_capital,
            "private_per_public": np.where(public_in > 1e-9, (private_capital + private_tranches)
                                          / public_in, np.nan),
            "private_per_public_incl_eib": np.where(
                public_in + eib_in > 1e-9, (private_capital + private_tranches) / (public_in + eib_in),
                np.nan),
            "public_cost_per_public_gpu_hour_eur": np.where(public_hours > 0,
                                                             public_cost / public_hours, np.nan),
            "first_loss_drawn_share": np.where(tr.contributed[:, first_loss] > 0,
                                               tr.loss[:, first_loss] / tr.contributed[:, first_loss],
                                               np.nan),
            "private_per_first_loss": np.where(
                tr.contributed[:, first_loss] > 0,
                (private_tranches + private_capital) / tr.contributed[:, first_loss], np.nan),
        })
    return {"path": np.asarray(path_ids),
            **{k: np.broadcast_to(v, path_ids.shape) for k, v in cols.items()}}


def tranche_kpis(sc: Scenario, m: Model, path_ids: np.ndarray) -> pd.DataFrame:
    """One row per (path, tranche): columns ``path``, ``tranche`` and ``TRANCHE_KPIS``."""
    return pd.DataFrame(tranche_kpi_columns(sc, m, path_ids))


def tranche_kpi_columns(sc: Scenario, m: Model, path_ids: np.ndarray) -> Columns:
    """``tranche_kpis`` as columns (P x K,), path by path, without building a DataFrame."""
    tr = m.tranches
    n_p, n_k = tr.contributed.shape
    cols = {
        "contributed_eur_m": tr.contributed,
        "received_eur_m": tr.received,
        "irr": irr(tr.flows),
        "moic": np.where(tr.contributed > 0, tr.received / np.maximum(tr.contributed, 1e-300),
                         np.nan),
        "loss_eur_m": tr.loss,
        "loss": (tr.loss > 1e-9).astype(float),
    }
    return {"path": np.repeat(path_ids, n_k),
            "tranche": _labels(np.tile(np.arange(n_k), n_p), tuple(t.name for t in sc.tranches)),
            **{k: np.asarray(v).ravel() for k, v in cols.items()}}
