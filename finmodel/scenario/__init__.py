"""Scenario layer: validated inputs, presets, the field table."""

from finmodel.scenario.distributions import Dist
from finmodel.scenario.fields import FieldRow, field_rows, iter_dists
from finmodel.scenario.io import (
    assumptions_dir,
    list_scenarios,
    load_scenario,
    loads_scenario,
    write_text_atomic,
)
from finmodel.scenario.model import Factory, Scenario

__all__ = [
    "Dist",
    "Factory",
    "FieldRow",
    "Scenario",
    "assumptions_dir",
    "field_rows",
    "iter_dists",
    "list_scenarios",
    "load_scenario",
    "loads_scenario",
    "write_text_atomic",
]
