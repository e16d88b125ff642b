"""finmodel: Monte Carlo investment-and-financing model for Europe's AI gigafactories."""

from finmodel.errors import Problem, ScenarioError
from finmodel.scenario import Scenario, list_scenarios, load_scenario, loads_scenario

__version__ = "0.1.0"

__all__ = [
    "Problem",
    "Scenario",
    "ScenarioError",
    "__version__",
    "list_scenarios",
    "load_scenario",
    "loads_scenario",
]
