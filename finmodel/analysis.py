"""The analyst's layer: sweeps, sensitivity (tornado, rank correlation, Sobol indices, tail
drivers) and the allocation optimiser. Sample -> evaluate -> analyse, as in SALib.

Everything runs on common random numbers: the same seed gives every case the same draws of the
inputs it shares, so differences between cases are not sampling noise.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import optimize, stats
from scipy.stats import qmc

from finmodel.drivers import drivers_from_draws
from finmodel.engine import close_deal, run
from finmodel.errors import Problem, ScenarioError
from finmodel.kpis import PATH_KPIS, path_kpis
from finmodel.portfolio import site_caps
from finmodel.results import Results
from finmodel.sampling import PathNoise, make_design, path_noise, ppf, scalar_draws, stream
from finmodel.scenario.model import Scenario
from finmodel.simulation import run_all, simulate
from finmodel.store import run_metadata

__all__ = ["AllocationResult", "elementary_effects", "morris", "optimise_allocation", "plain_name",
           "sensitivity", "sobol_indices", "sweep", "tail_drivers", "tornado"]

Array = NDArray[np.float64]
SWEEP_STATS = ("mean", "std", "sem", "p10", "p50", "p90")
EVAL_CHUNK = 2048  # paths per engine call when evaluating designs

# -- sweeps -------------------------------------------------------------------------------------

CENTRE_SUFFIXES = {"@centre": "scale", "@shift": "shift"}  # grid key suffix -> with_centres(how=)


def plain_name(path: str) -> str:
    """A field path as a column name that plots and queries without escaping:
    ``eib.tenor_years`` -> ``eib__tenor_years``, ``factories[2].gpus`` -> ``factories_2__gpus``,
    ``market.gpu_price_usd@centre`` -> ``market__gpu_price_usd__centre``."""
    return (path.replace("].", "__").replace("[", "_").replace("]", "").replace(".", "__")
            .replace("@", "__"))


def _cases(grid: Mapping[str, Sequence[Any]] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(grid, pd.DataFrame):
        if grid.empty:
            raise ScenarioError(Problem("grid", "empty DataFrame", "needs at least one case"), "sweep")
        return grid.reset_index(drop=True)
    if not isinstance(grid, Mapping) or not grid:
        raise ScenarioError(Problem("grid", grid, "a dict of field path -> list of values, or a "
                                    "DataFrame with one column per field"), "sweep")
    problems = [Problem(path, values, "needs a non-empty list of values")
                for path, values in grid.items()
                if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values]
    if problems:
        raise ScenarioError(problems, "sweep")
    rows = list(itertools.product(*grid.values()))
    return pd.DataFrame(rows, columns=list(grid))


def _case_scenario(sc: Scenario, updates: Mapping[str, Any]) -> Scenario:
    """``sc`` with a case's updates: plain paths set (a number pins an uncertain input), paths
    ending in ``@centre`` / ``@shift`` move a distribution's centre (``Scenario.with_centres``)."""
    plain = {k: v for k, v in updates.items() if not k.endswith(tuple(CENTRE_SUFFIXES))}
    out = sc.with_updates(plain) if plain else sc
    for suffix, how in CENTRE_SUFFIXES.items():
        centres = {k[: -len(suffix)]: v for k, v in updates.items() if k.endswith(suffix)}
        if centres:
            out = out.with_centres(centres, how=how)
    return out


def _case_scenarios(sc: Scenario, cases: pd.DataFrame) -> list[Scenario]:
    """Every case's scenario, validated before any work; one error lists every bad case."""
    out, problems = [], []
    for i, row in cases.iterrows():
        updates = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        try:
            out.append(_case_scenario(sc, updates))
        except ScenarioError as exc:
            problems += [Problem(p.path, p.value, f"{p.message} (case {i})") for p in exc.problems]
    if problems:
        raise ScenarioError(problems, "sweep")
    return out


def _run_case(args: tuple[Scenario, int, int, str, tuple[str, ...], int | None]
              ) -> tuple[pd.DataFrame, np.ndarray]:
    """One case: its KPI summary and the KPIs' values path by path (paths, K)."""
    sc, paths, seed, method, kpis, threads = args
    res = simulate(sc, paths=paths, seed=seed, method=method, factory_kpis=False, threads=threads)
    summary = res.summary().loc[list(kpis)]
    table = summary[["unit", *SWEEP_STATS]].copy()
    table["probability"] = np.where(table["unit"] == "flag", table["mean"], np.nan)
    return table.reset_index(), res.path_kpis[list(kpis)].to_numpy(dtype=float)


def _paired(values: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the path-by-path difference (paths, K) over paths where
    both are finite -> (K,), (K,)."""
    diff = values - reference
    ok = np.isfinite(diff)
    n = ok.sum(0)
    d = np.where(ok, diff, 0.0)
    mean = np.where(n > 0, d.sum(0) / np.maximum(n, 1), np.nan)
    var = np.where(n > 1, (np.where(ok, diff - mean, 0.0) ** 2).sum(0) / np.maximum(n - 1, 1), np.nan)
    return mean, np.sqrt(var / np.maximum(n, 1))


def sweep(scenario: Scenario, grid: Mapping[str, Sequence[Any]] | pd.DataFrame,
          paths: int = 10_000, seed: int = 0, method: str = "lhs",
          kpis: Sequence[str] | None = None, executor: Executor | None = None,
          reference: int | None = 0, progress: Callable[[int, int], None] | None = None
          ) -> pd.DataFrame:
    """Run every case of ``grid`` on common random numbers -> tidy DataFrame.

    grid: dotted field path -> values (full factorial), or a DataFrame of explicit cases (one
    column per field). A number given for an uncertain input pins it; a key ending in
    ``@centre`` (or ``@shift``) moves the input's distribution to that central value keeping
    its relative (absolute) spread, e.g. ``{"market.gpu_hour_price_launch_usd@centre": [2, 3]}``.

    Returns one row per (case, KPI): ``case``, one column per swept field under its
    ``plain_name`` (``eib__tenor_years``), ``kpi``, ``unit``, mean, std, sem (standard error of
    the mean), p10, p50, p90, ``probability`` (flags: the share of paths), and against case
    ``reference`` (None: no comparison) the paired difference of the means ``diff_mean`` and
    its standard error ``diff_sem``: common random numbers make it far smaller than the two
    sems combined. ``attrs`` holds the run: scenario name and TOML, paths, seed, method,
    version, reference and the plain name -> field path map.

    ``executor``: any ``concurrent.futures.Executor`` (a process pool, or a Dask cluster's
    ``distributed.Client(...).get_executor()``); the result is identical with or without one,
    and the first failing case cancels the cases not yet started. progress(done, cases) is
    called after each case. Bad fields or values raise ``ScenarioError`` before any case runs.
    """
    cases = _cases(grid)
    scenarios = _case_scenarios(scenario, cases)
    kpis = tuple(kpis) if kpis is not None else tuple(PATH_KPIS)
    unknown = [k for k in kpis if k not in PATH_KPIS]
    if unknown:
        raise ScenarioError(Problem("kpis", unknown, f"choose from {', '.join(PATH_KPIS)}"), "sweep")
    if reference is not None and not (isinstance(reference, int | np.integer)
                                      and 0 <= reference < len(cases)):
        raise ScenarioError(Problem("reference", reference, f"a case number 0..{len(cases) - 1} or "
                                    "None"), "sweep")
    # cases on an executor run one thread each: the executor already fills the cores
    jobs = [(sc, paths, seed, method, kpis, None if executor is None else 1) for sc in scenarios]
    outcomes = run_all(_run_case, jobs, executor,
                       None if progress is None else lambda _, done: progress(done, len(jobs)))
    columns = {plain_name(field): field for field in cases.columns}
    frames = []
    for i, (table, _) in enumerate(outcomes):
        for name, field in reversed(columns.items()):
            table.insert(0, name, cases.loc[i, field])
        table.insert(0, "case", i)
        if reference is not None:
            table["diff_mean"], table["diff_sem"] = _paired(outcomes[i][1], outcomes[reference][1])
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(run_metadata(scenario, paths, seed, method), reference=reference, fields=columns)
    return out


# -- evaluating the engine on given draws --------------------------------------------------------


def _evaluate(sc: Scenario, draws: Mapping[str, Array], noise: PathNoise | None,
              terms=None, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Path KPIs for given scalar draws (name -> (n,)) and time-path noise (or the central
    paths if None), with the deal terms of ``sc`` fixed at close. Evaluated in chunks;
    progress(done, n) after each."""
    terms = close_deal(sc) if terms is None else terms
    n = len(next(iter(draws.values()))) if draws else 1
    frames = []
    for start in range(0, n, EVAL_CHUNK):
        stop = min(start + EVAL_CHUNK, n)
        drivers = drivers_from_draws(sc, {k: v[start:stop] for k, v in draws.items()}, stop - start,
                                     None if noise is None else noise.rows(start, stop))
        frames.append(path_kpis(sc, run(sc, drivers, terms), np.arange(start, stop)))
        if progress:
            progress(stop, n)
    return pd.concat(frames, ignore_index=True)


def _check_kpi(kpi: str, where: str) -> None:
    if kpi not in PATH_KPIS:
        raise ScenarioError(Problem("kpi", kpi, f"choose from {', '.join(PATH_KPIS)}"), where)

# -- one at a time --------------------------------------------------------------------------------


def one_at_a_time(evaluate: Callable[[dict[str, Array]], Array], centre: Mapping[str, float],
                  low: Mapping[str, float], high: Mapping[str, float]) -> pd.DataFrame:
    """Swing each input to its low and high value with the others at their centre.

    evaluate(values: name -> (n,)) -> (n,) outputs. Returns one row per input, sorted by
    ``swing`` = |output at high - output at low|, largest first."""
    names = list(centre)
    n = 2 * len(names) + 1
    values = {name: np.full(n, float(centre[name])) for name in names}
    for j, name in enumerate(names):
        values[name][2 * j] = low[name]
        values[name][2 * j + 1] = high[name]
    out = np.asarray(evaluate(values), dtype=float)
    table = pd.DataFrame({
        "input": names,
        "low_value": [low[k] for k in names],
        "high_value": [high[k] for k in names],
        "kpi_at_low": out[0:-1:2],
        "kpi_at_high": out[1:-1:2],
    })
    table["kpi_at_centre"] = out[-1]
    table["swing"] = (table["kpi_at_high"] - table["kpi_at_low"]).abs()
    return table.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


def tornado(scenario: Scenario, kpi: str, low: float = 0.1, high: float = 0.9) -> pd.DataFrame:
    """One-at-a-time swings of every uncertain input from its ``low`` to its ``high`` quantile,
    the others at their central values and the deal terms fixed at close, on the central time
    paths. One row per input, largest swing first. Where no input moves the KPI (a flag or a
    loss that the central case never reaches) ``attrs["note"]`` says so and a ``UserWarning``
    is issued."""
    _check_kpi(kpi, "tornado")
    if not 0 <= low < high <= 1:
        raise ScenarioError(Problem("low, high", (low, high), "need 0 <= low < high <= 1"), "tornado")
    specs = scenario.uncertain_inputs()
    centre = {k: float(s.central) for k, s in specs.items()}
    lows = {k: float(ppf(s, np.array([low]))[0]) for k, s in specs.items()}
    highs = {k: float(ppf(s, np.array([high]))[0]) for k, s in specs.items()}
    terms = close_deal(scenario)

    def evaluate(values: dict[str, Array]) -> Array:
        return _evaluate(scenario, values, None, terms)[kpi].to_numpy()

    table = one_at_a_time(evaluate, centre, lows, highs)
    if not (table["swing"] > 0).any():
        table.attrs["note"] = (f"No single input moves {kpi} on the central case: "
                               f"{'a flag' if PATH_KPIS[kpi][0] == 'flag' else 'it'} stays "
                               f"{table['kpi_at_centre'].iloc[0]:g} when one input at a time "
                               f"swings from its P{low * 100:g} to its P{high * 100:g}. Use "
                               f"sensitivity() on simulated paths for events and losses.")
        warnings.warn(f"tornado: {table.attrs['note']}", UserWarning, stacklevel=2)
    return table

# -- rank correlation, Sobol indices, tail drivers ----------------------------------------------------


def sobol_indices(y_a: Array, y_b: Array, y_ab: Array, names: Sequence[str], n_boot: int = 500,
                  conf: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """First-order (Saltelli 2010) and total (Jansen 1999) Sobol indices from a pick-freeze design.

    y_a, y_b: (N,) outputs on two independent samples A and B; y_ab: (G, N) outputs on A with
    group g's columns taken from B. The outputs are centred on the mean of every evaluation
    first, as SALib does: the first-order estimator is not shift-invariant, and a KPI whose mean
    is large next to its spread (EIB exposure, public cost) would otherwise give noise.
    Confidence intervals by bootstrap over the N rows (half-width at ``conf``)."""
    y_a, y_b, y_ab = (np.asarray(x, float) for x in (y_a, y_b, y_ab))
    centre = np.concatenate([y_a, y_b, y_ab.ravel()]).mean()
    y_a, y_b, y_ab = y_a - centre, y_b - centre, y_ab - centre
    n = y_a.size
    rng = np.random.default_rng(seed)

    def estimate(idx: NDArray[np.int64]) -> tuple[Array, Array]:
        a, b, ab = y_a[idx], y_b[idx], y_ab[:, idx]
        var = np.var(np.concatenate([a, b]))
        first = np.mean(b * (ab - a), axis=-1) / var
        total = 0.5 * np.mean((a - ab) ** 2, axis=-1) / var
        return first, total

    s1, st = estimate(np.arange(n))
    boot = [estimate(rng.integers(0, n, n)) for _ in range(n_boot)]
    z = stats.norm.ppf(0.5 + conf / 2)
    s1_conf = z * np.std([b[0] for b in boot], axis=0, ddof=1)
    st_conf = z * np.std([b[1] for b in boot], axis=0, ddof=1)
    return pd.DataFrame({"S1": s1, "S1_conf": s1_conf, "ST": st, "ST_conf": st_conf},
                        index=pd.Index(list(names), name="group"))


def input_groups(sc: Scenario) -> dict[str, list[str]]:
    """Groups of uncertain inputs that are independent of each other: the connected components
    of the correlation matrix, every other input alone, and the time-path noise processes
    (the chip market and AI demand together where they are correlated)."""
    names = list(sc.uncertain_inputs())
    parent = {n: n for n in names}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    corr = sc.correlation
    for i, a in enumerate(corr.inputs):
        for j, b in enumerate(corr.inputs):
            if i < j and corr.matrix[i][j] != 0 and a in parent and b in parent:  # not pinned
                parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(find(name), []).append(name)
    out = {(" + ".join(members) if len(members) > 1 else members[0]): members
           for members in groups.values()}
    out["time paths: power"] = ["noise:power"]
    if sc.market.chip_demand_correlation != 0.0:  # dependent: one group
        out["time paths: chip market + AI demand"] = ["noise:chip", "noise:demand"]
    else:
        out["time paths: chip market"] = ["noise:chip"]
        out["time paths: AI demand"] = ["noise:demand"]
    return out


def _check_power_of_two(samples: int, argument: str, where: str) -> None:
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 4 \
            or samples & (samples - 1):
        raise ScenarioError(Problem(argument, samples, "a power of two >= 4 (the Sobol design is "
                                    "balanced only then), e.g. 512"), where)


def _sobol_outputs(sc: Scenario, kpi: str, samples: int, seed: int,
                   progress: Callable[[int, int], None] | None = None) -> tuple[Array, list[str]]:
    """Model outputs (G + 2, N) of a pick-freeze design: rows A, B, then A with group g's inputs
    from B. A and B are the two halves of one scrambled Sobol sequence of dimension 2K over
    the scalar inputs (Saltelli's design); the time-path noise is Monte Carlo."""
    groups = input_groups(sc)
    terms = close_deal(sc)
    # the columns and marginals of the run's design (without building its own uniforms), then
    # the two halves of the 2K-dimensional sequence as its uniforms (Gaussian copula, as sobol)
    design = dataclasses.replace(make_design(sc, samples, seed, "mc"), method="sobol")
    k = len(design.names)
    u = qmc.Sobol(d=2 * k, scramble=True, rng=stream(seed, "sensitivity:sobol")).random(samples) \
        if k else np.empty((samples, 0))
    draws_a = scalar_draws(sc, dataclasses.replace(design, uniforms=u[:, :k]), 0, samples)
    draws_b = scalar_draws(sc, dataclasses.replace(design, uniforms=u[:, k:]), 0, samples)
    noise_a, noise_b = path_noise(sc, seed, 0, samples), path_noise(sc, seed + 1, 0, samples)
    fields = [f.name for f in dataclasses.fields(PathNoise)]
    noise_field = {"noise:power": ("power", "power_jumps"), "noise:chip": ("chip",),
                   "noise:demand": ("demand",)}
    blocks_draws, blocks_noise = [draws_a, draws_b], [noise_a, noise_b]
    for members in groups.values():
        swapped = set(members)
        blocks_draws.append({k: (draws_b[k] if k in swapped else v) for k, v in draws_a.items()})
        from_b = {f for m in members for f in noise_field.get(m, ())}
        blocks_noise.append(PathNoise(*(getattr(noise_b if f in from_b else noise_a, f)
                                        for f in fields)))
    draws = {k: np.concatenate([d[k] for d in blocks_draws]) for k in draws_a}
    noise = PathNoise(*(np.concatenate([getattr(nz, f) for nz in blocks_noise]) for f in fields))
    y = _evaluate(sc, draws, noise, terms, progress)[kpi].to_numpy().reshape(len(blocks_draws), samples)
    return y, list(groups)


def _sobol(sc: Scenario, kpi: str, samples: int, seed: int, n_boot: int,
           progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Grouped Sobol indices; attrs["convergence"]: the indices on the design's first N/4,
    N/2 and N rows (each a balanced Sobol design) with the paths used."""
    y, names = _sobol_outputs(sc, kpi, samples, seed, progress)
    rows = []
    table = None
    for n in (samples // 4, samples // 2, samples):
        part = y[:, :n]
        part = part[:, np.isfinite(part).all(axis=0)]  # rows whose KPI exists in every block
        table = sobol_indices(part[0], part[1], part[2:], names, n_boot=n_boot, seed=seed)
        rows.append(table.assign(N=n, paths_used=part.shape[1]).reset_index())
    table.attrs["convergence"] = pd.concat(rows, ignore_index=True).set_index(["N", "group"])
    return table


def sensitivity(results: Results, kpi: str, sobol_samples: int = 0, seed: int = 0,
                n_boot: int = 500, progress: Callable[[int, int], None] | None = None
                ) -> pd.DataFrame:
    """Which inputs drive ``kpi`` (a path KPI).

    Per input, from the run's own paths: Spearman rank correlation with the KPI and its
    contribution to variance (squared rank correlation, normalised to 1). For a flag KPI (an
    event such as ``any_default``) the measure is the event's probability instead: on the
    paths where the input lies in its lowest and its highest third (``p_event_low``,
    ``p_event_high``), their difference ``event_shift`` and its share of the sum of |shifts|
    as the contribution; ``attrs["measure"]`` says which measure was used.

    With ``sobol_samples`` = N (a power of two) > 0, also variance-based Sobol indices (first
    order S1, Saltelli 2010, and total ST, Jansen 1999, with bootstrap confidence
    half-widths) from a pick-freeze design of N x (G + 2) model runs on a scrambled Sobol
    sequence, as SALib computes them; ``attrs["convergence"]`` gives them at N/4, N/2 and N.
    Sobol indices of single inputs are not defined when inputs are dependent, so they are
    computed for groups: inputs linked by the correlation matrix form one group, every other
    input is its own group, and each time-path noise process (power, chip market, demand) is a
    group; each input row shows its group's indices. Paths whose KPI is undefined (e.g. no
    IRR) are left out. progress(done, runs) is called as the design's model runs complete.
    """
    _check_kpi(kpi, "sensitivity")
    if sobol_samples:
        _check_power_of_two(sobol_samples, "sobol_samples", "sensitivity")
    y = results.path_kpis[kpi].to_numpy(dtype=float)
    inputs = results.inputs.drop(columns="path")
    ok = np.isfinite(y)
    flag = PATH_KPIS[kpi][0] == "flag"
    rows = []
    for name in inputs.columns:
        x = inputs[name].to_numpy(dtype=float)[ok]
        rho = stats.spearmanr(x, y[ok]).statistic if np.ptp(x) > 0 and np.ptp(y[ok]) > 0 else 0.0
        row = {"input": name, "spearman": rho}
        if flag:
            ranks = stats.rankdata(x, method="average") / x.size
            low, high = y[ok][ranks <= 1 / 3], y[ok][ranks > 2 / 3]
            row.update(p_event_low=low.mean() if low.size else np.nan,
                       p_event_high=high.mean() if high.size else np.nan)
            row["event_shift"] = row["p_event_high"] - row["p_event_low"]
        rows.append(row)
    table = pd.DataFrame(rows)
    weight = table["event_shift"].abs().fillna(0.0) if flag else table["spearman"] ** 2
    table["contribution_to_variance" if not flag else "contribution"] = (
        weight / weight.sum() if weight.sum() > 0 else 0.0)
    table = table.sort_values(table.columns[-1], ascending=False, kind="stable")
    measure = ("P(event) in the lowest vs the highest third of each input" if flag
               else "squared Spearman rank correlation")
    convergence = None
    if sobol_samples:
        sobol = _sobol(results.scenario, kpi, int(sobol_samples), seed, n_boot, progress)
        convergence = sobol.attrs["convergence"]
        member_of = {m: g for g, members in input_groups(results.scenario).items() for m in members}
        table["group"] = table["input"].map(member_of)
        table = table.merge(sobol, left_on="group", right_index=True, how="left")
        noise = sobol[sobol.index.str.startswith("time paths")].reset_index()
        noise["input"] = noise["group"]
        table = pd.concat([table, noise], ignore_index=True)
    table = table.reset_index(drop=True)
    table.attrs["measure"] = measure
    if convergence is not None:
        table.attrs["convergence"] = convergence
    return table


def elementary_effects(evaluate: Callable[[Array], Array], k: int, trajectories: int, levels: int,
                       rng: np.random.Generator) -> Array:
    """Morris elementary effects (trajectories, K) of evaluate(q (n, K) quantiles in (0, 1))
    -> (n,) outputs: each trajectory starts on a random point of the ``levels``-level grid
    and moves one input at a time, in random order, by half the grid (a quantile step of
    +-0.5); an effect is the output's change over the quantile's change."""
    half = levels // 2
    grid = (np.arange(levels) + 0.5) / levels  # the levels' quantiles, off the 0 and 1 ends
    trajectory_levels, orders = [], []
    for _ in range(trajectories):
        up = rng.random(k) < 0.5  # inputs that step up start in the lower half, others above
        x = rng.integers(0, half, k) + np.where(up, 0, half)
        order = rng.permutation(k)
        rows = [x.copy()]
        for j in order:
            x[j] += half if up[j] else -half
            rows.append(x.copy())
        trajectory_levels.append(np.array(rows))
        orders.append(order)
    y = np.asarray(evaluate(grid[np.concatenate(trajectory_levels)]), float).reshape(trajectories, k + 1)
    effects = np.empty((trajectories, k))
    for t, order in enumerate(orders):
        rows = trajectory_levels[t]
        for i, j in enumerate(order):
            effects[t, j] = (y[t, i + 1] - y[t, i]) / (grid[rows[i + 1, j]] - grid[rows[i, j]])
    return effects


def morris(scenario: Scenario, kpi: str, trajectories: int = 20, levels: int = 4,
           seed: int = 0) -> pd.DataFrame:
    """Morris elementary-effects screening of every uncertain input (Morris 1991; mu* as in
    Campolongo et al. 2007): ``trajectories`` one-at-a-time paths through a ``levels``-level
    grid of each input's quantiles (``elementary_effects``), on the central time paths with
    the deal fixed at close: (K + 1) x trajectories model runs, so it screens many inputs
    cheaply. Inputs are taken as independent (the correlation is not applied), as in SALib.

    One row per input: ``mu`` (mean effect), ``mu_star`` (mean absolute effect), ``sigma``
    (spread of the effects: interactions or non-linearity), in KPI units per unit of quantile
    (the change from the input's 25th to its 75th percentile is half of it), sorted by
    mu_star, largest first. Paths whose KPI is undefined are left out of the means."""
    _check_kpi(kpi, "morris")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2 or levels % 2 \
            or isinstance(trajectories, bool) or not isinstance(trajectories, int) or trajectories < 2:
        raise ScenarioError(Problem("levels, trajectories", (levels, trajectories),
                                    "an even number of levels >= 2 and at least 2 trajectories"),
                            "morris")
    specs = scenario.uncertain_inputs()
    names = list(specs)
    terms = close_deal(scenario)

    def evaluate(q: Array) -> Array:
        draws = {name: ppf(specs[name], q[:, j]) for j, name in enumerate(names)}
        return _evaluate(scenario, draws, None, terms)[kpi].to_numpy()

    effects = elementary_effects(evaluate, len(names), trajectories, levels,
                                 stream(seed, "sensitivity:morris"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an input whose effects are all NaN
        table = pd.DataFrame({"input": names, "mu": np.nanmean(effects, 0),
                              "mu_star": np.nanmean(np.abs(effects), 0),
                              "sigma": np.nanstd(effects, 0, ddof=1)})
    return table.sort_values("mu_star", ascending=False, kind="stable").reset_index(drop=True)


def tail_drivers(results: Results, condition: str | NDArray[np.bool_]) -> pd.DataFrame:
    """Inputs inside against outside a region of outcomes, e.g. ``"any_default == 1"`` (a
    ``DataFrame.eval`` expression on ``path_kpis``) or a boolean mask over paths.

    One row per input: mean inside and outside, the difference in outside standard
    deviations, and the two-sample Kolmogorov-Smirnov statistic and p-value; sorted by the KS
    statistic, largest first."""
    if isinstance(condition, str):
        try:
            mask = np.asarray(results.path_kpis.eval(condition), dtype=bool)
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise ScenarioError(Problem("condition", condition, f"not a valid expression on the "
                                        f"path KPIs ({exc})"), "tail_drivers") from None
    else:
        mask = np.asarray(condition, dtype=bool)
    if mask.shape != (results.n_paths,) or mask.all() or not mask.any():
        raise ScenarioError(Problem("condition", f"{int(mask.sum())} of {results.n_paths} paths",
                                    "must select some paths but not all"), "tail_drivers")
    rows = []
    for name in results.inputs.columns.drop("path"):
        x = results.inputs[name].to_numpy(dtype=float)
        inside, outside = x[mask], x[~mask]
        sd = outside.std(ddof=1)
        ks = stats.ks_2samp(inside, outside)
        rows.append({"input": name, "mean_inside": inside.mean(), "mean_outside": outside.mean(),
                     "shift_in_sd": (inside.mean() - outside.mean()) / sd if sd > 0 else 0.0,
                     "ks_statistic": ks.statistic, "ks_pvalue": ks.pvalue})
    table = pd.DataFrame(rows).sort_values("ks_statistic", ascending=False, kind="stable")
    table.attrs["paths_inside"] = int(mask.sum())
    return table.reset_index(drop=True)

# -- allocation optimiser ---------------------------------------------------------------------------


OBJECTIVES = {  # name -> (path KPI, +1 to maximise its mean, -1 to minimise)
    "private_per_public": ("private_per_public", 1.0),
    "public_cost_per_public_gpu_hour": ("public_cost_per_public_gpu_hour_eur", -1.0),
    "equity_irr": ("equity_irr", 1.0),
}
CONSTRAINTS = ("max_default_probability", "min_equity_irr_p50", "max_fund_eur_m")
# a constraint binds when its slack is within this (absolute) or 1 % of its limit, whichever is
# larger: a limit of 0 can bind too
BINDING_TOLERANCE = {"max_default_probability": 0.005, "min_equity_irr_p50": 0.001,
                     "max_fund_eur_m": 1.0, "fund_budget_eur_m": 1.0}


@dataclass(frozen=True)
class AllocationResult:
    """Outcome of ``optimise_allocation``."""

    allocation: pd.Series  # EUR m per factory
    objective: float  # value of the objective at the allocation
    baseline_objective: float  # value under the scenario's own split (scaled to the budget)
    constraints: pd.DataFrame  # per constraint and factory: value, limit, slack, binding
    success: bool
    message: str
    evaluations: int


def optimise_allocation(scenario: Scenario, objective: str = "private_per_public",
                        constraints: Mapping[str, float] | None = None, paths: int = 1_000,
                        seed: int = 0, method: str = "lhs", tol: float = 1e-3,
                        max_evaluations: int = 200, budget_eur_m: float | str | None = "scenario",
                        progress: Callable[[int, int], None] | None = None) -> AllocationResult:
    """Choose the fund amount per factory that maximises (or minimises) ``objective`` on common
    random numbers, subject to ``constraints``:

    * ``max_default_probability``: P(default) of every factory at most this;
    * ``min_equity_irr_p50``: median private equity IRR of every factory at least this;
    * ``max_fund_eur_m``: total allocation at most this (default: ``fund.size_eur_m``).

    ``budget_eur_m``: the total to allocate, EUR m (default ``"scenario"``: the scenario's own
    total), so that the optimiser decides how to split a given budget: "private per public"
    would otherwise be won by spending nothing. ``None`` leaves the total free (up to
    ``max_fund_eur_m``). Amounts stay within each site's public cap. Uses
    ``scipy.optimize.minimize(method="COBYLA")`` from the scenario's own allocation; the
    objective is the mean of a path KPI over ``paths`` paths. A constraint binds when its slack
    is within ``BINDING_TOLERANCE`` (absolute) or 1 % of its limit. progress(evaluations,
    max_evaluations) is called after each new evaluation; an exception there stops the search.
    """
    if objective not in OBJECTIVES:
        raise ScenarioError(Problem("objective", objective, f"choose from {', '.join(OBJECTIVES)}"),
                            "optimise_allocation")
    limits = dict(constraints or {})
    bad = [k for k in limits if k not in CONSTRAINTS]
    if bad:
        raise ScenarioError(Problem("constraints", bad, f"choose from {', '.join(CONSTRAINTS)}"),
                            "optimise_allocation")
    limits.setdefault("max_fund_eur_m", scenario.fund.size_eur_m)
    if max_evaluations < scenario.n_factories + 2:  # COBYLA's minimum
        raise ScenarioError(Problem("max_evaluations", max_evaluations,
                                    f"at least the factories + 2 = {scenario.n_factories + 2}"),
                            "optimise_allocation")
    start_terms = close_deal(scenario)
    caps = site_caps(scenario, start_terms.construction_cost_eur_m)
    if isinstance(budget_eur_m, str) and budget_eur_m == "scenario":
        budget_eur_m = float(start_terms.fund_eur_m.sum())
    if budget_eur_m is not None:
        if not (isinstance(budget_eur_m, int | float) and 0 < budget_eur_m <= caps.sum() + 1e-9):
            raise ScenarioError(Problem("budget_eur_m", budget_eur_m,
                                        f"a total in (0, {caps.sum():,.0f}] EUR m (the sites' caps), "
                                        "'scenario' or None"), "optimise_allocation")
        limits["fund_budget_eur_m"] = float(budget_eur_m)
    kpi, sign = OBJECTIVES[objective]
    names = [f.name for f in scenario.factories]
    cache: dict[tuple[float, ...], tuple[float, dict[str, Array]]] = {}

    def evaluate(share: Array) -> tuple[float, dict[str, Array]]:
        key = tuple(np.round(np.clip(share, 0.0, 1.0), 9))
        if key not in cache:
            amounts = np.asarray(key) * caps
            sc = scenario.with_updates({"fund.allocation": "explicit",
                                        **{f"factories[{i}].fund_eur_m": float(a)
                                           for i, a in enumerate(amounts)}})
            res = simulate(sc, paths=paths, seed=seed, method=method)
            fk = res.factory_kpis.groupby("factory", observed=True)
            values = {
                "max_default_probability": fk["default"].mean().reindex(names).to_numpy(),
                "min_equity_irr_p50": fk["equity_irr"].median().reindex(names).to_numpy(),
                "max_fund_eur_m": np.array([amounts.sum()]),
                "fund_budget_eur_m": np.array([amounts.sum()]),
            }
            cache[key] = (float(np.nanmean(res.path_kpis[kpi])), values)
            if progress:
                progress(len(cache), max_evaluations)
        return cache[key]

    def slack(name: str, values: dict[str, Array]) -> Array:
        v = np.nan_to_num(values[name], nan=-1.0 if name.startswith("min") else 2.0)
        if name == "fund_budget_eur_m":  # an equality: 0 at the budget, negative either side
            return -np.abs(v - limits[name])
        return (limits[name] - v) if name.startswith("max") else (v - limits[name])

    totals = ("max_fund_eur_m", "fund_budget_eur_m")
    cons = []
    for name in limits:
        if name == "fund_budget_eur_m":  # sum of amounts = budget: linear in the shares
            cons.append({"type": "eq", "fun": lambda s: float(np.clip(s, 0.0, 1.0) @ caps
                                                               - limits["fund_budget_eur_m"])})
            continue
        for k in range(len(names) if name not in totals else 1):
            cons.append({"type": "ineq", "fun": lambda s, n=name, k=k: slack(n, evaluate(s)[1])[k]})
    x0 = np.clip(start_terms.fund_eur_m / np.where(caps > 0, caps, 1.0), 0.0, 1.0)
    if budget_eur_m is not None:  # start on the budget: scale the scenario's own split to it
        x0 = np.clip(x0 * budget_eur_m / max(float(x0 @ caps), 1e-9), 0.0, 1.0)
    baseline = evaluate(x0)[0]
    result = optimize.minimize(lambda s: -sign * evaluate(s)[0], x0, method="COBYLA",
                               bounds=[(0.0, 1.0)] * len(names), constraints=cons,
                               options={"rhobeg": 0.25, "maxiter": max_evaluations, "tol": tol})
    share = np.clip(result.x, 0.0, 1.0)
    value, values = evaluate(share)
    rows = []
    for name in limits:
        s = slack(name, values)
        tolerance = max(BINDING_TOLERANCE[name], 0.01 * abs(limits[name]))
        for k, sl in enumerate(s):
            rows.append({"constraint": name, "factory": names[k] if name not in totals else "all",
                         "value": values[name][k], "limit": limits[name], "slack": sl,
                         "binding": bool(abs(sl) <= tolerance)})
    table = pd.DataFrame(rows)
    feasible = bool((table["slack"] >= -np.where(table["constraint"] == "fund_budget_eur_m", 1.0,
                                                  1e-6 * np.maximum(1.0, table["limit"].abs()))).all())
    return AllocationResult(
        allocation=pd.Series(share * caps, index=pd.Index(names, name="factory"), name="fund_eur_m"),
        objective=value, baseline_objective=baseline, constraints=table,
        success=bool(result.success) and feasible,
        message=str(result.message) + ("" if feasible else "; constraints not met"),
        evaluations=len(cache),
    )

