"""Altair charts of Results, shared by the app and the HTML report. No finance here."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from finmodel.results import Results

__all__ = ["bar_by_factory", "compare_chart", "dscr_by_site", "fan_chart", "histogram", "probability_by_year",
           "tornado_chart"]

PERCENT_UNITS = ("1/yr", "share", "flag")  # KPIs shown on percent axes


def histogram(res: Results, kpi: str, unit: str, *, marker: float | None = None,
              marker_label: str | None = None, title: str | None = None, bins: int = 40) -> alt.Chart:
    """Distribution of a per-path KPI over paths (percent axis for rates and shares); optional
    labelled vertical marker (e.g. a hurdle)."""
    x = res.path_kpis[kpi].to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    counts, edges = np.histogram(x, bins=bins)
    data = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "paths": counts})
    axis = alt.Axis(format="%") if unit in PERCENT_UNITS else alt.Axis()
    bars = alt.Chart(data).mark_bar().encode(
        x=alt.X("from:Q", bin="binned", title=title or f"{kpi} ({unit})", axis=axis),
        x2="to:Q", y=alt.Y("paths:Q", title="paths"),
    )
    if marker is None:
        return bars.properties(width=420, height=220)
    label = marker_label or f"{marker:g}"
    mark = pd.DataFrame({"x": [marker], "label": [label]})
    # a dark orange: at least 3:1 contrast on the light and the dark theme's background
    rule = alt.Chart(mark).mark_rule(color=MARKER, strokeWidth=2).encode(x="x:Q")
    text = alt.Chart(mark).mark_text(color=MARKER, align="left", dx=4, dy=-4, baseline="top",
                                     fontWeight="bold").encode(x="x:Q", y=alt.value(0), text="label:N")
    return (bars + rule + text).properties(width=420, height=220)


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
        # every factory labelled: no label dropped for overlap, none cut short
        y=alt.Y("factory:N", sort=None, title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=260)),
        tooltip=["factory", alt.Tooltip("value:Q", format=fmt)],
    ).properties(width=420, height=max(160, 30 * len(data)))


MARKER = "#d95f02"  # a labelled level (a hurdle): 3.8:1 on white, 5.0:1 on the dark theme
COVENANT_COLOURS = ("#c0392b", MARKER, "#54a24b")  # each >= 3:1 on both themes' backgrounds


def dscr_by_site(table: pd.DataFrame, covenants: dict[str, float]) -> alt.Chart:
    """Each site's minimum DSCR over the paths: a P10-P90 bar and a P50 tick per site (table
    columns ``factory``, ``p10``, ``p50``, ``p90``), with labelled vertical lines at the
    covenant levels (``covenants``: label -> DSCR), in colours that read on light and dark
    backgrounds."""
    sites = list(table["factory"])
    y = alt.Y("factory:N", sort=sites, title=None, axis=alt.Axis(labelLimit=260, labelOverlap=False))
    top = float(np.nanmax(table["p90"].to_numpy(dtype=float), initial=max(covenants.values()))) * 1.08
    bottom = min(0.0, float(np.nanmin(table["p10"].to_numpy(dtype=float), initial=0.0)) * 1.08)
    x = alt.X("p10:Q", title="minimum DSCR over the years the site serves its debt",
              scale=alt.Scale(domain=[bottom, top], clamp=True))
    band = alt.Chart(table).mark_bar(height=14, opacity=0.45, color="#4c78a8").encode(
        y=y, x=x, x2="p90:Q",
        tooltip=["factory", alt.Tooltip("p10:Q", format=".2f"), alt.Tooltip("p50:Q", format=".2f"),
                 alt.Tooltip("p90:Q", format=".2f")])
    tick = alt.Chart(table).mark_tick(thickness=3, size=20, color="#4c78a8").encode(y=y, x="p50:Q")
    rules = pd.DataFrame({"level": list(covenants.values()), "label": list(covenants)})
    colours = alt.Color("label:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=0),
                        scale=alt.Scale(domain=list(covenants),
                                        range=list(COVENANT_COLOURS[:len(covenants)])))
    rule = alt.Chart(rules).mark_rule(strokeWidth=2, strokeDash=[6, 3]).encode(
        x="level:Q", color=colours, tooltip=["label:N", alt.Tooltip("level:Q", format=".2f")])
    return (band + tick + rule).properties(width=520, height=max(120, 30 * len(sites)))


def probability_by_year(curves: pd.DataFrame, title: str) -> alt.Chart:
    """Lines of probabilities by year (index: year; one column per line), percent axis, one
    legend entry per line."""
    data = curves.reset_index().melt(id_vars=curves.index.name or "index", var_name="line",
                                     value_name="probability")
    year = curves.index.name or "index"
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X(f"{year}:O", title="year"),
        y=alt.Y("probability:Q", title=title, axis=alt.Axis(format="%")),
        color=alt.Color("line:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=0,
                                                                  columns=1)),
        tooltip=[f"{year}:O", "line:N", alt.Tooltip("probability:Q", format=".1%")],
    ).properties(width=420, height=220)


def tornado_chart(table: pd.DataFrame, kpi: str, top: int = 12, fmt: str | None = None) -> alt.Chart:
    """Low and high swings of the largest ``top`` inputs around the central KPI; the axis spans
    the swings (not from zero); ``fmt``: a d3 format for the KPI (e.g. "%")."""
    head = table.head(top)
    centre = float(head["kpi_at_centre"].iloc[0]) if len(head) else 0.0
    long = pd.concat([
        pd.DataFrame({"input": head["input"], "end": head["kpi_at_low"], "swing": "input at p10"}),
        pd.DataFrame({"input": head["input"], "end": head["kpi_at_high"], "swing": "input at p90"}),
    ])
    long["centre"] = centre
    ends = np.concatenate([long["end"].to_numpy(dtype=float), [centre]])
    ends = ends[np.isfinite(ends)]
    pad = 0.05 * (np.ptp(ends) or abs(centre) or 1.0)
    scale = alt.Scale(domain=[float(ends.min() - pad), float(ends.max() + pad)], zero=False)
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y("input:N", sort=list(head["input"]), title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=320)),
        x=alt.X("centre:Q", title=f"{kpi} (bars swing around the central case)", scale=scale,
                axis=alt.Axis(format=fmt) if fmt else alt.Axis()),
        x2="end:Q", color=alt.Color("swing:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["input:N", "swing:N", alt.Tooltip("end:Q", format=fmt or ",.3g")],
    ).properties(width=420, height=max(120, 22 * len(head)))


def compare_chart(series: dict[str, pd.Series], title: str, unit: str, colours: dict[str, str],
                  bins: int = 40) -> alt.Chart:
    """One KPI in several scenarios, each in its own fixed colour: for a yes/no outcome (a
    flag) a bar of its probability per scenario; otherwise the exceedance curve, P(KPI > x)."""
    domain = list(series)
    colour = alt.Color("scenario:N", scale=alt.Scale(domain=domain, range=[colours[n] for n in domain]),
                       legend=alt.Legend(orient="bottom", title=None))
    if unit == "flag":
        data = pd.DataFrame({"scenario": domain, "probability": [float(np.nanmean(v)) for v in
                                                                 series.values()]})
        return alt.Chart(data).mark_bar().encode(
            x=alt.X("probability:Q", title=f"P({title})", axis=alt.Axis(format="%")),
            y=alt.Y("scenario:N", sort=domain, title=None, axis=alt.Axis(labelLimit=260)),
            color=colour, tooltip=["scenario", alt.Tooltip("probability:Q", format=".1%")],
        ).properties(width=640, height=max(120, 32 * len(domain)))
    frames = []
    for name, v in series.items():
        x = np.sort(v.to_numpy(dtype=float)[np.isfinite(v.to_numpy(dtype=float))])
        if not x.size:
            continue
        keep = np.unique(np.linspace(0, x.size - 1, min(x.size, 200)).astype(int))
        frames.append(pd.DataFrame({"scenario": name, "value": x[keep],
                                    "P(greater)": 1.0 - (keep + 1) / x.size}))
    data = pd.concat(frames, ignore_index=True)
    axis = alt.Axis(format="%") if unit in PERCENT_UNITS else alt.Axis()
    return alt.Chart(data).mark_line().encode(
        x=alt.X("value:Q", title=title, axis=axis),
        y=alt.Y("P(greater):Q", title="share of paths above", axis=alt.Axis(format="%")),
        color=colour,
    ).properties(width=640, height=260)
