"""Excel export: recalculated by LibreOffice Calc, the workbook's formulas reproduce the engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from conftest import ROOT, require_tool

import finmodel
from finmodel import excel
from finmodel.cli import main
from finmodel.drivers import central_drivers
from finmodel.engine import close_deal, run
from finmodel.metrics import irr, llcr, npv
from finmodel.results import select_paths

REL = 1e-6
HOSTILE = ROOT / "tests" / "data" / "hostile"


def recalc(files: list[Path], out_dir: Path) -> dict[str, openpyxl.Workbook]:
    """Recalculate with headless LibreOffice Calc (two instances, one per core, each with its
    own profile); read the values back."""
    soffice = require_tool("soffice", "libreoffice")
    out_dir.mkdir(exist_ok=True)
    groups = [files[k::2] for k in range(2) if files[k::2]]
    runs = [subprocess.Popen([soffice, f"-env:UserInstallation=file://{out_dir / f'.profile{k}'}",
                              "--headless", "--calc", "--convert-to", "xlsx", "--outdir", str(out_dir),
                              *map(str, group)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for k, group in enumerate(groups)]
    for run_ in runs:
        _, err = run_.communicate(timeout=300)
        assert run_.returncode == 0, err
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
    # the switches of operations and of the deal: pay-as-used contracts, GPUs bought at close, the
    # fund paying the public discount, no early retirement; the fund split pro rata; sized on a
    # downside case, and on the inputs' means with a fixed grace period
    "switches_p10": ("base", {"market.anchor_take_or_pay": False, "costs.gpus_bought_at": "close",
                              "market.public_access_payer": "fund",
                              "market.retire_unprofitable_fleets": False,
                              "fund.allocation": "pro_rata_capex", "eib.sizing_case": "downside"}, ("p10",)),
    "equal_mean_grace": ("four_gigafactories", {"fund.allocation": "equal", "eib.sizing_case": "mean",
                                                "eib.grace_years": 3}, None),
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
        terms = res.terms if res is not None else close_deal(sc)
        drivers = excel.case_drivers(sc, res, next(iter(picks.values()))[0])
        pm = (run(sc, drivers, terms), drivers)
        cases[key] = (sc, pm, terms)
        files.append(path)
    books = recalc(files, folder / "recalculated")
    return {key: (*cases[key], books[key]) for key in cases}


@pytest.mark.parametrize("case", list(CASES))
def test_workbook_formulas_reproduce_the_engine(exported, case):
    sc, pm, _, book = exported[case]
    m, drivers = pm
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
        # cover ratios: finmodel.metrics.llcr on the engine's CFADS and opening senior balances,
        # the PLCR by hand; the project IRR on the engine's unlevered free cash flow
        opening = np.concatenate([[0.0], (fin["eib_balance"] + fin["commercial_balance"])[0, f, :-1]])
        rate = float((drivers.base_rate + drivers.eib_margin).ravel()[0])
        assert_close(rows["LLCR: PV of CFADS to the loans' last repayment / balance"][1:],
                     llcr(m["cfads"][0, f], rate, opening), f"{fac.name} LLCR")
        n_t = sc.timeline.horizon_years
        plcr = [npv(rate, np.concatenate([[0.0], m["cfads"][0, f, t:]])) / opening[t] if opening[t] > 1e-9
                else np.nan for t in range(n_t)]
        assert_close(rows["PLCR: PV of CFADS to the horizon / balance"][1:], plcr, f"{fac.name} PLCR")
        want = irr(op["unlevered_fcf"][0, f])
        got = rows["project IRR"][0]
        assert got == pytest.approx(want, rel=REL, abs=REL) if np.isfinite(want) else got in (None, "")
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
        assert got[7] == pytest.approx(m.financing.eib_loss[0, f], rel=REL, abs=REL), title


def test_defaults_are_among_the_reconciled_paths(exported):
    defaulted = [exported[k][1][0].financing.default.any() for k in CASES]
    assert any(defaulted) and not all(defaulted)
    # and so are the remedies: equity cures and cash sweeps (cash trapped, then swept)
    fins = [exported[k][1][0].financing for k in CASES]
    assert any(f.equity_cures.sum() > 0 for f in fins)
    assert any((f["trapped_cash"] > 0).any() for f in fins)


def set_input(wb: openpyxl.Workbook, path: str, value) -> None:
    """Set the input at a dotted path through its defined name, as an analyst would."""
    (sheet, cell), = wb.defined_names[excel.input_name(path)].destinations
    wb[sheet][cell.replace("$", "")].value = value


def sizing_blocks(ws, factories: list[str]) -> dict[str, dict[str, int]]:
    """Each factory's rows on the Sizing sheet, by label."""
    out: dict[str, dict[str, int]] = {}
    current = None
    for r in range(1, ws.max_row + 1):
        label = ws.cell(r, 1).value
        if label in factories and ws.cell(r, 3).value is None:
            current = out.setdefault(label, {})
        elif current is not None and label:
            current[label] = r
    return out


SIZING_COPY = {  # the sizing case's copy <- the base case's live value (see the Sizing sheet)
    "construction cost of the sizing case": "construction cost (live)",
    "its first repayment": "first repayment (live)",
    "its senior balance at the first repayment per EUR committed (IDC)":
        "balance at the first repayment per EUR committed (live)",
    "the EIB's part of that balance": "the EIB's part of that balance (live)",
    "CFADS of the sizing case": "CFADS (live)",
}


def recalc_and_resize(files: list[Path], out_dir: Path, factories: list[str], rounds: int = 12):
    """Recalculate; while a Sizing copy is stale, copy the live values onto it (what an analyst
    does after changing an input) and recalculate that workbook. Returns the recalculated books
    and the number of recalculations of the slowest workbook."""
    books: dict[str, openpyxl.Workbook] = {}
    todo = list(files)
    for k in range(1, rounds + 1):
        books.update(recalc(todo, out_dir))
        stale = []
        for f in todo:
            got = books[f.stem]["Sizing"]
            blocks = sizing_blocks(got, factories)
            if all(got.cell(rows["the sizing case's copy is current"], 3).value == "current"
                   for rows in blocks.values()):
                continue
            stale.append(f)
            wb = openpyxl.load_workbook(f)
            ws = wb["Sizing"]
            for rows in blocks.values():
                for copy, live in SIZING_COPY.items():
                    cols = range(3, 4) if copy != "CFADS of the sizing case" else range(
                        excel.FIRST_PERIOD_COL, ws.max_column + 1)
                    for col in cols:
                        ws.cell(rows[copy], col).value = got.cell(rows[live], col).value
            wb.save(f)
        if not stale:
            return books, k
        todo = stale
    raise AssertionError(f"the sizing copy is still stale after {rounds} recalculations")


FLEXES = {  # input -> new value (an uncertain input's central value)
    "energy.power_price_eur_mwh": 140.0, "market.gpu_price_usd": 46_000.0,
    "market.gpu_hour_price_launch_usd": 3.6, "market.utilisation_steady": 0.78,
    "eib.margin": 0.0125, "eib.tenor_years": 18, "eib.share_of_cost": 0.40, "costs.build_months": 30.0,
}


def test_flexing_a_named_input_reproduces_the_engine_with_that_change(tmp_path):
    """Eight inputs, each set through its name on the Inputs sheet; LibreOffice recalculates and
    the sizing copy is refreshed until current: portfolio CFADS by year, each factory's minimum
    DSCR, equity IRR and EIB balance equal the engine's base case with the same change."""
    sc = finmodel.load_scenario("base")
    src = finmodel.export_excel(sc, tmp_path / "base.xlsx")
    files = []
    for k, (path, value) in enumerate(FLEXES.items()):
        wb = openpyxl.load_workbook(src)
        set_input(wb, path, value)
        files.append(tmp_path / f"flex{k}.xlsx")
        wb.save(files[-1])
    factories = [f.name for f in sc.factories]
    books, rounds = recalc_and_resize(files, tmp_path / "out", factories)
    assert rounds >= 2  # the sized debt moved with the inputs: the copy was refreshed
    for k, (path, value) in enumerate(FLEXES.items()):
        changed = (sc.with_centres({path: value}) if path in sc.uncertain_inputs()
                   else sc.with_updates({path: value}))
        terms = close_deal(changed)
        m = run(changed, central_drivers(changed), terms)
        book = books[f"flex{k}"]
        assert_close(rows_by_label(book["Portfolio"])["CFADS"][1:], m["cfads"][0].sum(0), f"{path}: CFADS")
        for f, title in enumerate(excel.sheet_titles(sc)):
            rows = rows_by_label(book[title])
            dscr = m["dscr"][0, f]
            assert rows["minimum DSCR"][0] == pytest.approx(np.nanmin(dscr), rel=REL, abs=REL), (path, title)
            assert_close(rows["EIB balance"][1:], m["eib_balance"][0, f], f"{path}: {title} EIB balance")
            want = irr(m["private_equity_flow"][0, f])
            got = rows["private equity IRR"][0]
            assert (got in (None, "") if not np.isfinite(want)
                    else got == pytest.approx(want, rel=REL, abs=REL)), (path, title)
        checks = rows_by_label(book["Checks"])
        assert checks["master check"][7] == "OK", path  # integrity holds for any input


def test_the_case_switch_reproduces_each_exported_path(tmp_path):
    """The Cover's switch set to the base case and to each selected path: after recalculation
    every factory's CFADS, debt and DSCR and the equity IRRs are the engine's on that path."""
    sc = finmodel.load_scenario("base")
    res = finmodel.simulate(sc, paths=300, seed=5)
    selected = ("p50", "p10", "worst")
    src = finmodel.export_excel(sc, tmp_path / "paths.xlsx", results=res, selected=selected)
    picks = {"base": (-1, ""), **select_paths(res, selected)}
    files = []
    for case in picks:
        wb = openpyxl.load_workbook(src)
        cover = wb["Cover"]
        switch = next(r for r in range(1, cover.max_row + 1)
                      if cover.cell(r, 1).value == "case on the factory sheets")
        assert case in wb["Cover"].data_validations.dataValidation[0].formula1
        cover.cell(switch, 2).value = case
        files.append(tmp_path / f"case_{case}.xlsx")
        wb.save(files[-1])
    books = recalc(files, tmp_path / "out")
    for case, (path, _) in picks.items():
        book = books[f"case_{case}"]
        m = run(sc, excel.case_drivers(sc, res, path), res.terms)
        cover = {row[0]: row[1] for row in book["Cover"].iter_rows(values_only=True) if row and row[0]}
        assert cover["master check"] == "OK" and cover["engine reconciliation"] == "agrees", case
        for f, title in enumerate(excel.sheet_titles(sc)):
            rows = rows_by_label(book[title])
            assert_close(rows["CFADS"][1:], m["cfads"][0, f], f"{case}: {title} CFADS")
            assert_close(rows["senior debt outstanding"][1:], m["debt_balance"][0, f],
                         f"{case}: {title} debt")
            assert_close(rows["DSCR"][1:], m["dscr"][0, f], f"{case}: {title} DSCR")
        want = irr(m["private_equity_flow"][0].sum(0))
        got = rows_by_label(book["Portfolio"])["portfolio private equity IRR"][0]
        assert got == pytest.approx(want, rel=REL, abs=REL) if np.isfinite(want) else got in (None, "")
        sizing = sizing_blocks(book["Sizing"], [f.name for f in sc.factories])
        status = {rows["the sizing case's copy is current"] for rows in sizing.values()}
        current = {book["Sizing"].cell(r, 3).value for r in status}
        assert current == ({"current"} if case == "base" else {"not checked: select the base case"})


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
    cover = {row[0]: row[1] for row in wb["Cover"].iter_rows(values_only=True) if row and row[0]}
    assert cover["case on the factory sheets"] == "base"
    assert [c.value for c in wb["Paths"][4][3:] if c.value] == ["base"]  # no simulated path


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
    formula of every preset exported with Monte Carlo results, of the reconciled workbooks and
    of a 60-year thirteen-factory one fits."""
    books = [openpyxl.load_workbook(path) for path in sorted(tmp_path.parent.glob("xlsx*/*.xlsx"))]
    for name in finmodel.list_scenarios():
        sc = finmodel.load_scenario(name)
        res = finmodel.simulate(sc, paths=64, seed=1)
        written = finmodel.export_excel(sc, tmp_path / f"{name}.xlsx", results=res)
        books.append(openpyxl.load_workbook(written))
    long_sc = finmodel.load_scenario("thirteen_factories").with_updates({"timeline.horizon_years": 60})
    books.append(openpyxl.load_workbook(finmodel.export_excel(long_sc, tmp_path / "long.xlsx")))
    assert len(books) > len(CASES) + len(finmodel.list_scenarios())
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
    terms = close_deal(four)
    m = run(four, central_drivers(four), terms)
    np.testing.assert_array_equal(terms.eib_eur_m, close_deal(sc).eib_eur_m)  # same deal
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
