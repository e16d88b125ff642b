"""Excel export for EIB staff: a live-formula project-finance workbook (openpyxl), FAST style.

Sheets: Cover (with the master check: integrity, for any input; and the reconciliation with the
engine's values of the exported path), Inputs (every assumption, named ranges), Timeline, one
sheet per factory with the operations and financing of one selected path in live formulas,
Portfolio (factories summed with formulas), Monte Carlo (distribution summary, histogram and
the selected paths, as values) and Checks.

A factory sheet takes the path's engine outcomes that are not finance (revenue, energy used,
other opex, depreciation, capex, fleet values) and its drawn rates as input rows, and rebuilds
in formulas: energy cost, EBITDA, tax with loss carry-forward, CFADS, draws and IDC, the senior,
hardware and subordinated loans, the reserve account, the lock-up, default and recovery, equity
and fund flows, DSCR, IRR and NPV. Change an input and the whole chain recalculates. Only
functions that Excel and LibreOffice Calc both evaluate are used.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation

from finmodel.drivers import central_drivers, drivers_from_draws
from finmodel.engine import Model, close_deal, run
from finmodel.errors import Problem, ScenarioError
from finmodel.financing import Terms, repayment_schedule
from finmodel.metrics import irr as engine_irr
from finmodel.results import Results, select_paths
from finmodel.sampling import path_noise
from finmodel.scenario.fields import field_rows
from finmodel.scenario.io import write_atomic
from finmodel.scenario.model import Scenario

__all__ = ["export_excel", "sheet_titles"]

FIRST_PERIOD_COL = 4  # column D holds period 0
TOLERANCE = 1e-9  # EUR m: payment tests, as in the engine
CHECK_TOLERANCE = 1e-6  # formulas against the engine, relative (absolute below 1)

INPUT = Font(color="0000CC")
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")
HEADER = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="1F3864")
SECTION = Font(bold=True)
CHECK_FILL = PatternFill("solid", fgColor="E2EFDA")
NUM = "#,##0.00;[Red]-#,##0.00"
RATIO = "0.000"
PCT = "0.00%"


def _text(cell, value: str) -> None:
    """User text as text: never a formula, whatever it starts with."""
    cell.value = str(value)
    cell.data_type = "s"
    if str(value)[:1] in ("=", "+", "-", "@"):
        cell.quotePrefix = True


# -- which paths ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PathModel:
    model: Model
    drivers: object
    path: int  # -1 for the base case


def _path_model(sc: Scenario, terms: Terms, results: Results | None, path: int) -> _PathModel:
    if results is None or path < 0:
        d = central_drivers(sc)
        return _PathModel(run(sc, d, terms), d, -1)
    row = results.inputs.drop(columns="path").iloc[path]
    d = drivers_from_draws(sc, {name: np.array([v]) for name, v in row.items()}, 1,
                           path_noise(sc, int(results.seed), path, path + 1))
    return _PathModel(run(sc, d, terms), d, path)


# -- a sheet of rows over periods ---------------------------------------------------------------


class _Rows:
    """Rows of one sheet: parameters in column C, periods from column D; formulas refer to
    other rows by key."""

    def __init__(self, ws, n_t: int, first_row: int):
        self.ws, self.n_t, self.row, self.at = ws, n_t, first_row, {}
        self.pending: list = []  # rows are numbered at once and written by ``flush``
        self.labels: set[str] = set()

    def _label(self, label: str) -> None:
        if label in self.labels:  # a reader finds rows by their label
            raise ValueError(f"duplicate row label {label!r}")
        self.labels.add(label)

    def flush(self) -> None:
        """Write every row's cells (formulas may refer to rows defined after them)."""
        for r, key, values, formula, first, total, fmt in self.pending:
            for t in range(self.n_t):
                if values is not None:
                    v = values[t]
                    cell = self.ws.cell(r, FIRST_PERIOD_COL + t, float(v) if np.isfinite(v) else None)
                    cell.font, cell.fill = INPUT, INPUT_FILL
                else:
                    cell = self.ws.cell(r, FIRST_PERIOD_COL + t,
                                        first if (t == 0 and first is not None) else "=" + formula(t))
                cell.number_format = fmt
            if total == "sum":
                self.ws.cell(r, 3, f"=SUM({self.span(key)})").number_format = fmt
            elif total:
                self.ws.cell(r, 3, "=" + total).number_format = fmt
        self.pending.clear()

    def col(self, t: int) -> str:
        return get_column_letter(FIRST_PERIOD_COL + t)

    def c(self, key: str, t: int) -> str:
        return f"{self.col(t)}{self.at[key]}"

    def p(self, key: str) -> str:
        return f"$C${self.at[key]}"

    def span(self, key: str) -> str:
        r = self.at[key]
        return f"${self.col(0)}${r}:${self.col(self.n_t - 1)}${r}"

    def section(self, title: str) -> None:
        self.row += 1
        self.ws.cell(self.row, 1, title).font = SECTION
        self.row += 1

    def param(self, key: str, label: str, unit: str, value, fmt: str = NUM, is_input: bool = False) -> str:
        self._label(label)
        r = self.row
        self.ws.cell(r, 1, label)
        self.ws.cell(r, 2, unit)
        cell = self.ws.cell(r, 3, value)
        cell.number_format = fmt
        if is_input:
            cell.font, cell.fill = INPUT, INPUT_FILL
        self.at[key] = r
        self.row += 1
        return f"$C${r}"

    def series(self, key: str, label: str, unit: str, values=None,
               formula: Callable[[int], str] | None = None, first=None, total: str | None = None,
               fmt: str = NUM) -> None:
        """An input row (``values``) or a calculation row (``formula(t)``; ``first`` replaces
        the formula in period 0, e.g. an opening balance of 0). ``total``: "sum" or a formula
        for column C."""
        self._label(label)
        r = self.row
        self.at[key] = r
        self.ws.cell(r, 1, label)
        self.ws.cell(r, 2, unit)
        self.pending.append((r, key, values, formula, first, total, fmt))
        self.row += 1


# -- the factory sheet -----------------------------------------------------------------------------


def _factory_sheet(wb: Workbook, sc: Scenario, terms: Terms, pm: _PathModel, f: int,
                   title: str, names: dict[str, str]) -> tuple[str, _Rows]:
    """One factory's operations and financing in formulas; returns the sheet name and rows."""
    n_t = sc.timeline.horizon_years
    fac = sc.factories[f]
    ws = wb.create_sheet(title)
    if ws.title != title:  # formulas name ``title``: openpyxl must not have renamed the sheet
        raise RuntimeError(f"sheet {title!r} was created as {ws.title!r}")
    m, d = pm.model, pm.drivers
    fin = m.financing

    def line(name: str) -> np.ndarray:
        return np.asarray(m[name][0, f], dtype=float)

    ws.cell(1, 1, "Factory").font = SECTION
    _text(ws.cell(1, 2), fac.name)
    ws.cell(2, 1, "Path")
    ws.cell(2, 2, "base case (central values)" if pm.path < 0 else f"simulated path {pm.path}")
    ws.cell(3, 1, "period")
    ws.cell(4, 1, "year")
    for t in range(n_t):
        ws.cell(3, FIRST_PERIOD_COL + t, f"=Timeline!{get_column_letter(FIRST_PERIOD_COL + t)}3")
        ws.cell(4, FIRST_PERIOD_COL + t, f"=Timeline!{get_column_letter(FIRST_PERIOD_COL + t)}4")
        ws.cell(4, FIRST_PERIOD_COL + t).font = HEADER
        ws.cell(4, FIRST_PERIOD_COL + t).fill = HEADER_FILL
    for col in (1, 2, 3):
        ws.cell(4, col).fill = HEADER_FILL
    ws.cell(4, 3, "total / value").font = HEADER
    R = _Rows(ws, n_t, 6)
    c, p = R.c, R.p

    def per(t: int) -> str:
        return f"{R.col(t)}$3"

    # ---- parameters ------------------------------------------------------------------------
    R.section("Parameters of this path (inputs in blue on yellow)")
    rate = lambda x: float(np.asarray(x).ravel()[0])  # noqa: E731
    R.param("base_rate", "base rate (swap, fixed at close)", "1/yr", rate(d.base_rate), PCT, True)
    R.param("eib_margin", "EIB margin", "1/yr", rate(d.eib_margin), PCT, True)
    R.param("senior_spread", "commercial senior spread", "1/yr", rate(d.senior_spread), PCT, True)
    R.param("hardware_spread", "hardware loan spread", "1/yr", rate(d.hardware_loan_spread), PCT, True)
    R.param("haircut", "facility recovery haircut", "share", rate(d.facility_recovery_haircut), PCT, True)
    R.param("r_e", "EIB rate", "1/yr", f"={p('base_rate')}+{p('eib_margin')}", PCT)
    R.param("r_c", "commercial senior loan rate", "1/yr",
            f"={p('base_rate')}+{p('senior_spread')}", PCT)
    R.param("r_h", "hardware loan rate", "1/yr", f"={p('base_rate')}+{p('hardware_spread')}", PCT)
    R.param("r_s", "fund subordinated loan rate", "1/yr", f"={names['sub_loan_rate']}", PCT)
    R.param("tax_rate", "corporate tax rate", "share", f"={names[f'tax_rate_{f}']}", PCT)
    R.param("eib_commit", "EIB commitment (sized on the base case)", "EUR m",
            float(terms.eib_eur_m[f]), NUM, True)
    R.param("com_commit", "commercial senior commitment", "EUR m", float(terms.commercial_eur_m[f]),
            NUM, True)
    R.param("fund_commit", "fund allocation", "EUR m", float(terms.fund_eur_m[f]), NUM, True)
    R.param("base_cost", "base-case construction cost", "EUR m",
            float(terms.construction_cost_eur_m[f]), NUM, True)
    R.param("hw_share", "largest share of a refresh a hardware loan may lend", "share",
            float(terms.hardware_share[f]), PCT, True)
    fleet_life = max(1, int(np.rint(np.broadcast_to(d.gpu_life_years, fin.first_repayment.shape)[0, f])))
    R.param("fleet_life", "years a GPU fleet serves on this path", "years", fleet_life, "0", True)
    R.param("hw_life", "hardware loan term (no longer than a fleet serves on this path)", "years",
            f"=MIN({names['hardware_loan_tenor_years']},{p('fleet_life')})", "0")
    R.param("hw_factor", "hardware annuity per EUR borrowed", "1/yr",
            f"={p('r_h')}/(1-(1+{p('r_h')})^-{p('hw_life')})", "0.000000")
    R.param("fees", "front-end fees", "EUR m",
            f"={names['upfront_fee']}*{p('eib_commit')}+{names['commercial_upfront_fee']}*{p('com_commit')}")
    close_period = int(np.broadcast_to(d.close_year, fin.first_repayment.shape)[0, f])
    repayment_years, share = repayment_schedule(
        sc, terms, f, close_period, fin.first_repayment[0, f],
        np.broadcast_to(d.base_rate + d.eib_margin, fin.first_repayment.shape)[0, f], n_t)
    R.param("close", "period of financial close", "period", close_period, "0", True)
    R.param("r0", "first repayment period (first full period after COD)", "period",
            int(fin.first_repayment[0, f]), "0", True)
    R.param("n_rep", "repayment years (to maturity at close + tenor)", "years", repayment_years, "0", True)
    R.param("is_sub", "fund instrument is a subordinated loan", "1/0",
            f"=IF({names['fund_instrument']}=\"sub_loan\",1,0)", "0")
    R.param("is_equity", "fund instrument is equity", "1/0",
            f"=IF({names['fund_instrument']}=\"equity\",1,0)", "0")
    R.param("mode_hw", "refresh by hardware loan", "1/0",
            f"=IF({names['refresh_funding']}=\"hardware_loan\",1,0)", "0")
    R.param("mode_cash", "refresh from operating cash", "1/0",
            f"=IF({names['refresh_funding']}=\"cash\",1,0)", "0")
    R.param("dscr_trigger", "DSCR covenant is an event of default", "1/0",
            f"=IF({names['default_trigger']}=\"dscr_or_payment\",1,0)", "0")
    tol, last_period = names["tolerance"], "Timeline!$C$3"

    # ---- flags ------------------------------------------------------------------------------------
    R.section("Flags")
    R.series("last", "last period", "1/0", formula=lambda t: f"IF({per(t)}={last_period},1,0)", fmt="0")
    R.series("repaying", "repayment period", "1/0", formula=lambda t: f"IF({per(t)}>={p('r0')},1,0)",
             fmt="0")
    R.series("capitalise", "interest capitalised (construction and grace)", "1/0",
             formula=lambda t: f"IF(AND({c('repaying', t)}=0,{c('last', t)}=0),1,0)", fmt="0")

    # ---- operations of this path --------------------------------------------------------------------
    R.section("Operations of this path (engine outcomes as inputs; EUR m)")
    R.series("revenue", "revenue", "EUR m", values=line("revenue"), total="sum")
    R.series("energy_gwh", "electricity used", "GWh", values=line("energy_gwh"), total="sum")
    R.series("power_price", "power price", "EUR/MWh",
             values=np.broadcast_to(d.power_price_eur_mwh, (1, sc.n_factories, n_t))[0, f])
    R.series("energy_cost", "energy cost", "EUR m",
             formula=lambda t: f"{c('energy_gwh', t)}*{c('power_price', t)}/{names['mwh_per_gwh_k']}",
             total="sum")
    R.series("other_opex", "other opex", "EUR m", values=line("other_opex"), total="sum")
    R.series("ebitda", "EBITDA", "EUR m",
             formula=lambda t: f"{c('revenue', t)}-{c('energy_cost', t)}-{c('other_opex', t)}",
             total="sum")
    R.series("depreciation", "depreciation", "EUR m", values=line("depreciation"), total="sum")
    R.series("resale", "GPU resale proceeds", "EUR m", values=line("resale_proceeds"), total="sum")
    gain = np.zeros(n_t)
    gain[-1] = line("taxable_income")[-1] - (line("ebitda")[-1] - line("depreciation")[-1]
                                             + line("resale_proceeds")[-1])
    R.series("terminal_gain", "taxable gain on the fleet at the horizon", "EUR m", values=gain,
             total="sum")
    R.series("taxable0", "taxable income before interest", "EUR m",
             formula=lambda t: (f"{c('ebitda', t)}-{c('depreciation', t)}+{c('resale', t)}"
                                f"+{c('terminal_gain', t)}"), total="sum")
    R.series("uses", "construction uses (facility, grid, first fleet)", "EUR m",
             values=line("capex_construction") + line("capex_gpu_initial"), total="sum")
    R.series("refresh", "GPU refresh capex", "EUR m", values=line("capex_gpu_refresh"), total="sum")
    R.series("plant", "plant lifecycle reserve contribution", "EUR m",
             values=line("plant_reserve_contribution"), total="sum")
    release = np.zeros(n_t)
    release[-1] = m.operations.plant_reserve_at_horizon[0, f]
    R.series("terminal", "terminal value and lifecycle reserve released (horizon)", "EUR m",
             values=line("terminal_value") + release, total="sum")
    R.series("fleet_value", "fleet resale value at period end", "EUR m", values=line("fleet_value"))
    R.series("facility_book", "facility book value at period end", "EUR m",
             values=line("facility_book_value"))
    R.series("share", "senior principal profile (share of balance at first repayment)", "share",
             values=share, total="sum", fmt="0.0000")

    # ---- sources and uses -------------------------------------------------------------------------------
    R.section("Construction funding")
    R.param("cost", "construction cost of this path", "EUR m", f"=SUM({R.span('uses')})")
    R.param("scale", "facilities drawn (share of commitments)", "share",
            f"=MIN(1,{p('cost')}/{p('base_cost')})", PCT)
    for key, label, commit in (("eib_draw", "EIB drawn", "eib_commit"),
                               ("com_draw", "commercial senior drawn", "com_commit"),
                               ("fund_draw", "fund instrument paid in", "fund_commit")):
        # senior loans only within their availability period from close; the fund at any time
        senior = key != "fund_draw"
        R.series(key, label, "EUR m", formula=lambda t, commit=commit, senior=senior: (
            f"IF(AND({p('cost')}>0"
            + (f",{per(t)}-{p('close')}<{names['availability_years']}" if senior else "")
            + f"),{p(commit)}*{p('scale')}*{c('uses', t)}/{p('cost')},0)"), total="sum")
    R.series("fees_t", "fees", "EUR m", formula=lambda t: f"IF({per(t)}={p('close')},{p('fees')},0)",
             total="sum")
    R.series("equity_build", "equity for construction and fees", "EUR m", formula=lambda t: (
        f"{c('uses', t)}+{c('fees_t', t)}-{c('eib_draw', t)}-{c('com_draw', t)}"
        f"-IF({p('is_equity')}=1,0,{c('fund_draw', t)})"), total="sum")
    # each hardware loan is sized at its refresh (financing._hardware_loan): at most its share of
    # the refresh, and the annuity that the replaced fleet's CFADS, year by year of its life,
    # carries at the target DSCR after the senior loans' scheduled service
    R.series("gpu_initial", "first GPU fleet bought", "EUR m", values=line("capex_gpu_initial"),
             total="sum")
    R.series("fleet_start", "period the GPU fleet in service was bought", "period", fmt="0",
             first=f"=IF(OR({c('gpu_initial', 0)}>{tol},{c('refresh', 0)}>{tol}),0,-1)",
             formula=lambda t: (f"IF(OR({c('gpu_initial', t)}>{tol},{c('refresh', t)}>{tol}),{per(t)},"
                                f"{c('fleet_start', t - 1)})"))
    R.series("senior_proj", "senior service scheduled at the first repayment (projection)", "EUR m",
             formula=lambda t: (
                 f"IF({per(t)}>={p('r0')},{c('share', t)}*({p('b0_e')}+{p('b0_c')})+(1-"
                 + (f"SUM({R.col(0)}{R.at['share']}:{R.col(t - 1)}{R.at['share']})" if t > 0 else "0")
                 + f")*({p('b0_e')}*{p('r_e')}+{p('b0_c')}*{p('r_c')}),0)"))

    periods = f"${R.col(0)}$3:${R.col(n_t - 1)}$3"

    def drawn_between(first: str, last: str) -> str:
        """Hardware loans drawn in the periods first..last (formulas)."""
        return (f"SUMIFS({R.span('hw_draw')},{periods},\">=\"&({first}),"
                f"{periods},\"<=\"&({last}))")

    def hw_loan(t: int) -> str:
        if t == 0 or t >= n_t - 1:
            return "0"
        start = c("fleet_start", t - 1)
        caps = []
        for k in range(1, fleet_life + 1):  # the term is at most the fleet's life
            seen = f"INDEX({R.span('cfads_raw')},1,MIN({start}+{k},{per(t)}-1)+1)"
            senior = c("senior_proj", t + k) if t + k < n_t else "0"
            prior = f"{p('hw_factor')}*{drawn_between(f'{per(t)}+{k}-' + p('hw_life'), f'{per(t)}-1')}"
            caps.append(f"IF({k}<={p('hw_life')},{seen}/{names['target_dscr']}-{senior}-{prior},9E+99)")
        return (f"IF(AND({p('mode_hw')}=1,{c('refresh', t)}>{tol},{start}>=0,{start}<{per(t)}),"
                f"MIN({p('hw_share')}*{c('refresh', t)},MAX(0,MIN({','.join(caps)}))/{p('hw_factor')}),0)")

    R.series("hw_draw", "hardware loan drawn (sized at the refresh)", "EUR m", formula=hw_loan,
             first=0.0, total="sum")
    R.series("mra_from", "refresh paid from the maintenance reserve", "EUR m", total="sum",
             formula=lambda t: (f"IF(AND({p('mode_cash')}=1,{c('refresh', t)}>{tol}),"
                                f"MIN({c('mra_open', t)},{c('refresh', t)}),0)"))
    R.series("equity_refresh", "equity for refresh", "EUR m", total="sum",
             formula=lambda t: f"{c('refresh', t)}-{c('hw_draw', t)}-{c('mra_from', t)}")
    R.series("fleet_cost", "cost of the GPU fleet in service", "EUR m",
             first=(f"=IF({c('refresh', 0)}>{tol},{c('refresh', 0)},"
                    f"IF({c('gpu_initial', 0)}>{tol},SUM({R.span('gpu_initial')}),0))"),
             formula=lambda t: (f"IF({c('refresh', t)}>{tol},{c('refresh', t)},"
                                f"IF({c('gpu_initial', t)}>{tol},SUM({R.span('gpu_initial')}),"
                                f"{c('fleet_cost', t - 1)}))"))

    def hw_cohorts(t: int) -> str:  # each loan's annuity falls due in the hw_life periods after it
        if t == 0:
            return "0"
        return f"{p('hw_factor')}*{drawn_between(f'{per(t)}-' + p('hw_life'), f'{per(t)}-1')}"

    R.series("hw_sched", "hardware loan annuities due", "EUR m", formula=hw_cohorts, first=0.0,
             total="sum")
    for key, label, draw, r in (("pre_e", "EIB balance before repayment", "eib_draw", "r_e"),
                                ("pre_c", "commercial balance before repayment", "com_draw", "r_c")):
        R.series(key, label, "EUR m", formula=lambda t, key=key, draw=draw, r=r: (
            f"{c(key, t - 1)}*(1+{p(r)})+{c(draw, t)}"), first=f"={c(draw, 0)}")
    R.series("pre_s", "fund loan balance before repayment", "EUR m", formula=lambda t: (
        f"{c('pre_s', t - 1)}*(1+{p('r_s')})+{p('is_sub')}*{c('fund_draw', t)}"),
        first=f"={p('is_sub')}*{c('fund_draw', 0)}")
    for key, pre in (("b0_e", "pre_e"), ("b0_c", "pre_c"), ("b0_s", "pre_s")):
        R.param(key, f"balance at first repayment ({pre[4:]})", "EUR m",
                f"=IF({p('r0')}>0,INDEX({R.span(pre)},1,{p('r0')}),0)")

    # ---- the waterfall --------------------------------------------------------------------------------
    R.section("Senior debt, tax and CFADS")
    R.series("alive", "not in default at the period start", "1/0",
             formula=lambda t: f"{c('alive_close', t - 1)}", first=1, fmt="0")
    for key, close in (("open_e", "close_e"), ("open_c", "close_c"), ("open_h", "close_h"),
                       ("open_s", "close_s"), ("dsra_open", "dsra_close"),
                       ("trapped_open", "trapped_close"), ("pool_open", "pool_close"),
                       ("int_cf_open", "int_cf_close"), ("mra_open", "mra_close")):
        R.series(key, key.replace("_", " "), "EUR m", formula=lambda t, close=close: c(close, t - 1),
                 first=0.0)
    R.series("int_e", "EIB interest", "EUR m", formula=lambda t: f"{c('open_e', t)}*{p('r_e')}")
    R.series("int_c", "commercial interest", "EUR m", formula=lambda t: f"{c('open_c', t)}*{p('r_c')}")
    R.series("int_h", "hardware loan interest", "EUR m",
             formula=lambda t: f"{c('open_h', t)}*{p('r_h')}")
    for key, open_, b0 in (("sched_e", "open_e", "b0_e"), ("sched_c", "open_c", "b0_c")):
        R.series(key, f"scheduled principal ({key[-1]})", "EUR m", formula=lambda t, o=open_, b=b0: (
            f"IF({c('repaying', t)}=1,MIN({c('share', t)}*{p(b)},{c(o, t)}),0)"))
    R.series("sched_h", "scheduled hardware service", "EUR m",
             formula=lambda t: f"MIN({c('hw_sched', t)},{c('open_h', t)}*(1+{p('r_h')}))")
    R.series("service", "senior debt service (scheduled)", "EUR m", formula=lambda t: (
        f"IF({c('repaying', t)}=1,{c('int_e', t)}+{c('int_c', t)}+{c('sched_e', t)}"
        f"+{c('sched_c', t)},0)+{c('sched_h', t)}"))
    R.series("due", "senior amount due (all at the horizon)", "EUR m", formula=lambda t: (
        f"IF({c('last', t)}=1,{c('open_e', t)}+{c('int_e', t)}+{c('open_c', t)}+{c('int_c', t)}"
        f"+{c('open_h', t)}*(1+{p('r_h')}),{c('service', t)})"))
    R.series("interest_deductible", "interest paid in operation", "EUR m", formula=lambda t: (
        f"IF(OR({c('repaying', t)}=1,{c('last', t)}=1),{c('int_e', t)}+{c('int_c', t)}"
        f"+{c('open_s', t)}*{p('r_s')},0)+{c('int_h', t)}"))
    R.series("idc", "interest capitalised (IDC)", "EUR m", total="sum", formula=lambda t: (
        f"IF({c('capitalise', t)}=1,{c('int_e', t)}+{c('int_c', t)},0)"))
    R.series("idc_dep", "IDC depreciated with the facility", "EUR m", total="sum", formula=lambda t: (
        f"IF(AND({per(t)}>={p('r0')},{per(t)}<{p('r0')}+{names['facility_life_years']}),"
        f"SUM({R.span('idc')})/{names['facility_life_years']},0)"))
    R.series("borrowing", "borrowing costs (with interest carried forward)", "EUR m", formula=lambda t: (
        f"{c('interest_deductible', t)}+{c('idc_dep', t)}+{c('int_cf_open', t)}"))
    R.series("deduct", "borrowing costs deducted (interest limitation)", "EUR m", formula=lambda t: (
        f"IF({names['interest_limitation']}=\"True\",MIN({c('borrowing', t)},MAX("
        f"{names['interest_limit_share']}*MAX({c('ebitda', t)},0),{names['interest_safe_harbour']})),"
        f"{c('borrowing', t)})"))
    R.series("int_cf_close", "interest carried forward", "EUR m",
             formula=lambda t: f"{c('borrowing', t)}-{c('deduct', t)}")
    R.series("income", "taxable income", "EUR m",
             formula=lambda t: f"{c('taxable0', t)}-{c('deduct', t)}")
    R.series("loss_used", "tax losses used", "EUR m",
             formula=lambda t: f"MIN({c('pool_open', t)},MAX({c('income', t)},0))")
    R.series("tax_raw", "tax", "EUR m", formula=lambda t: (
        f"{p('tax_rate')}*(MAX({c('income', t)},0)-{c('loss_used', t)})"))
    R.series("pool_close", "tax losses carried forward", "EUR m", formula=lambda t: (
        f"{c('pool_open', t)}-{c('loss_used', t)}+MAX(-{c('income', t)},0)"))
    R.series("cfads_raw", "CFADS of operations (before any default)", "EUR m", formula=lambda t: (
        f"{c('ebitda', t)}-{c('tax_raw', t)}+{c('resale', t)}-{c('plant', t)}"))
    R.series("cash0", "cash before support", "EUR m",
             formula=lambda t: f"{c('cfads_raw', t)}+IF({c('last', t)}=1,{c('terminal', t)},0)")
    R.series("support", "losses with nothing due, funded by equity", "EUR m", formula=lambda t: (
        f"IF(AND({c('alive', t)}=1,OR(AND({c('repaying', t)}=0,{c('last', t)}=0),"
        f"{c('due', t)}<={tol})),MAX(-{c('cash0', t)},0),0)"))
    R.series("cash", "cash available from operations", "EUR m",
             formula=lambda t: f"{c('cash0', t)}+{c('support', t)}+{c('cure', t)}")
    R.series("available", "cash + reserve + trapped cash", "EUR m", formula=lambda t: (
        f"{c('cash', t)}+{c('dsra_open', t)}+{c('trapped_open', t)}"))
    R.series("breach", "covenant breach (DSCR below the default DSCR)", "1/0", fmt="0", total="sum",
             formula=lambda t: (f"IF(AND({c('alive', t)}=1,{c('service', t)}>{tol},"
                                f"{c('cfads_raw', t)}<{names['default_dscr']}*{c('service', t)}),1,0)"))
    R.series("cured", "breach cured with equity (cures left, not the test before)", "1/0", fmt="0",
             total="sum", first=f"=IF(AND({c('breach', 0)}=1,{names['equity_cures_max']}>0),1,0)",
             formula=lambda t: (
                 f"IF(AND({c('breach', t)}=1,SUM({R.col(0)}{R.at['cured']}:{R.col(t - 1)}{R.at['cured']})"
                 f"<{names['equity_cures_max']},{c('cured', t - 1)}=0),1,0)"))
    R.series("cure", "equity cure (up to the default DSCR)", "EUR m", total="sum", formula=lambda t: (
        f"IF({c('cured', t)}=1,{names['default_dscr']}*{c('service', t)}-{c('cfads_raw', t)},0)"))
    R.series("breach_run", "uncured covenant breaches in a row", "tests", fmt="0",
             first=f"=IF(AND({c('breach', 0)}=1,{c('cured', 0)}=0),1,0)",
             formula=lambda t: (f"IF(AND({c('breach', t)}=1,{c('cured', t)}=0),"
                                f"{c('breach_run', t - 1)}+1,0)"))
    R.series("short", "payment default (cash + reserves short of what is due)", "1/0", fmt="0",
             formula=lambda t: f"IF({c('available', t)}<{c('due', t)}-{tol},1,0)")
    R.series("fails", "event of default: lenders accelerate", "1/0", fmt="0", formula=lambda t: (
        f"IF(OR({c('short', t)}=1,AND({p('dscr_trigger')}=1,"
        f"{c('breach_run', t)}>={names['breaches_to_acceleration']})),1,0)"))
    R.series("defaults", "defaults in this period", "1/0", fmt="0",
             formula=lambda t: f"IF(AND({c('alive', t)}=1,{c('fails', t)}=1),1,0)")
    R.series("ok", "serviced normally", "1/0", fmt="0",
             formula=lambda t: f"IF(AND({c('alive', t)}=1,{c('fails', t)}=0),1,0)")

    R.section("Waterfall")
    R.series("s0", "cash after senior debt service", "EUR m",
             formula=lambda t: f"{c('cash', t)}-{c('due', t)}")
    R.series("from_trapped", "shortfall met from trapped cash", "EUR m",
             formula=lambda t: f"MIN({c('trapped_open', t)},MAX(-{c('s0', t)},0))")
    R.series("s1", "after trapped cash", "EUR m", formula=lambda t: f"{c('s0', t)}+{c('from_trapped', t)}")
    R.series("from_dsra", "shortfall met from the reserve", "EUR m",
             formula=lambda t: f"MIN({c('dsra_open', t)},MAX(-{c('s1', t)},0))")
    R.series("s2", "surplus after senior debt", "EUR m",
             formula=lambda t: f"MAX({c('s1', t)}+{c('from_dsra', t)},0)")
    for key, open_, int_, prin, draw in (("new_e", "open_e", "int_e", "sched_e", "eib_draw"),
                                         ("new_c", "open_c", "int_c", "sched_c", "com_draw")):
        R.series(key, f"balance after this period ({key[-1]})", "EUR m", formula=lambda t, o=open_,
                 i=int_, pr=prin, dr=draw: (
                     f"IF({c('capitalise', t)}=1,{c(o, t)}+{c(i, t)},{c(o, t)}"
                     f"-IF({c('last', t)}=1,{c(o, t)},{c(pr, t)}))+{c(dr, t)}"))
    R.series("pay_h", "hardware service paid", "EUR m", formula=lambda t: (
        f"IF({c('last', t)}=1,{c('open_h', t)}*(1+{p('r_h')}),{c('sched_h', t)})"))
    R.series("new_h", "hardware balance after this period", "EUR m", formula=lambda t: (
        f"{c('open_h', t)}*(1+{p('r_h')})-{c('pay_h', t)}+{c('hw_draw', t)}"))

    def target(t: int) -> str:
        if t == n_t - 1:
            return "0"
        n = t + 1
        pe = f"MIN({c('share', n)}*{p('b0_e')},{c('new_e', t)})"
        pc = f"MIN({c('share', n)}*{p('b0_c')},{c('new_c', t)})"
        return (f"{names['dsra_months']}/{names['months_per_year']}*(IF({per(n)}>={p('r0')},"
                f"{c('new_e', t)}*{p('r_e')}+{c('new_c', t)}*{p('r_c')}+{pe}+{pc},0)+MIN({c('hw_sched', n)},"
                f"{c('new_h', t)}*(1+{p('r_h')})))")

    R.series("dsra_target", "reserve target: months of next period's service", "EUR m", formula=target)
    R.series("dsra1", "reserve after draws", "EUR m",
             formula=lambda t: f"{c('dsra_open', t)}-{c('from_dsra', t)}")
    R.series("release", "reserve released", "EUR m",
             formula=lambda t: f"MAX({c('dsra1', t)}-{c('dsra_target', t)},0)")
    R.series("gap", "reserve shortfall", "EUR m",
             formula=lambda t: f"MAX({c('dsra_target', t)}-({c('dsra1', t)}-{c('release', t)}),0)")
    R.series("dsra_equity", "initial reserve funded by equity", "EUR m", formula=lambda t: (
        f"IF(AND({c('repaying', t)}=0,{per(t)}+1={p('r0')}),{c('gap', t)},0)"))
    R.series("s3", "surplus with reserve released", "EUR m",
             formula=lambda t: f"{c('s2', t)}+{c('release', t)}")
    R.series("dsra_topup", "reserve top-up from cash", "EUR m",
             formula=lambda t: f"IF({c('repaying', t)}=1,MIN({c('gap', t)},{c('s3', t)}),0)")
    R.series("s4_dsra", "surplus after the reserve", "EUR m",
             formula=lambda t: f"{c('s3', t)}-{c('dsra_topup', t)}")
    R.series("mra_deposit", "to the maintenance reserve (towards the fleet's cost by its end)", "EUR m",
             total="sum", formula=lambda t: (
                 f"IF(AND({p('mode_cash')}=1,{c('last', t)}=0,{c('fleet_start', t)}>=0),"
                 f"MIN({c('s4_dsra', t)},MAX({c('fleet_cost', t)}*MIN(({per(t)}-{c('fleet_start', t)}+1)"
                 f"/{p('fleet_life')},1)-({c('mra_open', t)}-{c('mra_from', t)}),0)),0)"))
    R.series("s4", "surplus after the reserves", "EUR m",
             formula=lambda t: f"{c('s4_dsra', t)}-{c('mra_deposit', t)}")
    R.series("sub_accrued", "fund loan with this period's interest", "EUR m",
             formula=lambda t: f"{c('open_s', t)}*(1+{p('r_s')})")
    R.series("sub_sched", "fund loan scheduled principal", "EUR m", formula=lambda t: (
        f"IF(AND({c('repaying', t)}=1,{per(t)}-{p('r0')}<{p('n_rep')}),{p('b0_s')}/{p('n_rep')},0)"))
    R.series("sub_due", "fund loan due", "EUR m", formula=lambda t: (
        f"IF({c('last', t)}=1,{c('sub_accrued', t)},MIN({c('sub_accrued', t)},"
        f"{c('open_s', t)}*{p('r_s')}+{c('sub_sched', t)}))"))
    R.series("sub_pay", "fund loan paid", "EUR m", formula=lambda t: (
        f"IF(AND({p('is_sub')}=1,OR({c('repaying', t)}=1,{c('last', t)}=1)),"
        f"MIN({c('s4', t)},{c('sub_due', t)}),0)"))
    R.series("sub_int", "of which interest", "EUR m",
             formula=lambda t: f"MIN({c('sub_pay', t)},{c('open_s', t)}*{p('r_s')})")
    R.series("s5", "cash for equity", "EUR m", formula=lambda t: f"{c('s4', t)}-{c('sub_pay', t)}")
    R.series("new_s", "fund loan after this period", "EUR m", formula=lambda t: (
        f"IF({p('is_sub')}=1,{c('sub_accrued', t)}-{c('sub_pay', t)}+{c('fund_draw', t)},0)"))
    R.series("locked", "lock-up: DSCR below the lock-up level", "1/0", fmt="0", formula=lambda t: (
        f"IF(AND({c('service', t)}>{tol},{c('cfads_raw', t)}<{names['lockup_dscr']}*{c('service', t)},"
        f"{c('last', t)}=0),1,0)"))
    R.series("dist", "distributions before default", "EUR m", formula=lambda t: (
        f"IF({c('locked', t)}=1,0,{c('s5', t)}+{c('trapped_open', t)}-{c('from_trapped', t)})"
        f"+IF({c('last', t)}=1,{c('dsra1', t)}-{c('release', t)}+{c('dsra_topup', t)}"
        f"+{c('dsra_equity', t)}+{c('mra_open', t)}-{c('mra_from', t)}+{c('mra_deposit', t)},0)"))

    R.series("locked_run", "lock-up years in a row", "years", fmt="0", first=f"={c('locked', 0)}",
             formula=lambda t: f"IF({c('locked', t)}=1,{c('locked_run', t - 1)}+1,0)")
    R.series("trapped_pre", "trapped cash before the sweep", "EUR m", formula=lambda t: (
        f"IF({c('locked', t)}=1,{c('trapped_open', t)}-{c('from_trapped', t)}+{c('s5', t)},0)"))
    R.series("sweep", "cash sweep to the senior loans", "EUR m", total="sum", formula=lambda t: (
        f"IF({c('locked', t)}=1,MIN({c('trapped_pre', t)}*IF({c('locked_run', t)}=1,"
        f"{names['cash_sweep_share']},{names['cash_sweep_share_repeat']}),"
        f"{c('new_e', t)}+{c('new_c', t)}),0)"))
    R.series("sweep_e", "of which to the EIB", "EUR m", formula=lambda t: (
        f"IF({c('sweep', t)}>0,IF({names['cash_sweep_to']}=\"eib_first\","
        f"MIN({c('sweep', t)},{c('new_e', t)}),IF({names['cash_sweep_to']}=\"commercial_first\","
        f"{c('sweep', t)}-MIN({c('sweep', t)},{c('new_c', t)}),"
        f"{c('sweep', t)}*{c('new_e', t)}/({c('new_e', t)}+{c('new_c', t)}))),0)"))
    R.series("sweep_c", "of which to the commercial lenders", "EUR m",
             formula=lambda t: f"{c('sweep', t)}-{c('sweep_e', t)}")

    R.section("Closing balances")
    ok = lambda t, x: f"IF({c('ok', t)}=1,{x},0)"  # noqa: E731
    R.series("close_e", "EIB balance", "EUR m", formula=lambda t: ok(t, f"{c('new_e', t)}-{c('sweep_e', t)}"))
    R.series("close_c", "commercial balance", "EUR m",
             formula=lambda t: ok(t, f"{c('new_c', t)}-{c('sweep_c', t)}"))
    R.series("close_h", "hardware loan balance", "EUR m", formula=lambda t: ok(t, c("new_h", t)))
    R.series("close_s", "fund loan balance", "EUR m",
             formula=lambda t: ok(t, f"IF({c('last', t)}=1,0,{c('new_s', t)})"))
    R.series("dsra_close", "reserve balance", "EUR m", formula=lambda t: ok(
        t, f"IF({c('last', t)}=1,0,{c('dsra1', t)}-{c('release', t)}+{c('dsra_topup', t)}"
           f"+{c('dsra_equity', t)})"))
    R.series("mra_close", "maintenance reserve", "EUR m", formula=lambda t: ok(
        t, f"IF({c('last', t)}=1,0,{c('mra_open', t)}-{c('mra_from', t)}+{c('mra_deposit', t)})"))
    R.series("trapped_close", "trapped cash", "EUR m",
             formula=lambda t: ok(t, f"{c('trapped_pre', t)}-{c('sweep', t)}"))
    R.series("alive_close", "not in default at the period end", "1/0", fmt="0",
             formula=lambda t: c("ok", t))
    R.series("debt_balance", "senior debt outstanding", "EUR m", formula=lambda t: (
        f"{c('close_e', t)}+{c('close_c', t)}+{c('close_h', t)}"))

    def cash_gap(t: int) -> str:
        held_before = ("0" if t == 0 else
                       f"{c('dsra_close', t - 1)}+{c('trapped_close', t - 1)}+{c('mra_close', t - 1)}")
        return (f"IF({c('ok', t)}=1,ABS({c('cfads_raw', t)}+IF({c('last', t)}=1,{c('terminal', t)},0)"
                f"+{c('eib_draw', t)}+{c('com_draw', t)}+{c('hw_draw', t)}"
                f"+IF({p('is_equity')}=1,0,{c('fund_draw', t)})+{c('equity_build', t)}"
                f"+{c('support', t)}+{c('cure', t)}+{c('dsra_equity', t)}+{c('equity_refresh', t)}"
                f"-{c('uses', t)}-{c('fees_t', t)}-{c('refresh', t)}"
                f"-{c('eib_interest', t)}-{c('eib_principal', t)}"
                f"-IF({c('capitalise', t)}=1,0,{c('int_c', t)})"
                f"-IF({c('last', t)}=1,{c('open_c', t)},{c('sched_c', t)})-{c('sweep_c', t)}"
                f"-{c('pay_h', t)}-{c('sub_pay', t)}-{c('dist', t)}-{c('dsra_close', t)}"
                f"-{c('trapped_close', t)}-{c('mra_close', t)}+{held_before}),0)")

    R.series("cash_gap", "cash in less cash out (0: the period balances; not tested after a default)",
             "EUR m", formula=cash_gap)

    R.section("Default and recovery")
    R.series("assets", "assets recovered", "EUR m", formula=lambda t: (
        f"IF({c('last', t)}=1,0,({c('fleet_value', t)}+{c('facility_book', t)}*(1-{p('haircut')}))"
        f"*(1-{names['enforcement_cost_share']}))"))
    R.series("pot", "cash, reserves and assets", "EUR m",
             formula=lambda t: (f"MAX({c('available', t)}+{c('mra_open', t)}-{c('mra_from', t)}"
                                f"+{c('assets', t)},0)"))
    R.series("owed_e", "owed to the EIB", "EUR m", formula=lambda t: f"{c('open_e', t)}+{c('int_e', t)}")
    R.series("owed", "owed to senior lenders", "EUR m", formula=lambda t: (
        f"{c('owed_e', t)}+{c('open_c', t)}+{c('int_c', t)}+{c('open_h', t)}*(1+{p('r_h')})"
        f"+{c('hw_draw', t)}"))
    R.series("paid_senior", "paid to senior lenders", "EUR m",
             formula=lambda t: f"MIN({c('pot', t)},{c('owed', t)})")
    R.series("recovery_rate", "senior recovery rate", "share", fmt=PCT,
             formula=lambda t: f"IF({c('owed', t)}>0,{c('paid_senior', t)}/{c('owed', t)},1)")
    R.series("owed_s", "owed to the fund's loan", "EUR m", formula=lambda t: (
        f"{c('open_s', t)}*(1+{p('r_s')})+{c('fund_draw', t)}*{p('is_sub')}"))
    R.series("paid_s", "paid to the fund's loan", "EUR m",
             formula=lambda t: f"MIN({c('pot', t)}-{c('paid_senior', t)},{c('owed_s', t)})")
    R.series("eib_loss", "EIB loss", "EUR m", total="sum", formula=lambda t: (
        f"IF({c('defaults', t)}=1,{c('owed_e', t)}*(1-{c('recovery_rate', t)}),0)"))
    R.series("senior_recovery", "senior recovery", "EUR m", total="sum",
             formula=lambda t: f"IF({c('defaults', t)}=1,{c('paid_senior', t)},0)")
    R.series("residual", "residual to equity", "EUR m", total="sum", formula=lambda t: (
        f"IF({c('defaults', t)}=1,{c('pot', t)}-{c('paid_senior', t)}-{c('paid_s', t)},0)"))

    R.section("Sources and uses at construction (EUR m)")
    R.param("su_facility", "use: facility and grid connection", "EUR m",
            f"=SUM({R.span('uses')})-SUM({R.span('gpu_initial')})")
    R.param("su_gpus", "use: first GPU fleet (GPUs, servers, network)", "EUR m",
            f"=SUM({R.span('gpu_initial')})")
    R.param("su_fees", "use: front-end fees", "EUR m", f"=SUM({R.span('fees_t')})")
    R.param("su_uses", "total uses", "EUR m", f"={p('su_facility')}+{p('su_gpus')}+{p('su_fees')}")
    R.param("su_eib", "source: EIB loan drawn", "EUR m", f"=SUM({R.span('eib_draw')})")
    R.param("su_com", "source: commercial senior loan drawn", "EUR m", f"=SUM({R.span('com_draw')})")
    R.param("su_fund", "source: fund instrument (grant or sub-loan; with an equity fund: in "
            "equity)", "EUR m", f"=IF({p('is_equity')}=1,0,SUM({R.span('fund_draw')}))")
    R.param("su_equity", "source: equity (private, and the fund's if it invests as equity)",
            "EUR m", f"=SUM({R.span('equity_build')})")
    R.param("su_sources", "total sources", "EUR m",
            f"={p('su_eib')}+{p('su_com')}+{p('su_fund')}+{p('su_equity')}")
    R.param("su_idc", "memo: interest capitalised in the senior loans (IDC, not cash)", "EUR m",
            f"=SUM({R.span('idc')})")
    R.param("su_dsra", "memo: initial debt service reserve, funded by equity", "EUR m",
            f"=SUM({R.span('dsra_equity')})")

    R.section("Results of this factory")
    R.series("cfads", "CFADS", "EUR m", total="sum",
             formula=lambda t: f"IF({c('alive', t)}=1,{c('cfads_raw', t)},0)")
    R.series("dscr", "DSCR", "ratio", fmt=RATIO, formula=lambda t: (
        f"IF(AND({c('alive', t)}=1,{c('service', t)}>{tol}),{c('cfads_raw', t)}/{c('service', t)},\"\")"))
    R.series("senior_service", "senior debt service (scheduled, the default year's included)", "EUR m",
             total="sum", formula=lambda t: f"IF({c('alive', t)}=1,{c('service', t)},0)")
    R.series("eib_principal", "EIB principal paid", "EUR m", total="sum", formula=lambda t: ok(
        t, f"IF({c('last', t)}=1,{c('open_e', t)},{c('sched_e', t)})+{c('sweep_e', t)}"))
    R.series("eib_interest", "EIB interest paid", "EUR m", total="sum",
             formula=lambda t: ok(t, f"IF({c('capitalise', t)}=1,0,{c('int_e', t)})"))
    R.series("extra_equity", "equity support, cures and initial reserve", "EUR m", total="sum",
             formula=lambda t: ok(t, f"{c('support', t)}+{c('cure', t)}+{c('dsra_equity', t)}"))
    R.series("distributions", "distributions to equity", "EUR m", total="sum",
             formula=lambda t: f"IF({c('ok', t)}=1,{c('dist', t)},0)+{c('residual', t)}")
    R.series("eq_build_run", "equity for construction (until default)", "EUR m", total="sum",
             formula=lambda t: f"IF({c('alive', t)}=1,{c('equity_build', t)},0)")
    R.series("other", "equity flows after construction", "EUR m", formula=lambda t: (
        f"{c('distributions', t)}-{c('extra_equity', t)}"
        f"-IF({c('alive', t)}=1,{c('equity_refresh', t)},0)"))
    R.series("equity_flow", "equity flow (all shareholders)", "EUR m", total="sum",
             formula=lambda t: f"{c('other', t)}-{c('eq_build_run', t)}")
    R.param("phi", "fund's share of equity", "share", (
        f"=IF(AND({p('is_equity')}=1,SUM({R.span('eq_build_run')})>0),"
        f"SUM({R.span('fund_draw')})/SUM({R.span('eq_build_run')}),0)"), PCT)
    R.series("sub_prin_paid", "fund loan principal received", "EUR m", total="sum", formula=lambda t: (
        f"IF({c('ok', t)}=1,{c('sub_pay', t)}-{c('sub_int', t)},"
        f"IF({c('defaults', t)}=1,{c('paid_s', t)},0))"))
    R.series("fund_flow", "fund flow", "EUR m", total="sum", formula=lambda t: (
        f"-{c('fund_draw', t)}+IF({p('is_equity')}=1,{p('phi')}*{c('other', t)},"
        f"IF({p('is_sub')}=1,IF({c('ok', t)}=1,{c('sub_int', t)},0)+{c('sub_prin_paid', t)},0))"))
    R.series("private_flow", "private equity flow", "EUR m", total="sum", formula=lambda t: (
        f"{c('equity_flow', t)}-IF({p('is_equity')}=1,{c('fund_flow', t)},0)"))
    guess = float(engine_irr(fin["private_equity_flow"][0, f]))
    R.param("irr_guess", "IRR search start (the engine's IRR, rounded)", "1/yr",
            round(guess, 2) if np.isfinite(guess) else 0.1, PCT, True)
    R.param("equity_irr", "private equity IRR", "1/yr", "=" + _irr(R.span("private_flow"), p("irr_guess")),
            PCT)
    flow_row = R.at["private_flow"]
    first, rest = R.c("private_flow", 0), f"{R.col(1)}{flow_row}:{R.col(n_t - 1)}{flow_row}"
    R.param("npv_at_irr", "NPV of the private equity flow at its IRR (about 0; blank: no IRR)",
            "EUR m", f"=IF(ISNUMBER({p('equity_irr')}),{first}+NPV({p('equity_irr')},{rest}),\"\")")
    R.param("equity_npv", "private equity NPV at the hurdle (end of period 0)", "EUR m",
            f"={first}+NPV({names['equity_hurdle_irr']},{rest})")
    R.param("min_dscr", "minimum DSCR", "ratio", f"=IF(COUNT({R.span('dscr')})>0,MIN({R.span('dscr')}),\"\")",
            RATIO)
    R.param("avg_dscr", "average DSCR (years with senior service)", "ratio",
            f"=IF(COUNT({R.span('dscr')})>0,AVERAGE({R.span('dscr')}),\"\")", RATIO)
    R.param("defaulted", "defaulted", "1/0", f"=IF(SUM({R.span('defaults')})>0,1,0)", "0")
    R.param("payment_default", "defaulted on a payment", "1/0",
            f"=IF(SUMPRODUCT({R.span('defaults')},{R.span('short')})>0,1,0)", "0")
    R.param("eib_loss_total", "EIB loss in total", "EUR m", f"=SUM({R.span('eib_loss')})")

    R.flush()
    ws.freeze_panes = ws.cell(5, FIRST_PERIOD_COL)
    ws.column_dimensions["A"].width = 52
    ws.column_dimensions["B"].width = 9
    ws.column_dimensions["C"].width = 14
    for t in range(n_t):
        ws.column_dimensions[R.col(t)].width = 11
    return title, R


def _inputs_sheet(wb: Workbook, sc: Scenario) -> dict[str, str]:
    """Every assumption with unit, description and source. Returns key -> workbook name of the
    inputs formulas use (a missing key is a KeyError while building, not a broken workbook)."""
    ws = wb.create_sheet("Inputs")
    for col, head in enumerate(["field", "value", "central value", "unit", "description", "source"], 1):
        cell = ws.cell(1, col, head)
        cell.font, cell.fill = HEADER, HEADER_FILL
    names: dict[str, str] = {}
    switches: dict[tuple[str, ...], DataValidation] = {}  # one drop-down list per set of choices

    def define(name: str, row: int) -> None:
        wb.defined_names[name] = DefinedName(name, attr_text=f"{quote_sheetname('Inputs')}!$B${row}")
        names[name] = name

    r = 2
    wanted = {
        "fund.sub_loan_rate": "sub_loan_rate",
        "private.hardware_loan_tenor_years": "hardware_loan_tenor_years",
        "eib.upfront_fee": "upfront_fee", "private.commercial_upfront_fee": "commercial_upfront_fee",
        "fund.instrument": "fund_instrument", "private.refresh_funding": "refresh_funding",
        "eib.default_trigger": "default_trigger", "eib.dsra_months": "dsra_months",
        "eib.breaches_to_acceleration": "breaches_to_acceleration", "eib.target_dscr": "target_dscr",
        "tax.interest_limitation": "interest_limitation", "eib.equity_cures_max": "equity_cures_max",
        "eib.cash_sweep_share": "cash_sweep_share", "eib.cash_sweep_share_repeat": "cash_sweep_share_repeat",
        "eib.cash_sweep_to": "cash_sweep_to",
        "tax.interest_limit_share_of_ebitda": "interest_limit_share",
        "tax.interest_safe_harbour_eur_m": "interest_safe_harbour",
        "costs.facility_life_years": "facility_life_years",
        "eib.availability_years": "availability_years",
        "eib.lockup_dscr": "lockup_dscr", "eib.default_dscr": "default_dscr",
        "eib.enforcement_cost_share": "enforcement_cost_share",
        "private.equity_hurdle_irr": "equity_hurdle_irr",
    }
    for i in range(sc.n_factories):
        wanted[f"factories[{i}].tax_rate"] = f"tax_rate_{i}"
    for row in field_rows(sc):
        _text(ws.cell(r, 1), row.path)
        value = row.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            _text(ws.cell(r, 2), row.display_value)
        else:
            ws.cell(r, 2, float(value))
        central = getattr(value, "central", None)
        if central is not None and not isinstance(value, int | float):
            ws.cell(r, 3, float(central))
        for col in (2, 3):
            ws.cell(r, col).font, ws.cell(r, col).fill = INPUT, INPUT_FILL
        _text(ws.cell(r, 4), row.unit)
        _text(ws.cell(r, 5), row.description)
        _text(ws.cell(r, 6), row.source)
        if row.path in wanted:
            define(wanted[row.path], r)
        if row.choices:  # a switch: a drop-down of the values it allows, nothing else accepted
            if row.choices not in switches:
                dv = DataValidation(type="list", formula1='"' + ",".join(row.choices) + '"',
                                    allow_blank=False, showErrorMessage=True,
                                    errorTitle="Not an allowed value",
                                    error=f"Choose one of: {', '.join(row.choices)}")
                ws.add_data_validation(dv)
                switches[row.choices] = dv
            switches[row.choices].add(ws.cell(r, 2))
        r += 1
    constants = (
        ("tolerance", "tolerance of payment tests", TOLERANCE, "EUR m"),
        ("check_tolerance", "tolerance of the checks (relative, or absolute below 1)", CHECK_TOLERANCE,
         "share"),
        ("months_per_year", "months per year", 12, "months"),
        ("mwh_per_gwh_k", "GWh x EUR/MWh per EUR m (1,000 MWh per GWh / 1,000,000 EUR per EUR m)",
         1000, "ratio"),
    )
    ws.cell(r + 1, 1, "Constants").font = SECTION
    for k, (name, label, value, unit) in enumerate(constants, r + 2):
        ws.cell(k, 1, label)
        ws.cell(k, 2, value).font = INPUT
        ws.cell(k, 4, unit)
        define(name, k)
    ws.freeze_panes = "B2"
    for col, width in zip("ABCDEF", (40, 22, 14, 16, 60, 70), strict=True):
        ws.column_dimensions[col].width = width
    return names


def _timeline_sheet(wb: Workbook, sc: Scenario) -> None:
    ws = wb.create_sheet("Timeline")
    n_t = sc.timeline.horizon_years
    ws.cell(1, 1, "Timeline").font = SECTION
    ws.cell(3, 1, "period")
    ws.cell(3, 2, "last period")
    ws.cell(3, 3, n_t - 1)
    ws.cell(4, 1, "year")
    ws.cell(4, 2, "first year")
    ws.cell(4, 3, sc.timeline.start_year).font = INPUT
    for t in range(n_t):
        col = get_column_letter(FIRST_PERIOD_COL + t)
        before = get_column_letter(FIRST_PERIOD_COL + t - 1)
        ws.cell(3, FIRST_PERIOD_COL + t, t if t == 0 else f"={before}3+1")
        ws.cell(4, FIRST_PERIOD_COL + t, f"=$C$4+{col}3")
    ws.column_dimensions["A"].width = 48


def _timeline_flags(wb: Workbook, sc: Scenario, sheets) -> None:
    """Each factory's flags on the Timeline, linked to its sheet (each site has its own dates)."""
    ws = wb["Timeline"]
    n_t = sc.timeline.horizon_years
    ws.cell(6, 1, "Flags by factory (1 = yes), from each factory's sheet").font = SECTION
    r = 7
    for title, rows in sheets:
        for key, what in (("capitalise", "construction and grace (interest capitalised)"),
                          ("repaying", "repayment")):
            _text(ws.cell(r, 1), f"{title}: {what}")
            for t in range(n_t):
                ws.cell(r, FIRST_PERIOD_COL + t, f"={quote_sheetname(title)}!{rows.c(key, t)}")
            r += 1


def export_excel(scenario: Scenario, path: str | os.PathLike[str], results: Results | None = None,
                 selected: Sequence[str] = ("p50", "p10", "worst")) -> Path:
    """Write the workbook to ``path`` atomically (temporary file, then rename).

    Without ``results`` the factory sheets model the base case; with ``results`` they model
    the first of ``selected`` (``p50`` by default) and the Monte Carlo sheet lists every
    selected path with why it was chosen. Returns the path written."""
    if not isinstance(scenario, Scenario):
        raise ScenarioError(Problem("scenario", type(scenario).__name__, "must be a finmodel.Scenario"),
                            "export_excel")
    if results is not None and results.scenario != scenario:
        raise ScenarioError(Problem("results", results.scenario.name,
                                    f"were run on another scenario than {scenario.name!r}"), "export_excel")
    target = Path(path)
    if target.suffix.lower() != ".xlsx":
        raise ScenarioError(Problem("path", str(path), "must end in .xlsx"), "export_excel")
    terms = results.terms if results is not None and results.terms is not None else close_deal(scenario)
    picks = select_paths(results, selected) if results is not None else {
        "base": (-1, "base case: every input at its central value")}
    first_path = next(iter(picks.values()))[0]
    pm = _path_model(scenario, terms, results, first_path)

    wb = Workbook()
    cover = wb.active
    cover.title = "Cover"
    names = _inputs_sheet(wb, scenario)
    _timeline_sheet(wb, scenario)
    sheets = [_factory_sheet(wb, scenario, terms, pm, f, title, names)
              for f, title in enumerate(sheet_titles(scenario))]
    _timeline_flags(wb, scenario, sheets)
    _portfolio_sheet(wb, scenario, pm, sheets)
    check_cell = _checks_sheet(wb, scenario, pm, sheets)
    _monte_carlo_sheet(wb, scenario, results, picks)
    _cover_sheet(cover, scenario, results, picks, check_cell, sheets)
    for ws in wb.worksheets:
        _print_setup(ws, scenario.name)

    return write_atomic(target, wb.save)


def _print_setup(ws, scenario_name: str) -> None:
    """Landscape A4, fit to one page wide, the first row and column repeated on every page, the
    sheet and scenario in the header and page numbers in the footer."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"
    ws.print_title_cols = "A:A"
    ws.oddHeader.left.text = "&A"  # the sheet's name
    # scenario names are user text: "&" starts a header code, so it is doubled
    ws.oddHeader.right.text = "finmodel: " + scenario_name.replace("&", "&&")
    ws.oddFooter.center.text = "Page &P of &N"


RESERVED_SHEETS = ("Cover", "Inputs", "Timeline", "Portfolio", "Checks", "Engine", "Monte Carlo",
                   "History")  # the workbook's own sheets, and the name Excel reserves


def sheet_titles(sc: Scenario) -> list[str]:
    """The factory sheets' names, in factory order (see ``_sheet_title``)."""
    used: set[str] = set()
    return [_sheet_title(fac.name, f, used) for f, fac in enumerate(sc.factories)]


def _sheet_title(name: str, i: int, used: set[str]) -> str:
    """A valid sheet name for factory ``i``, unique in ``used`` (casefolded names, updated) the
    way Excel compares them, without regard to case: no []:*?/\\' characters, no leading
    formula character, at most 31 characters, never a reserved sheet's name in any case."""
    clean = "".join(ch for ch in name if ch not in "[]:*?/\\'" and ch.isprintable())
    clean = clean.lstrip("=+-@ ").strip() or f"Factory {i + 1}"
    title = clean[:28]
    taken = used | {s.casefold() for s in RESERVED_SHEETS}
    if title.casefold() in taken:
        title = f"{clean[:24]} ({i + 1})"
    used.add(title.casefold())
    return title


def _ref(title: str, rows: _Rows, key: str, t: int | None = None) -> str:
    cell = rows.p(key) if t is None else rows.c(key, t)
    return f"{quote_sheetname(title)}!{cell}"


PORTFOLIO_ROWS = (("revenue", "revenue"), ("ebitda", "EBITDA"), ("cfads", "CFADS"),
                  ("senior_service", "senior debt service"), ("debt_balance", "senior debt outstanding"),
                  ("distributions", "distributions to equity"), ("private_flow", "private equity flow"),
                  ("fund_flow", "fund flow"), ("eib_loss", "EIB loss"))


def _irr(span: str, guess: str) -> str:
    """IRR of a row from a search start, blank where it finds no rate above -100% (a root
    below -100% is no return; Excel's and LibreOffice's IRR can land on one)."""
    return f"IFERROR(IF(IRR({span},{guess})>-1,IRR({span},{guess}),\"\"),\"\")"


def _portfolio_sheet(wb: Workbook, sc: Scenario, pm: _PathModel, sheets) -> None:
    ws = wb.create_sheet("Portfolio", 3)
    n_t = sc.timeline.horizon_years
    ws.cell(1, 1, "Portfolio: factories summed with formulas").font = SECTION
    for t in range(n_t):
        ws.cell(4, FIRST_PERIOD_COL + t, f"=Timeline!{get_column_letter(FIRST_PERIOD_COL + t)}4")
    R = _Rows(ws, n_t, 6)
    for key, label in PORTFOLIO_ROWS:
        R.series(key, label, "EUR m", total="sum", formula=lambda t, key=key: "+".join(
            _ref(title, rows, key, t) for title, rows in sheets))
    R.series("dscr", "portfolio DSCR", "ratio", fmt=RATIO, formula=lambda t: (
        f"IF({R.c('senior_service', t)}>0,{R.c('cfads', t)}/{R.c('senior_service', t)},\"\")"))
    guess = float(engine_irr(pm.model.portfolio("private_equity_flow")[0]))
    R.param("irr_guess", "IRR search start (the engine's IRR, rounded)", "1/yr",
            round(guess, 2) if np.isfinite(guess) else 0.1, PCT, True)
    R.param("equity_irr", "portfolio private equity IRR", "1/yr",
            "=" + _irr(R.span("private_flow"), R.p("irr_guess")), PCT)
    R.flush()
    R.section("Fund allocation and leverage at construction")
    ws.cell(R.row, 1, "factory")
    for col, head in enumerate(["fund EUR m", "EIB EUR m", "commercial EUR m", "private equity EUR m",
                                "equity and commercial debt per fund EUR"], 2):
        ws.cell(R.row, col, head).font = SECTION
    R.row += 1
    first = R.row
    for title, rows in sheets:
        _text(ws.cell(R.row, 1), title)
        ws.cell(R.row, 2, f"=SUM({quote_sheetname(title)}!{rows.span('fund_draw')})")
        ws.cell(R.row, 3, f"=SUM({quote_sheetname(title)}!{rows.span('eib_draw')})")
        ws.cell(R.row, 4, f"=SUM({quote_sheetname(title)}!{rows.span('com_draw')})")
        ws.cell(R.row, 5, f"=SUM({quote_sheetname(title)}!{rows.span('eq_build_run')})"
                          f"-{_ref(title, rows, 'is_equity')}*B{R.row}")
        ws.cell(R.row, 6, f"=IF(B{R.row}>0,(D{R.row}+E{R.row})/B{R.row},\"\")")
        for col in range(2, 7):
            ws.cell(R.row, col).number_format = NUM
        R.row += 1
    ws.cell(R.row, 1, "portfolio").font = SECTION
    for col in "BCDE":
        ws[f"{col}{R.row}"] = f"=SUM({col}{first}:{col}{R.row - 1})"
        ws[f"{col}{R.row}"].number_format = NUM
    ws[f"F{R.row}"] = f"=IF(B{R.row}>0,(D{R.row}+E{R.row})/B{R.row},\"\")"
    ws[f"F{R.row}"].number_format = NUM
    ws.freeze_panes = ws.cell(5, FIRST_PERIOD_COL)
    ws.column_dimensions["A"].width = 40


def _checks_sheet(wb: Workbook, sc: Scenario, pm: _PathModel, sheets) -> str:
    """Checks per factory (0 = OK): sources = uses, cash conserved, debt repaid or default
    flagged, and the formulas against the engine. Returns the master check's reference."""
    ws = wb.create_sheet("Checks")
    n_t = sc.timeline.horizon_years
    heads = ["factory", "sources - uses", "cash conserved (max gap)", "debt repaid or default",
             "CFADS vs engine", "debt balance vs engine", "DSCR vs engine", "equity IRR vs engine",
             "EIB loss vs engine", "integrity", "engine (exported case)"]
    for col, head in enumerate(heads, 1):
        cell = ws.cell(1, col, head)
        cell.font, cell.fill = HEADER, HEADER_FILL
    engine = wb.create_sheet("Engine")
    engine.cell(1, 1, "Engine values of the same path, for the checks (values, not formulas)").font = SECTION
    er = 3
    m = pm.model
    rel = "check_tolerance"
    for f, (title, rows) in enumerate(sheets):
        r = f + 2
        q = quote_sheetname(title)
        _text(ws.cell(r, 1), title)

        def span(key: str, q: str = q, rows: _Rows = rows) -> str:
            return f"{q}!{rows.span(key)}"

        # sources = uses over construction: draws + equity = uses + fees
        ws.cell(r, 2, f"=ROUND(SUM({span('eib_draw')})+SUM({span('com_draw')})+SUM({span('fund_draw')})"
                      f"+SUM({span('equity_build')})-IF({q}!{rows.p('is_equity')}=1,SUM({span('fund_draw')}),0)"
                      f"-SUM({span('uses')})-SUM({span('fees_t')}),6)")
        # cash: in = out in every period that is not a default (a row on the factory sheet)
        ws.cell(r, 3, f"=ROUND(MAX({span('cash_gap')}),6)")
        ws.cell(r, 4, f"=IF(OR({q}!{rows.c('debt_balance', n_t - 1)}=0,{q}!{rows.p('defaulted')}=1),0,1)")
        # engine values
        values = {
            "cfads": m["cfads"][0, f], "debt_balance": m["debt_balance"][0, f],
            "dscr": m["dscr"][0, f],
        }
        for col, key in ((5, "cfads"), (6, "debt_balance"), (7, "dscr")):
            _text(engine.cell(er, 1), f"{title}: {key}")
            for t in range(n_t):
                v = values[key][t]
                engine.cell(er, FIRST_PERIOD_COL + t, float(v) if np.isfinite(v) else None)
            # the next row flags each period where the sheet and the engine differ
            _text(engine.cell(er + 1, 1), f"{title}: {key} differs (1 = yes)")
            for t in range(n_t):
                a = f"{q}!{rows.c(key, t)}"
                b = f"{get_column_letter(FIRST_PERIOD_COL + t)}{er}"
                engine.cell(er + 1, FIRST_PERIOD_COL + t,
                            f"=IF(AND(ISNUMBER({a}),ISNUMBER({b})),IF(ABS({a}-{b})>{rel}*MAX(1,ABS({b})),1,0),"
                            f"IF(ISNUMBER({a})=ISNUMBER({b}),0,1))")
            last_col = get_column_letter(FIRST_PERIOD_COL + n_t - 1)
            ws.cell(r, col, f"=SUM(Engine!{get_column_letter(FIRST_PERIOD_COL)}{er + 1}:{last_col}{er + 1})")
            er += 2
        irr = float(engine_irr(m.financing["private_equity_flow"][0, f]))
        _text(engine.cell(er, 1), f"{title}: equity IRR")
        engine.cell(er, 3, irr if np.isfinite(irr) else None)
        a = f"{q}!{rows.p('equity_irr')}"
        e = f"Engine!$C${er}"
        ws.cell(r, 8, f"=IF(ISNUMBER({e}),IF(ISNUMBER({a}),IF(ABS({a}-{e})>{rel},1,0),1),0)")
        er += 1
        _text(engine.cell(er, 1), f"{title}: EIB loss")
        engine.cell(er, 3, float(m.financing.eib_loss[0, f]))
        e = f"Engine!$C${er}"
        ws.cell(r, 9, f"=IF(ABS({q}!{rows.p('eib_loss_total')}-{e})>{rel}*MAX(1,ABS({e})),1,0)")
        er += 1
        # integrity holds for any input; agreement with the engine only for the exported case
        ws.cell(r, 10, f"=IF(AND(ABS(B{r})<{rel},C{r}<{rel},D{r}=0),\"OK\",\"ERROR\")")
        ws.cell(r, 11, f"=IF(SUM(E{r}:I{r})=0,\"agrees\",\"differs\")")
        for col in range(2, 10):
            ws.cell(r, col).fill = CHECK_FILL
    last = len(sheets) + 1
    master_row = last + 2
    ws.cell(master_row, 1, "master check").font = SECTION
    ws.cell(master_row, 10, f"=IF(COUNTIF(J2:J{last},\"OK\")={len(sheets)},\"OK\",\"ERROR\")").font = SECTION
    ws.cell(master_row, 11, f"=IF(COUNTIF(K2:K{last},\"agrees\")={len(sheets)},\"agrees\","
                            f"\"differs\")").font = SECTION
    ws.cell(master_row + 1, 1, "The master check tests integrity (sources = uses, cash conserved, debt "
                               "repaid or default recorded) and holds for any input; the engine column "
                               "compares with the engine's values of the exported case, for information.")
    ws.column_dimensions["A"].width = 30
    for col in "BCDEFGHIJK":
        ws.column_dimensions[col].width = 16
    return f"Checks!$J${master_row}"


def _monte_carlo_sheet(wb: Workbook, sc: Scenario, results: Results | None,
                       picks: dict[str, tuple[int, str]]) -> None:
    ws = wb.create_sheet("Monte Carlo")
    ws.cell(1, 1, "Monte Carlo results (values)").font = SECTION
    if results is None:
        ws.cell(3, 1, "No simulation was exported: the factory sheets model the base case. Pass "
                      "results=finmodel.simulate(...) to include the distributions.")
        return
    summary = results.summary()
    cols = ["unit", "mean", "std", "p5", "p10", "p50", "p90", "p95"]
    ws.cell(3, 1, "kpi").font = SECTION
    for j, col in enumerate(cols, 2):
        ws.cell(3, j, col).font = SECTION
    for i, (kpi, row) in enumerate(summary[cols].iterrows(), 4):
        ws.cell(i, 1, kpi)
        ws.cell(i, 2, row["unit"])
        for j, col in enumerate(cols[1:], 3):
            v = row[col]
            ws.cell(i, j, float(v) if np.isfinite(v) else None).number_format = "#,##0.0000"
    r = 4 + len(summary) + 2
    ws.cell(r, 1, "Selected paths").font = SECTION
    for j, head in enumerate(["selection", "path", "why", "equity IRR", "EIB loss EUR m",
                              "any payment default"], 1):
        ws.cell(r + 1, j, head).font = SECTION
    kpis = results.path_kpis
    for i, (name, (p, why)) in enumerate(picks.items(), r + 2):
        ws.cell(i, 1, name)
        ws.cell(i, 2, "base case" if p < 0 else p)
        ws.cell(i, 3, why)
        if p >= 0:
            ws.cell(i, 4, float(kpis.loc[p, "equity_irr"])).number_format = PCT
            ws.cell(i, 5, float(kpis.loc[p, "eib_loss_eur_m"])).number_format = NUM
            ws.cell(i, 6, float(kpis.loc[p, "any_payment_default"]))
    ws.cell(r + 2 + len(picks), 1, f"The factory sheets model the {next(iter(picks))} path.")
    # histogram of the portfolio equity IRR
    h = r + 4 + len(picks)
    x = kpis["equity_irr"].to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    counts, edges = np.histogram(np.clip(x, -0.5, 0.5), bins=20, range=(-0.5, 0.5))
    ws.cell(h, 1, "Histogram of portfolio equity IRR (clipped to +-50%)").font = SECTION
    ws.cell(h + 1, 1, "bin from")
    ws.cell(h + 1, 2, "paths")
    for k, count in enumerate(counts):
        ws.cell(h + 2 + k, 1, float(edges[k])).number_format = PCT
        ws.cell(h + 2 + k, 2, int(count))
    chart = BarChart()
    chart.title = "Portfolio equity IRR"
    chart.y_axis.title = "paths"
    chart.add_data(Reference(ws, min_col=2, min_row=h + 1, max_row=h + 1 + len(counts)),
                   titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=h + 2, max_row=h + 1 + len(counts)))
    ws.add_chart(chart, f"E{h}")
    ws.column_dimensions["A"].width = 38
    ws.column_dimensions["C"].width = 60


DASHBOARD = (  # (factory sheet row, heading, number format)
    ("min_dscr", "minimum DSCR", RATIO), ("avg_dscr", "average DSCR", RATIO),
    ("headroom", "headroom to the default covenant", RATIO), ("equity_irr", "private equity IRR", PCT),
    ("su_eib", "EIB drawn, EUR m", NUM), ("eib_loss_total", "EIB loss, EUR m", NUM),
    ("defaulted", "defaulted (1/0)", "0"),
)


def _dashboard(ws, results: Results | None, sheets, r: int) -> None:
    """The lender's view of the modelled path, per factory (formulas on the factory sheets),
    and the simulation's credit figures when there are results."""
    ws.cell(r, 1, "Dashboard: the modelled path").font = SECTION
    ws.cell(r + 1, 1, "factory").font = HEADER
    for k, (_, heading, _) in enumerate(DASHBOARD, 2):
        ws.cell(r + 1, k, heading).font = HEADER
    for i, (title, rows) in enumerate(sheets, r + 2):
        _text(ws.cell(i, 1), title)
        for k, (key, _, fmt) in enumerate(DASHBOARD, 2):
            if key == "headroom":  # blank where the site never serviced debt
                ref = _ref(title, rows, "min_dscr")
                formula = f"=IF(ISNUMBER({ref}),{ref}-default_dscr,\"\")"
            else:
                formula = f"={_ref(title, rows, key)}"
            ws.cell(i, k, formula).number_format = fmt
    r += 3 + len(sheets)
    if results is not None and results.method != "base":
        ws.cell(r, 1, f"Simulation ({results.n_paths:,} paths)").font = SECTION
        summary = results.summary()
        for j, (kpi, label, fmt) in enumerate((
                ("any_payment_default", "P(payment default, any site)", PCT),
                ("any_eib_loss", "P(EIB loss, any site)", PCT),
                ("eib_loss_eur_m", "EIB expected loss, EUR m", NUM),
                ("equity_irr", "median portfolio equity IRR", PCT)), r + 1):
            ws.cell(j, 1, label)
            stat = "p50" if kpi == "equity_irr" else "mean"
            ws.cell(j, 2, float(summary.loc[kpi, stat])).number_format = fmt


def _cover_sheet(ws, sc: Scenario, results: Results | None, picks, check_cell: str, sheets) -> None:
    from finmodel import __version__

    ws.cell(1, 1, "finmodel: AI gigafactory investment and financing model").font = Font(bold=True, size=14)
    rows = [
        ("scenario", sc.name), ("description", sc.description),
        ("date", dt.date.today().isoformat()), ("finmodel version", __version__),
        ("paths", results.n_paths if results is not None else "base case only"),
        ("seed", results.seed if results is not None else ""),
        ("method", results.method if results is not None else "base"),
        ("path in the factory sheets", f"{next(iter(picks))}: {next(iter(picks.values()))[1]}"),
    ]
    for i, (label, value) in enumerate(rows, 3):
        ws.cell(i, 1, label).font = SECTION
        if isinstance(value, str):
            _text(ws.cell(i, 2), value)
        else:
            ws.cell(i, 2, value)
    r = 3 + len(rows) + 1
    ws.cell(r, 1, "master check").font = SECTION
    ws.cell(r, 2, f"={check_cell}").font = SECTION
    ws.cell(r + 1, 1, "engine reconciliation")
    ws.cell(r + 1, 2, f"={check_cell.replace('$J$', '$K$')}")
    ws.cell(r + 2, 1, "Conventions: EUR millions nominal, annual periods, flows at period ends; "
                      "inputs in blue on yellow, calculations in black; every calculation is a formula.")
    _dashboard(ws, results, sheets, r + 4)
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 100
    ws["B4"].alignment = Alignment(wrap_text=True)

