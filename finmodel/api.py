"""The engine's entry points: scenario in, Results out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from finmodel.drivers import central_drivers
from finmodel.engine import close_deal, run
from finmodel.errors import Problem, ScenarioError
from finmodel.kpis import factory_kpis, path_kpis, tranche_kpis
from finmodel.results import Results
from finmodel.scenario.model import Scenario

__all__ = ["base_case", "compare"]

COMPARE_STATS = ("mean", "p10", "p50", "p90")
SUMMARY_STATS = ("mean", "std", "sem", "p5", "p10", "p50", "p90", "p95")


def base_case(scenario: Scenario) -> Results:
    """One path with every uncertain input at its central value (mode, median or fixed value)."""
    drivers = central_drivers(scenario)
    terms = close_deal(scenario)
    model = run(scenario, drivers, terms)
    paths = np.array([0])
    inputs = pd.DataFrame({path: [spec.central] for path, spec in scenario.uncertain_inputs().items()})
    inputs.insert(0, "path", paths)
    return Results(
        scenario=scenario,
        path_kpis=path_kpis(scenario, model, paths),
        factory_kpis=factory_kpis(scenario, model, paths, drivers.base_rate + drivers.eib_margin),
        tranche_kpis=tranche_kpis(scenario, model, paths),
        inputs=inputs,
        lines=model.lines(),
        kept_paths=paths,
        method="base",
        terms=terms,
    )


def compare(scenarios: Sequence[Scenario], paths: int = 10_000, seed: int = 0, method: str = "lhs",
            stats: Sequence[str] = COMPARE_STATS) -> pd.DataFrame:
    """Scenarios side by side: rows (kpi, unit, stat), one column per scenario name.

    Every scenario is simulated with the same seed and method, so shared inputs see the same
    draws where the scenarios have the same uncertain inputs."""
    from finmodel.simulation import simulate

    names = [sc.name for sc in scenarios]
    if len(set(names)) != len(names):
        raise ScenarioError(Problem("scenarios", names, "scenario names must differ to compare them"),
                            "compare")
    bad = [s for s in stats if s not in SUMMARY_STATS]
    if bad or not stats:
        raise ScenarioError(Problem("stats", list(stats), f"choose from {', '.join(SUMMARY_STATS)}"),
                            "compare")
    columns = {}
    for sc in scenarios:
        summary = simulate(sc, paths=paths, seed=seed, method=method, factory_kpis=False).summary()
        table = summary.set_index("unit", append=True)[list(stats)]
        columns[sc.name] = table.stack().rename_axis(["kpi", "unit", "stat"])
    return pd.DataFrame(columns)
