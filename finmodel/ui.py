"""The Streamlit app for investors. ``app.py`` only calls ``main()``; no finance lives here."""

from __future__ import annotations

import streamlit as st

import finmodel
from finmodel.cli import assumptions_table, correlation_table
from finmodel.errors import ScenarioError
from finmodel.scenario import assumptions_dir

__all__ = ["main"]

UPLOAD = "upload a scenario file..."


def _show_problems(exc: ScenarioError) -> None:
    st.error(f"The scenario has {len(exc.problems)} problem(s); nothing was run.")
    for problem in exc.problems:
        st.markdown(f"- `{problem.path or exc.source or 'file'}`: {problem}")


@st.cache_data(show_spinner=False, max_entries=64)
def _preset_toml(path: str, mtime_ns: int) -> str:
    """Validated preset as TOML, cached until the file changes."""
    return finmodel.load_scenario(path).to_toml()


def _load_preset(name: str) -> finmodel.Scenario:
    path = assumptions_dir() / f"{name}.toml"
    return finmodel.loads_scenario(_preset_toml(str(path), path.stat().st_mtime_ns), source=name)


def _pick_scenario() -> finmodel.Scenario | None:
    presets = finmodel.list_scenarios()
    choice = st.sidebar.selectbox(
        "Scenario", [*presets, UPLOAD], index=presets.index("base"),
        help="A preset from assumptions/, or your own TOML file (it may `extends = \"base\"`).",
    )
    try:
        if choice != UPLOAD:
            return _load_preset(choice)
        uploaded = st.sidebar.file_uploader("Scenario TOML", type=["toml"])
        if uploaded is None:
            st.info("Upload a scenario TOML file to see its assumptions.")
            return None
        try:
            text = uploaded.getvalue().decode("utf-8")
        except UnicodeDecodeError:
            st.error(f"{uploaded.name}: not a UTF-8 text file; upload a TOML scenario.")
            return None
        return finmodel.loads_scenario(text, source=uploaded.name)
    except ScenarioError as exc:
        _show_problems(exc)
        return None


def main() -> None:
    st.set_page_config(page_title="finmodel: AI gigafactories", layout="wide")
    st.title("finmodel: AI gigafactory portfolio")
    sc = _pick_scenario()
    if sc is None:
        return
    st.subheader(sc.name)
    st.write(sc.description)
    c1, c2, c3 = st.columns(3)
    c1.metric("Sites", sc.n_factories)
    c2.metric("GPUs", f"{sum(f.gpus or 0 for f in sc.factories):,}")
    c3.metric("Fund size", f"EUR {sc.fund.size_eur_m / 1000:,.1f}B")
    st.markdown("#### Base case (every uncertain input at its central value)")
    base = finmodel.base_case(sc)
    path = base.path_kpis.iloc[0]
    k1, k2, k3, k4 = st.columns(4)
    k1.metric("Portfolio project IRR", f"{path['project_irr']:.1%}")
    k2.metric("Project NPV", f"EUR {path['project_npv_eur_m'] / 1000:,.1f}B",
              help=f"at {sc.macro.project_discount_rate:.1%} (macro.project_discount_rate)")
    k3.metric("Initial capex", f"EUR {path['capex_initial_eur_m'] / 1000:,.1f}B")
    k4.metric("GPU-hours sold", f"{path['gpu_hours_m'] / 1000:,.0f} bn")
    st.dataframe(base.factory_kpis.drop(columns="path"), hide_index=True, width="stretch")
    st.markdown("#### Assumptions")
    st.caption("Every input with its unit and source; [Sn] tags refer to assumptions/SOURCES.md.")
    st.dataframe(assumptions_table(sc), hide_index=True, width="stretch")
    corr = correlation_table(sc)
    if not corr.empty:
        st.markdown("#### Rank correlation among uncertain inputs")
        st.dataframe(corr, width="stretch")
    st.download_button("Download scenario (TOML)", sc.to_toml(), file_name=f"{sc.name}.toml")
