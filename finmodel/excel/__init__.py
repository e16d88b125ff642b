"""Excel export for EIB staff: a live-formula project-finance workbook (openpyxl), FAST style.

Sheets: Cover (the case switch, the master check and a lender's dashboard), Inputs (every
assumption, each one formulas use named by its dotted path), Timeline, Paths (each case's
drivers: the base case's as formulas of the Inputs, a simulated path's as its draws), Sizing
(the fund allocation and the senior debt sized at close: caps, DSCR capacity, the sculpted
profile and which cap binds), one sheet per factory (operations and financing of the selected
case), Portfolio (factories summed), Checks and Engine (integrity, and the engine's values of
every case for information) and Monte Carlo (distribution summary and the selected paths).

Every calculation is a formula: change an input, or the case on the Cover, and the workbook
recalculates to the engine's numbers. One circularity is broken as lender models do: the
sculpted debt changes the tax shield, which changes the CFADS that sizes it, so the Sizing sheet
reads a copy of the sizing case's values, with a check that says when the copy is stale. Only
functions that Excel and LibreOffice Calc both evaluate are used.

Modules: ``layout`` (styles, rows of formulas), ``inputs`` (Inputs, Timeline, Paths),
``sizing``, ``factory`` and ``summary`` (Portfolio, Checks, Monte Carlo, Cover).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from openpyxl import Workbook

from finmodel.drivers import Drivers, central_drivers, drivers_from_draws
from finmodel.engine import close_deal, run
from finmodel.errors import Problem, ScenarioError
from finmodel.excel.factory import _factory_sheet
from finmodel.excel.inputs import (
    _Case,
    _inputs_sheet,
    _mark_inputs,
    _paths_sheet,
    _timeline_flags,
    _timeline_sheet,
    input_name,
)
from finmodel.excel.layout import FIRST_PERIOD_COL
from finmodel.excel.sizing import _sizing_case, _SizingSheet
from finmodel.excel.summary import (
    _checks_sheet,
    _cover_sheet,
    _monte_carlo_sheet,
    _portfolio_sheet,
    _print_setup,
)
from finmodel.results import Results, select_paths
from finmodel.sampling import path_noise
from finmodel.scenario.fields import resolve
from finmodel.scenario.io import write_atomic
from finmodel.scenario.model import Scenario

__all__ = ["FIRST_PERIOD_COL", "RESERVED_SHEETS", "case_drivers", "export_excel", "input_name",
           "sheet_titles"]

# -- which paths ------------------------------------------------------------------------------


def case_drivers(sc: Scenario, results: Results | None, path: int) -> Drivers:
    """The drivers of one case (P = 1): the base case (``path`` < 0 or no results, every input
    at its central value) or simulated path ``path`` of ``results`` (its draws and noise)."""
    if results is None or path < 0:
        return central_drivers(sc)
    row = results.inputs.drop(columns="path").iloc[path]
    return drivers_from_draws(sc, {name: np.array([v]) for name, v in row.items()}, 1,
                              path_noise(sc, int(results.seed), path, path + 1))


def export_excel(scenario: Scenario, path: str | os.PathLike[str], results: Results | None = None,
                 selected: Sequence[str] = ("p50", "p10", "worst")) -> Path:
    """Write the workbook to ``path`` atomically (temporary file, then rename).

    The factory sheets model the case chosen on the Cover: the base case (every input at its
    central value, drivers as formulas of the Inputs), or with ``results`` any path in
    ``selected`` (drivers as values on the Paths sheet); the first of ``selected`` (``p50`` by
    default) is chosen, the base case without ``results``. Returns the path written."""
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
    picks = select_paths(results, selected) if results is not None else {}
    cases = [_Case("base", "every input at its central value", -1, central_drivers(scenario))]
    cases += [_Case(name, why, p, case_drivers(scenario, results, p))
              for name, (p, why) in picks.items() if p >= 0]
    shown = next((k for k, case in enumerate(cases) if case.name == next(iter(picks), "base")), 0)
    models = [run(scenario, case.drivers, terms) for case in cases]

    wb = Workbook()
    cover = wb.active
    cover.title = "Cover"
    names, input_rows = _inputs_sheet(wb, scenario)
    _timeline_sheet(wb, scenario)
    refs = _paths_sheet(wb, scenario, cases, names)
    lives = [float(np.max(np.rint(np.asarray(case.drivers.gpu_life_years)))) for case in cases]
    hw_terms = int(max(scenario.private.hardware_loan_tenor_years, *lives,
                       _upper(scenario, "market.gpu_useful_life_years")))
    sizing = _SizingSheet(wb, scenario, _sizing_case(scenario, terms), names)
    sheets = [_factory_sheet(wb, scenario, sizing, f, title, names, refs, hw_terms, models)
              for f, title in enumerate(sheet_titles(scenario))]
    sizing.link(sheets)
    _timeline_flags(wb, scenario, sheets)
    _portfolio_sheet(wb, scenario, models, sheets)
    check_cell = _checks_sheet(wb, scenario, models, sheets)
    _monte_carlo_sheet(wb, scenario, results, picks)
    _cover_sheet(cover, scenario, results, cases, shown, check_cell, sheets)
    _mark_inputs(wb, names, input_rows)
    for ws in wb.worksheets:
        _print_setup(ws, scenario.name)

    return write_atomic(target, wb.save)


def _upper(sc: Scenario, path: str) -> float:
    """The largest value an uncertain input can draw, rounded (its 99.99th percentile if its
    distribution is unbounded; its value if it is not uncertain), at most the horizon."""
    from finmodel.sampling import marginal

    spec = sc.uncertain_inputs().get(path)
    if spec is None:
        return float(resolve(sc, path))
    top = marginal(spec).ppf(1.0)
    top = top if np.isfinite(top) else marginal(spec).ppf(0.9999)
    return float(min(np.rint(top), sc.timeline.horizon_years))



RESERVED_SHEETS = ("Cover", "Inputs", "Timeline", "Paths", "Portfolio", "Checks", "Engine", "Monte Carlo",
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
