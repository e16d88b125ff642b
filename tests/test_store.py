"""Results that persist: pickle, save / load, the xarray cube, the line-item cube, and runs
that say up front when they would not fit in memory."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import finmodel
from finmodel import simulation


@pytest.fixture(scope="module")
def run(base):
    return finmodel.simulate(base, paths=300, seed=4)


def assert_same_results(a: finmodel.Results, b: finmodel.Results) -> None:
    for name in ("path_kpis", "factory_kpis", "tranche_kpis", "inputs"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.scenario == b.scenario and (a.method, a.seed) == (b.method, b.seed)
    assert a.fan_data.keys() == b.fan_data.keys()
    for item in a.fan_data:
        np.testing.assert_array_equal(a.fan_data[item], b.fan_data[item])
    for item in a.lines:
        np.testing.assert_array_equal(a.lines[item], b.lines[item])
    for path in (0, a.n_paths - 1):
        for item, values in a.path_lines(path).items():
            np.testing.assert_array_equal(b.path_lines(path)[item], values, err_msg=item)


def test_pickle_and_save_load_round_trip_exactly(run, base, tmp_path):
    assert_same_results(run, pickle.loads(pickle.dumps(run)))
    run.save(tmp_path / "run")
    assert_same_results(run, finmodel.Results.load(tmp_path / "run"))
    one = finmodel.base_case(base)
    one.save(tmp_path / "base")
    assert_same_results(one, finmodel.Results.load(tmp_path / "base"))
    # saving again replaces the earlier results whole
    one.save(tmp_path / "run")
    assert finmodel.Results.load(tmp_path / "run").n_paths == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_save_refuses_a_folder_that_is_not_saved_results(run, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(finmodel.ScenarioError, match="not a folder of saved results"):
        run.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(finmodel.ScenarioError, match="not a folder of saved results"):
        finmodel.Results.load(tmp_path / "mine")


def test_to_xarray_is_labelled_and_agrees_with_the_tables(run):
    ds = run.to_xarray(lines=["revenue", "cfads", "dscr"], start=100, stop=140)
    assert dict(ds.sizes) == {"path": 40, "factory": run.scenario.n_factories, "year": 25,
                              "tranche": len(run.scenario.tranches)}
    assert ds["line_revenue"].dims == ("path", "factory", "year")
    assert ds["equity_irr"].attrs["unit"] == "1/yr" and ds["factory_default"].attrs["unit"] == "flag"
    assert ds.attrs["paths"] == 300 and ds.attrs["seed"] == 4 and ds.attrs["method"] == "lhs"
    assert finmodel.loads_scenario(ds.attrs["scenario_toml"]) == run.scenario
    for path in (100, 117, 139):
        table = run.cashflow_table(path, include_portfolio=False)
        for item in ("revenue", "cfads", "dscr"):
            rows = table[table.line_item == item]
            expected = rows.pivot(index="factory", columns="year", values="value").to_numpy()
            np.testing.assert_array_equal(ds[f"line_{item}"].sel(path=path).to_numpy(), expected)
        kpis = run.factory_kpis[run.factory_kpis.path == path].set_index("factory")
        for factory in ds.factory.values:
            assert ds["factory_equity_irr"].sel(path=path, factory=factory).item() == pytest.approx(
                kpis.loc[factory, "equity_irr"], nan_ok=True, abs=0)
        assert ds["equity_irr"].sel(path=path).item() == pytest.approx(
            run.path_kpis.loc[path, "equity_irr"], nan_ok=True, abs=0)
        for field in run.scenario.uncertain_inputs():
            assert ds[field].sel(path=path).item() == run.inputs.loc[path, field]


def test_the_line_item_cube_equals_every_path_recomputed_alone(run):
    cube = run.line_items(["equity_flow", "covenant_breach"], start=250, stop=300)
    for k, path in enumerate(range(250, 300, 7)):
        lines = run.path_lines(path)
        np.testing.assert_array_equal(cube["equity_flow"][path - 250], lines["equity_flow"])
        np.testing.assert_array_equal(cube["covenant_breach"][path - 250], lines["covenant_breach"])
        assert k < 8


def test_runs_and_cubes_that_do_not_fit_say_so_before_any_work(base, run, monkeypatch):
    def no_work(*_args, **_kwargs):
        raise AssertionError("a chunk ran before the memory check")

    monkeypatch.setattr(simulation, "_run_chunk", no_work)
    with pytest.raises(finmodel.ScenarioError) as err:
        finmodel.simulate(base, paths=1_000_000, memory_budget_bytes=2**30)
    message = str(err.value)
    assert "paths = 1000000" in message and "GB" in message and "factory_kpis=False" in message
    with pytest.raises(finmodel.ScenarioError, match="cube needs"):
        run.line_items(start=0, stop=300, memory_budget_bytes=2**20)
    with pytest.raises(finmodel.ScenarioError, match="items"):
        run.line_items(["revnue"])


def test_the_memory_estimate_grows_with_what_is_kept(base):
    from finmodel.simulation import estimate_memory_bytes

    full = estimate_memory_bytes(base, 100_000)
    assert estimate_memory_bytes(base, 100_000, factory_kpis=False) < full / 2
    assert estimate_memory_bytes(base, 200_000) > 1.6 * full
