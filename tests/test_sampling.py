"""Sampling: marginals, correlation, reproducibility, variance reduction, path statistics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

import finmodel
from finmodel.drivers import _reverting
from finmodel.sampling import (
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


def test_mean_reversion_matches_closed_form():
    """Log power deviation: mean x0 e^(-kt), variance s^2 (1 - e^(-2kt)) / (2k), no jumps."""
    half_life, sigma, x0, t = 3.0, 0.5, math.log(250 / 110), 6
    z = block_normals(11, "test:ou", 0, 200_000, (t + 1,))
    x = _reverting(z * sigma, half_life)
    x = x + x0 * np.exp(-math.log(2) / half_life * np.arange(t + 1))
    kappa = math.log(2) / half_life
    mean, var = x0 * math.exp(-kappa * t), sigma**2 * (1 - math.exp(-2 * kappa * t)) / (2 * kappa)
    assert x[:, t].mean() == pytest.approx(mean, abs=4 * math.sqrt(var / 200_000))
    assert x[:, t].var() == pytest.approx(var, rel=0.02)
    # lag-1 autocorrelation of the stationary process is e^(-k)
    xs = _reverting(z * sigma, half_life, stationary=True)
    rho = np.corrcoef(xs[:, 3], xs[:, 4])[0, 1]
    assert rho == pytest.approx(math.exp(-kappa), abs=0.01)


def test_common_factor_share_sets_cross_site_correlation():
    sc = finmodel.load_scenario("thirteen_factories")
    noise = path_noise(sc, 0, 0, 20_000)
    c = sc.market.demand_common_share
    rho = np.corrcoef(noise.demand[:, 0, 5], noise.demand[:, 7, 5])[0, 1]
    assert rho == pytest.approx(c, abs=0.03)
    assert noise.demand[:, :, 5].std() == pytest.approx(1.0, abs=0.02)
