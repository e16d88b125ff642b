"""simulate: reproducibility across chunking and executors, Results API, errors."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

import finmodel
from finmodel.results import FAN_ITEMS
from finmodel.simulation import simulate


@pytest.fixture(scope="module")
def base():
    return finmodel.load_scenario("base")


def _same(a, b):
    pd.testing.assert_frame_equal(a.path_kpis, b.path_kpis, check_exact=True)
    pd.testing.assert_frame_equal(a.factory_kpis, b.factory_kpis, check_exact=True)
    pd.testing.assert_frame_equal(a.inputs, b.inputs, check_exact=True)
    for item in a.fan_data:
        np.testing.assert_array_equal(a.fan_data[item], b.fan_data[item])


@pytest.mark.parametrize("method", ["mc", "lhs", "sobol"])
def test_bit_identical_for_any_chunk_size(base, method):
    paths = 1024 if method == "sobol" else 900
    a = simulate(base, paths=paths, seed=4, method=method, chunk_size=paths)
    b = simulate(base, paths=paths, seed=4, method=method, chunk_size=97)
    _same(a, b)


def test_bit_identical_on_threads_and_serially(base):
    a = simulate(base, paths=700, seed=3, method="lhs", chunk_size=100, threads=1)
    b = simulate(base, paths=700, seed=3, method="lhs", chunk_size=100, threads=3)
    c = simulate(base, paths=700, seed=3, method="lhs")  # one chunk
    _same(a, b)
    _same(a, c)


def test_bit_identical_with_a_process_pool(base):
    a = simulate(base, paths=600, seed=9, method="lhs", chunk_size=150)
    with ProcessPoolExecutor(max_workers=2) as pool:
        b = simulate(base, paths=600, seed=9, method="lhs", chunk_size=200, executor=pool)
    _same(a, b)


def test_mc_paths_are_a_prefix_of_a_longer_run(base):
    short = simulate(base, paths=300, seed=2, method="mc")
    long = simulate(base, paths=1500, seed=2, method="mc")
    pd.testing.assert_frame_equal(short.path_kpis, long.path_kpis.iloc[:300])


def test_different_seeds_differ(base):
    a = simulate(base, paths=200, seed=1)
    b = simulate(base, paths=200, seed=2)
    assert not np.array_equal(a.path_kpis["project_irr"], b.path_kpis["project_irr"])


def test_results_api(base):
    calls = []
    res = simulate(base, paths=1000, seed=0, chunk_size=400,
                   progress=lambda done, total: calls.append((done, total)))
    assert calls == [(400, 1000), (800, 1000), (1000, 1000)]
    assert len(res.path_kpis) == 1000 and len(res.factory_kpis) == 1000 * base.n_factories
    summary = res.summary()
    row = summary.loc["project_irr"]
    x = res.path_kpis["project_irr"].dropna()
    assert row["mean"] == pytest.approx(x.mean())
    assert row["sem"] == pytest.approx(x.std(ddof=1) / np.sqrt(len(x)))
    assert row["p10"] <= row["p50"] <= row["p90"]
    fan = res.fan("cfads", [0.1, 0.5, 0.9])
    assert list(fan.columns) == [0.1, 0.5, 0.9] and len(fan) == base.timeline.horizon_years
    assert (fan[0.1] <= fan[0.9]).all()
    assert set(res.inputs.columns) == {"path", *base.uncertain_inputs()}


def test_recomputed_path_matches_its_kpis(base):
    res = simulate(base, paths=500, seed=3, method="lhs")
    for path in (0, 123, 499):
        table = res.cashflow_table(path)
        fcf = table[(table.factory == "portfolio") & (table.line_item == "unlevered_fcf")]
        irr = finmodel.irr(fcf["value"].to_numpy())
        assert irr == pytest.approx(res.path_kpis.loc[path, "project_irr"], abs=1e-12)
        equity = table[(table.factory == "portfolio") & (table.line_item == "private_equity_flow")]
        expected = res.path_kpis.loc[path, "equity_irr"]
        got = finmodel.irr(equity["value"].to_numpy())
        assert got == pytest.approx(expected, abs=1e-12) or (np.isnan(got) and np.isnan(expected))
        lines = res.path_lines(path)
        kpis = res.factory_kpis[res.factory_kpis.path == path]
        np.testing.assert_allclose(kpis["eib_eur_m"], lines["eib_draw"].sum(-1), rtol=1e-12)
        np.testing.assert_array_equal(kpis["default"], ~np.isnan(kpis["default_year"]))
    with pytest.raises(KeyError, match="500"):
        res.cashflow_table(500)


def test_fans_hold_each_paths_portfolio_sums(base):
    """Fan data row i is path i's line items added over the factories, recomputed from its
    draws; only the first fan_paths paths are kept, across chunk boundaries."""
    res = simulate(base, paths=300, seed=2, chunk_size=64, fan_paths=100)
    for item in FAN_ITEMS:
        assert res.fan_data[item].shape == (100, base.timeline.horizon_years)
    for path in (0, 63, 64, 99):
        lines = res.path_lines(path)
        for item in FAN_ITEMS:
            np.testing.assert_allclose(res.fan_data[item][path], lines[item].sum(0),
                                       rtol=1e-12, atol=1e-9, err_msg=f"{item}, path {path}")


def test_draws_respect_the_specs(base):
    res = simulate(base, paths=2000, seed=5, method="mc")
    u = res.inputs["market.utilisation_steady"]
    assert u.between(0.75, 0.95).all()
    delay = res.inputs["factories[0].grid_delay_years"]
    assert set(np.unique(delay)) <= set(range(8))
    assert (delay == 0).mean() == pytest.approx(0.7, abs=0.04)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"paths": 0}, "paths"), ({"paths": 2.5}, "paths"), ({"seed": -1}, "seed"),
    ({"method": "quasi"}, "method"), ({"chunk_size": 0}, "chunk_size"),
    ({"threads": 0}, "threads"), ({"threads": 1.5}, "threads"),
])
def test_bad_arguments_raise_scenario_error(base, kwargs, field):
    with pytest.raises(finmodel.ScenarioError, match=field):
        simulate(base, **kwargs)


def test_not_a_scenario():
    with pytest.raises(finmodel.ScenarioError, match=r"finmodel\.Scenario"):
        simulate("base")  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["mc", "lhs", "sobol"])
def test_perfect_correlation_is_sampled_not_a_linalg_error(base, method):
    sc = base.with_updates({"correlation.inputs": ["market.gpu_price_usd", "energy.pue"],
                            "correlation.matrix": [[1.0, 1.0], [1.0, 1.0]]})
    res = simulate(sc, paths=1024, seed=0, method=method)
    rho = res.inputs[["market.gpu_price_usd", "energy.pue"]].corr(method="spearman").iloc[0, 1]
    assert rho > 0.99


def test_bad_correlation_spec_is_a_scenario_error_before_sampling(base):
    with pytest.raises(finmodel.ScenarioError, match="positive semi-definite"):
        base.with_updates({"correlation.inputs": ["market.gpu_price_usd", "energy.pue",
                                                  "costs.build_months"],
                           "correlation.matrix": [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]})


def test_equity_below_hurdle_is_the_irr_against_the_hurdle(base):
    res = simulate(base, paths=400, seed=2)
    irr = res.path_kpis["equity_irr"].to_numpy()
    below = np.isnan(irr) | (irr < base.private.equity_hurdle_irr)
    np.testing.assert_array_equal(res.path_kpis["equity_below_hurdle"].to_numpy(), below.astype(float))
    assert res.path_kpis["equity_below_hurdle"].mean() == pytest.approx(below.mean())
