"""The calibration report: key outputs of a scenario's simulation next to public comparables.

``calibration_table(sc)`` gives, for each key output of the gigafactory sites (EBITDA margin,
revenue per GPU-hour, opex per MW, capex per MW and per GPU, utilisation, price erosion, debt
pricing), the model's P10 / P50 / P90 over paths and sites, the comparables with their sources
and dates, and a one-line judgement: where the model's median lies against the comparables and
why. ``calibration_markdown`` renders it as ``docs/calibration.md`` (``finmodel calibration``);
a test keeps that file in sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from finmodel.results import Results
from finmodel.scenario.model import Scenario
from finmodel.simulation import simulate

__all__ = ["COMPARABLES", "METRICS", "calibration_markdown", "calibration_table"]

Array = np.ndarray


@dataclass(frozen=True)
class Comparable:
    """A public figure: ``value`` in ``unit`` (USD figures are converted to EUR at the
    scenario's central exchange rate for the judgement), what it is, its source tag
    (``assumptions/SOURCES.md``) and date; ``estimate`` where it is derived or an estimate
    rather than a reported figure."""

    metric: str
    value: float
    unit: str  # "share", "1/yr", "USD", "USD m per MW", "USD m per MW-year", "USD per GPU"
    what: str
    source: str
    date: str
    estimate: bool = False


COMPARABLES: tuple[Comparable, ...] = (
    Comparable("ebitda_margin", 0.61, "share", "CoreWeave adjusted EBITDA margin", "S58", "Q3 2025"),
    Comparable("ebitda_margin", -65 / 530, "share", "Nebius adjusted EBITDA / revenue", "S63", "2025"),
    Comparable("revenue_per_gpu_hour", 1.70, "USD", "H100 one-year contract", "S32", "Oct 2025"),
    Comparable("revenue_per_gpu_hour", 2.65, "USD", "H100 one-year contract (SemiAnalysis)", "S66",
               "Jun 2026"),
    Comparable("revenue_per_gpu_hour", 2.95, "USD", "H100 on-demand median", "S33", "2025-26"),
    Comparable("revenue_per_gpu_hour", 4.5, "USD", "B200 on demand, low end", "S34", "Mar 2026"),
    Comparable("revenue_per_gpu_hour", 6.0, "USD", "B200 on demand, high end", "S34", "Mar 2026"),
    Comparable("other_opex_per_mw_year", 0.3, "USD m per MW-year",
               "non-energy opex, Epoch 1 GW case (USD 0.3B a year)", "S23", "May 2026", True),
    Comparable("energy_share_of_opex", 0.6 / 0.9, "share",
               "energy in opex, Epoch 1 GW AI case (USD 0.6B of 0.9B)", "S23", "May 2026", True),
    Comparable("energy_share_of_opex", 0.20, "share",
               "electricity in opex of non-AI data centres (15-25%)", "S71", "2024"),
    Comparable("capex_per_mw", 35.0, "USD m per MW", "all-in capex per MW (Bernstein, USD 35B/GW)",
               "S21", "Oct 2025", True),
    Comparable("capex_per_mw", 38.0, "USD m per MW", "all-in capex per MW (Epoch, USD 38B/GW)", "S23",
               "May 2026", True),
    Comparable("capex_per_mw", 55.0, "USD m per MW", "all-in capex per MW (Nvidia, USD 50-60B/GW)",
               "S22", "2025", True),
    Comparable("capex_per_gpu", 82_000.0, "USD per GPU",
               "all-in per GPU, NVL72 rack USD 5.9M / 72", "S21", "Oct 2025", True),
    Comparable("utilisation_steady", 0.85, "share", "steady GPU utilisation", "S38", "2026"),
    Comparable("price_erosion", 1 - 1 / 1.40, "1/yr",
               "price-performance doubling every 2.07 years (1 - 1/1.40)", "S35", "2022", True),
    Comparable("price_erosion", 1 - (2 / 8) ** (1 / 3), "1/yr",
               "H100 from USD 8 (2023) to 2 (2025-26) a GPU-hour, per year over three years",
               "S32", "2026", True),
    Comparable("hardware_loan_spread", 0.0225, "1/yr", "CoreWeave DDTL 4.0, one investment-grade "
               "customer: SOFR + 2.25%", "S56", "Mar 2026"),
    Comparable("hardware_loan_spread", 0.045, "1/yr", "CoreWeave DDTL 5.0, non-investment-grade "
               "customers: SOFR + 4.50%", "S56", "May 2026"),
    Comparable("hardware_loan_spread", 0.0625, "1/yr", "CoreWeave DDTL 2.0, investment-grade "
               "customers: SOFR + 6.00-6.50%", "S54", "2024"),
    Comparable("senior_spread", 0.0175, "1/yr", "data-centre debt, low end", "S14", "2025"),
    Comparable("senior_spread", 0.035, "1/yr", "data-centre debt, high end", "S14", "2025"),
)


@dataclass(frozen=True)
class Metric:
    label: str
    unit: str
    values: Callable[[Results, dict[str, Array]], Array]  # (results, site cube) -> values
    note: str  # why the model sits where it does against the comparables


def _sum(cube: dict[str, Array], item: str) -> Array:
    return cube[item].sum(-1)


def _input(res: Results, path: str) -> Array:
    """A drawn input per path (P, 1), or its fixed value."""
    if path in res.inputs:
        return res.inputs[path].to_numpy(dtype=float)[:, None]
    from finmodel.scenario.fields import resolve

    return np.full((res.n_paths, 1), float(resolve(res.scenario, path).central))


def _drawn(path: str) -> Callable[[Results, dict[str, Array]], Array]:
    """A drawn input's values for each path and site."""
    return lambda res, cube: np.broadcast_to(_input(res, path), cube["gpus"].shape)


METRICS: dict[str, Metric] = {
    "ebitda_margin": Metric(
        "EBITDA margin over the horizon", "share",
        lambda res, cube: _sum(cube, "ebitda") / _sum(cube, "revenue"),
        "an owner-operator's EBITDA carries no data-centre rent, sales or R&D, which listed GPU "
        "clouds (leasing most of their sites, growing fast) do"),
    "revenue_per_gpu_hour": Metric(
        "revenue per GPU-hour used, horizon average", "EUR",
        lambda res, cube: _sum(cube, "revenue") / _sum(cube, "gpu_hours_m"),
        "the average runs over each fleet's life, from a new generation's launch price down with "
        "erosion, and take-or-pay contracts are paid for idle hours too"),
    "other_opex_per_mw_year": Metric(
        "non-energy opex per MW of facility power and operating year", "EUR m per MW-year",
        lambda res, cube: _sum(cube, "other_opex") / (
            cube["facility_mw"] * np.maximum(_sum(cube, "operating_share"), 1e-9)),
        "charged as a share of the capex in service (facility and GPU fleet at cost), the split "
        "of the source's 0.8% of capex; per MW it follows the capex per MW"),
    "energy_share_of_opex": Metric(
        "energy as a share of opex", "share",
        lambda res, cube: _sum(cube, "energy_cost") / _sum(cube, "opex"),
        "an AI site's power draw dominates its opex, unlike a conventional data centre's"),
    "capex_per_mw": Metric(
        "construction and first fleet per MW of facility power", "EUR m per MW",
        lambda res, cube: cube["capex_initial"] / cube["facility_mw"],
        "built up from GPU, system and facility costs per MW, not set to a headline"),
    "capex_per_gpu": Metric(
        "construction and first fleet per GPU", "EUR per GPU",
        lambda res, cube: cube["capex_initial"] * 1e6 / cube["gpus"],
        "the same build-up per GPU: compute at the GPU price plus systems, and the facility and "
        "grid connection for its share of power"),
    "utilisation_steady": Metric(
        "steady utilisation (drawn level)", "share",
        _drawn("market.utilisation_steady"),
        "an input taken from the source"),
    "price_erosion": Metric(
        "yearly fall of a chip's GPU-hour price with age (drawn)", "1/yr",
        _drawn("market.gpu_hour_price_erosion_per_year"),
        "an input derived from price-performance; the H100's fall was a scarcity peak unwinding"),
    "hardware_loan_spread": Metric(
        "hardware loan spread over the base rate (drawn)", "1/yr",
        _drawn("private.hardware_loan_spread"),
        "GPU-backed loans priced as the listed comparables, spread by customer credit"),
    "senior_spread": Metric(
        "commercial senior spread over the base rate (drawn)", "1/yr",
        _drawn("private.senior_spread"),
        "data-centre project debt"),
}
_UNIT_TO_EUR = {"USD": "EUR", "USD m per MW": "EUR m per MW", "USD m per MW-year": "EUR m per MW-year",
                "USD per GPU": "EUR per GPU"}


def _site_cube(res: Results, sites: list[int]) -> dict[str, Array]:
    """(paths, sites, years) line items and (paths, sites) facts of the chosen sites."""
    items = ["revenue", "ebitda", "gpu_hours_m", "other_opex", "energy_cost", "opex",
             "operating_share"]
    cube = {k: v[:, sites] for k, v in res.line_items(items).items()}
    fk = res.factory_kpis
    for name, column in (("facility_mw", "facility_mw"), ("capex_initial", "capex_initial_eur_m")):
        table = fk.pivot(index="path", columns="factory", values=column)
        cube[name] = table[[res.scenario.factories[i].name for i in sites]].to_numpy()
    from finmodel.drivers import central_drivers

    gpus = np.broadcast_to(central_drivers(res.scenario).gpus, (1, res.scenario.n_factories))
    cube["gpus"] = np.broadcast_to(gpus[:, sites], cube["facility_mw"].shape)
    return cube


def calibration_table(sc: Scenario, paths: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """One row per key output of the scenario's gigafactory sites (all sites if it has none):
    the model's P10 / P50 / P90 over paths and sites, the comparables (converted to EUR at the
    scenario's central exchange rate), their sources, and a one-line judgement."""
    res = simulate(sc, paths=paths, seed=seed)
    sites = [i for i, f in enumerate(sc.factories) if f.kind == "gigafactory"] or list(
        range(sc.n_factories))
    cube = _site_cube(res, sites)
    fx = float(sc.macro.eur_usd.central)
    rows = []
    for name, metric in METRICS.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.asarray(metric.values(res, cube), dtype=float).ravel()
        values = values[np.isfinite(values)]
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        comps = [c for c in COMPARABLES if c.metric == name]
        eur = [c.value / fx if c.unit in _UNIT_TO_EUR else c.value for c in comps]
        low, high = min(eur), max(eur)
        span = max(abs(high), abs(low), 1e-12)
        if p50 < low - 0.02 * span:
            where = "below"
        elif p50 > high + 0.02 * span:
            where = "above"
        else:
            where = "within"
        rows.append({
            "metric": name, "label": metric.label, "unit": metric.unit,
            "p10": p10, "p50": p50, "p90": p90,
            "comparables": "; ".join(
                f"{_fmt(c.value, c.unit)} {c.unit.replace('share', '').strip()} {c.what} "
                f"[{c.source}, {c.date}{', estimate' if c.estimate else ''}]".replace("  ", " ")
                for c in comps),
            "comparable_low": low, "comparable_high": high,
            "judgement": f"{where} the comparables ({_span(low, high, metric.unit)}): {metric.note}",
        })
    out = pd.DataFrame(rows).set_index("metric")
    out.attrs.update(scenario=sc.name, paths=paths, seed=seed, sites=[sc.factories[i].name for i in sites],
                     eur_usd=fx)
    return out


def _span(low: float, high: float, unit: str) -> str:
    text = _fmt(low, unit) if low == high else f"{_fmt(low, unit)} to {_fmt(high, unit)}"
    return f"{text} {unit}" if unit not in ("share", "1/yr") else text


def _fmt(x: float, unit: str) -> str:
    if unit in ("share", "1/yr"):
        return f"{x * 100:.1f}%"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.2f}"


def calibration_markdown(sc: Scenario, paths: int = 2_000, seed: int = 0) -> str:
    """``calibration_table`` as the Markdown of ``docs/calibration.md``."""
    table = calibration_table(sc, paths, seed)
    lines = [
        "# Calibration report",
        "",
        f"Generated by `finmodel calibration` from the `{sc.name}` scenario ({paths:,} paths, "
        f"seed {seed}; sites: {', '.join(table.attrs['sites'])}); `tests/test_calibration.py` "
        "fails if this file is stale. The model's P10 / P50 / P90 run over paths and sites. USD "
        f"comparables are converted at USD {table.attrs['eur_usd']:.2f} per EUR for the "
        "judgement; the sources are listed in `assumptions/SOURCES.md`. \"Estimate\" marks a "
        "figure derived from a source rather than reported by it.",
        "",
        "| output | unit | P10 | P50 | P90 | public comparables | judgement |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        lines.append(f"| {row['label']} | {row['unit']} | {_fmt(row['p10'], row['unit'])} | "
                     f"{_fmt(row['p50'], row['unit'])} | {_fmt(row['p90'], row['unit'])} | "
                     f"{row['comparables']} | {row['judgement']} |")
    return "\n".join(lines) + "\n"
