"""The Streamlit app for investors. ``app.py`` only calls ``main()``.

The UI turns widgets into a scenario (``with_factories``, ``with_updates``, ``with_centres``),
asks the public API for results and draws them; it computes no finance itself. Results are
cached by scenario text, paths, seed and method, so a slider moved back is instant.
"""

from __future__ import annotations

import html
import math
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

import finmodel
from finmodel.charts import (
    PERCENT_UNITS,
    bar_by_factory,
    compare_chart,
    dscr_by_site,
    fan_chart,
    histogram,
    probability_by_year,
    tornado_chart,
)
from finmodel.cli import assumptions_table, correlation_table
from finmodel.engine import ITEMS, minimum_eib_tenor_years
from finmodel.errors import ScenarioError
from finmodel.kpis import PATH_KPIS
from finmodel.results import select_paths
from finmodel.scenario import assumptions_dir, field_rows

__all__ = ["HEADLINE", "headline_value", "main"]

UPLOAD = "upload a scenario file..."
MAX_UPLOAD_MB = 1  # a scenario is a few kB; larger files are refused before they are read
PATH_CHOICES = (500, 1_000, 2_000, 5_000, 10_000)
VIEWS = ("Results", "Risk", "Cash flows", "Drivers", "Compare scenarios", "Assumptions")
PAGE_COMPLETE = "Shown last, once the browser has drawn the page for the current inputs."
DEFAULT_PATHS = 500  # the page is final within a second after a change (README, browser test)
_PROCESS = {"model_loaded": False}  # the first run in an app process loads the compiled kernels


@dataclass(frozen=True)
class Headline:
    label: str
    kpi: str
    stat: str  # "p50" or "mean"
    kind: str  # "pct", "ratio", "eur_m", "eur", "bn_hours"


HEADLINE = (
    Headline("Equity IRR (P50)", "equity_irr", "p50", "pct"),
    Headline("P(payment default, any site)", "any_payment_default", "mean", "pct"),
    Headline("Min DSCR (P50)", "min_dscr", "p50", "ratio"),
    Headline("EIB expected loss", "eib_loss_eur_m", "mean", "eur_m"),
    Headline("Private € per public € (P50)", "private_per_public", "p50", "ratio"),
    Headline("Public € per public GPU-h", "public_cost_per_public_gpu_hour_eur", "p50", "eur"),
    Headline("GPU-hours (P50)", "gpu_hours_m", "p50", "bn_hours"),
    Headline("P(equity IRR < hurdle)", "equity_below_hurdle", "mean", "pct"),
)


def _fmt(value: float, kind: str) -> str:
    if pd.isna(value):
        return "n/a"
    return {
        "pct": f"{value:.1%}",
        "ratio": f"{value:,.2f}",
        "eur_m": f"€{value:,.0f}m",  # the euro sign keeps a card's value short enough for 1280 px
        "eur": f"€{value:,.2f}",
        "bn_hours": f"{value / 1000:,.1f} bn",
    }[kind]


def _error(se: float, kind: str) -> str:
    """A standard error in the card's unit, short."""
    return {"pct": f"{se * 100:.1f}", "ratio": f"{se:,.2f}", "eur_m": f"{se:,.0f}m",
            "eur": f"{se:,.2f}", "bn_hours": f"{se / 1000:,.1f}"}[kind]


def headline_value(res: finmodel.Results, h: Headline) -> str:
    """The text a headline card shows for these results (tests compare it with the API): a
    mean or probability with its Monte Carlo standard error (``± se``, in points for a
    probability), a median alone (its P10 / P90 are in the card's help)."""
    row = res.summary().loc[h.kpi]
    text = _fmt(row[h.stat], h.kind)
    if h.stat == "mean" and pd.notna(row["sem"]) and res.n_paths > 1:
        text += f" ±{_error(row['sem'], h.kind)}"
    return text


def _delta(value: float, before: float, kind: str) -> str | None:
    if pd.isna(value) or pd.isna(before) or abs(value - before) < 1e-12:
        return None
    diff = value - before
    return {"pct": f"{diff * 100:+.1f} pts", "ratio": f"{diff:+,.2f}", "eur_m": f"{diff:+,.0f}m",
            "eur": f"{diff:+,.2f}", "bn_hours": f"{diff / 1000:+,.1f} bn"}[kind]


def _short(text: str, most: int = 60) -> str:
    """A chart label: the first ``most`` characters of a description, cut at a word."""
    text = " ".join(str(text).split())
    return text if len(text) <= most else text[:most].rsplit(" ", 1)[0] + "…"


def _fmt_kpi(value: float, kpi: str) -> str:
    unit = PATH_KPIS[kpi][0]
    return f"{value:.1%}" if unit in PERCENT_UNITS else f"{value:,.3g} {unit}"


def _kpi_table(res: finmodel.Results) -> pd.DataFrame:
    """The portfolio KPIs' statistics for reading: each KPI named in words, each value in its
    unit (a rate or a probability in percent, an amount with separators, 4 significant
    digits)."""
    summary = res.summary()

    def text(value: float, unit: str) -> str:
        if pd.isna(value):
            return "n/a"
        if unit in PERCENT_UNITS:
            return f"{value:.1%}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"

    rows = {PATH_KPIS[k][1]: {"unit": "" if PATH_KPIS[k][0] in PERCENT_UNITS else PATH_KPIS[k][0],
                              **{stat: text(summary.loc[k, stat], PATH_KPIS[k][0])
                                 for stat in ("mean", "p10", "p50", "p90")}}
            for k in summary.index if k in PATH_KPIS}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("KPI")


def _show_problems(exc: ScenarioError) -> None:
    """Every problem as plain text: values and file names are shown as typed, never as markup."""
    count = len(exc.problems)
    st.error(f"The scenario has {count} problem{'s' if count != 1 else ''}; nothing was run.")
    st.code("\n".join(f"- {exc.source}: {p}" if not p.path and exc.source else f"- {p}"
                      for p in exc.problems), language=None, wrap_lines=True)


_MARKDOWN = str.maketrans({ch: "\\" + ch for ch in "\\`*_[]<>|~$#:/"})


def literal(text: str) -> str:
    """User text for an element that renders markdown (a title, a caption, a tooltip) on one
    line: every character that could start markup, an emoji code or a colour directive is
    escaped, and so is a list or heading marker at the start."""
    escaped = " ".join(str(text).splitlines()).translate(_MARKDOWN)
    if escaped[:1] in ("-", "+", "="):
        return "\\" + escaped
    number = re.match(r"\d+(?=[.)])", escaped)
    return escaped if number is None else f"{number[0]}\\{escaped[number.end():]}"


def file_stem(name: str) -> str:
    """A download's file name from a scenario name: letters, digits, '-', '_' and '.' only."""
    stem = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)
    return stem.strip("._") or "scenario"


# -- cached engine calls (keyed by the scenario's TOML text) -------------------------------------------


@st.cache_data(show_spinner=False, max_entries=64)
def _preset_toml(path: str, mtime_ns: int) -> str:
    """Validated preset as TOML, cached until the file changes."""
    return finmodel.load_scenario(path).to_toml()


def _load_preset(name: str) -> finmodel.Scenario:
    path = assumptions_dir() / f"{name}.toml"
    return finmodel.loads_scenario(_preset_toml(str(path), path.stat().st_mtime_ns), source=name)


@st.cache_resource(show_spinner=False, max_entries=48)
def _simulate(toml: str, paths: int, seed: int, method: str) -> finmodel.Results:
    return finmodel.simulate(finmodel.loads_scenario(toml), paths=paths, seed=seed, method=method)


@st.cache_resource(show_spinner=False, max_entries=48)
def _tornado(toml: str, kpi: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a flat tornado: its note is shown instead
        return finmodel.tornado(finmodel.loads_scenario(toml), kpi)


@st.cache_resource(show_spinner=False, max_entries=16)
def _base_case(toml: str) -> finmodel.Results:
    return finmodel.base_case(finmodel.loads_scenario(toml))


@st.cache_data(show_spinner=False, max_entries=8)
def _workbook(toml: str, paths: int, seed: int, method: str) -> bytes:
    sc = finmodel.loads_scenario(toml)
    res = _simulate(toml, paths, seed, method)
    with tempfile.TemporaryDirectory() as tmp:
        out = finmodel.export_excel(sc, Path(tmp) / "finmodel.xlsx", results=res)
        return out.read_bytes()


# -- sidebar: scenario and controls -----------------------------------------------------------------


def _pick_preset() -> tuple[str, finmodel.Scenario | None]:
    presets = finmodel.list_scenarios()
    choice = st.sidebar.selectbox(
        "Scenario", [*presets, UPLOAD], index=presets.index("base"),
        help="A preset from assumptions/, or your own TOML file (it may `extends = \"base\"`).",
    )
    try:
        if choice != UPLOAD:
            return choice, _load_preset(choice)
        uploaded = st.sidebar.file_uploader("Scenario TOML", type=["toml"], max_upload_size=MAX_UPLOAD_MB)
        if uploaded is None:
            st.info("Upload a scenario TOML file to explore it.")
            return choice, None
        if uploaded.size > MAX_UPLOAD_MB * 1_000_000:
            st.error(f"The file is {uploaded.size / 1e6:,.1f} MB; a scenario file may be at most "
                     f"{MAX_UPLOAD_MB} MB.")
            return choice, None
        try:
            text = uploaded.getvalue().decode("utf-8")
        except UnicodeDecodeError:
            st.error("The file is not UTF-8 text; upload a TOML scenario.")
            return choice, None
        # untrusted text: `extends` may name only a shipped preset, no file is read
        return f"upload:{uploaded.name}", finmodel.loads_scenario(text, source=uploaded.name)
    except ScenarioError as exc:
        _show_problems(exc)
        return choice, None


def _help(sc: finmodel.Scenario, path: str) -> str:
    row = next(r for r in field_rows(sc) if r.path == path)
    return literal(f"{row.description} [{row.unit}]. Preset: {row.display_value}. "
                   f"Source: {row.source or 'n/a'}")


def _central(sc: finmodel.Scenario, path: str) -> float:
    from finmodel.scenario.fields import resolve

    value = resolve(sc, path)
    return float(getattr(value, "central", value))


def _edits(before: finmodel.Scenario, after: finmodel.Scenario) -> list[str]:
    """The inputs that differ, as "field: old -> new" (the description does not follow edits)."""
    if before is after:
        return []
    old = {r.path: r.display_value for r in field_rows(before)}
    same_sites = [f.name for f in before.factories] == [f.name for f in after.factories]
    out = []
    for r in field_rows(after):
        if (r.path.endswith(("name", "description")) or r.path.startswith("correlation")
                or (not same_sites and r.path.startswith("factories["))):
            continue
        if old.get(r.path, "(none)") != r.display_value:
            out.append(f"{r.path}: {old.get(r.path, '(none)')} -> {r.display_value}")
    dropped = len(before.factories) - len(after.factories)
    if dropped > 0:
        out.append(f"{dropped} site{'s' if dropped > 1 else ''} left out")
    return out


def _no_effect(preset: finmodel.Scenario, sc: finmodel.Scenario, res: finmodel.Results,
               before: finmodel.Results) -> str | None:
    """A note when the sidebar's edits change nothing the page shows (e.g. a fund allocation
    rule that gives every site the same amount as the preset's, each held to its cap)."""
    if sc is preset:
        return None
    notes = []
    if (sc.fund.allocation != preset.fund.allocation and res.terms is not None and before.terms is not None
            and [f.name for f in sc.factories] == [f.name for f in preset.factories]
            and np.allclose(res.terms.fund_eur_m, before.terms.fund_eur_m)):
        notes.append(f"The fund allocation rule \"{sc.fund.allocation}\" gives every site the same "
                     f"amount as \"{preset.fund.allocation}\" here: each is held to its cap (the "
                     "public share of its cost, or the per-site cap).")
    same = res.path_kpis.shape == before.path_kpis.shape and np.allclose(
        res.path_kpis.to_numpy(float), before.path_kpis.to_numpy(float), equal_nan=True, rtol=0, atol=0)
    if same:
        notes.append("Your edits change no result of this scenario.")
    return literal(" ".join(notes)) if notes else None


def _delayed(sc: finmodel.Scenario, years: int) -> finmodel.Scenario:
    """``sc`` with every site's grid delay moved ``years`` later (its spread kept)."""
    if not years:
        return sc
    return sc.with_centres({f"factories[{i}].grid_delay_years":
                            _central(sc, f"factories[{i}].grid_delay_years") + years
                            for i in range(sc.n_factories)}, how="shift")


@st.cache_data(show_spinner=False, max_entries=64)
def _minimum_tenor(toml: str) -> int:
    return minimum_eib_tenor_years(finmodel.loads_scenario(toml))


def _controls(key: str, sc: finmodel.Scenario) -> tuple[finmodel.Scenario, int, int, str]:
    """Sidebar widgets -> edited scenario and run settings. Widget keys carry the preset's name,
    so a new preset starts from its own values."""
    side = st.sidebar

    def slider(label, path, lo, hi, step, fmt=None, value=None, percent=False):
        # the range always holds the scenario's own value, so an untouched control changes nothing
        value = _central(sc, path) if value is None else value
        lo, hi = type(lo)(min(lo, value)), type(hi)(max(hi, value))
        if percent:  # shown in percent, returned as a share
            shown = side.slider(label, round(lo * 100, 8), round(hi * 100, 8), round(value * 100, 8),
                                round(step * 100, 8), format=fmt, help=_help(sc, path),
                                key=f"{key}:{path}")
            return round(shown / 100, 10)
        out = side.slider(label, lo, hi, type(lo)(value), step, format=fmt, help=_help(sc, path),
                          key=f"{key}:{path}")
        # a float slider's arithmetic (3.1500000000000004) never reaches the scenario's TOML
        return round(out, 10) if isinstance(out, float) else out

    side.markdown("**Market** (sliders move the centre of each distribution)")
    gpu = slider("GPU price (USD, central)", "market.gpu_price_usd", 20_000.0, 100_000.0, 1_000.0, "%.0f")
    hour = slider("GPU-hour price at launch (USD, central)", "market.gpu_hour_price_launch_usd",
                  1.0, 10.0, 0.1, "%.2f")
    util = slider("Steady utilisation (central)", "market.utilisation_steady", 0.5, 0.9, 0.01, "%.0f%%",
                  percent=True)
    side.markdown("**Energy and grid**")
    power = slider("Power price (EUR/MWh, central)", "energy.power_price_eur_mwh", 20.0, 400.0, 5.0, "%.0f")
    pue = slider("PUE (central)", "energy.pue", 1.15, 1.6, 0.01, "%.2f")
    delay = side.slider("Extra grid delay, every site (years)", 0, 5, 0, 1, key=f"{key}:grid",
                        help="Added to each site's grid-connection delay distribution "
                             "(factories[i].grid_delay_years).")
    side.markdown("**EIB loan**")
    # the ranges follow the cross-field rules, so every reachable combination is valid
    share_max = min(0.5, sc.eib.share_of_cost_max, sc.eib.gearing_max - sc.private.commercial_debt_share)
    share = slider("EIB share of cost", "eib.share_of_cost", 0.0, math.floor(share_max * 100) / 100, 0.01,
                   "%.0f%%", percent=True)
    shortest = _minimum_tenor(_delayed(sc, delay).to_toml())
    tenor_key = f"{key}:eib.tenor_years"
    tenor = slider("EIB tenor (years)", "eib.tenor_years", max(5, shortest), sc.timeline.horizon_years, 1,
                   value=max(int(st.session_state.get(tenor_key, sc.eib.tenor_years)), shortest))
    margin = slider("EIB margin (central)", "eib.margin", 0.0025, 0.03, 0.0025, "%.2f%%", percent=True)
    profiles = ["annuity", "linear", "sculpted"]
    repayment = side.selectbox("Repayment profile", profiles, index=profiles.index(sc.eib.repayment),
                               help=_help(sc, "eib.repayment"), key=f"{key}:eib.repayment")
    side.markdown("**Fund**")
    instruments = ["grant", "equity", "sub_loan"]
    instrument = side.selectbox("Fund instrument", instruments, index=instruments.index(sc.fund.instrument),
                                help=_help(sc, "fund.instrument"), key=f"{key}:fund.instrument")
    rules = ["share_of_capex", "equal", "pro_rata_capex"] + (
        ["explicit"] if sc.fund.allocation == "explicit" else [])
    allocation = side.selectbox("Fund allocation", rules, index=rules.index(sc.fund.allocation),
                                help=_help(sc, "fund.allocation"), key=f"{key}:fund.allocation")
    side.markdown("**Factories**")
    labels = {f"{f.name} ({f.kind.replace('_', ' ')})": f.name for f in sc.factories}
    chosen = side.multiselect("Factories in the portfolio", list(labels), default=list(labels),
                              key=f"{key}:factories", help="Number and kind of sites.")
    side.markdown("**Simulation**")
    paths = side.selectbox("Paths", PATH_CHOICES, index=PATH_CHOICES.index(DEFAULT_PATHS),
                           key="paths", help="More paths: smaller sampling error, slower pages.")
    seed = int(side.number_input("Seed", min_value=0, value=0, step=1, key="seed"))
    method = side.selectbox("Sampling", ["lhs", "mc", "sobol"], key="method",
                            help="Latin hypercube (default), plain Monte Carlo or scrambled Sobol.")

    edited = sc
    names = [labels[c] for c in chosen]
    if names != [f.name for f in sc.factories]:
        edited = edited.with_factories(names)
    plain = {"eib.share_of_cost": share, "eib.tenor_years": tenor, "eib.repayment": repayment,
             "fund.instrument": instrument, "fund.allocation": allocation}
    current = {"eib.share_of_cost": sc.eib.share_of_cost, "eib.tenor_years": sc.eib.tenor_years,
               "eib.repayment": sc.eib.repayment, "fund.instrument": sc.fund.instrument,
               "fund.allocation": sc.fund.allocation}
    changed = {k: v for k, v in plain.items() if v != current[k]}
    if changed:
        edited = edited.with_updates(changed)
    scaled = {p: v for p, v in (("market.gpu_price_usd", gpu), ("market.gpu_hour_price_launch_usd", hour),
                                ("energy.power_price_eur_mwh", power), ("eib.margin", margin))
              if abs(v - _central(sc, p)) > 1e-12}
    if scaled:
        edited = edited.with_centres(scaled, how="scale")
    shifted = {p: v for p, v in (("market.utilisation_steady", util), ("energy.pue", pue))
               if abs(v - _central(sc, p)) > 1e-12}
    if shifted:
        edited = edited.with_centres(shifted, how="shift")
    edited = _delayed(edited, delay)
    if edited is not sc:
        edited = edited.model_copy(update={"name": f"{sc.name}-edited"})
    return edited, int(paths), seed, str(method)


# -- the page ---------------------------------------------------------------------------------------------


DEFINITIONS = {  # plain words for the cards' help
    "equity_below_hurdle": "Share of paths on which the private shareholders' IRR over the "
                           "portfolio falls short of their hurdle (private.equity_hurdle_irr), "
                           "or there is no IRR because they never get their money back",
    "any_payment_default": "A payment default: in some year a site's cash, trapped cash and debt "
                           "service reserve fall short of the senior debt service due. Share of "
                           "paths where this happens at any site over the 25-year horizon.",
    "eib_loss_eur_m": "What the EIB is owed at a site's default and does not recover (after "
                      "selling the fleet and the facility), added over the sites; the mean over "
                      "paths, most of which lose nothing.",
    "min_dscr": "The lowest ratio of cash available for debt service to senior debt service in "
                "any year and site, while debt is serviced; below the covenant (1.05 in base) a "
                "year is a covenant breach.",
}


def _headline(res: finmodel.Results, preset: finmodel.Results) -> None:
    summary, before = res.summary(), preset.summary()
    # two rows of cards, so that each value and label fits a laptop's width
    first = (len(HEADLINE) + 1) // 2
    cols = [*st.columns(first), *st.columns(first)][:len(HEADLINE)]
    for col, h in zip(cols, HEADLINE, strict=True):
        value = summary.loc[h.kpi, h.stat]
        p10, p90 = summary.loc[h.kpi, "p10"], summary.loc[h.kpi, "p90"]
        spread = ("" if PATH_KPIS[h.kpi][0] == "flag"
                  else f"P10 {_fmt(p10, h.kind)}, P90 {_fmt(p90, h.kind)}. ")
        error = ("± is the Monte Carlo standard error. " if h.stat == "mean" else "")
        meaning = DEFINITIONS.get(h.kpi, PATH_KPIS[h.kpi][1])
        col.metric(h.label, headline_value(res, h),
                   delta=_delta(value, before.loc[h.kpi, h.stat], h.kind), delta_color="off",
                   help=f"{spread}{error}{meaning}. Delta against the preset.")


def _results_tab(sc: finmodel.Scenario, res: finmodel.Results) -> None:
    eib = sc.eib
    left, right = st.columns(2)
    hurdle = sc.private.equity_hurdle_irr
    below = float(res.path_kpis["equity_below_hurdle"].mean())  # the card's figure
    left.altair_chart(histogram(res, "equity_irr", "1/yr", marker=hurdle,
                                marker_label=f"hurdle {hurdle:.0%}", title="private equity IRR")
                      .properties(title=f"Equity IRR: {below:.0%} of paths below the hurdle"),
                      height=CHART_HEIGHT)
    events = pd.DataFrame({
        f"DSCR below {eib.default_dscr:g} that year": res.covenant_curve()["P(any site)"],
        "payment default by then": res.event_curve("payment_default")["any site"],
        "EIB loss by then": res.event_curve("eib_loss")["any site"],
    })
    right.altair_chart(probability_by_year(events, "share of paths, any site")
                       .properties(title="Credit events by year, any site"), height=CHART_HEIGHT + 100)
    left, right = st.columns(2)
    left.altair_chart(fan_chart(res, "cfads", "EUR m").properties(title="Portfolio CFADS by year, EUR m"),
                      height=CHART_HEIGHT)
    left.caption("Bands: 5-95% (light) and 25-75% (dark) of paths; line: the median.")
    by_factory = res.factory_kpis.groupby("factory", observed=True)
    table = pd.DataFrame({
        "P(payment default)": by_factory["payment_default"].mean(),
        "equity IRR P50": by_factory["equity_irr"].median(),
        "min DSCR P50": by_factory["min_dscr"].median(),
        "EIB loss mean EUR m": by_factory["eib_loss_eur_m"].mean(),
        "fund EUR m": by_factory["fund_eur_m"].mean(),
        "GPU-hours P50 m": by_factory["gpu_hours_m"].median(),
    })
    right.altair_chart(bar_by_factory(table, "P(payment default)", "probability of a payment default")
                       .properties(title="Payment default probability by factory"),
                       height=_rows_height(len(table)))
    st.markdown("#### Factories")
    pct, num = st.column_config.NumberColumn(format="percent"), st.column_config.NumberColumn(format="%.2f")
    money = st.column_config.NumberColumn(format="%,.0f")
    st.dataframe(table, width="stretch", column_config={
        "P(payment default)": pct, "equity IRR P50": pct, "min DSCR P50": num, "EIB loss mean EUR m": money,
        "fund EUR m": money, "GPU-hours P50 m": money})
    st.altair_chart(bar_by_factory(table, "equity IRR P50", "median private equity IRR")
                    .properties(title="Median equity IRR by factory"), height=_rows_height(len(table)))
    st.markdown("#### Summary of every portfolio KPI")
    st.dataframe(_kpi_table(res), width="stretch")


def _risk_column(name: str) -> str:
    """``var_0.95`` -> ``VaR 95%``, ``cvar_0.99`` -> ``CVaR 99%``, ``expected`` -> ``expected``."""
    measure, _, level = name.partition("_")
    if not level:
        return name
    return f"{'CVaR' if measure == 'cvar' else 'VaR'} {float(level):.0%}"


def _risk_tab(sc: finmodel.Scenario, res: finmodel.Results) -> None:
    """Losses and their tails, the fund's tranches and when defaults happen, from the run."""
    risk = res.risk()
    risk.index = [PATH_KPIS[k][1] for k in risk.index]
    risk.columns = [_risk_column(c) for c in risk.columns]
    st.markdown("#### Losses over the paths (EUR m)")
    st.caption("Expected loss; VaR: the loss exceeded on 5% (1%) of paths; CVaR: the mean loss on "
               "those paths.")
    money = st.column_config.NumberColumn(format="%,.1f")
    st.dataframe(risk, width="stretch", column_config={c: money for c in risk.columns})
    left, right = st.columns(2)
    timing = pd.DataFrame({"default": res.event_curve("default")["any site"],
                           "default while owing the EIB": res.event_curve("eib_default")["any site"],
                           "EIB loss": res.event_curve("eib_loss")["any site"]})
    left.altair_chart(probability_by_year(timing, "share of paths, any site")
                      .properties(title="When defaults happen: probability by each year"),
                      height=CHART_HEIGHT + 100)
    right.altair_chart(compare_chart({sc.name: res.path_kpis["eib_loss_eur_m"]}, "EIB loss (EUR m)",
                                     "EUR m", {sc.name: PALETTE[0]})
                       .properties(width=420, title="EIB loss: share of paths above each level"),
                       height=CHART_HEIGHT + 60)
    eib = sc.eib
    st.markdown("#### Each site's minimum DSCR")
    st.caption("Bar: P10 to P90 over the paths; tick: P50. The minimum is over the years the site "
               "serves senior debt, the year it defaults included; the Min DSCR card is the "
               "lowest over the sites on each path.")
    dscr = res.factory_kpis.groupby("factory", observed=True)["min_dscr"].quantile([0.1, 0.5, 0.9])
    table = dscr.unstack().set_axis(["p10", "p50", "p90"], axis=1).reset_index()
    table["factory"] = table["factory"].astype(str)
    st.altair_chart(dscr_by_site(table, {f"default covenant {eib.default_dscr:g}": eib.default_dscr,
                                         f"lock-up {eib.lockup_dscr:g}": eib.lockup_dscr,
                                         f"target at sizing {eib.target_dscr:g}": eib.target_dscr}),
                    height=_rows_height(len(table), row=30) + 40)
    if res.tranche_kpis is not None:
        st.markdown("#### The fund's tranches")
        ts = res.tranche_summary()
        rows = {name: {"public": next(t.public for t in sc.tranches if t.name == name),
                       "IRR P50": ts.loc[(name, "irr"), "p50"],
                       "P(loss)": ts.loc[(name, "loss"), "mean"],
                       "loss mean EUR m": ts.loc[(name, "loss_eur_m"), "mean"],
                       "contributed EUR m": ts.loc[(name, "contributed_eur_m"), "mean"]}
                for name in ts.index.get_level_values("tranche").unique()}
        pct = st.column_config.NumberColumn(format="percent")
        st.dataframe(pd.DataFrame(rows).T, width="stretch",
                     column_config={"IRR P50": pct, "P(loss)": pct, "loss mean EUR m": money,
                                    "contributed EUR m": money})


CASES = {"P50": "p50", "P10": "p10", "P90": "p90", "Worst (largest EIB loss)": "worst",
         "Central values": "base"}


def _cash_flow_tab(sc: finmodel.Scenario, res: finmodel.Results) -> None:
    """One factory's (or the portfolio's) line items by year on a chosen path: the rows of a
    factory sheet of the workbook."""
    left, right = st.columns(2)
    case = left.selectbox("Path", list(CASES), key="drill_case",
                          help="P50 / P10 / P90: the path whose portfolio equity IRR is nearest "
                               "that percentile; worst: the largest EIB loss.")
    where = right.selectbox("Factory", ["portfolio", *(f.name for f in sc.factories)],
                            key="drill_factory", format_func=literal)
    pick = CASES[case]
    if pick == "base":
        path, why, source = 0, "every input at its central value", _base_case(sc.to_toml())
    else:
        path, why = select_paths(res, [pick])[pick]
        source = res
    st.caption(literal(f"{case}: path {path}, {why}. EUR m unless the unit says otherwise."))
    wide = source.cashflow_wide(path=path, factory=where)
    wide.columns = ["unit", *(str(c) for c in wide.columns[1:])]
    wide.index = pd.Index([ITEMS[str(item)][1] for item in wide.index], name="line item")
    st.dataframe(wide, width="stretch", height=560,
                 column_config={c: st.column_config.NumberColumn(format="%,.1f")
                                for c in wide.columns[1:]})


SENSITIVITY_COLUMNS = {"spearman": "rank correlation (Spearman)",
                       "contribution_to_variance": "share of the squared rank correlations"}


def _drivers_tab(sc: finmodel.Scenario, res: finmodel.Results, toml: str) -> None:
    names = {h.kpi: h.label for h in HEADLINE if PATH_KPIS[h.kpi][0] != "flag"}
    kpi = st.selectbox("KPI for the tornado", list(names), key="tornado_kpi", format_func=names.get,
                       help="One-at-a-time swings of each uncertain input from its P10 to its P90, "
                            "the others at their centre, on the base case.")
    table = _tornado(toml, kpi).copy()
    if table.attrs.get("note"):
        st.info(literal(table.attrs["note"]))
    labels = {r.path: r.description for r in field_rows(sc)}
    table["input"] = [_short(labels.get(p, p)) for p in table["input"]]
    fmt = "%" if PATH_KPIS[kpi][0] in PERCENT_UNITS else None  # (flags have no tornado)
    label = names[kpi]
    st.altair_chart(tornado_chart(table, label, fmt=fmt)
                    .properties(title=f"What moves {label}: one input at a time from its P10 to its P90"),
                    height=_rows_height(min(len(table), 12), row=26) + 40)
    st.caption(f"The bars swing around the central case ({_fmt_kpi(table['kpi_at_centre'].iloc[0], kpi)}"
               " with every input at its central value), not around the simulation's median.")
    st.markdown("#### Inputs ranked by rank correlation with the KPI over the simulated paths")
    ranked = finmodel.sensitivity(res, kpi)
    ranked.insert(0, "field", ranked["input"])
    ranked["input"] = [labels.get(p, p) for p in ranked["input"]]
    st.dataframe(ranked.rename(columns=SENSITIVITY_COLUMNS), hide_index=True, width="stretch",
                 column_config={"field": st.column_config.TextColumn(help="the input's dotted path in "
                                                                          "the scenario file")})


CHART_HEIGHT = 320  # px: Streamlit draws an Altair chart this tall (its own height is not kept)


def _rows_height(rows: int, row: int = 34) -> int:
    """Height (px) of a chart with one row per item and an axis, title and legend."""
    return 120 + row * rows


PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b",
           "#9d755d", "#bab0ac", "#ff9da6")


SAVED = "saved_scenarios"  # session state: name -> scenario TOML, in the order saved
MAX_SAVED = 8


def _save_form(sc: finmodel.Scenario) -> None:
    """Save the current scenario (with the sidebar's edits) under a name, for this session:
    it can then be compared beside the presets and downloaded."""
    saved: dict[str, str] = st.session_state.setdefault(SAVED, {})
    with st.expander(f"Save this scenario by name ({len(saved)} saved)"):
        with st.form("save_scenario", clear_on_submit=True, border=False):
            name = st.text_input("Name", max_chars=60, placeholder="e.g. cheap power, long tenor")
            if not st.form_submit_button("Save"):
                return
        name = name.strip()
        if not name:
            st.error("Give the scenario a name.")
        elif name in finmodel.list_scenarios():
            st.error(literal(f"{name} is a preset's name; choose another."))
        elif name not in saved and len(saved) >= MAX_SAVED:
            st.error(f"At most {MAX_SAVED} scenarios can be saved in a session.")
        else:
            saved[name] = sc.model_copy(update={"name": name}).to_toml()
            st.success(literal(f"Saved as {name}: compare it in Compare scenarios, download it there."))


def _compare_tab(sc: finmodel.Scenario, toml: str, paths: int, seed: int, method: str) -> None:
    presets = finmodel.list_scenarios()
    saved: dict[str, str] = st.session_state.get(SAVED, {})
    mine = f"{sc.name} (yours)"
    options = [*presets, mine] if sc.name not in presets else list(presets)
    options += [f"{name} (saved)" for name in saved]
    default = [p for p in ("four_gigafactories", "thirteen_factories") if p in presets]
    if sc.name not in presets:
        default = [mine, *default]
    names = st.multiselect("Scenarios to compare", options, default=default, key="compare",
                           help="Your scenario, with the edits in the sidebar, beside any preset.")
    if len(names) < 2:
        st.info("Pick two or more scenarios.")
        return
    def text(n: str) -> str:
        if n == mine:
            return toml
        return saved[n.removesuffix(" (saved)")] if n.endswith(" (saved)") else _load_preset(n).to_toml()

    runs = {n: _simulate(text(n), paths, seed, method) for n in names}
    colours = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(options)}  # fixed per scenario
    label = {h.kpi: h.label for h in HEADLINE}
    kpi = st.selectbox("Outcome", list(label), key="compare_kpi", format_func=label.get)
    unit = PATH_KPIS[kpi][0]
    # the chart shows every path, so its axis names the outcome, not the card's statistic
    outcome = label[kpi].replace(" (P50)", "")
    st.altair_chart(compare_chart({n: r.path_kpis[kpi] for n, r in runs.items()}, outcome, unit,
                                  {n: colours[n] for n in runs}), height=CHART_HEIGHT + 60)
    rows = {n: {h.label: headline_value(r, h) for h in HEADLINE} for n, r in runs.items()}
    st.markdown("#### Headline KPIs")
    st.dataframe(pd.DataFrame(rows), width="stretch")
    if saved:
        left, right = st.columns(2)
        pick = left.selectbox("Your saved scenarios", list(saved), key="saved_pick", format_func=literal)
        right.download_button("Download the saved scenario (TOML)", saved[pick], key="download_saved",
                              file_name=f"{file_stem(pick)}.toml")


def _assumptions_tab(sc: finmodel.Scenario) -> None:
    st.caption("Every input with its unit and source; [Sn] tags refer to assumptions/SOURCES.md.")
    st.dataframe(assumptions_table(sc), hide_index=True, width="stretch")
    corr = correlation_table(sc)
    if not corr.empty:
        st.markdown("#### Rank correlation among uncertain inputs")
        st.dataframe(corr, width="stretch")


# Shows the hidden line once the run has ended and the browser has drawn every chart (a canvas
# or an SVG with a width), every table and no placeholder or stale element is left, two frames
# later; a later run's line replaces it. The script holds no user text: only the line's id.
_COMPLETE_JS = """
(() => {
  const line = document.getElementById("%s");
  const drawn = () => {
    if (document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], '
                               + '[data-stale="true"]')) return false;
    for (const chart of document.querySelectorAll('[data-testid="stVegaLiteChart"]')) {
      const graphic = chart.querySelector("canvas, svg");
      if (!graphic || graphic.getBoundingClientRect().width === 0) return false;
    }
    for (const table of document.querySelectorAll('[data-testid="stDataFrame"]')) {
      if (!table.querySelector("canvas")) return false;
    }
    return true;
  };
  const check = () => {
    if (!line || !line.isConnected) return;
    if (!drawn()) { setTimeout(check, 20); return; }
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (drawn()) { line.hidden = false; } else { setTimeout(check, 20); }
    }));
  };
  check();
})();
"""


def _page_complete(text: str) -> None:
    """The page's last line, hidden until the browser has drawn the page (``_COMPLETE_JS``):
    the browser test and the latency benchmark wait for it."""
    run = st.session_state["page_run"] = st.session_state.get("page_run", 0) + 1
    line_id = f"finmodel-complete-{run}"
    st.html(f'<p id="{line_id}" hidden title="{html.escape(PAGE_COMPLETE)}" '
            f'style="font-size:0.875rem;opacity:0.65;margin:0">{html.escape(text)}</p>'
            f"<script>{_COMPLETE_JS % line_id}</script>", unsafe_allow_javascript=True)


def main() -> None:
    st.set_page_config(page_title="finmodel: AI gigafactories", layout="wide")
    alt.data_transformers.disable_max_rows()
    st.title("finmodel: AI gigafactory portfolio")
    key, preset = _pick_preset()
    if preset is None:
        return
    try:
        _page(key, preset)
    except ScenarioError as exc:  # a combination the engine refuses, e.g. in the tornado's swings
        _show_problems(exc)


def _page(key: str, preset: finmodel.Scenario) -> None:
    sc, paths, seed, method = _controls(key, preset)
    st.subheader(literal(sc.name))
    edits = _edits(preset, sc)
    if sc.description:  # the preset's words: with edits, the list below says what changed
        st.text(f"{preset.name} as published: {sc.description}" if edits else sc.description)
    if edits:
        st.caption(literal(f"Your edits to {preset.name}, which the description above does not "
                           "include: " + "; ".join(edits) + "."))
    toml = sc.to_toml()
    note = "" if _PROCESS["model_loaded"] else (
        " The first run of the app also loads the model's compiled kernels (a few seconds); the "
        "first run after installing compiles them: about 25 s to the first page on a 2-core machine.")
    with st.spinner(f"Simulating {paths:,} paths...{note}"):
        res = _simulate(toml, paths, seed, method)
        base_res = _simulate(preset.to_toml(), paths, seed, method)
    _PROCESS["model_loaded"] = True
    note = _no_effect(preset, sc, res, base_res)
    if note:
        st.info(note)
    _headline(res, base_res)
    st.caption(f"{paths:,} paths, {method}, seed {seed}. Cards show P50 (or the mean for "
               "probabilities and expected loss); hover for P10 / P90. Deltas against the preset "
               "with the same paths and seed.")
    stem = file_stem(sc.name)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Download Excel workbook", lambda: _workbook(toml, paths, seed, method),
                       file_name=f"{stem}.xlsx", key="download_xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    d2.download_button("Download scenario (TOML)", toml, file_name=f"{stem}.toml", key="download_toml")
    d3.download_button("Download results (CSV)", lambda: res.path_kpis.to_csv(index=False),
                       file_name=f"{stem}_paths.csv", key="download_csv")
    _save_form(sc)
    # one view at a time: only what is on screen is computed and drawn
    view = st.radio("View", VIEWS, horizontal=True, key="view", label_visibility="collapsed")
    if view == "Results":
        _results_tab(sc, res)
    elif view == "Risk":
        _risk_tab(sc, res)
    elif view == "Cash flows":
        _cash_flow_tab(sc, res)
    elif view == "Drivers":
        _drivers_tab(sc, res, toml)
    elif view == "Compare scenarios":
        _compare_tab(sc, toml, paths, seed, method)
    else:
        _assumptions_tab(sc)
    # the last element: shown once the browser has drawn everything above for these results
    _page_complete(f"Page complete for {sc.name}: {paths:,} paths, "
                   f"{HEADLINE[0].label} {headline_value(res, HEADLINE[0])}. View: {view}.")
