"""base_case Results: tidy tables, KPIs consistent with the line items, the CLI base command."""

from __future__ import annotations

import numpy as np
import numpy_financial as npf
import pandas as pd
import pytest

import finmodel
from finmodel.cli import main
from finmodel.engine import ITEMS as LINE_ITEMS


@pytest.fixture(scope="module")
def res():
    return finmodel.base_case(finmodel.load_scenario("base"))


def test_cashflow_table_is_tidy_and_complete(res):
    table = res.cashflow_table(path=0)
    assert list(table.columns) == ["factory", "year", "line_item", "unit", "value"]
    n_f, n_t = res.scenario.n_factories, res.scenario.timeline.horizon_years
    assert len(table) == len(LINE_ITEMS) * (n_f + 1) * n_t
    assert not table.duplicated(["factory", "year", "line_item"]).any()
    rev = table[(table.line_item == "revenue")].pivot(index="year", columns="factory",
                                                       values="value")
    np.testing.assert_allclose(rev["portfolio"], rev.drop(columns="portfolio").sum(axis=1))
    with pytest.raises(KeyError, match="path 5"):
        res.cashflow_table(path=5)


def test_factory_kpis_reconcile_with_line_items_and_numpy_financial(res):
    kp = res.factory_kpis.set_index("factory")
    fcf = res.lines["unlevered_fcf"][0]
    for i, name in enumerate(kp.index):
        assert kp.loc[name, "project_irr"] == pytest.approx(npf.irr(fcf[i]), abs=1e-9)
        assert kp.loc[name, "project_npv_eur_m"] == pytest.approx(npf.npv(0.075, fcf[i]), rel=1e-12)
        assert kp.loc[name, "gpu_hours_m"] == pytest.approx(res.lines["gpu_hours_m"][0, i].sum())
    path = res.path_kpis.iloc[0]
    assert path["project_irr"] == pytest.approx(npf.irr(fcf.sum(0)), abs=1e-9)
    assert path["sites_operating"] == 7 and path["facility_mw"] == pytest.approx(4 * 216 + 3 * 54)
    # domain brief: 100k GPUs at USD 82k all-in is about EUR 7.1B; ours 7.2B
    de = kp.loc["DE gigafactory"]
    assert 6_900 < de["capex_initial_eur_m"] < 7_500


def test_summary_has_statistics_and_units(res):
    summary = res.summary()
    assert {"mean", "std", "sem", "p5", "p10", "p50", "p90", "p95", "unit"} <= set(summary.columns)
    assert summary.loc["project_irr", "unit"] == "1/yr"
    assert summary.loc["gpu_hours_m", "p50"] == pytest.approx(res.path_kpis["gpu_hours_m"][0])


def test_inputs_are_the_central_values(res):
    row = res.inputs.iloc[0]
    assert row["market.utilisation_steady"] == 0.85
    assert row["factories[0].grid_delay_years"] == 0.0


def test_cli_base_prints_table_and_kpis(capsys, tmp_path):
    out_csv = tmp_path / "base.csv"
    assert main(["base", "base", "--csv", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "ebitda" in out and "project_irr" in out and "2026" in out
    table = pd.read_csv(out_csv)
    assert set(table["line_item"]) == set(LINE_ITEMS)
    assert main(["base", "base", "--factory", "FI AI factory"]) == 0
    assert main(["base", "base", "--factory", "XX"]) == 2
    assert "no such factory" in capsys.readouterr().err


def test_portfolio_ratios_are_ratios_of_sums():
    """The portfolio row of the cash-flow table: DSCR = portfolio CFADS / portfolio service,
    the operating share weighted by GPUs, never a sum or plain mean of the sites' values."""
    sc = finmodel.load_scenario("base")
    res = finmodel.simulate(sc, paths=64, seed=2)
    table = res.cashflow_table(path=3)
    wide = table.pivot_table(index=["factory", "year"], columns="line_item", values="value",
                             observed=True, dropna=False)
    port = wide.loc["portfolio"]
    sites = wide.drop(index="portfolio", level="factory")
    cfads = sites["cfads"].groupby(level="year").sum()
    service = sites["senior_debt_service"].groupby(level="year").sum()
    paying = service > 1e-9
    np.testing.assert_allclose(port["dscr"][paying], (cfads / service)[paying], rtol=1e-12)
    assert port["dscr"][~paying].isna().all()
    gpus = np.array([f.gpus for f in sc.factories], dtype=float)  # base gives every site's GPUs
    share = sites["operating_share"].unstack("factory")[[f.name for f in sc.factories]]
    np.testing.assert_allclose(port["operating_share"], share.to_numpy() @ gpus / gpus.sum(),
                               rtol=1e-12)
    assert not np.allclose(port["operating_share"], share.mean(axis=1))  # sites differ in size


def test_a_defaulted_site_s_service_stays_in_its_default_year():
    res = finmodel.simulate(finmodel.load_scenario("base"), paths=200, seed=4)
    hit = res.factory_kpis.query("default == 1").iloc[0]
    lines = res.path_lines(int(hit["path"]))
    f = [fac.name for fac in res.scenario.factories].index(hit["factory"])
    t = int(hit["default_year"]) - res.scenario.timeline.start_year
    service, cfads = lines["senior_debt_service"][f], lines["cfads"][f]
    assert service[t] > 0 and np.all(service[t + 1:] == 0)
    assert lines["dscr"][f, t] == pytest.approx(cfads[t] / service[t], rel=1e-12)


def test_event_curves_rise_to_the_event_probabilities():
    res = finmodel.simulate(finmodel.load_scenario("base"), paths=300, seed=6)
    pk, fk = res.path_kpis, res.factory_kpis
    curves = {e: res.event_curve(e) for e in
              ("covenant_breach", "default", "payment_default", "eib_default", "eib_loss")}
    for event, curve in curves.items():
        assert (curve.diff().iloc[1:] >= 0).all().all(), event  # cumulative
        assert curve["any site"].iloc[-1] == pytest.approx(pk[f"any_{event}"].mean(), abs=1e-12)
        by_factory = fk.groupby("factory", observed=True)[event].mean()
        for name in by_factory.index:
            assert curve[name].iloc[-1] == pytest.approx(by_factory[name], abs=1e-12), (event, name)
    # each year: an EIB loss implies a default while owing the EIB, which implies a default
    assert (curves["eib_loss"] <= curves["eib_default"] + 1e-12).all().all()
    assert (curves["eib_default"] <= curves["default"] + 1e-12).all().all()
    assert (curves["payment_default"] <= curves["default"] + 1e-12).all().all()
    with pytest.raises(KeyError, match="choose from"):
        res.event_curve("bankruptcy")


def test_covenant_curve_counts_the_sites_whose_dscr_is_below_the_covenant_each_year():
    sc = finmodel.load_scenario("base")
    res = finmodel.simulate(sc, paths=300, seed=8)
    curve = res.covenant_curve()
    counts = np.array([np.nansum(res.path_lines(p)["dscr"] < sc.eib.default_dscr, axis=0)
                       for p in range(res.n_paths)])  # (P, T) recomputed from each path's DSCRs
    np.testing.assert_array_equal(curve["P(any site)"].to_numpy(), (counts > 0).mean(0))
    np.testing.assert_allclose(curve["share of sites"].to_numpy(), counts.mean(0) / sc.n_factories,
                               rtol=1e-12)
    assert curve["P(any site)"].max() > 0.1  # breaches happen, year by year
    # a breach in some year on most paths, but in any one year on far fewer
    assert res.path_kpis["any_covenant_breach"].mean() > 2 * curve["P(any site)"].max()


def test_results_pickle_and_recompute_paths_after_the_round_trip():
    """Results come back from a worker or a cache: pickling keeps every table, and a path not
    stored is still recomputed exactly from its draws."""
    import pickle

    res = finmodel.simulate(finmodel.load_scenario("base"), paths=64, seed=3)
    again = pickle.loads(pickle.dumps(res))
    pd.testing.assert_frame_equal(again.path_kpis, res.path_kpis)
    pd.testing.assert_frame_equal(again.factory_kpis, res.factory_kpis)
    for item, values in res.path_lines(50).items():
        np.testing.assert_array_equal(again.path_lines(50)[item], values, err_msg=item)
