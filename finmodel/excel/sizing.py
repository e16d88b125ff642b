"""The Sizing sheet: the fund allocation and the senior debt sized at close, in formulas."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from openpyxl import Workbook
from openpyxl.utils import quote_sheetname

from finmodel.excel.inputs import _Names
from finmodel.excel.layout import FIRST_PERIOD_COL, NUM, PCT, SECTION, _Rows, _text
from finmodel.financing import Terms
from finmodel.scenario.model import Scenario

# -- the Sizing sheet: the deal sized at close, in formulas ----------------------------------------


@dataclass(frozen=True)
class _SizingCase:
    """The engine's sizing case at close, per factory (F,) or (F, T): what the Sizing sheet
    copies (a paste of values breaks the circularity of sculpted debt and its tax shield)."""

    cost: np.ndarray  # construction cost, EUR m
    close: np.ndarray  # period of financial close
    r0: np.ndarray  # first repayment period
    growth: np.ndarray  # senior balance at r0 per EUR committed (IDC)
    eib_part: np.ndarray  # the EIB's part of the senior balance at r0
    scale: np.ndarray  # CFADS scale of a downside sizing case (1 otherwise)
    cfads: np.ndarray  # (F, T) CFADS of the sizing case
    base_rate: float
    eib_margin: float
    senior_spread: float
    live: bool  # the sizing case is this workbook's base case (central, not closed on a preset)


def _sizing_case(sc: Scenario, terms: Terms) -> _SizingCase:
    from finmodel.engine import _sizing_drivers, sizing_scenario
    from finmodel.financing import finance
    from finmodel.operations import operate

    sizing = sizing_scenario(sc)
    d = _sizing_drivers(sizing)
    ops = operate(d)
    fin = finance(sizing, d, ops, terms, test_covenants=False)
    senior = terms.eib_eur_m + terms.commercial_eur_m
    b0 = fin.senior_exposure[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(senior > 0, b0 / np.maximum(senior, 1e-12), 1.0)
        eib_part = np.where(b0 > 0, fin.eib_exposure[0] / np.where(b0 > 0, b0, 1.0), 1.0)
    rate = lambda x: float(np.asarray(x).ravel()[0])  # noqa: E731
    return _SizingCase(
        cost=(ops["capex_construction"] + ops["capex_gpu_initial"])[0].sum(-1),
        close=np.broadcast_to(d.close_year, (1, sc.n_factories))[0].astype(int),
        r0=fin.first_repayment[0], growth=growth, eib_part=eib_part,
        scale=terms.cfads_scale if terms.cfads_scale is not None else np.ones(sc.n_factories),
        cfads=fin["cfads"][0], base_rate=rate(d.base_rate), eib_margin=rate(d.eib_margin),
        senior_spread=rate(d.senior_spread),
        live=sc.close_on is None and sizing.eib.sizing_case == "central")


SIZING_TOLERANCE = 1e-9  # relative: the sizing case's copy is current


class _SizingSheet:
    """Per factory: the sizing case (a copy of values, checked against the base case's live
    rows), the fund allocation, the caps on senior debt, the DSCR capacity and the principal
    profile sculpted to the sizing case's CFADS, which cap binds, the commitments. Rows are
    numbered at once; ``link`` writes the formulas once the factory sheets exist."""

    def __init__(self, wb: Workbook, sc: Scenario, case: _SizingCase, names: _Names):
        self.ws = ws = wb.create_sheet("Sizing")
        self.sc, self.case, self.names = sc, case, names
        n_t = sc.timeline.horizon_years
        self.n_k = max(n_t, sc.eib.tenor_years) + 10  # repayment years the sheet can sculpt
        ws.cell(1, 1, "Debt sizing at financial close (formulas of the sizing case's copy below)")
        ws.cell(1, 1).font = SECTION
        ws.cell(2, 1, "The sizing case's rows are values copied from it: sculpted debt changes the tax "
                      "shield, which changes CFADS, which sizes the debt. With the base case selected, "
                      "the check beside each copy says if it is stale: copy the live rows' values onto "
                      "the copy and recalculate until it is current.")
        ws.cell(3, 1, "repayment year / period")
        for k in range(self.n_k):
            ws.cell(3, FIRST_PERIOD_COL + k, k)
        self.blocks: list[_Rows] = []
        self.fund = _Rows(ws, self.n_k, 5)
        row = self.fund.row + sc.n_factories * 6 + 4
        for f in range(sc.n_factories):
            R = _Rows(ws, self.n_k, row)
            self._block(R, f)
            self.blocks.append(R)
            row = R.row + 1

    def ref(self, f: int, key: str) -> str:
        return f"Sizing!{self.blocks[f].p(key)}"

    def cell(self, f: int, key: str, k: int) -> str:
        return f"Sizing!{self.blocks[f].c(key, k)}"

    def _block(self, R: _Rows, f: int) -> None:
        sc, case, n = self.sc, self.case, self.names
        n_t = sc.timeline.horizon_years
        c, p = R.c, R.p
        R.row += 1
        _text(self.ws.cell(R.row, 1), sc.factories[f].name)
        self.ws.cell(R.row, 1).font = SECTION
        R.row += 1
        # the sizing case's copy (values)
        R.param("cost", "construction cost of the sizing case", "EUR m", float(case.cost[f]), NUM, True)
        R.param("close", "its financial close", "period", int(case.close[f]), "0", True)
        R.param("r0", "its first repayment", "period", int(case.r0[f]), "0", True)
        R.param("growth", "its senior balance at the first repayment per EUR committed (IDC)", "ratio",
                float(case.growth[f]), "0.000000000", True)
        R.param("eib_part", "the EIB's part of that balance", "share", float(case.eib_part[f]),
                "0.000000000", True)
        R.param("scale", "CFADS scale of the sizing case (a downside case; 1 on the base case)", "ratio",
                float(case.scale[f]), "0.000000", True)
        cfads = np.zeros(self.n_k)
        cfads[:n_t] = case.cfads[f]
        R.series("cfads", "CFADS of the sizing case", "EUR m", values=cfads)
        # the deal's rates on the sizing case
        if case.live:
            R.param("base_rate", "base rate of the sizing case", "1/yr", f"={n['macro.base_rate']}", PCT)
            R.param("r_e", "EIB rate of the sizing case", "1/yr", f"={p('base_rate')}+{n['eib.margin']}", PCT)
            R.param("r_c", "commercial rate of the sizing case", "1/yr",
                    f"={p('base_rate')}+{n['private.senior_spread']}", PCT)
        else:
            R.param("base_rate", "base rate of the sizing case", "1/yr", case.base_rate, PCT, True)
            R.param("r_e", "EIB rate of the sizing case", "1/yr", case.base_rate + case.eib_margin, PCT, True)
            R.param("r_c", "commercial rate of the sizing case", "1/yr", case.base_rate + case.senior_spread,
                    PCT, True)
        R.param("wait", "years from close to the first repayment", "years", f"={p('r0')}-{p('close')}", "0")
        R.param("n", "repayment years (tenor less the wait)", "years",
                f"={n['eib.tenor_years']}-{p('wait')}", "0")
        R.param("rate", "senior rate (EIB and commercial, by their balances)", "1/yr",
                f"={p('eib_part')}*{p('r_e')}+(1-{p('eib_part')})*{p('r_c')}", PCT)
        k_of = lambda k: f"{R.col(k)}$3"  # noqa: E731
        R.series("free", "CFADS at the target DSCR in the repayment years", "EUR m", formula=lambda k: (
            f"IF(AND({k_of(k)}<{p('n')},{p('r0')}+{k_of(k)}<{n_t}),INDEX({R.span('cfads')},1,{p('r0')}"
            f"+{k_of(k)}+1)*{p('scale')}/{n['eib.target_dscr']},0)"))
        R.series("avail", "of which positive", "EUR m", formula=lambda k: f"MAX({c('free', k)},0)")
        R.series("disc", "discount factor at the senior rate", "ratio", fmt="0.000000",
                 formula=lambda k: f"IF({k_of(k)}<{p('n')},(1+{p('rate')})^-({k_of(k)}+1),0)")
        R.param("pv", "present value of the cover at the target DSCR", "EUR m",
                f"=SUMPRODUCT({R.span('avail')},{R.span('disc')})")
        R.series("bal", "sculpted balance at the year start (per unit at the first repayment)", "share",
                 first="=1", formula=lambda k: f"{c('bal', k - 1)}-{c('sculpted', k - 1)}", fmt="0.000000")
        R.series("sculpted", "sculpted principal: service follows CFADS at the target DSCR", "share",
                 fmt="0.000000", formula=lambda k: (
                     f"IF({k_of(k)}>={p('n')},0,IF({k_of(k)}<{p('n')}-1,MIN(IF({p('pv')}>0,"
                     f"MAX({c('avail', k)}"
                     f"/{p('pv')}-{p('rate')}*{c('bal', k)},0),0),{c('bal', k)}),{c('bal', k)}))"))
        re_ = p("r_e")
        R.series("shares", "principal profile (share of the balance at the first repayment)", "share",
                 fmt="0.000000", total="sum", formula=lambda k: (
                     f"IF({k_of(k)}>={p('n')},0,IF({n['eib.repayment']}=\"annuity\",IF({re_}=0,1/{p('n')},"
                     f"{re_}*(1+{re_})^{k_of(k)}/((1+{re_})^{p('n')}-1)),IF({n['eib.repayment']}=\"linear\","
                     f"1/{p('n')},{c('sculpted', k)})))"))
        R.series("before", "balance before the year's principal", "share", fmt="0.000000", first="=1",
                 formula=lambda k: f"{c('before', k - 1)}-{c('shares', k - 1)}")
        R.series("per_unit", "service per unit of the balance at the first repayment", "share",
                 fmt="0.000000", formula=lambda k: f"{c('shares', k)}+{p('rate')}*{c('before', k)}")
        R.series("carried", "balance at the first repayment each year's CFADS carries", "EUR m",
                 formula=lambda k: (f"IF(AND({k_of(k)}<{p('n')},{c('per_unit', k)}>1E-15),"
                                    f"{c('avail', k)}/{c('per_unit', k)},9E+99)"))
        # the caps and the commitments
        R.param("dscr_cap", "DSCR capacity: what the sizing case's CFADS carries at the target DSCR",
                "EUR m", f"=IF({p('growth')}>0,MIN({R.span('carried')})/{p('growth')},0)")
        R.param("fund", "fund allocation", "EUR m", lambda: f"={self.fund.p(f'alloc_{f}')}")
        R.param("wanted_e", "EIB share of cost", "EUR m", f"={n['eib.share_of_cost']}*{p('cost')}")
        R.param("wanted", "cap: EIB and commercial shares of cost", "EUR m",
                f"={p('wanted_e')}+{n['private.commercial_debt_share']}*{p('cost')}")
        R.param("gearing", "cap: gearing", "EUR m", f"={n['eib.gearing_max']}*{p('cost')}")
        R.param("room", "cap: equity not negative (cost less the fund)", "EUR m",
                f"=MAX({p('cost')}-{p('fund')},0)")
        R.param("senior", "senior debt: the smallest cap", "EUR m",
                f"=MIN({p('wanted')},{p('gearing')},{p('room')},{p('dscr_cap')})")
        R.param("binding", "the cap that binds", "", (
            f"=IF({p('senior')}={p('wanted')},\"EIB and commercial shares of cost\",IF({p('senior')}="
            f"{p('gearing')},\"gearing\",IF({p('senior')}={p('room')},\"equity not negative\","
            f"\"DSCR capacity\")))"), "@")
        R.param("eib_cap", "EIB share of cost within the EIB's own cap", "", (
            f"=IF({n['eib.share_of_cost']}<={n['eib.share_of_cost_max']},\"yes\",\"no: above the cap\")"),
            "@")
        R.param("split", "EIB part of the senior debt", "share",
                f"=IF({p('wanted')}>0,{p('wanted_e')}/{p('wanted')},1)", PCT)
        R.param("eib_commit", "EIB commitment", "EUR m", f"={p('senior')}*{p('split')}")
        R.param("com_commit", "commercial senior commitment", "EUR m", f"={p('senior')}*(1-{p('split')})")
        R.param("hw_share", "largest share of a refresh a hardware loan may lend", "share",
                f"=IF({n['private.refresh_funding']}=\"hardware_loan\",{n['private.hardware_loan_share']},0)",
                PCT)
        self._live_rows(R, f)

    def _live_rows(self, R: _Rows, f: int) -> None:
        """The base case's values on its factory sheet beside the copy, and the check."""
        n_t, live = self.sc.timeline.horizon_years, self.case.live

        def at(key: str, t: int | None = None) -> str:
            title, rows = self.sheets[f]
            return f"{quote_sheetname(title)}!{rows.p(key) if t is None else rows.c(key, t)}"

        def at_span(key: str) -> str:
            title, rows = self.sheets[f]
            return f"{quote_sheetname(title)}!{rows.span(key)}"

        def wrap(x: str) -> str:
            return f"IF(case_index=1,{x},\"\")" if live else "\"\""

        def on_base(x: Callable[[], str]) -> Callable[[], str]:
            return lambda: "=" + wrap(x())

        R.section("The base case on its factory sheet (live; blank unless it is selected and it is the "
                  "sizing case)")
        R.param("cost_live", "construction cost (live)", "EUR m",
                on_base(lambda: f"SUM({at_span('uses')})"))
        R.param("r0_live", "first repayment (live)", "period", on_base(lambda: at("r0")), "0")
        b0 = lambda: f"({at('b0_e')}+{at('b0_c')})"  # noqa: E731
        commit = lambda: f"({at('eib_commit')}+{at('com_commit')})"  # noqa: E731
        R.param("growth_live", "balance at the first repayment per EUR committed (live)", "ratio",
                on_base(lambda: f"IF({commit()}>0,{b0()}/{commit()},1)"), "0.000000000")
        R.param("eib_part_live", "the EIB's part of that balance (live)", "share",
                on_base(lambda: f"IF({b0()}>0,{at('b0_e')}/{b0()},1)"), "0.000000000")
        R.series("cfads_live", "CFADS (live)", "EUR m",
                 formula=lambda k: wrap(at("cfads_raw", k) if k < n_t else "0"))
        p = R.p
        pairs = [("cost", "cost_live"), ("r0", "r0_live"), ("growth", "growth_live"),
                 ("eib_part", "eib_part_live")]
        tests = [f"ABS({p(a)}-{p(b)})>{SIZING_TOLERANCE}*MAX(1,ABS({p(b)}))" for a, b in pairs]
        tests.append(f"SUMPRODUCT(--(ABS({R.span('cfads')}-{R.span('cfads_live')})>{SIZING_TOLERANCE}"
                     f"*(1+ABS({R.span('cfads_live')}))))>0")
        R.param("current", "the sizing case's copy is current", "", (
            f"=IF(NOT(ISNUMBER({p('r0_live')})),\"not checked: select the base case\","
            f"IF(OR({','.join(tests)}),\"stale: copy the live values onto the copy\",\"current\"))"
            if live else "=\"not checked: the deal is sized on another case\""), "@")

    def link(self, sheets: Sequence[tuple[str, _Rows]]) -> None:
        """Write the fund allocation and every block, now that the factory sheets exist."""
        self.sheets = list(sheets)
        sc, n, F = self.sc, self.names, self.fund
        F.section("Fund allocation (the fund's rule on each site's cost of the sizing case)")
        costs = ",".join(self.ref(f, "cost") for f in range(sc.n_factories))
        for f in range(sc.n_factories):
            fac, name = f"factories[{f}]", sc.factories[f].name
            F.param(f"delay_{f}", f"{name}: close after the portfolio's", "years",
                    f"={n[fac + '.start_delay_years']}", "0")
            F.param(f"cap_{f}", f"{name}: most public money (site cap, public share cap)", "EUR m",
                    f"=MIN(IF(ISNUMBER({n[fac + '.public_eur_m_max']}),{n[fac + '.public_eur_m_max']},"
                    f"{n['fund.public_eur_m_per_site_max']}),{n['fund.public_share_of_capex_max']}"
                    f"*{self.ref(f, 'cost')})")
            F.param(f"want_{f}", f"{name}: its public share of cost, within the cap", "EUR m",
                    f"=MIN({n[fac + '.public_share_of_capex']}*{self.ref(f, 'cost')},{F.p(f'cap_{f}')})")
        for f in range(sc.n_factories):
            fac, name = f"factories[{f}]", sc.factories[f].name
            # served in order of close, then listing: what the sites before it wanted
            before = "+".join(f"IF(OR({F.p(f'delay_{j}')}<{F.p(f'delay_{f}')},AND({F.p(f'delay_{j}')}="
                              f"{F.p(f'delay_{f}')},{j}<{f})),{F.p(f'want_{j}')},0)"
                              for j in range(sc.n_factories) if j != f) or "0"
            F.param(f"before_{f}", f"{name}: wanted by the sites served before it", "EUR m", f"={before}")
            rule = n["fund.allocation"]
            F.param(f"alloc_{f}", f"{name}: fund allocation", "EUR m", (
                f"=IF({rule}=\"explicit\",{n[fac + '.fund_eur_m']},IF({rule}=\"equal\","
                f"MIN({n['fund.size_eur_m']}/{sc.n_factories},{F.p(f'cap_{f}')}),IF({rule}=\"pro_rata_capex\","
                f"MIN({n['fund.size_eur_m']}*{self.ref(f, 'cost')}/SUM({costs}),{F.p(f'cap_{f}')}),"
                f"MIN({F.p(f'want_{f}')},MAX({n['fund.size_eur_m']}-{F.p(f'before_{f}')},0)))))"))
        F.flush()
        for R in self.blocks:
            R.flush()
        self.ws.column_dimensions["A"].width = 60
        self.ws.column_dimensions["C"].width = 16
        self.ws.freeze_panes = self.ws.cell(4, FIRST_PERIOD_COL)
