"""Portfolio, Checks, Engine, Monte Carlo and Cover sheets, and the print setup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation

from finmodel.engine import Model
from finmodel.excel.inputs import _Case
from finmodel.excel.layout import (
    CHECK_FILL,
    FIRST_PERIOD_COL,
    HEADER,
    HEADER_FILL,
    INPUT,
    INPUT_FILL,
    NUM,
    PCT,
    RATIO,
    SECTION,
    _choose_case,
    _choose_refs,
    _guess,
    _irr,
    _ref,
    _Rows,
    _text,
)
from finmodel.metrics import irr as engine_irr
from finmodel.results import Results
from finmodel.scenario.model import Scenario


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



PORTFOLIO_ROWS = (("revenue", "revenue"), ("ebitda", "EBITDA"), ("cfads", "CFADS"),
                  ("senior_service", "senior debt service"), ("debt_balance", "senior debt outstanding"),
                  ("distributions", "distributions to equity"), ("private_flow", "private equity flow"),
                  ("fund_flow", "fund flow"), ("eib_loss", "EIB loss"))



def _portfolio_sheet(wb: Workbook, sc: Scenario, models: Sequence[Model], sheets) -> None:
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
    R.param("irr_guess", "IRR search start (the engine's IRR of each case, rounded)", "1/yr",
            _choose_case([_guess(m.portfolio("private_equity_flow")[0]) for m in models]), PCT)
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


def _checks_sheet(wb: Workbook, sc: Scenario, models: Sequence[Model], sheets) -> str:
    """Checks per factory (0 = OK): sources = uses, cash conserved, debt repaid or default
    flagged, and the formulas against the engine's values of the selected case (the Engine
    sheet holds every case's). Returns the master check's reference."""
    ws = wb.create_sheet("Checks")
    n_t = sc.timeline.horizon_years
    heads = ["factory", "sources - uses", "cash conserved (max gap)", "debt repaid or default",
             "CFADS vs engine", "debt balance vs engine", "DSCR vs engine", "equity IRR vs engine",
             "EIB loss vs engine", "integrity", "engine (selected case)"]
    for col, head in enumerate(heads, 1):
        cell = ws.cell(1, col, head)
        cell.font, cell.fill = HEADER, HEADER_FILL
    engine = wb.create_sheet("Engine")
    engine.cell(1, 1, "The engine's values of each case, for the checks (values, not formulas); "
                      "the selected case's row first").font = SECTION
    er = 3
    rel = "check_tolerance"
    last_col = get_column_letter(FIRST_PERIOD_COL + n_t - 1)
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
        for col, key in ((5, "cfads"), (6, "debt_balance"), (7, "dscr")):
            selected = er
            _text(engine.cell(er, 1), f"{title}: {key}, selected case")
            for k, m in enumerate(models):
                row = er + 1 + k
                _text(engine.cell(row, 1), f"{title}: {key}, case {k + 1}")
                v = m[key][0, f]
                for t in range(n_t):
                    engine.cell(row, FIRST_PERIOD_COL + t, float(v[t]) if np.isfinite(v[t]) else None)
            differs = er + 1 + len(models)
            _text(engine.cell(differs, 1), f"{title}: {key} differs (1 = yes)")
            for t in range(n_t):
                col_t = get_column_letter(FIRST_PERIOD_COL + t)
                cases = [f"{col_t}{er + 1 + k}" for k in range(len(models))]
                engine.cell(selected, FIRST_PERIOD_COL + t, _choose_refs(cases))
                a, b = f"{q}!{rows.c(key, t)}", f"{col_t}{selected}"
                engine.cell(differs, FIRST_PERIOD_COL + t,
                            f"=IF(AND(ISNUMBER({a}),ISNUMBER({b})),IF(ABS({a}-{b})>{rel}*MAX(1,ABS({b})),1,0),"
                            f"IF(ISNUMBER({a})=ISNUMBER({b}),0,1))")
            first_col = get_column_letter(FIRST_PERIOD_COL)
            ws.cell(r, col, f"=SUM(Engine!{first_col}{differs}:{last_col}{differs})")
            er = differs + 1

        irr_cell, loss_cell = f"{q}!{rows.p('equity_irr')}", f"{q}!{rows.p('eib_loss_total')}"
        irrs = [float(engine_irr(m.financing["private_equity_flow"][0, f])) for m in models]
        losses = [float(m.financing.eib_loss[0, f]) for m in models]
        for col, label, values in ((8, "equity IRR", irrs), (9, "EIB loss", losses)):
            _text(engine.cell(er, 1), f"{title}: {label} (selected case; each case from column D)")
            for k, v in enumerate(values):
                engine.cell(er, FIRST_PERIOD_COL + k, v if np.isfinite(v) else None)
            engine.cell(er, 3, _choose_refs([f"{get_column_letter(FIRST_PERIOD_COL + k)}{er}"
                                             for k in range(len(values))]))
            e = f"Engine!$C${er}"
            differs = (f"=IF(ISNUMBER({e}),IF(ISNUMBER({irr_cell}),IF(ABS({irr_cell}-{e})>{rel},1,0),1),0)"
                       if col == 8 else f"=IF(ABS({loss_cell}-{e})>{rel}*MAX(1,ABS({e})),1,0)")
            ws.cell(r, col, differs)
            er += 1
        # integrity holds for any input; agreement with the engine only for an exported case
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
    ("headroom", "headroom to the default covenant", RATIO),
    ("llcr_r0", "LLCR at the first repayment (EIB and commercial)", RATIO),
    ("project_irr", "project IRR", PCT), ("equity_irr", "private equity IRR", PCT),
    ("su_eib", "EIB drawn, EUR m", NUM), ("eib_loss_total", "EIB loss, EUR m", NUM),
    ("defaulted", "defaulted (1/0)", "0"),
)


def _dashboard(ws, results: Results | None, sheets, r: int) -> None:
    """The lender's view of the modelled path, per factory (formulas on the factory sheets),
    and the simulation's credit figures when there are results."""
    ws.cell(r, 1, "Dashboard: the selected case").font = SECTION
    ws.cell(r + 1, 1, "factory").font = HEADER
    for k, (_, heading, _) in enumerate(DASHBOARD, 2):
        ws.cell(r + 1, k, heading).font = HEADER
    for i, (title, rows) in enumerate(sheets, r + 2):
        _text(ws.cell(i, 1), title)
        for k, (key, _, fmt) in enumerate(DASHBOARD, 2):
            if key == "headroom":  # blank where the site never serviced debt
                ref = _ref(title, rows, "min_dscr")
                formula = f"=IF(ISNUMBER({ref}),{ref}-eib_default_dscr,\"\")"
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


def _cover_sheet(ws, sc: Scenario, results: Results | None, cases: Sequence[_Case], shown: int,
                 check_cell: str, sheets) -> None:
    from finmodel import __version__

    ws.cell(1, 1, "finmodel: AI gigafactory investment and financing model").font = Font(bold=True, size=14)
    rows = [
        ("scenario", sc.name), ("description", sc.description),
        ("date", dt.date.today().isoformat()), ("finmodel version", __version__),
        ("paths", results.n_paths if results is not None else "base case only"),
        ("seed", results.seed if results is not None else ""),
        ("method", results.method if results is not None else "base"),
    ]
    for i, (label, value) in enumerate(rows, 3):
        ws.cell(i, 1, label).font = SECTION
        if isinstance(value, str):
            _text(ws.cell(i, 2), value)
        else:
            ws.cell(i, 2, value)
    r = 3 + len(rows)
    ws.cell(r, 1, "case on the factory sheets").font = SECTION
    switch = ws.cell(r, 2, cases[shown].name)
    switch.font, switch.fill = INPUT, INPUT_FILL
    choices = ",".join(case.name for case in cases)
    dv = DataValidation(type="list", formula1=f'"{choices}"', allow_blank=False, showErrorMessage=True,
                        errorTitle="Not a case of this workbook", error=f"Choose one of: {choices}")
    ws.add_data_validation(dv)
    dv.add(switch)
    ws.parent.defined_names["selected_case"] = DefinedName("selected_case", attr_text=f"Cover!$B${r}")
    ws.cell(r + 1, 1, "why this case")
    ws.cell(r + 1, 2, "=INDEX(Paths!$D$5:$" + get_column_letter(3 + len(cases)) + "$5,1,case_index)")
    r += 3
    ws.cell(r, 1, "master check").font = SECTION
    ws.cell(r, 2, f"={check_cell}").font = SECTION
    ws.cell(r + 1, 1, "engine reconciliation")
    ws.cell(r + 1, 2, f"={check_cell.replace('$J$', '$K$')}")
    ws.cell(r + 2, 1, "Conventions: EUR millions nominal, annual periods, flows at period ends; "
                      "inputs in blue on yellow, calculations in black; every calculation is a formula. "
                      "Choose the case above (base case, or a simulated path) and recalculate.")
    _dashboard(ws, results, sheets, r + 4)
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 100
    ws["B4"].alignment = Alignment(wrap_text=True)
