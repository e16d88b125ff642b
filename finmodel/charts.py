"""Altair charts of Results, shared by the app and the HTML report. No finance here."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from finmodel.results import Results

__all__ = ["fan_chart", "histogram"]


def histogram(res: Results, kpi: str, unit: str, *, marker: float | None = None,
              bins: int = 40) -> alt.Chart:
    """Distribution of a per-path KPI over paths; optional vertical marker (e.g. a hurdle)."""
    x = res.path_kpis[kpi].to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    counts, edges = np.histogram(x, bins=bins)
    data = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "paths": counts})
    bars = alt.Chart(data).mark_bar().encode(
        x=alt.X("from:Q", bin="binned", title=f"{kpi} ({unit})"),
        x2="to:Q", y=alt.Y("paths:Q", title="paths"),
    )
    if marker is None:
        return bars.properties(width=420, height=220)
    rule = alt.Chart(pd.DataFrame({"x": [marker]})).mark_rule(color="red").encode(x="x:Q")
    return (bars + rule).properties(width=420, height=220)


def fan_chart(res: Results, line_item: str, unit: str,
              quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> alt.Chart:
    """Per-year quantile bands of a portfolio line item."""
    fan = res.fan(line_item, quantiles)
    fan.columns = [f"p{100 * q:g}" for q in quantiles]
    fan = fan.reset_index()
    lo, q1, mid, q3, hi = fan.columns[1:]
    outer = alt.Chart(fan).mark_area(opacity=0.25).encode(
        x=alt.X("year:O"), y=alt.Y(f"{lo}:Q", title=f"{line_item} ({unit})"), y2=f"{hi}:Q")
    inner = alt.Chart(fan).mark_area(opacity=0.45).encode(x="year:O", y=f"{q1}:Q", y2=f"{q3}:Q")
    line = alt.Chart(fan).mark_line().encode(x="year:O", y=f"{mid}:Q")
    return (outer + inner + line).properties(width=420, height=220)
