"""Sampling: uncertain inputs -> per-path draws (MC / LHS / Sobol), correlated, reproducible.

Random streams come from ``numpy.random.SeedSequence(seed, spawn_key=(hash(name), block))``:
one named stream per input, so adding an input leaves the others' draws unchanged, and draws
come in fixed blocks of ``BLOCK`` paths, so path p's draws do not depend on how the run is
chunked or which worker runs it.

* ``mc``: every input from its own stream; correlation through a Gaussian copula row by row.
* ``lhs``: a 1-D Latin hypercube of all paths per input (``scipy.stats.qmc.LatinHypercube``,
  own stream), correlated by Iman-Conover reordering, which keeps each stratified marginal
  exactly. The design spans all paths, so it is built once per run (``design``) and sliced.
* ``sobol``: one scrambled Sobol design over all inputs (``scipy.stats.qmc.Sobol``), built once
  per run; adding an input changes the design (inherent to Sobol). Gaussian copula.

Time-path noise (power, chip market, AI demand) is plain Monte Carlo from named streams in all
three methods. Same seed, same method, same path count: bit-identical draws for any chunking.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.stats import qmc

from finmodel.errors import Problem, ScenarioError
from finmodel.scenario.checks import nearest_correlation
from finmodel.scenario.distributions import (
    Discrete,
    Fixed,
    LogNormal,
    Pert,
    Triangular,
    TruncNormal,
    Uniform,
    _Spec,
)

if TYPE_CHECKING:
    from finmodel.scenario.model import Scenario

__all__ = [
    "BLOCK",
    "METHODS",
    "Design",
    "PathNoise",
    "Quantiles",
    "block_normals",
    "make_design",
    "marginal",
    "path_noise",
    "ppf",
    "scalar_draws",
    "slice_design",
    "stream",
]

Array = NDArray[np.float64]
METHODS = ("mc", "lhs", "sobol")
BLOCK = 1024
_Z95 = stats.norm.ppf(0.95)


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def stream(seed: int, name: str, block: int = 0) -> np.random.Generator:
    """The generator for input ``name`` and path block ``block``."""
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(seed, spawn_key=(_key(name), block))))


def _blocked(seed: int, name: str, start: int, stop: int, draw) -> Array:
    """Rows start..stop of a per-path array made block by block: draw(rng, BLOCK) -> (BLOCK, ...)."""
    first, last = start // BLOCK, (stop - 1) // BLOCK
    parts = [draw(stream(seed, name, b), BLOCK) for b in range(first, last + 1)]
    full = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    off = first * BLOCK
    return full[start - off: stop - off]


def block_normals(seed: int, name: str, start: int, stop: int, tail: tuple[int, ...]) -> Array:
    """Standard normals (stop - start, *tail) for paths start..stop, chunk-invariant."""
    return _blocked(seed, name, start, stop, lambda rng, n: rng.standard_normal((n, *tail)))


def block_uniforms(seed: int, name: str, start: int, stop: int, tail: tuple[int, ...] = ()) -> Array:
    return _blocked(seed, name, start, stop, lambda rng, n: rng.random((n, *tail)))


# -- marginals ---------------------------------------------------------------------------------


class _DiscretePPF:
    """Quantile function of a finite distribution (values need not be integers, unlike
    ``scipy.stats.rv_discrete``)."""

    def __init__(self, values: list[float], probs: list[float]):
        order = np.argsort(values)
        self.values = np.asarray(values, float)[order]
        self.cum = np.cumsum(np.asarray(probs, float)[order])
        self.cum[-1] = 1.0

    def ppf(self, u: Array) -> Array:
        return self.values[np.minimum(np.searchsorted(self.cum, u, side="right"), self.values.size - 1)]

    def cdf(self, x: Array) -> Array:
        idx = np.searchsorted(self.values, x, side="right") - 1
        return np.where(idx >= 0, self.cum[np.maximum(idx, 0)], 0.0)


_MARGINALS: dict[str, object] = {}


def marginal(spec: _Spec):
    """A frozen scipy.stats distribution (or a discrete quantile function) for a spec; cached,
    because freezing a scipy distribution costs about a millisecond."""
    key = spec.model_dump_json()
    if key not in _MARGINALS:
        if len(_MARGINALS) > 1024:
            _MARGINALS.clear()
        _MARGINALS[key] = _make_marginal(spec)
    return _MARGINALS[key]


def _make_marginal(spec: _Spec):
    if isinstance(spec, Triangular):
        width = spec.high - spec.low
        return stats.triang(c=(spec.mode - spec.low) / width, loc=spec.low, scale=width)
    if isinstance(spec, Pert):
        width = spec.high - spec.low
        a = 1.0 + spec.lamb * (spec.mode - spec.low) / width
        b = 1.0 + spec.lamb * (spec.high - spec.mode) / width
        return stats.beta(a, b, loc=spec.low, scale=width)
    if isinstance(spec, LogNormal):
        sigma = math.log(spec.high / spec.low) / (2.0 * _Z95)
        return stats.lognorm(s=sigma, scale=math.sqrt(spec.low * spec.high))
    if isinstance(spec, TruncNormal):
        return stats.truncnorm((spec.low - spec.mean) / spec.sd, (spec.high - spec.mean) / spec.sd,
                               loc=spec.mean, scale=spec.sd)
    if isinstance(spec, Uniform):
        return stats.uniform(loc=spec.low, scale=spec.high - spec.low)
    if isinstance(spec, Discrete):
        return _DiscretePPF(spec.values, spec.probs)
    if isinstance(spec, Fixed):
        raise ValueError("a fixed input has no distribution to sample")
    raise TypeError(f"unknown distribution spec {spec!r}")


def ppf(spec: _Spec, u: Array) -> Array:
    """Values of ``spec`` at uniform quantiles ``u`` (any shape)."""
    return np.asarray(marginal(spec).ppf(u), dtype=float)


class Quantiles:
    """The quantile functions of K marginals, for the K columns of uniforms (n, K).

    Marginals of one scipy family are evaluated in one call with their parameters stacked
    along the columns (the same arithmetic per value as one call each, so the same numbers):
    scipy's argument checks cost about 0.1 ms a call, more than 1,024 triangular quantiles.
    """

    def __init__(self, specs: tuple[_Spec, ...]):
        self.k = len(specs)
        families: dict[tuple, list[int]] = {}
        self.discrete: list[tuple[int, _DiscretePPF]] = []
        frozen = [marginal(spec) for spec in specs]
        for j, m in enumerate(frozen):
            if isinstance(m, _DiscretePPF):
                self.discrete.append((j, m))
            else:
                families.setdefault((m.dist.name, len(m.args), tuple(sorted(m.kwds))), []).append(j)
        # (columns, distribution, stacked positional and keyword parameters (k,))
        self.families = [
            (np.array(cols), frozen[cols[0]].dist,
             [np.array([frozen[j].args[i] for j in cols]) for i in range(n_args)],
             {name: np.array([frozen[j].kwds[name] for j in cols]) for name in kwds})
            for (_, n_args, kwds), cols in families.items()
        ]

    def __call__(self, u: Array) -> Array:
        """Values (K, n), one contiguous row per marginal, at uniforms u (n, K)."""
        out = np.empty((self.k, u.shape[0]))
        for cols, dist, args, kwds in self.families:
            out[cols] = np.asarray(dist.ppf(u[:, cols], *args, **kwds), dtype=float).T
        for j, m in self.discrete:
            out[j] = m.ppf(u[:, j])
        return out


# -- correlation --------------------------------------------------------------------------------


def _pearson_for_spearman(rank_corr: Array) -> Array:
    """Normal-copula correlation that gives the target Spearman rank correlation."""
    r = 2.0 * np.sin(np.pi * np.asarray(rank_corr) / 6.0)
    np.fill_diagonal(r, 1.0)
    if np.linalg.eigvalsh(r).min() < 1e-12:
        r = nearest_correlation(r)
        r = r + 1e-10 * np.eye(len(r))
    return r


def _gaussian_copula(u: Array, chol: Array) -> Array:
    """Rows of independent uniforms (n, k) -> uniforms with the copula's dependence."""
    z = stats.norm.ppf(np.clip(u, 1e-16, 1 - 1e-16))
    return stats.norm.cdf(z @ chol.T)


def _iman_conover(u: Array, rank_corr: Array, rng: np.random.Generator) -> Array:
    """Reorder each column of u (n, k) so that rank correlations match ``rank_corr``; the set of
    values in each column (and so each marginal, stratification included) is unchanged."""
    n, k = u.shape
    scores = stats.norm.ppf(np.arange(1, n + 1) / (n + 1))
    s = np.column_stack([rng.permutation(scores) for _ in range(k)])
    e = np.corrcoef(s, rowvar=False)
    target = np.linalg.cholesky(_pearson_for_spearman(rank_corr))
    t = s @ np.linalg.inv(np.linalg.cholesky(e)).T @ target.T
    out = np.empty_like(u)
    for j in range(k):
        ranks = np.argsort(np.argsort(t[:, j]))
        out[:, j] = np.sort(u[:, j])[ranks]
    return out


# -- the design of scalar inputs -----------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """Uniforms of the scalar uncertain inputs for all paths (``lhs``/``sobol``) or ``None``
    (``mc``, made per block on demand).

    The columns are the uncertain inputs and the pinned (fixed) inputs that are still listed in
    ``correlation.inputs``: a pinned input keeps its column and its place in the copula, and
    its values are discarded, so that pinning it leaves every other input's draws unchanged."""

    names: tuple[str, ...]  # the K columns
    method: str
    seed: int
    paths: int
    uniforms: Array | None  # (rows, K): all paths, or paths offset..offset + rows
    quantiles: Quantiles  # the marginals of the drawn columns
    offset: int = 0
    drawn: tuple[str, ...] | None = None  # the columns that are not pinned (None: all)

    @property
    def drawn_names(self) -> tuple[str, ...]:
        return self.names if self.drawn is None else self.drawn

    def rows(self, start: int, stop: int) -> Array:
        """Uniforms (stop - start, K) of paths start..stop (absolute path indices)."""
        if self.uniforms is not None:
            return self.uniforms[start - self.offset: stop - self.offset]
        return np.column_stack([block_uniforms(self.seed, f"input:{name}", start, stop)
                                for name in self.names]) if self.names else np.empty((stop - start, 0))


def slice_design(design: Design, start: int, stop: int) -> Design:
    """The design restricted to paths start..stop (what one worker needs)."""
    if design.uniforms is None:
        return design
    rows = design.rows(start, stop)
    return Design(design.names, design.method, design.seed, design.paths, rows, design.quantiles,
                  start, design.drawn)


def check_run_args(paths: int, seed: int, method: str, chunk_size: int | None,
                   threads: int | None = None) -> None:
    problems = []
    if isinstance(paths, bool) or not isinstance(paths, int | np.integer) or paths < 1:
        problems.append(Problem("paths", paths, "must be a whole number >= 1"))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        problems.append(Problem("seed", seed, "must be a whole number >= 0"))
    if method not in METHODS:
        problems.append(Problem("method", method, f"must be one of {', '.join(METHODS)}"))
    for name, value in (("chunk_size", chunk_size), ("threads", threads)):
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, int | np.integer) or value < 1):
            problems.append(Problem(name, value, "must be a whole number >= 1 or None"))
    if problems:
        raise ScenarioError(problems, "simulate")


def design_columns(sc: Scenario) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(columns, drawn): the design's columns in field order (the uncertain inputs and the
    pinned inputs still in ``correlation.inputs``), and those of them that are drawn."""
    from finmodel.scenario.fields import iter_dists

    correlated = set(sc.correlation.inputs)
    specs = [(path, spec) for path, spec in iter_dists(sc) if not spec.is_fixed or path in correlated]
    return tuple(p for p, _ in specs), tuple(p for p, spec in specs if not spec.is_fixed)


def make_design(sc: Scenario, paths: int, seed: int, method: str) -> Design:
    """Uniform design of the scalar uncertain inputs; correlated for lhs (Iman-Conover)."""
    specs = sc.uncertain_inputs()
    names, drawn = design_columns(sc)
    quantiles = Quantiles(tuple(specs[p] for p in drawn))
    drawn = None if drawn == names else drawn
    if method == "mc" or not names:
        return Design(names, method, seed, paths, None, quantiles, 0, drawn)
    if method == "lhs":
        cols = [qmc.LatinHypercube(d=1, rng=stream(seed, f"lhs:{name}")).random(paths)[:, 0]
                for name in names]
        u = np.column_stack(cols)
        corr_names = sc.correlation.inputs
        if corr_names:
            idx = [names.index(n) for n in corr_names]
            u[:, idx] = _iman_conover(u[:, idx], np.asarray(sc.correlation.matrix),
                                      stream(seed, "iman-conover"))
        return Design(names, method, seed, paths, u, quantiles, 0, drawn)
    if paths & (paths - 1):
        warnings.warn(f"Sobol sampling with paths={paths}, not a power of two: the balance "
                      f"properties of the sequence are lost; use e.g. {1 << paths.bit_length()}",
                      UserWarning, stacklevel=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # our warning above replaces scipy's
        u = qmc.Sobol(d=len(names), scramble=True, rng=stream(seed, "sobol")).random(paths)
    return Design(names, method, seed, paths, u, quantiles, 0, drawn)


def scalar_draws(sc: Scenario, design: Design, start: int, stop: int) -> dict[str, Array]:
    """Input path -> values (stop - start,) for every uncertain scalar input."""
    u = design.rows(start, stop)
    corr_names = sc.correlation.inputs
    if corr_names and design.method != "lhs":
        idx = [design.names.index(n) for n in corr_names]
        chol = np.linalg.cholesky(_pearson_for_spearman(np.asarray(sc.correlation.matrix)))
        u = u.copy()
        u[:, idx] = _gaussian_copula(u[:, idx], chol)
    if design.drawn is not None:
        u = u[:, [design.names.index(n) for n in design.drawn]]
    return dict(zip(design.drawn_names, design.quantiles(u), strict=True))


# -- time-path noise ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PathNoise:
    """Standardised shocks for the time paths of paths start..stop; (n, F, T) or (n, 1, T)."""

    power: Array  # N(0, 1), common/idiosyncratic mix set by energy.power_price_common_share
    power_jumps: NDArray[np.bool_]  # True where the power price jumps
    chip: Array  # (n, 1, T) N(0, 1), one global chip market, correlated with the common part of
    # the demand shocks by market.chip_demand_correlation
    demand: Array  # N(0, 1), common/idiosyncratic mix set by market.demand_common_share; moves
    # both the GPU-hour price and utilisation of a site

    def rows(self, start: int, stop: int) -> PathNoise:
        """The shocks of rows start..stop."""
        return PathNoise(*(getattr(self, f.name)[start:stop] for f in fields(self)))


def _mixed(seed: int, name: str, start: int, stop: int, n_f: int, n_t: int, common: float) -> Array:
    c = block_normals(seed, f"noise:{name}:common", start, stop, (1, n_t))
    mixed = block_normals(seed, f"noise:{name}:site", start, stop, (n_f, n_t))
    mixed *= math.sqrt(1.0 - common)  # in place: (n, F, T) temporaries cost memory traffic
    mixed += math.sqrt(common) * c
    return mixed


def path_noise(sc: Scenario, seed: int, start: int, stop: int) -> PathNoise:
    n_f, n_t = sc.n_factories, sc.timeline.horizon_years
    e, m = sc.energy, sc.market
    p = e.power_price_jump_probability
    common_jump = block_uniforms(seed, "noise:power-jump:common", start, stop, (1, n_t))
    site_jump = block_uniforms(seed, "noise:power-jump:site", start, stop, (n_f, n_t))
    c = e.power_price_common_share
    jumps = (common_jump < p * c) | (site_jump < p * (1.0 - c))
    chip = block_normals(seed, "noise:chip", start, stop, (1, n_t))
    rho = m.chip_demand_correlation
    if rho != 0.0:  # the chip market shares the common AI-demand shocks
        chip *= math.sqrt(1.0 - rho * rho)
        chip += rho * block_normals(seed, "noise:demand:common", start, stop, (1, n_t))
    return PathNoise(
        power=_mixed(seed, "power", start, stop, n_f, n_t, c),
        power_jumps=jumps,
        chip=chip,
        demand=_mixed(seed, "demand", start, stop, n_f, n_t, m.demand_common_share),
    )
