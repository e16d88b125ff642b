"""Layout of the workbook: styles, safe text, rows of formulas over periods, and the
small formula helpers every sheet uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname

from finmodel.metrics import irr as engine_irr

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



# -- a sheet of rows over periods ---------------------------------------------------------------


class _Rows:
    """Rows of one sheet: parameters in column C, periods from column D; formulas refer to
    other rows by key."""

    def __init__(self, ws, n_t: int, first_row: int):
        self.ws, self.n_t, self.row, self.at = ws, n_t, first_row, {}
        self.pending: list = []  # rows are numbered at once and written by ``flush``
        self.pending_params: list = []  # (cell, value()) of parameters written by ``flush``
        self.labels: set[str] = set()

    def _label(self, label: str) -> None:
        if label in self.labels:  # a reader finds rows by their label
            raise ValueError(f"duplicate row label {label!r}")
        self.labels.add(label)

    def flush(self) -> None:
        """Write every row's cells (formulas may refer to rows defined after them)."""
        for cell, value in self.pending_params:
            cell.value = value()
        self.pending_params.clear()
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
        _text(self.ws.cell(r, 1), label)  # a label may hold user text (a factory's name)
        self.ws.cell(r, 2, unit)
        cell = self.ws.cell(r, 3)
        if callable(value):  # a formula of rows defined later: written by ``flush``
            self.pending_params.append((cell, value))
        else:
            cell.value = value
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



def _ref(title: str, rows: _Rows, key: str, t: int | None = None) -> str:
    cell = rows.p(key) if t is None else rows.c(key, t)
    return f"{quote_sheetname(title)}!{cell}"



def _guess(flow: np.ndarray) -> float:
    """An IRR search start near the engine's root: its IRR rounded, or 10% if it has none."""
    value = float(engine_irr(flow))
    return round(value, 2) if np.isfinite(value) else 0.1


def _choose_case(values: Sequence[float]) -> str:
    """A formula that takes the selected case's value (``case_index`` on the Paths sheet)."""
    if len(values) == 1:
        return f"={values[0]!r}"
    return f"=CHOOSE(case_index,{','.join(repr(float(v)) for v in values)})"


def _choose_refs(cells: Sequence[str]) -> str:
    """A formula that takes the selected case's cell (``case_index``); blank if it is empty."""
    pick = cells[0] if len(cells) == 1 else f"CHOOSE(case_index,{','.join(cells)})"
    return f"=IF(ISNUMBER({pick}),{pick},\"\")"


def _irr(span: str, guess: str) -> str:
    """IRR of a row from a search start, blank where it finds no rate above -100% (a root
    below -100% is no return; Excel's and LibreOffice's IRR can land on one)."""
    return f"IFERROR(IF(IRR({span},{guess})>-1,IRR({span},{guess}),\"\"),\"\")"
