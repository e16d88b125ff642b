"""The engine's entry points: scenario in, Results out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from finmodel.drivers import central_drivers
from finmodel.kpis import factory_kpis, path_kpis
from finmodel.operations import operate
from finmodel.results import Results
from finmodel.scenario.model import Scenario

__all__ = ["base_case"]


def base_case(scenario: Scenario) -> Results:
    """One path with every uncertain input at its central value (mode, median or fixed value)."""
    drivers = central_drivers(scenario)
    ops = operate(drivers)
    paths = np.array([0])
    inputs = pd.DataFrame({path: [spec.central] for path, spec in scenario.uncertain_inputs().items()})
    inputs.insert(0, "path", paths)
    return Results(
        scenario=scenario,
        path_kpis=path_kpis(scenario, ops, paths),
        factory_kpis=factory_kpis(scenario, ops, paths),
        inputs=inputs,
        lines=ops.items,
        kept_paths=paths,
        method="base",
    )
