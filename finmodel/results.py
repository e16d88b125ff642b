"""Results: the only thing the surfaces read. Tidy pandas tables plus the line-item arrays."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from finmodel.drivers import central_drivers
from finmodel.engine import ITEMS
from finmodel.errors import Problem, ScenarioError
from finmodel.financing import Terms
from finmodel.kpis import FACTORY_KPIS, PATH_KPIS, TRANCHE_KPIS
from finmodel.scenario.model import Scenario

__all__ = ["SELECTIONS", "Results", "select_paths"]

SELECTIONS = ("base", "p50", "p10", "p90", "worst")  # named paths of a simulation

PORTFOLIO = "portfolio"
# portfolio line items kept per path for fan charts (EUR m unless LINE_ITEMS says otherwise)
FAN_ITEMS = ("revenue", "ebitda", "energy_cost", "tax", "capex", "cfads", "unlevered_fcf",
             "gpu_hours_m", "senior_debt_service", "debt_balance", "equity_flow", "fund_flow",
             "covenant_breach")
RATIO_FANS = {"dscr": ("cfads", "senior_debt_service")}  # portfolio ratio = sum / sum
RISK_KPIS = ("eib_loss_eur_m", "fund_loss_eur_m", "public_cost_eur_m")
# credit event -> (factory KPI giving its year, flag KPI that selects it or None)
EVENTS = {"default": ("default_year", None), "payment_default": ("default_year", "payment_default"),
          "covenant_breach": ("first_breach_year", None), "eib_default": ("default_year", "eib_default"),
          "eib_loss": ("default_year", "eib_loss")}


@dataclass(frozen=True)
class Results:
    """Outcome of ``base_case`` or ``simulate``.

    path_kpis: one row per path; factory_kpis: one row per (path, factory); inputs: drawn
    inputs, one row per path; lines: line item -> (P_kept, F, T) array in ``LINE_ITEMS`` units
    for the paths in ``kept_paths``.
    """

    scenario: Scenario
    path_kpis: pd.DataFrame
    factory_kpis: pd.DataFrame | None
    inputs: pd.DataFrame
    lines: dict[str, np.ndarray] = field(repr=False)
    kept_paths: np.ndarray = field(repr=False)
    method: str = "base"
    seed: int | None = None
    fan_data: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # recompute(start, stop, items) -> item -> (stop - start, F, T): simulated paths' line items
    recompute: Callable[..., dict[str, np.ndarray]] | None = field(default=None, repr=False)
    tranche_kpis: pd.DataFrame | None = None
    terms: Terms | None = field(default=None, repr=False)
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_paths(self) -> int:
        return len(self.path_kpis)

    @property
    def years(self) -> np.ndarray:
        return self.scenario.years

    def path_lines(self, path: int) -> dict[str, np.ndarray]:
        """Line items (F, T) of one path: stored, or recomputed exactly from its draws."""
        hits = np.flatnonzero(self.kept_paths == path)
        if hits.size:
            return {item: arr[int(hits[0])] for item, arr in self.lines.items()}
        if self.recompute is None or not 0 <= path < self.n_paths:
            raise KeyError(f"path {path} is not in these results (paths 0..{self.n_paths - 1})")
        return {item: arr[0] for item, arr in self.recompute(int(path), int(path) + 1).items()}

    def line_items(self, items: Sequence[str] | None = None, start: int = 0, stop: int | None = None,
                   memory_budget_bytes: int | None = None) -> dict[str, np.ndarray]:
        """The full cube: line item -> (stop - start, F, T) for paths start..stop (default: all),
        in ``LINE_ITEMS`` units, recomputed exactly from the paths' draws chunk by chunk (about
        10 us per path and factory). ``items``: which (default: all). Raises ``ScenarioError``
        before any work if the cube would not fit in ``memory_budget_bytes`` (default: 90 % of
        the memory available now)."""
        from finmodel.simulation import memory_budget

        stop = self.n_paths if stop is None else stop
        items = list(ITEMS) if items is None else list(items)
        unknown = [i for i in items if i not in ITEMS]
        problems = [Problem("items", unknown, f"choose from {', '.join(ITEMS)}")] if unknown else []
        if not 0 <= start < stop <= self.n_paths:
            problems.append(Problem("start, stop", (start, stop), f"need 0 <= start < stop <= "
                                    f"{self.n_paths}"))
        if problems:
            raise ScenarioError(problems, "line_items")
        need = 8 * (stop - start) * self.scenario.n_factories * len(self.years) * len(items)
        budget = memory_budget(memory_budget_bytes)
        if budget is not None and need > budget:
            raise ScenarioError(Problem("start, stop", (start, stop), f"the cube needs "
                                        f"{need / 2**30:,.2f} GB, more than the memory budget of "
                                        f"{budget / 2**30:,.2f} GB: ask for fewer paths or items"),
                                "line_items")
        if self.recompute is None:  # a base case: its one path is stored
            return {item: self.lines[item][start:stop] for item in items}
        return self.recompute(start, stop, items)

    def to_xarray(self, lines: Sequence[str] = (), start: int = 0, stop: int | None = None,
                  memory_budget_bytes: int | None = None):
        """The results of paths start..stop (default: all) as a labelled ``xarray.Dataset``
        (see ``finmodel.store.to_xarray``): KPIs by (path,), (path, factory) and (path,
        tranche), drawn inputs, and the line item cubes (path, factory, year) of ``lines``;
        units and the run in attrs."""
        from finmodel.store import to_xarray

        return to_xarray(self, lines, start, stop, memory_budget_bytes)

    def save(self, folder) -> None:
        """Write the results to a folder of parquet files (atomically; see
        ``finmodel.store``). ``Results.load(folder)`` gives them back exactly."""
        from finmodel.store import save_results

        save_results(self, folder)

    @staticmethod
    def load(folder) -> Results:
        """Results written by ``save`` to ``folder``: every table equal, and a simulation's paths
        still recomputed exactly from their draws (``path_lines``, ``line_items``)."""
        from finmodel.store import load_results

        return load_results(folder)

    def fan(self, line_item: str, quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
        """Per-year quantiles over paths of a portfolio line item: index year, one column per
        quantile (for fan charts). Items: ``FAN_ITEMS`` and ``dscr`` (portfolio CFADS / senior
        debt service; NaN in years without debt service)."""
        if line_item in RATIO_FANS:
            num, den = (self._fan_sums(item) for item in RATIO_FANS[line_item])
            with np.errstate(divide="ignore", invalid="ignore"):
                data = np.where(den > 1e-9, num / den, np.nan)
        else:
            data = self._fan_sums(line_item)
        q = np.asarray(quantiles, dtype=float)
        if q.ndim != 1 or np.any((q < 0) | (q > 1)):
            raise ValueError(f"quantiles must be numbers in [0, 1]; got {list(quantiles)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN years
            values = np.nanquantile(data, q, axis=0)  # (Q, T)
        return pd.DataFrame(values.T, index=pd.Index(self.years, name="year"), columns=list(q))

    def _fan_sums(self, line_item: str) -> np.ndarray:
        data = self.fan_data.get(line_item)
        if data is None and self.lines and line_item in self.lines:
            data = self.lines[line_item].sum(axis=1)
        if data is None:
            raise KeyError(f"no fan data for {line_item!r}; available: "
                           f"{', '.join([*FAN_ITEMS, *RATIO_FANS])}")
        return data

    def event_curve(self, event: str = "default") -> pd.DataFrame:
        """Probability over paths that a credit event has happened by the end of each year:
        index year, one column per factory and ``"any site"`` (the portfolio). Events:
        ``EVENTS`` (a default, a payment default, a covenant breach, a default while owing the
        EIB, an EIB loss)."""
        if event not in EVENTS:
            raise KeyError(f"no event {event!r}; choose from {', '.join(EVENTS)}")
        k = self.factory_kpis
        year_col, flag = EVENTS[event]
        when = k[year_col].to_numpy(dtype=float)
        if flag is not None:
            when = np.where(k[flag].to_numpy() > 0, when, np.nan)
        names = [f.name for f in self.scenario.factories]
        by_site = pd.DataFrame({"path": k["path"].to_numpy(), "factory": k["factory"].astype(str),
                                "when": when}).pivot(index="path", columns="factory", values="when")
        by_site = by_site[names]
        years = self.years
        with np.errstate(invalid="ignore"):
            happened = by_site.to_numpy()[None, :, :] <= years[:, None, None]  # (T, P, F)
        out = pd.DataFrame(happened.mean(1), index=pd.Index(years, name="year"), columns=names)
        out["any site"] = happened.any(2).mean(1)
        return out

    def covenant_curve(self) -> pd.DataFrame:
        """Per year over the paths with fan data: ``P(any site)``, the probability that at least
        one site's DSCR test falls below ``eib.default_dscr`` that year (cured or not), and
        ``share of sites``, the mean share of the sites that do."""
        count = self._fan_sums("covenant_breach")  # (paths, T) sites in breach
        return pd.DataFrame({"P(any site)": (count > 0.5).mean(0),
                             "share of sites": count.mean(0) / self.scenario.n_factories},
                            index=pd.Index(self.years, name="year"))

    def cashflow_table(self, path: int = 0, include_portfolio: bool = True) -> pd.DataFrame:
        """Tidy long table for one path: factory, year, line_item, unit, value.

        With ``include_portfolio`` the portfolio appears as factory ``"portfolio"``: the sum over
        factories, a ratio of sums for ratios (DSCR = portfolio CFADS / portfolio senior debt
        service) and the GPU-weighted mean for shares such as ``operating_share``.
        """
        lines = self.path_lines(path)
        names = [f.name for f in self.scenario.factories]
        years = self.years
        frames = []
        for item, block in lines.items():  # (F, T)
            if include_portfolio:
                block = np.vstack([block, self._portfolio_row(item, block, lines)])
            labels = [*names, PORTFOLIO] if include_portfolio else names
            frames.append(pd.DataFrame({
                "factory": np.repeat(labels, len(years)),
                "year": np.tile(years, len(labels)),
                "line_item": item,
                "unit": ITEMS[item][0],
                "value": block.ravel(),
            }))
        out = pd.concat(frames, ignore_index=True)
        out["factory"] = pd.Categorical(out["factory"], categories=[*names, PORTFOLIO])
        out["line_item"] = pd.Categorical(out["line_item"], categories=list(ITEMS))
        return out

    def _portfolio_row(self, item: str, block: np.ndarray, lines: dict[str, np.ndarray]) -> np.ndarray:
        """(T,) the portfolio's value of a line item from its factories' block (F, T)."""
        if item in RATIO_FANS:
            num, den = (lines[part].sum(0) for part in RATIO_FANS[item])
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(den > 1e-9, num / den, np.nan)
        if ITEMS[item][0] == "share":
            gpus = central_drivers(self.scenario).gpus[0]  # (F,) each site's GPUs at central values
            return gpus @ block / gpus.sum()
        return block.sum(0)

    def cashflow_wide(self, path: int = 0, factory: str = PORTFOLIO) -> pd.DataFrame:
        """One factory's (or the portfolio's) line items as rows, years as columns."""
        table = self.cashflow_table(path)
        if factory not in table["factory"].cat.categories:
            raise KeyError(f"no factory {factory!r}; choose from "
                           f"{list(table['factory'].cat.categories)}")
        sub = table[table["factory"] == factory]
        wide = sub.pivot(index=["line_item", "unit"], columns="year", values="value")
        return wide.reset_index("unit")

    def summary(self) -> pd.DataFrame:
        """One row per path KPI: mean, std, standard error of the mean, percentiles, unit.

        For flags (unit ``flag``) the mean is the probability over paths. ``finite_share``
        is the share of paths where the KPI exists (e.g. an IRR)."""
        if "summary" not in self._memo:  # results are immutable; the table is computed once
            self._memo["summary"] = _describe(self.path_kpis, PATH_KPIS)
        return self._memo["summary"].copy()

    def factory_summary(self) -> pd.DataFrame:
        """Per factory and KPI: mean, std, percentiles (rows: factory, kpi)."""
        if self.factory_kpis is None:
            raise KeyError("these results were run with factory_kpis=False")
        frames = {name: _describe(group, FACTORY_KPIS)
                  for name, group in self.factory_kpis.groupby("factory", observed=True)}
        return pd.concat(frames, names=["factory", "kpi"])

    def tranche_summary(self) -> pd.DataFrame:
        """Per fund tranche and KPI: mean (for ``loss``: probability of loss), percentiles."""
        if self.tranche_kpis is None:
            raise KeyError("no tranche results")
        frames = {name: _describe(group, TRANCHE_KPIS)
                  for name, group in self.tranche_kpis.groupby("tranche", observed=True)}
        return pd.concat(frames, names=["tranche", "kpi"])

    def risk(self, levels: Sequence[float] = (0.95, 0.99)) -> pd.DataFrame:
        """Expected value, VaR and CVaR (mean beyond the VaR) of the loss KPIs over paths, EUR m."""
        rows = {}
        for name in RISK_KPIS:
            x = np.sort(self.path_kpis[name].to_numpy(dtype=float))
            row = {"expected": x.mean()}
            for level in levels:
                var = float(np.quantile(x, level))
                row[f"var_{level:g}"] = var
                row[f"cvar_{level:g}"] = float(x[x >= var].mean())
            rows[name] = row
        return pd.DataFrame(rows).T.rename_axis("kpi")


def _describe(table: pd.DataFrame, kpis: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """mean, std, sem, percentiles and the finite share of each KPI column (NaNs left out)."""
    rows = []
    for name, (unit, description) in kpis.items():
        x = table[name].to_numpy(dtype=float)
        ok = x[np.isfinite(x)]
        n = ok.size
        q = np.percentile(ok, [5, 10, 50, 90, 95]) if n else [np.nan] * 5
        std = ok.std(ddof=1) if n > 1 else (0.0 if n == 1 else np.nan)
        rows.append({
            "kpi": name, "unit": unit, "mean": ok.mean() if n else np.nan, "std": std,
            "sem": std / np.sqrt(n) if n > 1 else np.nan,
            "p5": q[0], "p10": q[1], "p50": q[2], "p90": q[3], "p95": q[4],
            "finite_share": n / max(x.size, 1), "description": description,
        })
    return pd.DataFrame(rows).set_index("kpi")


def select_paths(results: Results, selected: Sequence[str]) -> dict[str, tuple[int, str]]:
    """selection -> (path, why). ``p50``/``p10``/``p90``: the path whose portfolio equity IRR is
    nearest that percentile; ``worst``: the largest EIB loss (lowest equity IRR if none);
    ``base``: the central path of ``base_case``."""
    bad = [s for s in selected if s not in SELECTIONS]
    if bad or not selected:
        raise ScenarioError(Problem("selected", list(selected), f"choose from {', '.join(SELECTIONS)}"),
                            "select_paths")
    out: dict[str, tuple[int, str]] = {}
    if results.method == "base":
        return {s: (-1, "base case: every input at its central value") for s in selected}
    kpis = results.path_kpis
    irr = kpis["equity_irr"].to_numpy(dtype=float)
    finite = np.isfinite(irr)
    for s in selected:
        if s == "base":
            out[s] = (-1, "base case: every input at its central value")
        elif s == "worst":
            loss = kpis["eib_loss_eur_m"].to_numpy(dtype=float)
            if loss.max() > 0:
                p = int(np.argmax(loss))
                out[s] = (p, f"largest EIB loss: EUR {loss[p]:,.1f}m")
            else:
                p = int(np.nanargmin(np.where(finite, irr, np.inf)))
                out[s] = (p, f"no EIB loss on any path; lowest equity IRR {irr[p]:.2%}")
        else:
            q = float(s[1:]) / 100
            target = float(np.quantile(irr[finite], q))
            p = int(np.nanargmin(np.where(finite, np.abs(irr - target), np.inf)))
            out[s] = (p, f"portfolio equity IRR nearest its {s.upper()} of {target:.2%}")
    return out
