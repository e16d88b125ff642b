"""finmodel: Monte Carlo investment-and-financing model for Europe's AI gigafactories."""

from finmodel.analysis import morris, optimise_allocation, sensitivity, sweep, tail_drivers, tornado
from finmodel.api import base_case, compare
from finmodel.errors import Problem, ScenarioError
from finmodel.excel import export_excel
from finmodel.metrics import irr, mirr, npv
from finmodel.results import Results
from finmodel.scenario import Scenario, list_scenarios, load_scenario, loads_scenario
from finmodel.simulation import simulate

__version__ = "0.2.0"

__all__ = [
    "Problem",
    "Results",
    "Scenario",
    "ScenarioError",
    "__version__",
    "base_case",
    "compare",
    "export_excel",
    "irr",
    "list_scenarios",
    "load_scenario",
    "loads_scenario",
    "mirr",
    "morris",
    "npv",
    "optimise_allocation",
    "sensitivity",
    "simulate",
    "sweep",
    "tail_drivers",
    "tornado",
]
