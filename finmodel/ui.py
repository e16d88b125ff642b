"""The Streamlit app for investors. ``app.py`` only calls ``main()``.

The UI turns widgets into a scenario (``with_factories``, ``with_updates``, ``with_centres``),
asks the public API for results and draws them; it computes no finance itself. Results are
cached by scenario text, paths, seed and method, so a slider moved back is instant.
"""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

import finmodel
from finmodel.charts import (
    bar_by_factory,
    fan_chart,
    histogram,
    overlaid_histograms,
    tornado_chart,
)
from finmodel.cli import assumptions_table, correlation_table
from finmodel.engine import minimum_eib_tenor_years
from finmodel.errors import ScenarioError
from finmodel.kpis import PATH_KPIS
from finmodel.scenario import assumptions_dir, field_rows

__all__ = ["HEADLINE", "headline_value", "main"]

UPLOAD = "upload a scenario file..."
MAX_UPLOAD_MB = 1  # a scenario is a few kB; larger files are refused before they are read
PATH_CHOICES = (500, 1_000, 2_000, 5_000, 10_000)
VIEWS = ("Results", "Drivers", "Compare scenarios", "Assumptions")
PAGE_COMPLETE = "Shown last, once the page is drawn for the current inputs."
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
)


def _fmt(value: float, kind: str) -> str:
    if pd.isna(value):
        return "n/a"
    return {
        "pct": f"{value:.1%}",
        "ratio": f"{value:,.2f}",
        "eur_m": f"EUR {value:,.0f}m",
        "eur": f"EUR {value:,.2f}",
        "bn_hours": f"{value / 1000:,.1f} bn",
    }[kind]


def headline_value(res: finmodel.Results, h: Headline) -> str:
    """The text a headline card shows for these results (tests compare it with the API)."""
    return _fmt(res.summary().loc[h.kpi, h.stat], h.kind)


def _delta(value: float, before: float, kind: str) -> str | None:
    if pd.isna(value) or pd.isna(before) or abs(value - before) < 1e-12:
        return None
    diff = value - before
    return {"pct": f"{diff * 100:+.1f} pts", "ratio": f"{diff:+,.2f}", "eur_m": f"{diff:+,.0f}m",
            "eur": f"{diff:+,.2f}", "bn_hours": f"{diff / 1000:+,.1f} bn"}[kind]


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

    def slider(label, path, lo, hi, step, fmt=None, value=None):
        # the range always holds the scenario's own value, so an untouched control changes nothing
        value = _central(sc, path) if value is None else value
        lo, hi = type(lo)(min(lo, value)), type(hi)(max(hi, value))
        return side.slider(label, lo, hi, type(lo)(value), step, format=fmt, help=_help(sc, path),
                           key=f"{key}:{path}")

    side.markdown("**Market** (sliders move the centre of each distribution)")
    gpu = slider("GPU price (USD, central)", "market.gpu_price_usd", 20_000.0, 100_000.0, 1_000.0, "%.0f")
    hour = slider("GPU-hour price at launch (USD, central)", "market.gpu_hour_price_launch_usd",
                  1.0, 10.0, 0.1, "%.2f")
    util = slider("Steady utilisation (central)", "market.utilisation_steady", 0.5, 0.9, 0.01, "%.2f")
    side.markdown("**Energy and grid**")
    power = slider("Power price (EUR/MWh, central)", "energy.power_price_eur_mwh", 20.0, 400.0, 5.0, "%.0f")
    pue = slider("PUE (central)", "energy.pue", 1.15, 1.6, 0.01, "%.2f")
    delay = side.slider("Extra grid delay, every site (years)", 0, 5, 0, 1, key=f"{key}:grid",
                        help="Added to each site's grid-connection delay distribution "
                             "(factories[i].grid_delay_years).")
    side.markdown("**EIB loan**")
    # the ranges follow the cross-field rules, so every reachable combination is valid
    share_max = min(0.5, sc.eib.share_of_cost_max, sc.eib.gearing_max - sc.private.commercial_debt_share)
    share = slider("EIB share of cost", "eib.share_of_cost", 0.0, math.floor(share_max * 100) / 100, 0.01)
    shortest = _minimum_tenor(_delayed(sc, delay).to_toml())
    tenor_key = f"{key}:eib.tenor_years"
    tenor = slider("EIB tenor (years)", "eib.tenor_years", max(5, shortest), sc.timeline.horizon_years, 1,
                   value=max(int(st.session_state.get(tenor_key, sc.eib.tenor_years)), shortest))
    margin = slider("EIB margin (central)", "eib.margin", 0.0025, 0.03, 0.0025, "%.4f")
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


def _headline(res: finmodel.Results, preset: finmodel.Results) -> None:
    summary, before = res.summary(), preset.summary()
    # two rows of cards, so that each value and label fits a laptop's width
    first = (len(HEADLINE) + 1) // 2
    cols = [*st.columns(first), *st.columns(first)][:len(HEADLINE)]
    for col, h in zip(cols, HEADLINE, strict=True):
        value = summary.loc[h.kpi, h.stat]
        p10, p90 = summary.loc[h.kpi, "p10"], summary.loc[h.kpi, "p90"]
        spread = ("" if PATH_KPIS[h.kpi][0] == "flag"
                  else f"P10 {_fmt(p10, h.kind)} / P90 {_fmt(p90, h.kind)}. ")
        col.metric(h.label, _fmt(value, h.kind), delta=_delta(value, before.loc[h.kpi, h.stat], h.kind),
                   delta_color="off", help=f"{spread}{PATH_KPIS[h.kpi][1]}; delta against the preset.")


def _results_tab(sc: finmodel.Scenario, res: finmodel.Results) -> None:
    eib = sc.eib
    left, right = st.columns(2)
    left.altair_chart(histogram(res, "equity_irr", "1/yr", marker=sc.private.equity_hurdle_irr)
                      .properties(title="Portfolio private equity IRR (red line: hurdle)"))
    right.altair_chart(fan_chart(res, "dscr", "ratio", rules={
        f"lock-up {eib.lockup_dscr:g}": eib.lockup_dscr, f"default {eib.default_dscr:g}": eib.default_dscr},
        y_max=4.0).properties(title="Portfolio DSCR by year (5-95%, axis clipped at 4)"))
    left, right = st.columns(2)
    left.altair_chart(fan_chart(res, "cfads", "EUR m").properties(title="Portfolio CFADS by year (5-95%)"))
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
                       .properties(title="Payment default probability by factory"))
    st.markdown("#### Factories")
    pct, num = st.column_config.NumberColumn(format="percent"), st.column_config.NumberColumn(format="%.2f")
    money = st.column_config.NumberColumn(format="%,.0f")
    st.dataframe(table, width="stretch", column_config={
        "P(payment default)": pct, "equity IRR P50": pct, "min DSCR P50": num, "EIB loss mean EUR m": money,
        "fund EUR m": money, "GPU-hours P50 m": money})
    st.altair_chart(bar_by_factory(table, "equity IRR P50", "median private equity IRR")
                    .properties(title="Median equity IRR by factory"))
    st.markdown("#### Summary of every portfolio KPI")
    st.dataframe(res.summary()[["unit", "mean", "p10", "p50", "p90"]], width="stretch")


def _drivers_tab(res: finmodel.Results, toml: str) -> None:
    choices = [h.kpi for h in HEADLINE if PATH_KPIS[h.kpi][0] != "flag"]
    kpi = st.selectbox("KPI for the tornado", choices, key="tornado_kpi",
                       help="One-at-a-time swings of each uncertain input from its P10 to its P90, "
                            "the others at their centre, on the base case.")
    table = _tornado(toml, kpi)
    if table.attrs.get("note"):
        st.info(literal(table.attrs["note"]))
    st.altair_chart(tornado_chart(table, kpi)
                    .properties(title=f"What moves {kpi} (base case, one input at a time)"))
    st.markdown("#### Inputs ranked by rank correlation with the KPI over the simulated paths")
    st.dataframe(finmodel.sensitivity(res, kpi), hide_index=True, width="stretch")


def _compare_tab(paths: int, seed: int, method: str) -> None:
    presets = finmodel.list_scenarios()
    default = [p for p in ("four_gigafactories", "thirteen_factories") if p in presets]
    names = st.multiselect("Scenarios to compare", presets, default=default, key="compare")
    if len(names) < 2:
        st.info("Pick two or more scenarios.")
        return
    runs = {n: _simulate(_load_preset(n).to_toml(), paths, seed, method) for n in names}
    kpi = st.selectbox("Distribution of", [h.kpi for h in HEADLINE], key="compare_kpi")
    st.altair_chart(overlaid_histograms({n: r.path_kpis[kpi] for n, r in runs.items()},
                                        f"{kpi} ({PATH_KPIS[kpi][0]})"))
    rows = {n: {h.label: headline_value(r, h) for h in HEADLINE} for n, r in runs.items()}
    st.markdown("#### Headline KPIs")
    st.dataframe(pd.DataFrame(rows), width="stretch")


def _assumptions_tab(sc: finmodel.Scenario) -> None:
    st.caption("Every input with its unit and source; [Sn] tags refer to assumptions/SOURCES.md.")
    st.dataframe(assumptions_table(sc), hide_index=True, width="stretch")
    corr = correlation_table(sc)
    if not corr.empty:
        st.markdown("#### Rank correlation among uncertain inputs")
        st.dataframe(corr, width="stretch")


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
    if sc.description:
        st.text(sc.description)
    toml = sc.to_toml()
    note = "" if _PROCESS["model_loaded"] else (
        " The first run of the app also loads the model's compiled kernels; the first run after "
        "installing compiles them (about 20 s).")
    with st.spinner(f"Simulating {paths:,} paths...{note}"):
        res = _simulate(toml, paths, seed, method)
        base_res = _simulate(preset.to_toml(), paths, seed, method)
    _PROCESS["model_loaded"] = True
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
    # one view at a time: only what is on screen is computed and drawn
    view = st.radio("View", VIEWS, horizontal=True, key="view", label_visibility="collapsed")
    if view == "Results":
        _results_tab(sc, res)
    elif view == "Drivers":
        _drivers_tab(res, toml)
    elif view == "Compare scenarios":
        _compare_tab(paths, seed, method)
    else:
        _assumptions_tab(sc)
    # the last element: when it shows these results, everything above is final
    st.caption(f"Page complete for {literal(sc.name)}: {paths:,} paths, "
               f"{HEADLINE[0].label} {headline_value(res, HEADLINE[0])}.", help=PAGE_COMPLETE)
