"""Altair charts of Results, shared by the app and the HTML report. No finance here."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from finmodel.results import Results

__all__ = ["bar_by_factory", "fan_chart", "histogram", "overlaid_histograms", "tornado_chart"]


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
              quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95),
              rules: dict[str, float] | None = None, y_max: float | None = None) -> alt.Chart:
    """Per-year quantile bands of a portfolio line item; ``rules``: label -> level lines (e.g.
    covenants); ``y_max`` clips the axis (values above are drawn at the top)."""
    fan = res.fan(line_item, quantiles)
    fan.columns = [f"p{100 * q:g}" for q in quantiles]
    fan = fan.reset_index()
    lo, q1, mid, q3, hi = fan.columns[1:]
    scale = alt.Scale(domain=[0, y_max], clamp=True) if y_max is not None else alt.Scale()
    outer = alt.Chart(fan).mark_area(opacity=0.25).encode(
        x=alt.X("year:O"), y=alt.Y(f"{lo}:Q", title=f"{line_item} ({unit})", scale=scale),
        y2=f"{hi}:Q")
    inner = alt.Chart(fan).mark_area(opacity=0.45).encode(x="year:O", y=f"{q1}:Q", y2=f"{q3}:Q")
    line = alt.Chart(fan).mark_line().encode(x="year:O", y=f"{mid}:Q")
    chart = outer + inner + line
    if rules:
        levels = pd.DataFrame({"rule": list(rules), "level": list(rules.values())})
        chart = chart + alt.Chart(levels).mark_rule(strokeDash=[4, 3]).encode(
            y="level:Q", color=alt.Color("rule:N", title=None))
    return chart.properties(width=420, height=220)


def bar_by_factory(table: pd.DataFrame, column: str, title: str, fmt: str = ".1%") -> alt.Chart:
    """One bar per factory of ``table[column]`` (index: factory)."""
    data = table[[column]].reset_index()
    data.columns = ["factory", "value"]
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("value:Q", title=title, axis=alt.Axis(format=fmt)),
        y=alt.Y("factory:N", sort=None, title=None),
        tooltip=["factory", alt.Tooltip("value:Q", format=fmt)],
    ).properties(width=420, height=max(160, 30 * len(data)))


def tornado_chart(table: pd.DataFrame, kpi: str, top: int = 12) -> alt.Chart:
    """Low and high swings of the largest ``top`` inputs around the central KPI."""
    head = table.head(top)
    centre = float(head["kpi_at_centre"].iloc[0]) if len(head) else 0.0
    long = pd.concat([
        pd.DataFrame({"input": head["input"], "end": head["kpi_at_low"], "swing": "input at p10"}),
        pd.DataFrame({"input": head["input"], "end": head["kpi_at_high"], "swing": "input at p90"}),
    ])
    long["centre"] = centre
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y("input:N", sort=list(head["input"]), title=None),
        x=alt.X("centre:Q", title=kpi), x2="end:Q", color=alt.Color("swing:N", title=None),
    ).properties(width=420, height=max(120, 22 * len(head)))


def overlaid_histograms(series: dict[str, pd.Series], title: str, bins: int = 40) -> alt.Chart:
    """Distributions of one KPI in several scenarios, overlaid (same bins)."""
    values = {k: v.to_numpy(dtype=float) for k, v in series.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
    edges = np.histogram_bin_edges(finite, bins=bins) if finite.size else np.linspace(0, 1, bins + 1)
    frames = []
    for name, v in values.items():
        counts, _ = np.histogram(v[np.isfinite(v)], bins=edges)
        frames.append(pd.DataFrame({"scenario": name, "from": edges[:-1], "to": edges[1:],
                                    "share of paths": counts / max(v.size, 1)}))
    data = pd.concat(frames, ignore_index=True)
    return alt.Chart(data).mark_bar(opacity=0.5).encode(
        x=alt.X("from:Q", bin="binned", title=title), x2="to:Q",
        y=alt.Y("share of paths:Q", stack=None), color="scenario:N",
    ).properties(width=640, height=260)
