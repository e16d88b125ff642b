"""Financing and portfolio: schedules against numpy-financial and closed forms, sources = uses,
cash conserved through the waterfall, debt repaid or default recorded, the fund's layers."""

from __future__ import annotations

import numpy as np
import numpy_financial as npf
import pytest

import finmodel
from finmodel.drivers import central_drivers
from finmodel.engine import close_deal, run
from finmodel.kpis import LINES_READ
from finmodel.portfolio import allocate_fund, tranche_waterfall
from finmodel.sampling import make_design
from finmodel.simulation import _drivers


@pytest.fixture(scope="module")
def base():
    return finmodel.load_scenario("base")


def central_run(sc):
    terms = close_deal(sc)
    d = central_drivers(sc)
    return terms, d, run(sc, d, terms)


def paths_run(sc, n=600, seed=3):
    terms = close_deal(sc)
    _, d = _drivers(sc, make_design(sc, n, seed, "mc"), 0, n)
    return terms, d, run(sc, d, terms)


PLAIN = {"private.refresh_funding": "equity", "private.commercial_debt_share": 0.0}


@pytest.mark.parametrize("profile", ["annuity", "linear"])
def test_senior_schedule_matches_numpy_financial(base, profile):
    sc = base.with_updates({**PLAIN, "eib.repayment": profile})
    terms, d, m = central_run(sc)
    fin = m.financing
    rate = float((d.base_rate + d.eib_margin)[0, 0])
    for f in range(sc.n_factories):
        r0 = int(fin.first_repayment[0, f])
        n = int(terms.repayment_years[f])
        b0 = fin.eib_exposure[0, f]
        k = np.arange(1, n + 1)
        if profile == "annuity":
            principal = npf.ppmt(rate, k, n, -b0)
            interest = npf.ipmt(rate, k, n, -b0)
            service = np.full(n, npf.pmt(rate, n, -b0))
        else:
            principal = np.full(n, b0 / n)
            interest = rate * (b0 - b0 / n * (k - 1))
            service = principal + interest
        window = slice(r0, r0 + n)
        np.testing.assert_allclose(fin["eib_principal"][0, f, window], principal, rtol=1e-10)
        np.testing.assert_allclose(fin["eib_interest"][0, f, window], interest, rtol=1e-10)
        np.testing.assert_allclose(fin["senior_debt_service"][0, f, window], service, rtol=1e-10)
        assert fin["eib_balance"][0, f, r0 + n - 1] == pytest.approx(0.0, abs=1e-6)


def test_idc_is_the_draws_compounded_to_the_first_repayment(base):
    sc = base.with_updates(PLAIN)
    _, d, m = central_run(sc)
    fin = m.financing
    rate = float((d.base_rate + d.eib_margin)[0, 0])
    for f in range(sc.n_factories):
        r0 = int(fin.first_repayment[0, f])
        draws = fin["eib_draw"][0, f, :r0]
        expected = sum(x * (1 + rate) ** (r0 - 1 - t) for t, x in enumerate(draws))
        assert fin.eib_exposure[0, f] == pytest.approx(expected, rel=1e-12)
        assert fin["senior_idc"][0, f].sum() == pytest.approx(expected - draws.sum(), rel=1e-9)


def test_sculpted_debt_sized_by_dscr_holds_the_target_exactly(base):
    # a demanding target DSCR: the base-case CFADS, not the EIB share, limits the debt
    sc = base.with_updates({**PLAIN, "eib.share_of_cost": 0.5, "eib.target_dscr": 4.5})
    terms, _, m = central_run(sc)
    assert set(terms.binding) == {"dscr"}
    fin = m.financing
    for f in range(sc.n_factories):
        r0, n = int(fin.first_repayment[0, f]), int(terms.repayment_years[f])
        cfads = fin["cfads"][0, f, r0:r0 + n]
        dscr = fin["dscr"][0, f, r0:r0 + n]
        paying = cfads > 0
        np.testing.assert_allclose(dscr[paying], sc.eib.target_dscr, rtol=1e-8)
        assert fin.eib_exposure[0, f] == pytest.approx(terms.dscr_capacity_eur_m[f] * (
            fin.eib_exposure[0, f] / terms.eib_eur_m[f]), rel=1e-9)


@pytest.mark.parametrize("name", ["base", "thirteen_factories", "layered_fund", "funding_shortfall",
                                  "four_gigafactories"])
def test_base_case_meets_the_target_dscr_and_does_not_default(name):
    """A scenario sized on its own base case (no close_on) meets the target there until the
    first hardware loan; hardware loans are sized at their refresh on a projection (the fleet
    they replace), so later years may differ a little, but never reach the lock-up."""
    sc = finmodel.load_scenario(name)
    assert sc.close_on is None
    _, _, m = central_run(sc)
    fin = m.financing
    assert not fin.default.any() and fin.breach_periods.max() == 0
    first_hw = np.argmax(fin["hardware_draw"] > 0, -1)  # (1, F)
    before = np.arange(sc.timeline.horizon_years) <= first_hw[..., None]
    assert np.nanmin(np.where(before, fin["dscr"], np.nan)) >= sc.eib.target_dscr * (1 - 1e-9)
    assert np.nanmin(fin["dscr"]) > sc.eib.lockup_dscr
    for item in ("eib_balance", "commercial_balance", "hardware_balance", "sub_balance"):
        assert np.abs(fin[item][..., -1]).max() < 1e-6, item


def test_hardware_loans_are_sized_at_the_refresh_and_are_annuities(base):
    """By hand on the base case: the first refresh's loan is the smaller of the scenario's share
    of the refresh and the level annuity (numpy_financial.pmt) that the replaced fleet's CFADS,
    year by year of its life, carries at the target DSCR after the EIB's scheduled service."""
    _, d, m = central_run(base)
    fin, op = m.financing, m.operations
    rate = float((d.base_rate + d.hardware_loan_spread)[0, 0])  # priced as GPU-backed debt
    tenor = min(base.private.hardware_loan_tenor_years, int(d.gpu_life_years[0, 0]))
    draw = fin["hardware_draw"][0, 0]
    t = int(np.flatnonzero(draw > 0)[0])
    first_fleet = int(np.flatnonzero(op["capex_gpu_initial"][0, 0] > 0)[-1])
    eib = (fin["eib_interest"] + fin["eib_principal"] + fin["commercial_interest"]
           + fin["commercial_principal"])[0, 0]
    cfads = fin["cfads"][0, 0]
    room = min(cfads[min(first_fleet + k, t - 1)] / base.eib.target_dscr - eib[t + k]
               for k in range(1, tenor + 1))
    wanted = base.private.hardware_loan_share * op["capex_gpu_refresh"][0, 0, t]
    factor = npf.pmt(rate, tenor, -1.0)
    assert draw[t] == pytest.approx(min(wanted, room / factor), rel=1e-10)
    assert draw[t] < wanted  # the projection, not the share, binds the first refresh
    pay = fin["hardware_interest"][0, 0] + fin["hardware_principal"][0, 0]
    np.testing.assert_allclose(pay[t + 1:t + 1 + tenor], npf.pmt(rate, tenor, -draw[t]), rtol=1e-10)
    # the cohort is repaid after ``tenor`` payments (the next refresh may draw a new one then)
    assert fin["hardware_balance"][0, 0, t + tenor] - draw[t + tenor] == pytest.approx(0.0, abs=1e-6)


def test_hardware_loans_do_not_depend_on_where_the_horizon_ends(base):
    """Horizons 24 to 28: every loan repaid inside the shortest horizon is drawn alike, and the
    terms at close are identical (the last period's settlement is not scheduled service)."""
    runs = {h: central_run(base.with_updates({"timeline.horizon_years": h})) for h in range(24, 29)}
    short_terms, _, short = runs[24]
    tenor = base.private.hardware_loan_tenor_years
    inside = 24 - 1 - tenor  # refreshes whose loans end before the shortest horizon's last year
    for h, (terms, _, m) in runs.items():
        np.testing.assert_array_equal(terms.eib_eur_m, short_terms.eib_eur_m, err_msg=str(h))
        np.testing.assert_allclose(m.financing["hardware_draw"][..., :inside],
                                   short.financing["hardware_draw"][..., :inside], rtol=1e-12,
                                   err_msg=str(h))
    assert short.financing["hardware_draw"][..., :inside].sum() > 1000.0


def _cash_identity(sc, m):
    """Per period: cash in - cash out, NaN from the default period on."""
    fin, op = m.financing, m.operations
    n_t = sc.timeline.horizon_years
    fund_cash = 0.0 if sc.fund.instrument == "equity" else fin["fund_draw"]
    terminal = np.zeros_like(fin["cfads"])  # and the lifecycle reserve released at the horizon
    terminal[..., -1] = op["terminal_value"][..., -1] + op.plant_reserve_at_horizon
    cash_in = (fin["cfads"] + terminal + fin["eib_draw"] + fin["commercial_draw"]
               + fin["hardware_draw"] + fund_cash + fin["equity_contribution"])
    held = fin["dsra_balance"] + fin["trapped_cash"] + fin["maintenance_reserve"]  # accounts
    lag = np.concatenate([np.zeros((*held.shape[:-1], 1)), held[..., :-1]], -1)
    cash_out = (fin["construction_uses"] + fin["fees"] + op["capex_gpu_refresh"]
                + fin["eib_interest"] + fin["eib_principal"] + fin["commercial_interest"]
                + fin["commercial_principal"] + fin["hardware_interest"]
                + fin["hardware_principal"] + fin["sub_interest_paid"] + fin["sub_principal_paid"]
                + fin["distributions"] + held - lag)
    stop = np.where(fin.default, fin.default_period, n_t)[..., None]
    return np.where(np.arange(n_t) < stop, cash_in - cash_out, np.nan)


@pytest.mark.parametrize("updates", [
    {},
    {"fund.instrument": "sub_loan"},
    {"fund.instrument": "equity", "private.commercial_debt_share": 0.1},
    {"private.refresh_funding": "cash"},
    {"private.refresh_funding": "cash", "eib.share_of_cost": 0.0},
    {"eib.repayment": "annuity", "eib.grace_years": 4},
])
def test_cash_is_conserved_through_the_waterfall(base, updates):
    sc = base.with_updates(updates) if updates else base
    _, _, m = paths_run(sc)
    gap = _cash_identity(sc, m)
    assert np.nanmax(np.abs(gap)) < 1e-6
    assert np.isfinite(gap).mean() > 0.3  # most periods are checked


def test_sources_equal_uses_at_construction(base):
    sc = base.with_updates({"private.commercial_debt_share": 0.1})
    _, _, m = paths_run(sc)
    fin = m.financing
    n_t = sc.timeline.horizon_years
    before = np.arange(n_t) < fin.first_repayment[..., None]
    dsra0 = np.take_along_axis(fin["dsra_balance"], (fin.first_repayment - 1)[..., None], -1)[..., 0]
    cfads_before = np.where(before, fin["cfads"] - fin["distributions"], 0.0).sum(-1)
    uses = (np.where(before, fin["construction_uses"] + fin["fees"] + fin["senior_idc"], 0.0).sum(-1)
            + dsra0 - cfads_before)
    sources = np.where(before, fin["eib_draw"] + fin["commercial_draw"] + fin["senior_idc"]
                       + fin["fund_draw"] + fin["equity_contribution"], 0.0).sum(-1)
    np.testing.assert_allclose(sources, uses, rtol=1e-12, atol=1e-6)
    # the EIB never lends more than its commitment, the fund never more than its allocation
    terms = m.terms
    assert np.all(fin["eib_draw"].sum(-1) <= terms.eib_eur_m * (1 + 1e-12))
    assert np.all(fin["fund_draw"].sum(-1) <= terms.fund_eur_m * (1 + 1e-12))
    assert np.all(fin.private_equity_at_close >= -1e-9)


def test_a_run_keeping_few_items_has_the_same_numbers(base):
    """What a Monte Carlo chunk keeps (``kpis.LINES_READ``) equals the full run's items, and the
    draw totals the kernel adds up equal the sums of the full run's draw schedules."""
    sc = base.with_updates({"private.commercial_debt_share": 0.1, "fund.instrument": "sub_loan"})
    terms, d, full = paths_run(sc)
    few = run(sc, d, terms, keep=set(LINES_READ)).financing
    assert set(few.items) == set(LINES_READ)
    for name in LINES_READ:
        np.testing.assert_array_equal(few[name], full.financing[name])
    for name in ("eib_draw", "commercial_draw", "fund_draw"):
        assert full.financing[name].sum() > 0
        np.testing.assert_allclose(few.total(name), full.financing[name].sum(-1), rtol=1e-13)
    np.testing.assert_array_equal(few.first_repayment, full.financing.first_repayment)


def test_debt_is_repaid_or_the_default_and_loss_are_recorded():
    sc = finmodel.load_scenario("gpu_price_collapse").with_updates(PLAIN)
    _, d, m = paths_run(sc, n=800)
    fin = m.financing
    assert 0.05 < fin.default.mean() < 1.0
    rate = np.broadcast_to(d.base_rate + d.eib_margin, fin.default.shape)
    repaid = ~fin.default
    drawn = fin["eib_draw"].sum(-1)
    capitalised = fin["senior_idc"].sum(-1)  # EIB only: no commercial debt
    np.testing.assert_allclose(fin["eib_principal"].sum(-1)[repaid], (drawn + capitalised)[repaid],
                               rtol=1e-10)
    assert np.all(fin.eib_loss[repaid] == 0)
    p, f = np.nonzero(fin.default)
    t = fin.default_period[p, f].astype(int)
    owed = fin["eib_balance"][p, f, t - 1] * (1 + rate[p, f])
    recovered = fin["senior_recovery"][p, f, t]
    np.testing.assert_allclose(recovered + fin.eib_loss[p, f], owed, rtol=1e-10)
    assert np.all(fin.eib_loss >= 0) and np.all(recovered >= 0)
    # after default nothing more is paid to anyone
    after = np.arange(sc.timeline.horizon_years)[None, :] > t[:, None]
    for item in ("eib_principal", "eib_interest", "distributions", "equity_contribution"):
        assert np.all(fin[item][p, f][after] == 0), item


def test_layered_fund_waterfall_by_hand():
    sc = finmodel.load_scenario("base").with_updates({
        "tranches": [
            {"name": "senior", "share": 0.5, "target_return": 0.10, "priority": 1, "public": False},
            {"name": "first loss", "share": 0.5, "target_return": 0.0, "priority": 2},
        ]})
    flows = np.array([[-100.0, 0.0, 50.0, 80.0], [-100.0, 0.0, 30.0, 0.0]])
    tr = tranche_waterfall(sc, flows)
    # path 0: the senior claim grows 50 -> 55 -> 60.5, gets 50, then 10.5 * 1.1 = 11.55
    np.testing.assert_allclose(tr.flows[0, 0], [-50, 0, 50, 11.55])
    np.testing.assert_allclose(tr.flows[0, 1], [-50, 0, 0, 68.45])
    assert finmodel.irr(tr.flows[0, 0]) == pytest.approx(0.10, abs=1e-12)
    # path 1: the senior tranche takes all 30; the first loss loses everything
    np.testing.assert_allclose(tr.received[1], [30.0, 0.0])
    np.testing.assert_allclose(tr.loss[1], [20.0, 50.0])
    np.testing.assert_allclose(tr.contributed.sum(1), 100.0)
    np.testing.assert_allclose(tr.received.sum(1), np.maximum(flows, 0).sum(1))
    # listed first loss first: priority, not the order of the list, ranks the claims
    listed = sc.with_updates({"tranches": [sc.tranches[1].model_dump(), sc.tranches[0].model_dump()]})
    swapped = tranche_waterfall(listed, flows)
    np.testing.assert_array_equal(swapped.flows, tr.flows[:, ::-1])
    np.testing.assert_array_equal(swapped.loss, tr.loss[:, ::-1])


def test_fund_allocation_rules(base):
    cost = np.array([7000.0, 7000.0, 7000.0, 7000.0, 1800.0, 1800.0, 1800.0])
    np.testing.assert_allclose(allocate_fund(base, cost), [2000.0] * 4 + [630.0] * 3)
    equal = allocate_fund(base.with_updates({"fund.allocation": "equal"}), cost)
    np.testing.assert_allclose(equal, [2000.0] * 4 + [630.0] * 3)  # 20000 / 7 capped per site
    small = base.with_updates({"fund.allocation": "pro_rata_capex", "fund.size_eur_m": 5000.0})
    np.testing.assert_allclose(allocate_fund(small, cost), 5000.0 * cost / cost.sum())
    short = finmodel.load_scenario("funding_shortfall")
    np.testing.assert_allclose(allocate_fund(short, cost), [2000.0] * 4 + [200.0, 0.0, 0.0])


def test_explicit_allocation_above_the_public_share_is_a_clear_error(base):
    amounts = {f"factories[{i}].fund_eur_m": 500.0 for i in range(base.n_factories)}
    sc = base.with_updates({"fund.allocation": "explicit", **amounts,
                            "factories[4].fund_eur_m": 900.0})
    with pytest.raises(finmodel.ScenarioError) as err:
        close_deal(sc)
    assert "factories[4].fund_eur_m" in str(err.value) and "public_share_of_capex_max" in str(err.value)


def test_a_tenor_shorter_than_construction_is_a_clear_error(base):
    sc = base.with_updates({"eib.tenor_years": 2})
    with pytest.raises(finmodel.ScenarioError, match=r"eib\.tenor_years"):
        close_deal(sc)


def test_simulation_results_carry_the_financing_kpis(base):
    res = finmodel.simulate(base, paths=256, seed=1)
    summary = res.summary()
    assert 0 <= summary.loc["any_default", "mean"] <= 1
    pd_by_factory = res.factory_kpis.groupby("factory", observed=True)["default"].mean()
    assert summary.loc["any_default", "mean"] >= pd_by_factory.max()
    risk = res.risk()
    el = risk.loc["eib_loss_eur_m"]
    assert el["expected"] <= el["cvar_0.95"] and el["var_0.95"] <= el["var_0.99"] <= el["cvar_0.99"]
    grant_total = res.path_kpis["fund_invested_eur_m"]
    np.testing.assert_allclose(res.path_kpis["fund_loss_eur_m"], grant_total)  # grants come back never


def test_llcr_and_plcr_count_all_senior_debt_sharing_the_cfads(base):
    """By hand, period by period: PV of CFADS over the loan life (the project life) over the
    senior balance at r0 plus the PV of the pari passu hardware loans' service (and, for the
    LLCR, the hardware balance left when the senior loans end)."""
    res = finmodel.base_case(base)
    _, d, m = central_run(base)
    fin = m.financing
    rate = float((d.base_rate + d.eib_margin)[0, 0])
    n_t = base.timeline.horizon_years
    for f in range(base.n_factories):
        r0 = int(fin.first_repayment[0, f])
        balance = fin["eib_balance"][0, f] + fin["commercial_balance"][0, f]
        last = int(np.flatnonzero(balance > 1e-9)[-1]) + 1  # the loan's final repayment period
        hw = fin["hardware_interest"][0, f] + fin["hardware_principal"][0, f]
        assert hw[r0:last + 1].sum() > 100.0  # the hardware loans are there to be counted
        pv = lambda x, a, b, r0=r0: sum(x[t] / (1 + rate) ** (t - r0 + 1) for t in range(a, b + 1))  # noqa: E731
        debt = (balance[r0 - 1] + pv(hw, r0, last)
                + fin["hardware_balance"][0, f, last] / (1 + rate) ** (last - r0 + 1))
        kpis = res.factory_kpis.loc[f]
        assert kpis["llcr"] == pytest.approx(pv(fin["cfads"][0, f], r0, last) / debt, rel=1e-10)
        assert kpis["llcr"] < pv(fin["cfads"][0, f], r0, last) / balance[r0 - 1]  # less than without
        plcr = pv(fin["cfads"][0, f], r0, n_t - 1) / (balance[r0 - 1] + pv(hw, r0, n_t - 1))
        assert kpis["plcr"] == pytest.approx(plcr, rel=1e-10)


def test_eu_part_of_public_money_is_served_from_the_eu_grant_in_order_of_close(base):
    from finmodel.portfolio import eu_part

    cost = np.array([7000.0, 7000.0, 7000.0, 7000.0, 1800.0, 1800.0, 1800.0])
    fund = np.array([2000.0] * 4 + [630.0] * 3)
    # 17 % of cost: 1,190 per gigafactory, 306 per AI factory; EUR 4,100m runs out at the fourth
    np.testing.assert_allclose(eu_part(base, cost, fund), [1190.0, 1190.0, 1190.0, 530.0, 0, 0, 0])
    res = finmodel.base_case(base)
    kpis = res.path_kpis.iloc[0]
    assert kpis["eu_eur_m"] == pytest.approx(base.fund.eu_grant_total_eur_m)
    assert kpis["eu_eur_m"] + kpis["host_state_eur_m"] == pytest.approx(kpis["fund_invested_eur_m"])


# -- credit events on a hand-built path ---------------------------------------------------------


STANDSTILL = {"eib.equity_cures_max": 0, "eib.cash_sweep_share": 0.0, "eib.cash_sweep_share_repeat": 0.0}


@pytest.fixture(scope="module")
def no_tax_base(base):
    """Base case without corporate tax at the first site, so that its CFADS is EBITDA + resale -
    lifecycle reserve contribution and a year's CFADS can be set by hand; no equity cure and no
    cash sweep (a standstill), so that each credit event shows alone (the remedies have their
    own tests)."""
    sc = base.with_updates({"factories[0].tax_rate": 0.0, **STANDSTILL})
    terms, d, m = central_run(sc)
    return sc, terms, d, m


def _with_cfads(sc, terms, d, m, cfads_by_period):
    """Finance the base case again with factory 0's CFADS set in the given periods."""
    from dataclasses import replace

    from finmodel.financing import finance

    op = m.operations
    ebitda = op["ebitda"].copy()
    for t, cfads in cfads_by_period.items():
        ebitda[0, 0, t] = (cfads - op["resale_proceeds"][0, 0, t]
                           + op["plant_reserve_contribution"][0, 0, t])
    items = {name: op[name] for name in op.items}
    items["ebitda"] = ebitda
    return finance(sc, d, replace(op, items=items), terms)


def _events(fin):
    return (bool(fin.default[0, 0]), bool(fin.payment_default[0, 0]), int(fin.breach_periods[0, 0]),
            bool(fin.eib_default[0, 0]))


def test_a_breach_cured_the_next_year_is_no_default(no_tax_base):
    sc, terms, d, m = no_tax_base
    assert sc.eib.breaches_to_acceleration == 2 and sc.eib.default_trigger == "dscr_or_payment"
    service = m.financing["senior_debt_service"][0, 0]
    r0 = int(m.financing.first_repayment[0, 0])
    t = r0 + 2
    # DSCR 1.00: below the default DSCR 1.05, yet cash pays the service: a breach, nothing more
    fin = _with_cfads(sc, terms, d, m, {t: 1.00 * service[t]})
    assert _events(fin) == (False, False, 1, False)
    assert fin.first_breach_period[0, 0] == t
    # the lock-up holds back what is left: here only the reserve released as service falls
    assert fin["distributions"][0, 0, t] == 0.0
    released = fin["dsra_balance"][0, 0, t - 1] - fin["dsra_balance"][0, 0, t]
    assert fin["trapped_cash"][0, 0, t] == pytest.approx(max(released, 0.0), abs=1e-9)
    assert fin["eib_balance"][0, 0, -1] == pytest.approx(0.0, abs=1e-6)  # repaid in full


def test_breaches_in_a_row_accelerate_after_the_scenario_s_count(no_tax_base):
    sc, terms, d, m = no_tax_base
    service = m.financing["senior_debt_service"][0, 0]
    t = int(m.financing.first_repayment[0, 0]) + 2
    hit = {t: 1.00 * service[t], t + 1: 1.01 * service[t + 1]}
    fin = _with_cfads(sc, terms, d, m, hit)
    assert _events(fin) == (True, False, 2, True)  # the second breach in a row accelerates
    assert fin.default_period[0, 0] == t + 1
    # with three breaches needed, two in a row are a standstill: cash trapped, no acceleration
    fin3 = _with_cfads(sc.with_updates({"eib.breaches_to_acceleration": 3}), terms, d, m, hit)
    assert _events(fin3) == (False, False, 2, False)
    # with the old rule (the first breach accelerates) the first year already defaults
    fin1 = _with_cfads(sc.with_updates({"eib.breaches_to_acceleration": 1}), terms, d, m, hit)
    assert _events(fin1) == (True, False, 1, True) and fin1.default_period[0, 0] == t
    # a breach, a passing test, a breach: the run restarts, no acceleration
    apart = {t: 1.00 * service[t], t + 2: 1.00 * service[t + 2]}
    assert _events(_with_cfads(sc, terms, d, m, apart)) == (False, False, 2, False)


def test_a_payment_default_accelerates_at_once(no_tax_base):
    sc, terms, d, m = no_tax_base
    fin0 = m.financing
    t = int(fin0.first_repayment[0, 0]) + 2
    # cash, trapped cash and the reserve cannot pay: CFADS short of service by more than the DSRA
    shortfall = fin0["senior_debt_service"][0, 0, t] - fin0["dsra_balance"][0, 0, t - 1] - 1.0
    fin = _with_cfads(sc, terms, d, m, {t: shortfall})
    assert _events(fin) == (True, True, 1, True) and fin.default_period[0, 0] == t


def test_a_default_after_the_eib_is_repaid_is_no_eib_default_and_no_eib_loss(no_tax_base):
    sc, terms, d, m = no_tax_base
    fin0 = m.financing
    eib_open = fin0["eib_balance"][0, 0]  # at the end of t - 1: owed during t
    hw_due = fin0["hardware_interest"][0, 0] + fin0["hardware_principal"][0, 0]
    late = [t for t in range(int(fin0.first_repayment[0, 0]) + 1, sc.timeline.horizon_years - 1)
            if eib_open[t - 1] < 1e-9 and hw_due[t] > 1.0]
    assert late, "the base case has hardware service after the EIB loan is repaid"
    t = late[0]
    fin = _with_cfads(sc, terms, d, m, {t: -5_000.0})
    assert fin.default[0, 0] and fin.payment_default[0, 0] and fin.default_period[0, 0] == t
    assert not fin.eib_default[0, 0] and fin.eib_loss[0, 0] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name", finmodel.list_scenarios())
def test_event_probabilities_are_nested(name):
    """P(EIB loss) <= P(default while owing the EIB) <= P(default) <= P(payment default or
    breach), per factory, on every preset."""
    res = finmodel.simulate(finmodel.load_scenario(name), paths=400, seed=5)
    k = res.factory_kpis
    either = ((k["payment_default"] > 0) | (k["covenant_breach"] > 0)).astype(float)
    g = k.assign(either=either).groupby("factory", observed=True)[
        ["eib_loss", "eib_default", "default", "payment_default", "either"]].mean()
    assert (g["eib_loss"] <= g["eib_default"]).all()
    assert (g["eib_default"] <= g["default"]).all()
    assert (g["payment_default"] <= g["default"]).all()
    assert (g["default"] <= g["either"]).all()
    # each flag row by row, not only on average
    assert (k["eib_loss"] <= k["eib_default"]).all() and (k["default"] <= either).all()
    assert ((k["eib_loss_eur_m"] > 1e-6) == (k["eib_loss"] > 0)).all()


def test_a_cash_refresh_with_no_debt_never_defaults(base):
    """Nothing due, nothing to default on: the maintenance reserve pays a refresh, equity what
    it lacks."""
    sc = base.with_updates({"private.refresh_funding": "cash", "eib.share_of_cost": 0.0})
    _, d, m = paths_run(sc)
    fin, op = m.financing, m.operations
    assert m.terms.eib_eur_m.sum() == 0.0 and np.abs(fin["debt_balance"]).max() == 0.0
    assert not fin.default.any() and not fin.payment_default.any() and fin.breach_periods.max() == 0
    refresh = op["capex_gpu_refresh"]
    reserve = fin["maintenance_reserve"]
    before = np.concatenate([np.zeros((*reserve.shape[:-1], 1)), reserve[..., :-1]], -1)
    paid_by_reserve = np.minimum(before, refresh)
    assert paid_by_reserve.sum() > 0.5 * refresh.sum()  # the reserve pays most of it
    operating = np.arange(sc.timeline.horizon_years) >= fin.first_repayment[..., None]
    # equity pays what the reserve lacks in the refresh year, and an operating loss that year
    # (nothing is due: equity funds it)
    not_last = np.arange(sc.timeline.horizon_years) < sc.timeline.horizon_years - 1
    refreshing = operating & (refresh > 0) & not_last
    want = refresh - paid_by_reserve + np.maximum(-fin["cfads"], 0.0)
    np.testing.assert_allclose(fin["equity_contribution"][refreshing], want[refreshing],
                               rtol=1e-9, atol=1e-9)
    # the reserve builds towards the fleet's own cost over its life, and never exceeds it
    life = np.rint(np.broadcast_to(d.gpu_life_years, fin.first_repayment.shape))
    assert np.all(reserve <= op["capex_gpu_initial"].sum(-1, keepdims=True)
                  + refresh.max(-1, keepdims=True) + 1e-6)
    assert life.min() >= 4


def test_public_and_private_money_are_counted_by_who_owns_it():
    """In the layered fund the senior private tranche is private money: it counts in the
    numerator of private-per-public, not in its denominator, and its flows are no public cost."""
    from finmodel.kpis import path_kpis

    sc = finmodel.load_scenario("layered_fund")
    _, _, m = central_run(sc)
    k = path_kpis(sc, m, np.array([0])).iloc[0]
    tr, fin = m.tranches, m.financing
    public = np.array([t.public for t in sc.tranches])
    assert public.tolist() == [False, True, True]
    private_tranche = tr.contributed[0, ~public].sum()
    public_money = tr.contributed[0, public].sum()
    assert public_money == pytest.approx(0.5 * fin.total("fund_draw")[0].sum(), rel=1e-12)
    private_capital = fin.private_equity_at_close[0].sum() + fin.total("commercial_draw")[0].sum()
    assert k["private_per_public"] == pytest.approx((private_capital + private_tranche) / public_money,
                                                    rel=1e-12)
    # public cost: PV of the public-access payments less the public tranches' flows
    rate = sc.macro.public_discount_rate
    net = m.operations["revenue_public_fund"][0].sum(0) - tr.flows[0, public].sum(0)
    assert k["public_cost_eur_m"] == pytest.approx(npf.npv(rate, net), rel=1e-10)
    # with one public tranche the same formulas count the whole fund as public
    base_sc = finmodel.load_scenario("base")
    _, _, mb = central_run(base_sc)
    kb = path_kpis(base_sc, mb, np.array([0])).iloc[0]
    fund_in = mb.financing.total("fund_draw")[0].sum()
    private_b = mb.financing.private_equity_at_close[0].sum() + mb.financing.total("commercial_draw")[0].sum()
    assert kb["private_per_public"] == pytest.approx(private_b / fund_in, rel=1e-12)
    net_b = mb.operations["revenue_public_fund"][0].sum(0) - mb.financing["fund_flow"][0].sum(0)
    assert kb["public_cost_eur_m"] == pytest.approx(npf.npv(rate, net_b), rel=1e-10)


STRESSES = ("gpu_price_collapse", "energy_shock", "chip_squeeze", "grid_delay")


@pytest.mark.parametrize("name", STRESSES)
def test_stress_presets_close_on_base_s_terms_exactly(name):
    from dataclasses import fields

    stress = finmodel.load_scenario(name)
    assert stress.close_on == "base"
    got, want = close_deal(stress), close_deal(finmodel.load_scenario("base"))
    assert got.sized_on == want.sized_on == "base"
    for field in fields(want):
        a, b = getattr(got, field.name), getattr(want, field.name)
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=field.name)
        else:
            assert a == b, field.name
    # the deal's own terms still apply: a lower EIB share on the stress sizes as base would
    lower = {"eib.share_of_cost": 0.2}
    np.testing.assert_array_equal(close_deal(stress.with_updates(lower)).eib_eur_m,
                                  close_deal(finmodel.load_scenario("base").with_updates(lower)).eib_eur_m)


def test_close_on_errors_name_the_field(capsys, tmp_path):
    from finmodel.cli import main

    bad = r"close_on = 'bsae': not a shipped preset \(did you mean 'base'\?\)"
    with pytest.raises(finmodel.ScenarioError, match=bad):
        finmodel.load_scenario("base").with_updates({"close_on": "bsae"})
    four = finmodel.load_scenario("four_gigafactories").with_updates({"close_on": "base"})
    with pytest.raises(finmodel.ScenarioError, match="has other factories"):
        close_deal(four)
    chained = finmodel.load_scenario("base").with_updates({"close_on": "grid_delay"})
    with pytest.raises(finmodel.ScenarioError, match="itself closes on 'base'"):
        close_deal(chained)
    path = tmp_path / "four.toml"
    path.write_text('extends = "four_gigafactories"\nclose_on = "base"\n', encoding="utf-8")
    assert main(["base", str(path)]) == 2
    assert "close_on" in capsys.readouterr().err


def test_gpu_hour_price_shock_starts_when_the_scenario_says():
    from finmodel.drivers import gpu_hour_price_shock_path

    got = gpu_hour_price_shock_path(np.array([0.6]), 2.0, 6, start_years=2.0)
    np.testing.assert_allclose(got[0], [1.0, 1.0, 0.7, 0.4, 0.4, 0.4])
    np.testing.assert_allclose(gpu_hour_price_shock_path(np.array([0.6]), 2.0, 3)[0], [0.7, 0.4, 0.4])
    collapse = finmodel.load_scenario("gpu_price_collapse")
    d = central_drivers(collapse)
    cod = run(collapse, d, close_deal(collapse)).operations.cod_years
    assert cod.min() == pytest.approx(2.0)  # the fall starts with the first sites' operation
    np.testing.assert_allclose(d.gpu_hour_price_factor[0, 0, :5], [1.0, 1.0, 0.7, 0.4, 0.4])


def test_a_stress_sized_on_base_falls_below_the_target_in_its_own_base_case():
    """Closing on base's terms, the GPU-hour collapse hits after close: its central path no
    longer meets the DSCR the deal was sized to (on its own base case it would, by construction)."""
    sc = finmodel.load_scenario("gpu_price_collapse")
    _, _, m = central_run(sc)
    assert np.nanmin(m.financing["dscr"]) < sc.eib.target_dscr
    _, _, own = central_run(sc.with_updates({"close_on": None}))
    assert np.nanmin(own.financing["dscr"][..., :8]) >= sc.eib.target_dscr * (1 - 1e-9)


def test_senior_loans_mature_at_close_plus_tenor_on_every_path(base):
    """A site whose first repayment comes later than on the base case (grid or chip delay)
    repays over the years left: the loan is repaid by close + tenor whatever the delay."""
    _, d, m = paths_run(base, n=800)
    fin = m.financing
    close = np.broadcast_to(d.close_year, fin.first_repayment.shape).astype(int)
    maturity = close + base.eib.tenor_years  # the first period after the last repayment
    _, _, mb = central_run(base)
    later = fin.first_repayment > mb.financing.first_repayment  # delayed against the base case
    assert later.sum() > 50
    paid = ~fin.default
    for p, f in zip(*np.nonzero(paid & later), strict=True):
        assert fin["eib_balance"][p, f, maturity[p, f] - 1] == pytest.approx(0.0, abs=1e-6)
        assert fin["eib_principal"][p, f, maturity[p, f]:].sum() == pytest.approx(0.0, abs=1e-9)
    # a linear loan repays in equal parts over the years left (no sweep prepays it)
    lin = base.with_updates({**PLAIN, **STANDSTILL, "eib.repayment": "linear"})
    _, dl, ml = paths_run(lin, n=400)
    fl = ml.financing
    cl = np.broadcast_to(dl.close_year, fl.first_repayment.shape).astype(int)
    p, f = next(zip(*np.nonzero(~fl.default & (fl.first_repayment - cl > 3)), strict=False))
    r0, n = int(fl.first_repayment[p, f]), int(cl[p, f] + lin.eib.tenor_years - fl.first_repayment[p, f])
    np.testing.assert_allclose(fl["eib_principal"][p, f, r0:r0 + n], fl.eib_exposure[p, f] / n, rtol=1e-10)


def test_senior_loans_are_drawn_only_in_their_availability_period(base):
    terms, d, m = paths_run(base, n=800)
    fin = m.financing
    n_t = base.timeline.horizon_years
    close = np.broadcast_to(d.close_year, fin.first_repayment.shape)[..., None]
    late = np.arange(n_t) - close >= base.eib.availability_years
    uses = fin["construction_uses"]
    assert (np.where(late, uses, 0.0).sum(-1) > 0).sum() > 50  # late construction exists
    assert np.abs(np.where(late, fin["eib_draw"] + fin["commercial_draw"], 0.0)).max() == 0.0
    # what is not drawn is cancelled: the EIB lends less than its commitment where uses came late
    late_site = np.where(late, uses, 0.0).sum(-1) > 1.0
    assert np.all(fin.total("eib_draw")[late_site] < terms.eib_eur_m[np.nonzero(late_site)[1]] - 1.0)
    with pytest.raises(finmodel.ScenarioError, match="availability period must fit the horizon"):
        base.with_updates({"eib.availability_years": 40})


def _reference_tax(sc, m, d):
    """Tax recomputed from the line items, period by period, as the rules say: borrowing costs
    (interest paid in operation, the IDC depreciated with the facility from r0, interest carried
    forward) deductible up to the limit, tax losses carried forward."""
    fin, op = m.financing, m.operations
    tax = np.zeros_like(fin["tax_levered"])
    life = sc.costs.facility_life_years
    limit = sc.tax
    for p, f in np.ndindex(*fin.first_repayment.shape):
        r0, idc = int(fin.first_repayment[p, f]), fin["senior_idc"][p, f].sum()
        pool = carried = 0.0
        rate = float(np.broadcast_to(d.tax_rate, fin.first_repayment.shape)[p, f])
        for t in range(sc.timeline.horizon_years):
            borrowing = (fin["eib_interest"][p, f, t] + fin["commercial_interest"][p, f, t]
                         + fin["hardware_interest"][p, f, t] + carried
                         + (idc / life if r0 <= t < r0 + life else 0.0))
            deduct = borrowing
            if limit.interest_limitation:
                cap = max(limit.interest_limit_share_of_ebitda * max(op["ebitda"][p, f, t], 0.0),
                          limit.interest_safe_harbour_eur_m)
                deduct = min(borrowing, cap)
            carried = borrowing - deduct
            income = op["taxable_income"][p, f, t] - deduct
            used = min(pool, max(income, 0.0))
            tax[p, f, t] = rate * (max(income, 0.0) - used)
            pool += max(-income, 0.0) - used
    return tax


@pytest.mark.parametrize("updates", [
    {"tax.interest_limitation": False},
    {"tax.interest_limit_share_of_ebitda": 0.05, "tax.interest_safe_harbour_eur_m": 0.0},
])
def test_tax_deducts_the_depreciated_idc_and_applies_the_interest_limitation(base, updates):
    sc = base.with_updates(updates)
    _, d, m = paths_run(sc, n=60)
    fin = m.financing
    want = _reference_tax(sc, m, d)
    alive = np.arange(sc.timeline.horizon_years) < np.where(fin.default, fin.default_period,
                                                             sc.timeline.horizon_years)[..., None]
    np.testing.assert_allclose(fin["tax_levered"][alive], want[alive], rtol=1e-9, atol=1e-9)
    assert fin["senior_idc"].sum() > 1000.0  # there is IDC to depreciate
    if sc.tax.interest_limitation:  # the low cap binds: less is deducted, more tax is paid
        _, _, free = paths_run(sc.with_updates({"tax.interest_limitation": False}), n=60)
        assert fin["tax_levered"].sum() > free.financing["tax_levered"].sum() + 100.0


def test_lgd_and_time_to_default(base):
    from finmodel.kpis import factory_kpis, path_kpis

    _, d, m = paths_run(base, n=400)
    fin = m.financing
    ids = np.arange(400)
    fk = factory_kpis(base, m, ids, d.base_rate + d.eib_margin)
    pk = path_kpis(base, m, ids)
    lgd = fk["eib_lgd"].to_numpy().reshape(fin.default.shape)
    assert np.array_equal(np.isnan(lgd), ~fin.eib_default) and fin.eib_default.sum() > 20
    hit = fin.eib_default
    np.testing.assert_allclose(lgd[hit] * fin.eib_owed_at_default[hit], fin.eib_loss[hit], rtol=1e-12)
    assert np.all((lgd[hit] >= 0) & (lgd[hit] <= 1))
    # the portfolio's LGD is a ratio of sums, not a mean of the sites' LGDs
    owed = np.where(hit, fin.eib_owed_at_default, 0.0).sum(1)
    any_hit = hit.any(1)
    np.testing.assert_allclose(pk["eib_lgd"].to_numpy()[any_hit],
                               fin.eib_loss.sum(1)[any_hit] / owed[any_hit], rtol=1e-12)
    years = fk["years_to_default"].to_numpy().reshape(fin.default.shape)
    np.testing.assert_array_equal(years[fin.default], (fin.default_period - fin.first_repayment)[fin.default])
    assert np.isnan(years[~fin.default]).all()


@pytest.fixture(scope="module")
def with_remedies(no_tax_base):
    """The same hand-built base case with base's remedies (2 equity cures, 50% / 100% sweep)
    and refreshes paid by equity, so that the senior service is the EIB's schedule alone (a
    hardware loan sized at a refresh would see the hand-set years)."""
    sc, _, _, _ = no_tax_base
    sc = sc.with_updates({"eib.equity_cures_max": 2, "eib.cash_sweep_share": 0.5,
                          "eib.cash_sweep_share_repeat": 1.0, "private.refresh_funding": "equity"})
    terms, d, m = central_run(sc)
    return sc, terms, d, m


def test_equity_cures_never_two_tests_in_a_row_and_at_most_the_allowed_count(with_remedies):
    sc, terms, d, m = with_remedies
    service = m.financing["senior_debt_service"][0, 0]
    t = int(m.financing.first_repayment[0, 0]) + 2
    hit = {t + k: 1.00 * service[t + k] for k in range(5)}  # five breaches in a row
    fin = _with_cfads(sc, terms, d, m, hit)
    # t cured, t+1 not (no cure twice in a row: one breach in a row), t+2 cured (the second and
    # last cure), t+3 and t+4 uncured: the second breach in a row accelerates at t+4
    assert fin.equity_cures[0, 0] == 2 and fin.default[0, 0] and not fin.payment_default[0, 0]
    assert fin.default_period[0, 0] == t + 4 and fin.breach_periods[0, 0] == 5
    # equity paid in besides the refreshes (paid by equity here)
    contributed = fin["equity_contribution"][0, 0] - m.operations["capex_gpu_refresh"][0, 0]
    for k, cured in ((0, True), (1, False), (2, True), (3, False)):
        cure = sc.eib.default_dscr * fin["senior_debt_service"][0, 0, t + k] - hit[t + k]  # swept: less
        assert contributed[t + k] == pytest.approx(cure if cured else 0.0, abs=1e-9), k
    # an equity cure also meets a payment shortfall (the sponsors pay up to the default DSCR)
    short = service[t] - m.financing["dsra_balance"][0, 0, t - 1] - 1.0
    cured = _with_cfads(sc, terms, d, m, {t: short})
    assert not cured.default[0, 0] and cured.equity_cures[0, 0] == 1
    paid_in = cured["equity_contribution"][0, 0, t] - m.operations["capex_gpu_refresh"][0, 0, t]
    assert paid_in == pytest.approx(sc.eib.default_dscr * service[t] - short)


def test_a_cash_sweep_prepays_the_senior_loans_in_lock_up_years(with_remedies):
    sc, terms, d, m = with_remedies
    fin0 = m.financing
    service = fin0["senior_debt_service"][0, 0]
    t = int(fin0.first_repayment[0, 0]) + 2
    # DSCR 1.10: above the default DSCR, below the lock-up: two lock-up years in a row
    fin = _with_cfads(sc, terms, d, m, {t: 1.10 * service[t], t + 1: 1.10 * service[t + 1]})
    assert not fin.default[0, 0] and fin.breach_periods[0, 0] == 0
    extra = fin["eib_principal"][0, 0] - fin0["eib_principal"][0, 0]
    trapped = fin["trapped_cash"][0, 0]
    # year 1: half of what the lock-up traps prepays the EIB (the only senior lender), half stays
    assert extra[t] > 10.0 and trapped[t] == pytest.approx(extra[t], rel=1e-9)
    # year 2: everything trapped so far prepays the loan
    assert trapped[t + 1] == pytest.approx(0.0, abs=1e-9)
    assert extra[t + 1] >= trapped[t] * (1 - 1e-12)
    assert fin["distributions"][0, 0, t:t + 2].sum() == 0.0
    # the balance is lower by what was swept, and the loan ends no later
    np.testing.assert_allclose(fin0["eib_balance"][0, 0, t + 1] - fin["eib_balance"][0, 0, t + 1],
                               extra[t] + extra[t + 1], rtol=1e-9)
    assert np.flatnonzero(fin["eib_balance"][0, 0] > 1e-9)[-1] <= np.flatnonzero(
        fin0["eib_balance"][0, 0] > 1e-9)[-1]


def test_sizing_cases_put_each_input_at_its_mean_or_median(base):
    from scipy import stats

    from finmodel.drivers import sizing_drivers

    # the commercial spread is triangular(1.75%, 2.25%, 3.5%): mean (a + b + c) / 3 by hand,
    # median from scipy, central the mode
    spec = base.private.senior_spread
    tri = stats.triang((spec.mode - spec.low) / (spec.high - spec.low), spec.low, spec.high - spec.low)
    for case, want in (("mean", (spec.low + spec.mode + spec.high) / 3), ("p50", tri.median()),
                       ("central", spec.mode)):
        assert sizing_drivers(base, case).senior_spread[0, 0] == pytest.approx(want, rel=1e-6), case
    terms = {c: close_deal(base.with_updates({"eib.sizing_case": c})) for c in ("central", "mean", "p50")}
    assert terms["mean"].sizing_case == "mean" and terms["central"].sizing_case == "central"
    # right-skewed costs: the mean case costs more, so the 33% EIB share lends more
    assert terms["mean"].eib_eur_m.sum() > terms["p50"].eib_eur_m.sum() > terms["central"].eib_eur_m.sum()


def test_a_downside_case_sizes_the_debt_on_a_scaled_base_case(base):
    from finmodel.engine import _downside_scale

    sc = base.with_updates({**PLAIN, "eib.share_of_cost": 0.5, "eib.target_dscr": 3.0,
                            "eib.sizing_case": "downside", "eib.sizing_quantile": 0.1})
    terms, _, m = central_run(sc)
    assert set(terms.binding) == {"dscr"} and terms.sizing_case == "downside (quantile 0.1)"
    scale = _downside_scale(sc, m.operations)
    assert np.all((scale > 0.3) & (scale < 0.9))  # a P90 case is well below the base case
    fin = m.financing
    for f in range(sc.n_factories):  # sculpted: the scaled CFADS covers service at the target
        r0, n = int(fin.first_repayment[0, f]), int(terms.repayment_years[f])
        window = slice(r0, r0 + n)
        cover = fin["cfads"][0, f, window] * scale[f] / fin["senior_debt_service"][0, f, window]
        paying = fin["senior_debt_service"][0, f, window] > 1e-9
        np.testing.assert_allclose(cover[paying], sc.eib.target_dscr, rtol=1e-8)
    central = close_deal(sc.with_updates({"eib.sizing_case": "central"}))
    assert terms.eib_eur_m.sum() < 0.9 * central.eib_eur_m.sum()
    for q in (0.0, 1.0, 1.5):
        with pytest.raises(finmodel.ScenarioError, match=r"eib\.sizing_quantile"):
            sc.with_updates({"eib.sizing_quantile": q})


@pytest.mark.parametrize("to", ["pro_rata", "eib_first", "commercial_first"])
def test_the_cash_sweep_prepays_the_loan_the_scenario_names(base, to):
    sc = base.with_updates({**STANDSTILL, "private.commercial_debt_share": 0.1,
                            "eib.cash_sweep_share": 0.5, "eib.cash_sweep_to": to})
    _, _, m0 = paths_run(sc.with_updates({"eib.cash_sweep_share": 0.0}), n=300)
    fin0, fin = m0.financing, paths_run(sc, n=300)[2].financing
    extra_e = fin["eib_principal"] - fin0["eib_principal"]
    extra_c = fin["commercial_principal"] - fin0["commercial_principal"]
    swept = (extra_e + extra_c) > 1e-9
    # each row's first sweep: up to it the two runs are the same
    at = np.nonzero(swept.any(-1))
    at = (*at, np.argmax(swept, -1)[at])
    assert at[0].size > 10
    e, c = extra_e[at], extra_c[at]
    left_e, left_c = fin0["eib_balance"][at], fin0["commercial_balance"][at]  # after this year
    if to == "pro_rata":
        np.testing.assert_allclose(e * left_c, c * left_e, rtol=1e-9)
        assert np.all((e > 0) & (c > 0))
    elif to == "eib_first":  # the commercial loan only once the EIB loan is repaid
        assert np.all(e > 0) and np.all((c < 1e-9) | (np.abs(e - left_e) < 1e-6))
    else:
        assert np.all(c > 0) and np.all((e < 1e-9) | (np.abs(c - left_c) < 1e-6))
