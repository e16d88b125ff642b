"""Results that persist: a labelled xarray cube, and save / load to a folder of parquet files.

The folder holds ``path_kpis.parquet``, ``factory_kpis.parquet`` (if kept),
``tranche_kpis.parquet``, ``inputs.parquet``, ``fan.npz`` (the portfolio fans), ``lines.npz``
(stored line items, a base case's), ``scenario.toml`` and ``meta.json`` (method, seed, paths,
version). Loading re-derives the deal terms and the sampling design from the scenario, so a
loaded simulation still recomputes any path's line items exactly.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finmodel.errors import Problem, ScenarioError

if TYPE_CHECKING:
    import xarray as xr

    from finmodel.results import Results
    from finmodel.scenario.model import Scenario

__all__ = ["load_results", "run_attrs", "run_metadata", "save_results", "to_xarray"]

FORMAT = "finmodel-results-1"
TABLES = ("path_kpis", "factory_kpis", "tranche_kpis", "inputs")


def run_metadata(sc: Scenario, paths: int, seed: int | None, method: str) -> dict[str, Any]:
    """What reproduces a run: scenario name and TOML, paths, seed (-1: none, a base case),
    method, finmodel version. Plain values, so that netCDF and JSON can hold them."""
    from finmodel import __version__

    return {"scenario": sc.name, "scenario_toml": sc.to_toml(), "paths": int(paths),
            "seed": -1 if seed is None else int(seed), "method": method,
            "finmodel_version": __version__}


def run_attrs(res: Results) -> dict[str, Any]:
    """``run_metadata`` of a run's results."""
    return run_metadata(res.scenario, res.n_paths, res.seed, res.method)


def _row_order(table: pd.DataFrame, column: str, labels: Sequence[str]) -> np.ndarray | None:
    """The order that sorts a long table's (path, label) rows path by path, labels in
    ``labels`` order, so that a column reshapes to (paths, labels); None if already so."""
    codes = pd.Categorical(table[column].astype(str), categories=list(labels)).codes
    order = np.lexsort((codes, table["path"].to_numpy()))
    return None if np.array_equal(order, np.arange(order.size)) else order


def to_xarray(res: Results, lines: Sequence[str] = (), start: int = 0, stop: int | None = None,
              memory_budget_bytes: int | None = None) -> xr.Dataset:
    """The results as an ``xarray.Dataset``.

    Coordinates ``path``, ``factory``, ``year``, ``tranche``. Variables: every path KPI by its
    name (path,); factory KPIs as ``factory_<kpi>`` (path, factory); tranche KPIs as
    ``tranche_<kpi>`` (path, tranche); drawn inputs by their field path (path,); and for each
    item in ``lines`` the line item cube ``line_<item>`` (path, factory, year), recomputed by
    ``Results.line_items``. Paths start..stop (default: all). Each variable's attrs give its
    unit and description; the Dataset's attrs the run (``run_attrs``)."""
    import xarray as xr

    from finmodel.engine import ITEMS
    from finmodel.kpis import FACTORY_KPIS, PATH_KPIS, TRANCHE_KPIS

    names = [f.name for f in res.scenario.factories]
    tranches = [t.name for t in res.scenario.tranches]
    paths = res.path_kpis["path"].to_numpy() if "path" in res.path_kpis else np.arange(res.n_paths)
    ds = xr.Dataset(coords={"path": paths, "factory": names, "year": res.years, "tranche": tranches})
    for kpi, (unit, description) in PATH_KPIS.items():
        ds[kpi] = ("path", res.path_kpis[kpi].to_numpy(), {"unit": unit, "description": description})
    for prefix, table, column, labels, kpis in (
            ("factory", res.factory_kpis, "factory", names, FACTORY_KPIS),
            ("tranche", res.tranche_kpis, "tranche", tranches, TRANCHE_KPIS)):
        if table is None or not labels:
            continue
        order, shape = _row_order(table, column, labels), (res.n_paths, len(labels))
        for kpi, (unit, description) in kpis.items():
            values = table[kpi].to_numpy()
            values = (values if order is None else values[order]).reshape(shape)
            ds[f"{prefix}_{kpi}"] = (("path", column), values,
                                     {"unit": unit, "description": description})
    for field in res.inputs.columns.drop("path"):
        ds[field] = ("path", res.inputs[field].to_numpy(), {"unit": "", "description": "drawn input"})
    stop = res.n_paths if stop is None else stop
    if (start, stop) != (0, res.n_paths):
        ds = ds.isel(path=slice(start, stop))
    if lines:
        cube = res.line_items(list(lines), start, stop, memory_budget_bytes)
        for item, values in cube.items():
            unit, description = ITEMS[item][:2]
            ds[f"line_{item}"] = (("path", "factory", "year"), values,
                                  {"unit": unit, "description": description})
    ds.attrs.update(run_attrs(res))
    return ds


def save_results(res: Results, folder: str | os.PathLike[str]) -> Path:
    """Write ``res`` to ``folder`` (created; a folder of earlier saved results is replaced
    whole, atomically: a reader sees the old results or the new ones)."""
    target = Path(folder)
    if target.exists() and (not target.is_dir() or (any(target.iterdir())
                                                    and not (target / "meta.json").exists())):
        raise ScenarioError(Problem("folder", str(folder), "exists and is not a folder of saved "
                                    "results; give a new or empty folder"), "save")
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        for name in TABLES:
            table = getattr(res, name)
            if table is not None:
                table.to_parquet(tmp / f"{name}.parquet", index=False)
        np.savez(tmp / "fan.npz", **res.fan_data)
        np.savez(tmp / "lines.npz", kept_paths=res.kept_paths, **res.lines)
        (tmp / "scenario.toml").write_text(res.scenario.to_toml(), encoding="utf-8")
        meta = {**run_attrs(res), "format": FORMAT, "simulated": res.recompute is not None}
        del meta["scenario_toml"]
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ScenarioError(Problem("folder", str(folder), f"cannot write: {exc.strerror or exc}"),
                            "save") from None
    return target


def load_results(folder: str | os.PathLike[str]) -> Results:
    """Results saved by ``save_results``; equal table for table, and (for a simulation) able to
    recompute any path's line items from its draws."""
    import functools

    from finmodel.engine import close_deal
    from finmodel.results import Results
    from finmodel.sampling import make_design
    from finmodel.scenario import loads_scenario
    from finmodel.simulation import line_items

    src = Path(folder)
    try:
        meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        sc = loads_scenario((src / "scenario.toml").read_text(encoding="utf-8"), trusted=True)
        tables = {name: pd.read_parquet(src / f"{name}.parquet")
                  if (src / f"{name}.parquet").exists() else None for name in TABLES}
        with np.load(src / "fan.npz") as fan, np.load(src / "lines.npz") as stored:
            fan_data = {k: fan[k] for k in fan.files}
            kept = stored["kept_paths"]
            lines = {k: stored[k] for k in stored.files if k != "kept_paths"}
    except (OSError, ValueError, KeyError) as exc:
        raise ScenarioError(Problem("folder", str(folder), f"not a folder of saved results ({exc})"),
                            "load") from None
    terms = close_deal(sc)
    seed = None if meta["seed"] < 0 else int(meta["seed"])
    recompute = None
    if meta["simulated"]:
        design = make_design(sc, int(meta["paths"]), int(seed), meta["method"])
        recompute = functools.partial(line_items, sc, terms, design)
    return Results(scenario=sc, path_kpis=tables["path_kpis"], factory_kpis=tables["factory_kpis"],
                   inputs=tables["inputs"], lines=lines, kept_paths=kept, method=meta["method"],
                   seed=seed, fan_data=fan_data, recompute=recompute,
                   tranche_kpis=tables["tranche_kpis"], terms=terms)
