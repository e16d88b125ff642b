"""The Streamlit app, driven by streamlit.testing: every control, the KPIs it shows against the
API's numbers for the same inputs, and every error path as a message."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

import finmodel
from finmodel.engine import minimum_eib_tenor_years
from finmodel.ui import DEFAULT_PATHS, HEADLINE, UPLOAD, headline_value, literal

APP = str(ROOT / "app.py")


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120).run()


def shown(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def expected(sc: finmodel.Scenario, paths: int = DEFAULT_PATHS, seed: int = 0,
             method: str = "lhs") -> dict[str, str]:
    res = finmodel.simulate(sc, paths=paths, seed=seed, method=method)
    return {h.label: headline_value(res, h) for h in HEADLINE}


def widget(app: AppTest, kind: str, label: str):
    return next(w for w in app.sidebar.get(kind) if w.label == label)


def test_default_page_shows_the_api_numbers_for_base(app, base):
    assert not app.exception and not app.error
    assert app.sidebar.selectbox[0].value == "base"
    assert app.subheader[0].value == "base"
    assert shown(app) == expected(base)
    assert all(not m.delta for m in app.metric)  # nothing edited: no deltas
    app.radio(key="view").set_value("Assumptions").run()
    assumptions = next(df.value for df in app.dataframe if "field" in df.value.columns)
    row = assumptions.set_index("field").loc["eib.tenor_years"]
    assert row["value"] == "15" and row["unit"] == "years" and row["source"].startswith("[S12]")


CONTROLS = [
    ("slider", "GPU price (USD, central)", 55_000.0,
     lambda sc: sc.with_centres({"market.gpu_price_usd": 55_000.0})),
    ("slider", "GPU-hour price at launch (USD, central)", 5.0,
     lambda sc: sc.with_centres({"market.gpu_hour_price_launch_usd": 5.0})),
    ("slider", "Steady utilisation (central)", 70.0,  # shown in percent
     lambda sc: sc.with_centres({"market.utilisation_steady": 0.7}, how="shift")),
    ("slider", "Power price (EUR/MWh, central)", 150.0,
     lambda sc: sc.with_centres({"energy.power_price_eur_mwh": 150.0})),
    ("slider", "PUE (central)", 1.4, lambda sc: sc.with_centres({"energy.pue": 1.4}, how="shift")),
    ("slider", "Extra grid delay, every site (years)", 2, lambda sc: sc.with_centres(
        {f"factories[{i}].grid_delay_years": 2.0 for i in range(sc.n_factories)}, how="shift")),
    ("slider", "EIB share of cost", 45.0, lambda sc: sc.with_updates({"eib.share_of_cost": 0.45})),
    ("slider", "EIB tenor (years)", 20, lambda sc: sc.with_updates({"eib.tenor_years": 20})),
    ("slider", "EIB margin (central)", 2.0, lambda sc: sc.with_centres({"eib.margin": 0.02})),
    ("selectbox", "Repayment profile", "annuity", lambda sc: sc.with_updates({"eib.repayment": "annuity"})),
    ("selectbox", "Fund instrument", "sub_loan", lambda sc: sc.with_updates({"fund.instrument": "sub_loan"})),
    ("selectbox", "Fund allocation", "pro_rata_capex",
     lambda sc: sc.with_updates({"fund.allocation": "pro_rata_capex"})),
    ("multiselect", "Factories in the portfolio",
     ["DE gigafactory (gigafactory)", "FI AI factory (ai factory)"],
     lambda sc: sc.with_factories(["DE gigafactory", "FI AI factory"])),
]


@pytest.mark.parametrize(("kind", "label", "value", "edit"), CONTROLS, ids=[c[1] for c in CONTROLS])
def test_each_control_changes_the_kpis_to_the_api_numbers(app, base, kind, label, value, edit):
    widget(app, kind, label).set_value(value).run()
    assert not app.exception and not app.error
    assert app.subheader[0].value == "base-edited"
    now = expected(edit(base))
    assert shown(app) == now
    # a card whose number moved shows a delta against the preset
    before = expected(base)
    for m in app.metric:
        if now[m.label] != before[m.label]:
            assert m.delta, m.label
    if label != "Fund allocation":  # with every site at its public cap the rules coincide
        assert any(m.delta for m in app.metric)


@pytest.mark.parametrize(("label", "value", "kwargs"), [
    ("Paths", 500, {"paths": 500}), ("Seed", 7, {"seed": 7}), ("Sampling", "mc", {"method": "mc"}),
])
def test_simulation_settings(app, base, label, value, kwargs):
    kind = "number_input" if label == "Seed" else "selectbox"
    widget(app, kind, label).set_value(value).run()
    assert not app.exception
    assert shown(app) == expected(base, **{"paths": DEFAULT_PATHS, **kwargs})


def test_switching_preset_resets_the_controls(app):
    widget(app, "slider", "Power price (EUR/MWh, central)").set_value(200.0).run()
    app.sidebar.selectbox[0].select("thirteen_factories").run()
    assert not app.exception
    assert app.subheader[0].value == literal("thirteen_factories")
    assert widget(app, "slider", "Power price (EUR/MWh, central)").value == pytest.approx(
        finmodel.load_scenario("thirteen_factories").energy.power_price_eur_mwh.central)
    assert len(widget(app, "multiselect", "Factories in the portfolio").value) == 13


def test_an_impossible_combination_is_a_message(app):
    widget(app, "multiselect", "Factories in the portfolio").set_value([]).run()
    assert not app.exception
    assert "problem" in app.error[0].value
    assert app.code[0].value.startswith("- factories = []: choose one or more of")


SLIDERS_THAT_INTERACT = ("Extra grid delay, every site (years)", "EIB tenor (years)", "EIB share of cost")


@pytest.mark.parametrize("preset", ["base", "grid_delay", "layered_fund"])
def test_every_combination_of_interacting_slider_extremes_runs(preset):
    """The ranges follow the cross-field rules (a long grid delay needs a longer tenor; the EIB
    share stays under its cap and the gearing cap): every reachable corner is a valid scenario."""
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.sidebar.selectbox[0].select(preset).run()
    delay, tenor, share = SLIDERS_THAT_INTERACT
    seen = set()
    for d_end in ("min", "max"):
        for t_end in ("min", "max"):
            for s_end in ("min", "max"):
                for label, end in ((delay, d_end), (tenor, t_end), (share, s_end)):
                    w = widget(app, "slider", label)
                    w.set_value(getattr(w, end)).run()
                    assert not app.exception, (label, end)
                    assert not app.error, (label, end, [c.value for c in app.code])
                seen.add(tuple(widget(app, "slider", label).value for label in SLIDERS_THAT_INTERACT))
    assert len(seen) == 8
    # the tenor's floor follows the delay: the shortest tenor with the longest delay is valid
    # and one year less is not
    sc = finmodel.load_scenario(preset)
    longest = widget(app, "slider", delay).max
    shifted = sc.with_centres({f"factories[{i}].grid_delay_years": float(
        getattr(f.grid_delay_years, "central", f.grid_delay_years)) + longest
        for i, f in enumerate(sc.factories)}, how="shift")
    widget(app, "slider", delay).set_value(longest).run()
    shortest = widget(app, "slider", tenor).min
    assert shortest == max(5, minimum_eib_tenor_years(shifted))
    finmodel.base_case(shifted.with_updates({"eib.tenor_years": shortest}))
    if shortest > 5:  # the floor is the rule's, not the slider's own minimum
        with pytest.raises(finmodel.ScenarioError, match="mature before its first repayment"):
            finmodel.base_case(shifted.with_updates({"eib.tenor_years": shortest - 1}))


def test_compare_view_shows_each_scenario_with_the_api_numbers(app):
    app.radio(key="view").set_value("Compare scenarios").run()
    assert not app.exception
    table = next(df.value for df in app.dataframe
                 if list(df.value.columns) == ["four_gigafactories", "thirteen_factories"])
    for name in ("four_gigafactories", "thirteen_factories"):
        assert table[name].to_dict() == expected(finmodel.load_scenario(name))


def test_drivers_view_ranks_inputs_as_the_api_does(app, base):
    app.radio(key="view").set_value("Drivers").run()
    box = next(w for w in app.selectbox if w.label == "KPI for the tornado")
    assert "EIB expected loss" in box.options  # the cards' labels, not the KPIs' code names
    box.set_value("eib_loss_eur_m").run()
    assert not app.exception
    ranked = next(df.value for df in app.dataframe if "field" in df.value.columns)
    res = finmodel.simulate(base, paths=DEFAULT_PATHS)
    want = finmodel.sensitivity(res, "eib_loss_eur_m")
    assert ranked["field"].tolist() == want["input"].tolist()
    descriptions = {r.path: r.description for r in finmodel.scenario.field_rows(base)}
    assert ranked["input"].tolist() == [descriptions[p] for p in want["input"]]
    np.testing.assert_allclose(ranked["rank correlation (Spearman)"], want["spearman"], rtol=1e-12)


def test_upload_valid_and_malformed_toml(app):
    app.sidebar.selectbox[0].select(UPLOAD).run()
    uploader = app.sidebar.get("file_uploader")[0]
    uploader.set_value(("mine.toml", b'extends = "base"\nname = "mine"\n', "application/toml"))
    app.run()
    assert not app.exception and app.subheader[0].value == "mine"

    uploader = app.sidebar.get("file_uploader")[0]
    uploader.set_value(("bad.toml", b'extends = "base"\n[eib]\ntenor_yeras = 3\n', "text/plain"))
    app.run()
    assert not app.exception
    assert "1 problem" in app.error[0].value
    assert "tenor_yeras" in app.code[0].value and "tenor_years" in app.code[0].value

    uploader = app.sidebar.get("file_uploader")[0]
    uploader.set_value(("broken.toml", b"[eib\n", "text/plain"))
    app.run()
    assert not app.exception
    assert "malformed TOML" in app.code[0].value

    uploader = app.sidebar.get("file_uploader")[0]
    uploader.set_value(("binary.toml", b"\xff\xfe\x00", "application/octet-stream"))
    app.run()
    assert not app.exception and "not UTF-8 text" in app.error[0].value


def test_an_upload_outside_the_slider_ranges_is_shown_unchanged(app):
    app.sidebar.selectbox[0].select(UPLOAD).run()
    uploader = app.sidebar.get("file_uploader")[0]
    text = b'extends = "base"\nname = "far"\n[energy]\npower_price_eur_mwh = 450.0\n'
    uploader.set_value(("far.toml", text, "text/plain"))
    app.run()
    assert not app.exception and not app.error
    assert app.subheader[0].value == "far"  # not "far-edited": untouched controls change nothing
    assert widget(app, "slider", "Power price (EUR/MWh, central)").value == 450.0
    assert shown(app) == expected(finmodel.loads_scenario(text.decode()))


def test_compare_shows_your_edited_scenario_beside_the_presets(app, base):
    widget(app, "slider", "EIB share of cost").set_value(25.0).run()
    app.radio(key="view").set_value("Compare scenarios").run()
    assert not app.exception
    table = next(df.value for df in app.dataframe if "base-edited (yours)" in df.value.columns)
    assert table["base-edited (yours)"].to_dict() == expected(
        base.with_updates({"eib.share_of_cost": 0.25}))
    assert any("Your edits to base" in c.value and literal("eib.share_of_cost") in c.value
               for c in app.caption)
    assert app.text[0].value.startswith("base as published: ")  # the description is the preset's


def test_kpi_summary_reads_in_words_and_units(app, base):
    """Every portfolio KPI in the summary table, named by its description (no code names), a
    rate or probability in percent and an amount with thousands separators."""
    from finmodel.kpis import PATH_KPIS

    res = finmodel.simulate(base, paths=DEFAULT_PATHS)
    table = next(df.value for df in app.dataframe if df.value.index.name == "KPI")
    assert len(table) == len(res.summary())  # one row per KPI, none merged by a shared name
    irr = table.loc[PATH_KPIS["equity_irr"][1]]
    assert irr["p50"] == f"{res.summary().loc['equity_irr', 'p50']:.1%}" and irr["unit"] == ""
    capex = table.loc[PATH_KPIS["capex_initial_eur_m"][1]]
    assert capex["mean"] == f"{res.summary().loc['capex_initial_eur_m', 'mean']:,.0f}"
    assert not any(re.fullmatch(r"[a-z0-9_.]+", name) for name in table.index)  # no bare code name


def test_a_control_without_effect_says_so(app):
    """On base every site is held to its public-money cap: another allocation rule changes
    nothing, and the page says so rather than staying silent."""
    widget(app, "selectbox", "Fund allocation").set_value("equal").run()
    assert not app.exception and not app.error
    notes = " ".join(i.value for i in app.info)
    assert 'The fund allocation rule "equal" gives every site the same amount' in notes
    assert "Your edits change no result of this scenario." in notes
    widget(app, "selectbox", "Fund allocation").set_value("share_of_capex").run()
    widget(app, "slider", "EIB share of cost").set_value(20).run()
    assert not any("no result" in i.value for i in app.info)  # an edit that matters: no note


def test_a_scenario_saved_by_name_is_compared_and_downloadable(app, base):
    widget(app, "slider", "Power price (EUR/MWh, central)").set_value(60.0).run()
    app.text_input[0].input("cheap power")
    app.button[0].click().run()  # the form's Save, with the name typed
    assert not app.exception and not app.error
    assert "Saved as cheap power" in app.success[0].value
    app.text_input[0].input("base")
    app.button[0].click().run()
    assert "a preset's name" in app.error[0].value  # refused, with the reason
    app.radio(key="view").set_value("Compare scenarios").run()
    app.multiselect(key="compare").set_value(["base", "cheap power (saved)"]).run()
    assert not app.exception
    table = app.dataframe[0].value
    saved = base.with_centres({"energy.power_price_eur_mwh": 60.0}).model_copy(update={"name": "cheap power"})
    assert dict(table["cheap power (saved)"]) == expected(saved)
    assert dict(table["base"]) == expected(base)
    assert app.selectbox(key="saved_pick").value == "cheap power"


def test_risk_view_shows_the_api_loss_table(app, base):
    app.radio(key="view").set_value("Risk").run()
    assert not app.exception and not app.error
    res = finmodel.simulate(base, paths=DEFAULT_PATHS)
    table = app.dataframe[0].value
    np.testing.assert_allclose(table.to_numpy(float), res.risk().to_numpy(float), rtol=1e-12)
    assert list(table.columns) == ["expected", "VaR 95%", "CVaR 95%", "VaR 99%", "CVaR 99%"]
    # each site's minimum DSCR: P10, P50 and P90 over the paths, with the covenant lines
    sites, lines = chart_data(app.get("vega_lite_chart")[-1])
    want = res.factory_kpis.groupby("factory", observed=True)["min_dscr"].quantile([0.1, 0.5, 0.9]).unstack()
    assert list(sites["factory"]) == [f.name for f in base.factories]
    np.testing.assert_allclose(sites[["p10", "p50", "p90"]].to_numpy(float), want.to_numpy(float), rtol=1e-12)
    assert list(lines["label"]) == ["default covenant 1.05", "lock-up 1.15", "target at sizing 1.35"]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    def luminance(colour: str) -> float:
        rgb = [int(colour[k:k + 2], 16) / 255 for k in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_labelled_levels_read_on_the_light_and_the_dark_theme():
    """The hurdle and covenant lines and their labels keep 3:1 contrast (WCAG, graphics) on
    Streamlit's light and dark backgrounds; a plain orange (#f58518) does not on white."""
    from finmodel.charts import COVENANT_COLOURS, MARKER

    for colour in (MARKER, *COVENANT_COLOURS):
        assert contrast(colour, "#ffffff") >= 3 and contrast(colour, "#0e1117") >= 3, colour
    assert contrast("#f58518", "#ffffff") < 3
    assert contrast("#000000", "#ffffff") == pytest.approx(21)


def chart_data(chart) -> list:
    """The data frames an Altair chart sent to the page (Arrow-encoded in its datasets)."""
    import pyarrow as pa

    return [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]


@pytest.mark.parametrize(("case", "pick"), [("P10", "p10"), ("Worst (largest EIB loss)", "worst")])
def test_cash_flow_view_shows_a_chosen_path_of_a_factory_as_the_api(app, base, case, pick):
    from finmodel.results import select_paths

    app.radio(key="view").set_value("Cash flows").run()
    app.selectbox(key="drill_case").set_value(case).run()
    app.selectbox(key="drill_factory").set_value("FR gigafactory").run()
    assert not app.exception and not app.error
    res = finmodel.simulate(base, paths=DEFAULT_PATHS)
    path, _ = select_paths(res, [pick])[pick]
    want = res.cashflow_wide(path=path, factory="FR gigafactory")
    got = app.dataframe[0].value
    from finmodel.engine import ITEMS

    assert list(got.index) == [ITEMS[str(i)][1] for i in want.index]  # plain words, not codes
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(float), want.iloc[:, 1:].to_numpy(float),
                               rtol=1e-12, equal_nan=True)
