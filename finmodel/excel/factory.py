"""A factory sheet: operations and financing of the selected case in formulas."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from finmodel.engine import Model
from finmodel.excel.inputs import FACTORY_DRIVERS, SHARED_DRIVERS, TIME_DRIVERS, _DriverRefs, _Names
from finmodel.excel.layout import (
    FIRST_PERIOD_COL,
    HEADER,
    HEADER_FILL,
    NUM,
    PCT,
    RATIO,
    SECTION,
    _choose_case,
    _guess,
    _irr,
    _Rows,
    _text,
)
from finmodel.excel.sizing import _SizingSheet
from finmodel.scenario.model import Scenario

# -- the factory sheet -----------------------------------------------------------------------------


def _factory_sheet(wb: Workbook, sc: Scenario, sizing: _SizingSheet, f: int, title: str, names: _Names,
                   drv: _DriverRefs, hw_terms: int, models: Sequence[Model]) -> tuple[str, _Rows]:
    """One factory's operations and financing in formulas of the selected case's drivers (Paths)
    and the Inputs; returns the sheet name and rows. ``hw_terms``: the longest hardware loan
    term the formulas provide for (years); ``models``: the engine's run of each case (IRR
    search starts)."""
    n_t = sc.timeline.horizon_years
    fac = sc.factories[f]
    ws = wb.create_sheet(title)
    if ws.title != title:  # formulas name ``title``: openpyxl must not have renamed the sheet
        raise RuntimeError(f"sheet {title!r} was created as {ws.title!r}")
    n = names

    ws.cell(1, 1, "Factory").font = SECTION
    _text(ws.cell(1, 2), fac.name)
    ws.cell(2, 1, "Case (choose it on the Cover)")
    ws.cell(2, 2, "=selected_case")
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
    last_period = "Timeline!$C$3"
    periods = f"${get_column_letter(FIRST_PERIOD_COL)}$3:${get_column_letter(FIRST_PERIOD_COL + n_t - 1)}$3"
    horizon = f"({last_period}+1)"  # periods in the horizon
    tol = n["tolerance"]

    def per(t: int) -> str:
        return f"{R.col(t)}$3"

    def yes(path: str, value: str) -> str:
        return f"{n[path]}=\"{value}\""

    def decay(base: str, years: str) -> str:  # base ** years, 1 for years <= 0 (as the engine)
        return f"IF({years}>0,{base}^({years}),1)"

    def overlap(t0: str, t1: str, lo: str, hi: str) -> str:  # length of [t0, t1) within [lo, hi)
        return f"MAX(MIN({t1},{hi})-MAX({t0},{lo}),0)"

    # ---- drivers of the selected case ------------------------------------------------------------
    R.section("Drivers of the selected case (links to the Paths sheet)")
    for key, label, unit, _ in SHARED_DRIVERS + FACTORY_DRIVERS:
        R.param(key, label, unit, "=" + drv.value(key, f), "#,##0.000000")
    for key, label, unit, _, _ in TIME_DRIVERS:
        R.series(key, label, unit, formula=lambda t, key=key: drv.at(key, f, t), fmt="#,##0.0000")

    def factor_at(time: str) -> str:  # the GPU-hour price factor of the period holding ``time``
        return f"INDEX({R.span('gpu_hour_price_factor')},1,MIN(MAX(INT({time}+1E-9),0),{last_period})+1)"

    def signing(time: str, bought: str) -> str:  # a contract's price index signed at ``time``
        return f"{factor_at(time)}*{decay(p('keep'), f'{time}-{bought}')}"

    # ---- the factory --------------------------------------------------------------------------------
    R.section("The factory on this case")
    R.param("mw", "facility power", "MW", f"={p('gpus')}*{p('it_kw_per_gpu')}*{p('pue')}/1000")
    R.param("facility_capex", "facility and grid connection capex", "EUR m",
            f"={p('mw')}*({p('facility_capex_eur_m_per_mw')}+{p('grid_capex_eur_m_per_mw')})")
    R.param("build_end", "end of construction", "years after close",
            f"={p('close_year')}+{p('build_years')}", "0.0000")
    R.param("cod", "commercial operation (COD): construction, then the longer delay", "years after close",
            f"={p('build_end')}+MAX({p('grid_delay_years')},{p('chip_delay_years')})", "0.0000")
    R.param("first_purchase", "first GPU fleet bought at", "years after close",
            f"=IF({yes('costs.gpus_bought_at', 'close')},{p('close_year')},{p('cod')})", "0.0000")
    R.param("j0", "period the first fleet is paid in", "period",
            f"=MIN(MAX(-INT(-{p('first_purchase')})-1,0),{last_period})", "0")
    R.param("keep", "GPU-hour price kept per year of a fleet's age (1 - erosion)", "share",
            f"=1-{p('gpu_hour_price_erosion_per_year')}", PCT)
    R.param("step", "price-performance step per year: (1 + growth) x (1 - erosion)", "ratio",
            f"=(1+{p('price_performance_growth_per_year')})*{p('keep')}", "0.000000")
    R.param("resale_keep", "resale value kept per year (resale at 5 years ^ (1/5))", "share",
            f"={p('gpu_resale_share_5y')}^(1/5)", "0.000000")
    R.param("anchor_cap", "capacity under anchor contracts", "share",
            f"=(1-{p('public_access_share')})*{p('anchor_share_of_commercial')}", PCT)
    q, disc = p("public_access_share"), p("public_access_discount")
    R.param("channels", "used hours at the market price (on demand with premium, public access)", "share",
            f"=(1-{q})*(1-{p('anchor_share_of_commercial')})*(1+{p('on_demand_premium')})+{q}*(1-{disc})"
            f"+IF({yes('market.public_access_payer', 'fund')},{q}*{disc},0)", "0.000000")
    R.param("level", "contract price against a one-year contract's (average erosion over the term)",
            "ratio", f"=IF({p('keep')}=1,1,(1-{p('keep')}^{p('anchor_contract_years')})"
                     f"/({p('anchor_contract_years')}*(1-{p('keep')})))", "0.000000")
    R.param("other_share", "non-energy opex per year", "share of capex in service",
            f"={p('staff_maintenance_share_of_capex')}+{p('network_software_share_of_capex')}"
            f"+{p('insurance_property_share_of_capex')}", "0.0000%")
    R.param("fleet_hours", "GPU-hours of a fleet-year", "m GPU-hours",
            f"={p('gpus')}*{n['hours_per_year']}/1000000", "#,##0.000")
    R.param("full_gwh", "electricity of a year at full power", "GWh",
            f"={p('mw')}*{n['hours_per_year']}/1000", "#,##0.000")
    R.param("initial_cost", "first fleet's cost (GPUs x that period's price per GPU)", "EUR m",
            f"=IF({p('first_purchase')}<{horizon},{p('gpus')}*INDEX({R.span('compute_capex_eur_per_gpu')},1,"
            f"{p('j0')}+1)/1000000,0)")
    plant_life = n["costs.plant_life_years"]
    n_plant = n_t // sc.costs.plant_life_years + 2  # replacements a horizon can hold (the engine's)
    index_span = R.span("opex_index")
    last_index = f"INDEX({index_span},1,{horizon})"
    before_last = f"INDEX({index_span},1,MAX({horizon}-1,1))"
    for k in range(1, n_plant + 1):
        R.param(f"plant_on_{k}", f"plant replacement {k} reserved for within the horizon", "1/0",
                f"=IF(AND({p('plant_share_of_facility')}>0,{p('build_end')}+{k}*{plant_life}-{plant_life}"
                f"<{horizon}),1,0)", "0")
        R.param(f"plant_due_{k}", f"plant replacement {k} due", "years after close",
                f"={p('build_end')}+{k}*{plant_life}", "0.0000")
        R.param(f"plant_pay_{k}", f"plant replacement {k} paid in period", "period",
                f"=MAX(-INT(-{p(f'plant_due_{k}')})-1,0)", "0")
        pay = p(f"plant_pay_{k}")
        R.param(f"plant_cost_{k}", f"plant replacement {k} cost (opex index of that period, extended "
                f"beyond the horizon at its last growth)", "EUR m",
                f"={p('plant_share_of_facility')}*{p('facility_capex')}*IF({pay}<{horizon},"
                f"INDEX({index_span},1,{pay}+1),{last_index}*IF({before_last}<>0,{last_index}/{before_last},1)"
                f"^({pay}-{horizon}+1))")

    def plant_sum(term: Callable[[int], str]) -> str:
        return "+".join(f"{p(f'plant_on_{k}')}*{term(k)}" for k in range(1, n_plant + 1))

    # ---- flags ------------------------------------------------------------------------------------
    R.section("Flags")
    R.series("last", "last period", "1/0", formula=lambda t: f"IF({per(t)}={last_period},1,0)", fmt="0")
    R.series("repaying", "repayment period", "1/0", formula=lambda t: f"IF({per(t)}>={p('r0')},1,0)",
             fmt="0")
    R.series("capitalise", "interest capitalised (construction and grace)", "1/0",
             formula=lambda t: f"IF(AND({c('repaying', t)}=0,{c('last', t)}=0),1,0)", fmt="0")

    # ---- the GPU fleets -----------------------------------------------------------------------------
    R.section("GPU fleets: the fleet serving at the period start, its retirement and successor")

    def state(key: str, label: str, unit: str, start: str, fmt: str = "0.0000") -> None:
        R.series(f"{key}_open", f"{label} (period start)", unit, first=f"={start}",
                 formula=lambda t: c(f"{key}_close", t - 1), fmt=fmt)

    state("bought", "serving fleet bought", "years after close", p("first_purchase"))
    state("cost", "serving fleet's cost", "EUR m", p("initial_cost"), NUM)
    state("compute", "serving fleet's compute per GPU (first fleet = 1)", "ratio", "1", "0.000000")
    state("generation", "serving fleet's generation price step", "ratio", "1", "0.000000")
    state("retires", "serving fleet retires at", "years after close",
          f"{p('cod')}+{p('gpu_life_years')}")
    state("signed", "running anchor contract signed at", "years after close", p("cod"))
    state("signed_price", "running anchor contract's price index", "ratio",
          signing(p("cod"), p("first_purchase")), "0.000000")
    R.series("start", "service starts (COD or the period start)", "years after close",
             formula=lambda t: f"MAX({per(t)},{p('cod')})", fmt="0.0000")
    R.series("age_factor", "serving fleet's price kept for its age", "ratio", fmt="0.000000",
             formula=lambda t: decay(p("keep"), f"{c('start', t)}-{c('bought_open', t)}"))
    R.series("energy_per_hour", "energy per GPU-hour", "EUR", fmt="0.0000",
             formula=lambda t: f"{p('mw')}/{p('gpus')}*{c('power_price_eur_mwh', t)}")
    R.series("hours_used", "hours a GPU is used in a year", "hours", fmt="#,##0.0", formula=lambda t: (
        f"{n['hours_per_year']}*MAX({c('utilisation_steady', t)},1E-9)"))
    R.series("old_margin", "serving fleet's cash margin per GPU-hour", "EUR", fmt="0.0000",
             formula=lambda t: (
        f"{p('gpu_hour_price_launch_eur')}*{c('gpu_hour_price_factor', t)}*{c('generation_open', t)}"
        f"*{c('age_factor', t)}-{c('energy_per_hour', t)}-{p('other_share')}*{c('cost_open', t)}*1000000"
        f"/{p('gpus')}/{c('hours_used', t)}"))
    R.series("new_margin", "a new fleet's cash margin per GPU-hour", "EUR", fmt="0.0000", formula=lambda t: (
        f"{p('gpu_hour_price_launch_eur')}*{c('gpu_hour_price_factor', t)}*{p('step')}^({per(t)}+1"
        f"-{p('first_purchase')})-{c('energy_per_hour', t)}-{p('other_share')}"
        f"*{c('compute_capex_eur_per_gpu', t)}/{c('hours_used', t)}"))
    R.series("retire_early", "retired early: negative margin, a new fleet's positive", "1/0", fmt="0",
             formula=lambda t: (
                 f"IF(AND({yes('market.retire_unprofitable_fleets', 'True')},{c('start', t)}<{per(t)}+1,"
                 f"{per(t)}+1<{c('retires_open', t)},{per(t)}+1<{horizon},{c('old_margin', t)}<0,"
                 f"{c('new_margin', t)}>0),1,0)"))
    R.series("retires", "serving fleet retires at (after the test)", "years after close", fmt="0.0000",
             formula=lambda t: f"IF({c('retire_early', t)}=1,{per(t)}+1,{c('retires_open', t)})")
    R.series("seg1", "years the serving fleet serves in the period", "years", fmt="0.0000",
             formula=lambda t: f"MAX(MIN({per(t)}+1,{c('retires', t)})-{c('start', t)},0)")
    R.series("seg2", "years its successor serves in the period", "years", fmt="0.0000",
             formula=lambda t: f"MAX({per(t)}+1-{c('retires', t)},0)")
    R.series("ramp", "years in the launch year's utilisation", "years", fmt="0.0000",
             formula=lambda t: f"MAX(MIN({per(t)}+1,{p('cod')}+1)-{c('start', t)},0)")
    R.series("used1", "used years of the serving fleet", "years", fmt="0.0000", formula=lambda t: (
        f"{c('ramp', t)}*{p('utilisation_launch_year')}+({c('seg1', t)}-{c('ramp', t)})"
        f"*{c('utilisation_steady', t)}"))
    R.series("used2", "used years of the successor", "years", fmt="0.0000",
             formula=lambda t: f"{c('seg2', t)}*{c('utilisation_steady', t)}")
    R.series("event", "a fleet retires in the period", "1/0", fmt="0", formula=lambda t: (
        f"IF(AND({c('retires', t)}>{per(t)},{c('retires', t)}<={per(t)}+1),1,0)"))
    R.series("refresh", "GPU refresh capex (successor bought)", "EUR m", total="sum", formula=lambda t: (
        f"IF(AND({c('event', t)}=1,{c('retires', t)}<{horizon}),{p('gpus')}"
        f"*({c('compute_capex_eur_per_gpu', t)}/1000000),0)"))
    growth_from_first = lambda t: f"{c('retires', t)}-{p('first_purchase')}"  # noqa: E731
    R.series("new_compute", "successor's compute per GPU", "ratio", fmt="0.000000", formula=lambda t: (
        f"IF(OR({c('event', t)}=1,{c('seg2', t)}>0),(1+{p('price_performance_growth_per_year')})"
        f"^({growth_from_first(t)}),0)"))
    R.series("new_generation", "successor's generation price step", "ratio", fmt="0.000000",
             formula=lambda t: (f"IF(OR({c('event', t)}=1,{c('seg2', t)}>0),"
                                f"{p('step')}^({growth_from_first(t)}),0)"))
    R.series("resale", "GPU resale proceeds", "EUR m", total="sum", formula=lambda t: (
        f"IF({c('event', t)}=1,{c('cost_open', t)}*"
        f"{decay(p('resale_keep'), c('retires', t) + '-' + c('bought_open', t))},0)"))

    # ---- anchor contracts ---------------------------------------------------------------------------
    R.section("Anchor contracts (renewed every term at the market price of the signing period)")
    R.series("seg_end", "serving fleet's service ends in the period at", "years after close", fmt="0.0000",
             formula=lambda t: f"{c('start', t)}+{c('seg1', t)}")
    R.series("renewed_at_start", "contract renewed at the start", "1/0", fmt="0", formula=lambda t: (
        f"IF({c('signed_open', t)}+{p('anchor_contract_years')}<={c('start', t)},1,0)"))
    R.series("signed1", "contract running at the start signed at", "years after close", fmt="0.0000",
             formula=lambda t: (f"IF({c('renewed_at_start', t)}=1,{c('signed_open', t)}"
                                f"+{p('anchor_contract_years')},{c('signed_open', t)})"))
    R.series("price1", "its price index", "ratio", fmt="0.000000", formula=lambda t: (
        f"IF({c('renewed_at_start', t)}=1,{signing(c('signed1', t), c('bought_open', t))},"
        f"{c('signed_price_open', t)})"))
    R.series("renewed_within", "contract renewed within the period", "1/0", fmt="0", formula=lambda t: (
        f"IF({c('signed1', t)}+{p('anchor_contract_years')}<{c('seg_end', t)},1,0)"))
    R.series("signed2", "renewal signed at", "years after close", fmt="0.0000",
             formula=lambda t: f"{c('signed1', t)}+{p('anchor_contract_years')}")
    R.series("price2", "renewal's price index", "ratio", fmt="0.000000",
             formula=lambda t: signing(c("signed2", t), c("bought_open", t)))
    R.series("contracted1", "contract price x years, serving fleet (per unit of launch price)", "years",
             fmt="0.000000", formula=lambda t: (
                 f"IF({c('seg1', t)}>0,((MIN({c('seg_end', t)},{c('signed1', t)}"
                 f"+{p('anchor_contract_years')})"
                 f"-MAX({c('start', t)},{c('signed1', t)}))*{c('price1', t)}+IF({c('renewed_within', t)}=1,"
                 f"(MIN({c('seg_end', t)},{c('signed2', t)}+{p('anchor_contract_years')})"
                 f"-MAX({c('start', t)},{c('signed2', t)}))*{c('price2', t)},0))*{c('generation_open', t)}"
                 f"*{p('level')}*IF({yes('market.anchor_take_or_pay', 'True')},1,"
                 f"{c('used1', t)}/{c('seg1', t)}),0)"))
    R.series("contracted2", "contract price x years, successor", "years", fmt="0.000000", formula=lambda t: (
        f"IF({c('seg2', t)}>0,{c('seg2', t)}*{factor_at(c('retires', t))}*{c('new_generation', t)}"
        f"*{p('level')}*IF({yes('market.anchor_take_or_pay', 'True')},1,{c('used2', t)}/{c('seg2', t)}),0)"))
    for key, label, unit, event, otherwise, fmt in (
            ("bought", "serving fleet bought", "years after close", c, "bought_open", "0.0000"),
            ("cost", "serving fleet's cost", "EUR m", "refresh", "cost_open", NUM),
            ("compute", "serving fleet's compute per GPU", "ratio", "new_compute", "compute_open",
             "0.000000"),
            ("generation", "serving fleet's generation step", "ratio", "new_generation", "generation_open",
             "0.000000")):
        new = (lambda t: c("retires", t)) if key == "bought" else (lambda t, e=event: c(e, t))
        R.series(f"{key}_close", f"{label} (period end)", unit, fmt=fmt,
                 formula=lambda t, new=new, o=otherwise: f"IF({c('event', t)}=1,{new(t)},{c(o, t)})")
    R.series("retires_close", "serving fleet retires at (period end)", "years after close", fmt="0.0000",
             formula=lambda t: (f"IF({c('event', t)}=1,{c('retires', t)}+{p('gpu_life_years')},"
                                f"{c('retires', t)})"))
    R.series("signed_close", "running contract signed at (period end)", "years after close", fmt="0.0000",
             formula=lambda t: (f"IF({c('event', t)}=1,{c('retires', t)},IF({c('seg1', t)}>0,"
                                f"IF({c('renewed_within', t)}=1,{c('signed2', t)},{c('signed1', t)}),"
                                f"{c('signed_open', t)}))"))
    R.series("signed_price_close", "running contract's price index (period end)", "ratio", fmt="0.000000",
             formula=lambda t: (f"IF({c('event', t)}=1,{factor_at(c('retires', t))},IF({c('seg1', t)}>0,"
                                f"IF({c('renewed_within', t)}=1,{c('price2', t)},{c('price1', t)}),"
                                f"{c('signed_price_open', t)}))"))

    # ---- operations ---------------------------------------------------------------------------------
    R.section("Operations (EUR m)")
    R.series("serving", "years of service in the period", "years", fmt="0.0000",
             formula=lambda t: f"{c('seg1', t)}+{c('seg2', t)}")
    R.series("used", "years of use in the period", "years", fmt="0.0000",
             formula=lambda t: f"{c('used1', t)}+{c('used2', t)}")
    R.series("gpu_hours", "GPU-hours sold", "m GPU-hours", total="sum",
             formula=lambda t: f"{p('fleet_hours')}*{c('used', t)}")
    R.series("market", "market price x used years (per unit of launch price)", "years", fmt="0.000000",
             formula=lambda t: (f"{c('gpu_hour_price_factor', t)}*({c('used1', t)}*{c('age_factor', t)}"
                                f"*{c('generation_open', t)}+{c('used2', t)}*{c('new_generation', t)})"))
    R.series("revenue_anchor", "revenue: anchor contracts", "EUR m", total="sum", formula=lambda t: (
        f"{p('fleet_hours')}*{p('gpu_hour_price_launch_eur')}*({c('contracted1', t)}+{c('contracted2', t)})"
        f"*{p('anchor_cap')}"))
    R.series("revenue_market", "revenue: on demand and public access", "EUR m", total="sum",
             formula=lambda t: (f"{p('fleet_hours')}*{p('gpu_hour_price_launch_eur')}*{c('market', t)}"
                                f"*{p('channels')}"))
    R.series("revenue", "revenue", "EUR m", total="sum",
             formula=lambda t: f"{c('revenue_anchor', t)}+{c('revenue_market', t)}")
    R.series("energy_gwh", "electricity used", "GWh", total="sum", formula=lambda t: (
        f"{p('full_gwh')}*({c('used', t)}+{p('idle_power_share')}*({c('serving', t)}-{c('used', t)}))"))
    R.series("energy_cost", "energy cost", "EUR m", total="sum", formula=lambda t: (
        f"{c('energy_gwh', t)}*{c('power_price_eur_mwh', t)}/{n['mwh_per_gwh_k']}"))
    R.series("in_service", "cost of the GPU fleets in service x years", "EUR m",
             formula=lambda t: f"{c('cost_open', t)}*{c('seg1', t)}+{c('refresh', t)}*{c('seg2', t)}")
    R.series("other_opex", "other opex", "EUR m", total="sum", formula=lambda t: (
        f"{p('other_share')}*({p('facility_capex')}*MIN(MAX({per(t)}+1-{p('build_end')},0),1)"
        f"*{c('opex_index', t)}+{c('in_service', t)})"))
    R.series("ebitda", "EBITDA", "EUR m", total="sum",
             formula=lambda t: f"{c('revenue', t)}-{c('energy_cost', t)}-{c('other_opex', t)}")
    R.series("construction", "facility and grid construction", "EUR m", total="sum", formula=lambda t: (
        f"{p('facility_capex')}*({overlap(per(t), per(t) + '+1', p('close_year'), p('build_end'))}"
        f"/{p('build_years')})"))
    R.series("gpu_initial", "first GPU fleet bought", "EUR m", total="sum",
             formula=lambda t: f"IF({per(t)}={p('j0')},{p('initial_cost')},0)")
    R.series("uses", "construction uses (facility, grid, first fleet)", "EUR m", total="sum",
             formula=lambda t: f"{c('construction', t)}+{c('gpu_initial', t)}")
    def due(k: int, shift: str = "") -> str:
        return p(f"plant_due_{k}") + shift

    R.series("plant", "plant lifecycle reserve contribution", "EUR m", total="sum",
             formula=lambda t: plant_sum(lambda k: (
                 f"{p(f'plant_cost_{k}')}/{plant_life}*"
                 f"{overlap(per(t), per(t) + '+1', due(k, '-' + plant_life), due(k))}")))
    R.series("replacement", "plant replaced (paid from the reserve)", "EUR m", total="sum",
             formula=lambda t: plant_sum(lambda k: (
                 f"IF(AND({p(f'plant_due_{k}')}<{horizon},{p(f'plant_pay_{k}')}={per(t)}),"
                 f"{p(f'plant_cost_{k}')},0)")))
    R.series("fleet_dep", "depreciation of the GPU fleets", "EUR m", total="sum",
             formula=lambda t: f"{c('in_service', t)}/{p('gpu_life_years')}")
    facility_life = n["costs.facility_life_years"]
    R.series("facility_dep", "depreciation of the facility and replaced plant", "EUR m", total="sum",
             formula=lambda t: (
                 f"{p('facility_capex')}/{facility_life}*"
                 f"{overlap(per(t), per(t) + '+1', p('build_end'), p('build_end') + '+' + facility_life)}+"
                 + plant_sum(lambda k: (
                     f"IF({p(f'plant_due_{k}')}<{horizon},{p(f'plant_cost_{k}')}/{plant_life}*"
                     f"{overlap(per(t), per(t) + '+1', due(k), due(k, '+' + plant_life))},0)"))))
    R.series("depreciation", "depreciation", "EUR m", total="sum",
             formula=lambda t: f"{c('fleet_dep', t)}+{c('facility_dep', t)}")
    R.series("fleet_value", "fleet resale value at period end", "EUR m", formula=lambda t: (
        f"IF({per(t)}>={p('j0')},{c('cost_close', t)}*"
        f"{decay(p('resale_keep'), per(t) + '+1-' + c('bought_close', t))},0)"))
    R.series("facility_book", "facility book value at period end", "EUR m",
             first=f"={c('construction', 0)}+{c('replacement', 0)}-{c('facility_dep', 0)}",
             formula=lambda t: (f"{c('facility_book', t - 1)}+{c('construction', t)}+{c('replacement', t)}"
                                f"-{c('facility_dep', t)}"))
    last_col = n_t - 1
    R.param("fleet_terminal", "fleet at resale value at the horizon", "EUR m",
            f"={c('cost_close', last_col)}*"
            f"{decay(p('resale_keep'), horizon + '-' + c('bought_close', last_col))}")
    R.param("fleet_book", "fleet book value at the horizon", "EUR m",
            f"={p('initial_cost')}+SUM({R.span('refresh')})-SUM({R.span('fleet_dep')})")
    R.param("plant_release", "lifecycle reserve released at the horizon", "EUR m",
            f"=SUM({R.span('plant')})-SUM({R.span('replacement')})")
    R.series("terminal_gain", "taxable gain on the fleet at the horizon", "EUR m", total="sum",
             formula=lambda t: f"IF({c('last', t)}=1,{p('fleet_terminal')}-{p('fleet_book')},0)")
    R.series("taxable0", "taxable income before interest", "EUR m",
             formula=lambda t: (f"{c('ebitda', t)}-{c('depreciation', t)}+{c('resale', t)}"
                                f"+{c('terminal_gain', t)}"), total="sum")
    R.series("terminal", "terminal value and lifecycle reserve released (horizon)", "EUR m", total="sum",
             formula=lambda t: (f"IF({c('last', t)}=1,{p('fleet_terminal')}+(SUM({R.span('construction')})"
                                f"+SUM({R.span('replacement')})-SUM({R.span('facility_dep')}))"
                                f"+{p('plant_release')},0)"))

    # ---- terms of the deal, and this case's repayment window -----------------------------------------
    R.section("Financing terms")
    rate = p("base_rate")
    R.param("r_e", "EIB rate", "1/yr", f"={rate}+{p('eib_margin')}", PCT)
    R.param("r_c", "commercial senior loan rate", "1/yr", f"={rate}+{p('senior_spread')}", PCT)
    R.param("r_h", "hardware loan rate", "1/yr", f"={rate}+{p('hardware_loan_spread')}", PCT)
    R.param("r_s", "fund subordinated loan rate", "1/yr", f"={n['fund.sub_loan_rate']}", PCT)
    for key, label, unit, fmt in (("eib_commit", "EIB commitment (Sizing sheet)", "EUR m", NUM),
                                  ("com_commit", "commercial senior commitment", "EUR m", NUM),
                                  ("fund_commit", "fund allocation", "EUR m", NUM),
                                  ("base_cost", "construction cost of the sizing case", "EUR m", NUM),
                                  ("hw_share", "largest share of a refresh a hardware loan may lend", "share",
                                   PCT),
                                  ("n_terms", "repayment years agreed at close", "years", "0")):
        src = {"fund_commit": "fund", "base_cost": "cost", "n_terms": "n"}.get(key, key)
        R.param(key, label, unit, "=" + sizing.ref(f, src), fmt)
    R.param("fleet_life", "whole years a GPU fleet serves on this case", "years",
            f"=MAX(1,ROUND({p('gpu_life_years')},0))", "0")
    R.param("hw_life", "hardware loan term (no longer than a fleet serves on this case)", "years",
            f"=MIN({n['private.hardware_loan_tenor_years']},{p('fleet_life')})", "0")
    R.param("hw_factor", "hardware annuity per EUR borrowed", "1/yr",
            f"={p('r_h')}/(1-(1+{p('r_h')})^-{p('hw_life')})", "0.000000")
    R.param("fees", "front-end fees", "EUR m",
            f"={n['eib.upfront_fee']}*{p('eib_commit')}+{n['private.commercial_upfront_fee']}*{p('com_commit')}")
    R.param("close", "period of financial close", "period",
            f"=MIN(MAX(INT({p('close_year')}),0),{last_period})", "0")
    R.series("last_draw", "last construction draw so far", "period", fmt="0",
             first=f"=IF({c('uses', 0)}>{tol},0,-1)",
             formula=lambda t: f"IF({c('uses', t)}>{tol},{per(t)},{c('last_draw', t - 1)})")
    grace = n["eib.grace_years"]
    R.param("r0", "first repayment period (first full period after COD)", "period",
            f"=INT(MIN(MAX(MAX(IF(ISNUMBER({grace}),{p('close_year')}+{grace},-INT(-({p('cod')}-1E-9))),"
            f"{c('last_draw', n_t - 1)}+1),1),{last_period}))", "0")
    R.param("n_rep", "repayment years on this case (to maturity at close + tenor)", "years",
            f"=MAX(MIN({p('n_terms')},{p('close')}+{n['eib.tenor_years']}-{p('r0')}),1)", "0")
    R.series("profile", "principal profile agreed at close (share of the balance at the first "
             "repayment, by repayment year from column D)", "share", fmt="0.000000",
             formula=lambda k: sizing.cell(f, "shares", k))
    R.param("profile_scale", "profile rescaled to the years left (a later first repayment)", "ratio",
            f"=IF({p('n_rep')}<{p('n_terms')},IF(SUMPRODUCT(({periods}<{p('n_rep')})*{R.span('profile')})"
            f">1E-12,1/SUMPRODUCT(({periods}<{p('n_rep')})*{R.span('profile')}),0),1)", "0.000000")
    re_ = p("r_e")

    def principal_share(t: int) -> str:
        k = f"({per(t)}-{p('r0')})"
        nn = p("n_rep")
        return (f"IF(OR({k}<0,{k}>={nn}),0,IF({yes('eib.repayment', 'annuity')},IF(ABS({re_})<1E-12,1/{nn},"
                f"{re_}*(1+{re_})^{k}/((1+{re_})^{nn}-1)),IF(OR({yes('eib.repayment', 'linear')},"
                f"{p('profile_scale')}<=0),1/{nn},INDEX({R.span('profile')},1,{k}+1)*{p('profile_scale')})))")

    R.series("share", "senior principal on this case (share of the balance at first repayment)", "share",
             formula=principal_share, total="sum", fmt="0.0000")
    R.param("is_sub", "fund instrument is a subordinated loan", "1/0",
            f"=IF({yes('fund.instrument', 'sub_loan')},1,0)", "0")
    R.param("is_equity", "fund instrument is equity", "1/0",
            f"=IF({yes('fund.instrument', 'equity')},1,0)", "0")
    R.param("mode_hw", "refresh by hardware loan", "1/0",
            f"=IF({yes('private.refresh_funding', 'hardware_loan')},1,0)", "0")
    R.param("mode_cash", "refresh from operating cash", "1/0",
            f"=IF({yes('private.refresh_funding', 'cash')},1,0)", "0")
    R.param("dscr_trigger", "DSCR covenant is an event of default", "1/0",
            f"=IF({yes('eib.default_trigger', 'dscr_or_payment')},1,0)", "0")

    # ---- sources and uses -------------------------------------------------------------------------------
    R.section("Construction funding")
    R.param("cost", "construction cost of this case", "EUR m", f"=SUM({R.span('uses')})")
    R.param("scale", "facilities drawn (share of commitments)", "share",
            f"=MIN(1,{p('cost')}/{p('base_cost')})", PCT)
    for key, label, commit in (("eib_draw", "EIB drawn", "eib_commit"),
                               ("com_draw", "commercial senior drawn", "com_commit"),
                               ("fund_draw", "fund instrument paid in", "fund_commit")):
        # senior loans only within their availability period from close; the fund at any time
        senior = key != "fund_draw"
        R.series(key, label, "EUR m", formula=lambda t, commit=commit, senior=senior: (
            f"IF(AND({p('cost')}>0"
            + (f",{per(t)}-{p('close')}<{names['eib.availability_years']}" if senior else "")
            + f"),{p(commit)}*{p('scale')}*{c('uses', t)}/{p('cost')},0)"), total="sum")
    R.series("fees_t", "fees", "EUR m", formula=lambda t: f"IF({per(t)}={p('close')},{p('fees')},0)",
             total="sum")
    R.series("equity_build", "equity for construction and fees", "EUR m", formula=lambda t: (
        f"{c('uses', t)}+{c('fees_t', t)}-{c('eib_draw', t)}-{c('com_draw', t)}"
        f"-IF({p('is_equity')}=1,0,{c('fund_draw', t)})"), total="sum")
    # each hardware loan is sized at its refresh (financing._hardware_loan): at most its share of
    # the refresh, and the annuity that the replaced fleet's CFADS, year by year of its life,
    # carries at the target DSCR after the senior loans' scheduled service
    R.series("fleet_start", "period the GPU fleet in service was bought", "period", fmt="0",
             first=f"=IF(OR({c('gpu_initial', 0)}>{tol},{c('refresh', 0)}>{tol}),0,-1)",
             formula=lambda t: (f"IF(OR({c('gpu_initial', t)}>{tol},{c('refresh', t)}>{tol}),{per(t)},"
                                f"{c('fleet_start', t - 1)})"))
    R.series("senior_proj", "senior service scheduled at the first repayment (projection)", "EUR m",
             formula=lambda t: (
                 f"IF({per(t)}>={p('r0')},{c('share', t)}*({p('b0_e')}+{p('b0_c')})+(1-"
                 + (f"SUM({R.col(0)}{R.at['share']}:{R.col(t - 1)}{R.at['share']})" if t > 0 else "0")
                 + f")*({p('b0_e')}*{p('r_e')}+{p('b0_c')}*{p('r_c')}),0)"))

    def drawn_between(first: str, last: str) -> str:
        """Hardware loans drawn in the periods first..last (formulas)."""
        return (f"SUMIFS({R.span('hw_draw')},{periods},\">=\"&({first}),"
                f"{periods},\"<=\"&({last}))")

    def hw_loan(t: int) -> str:
        if t == 0 or t >= n_t - 1:
            return "0"
        start = c("fleet_start", t - 1)
        caps = []
        for k in range(1, hw_terms + 1):  # the term is at most the fleet's life
            seen = f"INDEX({R.span('cfads_raw')},1,MIN({start}+{k},{per(t)}-1)+1)"
            senior = c("senior_proj", t + k) if t + k < n_t else "0"
            prior = f"{p('hw_factor')}*{drawn_between(f'{per(t)}+{k}-' + p('hw_life'), f'{per(t)}-1')}"
            caps.append(f"IF({k}<={p('hw_life')},{seen}/{names['eib.target_dscr']}-{senior}-{prior},9E+99)")
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
    loan = {"e": "EIB", "c": "commercial loan", "s": "fund loan"}
    for key, pre in (("b0_e", "pre_e"), ("b0_c", "pre_c"), ("b0_s", "pre_s")):
        R.param(key, f"{loan[pre[4:]]} balance at the first repayment", "EUR m",
                f"=IF({p('r0')}>0,INDEX({R.span(pre)},1,{p('r0')}),0)")

    # ---- the waterfall --------------------------------------------------------------------------------
    R.section("Senior debt, tax and CFADS")
    R.series("alive", "not in default at the period start", "1/0",
             formula=lambda t: f"{c('alive_close', t - 1)}", first=1, fmt="0")
    for key, close, label in (
            ("open_e", "close_e", "EIB balance at the period start"),
            ("open_c", "close_c", "commercial balance at the period start"),
            ("open_h", "close_h", "hardware loan balance at the period start"),
            ("open_s", "close_s", "fund loan balance at the period start"),
            ("dsra_open", "dsra_close", "debt service reserve at the period start"),
            ("trapped_open", "trapped_close", "trapped cash at the period start"),
            ("pool_open", "pool_close", "tax losses brought forward"),
            ("int_cf_open", "int_cf_close", "interest brought forward (interest limitation)"),
            ("mra_open", "mra_close", "maintenance reserve at the period start")):
        R.series(key, label, "EUR m", formula=lambda t, close=close: c(close, t - 1), first=0.0)
    R.series("int_e", "EIB interest", "EUR m", formula=lambda t: f"{c('open_e', t)}*{p('r_e')}")
    R.series("int_c", "commercial interest", "EUR m", formula=lambda t: f"{c('open_c', t)}*{p('r_c')}")
    R.series("int_h", "hardware loan interest", "EUR m",
             formula=lambda t: f"{c('open_h', t)}*{p('r_h')}")
    for key, open_, b0 in (("sched_e", "open_e", "b0_e"), ("sched_c", "open_c", "b0_c")):
        R.series(key, f"{loan[key[-1]]} scheduled principal", "EUR m", formula=lambda t, o=open_, b=b0: (
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
        f"IF(AND({per(t)}>={p('r0')},{per(t)}<{p('r0')}+{names['costs.facility_life_years']}),"
        f"SUM({R.span('idc')})/{names['costs.facility_life_years']},0)"))
    R.series("borrowing", "borrowing costs (with interest carried forward)", "EUR m", formula=lambda t: (
        f"{c('interest_deductible', t)}+{c('idc_dep', t)}+{c('int_cf_open', t)}"))
    R.series("deduct", "borrowing costs deducted (interest limitation)", "EUR m", formula=lambda t: (
        f"IF({names['tax.interest_limitation']}=\"True\",MIN({c('borrowing', t)},MAX("
        f"{names['tax.interest_limit_share_of_ebitda']}*MAX({c('ebitda', t)},0),"
        f"{names['tax.interest_safe_harbour_eur_m']})),"
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
                                f"{c('cfads_raw', t)}<{names['eib.default_dscr']}*{c('service', t)}),1,0)"))
    R.series("cured", "breach cured with equity (cures left, not the test before)", "1/0", fmt="0",
             total="sum", first=f"=IF(AND({c('breach', 0)}=1,{names['eib.equity_cures_max']}>0),1,0)",
             formula=lambda t: (
                 f"IF(AND({c('breach', t)}=1,SUM({R.col(0)}{R.at['cured']}:{R.col(t - 1)}{R.at['cured']})"
                 f"<{names['eib.equity_cures_max']},{c('cured', t - 1)}=0),1,0)"))
    R.series("cure", "equity cure (up to the default DSCR)", "EUR m", total="sum", formula=lambda t: (
        f"IF({c('cured', t)}=1,{names['eib.default_dscr']}*{c('service', t)}-{c('cfads_raw', t)},0)"))
    R.series("breach_run", "uncured covenant breaches in a row", "tests", fmt="0",
             first=f"=IF(AND({c('breach', 0)}=1,{c('cured', 0)}=0),1,0)",
             formula=lambda t: (f"IF(AND({c('breach', t)}=1,{c('cured', t)}=0),"
                                f"{c('breach_run', t - 1)}+1,0)"))
    R.series("short", "payment default (cash + reserves short of what is due)", "1/0", fmt="0",
             formula=lambda t: f"IF({c('available', t)}<{c('due', t)}-{tol},1,0)")
    R.series("fails", "event of default: lenders accelerate", "1/0", fmt="0", formula=lambda t: (
        f"IF(OR({c('short', t)}=1,AND({p('dscr_trigger')}=1,"
        f"{c('breach_run', t)}>={names['eib.breaches_to_acceleration']})),1,0)"))
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
        R.series(key, f"{loan[key[-1]]} balance after this period's service", "EUR m",
                 formula=lambda t, o=open_, i=int_, pr=prin, dr=draw: (
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
        return (f"{names['eib.dsra_months']}/{names['months_per_year']}*(IF({per(n)}>={p('r0')},"
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
        f"IF(AND({c('service', t)}>{tol},{c('cfads_raw', t)}<{names['eib.lockup_dscr']}*{c('service', t)},"
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
        f"{names['eib.cash_sweep_share']},{names['eib.cash_sweep_share_repeat']}),"
        f"{c('new_e', t)}+{c('new_c', t)}),0)"))
    R.series("sweep_e", "of which to the EIB", "EUR m", formula=lambda t: (
        f"IF({c('sweep', t)}>0,IF({names['eib.cash_sweep_to']}=\"eib_first\","
        f"MIN({c('sweep', t)},{c('new_e', t)}),IF({names['eib.cash_sweep_to']}=\"commercial_first\","
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
        f"IF({c('last', t)}=1,0,({c('fleet_value', t)}+{c('facility_book', t)}"
        f"*(1-{p('facility_recovery_haircut')}))"
        f"*(1-{names['eib.enforcement_cost_share']}))"))
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
    R.param("irr_guess", "IRR search start (the engine's IRR of each case, rounded)", "1/yr",
            _choose_case([_guess(m.financing["private_equity_flow"][0, f]) for m in models]), PCT)
    R.param("equity_irr", "private equity IRR", "1/yr", "=" + _irr(R.span("private_flow"), p("irr_guess")),
            PCT)
    flow_row = R.at["private_flow"]
    first, rest = R.c("private_flow", 0), f"{R.col(1)}{flow_row}:{R.col(n_t - 1)}{flow_row}"
    R.param("npv_at_irr", "NPV of the private equity flow at its IRR (about 0; blank: no IRR)",
            "EUR m", f"=IF(ISNUMBER({p('equity_irr')}),{first}+NPV({p('equity_irr')},{rest}),\"\")")
    R.param("equity_npv", "private equity NPV at the hurdle (end of period 0)", "EUR m",
            f"={first}+NPV({names['private.equity_hurdle_irr']},{rest})")
    R.param("min_dscr", "minimum DSCR", "ratio", f"=IF(COUNT({R.span('dscr')})>0,MIN({R.span('dscr')}),\"\")",
            RATIO)
    R.param("avg_dscr", "average DSCR (years with senior service)", "ratio",
            f"=IF(COUNT({R.span('dscr')})>0,AVERAGE({R.span('dscr')}),\"\")", RATIO)
    R.param("defaulted", "defaulted", "1/0", f"=IF(SUM({R.span('defaults')})>0,1,0)", "0")
    R.param("payment_default", "defaulted on a payment", "1/0",
            f"=IF(SUMPRODUCT({R.span('defaults')},{R.span('short')})>0,1,0)", "0")
    R.param("eib_loss_total", "EIB loss in total", "EUR m", f"=SUM({R.span('eib_loss')})")

    R.section("Cover ratios (EIB and commercial loans; discounted at the EIB rate, flows at period ends)")
    R.series("senior_open", "EIB and commercial balance at the period start", "EUR m",
             formula=lambda t: f"{c('open_e', t)}+{c('open_c', t)}")
    R.series("last_senior", "last period with a senior balance so far", "period", fmt="0",
             first=f"=IF({c('senior_open', 0)}>{tol},0,-1)",
             formula=lambda t: f"IF({c('senior_open', t)}>{tol},{per(t)},{c('last_senior', t - 1)})")
    R.series("cfads_life", "CFADS over the loans' life", "EUR m", formula=lambda t: (
        f"IF({per(t)}<={c('last_senior', n_t - 1)},{c('cfads', t)},0)"))
    end = R.col(n_t - 1)

    def cover(flow: str) -> Callable[[int], str]:
        return lambda t: (f"IF({c('senior_open', t)}>{tol},NPV({p('r_e')},{c(flow, t)}:{end}{R.at[flow]})"
                          f"/{c('senior_open', t)},\"\")")

    R.series("llcr", "LLCR: PV of CFADS to the loans' last repayment / balance", "ratio", fmt=RATIO,
             formula=cover("cfads_life"))
    R.series("plcr", "PLCR: PV of CFADS to the horizon / balance", "ratio", fmt=RATIO, formula=cover("cfads"))
    for ratio in ("llcr", "plcr"):
        R.param(f"{ratio}_r0", f"{ratio.upper()} at the first repayment", "ratio",
                f"=INDEX({R.span(ratio)},1,{p('r0')}+1)", RATIO)

    R.section("The project before financing (unlevered)")
    R.series("pool_u_open", "unlevered tax losses brought forward", "EUR m", first=0.0,
             formula=lambda t: c("pool_u_close", t - 1))
    R.series("tax_u", "unlevered tax", "EUR m", total="sum", formula=lambda t: (
        f"{p('tax_rate')}*(MAX({c('taxable0', t)},0)-MIN({c('pool_u_open', t)},MAX({c('taxable0', t)},0)))"))
    R.series("pool_u_close", "unlevered tax losses carried forward", "EUR m", formula=lambda t: (
        f"{c('pool_u_open', t)}-MIN({c('pool_u_open', t)},MAX({c('taxable0', t)},0))"
        f"+MAX(-{c('taxable0', t)},0)"))
    R.series("project_flow", "unlevered free cash flow", "EUR m", total="sum", formula=lambda t: (
        f"{c('ebitda', t)}-{c('tax_u', t)}-{c('refresh', t)}+{c('resale', t)}-{c('replacement', t)}"
        f"-{c('construction', t)}-{c('gpu_initial', t)}+IF({c('last', t)}=1,{p('fleet_terminal')}"
        f"+(SUM({R.span('construction')})+SUM({R.span('replacement')})-SUM({R.span('facility_dep')})),0)"))
    R.param("project_guess", "IRR search start (the engine's project IRR of each case, rounded)", "1/yr",
            _choose_case([_guess(m["unlevered_fcf"][0, f]) for m in models]), PCT)
    R.param("project_irr", "project IRR", "1/yr", "=" + _irr(R.span("project_flow"), p("project_guess")), PCT)

    R.flush()
    ws.freeze_panes = ws.cell(5, FIRST_PERIOD_COL)
    ws.column_dimensions["A"].width = 52
    ws.column_dimensions["B"].width = 9
    ws.column_dimensions["C"].width = 14
    for t in range(n_t):
        ws.column_dimensions[R.col(t)].width = 11
    return title, R
