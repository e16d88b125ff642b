"""Excel export: recalculated by LibreOffice Calc, the workbook's formulas reproduce the engine."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from conftest import ROOT, require_tool

import finmodel
from finmodel import excel
from finmodel.cli import main
from finmodel.engine import run
from finmodel.metrics import irr, npv
from finmodel.results import select_paths

REL = 1e-6
HOSTILE = ROOT / "tests" / "data" / "hostile"


def recalc(files: list[Path], out_dir: Path) -> dict[str, openpyxl.Workbook]:
    """Recalculate with headless LibreOffice Calc; read the values back."""
    soffice = require_tool("soffice", "libreoffice")
    out_dir.mkdir(exist_ok=True)
    subprocess.run([soffice, "--headless", "--calc", "--convert-to", "xlsx", "--outdir", str(out_dir),
                    *map(str, files)], check=True, capture_output=True, timeout=300)
    return {f.stem: openpyxl.load_workbook(out_dir / f.name, data_only=True) for f in files}


def rows_by_label(ws) -> dict[str, list]:
    return {row[0]: list(row[2:]) for row in ws.iter_rows(values_only=True) if row and row[0]}


def assert_close(sheet_values, engine_values, what):
    got = np.array([np.nan if v in (None, "") else v for v in sheet_values], dtype=float)
    want = np.asarray(engine_values, dtype=float)
    assert np.array_equal(np.isnan(got), np.isnan(want)), what
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=REL, atol=REL, err_msg=what)


CASES = {
    "base": ("base", {}, None),
    "thirteen": ("thirteen_factories", {}, None),
    "layered_worst": ("layered_fund", {}, ("worst",)),
    "equity_commercial_p10": ("base", {"fund.instrument": "equity",
                                       "private.commercial_debt_share": 0.1}, ("p10",)),
    "commercial_swept_first_p10": ("base", {"private.commercial_debt_share": 0.1,
                                            "eib.cash_sweep_to": "commercial_first"}, ("p10",)),
    "cash_annuity_worst": ("base", {"private.refresh_funding": "cash", "eib.repayment": "annuity"},
                           ("worst",)),
    # the interest limitation binding (a low cap, no safe harbour) and the IDC depreciated
    "interest_limited": ("base", {"tax.interest_limit_share_of_ebitda": 0.05,
                                  "tax.interest_safe_harbour_eur_m": 0.0}, ("p10",)),
    # late sites: senior draws stop after the availability period, loans mature at close + tenor
    "grid_delay_worst": ("grid_delay", {"eib.repayment": "linear"}, ("worst",)),
    "cash_no_debt_p10": ("base", {"private.refresh_funding": "cash", "eib.share_of_cost": 0.0}, ("p10",)),
    # hostile names (tests/data/hostile): formulas as text, sheets named after reserved ones and
    # case twins; the portfolio must still add up the right sheets
    "hostile_formulas": (str(HOSTILE / "formulas.toml"), {}, None),
    "hostile_sheet_names": (str(HOSTILE / "sheet_names.toml"), {}, ("p10",)),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each case: (scenario, path model, written file); recalculated together in one call."""
    folder = tmp_path_factory.mktemp("xlsx")
    cases, files = {}, []
    for key, (name, updates, selected) in CASES.items():
        sc = finmodel.load_scenario(name)
        sc = sc.with_updates(updates) if updates else sc
        res = finmodel.simulate(sc, paths=200, seed=3) if selected else None
        path = folder / f"{key}.xlsx"
        finmodel.export_excel(sc, path, results=res, selected=selected or ("p50",))
        picks = select_paths(res, selected) if res is not None else {"base": (-1, "")}
        terms = res.terms if res is not None else excel.close_deal(sc)
        pm = excel._path_model(sc, terms, res, next(iter(picks.values()))[0])
        cases[key] = (sc, pm, terms)
        files.append(path)
    books = recalc(files, folder / "recalculated")
    return {key: (*cases[key], books[key]) for key in cases}


@pytest.mark.parametrize("case", list(CASES))
def test_workbook_formulas_reproduce_the_engine(exported, case):
    sc, pm, _, book = exported[case]
    m = pm.model
    cover = {row[0]: row[1] for row in book["Cover"].iter_rows(values_only=True) if row and row[0]}
    assert cover["master check"] == "OK" and cover["engine reconciliation"] == "agrees"
    portfolio_cfads = np.zeros(sc.timeline.horizon_years)
    for f, fac in enumerate(sc.factories):
        ws = book[excel.sheet_titles(sc)[f]]
        rows = rows_by_label(ws)
        period = slice(1, None)  # column C holds totals; periods follow
        assert_close(rows["CFADS"][period], m["cfads"][0, f], f"{fac.name} CFADS")
        assert_close(rows["senior debt outstanding"][period], m["debt_balance"][0, f], f"{fac.name} debt")
        assert_close(rows["DSCR"][period], m["dscr"][0, f], f"{fac.name} DSCR")
        flow = m["private_equity_flow"][0, f]
        want_irr = irr(flow)
        got_irr = rows["private equity IRR"][0]
        if np.isfinite(want_irr):
            assert got_irr == pytest.approx(want_irr, rel=REL, abs=REL), fac.name
            # the IRR is a root: the flow's NPV at it is 0 (relative to the flows' size)
            assert abs(rows["NPV of the private equity flow at its IRR (about 0; blank: no IRR)"][0]) \
                <= 1e-6 * np.abs(flow).sum()
        got_npv = rows["private equity NPV at the hurdle (end of period 0)"][0]
        assert got_npv == pytest.approx(npv(sc.private.equity_hurdle_irr, flow), rel=REL, abs=REL)
        assert rows["EIB loss in total"][0] == pytest.approx(m.financing.eib_loss[0, f], rel=REL, abs=REL)
        assert rows["defaulted"][0] == int(m.financing.default[0, f])
        assert rows["defaulted on a payment"][0] == int(m.financing.payment_default[0, f])
        assert rows["covenant breach (DSCR below the default DSCR)"][0] == m.financing.breach_periods[0, f]
        # sources and uses at construction: each line the engine's, and sources = uses
        fin, op = m.financing, m.operations
        for label, want in (("use: facility and grid connection", op["capex_construction"][0, f].sum()),
                            ("use: first GPU fleet (GPUs, servers, network)",
                             op["capex_gpu_initial"][0, f].sum()),
                            ("source: EIB loan drawn", fin["eib_draw"][0, f].sum()),
                            ("source: commercial senior loan drawn", fin["commercial_draw"][0, f].sum()),
                            ("memo: interest capitalised in the senior loans (IDC, not cash)",
                             fin["senior_idc"][0, f].sum())):
            assert rows[label][0] == pytest.approx(want, rel=REL, abs=REL), (fac.name, label)
        assert rows["total sources"][0] == pytest.approx(rows["total uses"][0], rel=REL, abs=REL)
        portfolio_cfads += m["cfads"][0, f]
    totals = rows_by_label(book["Portfolio"])
    assert_close(totals["CFADS"][1:], portfolio_cfads, "portfolio CFADS")
    # the portfolio IRR is the engine's (never a false root below -100%), or blank if none
    want = irr(m["private_equity_flow"][0].sum(0))
    got = totals["portfolio private equity IRR"][0]
    if np.isfinite(want):
        assert got == pytest.approx(want, rel=REL, abs=REL)
    else:
        assert got in (None, "")
    assert_close(totals["senior debt outstanding"][1:], m["debt_balance"][0].sum(0), "portfolio debt")
    checks = rows_by_label(book["Checks"])
    assert checks["master check"][7:9] == ["OK", "agrees"]
    # the Cover's dashboard: each factory's DSCR figures and loss as the engine's
    cover_rows = {row[0]: row[1:] for row in book["Cover"].iter_rows(values_only=True) if row and row[0]}
    for f, title in enumerate(excel.sheet_titles(sc)):
        dscr = m["dscr"][0, f]
        served = dscr[np.isfinite(dscr)]
        got = cover_rows[title]
        if served.size:
            assert got[0] == pytest.approx(served.min(), rel=REL, abs=REL), title
            assert got[1] == pytest.approx(served.mean(), rel=REL, abs=REL), title
            assert got[2] == pytest.approx(served.min() - sc.eib.default_dscr, rel=REL, abs=REL), title
        assert got[5] == pytest.approx(m.financing.eib_loss[0, f], rel=REL, abs=REL), title


def test_defaults_are_among_the_reconciled_paths(exported):
    defaulted = [exported[k][1].model.financing.default.any() for k in CASES]
    assert any(defaulted) and not all(defaulted)
    # and so are the remedies: equity cures and cash sweeps (cash trapped, then swept)
    fins = [exported[k][1].model.financing for k in CASES]
    assert any(f.equity_cures.sum() > 0 for f in fins)
    assert any((f["trapped_cash"] > 0).any() for f in fins)


def test_a_changed_input_moves_the_output_as_the_engine_says(exported, tmp_path):
    sc, pm, terms, _ = exported["base"]
    src = tmp_path / "base.xlsx"
    finmodel.export_excel(sc, src)
    wb = openpyxl.load_workbook(src)
    ws = wb[excel.sheet_titles(sc)[0]]
    row = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "power price")
    n_t = sc.timeline.horizon_years
    for t in range(n_t):
        cell = ws.cell(row, excel.FIRST_PERIOD_COL + t)
        cell.value = cell.value + 40.0
    changed = tmp_path / "changed.xlsx"
    wb.save(changed)
    book = recalc([changed], tmp_path / "out")["changed"]
    rows = rows_by_label(book[ws.title])
    power = np.array(np.broadcast_to(pm.drivers.power_price_eur_mwh, (1, sc.n_factories, n_t)))
    power[0, 0] += 40.0
    again = run(sc, dataclasses.replace(pm.drivers, power_price_eur_mwh=power), terms)
    assert_close(rows["CFADS"][1:], again["cfads"][0, 0], "CFADS after +40 EUR/MWh")
    before = pm.model["cfads"][0, 0].sum()
    assert again["cfads"][0, 0].sum() < before  # dearer power, less cash
    assert rows["private equity IRR"][0] == pytest.approx(irr(again["private_equity_flow"][0, 0]),
                                                          rel=REL, abs=REL)


def test_export_is_atomic_and_checks_its_arguments(tmp_path, monkeypatch, base):
    out = tmp_path / "base.xlsx"
    finmodel.export_excel(base, out)
    before = out.read_bytes()

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(openpyxl.Workbook, "save", boom)
    with pytest.raises(finmodel.ScenarioError, match="cannot write: disk full"):
        finmodel.export_excel(base, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["base.xlsx"]
    monkeypatch.undo()
    with pytest.raises(finmodel.ScenarioError, match="xlsx"):
        finmodel.export_excel(base, tmp_path / "base.csv")
    res = finmodel.simulate(base, paths=32)
    with pytest.raises(finmodel.ScenarioError, match="selected"):
        finmodel.export_excel(base, out, results=res, selected=("p42",))


def test_base_case_results_export_the_base_case(tmp_path, base):
    out = finmodel.export_excel(base, tmp_path / "b.xlsx", results=finmodel.base_case(base))
    wb = openpyxl.load_workbook(out)
    sheet = wb[excel.sheet_titles(base)[0]]
    assert sheet["B2"].value == "base case (central values)"


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "four.xlsx"
    assert main(["export", "four_gigafactories", str(out), "--paths", "64"]) == 0
    wb = openpyxl.load_workbook(out)
    assert {"Cover", "Inputs", "Timeline", "Portfolio", "Checks", "Monte Carlo"} <= set(wb.sheetnames)
    assert "wrote" in capsys.readouterr().out
    assert main(["export", "four_gigafactories", str(tmp_path / "x.txt")]) == 2


EXCEL_FORMULA_LIMIT = 8_192  # characters in one cell's formula (Excel's specification)
EXCEL_NESTING_LIMIT = 64  # levels of nested functions
EXCEL_ARGUMENTS_LIMIT = 255  # arguments of one function


def nesting_and_arguments(formula: str) -> tuple[int, int]:
    """Deepest nesting of parentheses and most arguments of one call in a formula (string
    literals and quoted sheet names set aside)."""
    import re

    bare = re.sub(r'"[^"]*"', '""', re.sub(r"'(?:[^']|'')*'!", "S!", formula))
    depth = deepest = most = 0
    commas: list[int] = []
    for ch in bare:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
            commas.append(0)
        elif ch == ")":
            depth -= 1
            most = max(most, commas.pop() + 1)
        elif ch == "," and commas:
            commas[-1] += 1
    return deepest, most


def test_every_formula_fits_excel_s_limit(exported, tmp_path):
    """Excel repairs a file with a longer formula and may drop it (a check among them): every
    formula of every reconciled workbook, and of a 60-year thirteen-factory one, fits."""
    books = [openpyxl.load_workbook(path) for path in sorted(tmp_path.parent.glob("xlsx*/*.xlsx"))]
    long_sc = finmodel.load_scenario("thirteen_factories").with_updates({"timeline.horizon_years": 60})
    books.append(openpyxl.load_workbook(finmodel.export_excel(long_sc, tmp_path / "long.xlsx")))
    assert len(books) > len(CASES)  # the reconciled workbooks (and their recalculated copies)
    formulas = [cell.value for wb in books for ws in wb for row in ws.iter_rows()
                for cell in row if cell.data_type == "f"]
    longest = max(map(len, formulas))
    assert longest <= EXCEL_FORMULA_LIMIT, longest
    deepest, most = map(max, zip(*map(nesting_and_arguments, formulas), strict=True))
    assert deepest <= EXCEL_NESTING_LIMIT and most <= EXCEL_ARGUMENTS_LIMIT, (deepest, most)
    assert nesting_and_arguments("=IF(A1,MAX(1,2,'a,(b'!C3),\"x,(\")") == (2, 3)


def test_a_flexed_hardware_loan_term_reprices_the_loans_as_the_engine_does(tmp_path):
    """Inputs!hardware_loan_tenor_years set from 5 to 4 in the workbook: each refresh's loan is
    resized and repaid over 4 years, as the engine does with the same input."""
    sc = finmodel.load_scenario("base").with_updates({"eib.repayment": "annuity"})
    src = finmodel.export_excel(sc, tmp_path / "five.xlsx")
    wb = openpyxl.load_workbook(src)
    inputs = wb["Inputs"]
    row = next(r for r in range(2, inputs.max_row + 1)
               if inputs.cell(r, 1).value == "private.hardware_loan_tenor_years")
    assert inputs.cell(row, 2).value == 5
    inputs.cell(row, 2).value = 4
    wb.save(tmp_path / "four.xlsx")
    book = recalc([tmp_path / "four.xlsx"], tmp_path / "out")["four"]
    four = sc.with_updates({"private.hardware_loan_tenor_years": 4})
    terms = excel.close_deal(four)
    m = run(four, excel.central_drivers(four), terms)
    np.testing.assert_array_equal(terms.eib_eur_m, excel.close_deal(sc).eib_eur_m)  # same deal
    for f, title in enumerate(excel.sheet_titles(four)):
        rows = rows_by_label(book[title])
        assert_close(rows["hardware loan drawn (sized at the refresh)"][1:], m["hardware_draw"][0, f],
                     f"{title} hardware draws")
        assert_close(rows["CFADS"][1:], m["cfads"][0, f], f"{title} CFADS")
        assert_close(rows["senior debt outstanding"][1:], m["debt_balance"][0, f], f"{title} debt")
    # the integrity checks hold (sources = uses, cash conserved, debt repaid or default); the
    # comparison with the engine's pasted values of the exported case rightly does not
    checks = rows_by_label(book["Checks"])
    assert checks["master check"][7:9] == ["OK", "differs"]  # a flexed input: no longer the export


def test_every_sheet_prints_landscape_one_page_wide_and_switches_are_drop_downs(tmp_path):
    sc = finmodel.load_scenario("base")
    wb = openpyxl.load_workbook(finmodel.export_excel(sc, tmp_path / "base.xlsx"))
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.oddFooter.center.text == "Page &P of &N"
    inputs = wb["Inputs"]
    row = {inputs.cell(r, 1).value: r for r in range(2, inputs.max_row + 1)}
    lists = {}
    for dv in inputs.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            for cells in inputs[rng.coord] if ":" in rng.coord else [[inputs[rng.coord]]]:
                for cell in cells:
                    lists[cell.row] = dv.formula1
    assert lists[row["eib.repayment"]] == '"annuity,linear,sculpted"'
    assert lists[row["private.refresh_funding"]] == '"hardware_loan,equity,cash"'
    assert lists[row["tax.interest_limitation"]] == '"True,False"'
    assert row["eib.margin"] not in lists  # numbers are not switches
