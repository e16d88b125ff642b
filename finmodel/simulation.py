"""Monte Carlo: sample -> drivers -> operations -> financing -> portfolio -> KPIs, in chunks.

Deal terms (fund allocation, debt size and profile) are fixed once from the base case and are
the same for every path.

Chunks are independent and deterministic (see ``finmodel.sampling``), so they can run serially,
on threads (the default: the compiled kernels release the GIL) or on any
``concurrent.futures.Executor`` (a process pool, a Dask cluster's executor) and the results are
bit-identical.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finmodel.drivers import drivers_from_draws
from finmodel.engine import close_deal, run
from finmodel.errors import Problem, ScenarioError
from finmodel.financing import Terms
from finmodel.kpis import (
    FACTORY_KPIS,
    LINES_READ,
    PATH_KPIS,
    TRANCHE_KPIS,
    Columns,
    factory_kpi_columns,
    path_kpi_columns,
    tranche_kpi_columns,
)
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

__all__ = ["estimate_memory_bytes", "line_items", "run_all", "simulate"]

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
    path_kpis: Columns
    factory_kpis: Columns | None
    tranche_kpis: Columns
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
    fan = {item: model.portfolio(item)[:n_fan] for item in FAN_ITEMS} if n_fan else {}
    rates = drivers.base_rate + drivers.eib_margin
    return _ChunkResult(
        start, stop,
        path_kpi_columns(sc, model, ids),
        factory_kpi_columns(sc, model, ids, rates) if chunk.with_factory_kpis else None,
        tranche_kpi_columns(sc, model, ids),
        draws, fan,
    )


WORKING_BYTES_PER_CELL = 8 * 36  # line items and temporaries per (path, factory, period) of a chunk


def estimate_memory_bytes(sc: Scenario, paths: int, factory_kpis: bool = True,
                          fan_paths: int = 20_000, threads: int | None = None) -> int:
    """Bytes a ``simulate`` run holds at its peak, beyond the interpreter and libraries: the
    KPI tables (factory KPIs twice: per chunk, then copied into one), the drawn inputs, the
    fan data and the chunks in flight. Within about 20 % of measured peaks (see
    ``benchmarks/bench_simulate.py``)."""
    n_f, n_t, n_k = sc.n_factories, sc.timeline.horizon_years, len(sc.tranches)
    n_inputs = len(sc.uncertain_inputs())
    per_path = len(PATH_KPIS) + n_inputs + 1 + n_k * (len(TRANCHE_KPIS) + 2)
    if factory_kpis:
        per_path += 2 * n_f * (len(FACTORY_KPIS) + 2)
    fan = min(paths, fan_paths) * len(FAN_ITEMS) * n_t
    cores = int(threads or os.cpu_count() or 1)
    chunk = min(paths, default_chunk_size(sc, cores))
    working = min(cores, -(-paths // chunk)) * chunk * n_f * n_t * WORKING_BYTES_PER_CELL
    return int(8 * (paths * per_path + fan) + working)


def check_memory(sc: Scenario, paths: int, factory_kpis: bool, fan_paths: int,
                 threads: int | None, budget_bytes: int | None) -> None:
    """Raise ``ScenarioError`` if the run's estimate exceeds the budget (default: 90 % of the
    memory available now; no check where that is unknown)."""
    budget_bytes = memory_budget(budget_bytes)
    if budget_bytes is None:
        return
    need = estimate_memory_bytes(sc, paths, factory_kpis, fan_paths, threads)
    if need > budget_bytes:
        gb = 2.0 ** 30
        lighter = estimate_memory_bytes(sc, paths, False, fan_paths, threads)
        hint = (f"; factory_kpis=False needs about {lighter / gb:,.1f} GB"
                if factory_kpis and lighter <= budget_bytes else "")
        raise ScenarioError(Problem("paths", paths, f"needs about {need / gb:,.1f} GB, more than the "
                                    f"memory budget of {budget_bytes / gb:,.1f} GB: run fewer "
                                    f"paths (or several seeds){hint}"), "simulate")


def memory_budget(budget_bytes: int | None) -> int | None:
    """The budget a run or a cube is checked against: the one given, else 90 % of the memory
    available now, or None (no check) where that is unknown."""
    if budget_bytes is not None:
        return budget_bytes
    available = available_memory_bytes()
    return None if available is None else int(0.9 * available)


def available_memory_bytes() -> int | None:
    """Memory the system can give without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_chunk_size(sc: Scenario, threads: int = 1) -> int:
    """About CELLS_PER_CHUNK cells in the chunks that run at once (one per thread), in whole
    random blocks so that no draws are wasted."""
    blocks = round(CELLS_PER_CHUNK / (threads * sc.n_factories * sc.timeline.horizon_years * BLOCK))
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
    memory_budget_bytes: int | None = None,
) -> Results:
    """Monte Carlo over ``paths`` paths -> Results.

    method: ``"mc"``, ``"lhs"`` (default) or ``"sobol"``. The same seed, method and path count
    give bit-identical results for any ``chunk_size`` and with or without ``executor``. For
    LHS and Sobol the design spans all paths, so a run of N paths is not the first N paths of
    a longer run (for MC it is). progress(done_paths, total_paths) is called after each chunk.
    ``factory_kpis=False`` keeps only per-path KPIs (for very large runs); fans keep the first
    ``fan_paths`` paths (paths are exchangeable, so that is a random sample). Without an
    ``executor`` the chunks run on ``threads`` threads (default: one per CPU core; 1: serially).

    Before any work the run's memory is estimated (``estimate_memory_bytes``); a run that would
    not fit in ``memory_budget_bytes`` (default: 90 % of the memory available now) raises
    ``ScenarioError`` naming ``paths``. The first failing chunk, or an exception raised by
    ``progress``, cancels the chunks not yet started.
    """
    if not isinstance(scenario, Scenario):
        raise ScenarioError(Problem("scenario", type(scenario).__name__,
                                    "must be a finmodel.Scenario (see finmodel.load_scenario)"),
                            "simulate")
    check_run_args(paths, seed, method, chunk_size, threads)
    paths, seed = int(paths), int(seed)
    check_memory(scenario, paths, factory_kpis, fan_paths, threads, memory_budget_bytes)
    design = make_design(scenario, paths, seed, method)
    terms = close_deal(scenario)
    cores = int(threads or os.cpu_count() or 1)  # threads of this process to use
    n_threads = 1 if executor is not None else cores
    size = int(chunk_size or default_chunk_size(scenario, n_threads))
    chunks = [
        _Chunk(scenario, terms, slice_design(design, start, min(start + size, paths)), start,
               min(start + size, paths), fan_paths, factory_kpis)
        for start in range(0, paths, size)
    ]
    n_threads = min(len(chunks), n_threads)
    tables = _Tables(scenario, paths, fan_paths)

    def report(done: int, _: int) -> None:
        if progress:
            progress(done, paths)

    if executor is not None:  # results travel back; this thread files them
        run_all(_run_chunk, chunks, executor, lambda result, n: report(tables.put(result), n))
    else:  # each thread files its own chunk's results
        run_and_file = functools.partial(_run_and_file, tables=tables)
        if n_threads > 1:
            with ThreadPoolExecutor(n_threads, thread_name_prefix="finmodel") as pool:
                run_all(run_and_file, chunks, pool, report)
        else:
            run_all(run_and_file, chunks, None, report)
    return Results(
        scenario=scenario, path_kpis=tables.path.frame(),
        factory_kpis=tables.factory_frame(cores),
        inputs=tables.inputs.frame(), lines={}, kept_paths=np.array([], dtype=int),
        method=method, seed=seed, fan_data=tables.fan,
        recompute=functools.partial(line_items, scenario, terms, design),  # picklable
        tranche_kpis=tables.tranche.frame(), terms=terms,
    )


def run_all(fn: Callable[[Any], Any], jobs: Sequence[Any], executor: Executor | None,
            after: Callable[[Any, int], None] | None = None) -> list[Any]:
    """``[fn(job) for job in jobs]``, serially or on ``executor``, in order; after(result,
    done) is called after each. On the first exception (from a job or from ``after``) the jobs
    not yet started are cancelled and the exception is raised: a failing run stops within one
    job per worker."""
    out: list[Any] = []
    if executor is None:
        for job in jobs:
            out.append(fn(job))
            if after:
                after(out[-1], len(out))
        return out
    futures = [executor.submit(fn, job) for job in jobs]
    try:
        for future in futures:
            out.append(future.result())
            if after:
                after(out[-1], len(out))
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return out


def _run_and_file(chunk: _Chunk, tables: _Tables) -> int:
    """Run a chunk and file its results; returns the paths done up to its end."""
    return tables.put(_run_chunk(chunk))


class _Table:
    """A table of ``rows`` rows filled part by part at known row offsets (from any thread):
    float columns go into one column-major block, so that the final DataFrame is made without
    copying; other columns into 1-D arrays (categoricals as codes)."""

    def __init__(self, rows: int, lock: threading.Lock):
        self.rows, self.lock = rows, lock
        self.columns: list[str] = []
        self.floats: list[str] = []
        self.block = np.empty((0, 0))
        self.others: dict[str, np.ndarray] = {}
        self.categories: dict[str, pd.Index] = {}

    def put(self, part: Columns, offset: int) -> None:
        """File columns of equal length at rows offset.. (the first part fixes the columns)."""
        with self.lock:
            if not self.columns:
                self.columns = list(part)
                self.floats = [name for name, values in part.items()
                               if not isinstance(values, pd.Categorical)
                               and values.dtype == np.float64]
                self.block = np.empty((self.rows, len(self.floats)), order="F")
                for name, values in part.items():
                    if isinstance(values, pd.Categorical):
                        self.categories[name] = values.categories
                        self.others[name] = np.empty(self.rows, values.codes.dtype)
                    elif name not in self.floats:
                        self.others[name] = np.empty(self.rows, values.dtype)
        rows = slice(offset, offset + len(part[self.columns[0]]))
        for k, name in enumerate(self.floats):
            self.block[rows, k] = part[name]
        for name, out in self.others.items():
            values = part[name]
            out[rows] = values.codes if name in self.categories else values

    def frame(self) -> pd.DataFrame:
        out = pd.DataFrame(self.block, columns=self.floats, copy=False)
        for name, values in self.others.items():
            column = (pd.Categorical.from_codes(values, self.categories[name])
                      if name in self.categories else values)
            out.insert(self.columns.index(name), name, column)
        return out


class _Tables:
    """Everything a run keeps, filed chunk by chunk in path order whatever order chunks finish,
    so that chunks' results do not pile up before being copied (at 1M paths this took the peak
    from 2.2 GB to 1.6 GB when it came in; 1.26 GB now).
    Factory KPIs, the largest table, are kept per chunk and copied into one at the end."""

    def __init__(self, sc: Scenario, paths: int, fan_paths: int):
        lock = threading.Lock()
        self.lock = lock
        self.path = _Table(paths, lock)
        self.factory: dict[int, Columns] = {}  # by first path
        self.tranche = _Table(paths * len(sc.tranches), lock)
        self.n_f, self.n_k, self.paths = sc.n_factories, len(sc.tranches), paths
        self.n_fan = min(paths, fan_paths)
        self.inputs = _Table(paths, lock)
        self.fan: dict[str, np.ndarray] = {}

    def put(self, res: _ChunkResult) -> int:
        """File one chunk's results; returns the paths done up to its end."""
        self.path.put(res.path_kpis, res.start)
        if res.factory_kpis is not None:
            self.factory[res.start] = res.factory_kpis
        self.tranche.put(res.tranche_kpis, res.start * self.n_k)
        self.inputs.put({"path": np.arange(res.start, res.stop), **res.inputs}, res.start)
        with self.lock:
            if res.fan and not self.fan:
                self.fan = {item: np.empty((self.n_fan, *values.shape[1:]))
                            for item, values in res.fan.items()}
        for item, values in res.fan.items():
            self.fan[item][res.start:res.start + len(values)] = values
        return res.stop

    def factory_frame(self, threads: int) -> pd.DataFrame | None:
        """The chunks' factory KPIs in one table, copied on ``threads`` threads once every chunk
        is done (2-3x faster than ``pandas.concat`` on 2 cores; filing them while chunks still
        ran measured slower than either)."""
        if not self.factory:
            return None
        starts = sorted(self.factory)
        table = _Table(self.paths * self.n_f, threading.Lock())
        table.put(self.factory[starts[0]], starts[0] * self.n_f)  # fixes the columns

        def put(start: int) -> None:
            table.put(self.factory.pop(start), start * self.n_f)

        with ThreadPoolExecutor(threads, thread_name_prefix="finmodel") as pool:
            list(pool.map(put, starts[1:]))
        self.factory.clear()
        return table.frame()


def line_items(sc: Scenario, terms: Terms, design: Design, start: int, stop: int,
               items: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Line items (stop - start, F, T) of simulated paths start..stop, recomputed exactly from
    their draws in chunks of ``default_chunk_size`` paths; ``items``: which (default: all)."""
    size = default_chunk_size(sc)
    out: dict[str, np.ndarray] = {}
    for lo in range(start, stop, size):
        hi = min(lo + size, stop)
        part = run(sc, _drivers(sc, design, lo, hi)[1], terms).lines()
        for item in items if items is not None else part:
            if item not in out:
                out[item] = np.empty((stop - start, *part[item].shape[1:]))
            out[item][lo - start:hi - start] = part[item]
    return out
