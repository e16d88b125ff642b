"""The Inputs sheet (every assumption, named by its dotted path), the Timeline and the Paths
sheet (each case's drivers, and the one the Cover's switch selects)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation

from finmodel.excel.layout import (
    CHECK_TOLERANCE,
    FIRST_PERIOD_COL,
    HEADER,
    HEADER_FILL,
    INPUT,
    INPUT_FILL,
    SECTION,
    TOLERANCE,
    _text,
)
from finmodel.operations import HOURS_PER_YEAR
from finmodel.scenario.fields import field_rows
from finmodel.scenario.model import Scenario


def input_name(path: str) -> str:
    """The workbook name of the input at a dotted path: ``.`` and ``[i]`` as ``_``
    (``factories[0].gpus`` -> ``factories_0_gpus``)."""
    return path.replace("[", "_").replace("]", "").replace(".", "_")


class _Names(dict):
    """Dotted path (or constant) -> workbook name; remembers which names formulas used."""

    def __init__(self):
        super().__init__()
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> str:
        name = super().__getitem__(key)
        self.used.add(key)
        return name


def _inputs_sheet(wb: Workbook, sc: Scenario) -> tuple[_Names, dict[str, int]]:
    """Every assumption with unit, description and source; each one a formula can use has a
    defined name (``input_name``) on the value the base case uses: the number (column B), or
    for an uncertain input its central value (column C). Returns the names (path -> name; a
    missing key is a KeyError while building, not a broken workbook) and each field's row."""
    ws = wb.create_sheet("Inputs")
    for col, head in enumerate(["field", "value", "central value", "unit", "description", "source"], 1):
        cell = ws.cell(1, col, head)
        cell.font, cell.fill = HEADER, HEADER_FILL
    names = _Names()
    rows: dict[str, int] = {}
    switches: dict[tuple[str, ...], DataValidation] = {}  # one drop-down list per set of choices

    def define(key: str, name: str, row: int, col: str = "B") -> None:
        wb.defined_names[name] = DefinedName(name, attr_text=f"{quote_sheetname('Inputs')}!${col}${row}")
        dict.__setitem__(names, key, name)

    r = 2
    for row in field_rows(sc):
        _text(ws.cell(r, 1), row.path)
        value = row.value
        central = getattr(value, "central", None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            _text(ws.cell(r, 2), row.display_value)
        else:
            ws.cell(r, 2, float(value))
        if central is not None and not isinstance(value, int | float):
            ws.cell(r, 3, float(central))
        _text(ws.cell(r, 4), row.unit)
        _text(ws.cell(r, 5), row.description)
        _text(ws.cell(r, 6), row.source)
        rows[row.path] = r
        if central is not None and not isinstance(value, int | float):
            define(row.path, input_name(row.path), r, "C")
        elif value is None or isinstance(value, int | float) or row.choices:
            if value is None:
                ws.cell(r, 2).value = None  # unset: blank (formulas test ISNUMBER)
            define(row.path, input_name(row.path), r)
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
        ("hours_per_year", "hours per year", HOURS_PER_YEAR, "hours"),
    )
    ws.cell(r + 1, 1, "Constants").font = SECTION
    for k, (name, label, value, unit) in enumerate(constants, r + 2):
        ws.cell(k, 1, label)
        ws.cell(k, 2, value)
        ws.cell(k, 4, unit)
        define(name, name, k)
    ws.freeze_panes = "B2"
    for col, width in zip("ABCDEF", (40, 22, 14, 16, 60, 70), strict=True):
        ws.column_dimensions[col].width = width
    return names, rows


def _mark_inputs(wb: Workbook, names: _Names, rows: dict[str, int]) -> None:
    """Inputs formulas use in blue on yellow (change them and the workbook recalculates);
    the others in grey, marked as used by the simulation only."""
    ws = wb["Inputs"]
    grey = Font(color="808080", italic=True)
    ws.cell(1, 7, "used by").font, ws.cell(1, 7).fill = HEADER, HEADER_FILL
    for path, r in rows.items():
        live = path in names.used
        cell = ws.cell(r, 3 if ws.cell(r, 3).value is not None else 2)  # what the name points at
        if live:
            cell.font, cell.fill = INPUT, INPUT_FILL
        else:
            cell.font = grey
        _text(ws.cell(r, 7), f"formulas (name {names[path]})" if live else
              "the simulation only (its draws and paths are on the Paths sheet)"
              if path in names else "information")
    ws.column_dimensions["G"].width = 44



# -- the Paths sheet: each case's drivers, and the one the Cover's switch selects ----------------

# (Drivers field, label, unit, the base case's formula from the Inputs' names)
SHARED_DRIVERS = (
    ("it_kw_per_gpu", "IT power per GPU", "kW", lambda n: n["energy.it_kw_per_gpu"]),
    ("pue", "power usage effectiveness", "ratio", lambda n: n["energy.pue"]),
    ("idle_power_share", "power drawn by idle capacity", "share", lambda n: n["energy.idle_power_share"]),
    ("build_years", "construction", "years", lambda n: f"{n['costs.build_months']}/{n['months_per_year']}"),
    ("chip_delay_years", "chip delivery delay", "years",
     lambda n: f"{n['market.chip_delivery_delay_months']}/{n['months_per_year']}"),
    ("gpu_life_years", "years a GPU fleet serves", "years", lambda n: n["market.gpu_useful_life_years"]),
    ("facility_capex_eur_m_per_mw", "facility capex", "EUR m/MW",
     lambda n: f"{n['costs.facility_capex_usd_m_per_mw']}/{n['macro.eur_usd']}"),
    ("grid_capex_eur_m_per_mw", "grid connection capex", "EUR m/MW",
     lambda n: n["costs.grid_capex_eur_m_per_mw"]),
    ("gpu_hour_price_launch_eur", "GPU-hour price of a new fleet at launch", "EUR/GPU-hour",
     lambda n: f"{n['market.gpu_hour_price_launch_usd']}/{n['macro.eur_usd']}"),
    ("gpu_hour_price_erosion_per_year", "yearly fall of a fleet's GPU-hour price with age", "1/yr",
     lambda n: n["market.gpu_hour_price_erosion_per_year"]),
    ("on_demand_premium", "on-demand premium over reserved", "share",
     lambda n: n["market.on_demand_premium"]),
    ("price_performance_growth_per_year", "compute per GPU gained by each year's generation", "1/yr",
     lambda n: n["market.price_performance_growth_per_year"]),
    ("gpu_resale_share_5y", "resale value at age 5", "share", lambda n: n["market.gpu_resale_share_5y"]),
    ("utilisation_launch_year", "utilisation in the first 12 months", "share",
     lambda n: n["market.utilisation_launch_year"]),
    ("public_access_share", "public-access share of hours", "share",
     lambda n: n["market.public_access_share"]),
    ("anchor_share_of_commercial", "anchor contracts' share of commercial capacity", "share",
     lambda n: n["market.anchor_share_of_commercial"]),
    ("anchor_contract_years", "anchor contract term", "years", lambda n: n["market.anchor_contract_years"]),
    ("public_access_discount", "public-access discount", "share",
     lambda n: n["market.public_access_discount"]),
    ("staff_maintenance_share_of_capex", "staff and maintenance per year", "share of capex",
     lambda n: n["costs.staff_maintenance_share_of_capex"]),
    ("network_software_share_of_capex", "network and software per year", "share of capex",
     lambda n: n["costs.network_software_share_of_capex"]),
    ("insurance_property_share_of_capex", "insurance and property tax per year", "share of capex",
     lambda n: n["costs.insurance_property_share_of_capex"]),
    ("plant_share_of_facility", "plant replaced at the end of its life", "share of facility capex",
     lambda n: n["costs.plant_share_of_facility"]),
    ("base_rate", "base rate (swap, fixed at close)", "1/yr", lambda n: n["macro.base_rate"]),
    ("eib_margin", "EIB margin", "1/yr", lambda n: n["eib.margin"]),
    ("senior_spread", "commercial senior spread", "1/yr", lambda n: n["private.senior_spread"]),
    ("hardware_loan_spread", "hardware loan spread", "1/yr", lambda n: n["private.hardware_loan_spread"]),
    ("facility_recovery_haircut", "facility recovery haircut", "share",
     lambda n: n["eib.facility_recovery_haircut"]),
)
FACTORY_DRIVERS = (
    ("gpus", "GPUs per fleet", "GPUs", lambda n, f: (
        f"IF(ISNUMBER({n[f'factories[{f}].gpus']}),{n[f'factories[{f}].gpus']},"
        f"INT({n[f'factories[{f}].facility_mw']}*1000/({n['energy.it_kw_per_gpu']}*{n['energy.pue']})))")),
    ("close_year", "financial close", "years after the portfolio's",
     lambda n, f: n[f"factories[{f}].start_delay_years"]),
    ("grid_delay_years", "grid connection delay", "years",
     lambda n, f: n[f"factories[{f}].grid_delay_years"]),
    ("tax_rate", "corporate tax rate", "share", lambda n, f: n[f"factories[{f}].tax_rate"]),
)
# time paths (Drivers field, label, unit, per factory, the base case's formula in period t)
TIME_DRIVERS = (
    ("compute_capex_eur_per_gpu", "GPU, servers and network per GPU bought", "EUR/GPU", False,
     lambda n, t: (f"{n['market.gpu_price_usd']}*(1+{n['market.gpu_price_growth_per_year']})^{t}"
                   f"*(1+{n['market.system_cost_share_of_gpu_price']})/{n['macro.eur_usd']}")),
    ("opex_index", "facility opex index (inflation)", "ratio", False,
     lambda n, t: f"(1+{n['macro.inflation_per_year']})^{t}"),
    ("power_price_eur_mwh", "power price", "EUR/MWh", True, lambda n, t: (
        f"EXP(LN({n['energy.power_price_eur_mwh']})+(LN(IF(ISNUMBER({n['energy.power_price_start_eur_mwh']}),"
        f"{n['energy.power_price_start_eur_mwh']},{n['energy.power_price_eur_mwh']}))"
        f"-LN({n['energy.power_price_eur_mwh']}))*EXP(-LN(2)/{n['energy.power_price_half_life_years']}*{t}))")),
    ("gpu_hour_price_factor", "GPU-hour market price factor", "ratio", True, lambda n, t: (
        f"1-{n['market.gpu_hour_price_shock']}*MIN(MAX(({t}+1-{n['market.gpu_hour_price_shock_start_years']})"
        f"/{n['market.gpu_hour_price_shock_years']},0),1)")),
    ("utilisation_steady", "steady utilisation", "share", True, lambda n, t: n["market.utilisation_steady"]),
)


@dataclass(frozen=True)
class _Case:
    name: str  # base, p50, ...
    why: str
    path: int  # -1: the base case, its drivers formulas of the Inputs
    drivers: object


class _DriverRefs:
    """Cells of the selected case's drivers on the Paths sheet, for the factory sheets."""

    def __init__(self):
        self.scalar: dict[tuple[str, int], str] = {}  # (field, factory or -1) -> cell
        self.row: dict[tuple[str, int], int] = {}  # (field, factory or -1) -> row of a time path

    def value(self, key: str, f: int) -> str:
        return self.scalar.get((key, f)) or self.scalar[(key, -1)]

    def at(self, key: str, f: int, t: int) -> str:
        r = self.row.get((key, f)) or self.row[(key, -1)]
        return f"Paths!${get_column_letter(FIRST_PERIOD_COL + t)}${r}"


def _paths_sheet(wb: Workbook, sc: Scenario, cases: list[_Case], names: _Names) -> _DriverRefs:
    """Each case's drivers: the base case's as formulas of the Inputs (flex an input and it
    moves), a simulated path's as its drawn values (inputs; edit them here). Column C and the
    "selected" rows hold the case chosen on the Cover (``case_index``)."""
    ws = wb.create_sheet("Paths")
    n_t, n_f = sc.timeline.horizon_years, sc.n_factories
    refs = _DriverRefs()
    ws.cell(1, 1, "Drivers of each case (base case: formulas of the Inputs; simulated paths: their "
                  "draws, as inputs)").font = SECTION
    ws.cell(2, 1, "case shown on the factory sheets (choose it on the Cover)")
    ws.cell(2, 3, "=selected_case").font = SECTION
    ws.cell(2, 4, f"=MATCH(selected_case,{'$' + get_column_letter(4)}$4:"
                  f"${get_column_letter(3 + len(cases))}$4,0)")
    wb.defined_names["case_index"] = DefinedName("case_index", attr_text="Paths!$D$2")
    for col, head in enumerate(["driver", "unit", "selected"], 1):
        ws.cell(4, col, head).font = HEADER
        ws.cell(4, col).fill = HEADER_FILL
    for k, case in enumerate(cases):
        ws.cell(4, 4 + k, case.name).font = HEADER
        ws.cell(4, 4 + k).fill = HEADER_FILL
        ws.cell(5, 4 + k, case.why)
        ws.cell(6, 4 + k, "base case" if case.path < 0 else case.path)
    ws.cell(5, 1, "why this case")
    ws.cell(6, 1, "simulated path")
    case_cols = [get_column_letter(4 + k) for k in range(len(cases))]

    def choose(cells: list[str]) -> str:
        return "=" + cells[0] if len(cells) == 1 else f"=CHOOSE(case_index,{','.join(cells)})"

    def styled(cell, value, base: bool) -> None:
        cell.value = value
        cell.number_format = "#,##0.000000"
        if not base:
            cell.font, cell.fill = INPUT, INPUT_FILL

    def values(case: _Case, key: str) -> np.ndarray:
        a = np.asarray(getattr(case.drivers, key), dtype=float)
        return a[0] if a.ndim == 3 else a.reshape(-1, 1) if a.ndim == 1 else a[0][:, None]  # (F or 1, T or 1)

    r = 8
    ws.cell(r, 1, "Drivers shared by all factories").font = SECTION
    r += 1
    groups = [(-1, key, label, unit, lambda n, f, base=base: base(n))
              for key, label, unit, base in SHARED_DRIVERS]
    groups += [(f, key, label, unit, base) for f in range(n_f) for key, label, unit, base in FACTORY_DRIVERS]
    for f, key, label, unit, base in groups:
        if f >= 0 and key == FACTORY_DRIVERS[0][0]:
            r += 1
            _text(ws.cell(r, 1), f"Drivers of {sc.factories[f].name}")
            ws.cell(r, 1).font = SECTION
            r += 1
        ws.cell(r, 1, label)
        ws.cell(r, 2, unit)
        for k, case in enumerate(cases):
            if case.path < 0:
                styled(ws.cell(r, 4 + k), "=" + base(names, f), True)
            else:
                v = values(case, key)
                styled(ws.cell(r, 4 + k), float(v[max(f, 0) if v.shape[0] > 1 else 0, 0]), False)
        ws.cell(r, 3, choose([f"{c}{r}" for c in case_cols])).number_format = "#,##0.000000"
        refs.scalar[(key, f)] = f"Paths!$C${r}"
        r += 1

    r += 1
    ws.cell(r, 1, "Time paths by period (the selected case's row first)").font = SECTION
    r += 1
    for t in range(n_t):
        year = ws.cell(r, FIRST_PERIOD_COL + t, f"=Timeline!{get_column_letter(FIRST_PERIOD_COL + t)}4")
        year.font = HEADER
        ws.cell(r, FIRST_PERIOD_COL + t).fill = HEADER_FILL
    r += 1
    for key, label, unit, per_factory, base in TIME_DRIVERS:
        for f in range(n_f) if per_factory else (-1,):
            where = f", {sc.factories[f].name}" if f >= 0 else ""
            _text(ws.cell(r, 1), f"{label}{where}: selected")
            ws.cell(r, 1).font = SECTION
            ws.cell(r, 2, unit)
            first = r + 1
            for t in range(n_t):
                ws.cell(r, FIRST_PERIOD_COL + t, choose(
                    [f"{get_column_letter(FIRST_PERIOD_COL + t)}{first + k}" for k in range(len(cases))]
                )).number_format = "#,##0.000000"
            refs.row[(key, f)] = r
            for k, case in enumerate(cases):
                rr = first + k
                _text(ws.cell(rr, 1), f"{label}{where}: {case.name}")
                ws.cell(rr, 2, unit)
                v = values(case, key) if case.path >= 0 else None
                for t in range(n_t):
                    cell = ws.cell(rr, FIRST_PERIOD_COL + t)
                    if v is None:
                        styled(cell, "=" + base(names, f"{get_column_letter(FIRST_PERIOD_COL + t)}$3"), True)
                    else:
                        styled(cell, float(v[max(f, 0) if v.shape[0] > 1 else 0, t if v.shape[1] > 1 else 0]),
                               False)
            r = first + len(cases) + 1
    ws.cell(3, 1, "period (read by the base case's time paths)")
    for t in range(n_t):
        ws.cell(3, FIRST_PERIOD_COL + t, f"=Timeline!{get_column_letter(FIRST_PERIOD_COL + t)}3")
    ws.freeze_panes = "D7"
    ws.column_dimensions["A"].width = 56
    ws.column_dimensions["B"].width = 14
    for col in range(3, FIRST_PERIOD_COL + n_t):
        ws.column_dimensions[get_column_letter(col)].width = 13
    return refs


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
