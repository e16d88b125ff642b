"""Results: the only thing the surfaces read. Tidy pandas tables plus the line-item arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from finmodel.kpis import FACTORY_KPIS, PATH_KPIS
from finmodel.operations import LINE_ITEMS
from finmodel.scenario.model import Scenario

__all__ = ["Results"]

PORTFOLIO = "portfolio"


@dataclass(frozen=True)
class Results:
    """Outcome of ``base_case`` or ``simulate``.

    path_kpis: one row per path; factory_kpis: one row per (path, factory); inputs: drawn
    inputs, one row per path; lines: line item -> (P_kept, F, T) array in ``LINE_ITEMS`` units
    for the paths in ``kept_paths``.
    """

    scenario: Scenario
    path_kpis: pd.DataFrame
    factory_kpis: pd.DataFrame
    inputs: pd.DataFrame
    lines: dict[str, np.ndarray] = field(repr=False)
    kept_paths: np.ndarray = field(repr=False)
    method: str = "base"
    seed: int | None = None

    @property
    def n_paths(self) -> int:
        return len(self.path_kpis)

    @property
    def years(self) -> np.ndarray:
        return self.scenario.years

    def _kept_index(self, path: int) -> int:
        hits = np.flatnonzero(self.kept_paths == path)
        if hits.size == 0:
            raise KeyError(f"path {path} has no stored line items; kept paths: "
                           f"{self.kept_paths[:10].tolist()}{'...' if self.kept_paths.size > 10 else ''}")
        return int(hits[0])

    def cashflow_table(self, path: int = 0, include_portfolio: bool = True) -> pd.DataFrame:
        """Tidy long table for one path: factory, year, line_item, unit, value.

        With ``include_portfolio`` the sum over factories appears as factory ``"portfolio"``
        (for shares such as ``operating_share`` the portfolio row is the mean).
        """
        k = self._kept_index(path)
        names = [f.name for f in self.scenario.factories]
        years = self.years
        frames = []
        for item, arr in self.lines.items():
            block = arr[k]  # (F, T)
            if include_portfolio:
                agg = block.mean(0) if LINE_ITEMS[item][0] == "share" else block.sum(0)
                block = np.vstack([block, agg])
            labels = [*names, PORTFOLIO] if include_portfolio else names
            frames.append(pd.DataFrame({
                "factory": np.repeat(labels, len(years)),
                "year": np.tile(years, len(labels)),
                "line_item": item,
                "unit": LINE_ITEMS[item][0],
                "value": block.ravel(),
            }))
        out = pd.concat(frames, ignore_index=True)
        out["factory"] = pd.Categorical(out["factory"], categories=[*names, PORTFOLIO])
        out["line_item"] = pd.Categorical(out["line_item"], categories=list(LINE_ITEMS))
        return out

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
        """One row per path KPI: mean, std, standard error of the mean, percentiles, unit."""
        rows = []
        for name, (unit, description) in PATH_KPIS.items():
            x = self.path_kpis[name].to_numpy(dtype=float)
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

    @staticmethod
    def factory_kpi_units() -> dict[str, str]:
        return {k: unit for k, (unit, _) in FACTORY_KPIS.items()}
