"""Sampling: marginals, correlation, reproducibility, variance reduction, path statistics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

import finmodel
from finmodel.drivers import central_drivers, drivers_from_draws
from finmodel.sampling import (
    Quantiles,
    block_normals,
    make_design,
    marginal,
    path_noise,
    ppf,
    scalar_draws,
    slice_design,
)
from finmodel.scenario.distributions import Discrete, LogNormal, Pert, Triangular, TruncNormal, Uniform

SPECS = {
    "triangular": Triangular(low=1.0, mode=2.0, high=5.0),
    "pert": Pert(low=0.75, mode=0.85, high=0.95),
    "lognormal": LogNormal(low=50.0, high=100.0),
    "truncnormal": TruncNormal(mean=1.0, sd=0.5, low=0.1, high=2.0),
    "uniform": Uniform(low=3.0, high=5.0),
}


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("method", ["mc", "lhs"])
def test_marginals_match_their_specs_ks(name, method):
    spec = SPECS[name]
    sc = finmodel.load_scenario("base").with_updates({"energy.it_kw_per_gpu": spec.model_dump()})
    design = make_design(sc, 20_000, 1, method)
    x = scalar_draws(sc, design, 0, 20_000)["energy.it_kw_per_gpu"]
    assert stats.kstest(x, marginal(spec).cdf).pvalue > 0.001


def test_pert_and_lognormal_parameters_by_hand():
    # PERT(0, 0.5, 1) with lambda 4 is Beta(3, 3); lognormal p5/p95 hit their quantiles
    assert ppf(Pert(low=0, mode=0.5, high=1), np.array([0.3])) == pytest.approx(
        stats.beta(3, 3).ppf(0.3))
    ln = LogNormal(low=50.0, high=100.0)
    np.testing.assert_allclose(ppf(ln, np.array([0.05, 0.5, 0.95])), [50, math.sqrt(5000), 100])


def test_discrete_draws_match_probabilities():
    spec = Discrete(values=[0, 1, 2, 3], probs=[0.7, 0.1, 0.1, 0.1])
    u = np.random.default_rng(0).random(200_000)
    x = ppf(spec, u)
    freq = [np.mean(x == v) for v in (0, 1, 2, 3)]
    np.testing.assert_allclose(freq, [0.7, 0.1, 0.1, 0.1], atol=0.005)


def test_quantiles_of_many_inputs_equal_each_inputs_own():
    """Quantiles evaluates each scipy family in one call with stacked parameters: every column
    must equal its own marginal's quantiles exactly, whatever the order of the inputs."""
    specs = (Triangular(low=1.0, mode=2.0, high=5.0), Pert(low=0.75, mode=0.85, high=0.95),
             Discrete(values=[0, 1, 2], probs=[0.5, 0.3, 0.2]), Triangular(low=-3.0, mode=0.0, high=1.0),
             LogNormal(low=50.0, high=100.0), Pert(low=10.0, mode=30.0, high=35.0),
             TruncNormal(mean=1.0, sd=0.5, low=0.1, high=2.0), Uniform(low=3.0, high=5.0),
             LogNormal(low=0.1, high=0.4), Triangular(low=0.0, mode=0.0, high=2.0))
    u = np.random.default_rng(3).random((500, len(specs)))
    values = Quantiles(specs)(u)
    assert values.shape == (len(specs), 500)
    for j, spec in enumerate(specs):
        np.testing.assert_array_equal(values[j], ppf(spec, u[:, j]))


@pytest.mark.parametrize("method", ["mc", "lhs", "sobol"])
def test_rank_correlations_hit_targets(method):
    sc = finmodel.load_scenario("base")
    paths = 131_072 if method == "sobol" else 100_000
    design = make_design(sc, paths, 3, method)
    draws = scalar_draws(sc, design, 0, paths)
    names = sc.correlation.inputs
    achieved = stats.spearmanr(np.column_stack([draws[n] for n in names])).statistic
    np.testing.assert_allclose(achieved, np.asarray(sc.correlation.matrix), atol=0.02)


def test_lhs_and_sobol_beat_mc_on_a_known_mean():
    """Variance of the estimated mean of sum(x_i^2) over 40 replications of 512 paths."""
    sc = finmodel.load_scenario("base").with_updates({"correlation.inputs": [],
                                                      "correlation.matrix": []})
    estimates = {m: [] for m in ("mc", "lhs", "sobol")}
    for rep in range(40):
        for m in estimates:
            draws = scalar_draws(sc, make_design(sc, 512, rep, m), 0, 512)
            u = draws["market.utilisation_steady"]
            p = draws["energy.pue"]
            estimates[m].append(np.mean(u**2 + p**2))
    var = {m: np.var(v) for m, v in estimates.items()}
    assert var["lhs"] < 0.5 * var["mc"]
    assert var["sobol"] < 0.5 * var["mc"]


def test_sobol_warns_for_non_power_of_two():
    sc = finmodel.load_scenario("base")
    with pytest.warns(UserWarning, match="not a power of two"):
        make_design(sc, 1000, 0, "sobol")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_design(sc, 1024, 0, "sobol")


def test_streams_are_named_and_block_invariant():
    a = block_normals(5, "noise:x", 0, 3000, (2,))
    b = np.concatenate([block_normals(5, "noise:x", s, min(s + 700, 3000), (2,))
                        for s in range(0, 3000, 700)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, block_normals(5, "noise:y", 0, 3000, (2,)))
    # adding an input does not change another input's MC draws
    sc = finmodel.load_scenario("base")
    more = sc.with_updates({"energy.power_price_volatility": 0.3,
                            "market.system_cost_share_of_gpu_price": {
                                "dist": "triangular", "low": 0.1, "mode": 0.19, "high": 0.3}})
    d1 = scalar_draws(sc, make_design(sc, 100, 1, "mc"), 0, 100)
    d2 = scalar_draws(more, make_design(more, 100, 1, "mc"), 0, 100)
    np.testing.assert_array_equal(d1["costs.build_months"], d2["costs.build_months"])


def test_design_slices_give_the_same_rows():
    sc = finmodel.load_scenario("base")
    design = make_design(sc, 5000, 2, "lhs")
    whole = scalar_draws(sc, design, 1200, 2600)
    part = scalar_draws(sc, slice_design(design, 1200, 2600), 1200, 2600)
    for name in whole:
        np.testing.assert_array_equal(whole[name], part[name])


def test_site_time_paths_match_closed_forms():
    """The drivers' time paths of each site against the closed forms of their processes.

    Power: log p_t = log mean_t + x_t, x an Ornstein-Uhlenbeck deviation from x_0 = 0 (no
    jumps here): mean of log p_t = log level + (log start - log level) e^(-kt), variance
    s^2 (1 - e^(-2kt)) / (2k). GPU-hour price factor: log(factor / trend) = v W_t, a random
    walk from 0: variance v^2 t (the mean-reverting case: next test). Utilisation: logit u_t -
    logit level is the stationary OU with half-life one year: variance s^2 / (2k), lag-1
    autocorrelation e^(-k) = 1/2.
    """
    sc = finmodel.load_scenario("base").with_updates({
        "energy.power_price_volatility": 0.5, "energy.power_price_half_life_years": 3.0,
        "energy.power_price_jump_probability": 0.0, "energy.power_price_start_eur_mwh": 250.0,
        "market.gpu_hour_price_volatility": 0.2, "market.utilisation_volatility": 0.6,
        "market.gpu_hour_price_half_life_years": None})
    n, t = 40_000, 6
    d = drivers_from_draws(sc, {}, n, path_noise(sc, 11, 0, n))
    central = central_drivers(sc)
    level = sc.energy.power_price_eur_mwh.central  # not drawn here: every path reverts to it
    kappa = math.log(2) / 3.0
    log_p = np.log(d.power_price_eur_mwh[:, :, t]).ravel()
    mean = math.log(level) + (math.log(250.0) - math.log(level)) * math.exp(-kappa * t)
    var = 0.5**2 * (1 - math.exp(-2 * kappa * t)) / (2 * kappa)
    assert log_p.mean() == pytest.approx(mean, abs=4 * math.sqrt(var / n))
    assert log_p.var() == pytest.approx(var, rel=0.03)

    walk = np.log(d.gpu_hour_price_factor[:, :, t] / central.gpu_hour_price_factor[0, 0, t]).ravel()
    assert walk.mean() == pytest.approx(0.0, abs=4 * math.sqrt(0.2**2 * t / n))
    assert walk.var() == pytest.approx(0.2**2 * t, rel=0.03)

    u = d.utilisation_steady
    logit = np.log(u / (1 - u)) - np.log(central.utilisation_steady[0, 0, 0]
                                         / (1 - central.utilisation_steady[0, 0, 0]))
    kappa_u = math.log(2)
    var_u = 0.6**2 / (2 * kappa_u)
    for k in (0, t):  # stationary from the first period on
        assert logit[:, :, k].mean() == pytest.approx(0.0, abs=4 * math.sqrt(var_u / n))
        assert logit[:, :, k].var() == pytest.approx(var_u, rel=0.03)
    rho = np.corrcoef(logit[:, 0, 3], logit[:, 0, 4])[0, 1]
    assert rho == pytest.approx(math.exp(-kappa_u), abs=0.01)


def test_gpu_hour_price_reverts_to_its_trend_as_an_ou_process():
    """log(factor / trend) = x_t, x_0 = 0, an OU process with half-life h: mean 0, variance
    v^2 (1 - e^(-2kt)) / (2k) (k = ln 2 / h), and corr(x_s, x_t) = e^(-k(t - s))
    sqrt(var_s / var_t) for s < t. The spread stays bounded, unlike the walk's v^2 t."""
    v, h = 0.25, 2.0
    sc = finmodel.load_scenario("base").with_updates({
        "market.gpu_hour_price_volatility": v, "market.gpu_hour_price_half_life_years": h})
    n = 40_000
    d = drivers_from_draws(sc, {}, n, path_noise(sc, 5, 0, n))
    central = central_drivers(sc)
    x = np.log(d.gpu_hour_price_factor[:, 0, :] / central.gpu_hour_price_factor[0, 0, :])
    k = math.log(2) / h
    var = v**2 * (1 - np.exp(-2 * k * np.arange(x.shape[1]))) / (2 * k)
    assert np.all(x[:, 0] == 0.0)
    for t in (1, 3, 10, 20):
        assert x[:, t].mean() == pytest.approx(0.0, abs=4 * math.sqrt(var[t] / n))
        assert x[:, t].var() == pytest.approx(var[t], rel=0.03)
    for s, t in ((3, 4), (3, 7), (10, 12)):
        expected = math.exp(-k * (t - s)) * math.sqrt(var[s] / var[t])
        assert np.corrcoef(x[:, s], x[:, t])[0, 1] == pytest.approx(expected, abs=0.01)
    assert x[:, -1].var() < v**2 / (2 * k) < v**2 * 24  # bounded by the stationary variance


def test_chip_prices_share_the_common_demand_shocks():
    """corr(chip shock, common demand shock) = market.chip_demand_correlation; at 0 the chip
    stream is the one it always was (existing draws unchanged)."""
    from finmodel.sampling import block_normals

    base = finmodel.load_scenario("base")
    n = 50_000
    for rho in (0.0, 0.5, -0.8):
        sc = base.with_updates({"market.chip_demand_correlation": rho})
        chip = path_noise(sc, 3, 0, n).chip[:, 0, :]
        common = block_normals(3, "noise:demand:common", 0, n, (1, sc.timeline.horizon_years))[:, 0, :]
        assert np.corrcoef(chip.ravel(), common.ravel())[0, 1] == pytest.approx(rho, abs=0.01)
        assert chip.var() == pytest.approx(1.0, rel=0.02)
    plain = path_noise(base.with_updates({"market.chip_demand_correlation": 0.0}), 3, 0, 1000).chip
    np.testing.assert_array_equal(plain, block_normals(3, "noise:chip", 0, 1000, (1, 25)))


def test_common_factor_share_sets_cross_site_correlation():
    sc = finmodel.load_scenario("thirteen_factories")
    noise = path_noise(sc, 0, 0, 20_000)
    c = sc.market.demand_common_share
    rho = np.corrcoef(noise.demand[:, 0, 5], noise.demand[:, 7, 5])[0, 1]
    assert rho == pytest.approx(c, abs=0.03)
    assert noise.demand[:, :, 5].std() == pytest.approx(1.0, abs=0.02)
