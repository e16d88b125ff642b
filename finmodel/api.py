"""The engine's entry points: scenario in, Results out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from finmodel.drivers import central_drivers
from finmodel.engine import close_deal, run
from finmodel.kpis import factory_kpis, path_kpis, tranche_kpis
from finmodel.results import Results
from finmodel.scenario.model import Scenario

__all__ = ["base_case"]


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
