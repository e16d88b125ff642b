"""Presets, round trips, updates and the field table."""

from __future__ import annotations

import math

import pytest

import finmodel
from finmodel.scenario import field_rows
from finmodel.scenario.distributions import Discrete, Pert, Triangular, _Spec
from finmodel.scenario.io import loads_scenario, write_text_atomic

PRESETS = finmodel.list_scenarios()


def test_expected_presets_ship():
    assert {"base", "four_gigafactories", "thirteen_factories", "energy_shock",
            "gpu_price_collapse", "grid_delay", "chip_squeeze"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_round_trips(name):
    sc = finmodel.load_scenario(name)
    assert sc.name == name
    again = loads_scenario(sc.to_toml())
    assert again == sc
    assert again.to_toml() == sc.to_toml()


@pytest.mark.parametrize("name", PRESETS)
def test_every_number_in_a_preset_has_a_source(name):
    sc = finmodel.load_scenario(name)
    missing = [
        r.path for r in field_rows(sc)
        if (isinstance(r.value, _Spec) or isinstance(r.value, int | float)) and not r.source
    ]
    assert missing == []


@pytest.mark.parametrize("name", PRESETS)
def test_every_field_has_unit_and_description(name):
    for row in field_rows(finmodel.load_scenario(name)):
        assert row.unit, row.path
        assert row.description, row.path


def test_thirteen_factories_has_thirteen_member_states():
    sc = finmodel.load_scenario("thirteen_factories")
    assert sc.n_factories == 13
    assert len({f.country for f in sc.factories}) == 13
    assert sum(f.gpus for f in sc.factories) == 390_000


def test_presets_override_only_what_differs(base):
    shock = finmodel.load_scenario("energy_shock")
    assert shock.energy.power_price_start_eur_mwh == 250.0
    assert shock.energy.power_price_half_life_years == 3.0
    assert shock.energy.power_price_volatility == 2 * base.energy.power_price_volatility
    assert shock.market == base.market and shock.factories == base.factories
    grid = finmodel.load_scenario("grid_delay")
    delayed = [f.name for f in grid.factories if f.grid_delay_years.support == (3.0, 5.0)]
    assert delayed == ["DE gigafactory", "IT gigafactory", "SE AI factory", "PL AI factory"]


def test_base_public_money_fits_the_fund(base):
    """Central capex worked out by hand from the base inputs: public money ~EUR 10B < 20B."""
    m, e, c = base.market, base.energy, base.costs
    fx = base.macro.eur_usd.central
    total = 0.0
    for fac in base.factories:
        mw = fac.gpus * e.it_kw_per_gpu.central * e.pue.central / 1000
        capex = (fac.gpus * m.gpu_price_usd.central * (1 + m.system_cost_share_of_gpu_price.central)
                 / 1e6 / fx + mw * c.facility_capex_usd_m_per_mw.central / fx
                 + mw * c.grid_capex_eur_m_per_mw.central)
        total += min(fac.public_share_of_capex * capex, base.fund.public_eur_m_per_site_max)
    # 100k GPUs: 216 MW, capex = 4,103 + 3,072 + 21.6 = EUR 7,197m; public capped at 2,000
    assert 9_500 < total < 10_500
    assert total <= base.fund.size_eur_m


def test_with_updates_returns_new_validated_object(base):
    new = base.with_updates({"eib.tenor_years": 20, "factories[2].gpus": 50_000})
    assert new.eib.tenor_years == 20 and new.factories[2].gpus == 50_000
    assert base.eib.tenor_years == 15 and base.factories[2].gpus == 100_000
    assert new.eib.sources["tenor_years"].startswith("user override (was: [S12]")


def test_with_updates_pins_an_uncertain_input(base):
    new = base.with_updates({"energy.pue": 1.3})
    assert new.energy.pue.is_fixed and new.energy.pue.central == 1.3
    assert "energy.pue" not in new.uncertain_inputs()
    assert "energy.pue" in base.uncertain_inputs()


def test_with_updates_edits_a_distribution_parameter(base):
    new = base.with_updates({"market.utilisation_steady.mode": 0.8})
    assert new.market.utilisation_steady == Pert(low=0.75, mode=0.8, high=0.95)


def test_with_updates_revalidates(base):
    with pytest.raises(finmodel.ScenarioError) as err:
        base.with_updates({"eib.share_of_cost": 0.55, "eib.tenr_years": 3})
    text = str(err.value)
    assert "eib.tenr_years = 3" in text and "did you mean 'tenor_years'" in text
    with pytest.raises(finmodel.ScenarioError, match=r"eib.share_of_cost = 0.55"):
        base.with_updates({"eib.share_of_cost": 0.55})


def test_with_updates_rejects_bad_paths(base):
    for path in ["factories[99].gpus", "eib..tenor_years", "eib", "factories[0]"]:
        with pytest.raises(finmodel.ScenarioError, match=path.replace("[", r"\[").replace("]", r"\]")):
            base.with_updates({path: 1})


def test_scenario_is_frozen(base):
    with pytest.raises(ValueError, match="frozen"):
        base.eib.tenor_years = 3  # type: ignore[misc]


def test_scenario_error_is_value_error():
    assert issubclass(finmodel.ScenarioError, ValueError)


def test_central_values():
    assert Triangular(low=1, mode=2, high=5).central == 2
    from finmodel.scenario.distributions import LogNormal, TruncNormal, Uniform

    assert math.isclose(LogNormal(low=50.0, high=200.0).central, 100.0)
    assert TruncNormal(mean=3, sd=1, low=0).central == 3
    assert Uniform(low=3, high=5).central == 4
    assert Discrete(values=[0, 1, 2], probs=[0.2, 0.5, 0.3]).central == 1


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.toml"
    write_text_atomic(target, "a = 1\n")
    assert target.read_text() == "a = 1\n"


    with pytest.raises(TypeError):
        write_text_atomic(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "a = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.toml"]


def test_load_from_path_with_extends(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('extends = "base"\nname = "mine"\n[eib]\ntenor_years = 12\n')
    sc = finmodel.load_scenario(path)
    assert sc.name == "mine" and sc.eib.tenor_years == 12
    assert sc.factories == finmodel.load_scenario("base").factories


def test_extends_a_relative_path_next_to_the_file(tmp_path):
    (tmp_path / "parent.toml").write_text('extends = "base"\n[eib]\ntenor_years = 12\n')
    (tmp_path / "child.toml").write_text('extends = "parent.toml"\nname = "child"\n')
    sc = finmodel.load_scenario(tmp_path / "child.toml")
    assert sc.name == "child" and sc.eib.tenor_years == 12


def test_extends_cycle_is_reported(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(finmodel.ScenarioError, match="cycle"):
        finmodel.load_scenario(tmp_path / "a.toml")
