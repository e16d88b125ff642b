"""Operations against answers worked out by hand and closed forms, plus invariants."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import finmodel
from finmodel.drivers import central_drivers, power_price_mean_path
from finmodel.operations import HOURS_PER_YEAR, LINE_ITEMS, corporate_tax, operate

TINY = """
name = "tiny"
[timeline]
start_year = 2026
horizon_years = 6
[eib]
tenor_years = 5
[macro]
eur_usd = 1.0
inflation_per_year = 0.0
[market]
gpu_price_usd = 10000.0
gpu_price_growth_per_year = 0.0
system_cost_share_of_gpu_price = 0.0
gpu_hour_price_launch_usd = 2.0
on_demand_premium = 0.0
gpu_hour_price_erosion_per_year = 0.5
gpu_useful_life_years = 2
gpu_resale_share_5y = 0.17677669529663687   # 0.5 ** 2.5: half the cost back at age 2
utilisation_launch_year = 0.5
utilisation_steady = 0.8
public_access_share = 0.25
anchor_share_of_commercial = 1.0
anchor_contract_years = 1.0
anchor_take_or_pay = false
public_access_discount = 0.5
price_performance_growth_per_year = 0.4
[energy]
it_kw_per_gpu = 1.0
pue = 1.0
idle_power_share = 0.25
power_price_eur_mwh = 100.0
[costs]
facility_capex_usd_m_per_mw = 10.0
grid_capex_eur_m_per_mw = 0.0
build_months = 12.0
staff_maintenance_share_of_capex = 0.006
network_software_share_of_capex = 0.003
insurance_property_share_of_capex = 0.001
plant_share_of_facility = 0.0
facility_life_years = 5
[[factories]]
name = "tiny"
country = "DE"
gpus = 1000
tax_rate = 0.25
"""


@pytest.fixture(scope="module")
def tiny():
    return finmodel.loads_scenario(TINY)


def test_tiny_factory_matches_hand_calculation(tiny):
    """Every line item of a 1 MW, 1,000-GPU site over 6 years, worked out by hand.

    Close at 0, built in one year: COD 1.0. Fleets of 2 years: bought at 1, 3, 5 (paid at the
    end of periods 0, 2, 4, EUR 10m each), resold at half cost at 3 and 5; the third is in use
    at the horizon (age 1: 10 * 0.5 ** 0.5). Reserved price 2.0 at age 0, 1.0 at age 1; the
    channel factor is 0.75 * 1 + 0.25 * (1 - 0.5) = 0.875.
    """
    op = operate(central_drivers(tiny))
    get = {k: op[k][0, 0] for k in LINE_ITEMS}
    h_ramp, h_steady = 1000 * 8760 * 0.5 / 1e6, 1000 * 8760 * 0.8 / 1e6  # m GPU-hours
    hours = [0, h_ramp, h_steady, h_steady, h_steady, h_steady]
    # each new fleet launches at the generation step ((1 + 0.4) (1 - 0.5)) ** (years after the
    # first fleet): 0.7^2 = 0.49 for the fleet bought at 3, 0.7^4 = 0.2401 for the one at 5;
    # one-year anchor contracts at the market price of their year, paid for the hours used
    price = [0, 2.0, 1.0, 2.0 * 0.49, 1.0 * 0.49, 2.0 * 0.2401]
    revenue = [h * p * 0.875 for h, p in zip(hours, price, strict=True)]
    mwh = [0, 1000 * 8760 * (0.25 + 0.75 * 0.5) / 1000] + [1000 * 8760 * (0.25 + 0.75 * 0.8) / 1000] * 4
    energy = [m * 100 / 1e6 for m in mwh]
    other = [0] + [0.01 * (10 + 10)] * 5  # opex shares 0.006 + 0.003 + 0.001
    ebitda = [r - e - o for r, e, o in zip(revenue, energy, other, strict=True)]
    dep = [0] + [10 / 2 + 10 / 5] * 5
    resale = [0, 0, 5.0, 0, 5.0, 0]
    tv_fleet = 10 * 0.5 ** 0.5
    terminal_gain = tv_fleet - (10 - 5)
    taxable = [e - d + r for e, d, r in zip(ebitda, dep, resale, strict=True)]
    taxable[5] += terminal_gain
    pool, tax = 0.0, []
    for x in taxable:
        used = min(pool, max(x, 0))
        tax.append(0.25 * (max(x, 0) - used))
        pool += max(-x, 0) - used
    capex = [20.0, 0, 10.0, 0, 10.0, 0]
    terminal = [0, 0, 0, 0, 0, tv_fleet + 0.0]
    fcf = [e - t - c + r + v for e, t, c, r, v in zip(ebitda, tax, capex, resale, terminal, strict=True)]
    cfads = [e - t - c + r for e, t, c, r in
             zip(ebitda, tax, [0, 0, 10.0, 0, 10.0, 0], resale, strict=True)]

    np.testing.assert_allclose(get["gpu_hours_m"], hours, rtol=1e-12)
    np.testing.assert_allclose(get["gpu_hours_public_m"], np.array(hours) * 0.25, rtol=1e-12)
    np.testing.assert_allclose(get["revenue"], revenue, rtol=1e-12)
    np.testing.assert_allclose(get["revenue_anchor"], np.array(hours) * price * 0.75, rtol=1e-12)
    np.testing.assert_allclose(get["energy_gwh"], np.array(mwh) / 1000, rtol=1e-12)
    np.testing.assert_allclose(get["energy_cost"], energy, rtol=1e-12)
    np.testing.assert_allclose(get["other_opex"], other, atol=1e-12)
    np.testing.assert_allclose(get["opex_staff_maintenance"], np.array(other) * 0.6, atol=1e-12)
    np.testing.assert_allclose(get["opex_network_software"], np.array(other) * 0.3, atol=1e-12)
    np.testing.assert_allclose(get["opex_insurance_property"], np.array(other) * 0.1, atol=1e-12)
    np.testing.assert_allclose(get["ebitda"], ebitda, atol=1e-12)
    np.testing.assert_allclose(get["depreciation"], dep, atol=1e-12)
    np.testing.assert_allclose(get["resale_proceeds"], resale, atol=1e-12)
    np.testing.assert_allclose(get["taxable_income"], taxable, atol=1e-12)
    np.testing.assert_allclose(get["tax"], tax, atol=1e-12)
    np.testing.assert_allclose(get["capex"], capex, atol=1e-12)
    np.testing.assert_allclose(get["capex_gpu_refresh"], [0, 0, 10, 0, 10, 0], atol=1e-12)
    np.testing.assert_allclose(get["terminal_value"], terminal, atol=1e-12)
    np.testing.assert_allclose(get["unlevered_fcf"], fcf, atol=1e-12)
    np.testing.assert_allclose(get["pre_financing_cash"], cfads, atol=1e-12)
    # compute in first-fleet equivalents: fleets bought 2 and 4 years later are 1.4^2, 1.4^4
    np.testing.assert_allclose(get["compute_hours_adjusted_m"],
                               np.array(hours) * [1, 1, 1, 1.4**2, 1.4**2, 1.4**4], rtol=1e-12)
    assert op.cod_years[0, 0] == 1.0 and op.facility_mw[0, 0] == 1.0
    assert op.capex_initial[0, 0] == pytest.approx(20.0)


def test_base_steady_year_hours_and_energy_closed_form(base):
    op = operate(central_drivers(base))
    gpus, kw, pue = 100_000, 1.8, 1.2
    u, idle = 0.85, 0.30
    t = 3  # a full steady year (COD at 2.0)
    assert op["gpu_hours_m"][0, 0, t] == pytest.approx(gpus * 8760 * u / 1e6, rel=1e-12)
    mwh = gpus * kw * pue * 8760 * (idle + (1 - idle) * u) / 1000
    assert op["energy_gwh"][0, 0, t] == pytest.approx(mwh / 1000, rel=1e-12)
    assert op["energy_cost"][0, 0, t] == pytest.approx(mwh * 110 / 1e6, rel=1e-12)
    assert op.facility_mw[0, 0] == pytest.approx(216.0)  # domain brief: ~216 MW


def test_power_price_path_closed_form():
    sc = finmodel.load_scenario("energy_shock")
    path = central_drivers(sc).power_price_eur_mwh[0, 0]
    t = np.arange(sc.timeline.horizon_years)
    expected = 110.0 * (250.0 / 110.0) ** (0.5 ** (t / 3.0))
    np.testing.assert_allclose(path, expected, rtol=1e-12)
    np.testing.assert_allclose(power_price_mean_path(np.array(80.0), np.array(80.0), 1.0, 4), 80.0)


def test_tax_loss_carry_forward_crafted():
    taxable = np.array([[[-10.0, 4.0, 4.0, 10.0, -1.0, 3.0]]])
    tax, pool = corporate_tax(taxable, np.array([[0.25]]))
    # losses 10 absorb 4 + 4 + 2 of profit; then 8 taxed; loss 1 absorbs 1 of the last 3
    np.testing.assert_allclose(tax[0, 0], [0, 0, 0, 0.25 * 8, 0, 0.25 * 2])
    assert pool[0, 0] == 0.0


def test_refresh_in_the_right_year_at_that_years_price(base):
    sc = base.with_updates({"market.gpu_price_growth_per_year": 0.10, "market.gpu_useful_life_years": 5})
    op = operate(central_drivers(sc))
    refresh = op["capex_gpu_refresh"][0, 0]
    paid = np.flatnonzero(refresh)
    # COD at 2.0; fleets bought at 7, 12, 17, 22 -> paid at the end of periods 6, 11, 16, 21
    assert paid.tolist() == [6, 11, 16, 21]
    per_gpu_eur = 40_000 * 1.19 / 1.16
    for j in paid:
        assert refresh[j] == pytest.approx(100_000 * per_gpu_eur * 1.1**j / 1e6, rel=1e-12)
    resale = op["resale_proceeds"][0, 0]
    assert np.flatnonzero(resale).tolist() == [6, 11, 16, 21]
    first_cost = 100_000 * per_gpu_eur * 1.1 / 1e6  # first fleet paid at the end of period 1
    assert resale[6] == pytest.approx(first_cost * 0.12, rel=1e-12)


def test_grid_delay_postpones_revenue_not_construction(base):
    delayed = base.with_updates({"factories[0].grid_delay_years": 3.0})
    a, b = operate(central_drivers(base)), operate(central_drivers(delayed))
    np.testing.assert_allclose(a["capex_construction"][0, 0], b["capex_construction"][0, 0])
    assert np.flatnonzero(b["revenue"][0, 0])[0] == np.flatnonzero(a["revenue"][0, 0])[0] + 3
    # the idle facility still costs opex while waiting for the grid
    assert b["other_opex"][0, 0, 2] > 0 and b["revenue"][0, 0, 2] == 0
    close = delayed.with_updates({"costs.gpus_bought_at": "close"})
    c = operate(central_drivers(close))
    assert np.flatnonzero(c["capex_gpu_initial"][0, 0]).tolist() == [0]
    assert np.flatnonzero(b["capex_gpu_initial"][0, 0]).tolist() == [4]


def test_facility_mw_sizing(base):
    sized = base.with_updates({"factories[0].gpus": None, "factories[0].facility_mw": 108.0})
    d = central_drivers(sized)
    assert d.gpus[0, 0] == 50_000  # 108 MW / (1.8 kW * 1.2)
    ok = base.with_updates({"factories[0].facility_mw": 216.0})  # both given and agreeing
    assert central_drivers(ok).gpus[0, 0] == 100_000


def test_all_factories_at_once_equal_one_at_a_time():
    sc = finmodel.load_scenario("grid_delay")
    d = central_drivers(sc)
    whole = operate(d)
    for i in range(sc.n_factories):
        alone = operate(d.select_factories(i))
        for name in LINE_ITEMS:
            np.testing.assert_array_equal(alone[name][:, 0], whole[name][:, i], err_msg=name)


def _random_drivers(draw, base):
    """Base drivers with a few inputs redrawn per path (P paths)."""
    d = central_drivers(base)
    p = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    f = base.n_factories
    return dataclasses.replace(
        d,
        grid_delay_years=rng.integers(0, 8, (p, f)).astype(float),
        build_years=rng.uniform(0.5, 3.0, (p, f)),
        gpu_life_years=rng.integers(3, 7, (p, f)).astype(float),
        utilisation_steady=rng.uniform(0.0, 1.0, (p, f, d.horizon_years)),
        gpu_hour_price_launch_eur=rng.uniform(0.5, 6.0, (p, f)),
        power_price_eur_mwh=rng.uniform(20, 400, (p, f, d.horizon_years)),
        gpu_hour_price_erosion_per_year=rng.uniform(0.0, 0.5, (p, f)),
    )


BASE = finmodel.load_scenario("base")


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_invariants_on_random_inputs(data):
    base = BASE
    d = _random_drivers(data.draw, base)
    op = operate(d)
    shape = (d.n_paths, base.n_factories, base.timeline.horizon_years)
    for name in LINE_ITEMS:
        assert op[name].shape == shape, name
        assert np.isfinite(op[name]).all(), name
    i = op.items
    np.testing.assert_allclose(i["ebitda"], i["revenue"] - i["opex"], atol=1e-9)
    np.testing.assert_allclose(i["opex"], i["energy_cost"] + i["other_opex"], atol=1e-9)
    np.testing.assert_allclose(
        i["revenue"], i["revenue_anchor"] + i["revenue_on_demand"] + i["revenue_public_users"]
        + i["revenue_public_fund"], atol=1e-9)
    np.testing.assert_allclose(
        i["capex"], i["capex_construction"] + i["capex_gpu_initial"] + i["capex_gpu_refresh"]
        + i["capex_plant_replacement"], atol=1e-9)
    np.testing.assert_allclose(i["other_opex"], i["opex_staff_maintenance"] + i["opex_network_software"]
                               + i["opex_insurance_property"], atol=1e-9)
    # the lifecycle reserve: what is put in is spent on plant or released at the horizon
    np.testing.assert_allclose(i["plant_reserve_contribution"].sum(-1),
                               i["capex_plant_replacement"].sum(-1) + op.plant_reserve_at_horizon,
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        i["unlevered_fcf"],
        i["ebitda"] - i["tax"] - i["capex"] + i["resale_proceeds"] + i["terminal_value"], atol=1e-9)
    assert (i["tax"] >= 0).all() and (i["gpu_hours_m"] >= 0).all()
    assert (i["operating_share"] <= 1).all()
    # loss carry-forward conserves income: tax = rate x (sum of taxable income + unused losses)
    rate = np.broadcast_to(d.tax_rate, shape[:2])
    _, unused = corporate_tax(i["taxable_income"], rate)
    np.testing.assert_allclose(i["tax"].sum(-1), rate * (i["taxable_income"].sum(-1) + unused),
                               atol=1e-7)
    # depreciation never exceeds what was spent
    assert (i["depreciation"].sum(-1) <= i["capex"].sum(-1) + 1e-6).all()
    # horizon totals added up while the kernel runs equal the line items' sums
    assert set(op.sums) >= {"revenue", "ebitda", "energy_gwh", "gpu_hours_m", "capex"}
    for name in op.sums:
        np.testing.assert_allclose(op.total(name), i[name].sum(-1), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(op.capex_initial, (i["capex_construction"] + i["capex_gpu_initial"])
                               .sum(-1), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(op.terminal_at_horizon, i["terminal_value"][..., -1], rtol=1e-15)
    irr = finmodel.irr(i["unlevered_fcf"])
    ok = np.isfinite(irr)
    if ok.any():
        fcf = i["unlevered_fcf"][ok]
        scale = finmodel.npv(irr[ok], np.abs(fcf))  # size of the discounted flows
        assert (np.abs(finmodel.npv(irr[ok], fcf)) <= 1e-9 * scale).all()


def test_public_access_paid_by_fund(base):
    sc = base.with_updates({"market.public_access_payer": "fund"})
    a, b = operate(central_drivers(base)), operate(central_drivers(sc))
    np.testing.assert_allclose(b["revenue_public_fund"], a["revenue_public_users"], rtol=1e-12)
    extra = b["revenue"] - a["revenue"]
    np.testing.assert_allclose(extra, b["revenue_public_fund"], atol=1e-9)
    assert math.isclose(HOURS_PER_YEAR, 8760.0)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_vectorised_engine_equals_scalar_reference(data):
    """Random fractional timings and lives against the independent per-path loop implementation
    (fleets serve their full lives here: the early retirement rule has its own test)."""
    from reference_model import drivers_row, factory_reference

    d = _random_drivers(data.draw, BASE)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    d = dataclasses.replace(
        d, retire_unprofitable_fleets=False, chip_delay_years=rng.uniform(0, 1, d.shape),
        gpus_bought_at_close=data.draw(st.booleans()),
        compute_capex_eur_per_gpu=rng.uniform(20_000, 60_000, (*d.shape, d.horizon_years)))
    op = operate(d)
    for p in range(d.n_paths):
        for f in (0, 4):
            ref = factory_reference(drivers_row(d, p, f), d.horizon_years)
            for name, values in ref.items():
                np.testing.assert_allclose(op[name][p, f], values, rtol=1e-10, atol=1e-9,
                                           err_msg=name)


def test_extreme_shares_stay_finite(base):
    """Erosion of 100 % a year and zero resale value: prices and resale fall to zero, no NaN."""
    sc = base.with_updates({"market.gpu_hour_price_erosion_per_year": 1.0,
                            "market.gpu_resale_share_5y": 0.0,
                            "correlation.inputs": base.correlation.inputs[:3],
                            "correlation.matrix": [row[:3] for row in base.correlation.matrix[:3]]})
    op = operate(central_drivers(sc))
    for name in LINE_ITEMS:
        assert np.isfinite(op[name]).all(), name
    assert op["resale_proceeds"].sum() == 0.0
    first_year = op["revenue"][0, 0, 2]  # age 0: the launch price still applies
    assert first_year > 0 and op["revenue_on_demand"][0, 0, 3] == 0.0
    # a contract signed at age 0 holds launch / term (the term's average) for its term
    assert op["revenue_anchor"][0, 0, 3] == op["revenue_anchor"][0, 0, 2] > 0


def test_an_anchor_contract_keeps_its_price_for_its_term_then_reprices(tiny):
    """One fleet serving 1..5 (life 4), anchor contracts of 2 years on all capacity, take-or-pay.
    The market factor falls by half over years 1..3 (shock 0.5 from year 1 over 2 years):
    1, 0.75, 0.5, 0.5, ... Contracts are signed at 1 (factor 0.75, age 0) and 3 (factor 0.5,
    age 2, price 0.5^2 of launch), each at the term's average erosion over a one-year
    contract's: (1 - 0.5^2) / (2 (1 - 0.5)) = 0.75. So 2.0 x 0.75 x 0.75 = 1.125 in periods
    1 and 2, and 2.0 x 0.5 x 0.25 x 0.75 = 0.1875 in periods 3 and 4, on full capacity
    (8.76 m GPU-hours) whatever the utilisation."""
    sc = tiny.with_updates({"market.gpu_useful_life_years": 4, "market.public_access_share": 0.0,
                            "market.anchor_contract_years": 2.0, "market.anchor_take_or_pay": True,
                            "market.gpu_hour_price_shock": 0.5,
                            "market.gpu_hour_price_shock_years": 2.0,
                            "market.gpu_hour_price_shock_start_years": 1.0})
    capacity = 1000 * 8760 / 1e6
    expected = capacity * np.array([0, 1.125, 1.125, 0.1875, 0.1875, 0.0])
    for u in (0.5, 0.9):  # take-or-pay: the contracted revenue ignores utilisation
        op = operate(central_drivers(sc.with_updates({"market.utilisation_steady": u})))
        np.testing.assert_allclose(op["revenue_anchor"][0, 0, :5], expected[:5], rtol=1e-12)
        assert op["revenue_on_demand"].sum() == 0.0
    # paid only for the hours used: the same prices times the hours used
    used = operate(central_drivers(sc.with_updates({"market.anchor_take_or_pay": False})))
    hours = used["gpu_hours_m"][0, 0, :5]
    np.testing.assert_allclose(used["revenue_anchor"][0, 0, :5],
                               hours * np.array([0, 1.125, 1.125, 0.1875, 0.1875]), rtol=1e-12)


def test_contracted_revenue_is_independent_of_utilisation_and_the_rest_is_not(base):
    low, high = (operate(central_drivers(base.with_updates({"market.utilisation_steady": u})))
                 for u in (0.6, 0.9))
    np.testing.assert_array_equal(low["revenue_anchor"], high["revenue_anchor"])
    after_launch = slice(int(low.cod_years.max()) + 1, None)  # steady utilisation from here on
    np.testing.assert_allclose(high["revenue_on_demand"][..., after_launch],
                               1.5 * low["revenue_on_demand"][..., after_launch], rtol=1e-12)


def test_bad_contract_terms_and_half_lives_are_clear_errors(base):
    for update, field in (({"market.anchor_contract_years": 0.5}, "market.anchor_contract_years"),
                          ({"market.gpu_hour_price_half_life_years": 0.0},
                           "market.gpu_hour_price_half_life_years"),
                          ({"market.chip_demand_correlation": 1.5}, "market.chip_demand_correlation")):
        with pytest.raises(finmodel.ScenarioError, match=field.replace(".", r"\.")):
            base.with_updates(update)


def test_plant_is_replaced_at_the_end_of_its_life_from_an_evenly_built_reserve(tiny):
    """Plant (40% of a EUR 10m facility) with a 2-year life from the end of construction (1):
    replaced at 3 and 5 (paid at the end of periods 2 and 4, EUR 4m each at 2% inflation:
    4 x 1.02^2, 4 x 1.02^4), and reserved for evenly over the 2 years before each (half a
    cost a year); the replacement due at 7 is half reserved by the horizon (6) and released
    then. Each replacement is depreciated over 2 years."""
    sc = tiny.with_updates({"costs.plant_share_of_facility": 0.4, "costs.plant_life_years": 2,
                            "macro.inflation_per_year": 0.02})
    op = operate(central_drivers(sc))
    cost = [4.0 * 1.02**2, 4.0 * 1.02**4, 4.0 * 1.02**6]  # due at 3, 5, 7
    np.testing.assert_allclose(op["capex_plant_replacement"][0, 0], [0, 0, cost[0], 0, cost[1], 0],
                               rtol=1e-12)
    np.testing.assert_allclose(op["plant_reserve_contribution"][0, 0],
                               [0, cost[0] / 2, cost[0] / 2, cost[1] / 2, cost[1] / 2, cost[2] / 2],
                               rtol=1e-12)
    assert op.plant_reserve_at_horizon[0, 0] == pytest.approx(cost[2] / 2, rel=1e-12)
    plain = operate(central_drivers(sc.with_updates({"costs.plant_share_of_facility": 0.0})))
    extra_dep = op["depreciation"][0, 0] - plain["depreciation"][0, 0]
    np.testing.assert_allclose(extra_dep, [0, 0, 0, cost[0] / 2, cost[0] / 2, cost[1] / 2],
                               rtol=1e-12, atol=1e-12)


def test_a_fleet_is_retired_when_its_cash_margin_turns_negative(tiny):
    """Fleets of 4 years from COD 1 at EUR 2.0 per GPU-hour halving each year, energy EUR 0.6
    per GPU-hour (1 kW at EUR 600/MWh), fleet opex 0.01 x EUR 10,000 / (8,760 x 0.8) = 0.0143.
    Margins: age 0 1.39, age 1 0.39, age 2 -0.11: the fleet serves periods 1-3 and is resold at
    the end of period 3 (age 3, 10 x 0.1768^(3/5)); its successor would earn 2.0 x 0.7^3 - 0.6
    - 0.0143 = 0.072 > 0, so it is bought then. Without the rule the fleet serves to 5."""
    sc = tiny.with_updates({"market.gpu_useful_life_years": 4, "energy.power_price_eur_mwh": 600.0,
                            "market.retire_unprofitable_fleets": True})
    op = operate(central_drivers(sc))
    np.testing.assert_allclose(op["capex_gpu_refresh"][0, 0], [0, 0, 0, 10.0, 0, 0], atol=1e-12)
    resale = 10.0 * 0.17677669529663687 ** (3 / 5)
    np.testing.assert_allclose(op["resale_proceeds"][0, 0], [0, 0, 0, resale, 0, 0], rtol=1e-12)
    # the successor launches at the generation step for 3 years after the first fleet
    hours = op["gpu_hours_m"][0, 0, 4]
    np.testing.assert_allclose(op["revenue"][0, 0, 4], hours * 2.0 * 0.7**3 * 0.875, rtol=1e-12)
    kept = operate(central_drivers(sc.with_updates({"market.retire_unprofitable_fleets": False})))
    np.testing.assert_allclose(kept["capex_gpu_refresh"][0, 0], [0, 0, 0, 0, 10.0, 0], atol=1e-12)
    # no retirement where the successor would lose money too: at EUR 700/MWh (margin -0.03)
    worse = operate(central_drivers(sc.with_updates({"energy.power_price_eur_mwh": 700.0})))
    np.testing.assert_allclose(worse["capex_gpu_refresh"][0, 0], [0, 0, 0, 0, 10.0, 0], atol=1e-12)
