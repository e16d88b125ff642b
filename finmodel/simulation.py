"""Monte Carlo: sample -> drivers -> operations -> financing -> portfolio -> KPIs, in chunks.

Deal terms (fund allocation, debt size and profile) are fixed once from the base case and are
the same for every path.

Chunks are independent and deterministic (see ``finmodel.sampling``), so they can run serially,
on threads (the default: the compiled kernels release the GIL) or on any
``concurrent.futures.Executor`` (a process pool, a Dask cluster's executor) and the results are
bit-identical.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from finmodel.drivers import drivers_from_draws
from finmodel.engine import close_deal, run
from finmodel.errors import Problem, ScenarioError
from finmodel.financing import Terms
from finmodel.kpis import LINES_READ, factory_kpis, path_kpis, tranche_kpis
from finmodel.results import FAN_ITEMS, Results
from finmodel.sampling import (
    BLOCK,
    Design,
    check_run_args,
    make_design,
    path_noise,
    scalar_draws,
    slice_design,
)
from finmodel.scenario.model import Scenario

__all__ = ["path_lines", "simulate"]

CELLS_PER_CHUNK = 400_000  # paths x factories x periods per chunk: keeps temporaries ~3 MB each
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _Chunk:
    scenario: Scenario
    terms: Terms
    design: Design
    start: int
    stop: int
    fan_paths: int
    with_factory_kpis: bool


@dataclass(frozen=True)
class _ChunkResult:
    start: int
    stop: int
    path_kpis: pd.DataFrame
    factory_kpis: pd.DataFrame | None
    tranche_kpis: pd.DataFrame
    inputs: dict[str, np.ndarray]
    fan: dict[str, np.ndarray]  # item -> (n_fan, T) portfolio sums for paths < fan_paths


def _drivers(sc: Scenario, design: Design, start: int, stop: int):
    """Drawn scalar inputs and drivers of paths start..stop."""
    draws = scalar_draws(sc, design, start, stop)
    return draws, drivers_from_draws(sc, draws, stop - start, path_noise(sc, design.seed, start, stop))


def _run_chunk(chunk: _Chunk) -> _ChunkResult:
    sc, start, stop = chunk.scenario, chunk.start, chunk.stop
    draws, drivers = _drivers(sc, chunk.design, start, stop)
    n_fan = max(0, min(stop, chunk.fan_paths) - start)
    model = run(sc, drivers, chunk.terms, keep={*LINES_READ, *(FAN_ITEMS if n_fan else ())})
    ids = np.arange(start, stop)
    fan = {item: model[item][:n_fan].sum(axis=1) for item in FAN_ITEMS} if n_fan else {}
    rates = drivers.base_rate + drivers.eib_margin
    return _ChunkResult(
        start, stop,
        path_kpis(sc, model, ids),
        factory_kpis(sc, model, ids, rates) if chunk.with_factory_kpis else None,
        tranche_kpis(sc, model, ids),
        draws, fan,
    )


def default_chunk_size(sc: Scenario) -> int:
    """About CELLS_PER_CHUNK cells, in whole random blocks so that no draws are wasted."""
    blocks = round(CELLS_PER_CHUNK / (sc.n_factories * sc.timeline.horizon_years * BLOCK))
    return BLOCK * max(1, blocks)


def simulate(
    scenario: Scenario,
    paths: int = 10_000,
    seed: int = 0,
    method: str = "lhs",
    chunk_size: int | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    factory_kpis: bool = True,
    fan_paths: int = 20_000,
    threads: int | None = None,
) -> Results:
    """Monte Carlo over ``paths`` paths -> Results.

    method: ``"mc"``, ``"lhs"`` (default) or ``"sobol"``. The same seed, method and path count
    give bit-identical results for any ``chunk_size`` and with or without ``executor``. For
    LHS and Sobol the design spans all paths, so a run of N paths is not the first N paths of
    a longer run (for MC it is). progress(done_paths, total_paths) is called after each chunk.
    ``factory_kpis=False`` keeps only per-path KPIs (for very large runs); fans keep the first
    ``fan_paths`` paths (paths are exchangeable, so that is a random sample). Without an
    ``executor`` the chunks run on ``threads`` threads (default: one per CPU core; 1: serially).
    """
    if not isinstance(scenario, Scenario):
        raise ScenarioError(Problem("scenario", type(scenario).__name__,
                                    "must be a finmodel.Scenario (see finmodel.load_scenario)"),
                            "simulate")
    check_run_args(paths, seed, method, chunk_size, threads)
    paths, seed = int(paths), int(seed)
    design = make_design(scenario, paths, seed, method)
    terms = close_deal(scenario)
    size = int(chunk_size or default_chunk_size(scenario))
    chunks = [
        _Chunk(scenario, terms, slice_design(design, start, min(start + size, paths)), start,
               min(start + size, paths), fan_paths, factory_kpis)
        for start in range(0, paths, size)
    ]
    n_threads = min(len(chunks), int(threads or os.cpu_count() or 1))
    if executor is None and n_threads > 1:
        with ThreadPoolExecutor(n_threads, thread_name_prefix="finmodel") as pool:
            return _collect(scenario, terms, pool, chunks, paths, method, seed, design, progress)
    return _collect(scenario, terms, executor, chunks, paths, method, seed, design, progress)


def _collect(sc: Scenario, terms: Terms, executor: Executor | None, chunks: list[_Chunk],
             paths: int, method: str, seed: int, design: Design,
             progress: Progress | None) -> Results:
    """Run the chunks (serially without an executor) and assemble them in path order."""
    if executor is None:
        outcomes = map(_run_chunk, chunks)
    else:
        outcomes = (future.result() for future in [executor.submit(_run_chunk, c) for c in chunks])
    results: list[_ChunkResult] = []
    for res in outcomes:
        results.append(res)
        if progress:
            progress(res.stop, paths)
    return _assemble(sc, terms, results, method, seed, design)


def _assemble(sc: Scenario, terms: Terms, parts: list[_ChunkResult], method: str, seed: int,
              design: Design) -> Results:
    pk = pd.concat([p.path_kpis for p in parts], ignore_index=True)
    fk = (pd.concat([p.factory_kpis for p in parts], ignore_index=True)
          if parts[0].factory_kpis is not None else None)
    names = list(parts[0].inputs)
    inputs = pd.DataFrame({name: np.concatenate([p.inputs[name] for p in parts]) for name in names})
    inputs.insert(0, "path", pk["path"].to_numpy())
    with_fan = [p.fan for p in parts if p.fan]
    fan = {item: np.concatenate([f[item] for f in with_fan]) for item in FAN_ITEMS} if with_fan else {}
    tk = pd.concat([p.tranche_kpis for p in parts], ignore_index=True)
    return Results(
        scenario=sc, path_kpis=pk, factory_kpis=fk, inputs=inputs, lines={},
        kept_paths=np.array([], dtype=int), method=method, seed=seed, fan_data=fan,
        recompute=lambda path: path_lines(sc, terms, design, path), tranche_kpis=tk, terms=terms,
    )


def path_lines(sc: Scenario, terms: Terms, design: Design, path: int) -> dict[str, np.ndarray]:
    """Line items (1, F, T) of one simulated path, recomputed exactly from its draws."""
    return run(sc, _drivers(sc, design, path, path + 1)[1], terms).lines()
