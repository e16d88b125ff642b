"""Write a run's outputs to a folder: CSV tables, the scenario, a short HTML report. Atomic."""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from pathlib import Path

import altair as alt
import pandas as pd

from finmodel.charts import fan_chart, histogram
from finmodel.kpis import PATH_KPIS
from finmodel.results import FAN_ITEMS, Results

__all__ = ["write_run"]


def _fan_table(res: Results) -> pd.DataFrame:
    frames = []
    for item in (*FAN_ITEMS, "dscr"):
        fan = res.fan(item, (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95))
        long = fan.reset_index().melt(id_vars="year", var_name="quantile", value_name="value")
        long.insert(0, "line_item", item)
        frames.append(long)
    return pd.concat(frames, ignore_index=True)


def _html(res: Results, summary: pd.DataFrame) -> str:
    sc = res.scenario
    charts = alt.vconcat(
        histogram(res, "equity_irr", PATH_KPIS["equity_irr"][0],
                  marker=sc.private.equity_hurdle_irr).properties(
                      title="Private equity IRR across the portfolio (line: hurdle)"),
        fan_chart(res, "cfads", "EUR m").properties(title="Portfolio CFADS by year (5-95%)"),
        fan_chart(res, "dscr", "ratio").properties(title="Portfolio DSCR by year (5-95%)"),
    )
    risk = res.risk().to_html(float_format=lambda x: f"{x:,.1f}")
    table = summary[["unit", "mean", "p10", "p50", "p90"]].to_html(float_format=lambda x: f"{x:,.4g}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(sc.name)}</title>"
        "</head><body style='font-family:sans-serif'>"
        f"<h1>{html.escape(sc.name)}</h1><p>{html.escape(sc.description)}</p>"
        f"<p>{res.n_paths:,} paths, method {html.escape(res.method)}, seed {res.seed}</p>"
        f"{table}<h2>Loss risk, EUR m</h2>{risk}{charts.to_html(fullhtml=False)}</body></html>"
    )


def write_run(res: Results, out_dir: str | os.PathLike[str]) -> Path:
    """Write summary.csv, risk.csv, path_kpis.csv, factory_kpis.csv, tranche_kpis.csv,
    inputs.csv, fan.csv, scenario.toml and report.html into ``out_dir``. The folder is built
    beside the target and swapped in, so a reader sees the old complete folder or the new one,
    never a half-written one."""
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        summary = res.summary()
        summary.to_csv(tmp / "summary.csv")
        res.risk().to_csv(tmp / "risk.csv")
        res.path_kpis.to_csv(tmp / "path_kpis.csv", index=False)
        if res.tranche_kpis is not None:
            res.tranche_kpis.to_csv(tmp / "tranche_kpis.csv", index=False)
        if res.factory_kpis is not None:
            res.factory_kpis.to_csv(tmp / "factory_kpis.csv", index=False)
        res.inputs.to_csv(tmp / "inputs.csv", index=False)
        _fan_table(res).to_csv(tmp / "fan.csv", index=False)
        (tmp / "scenario.toml").write_text(res.scenario.to_toml(), encoding="utf-8")
        (tmp / "report.html").write_text(_html(res, summary), encoding="utf-8")
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
