"""The model for a batch of paths: operations -> financing -> portfolio, with terms fixed at close.

``close_deal`` fixes what is agreed at financial close from the base case (the fund's
allocation and the senior debt); ``run`` takes drivers for any number of paths through the
layers. Both ``base_case`` and ``simulate`` use these two functions and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from finmodel.drivers import Drivers, drivers_from_draws, sizing_drivers
from finmodel.errors import Problem, ScenarioError
from finmodel.financing import (
    FINANCING_ITEMS,
    Financing,
    Terms,
    finance,
    size_debt,
    years_to_first_repayment,
)
from finmodel.operations import LINE_ITEMS, Operations, operate
from finmodel.portfolio import TrancheFlows, allocate_fund, eu_part, factory_sum, tranche_waterfall
from finmodel.scenario.model import Scenario

__all__ = ["ITEMS", "Model", "close_deal", "minimum_eib_tenor_years", "run", "sizing_scenario"]

_T = TypeVar("_T")

# every line item: name -> (unit, description)
ITEMS = {**LINE_ITEMS, **FINANCING_ITEMS}


@dataclass(frozen=True)
class Model:
    """Everything the engine computed for a batch of paths; ``memo`` holds results derived from
    it that several readers share (``once``: portfolio sums, the KPIs' shared parts)."""

    operations: Operations
    financing: Financing
    tranches: TrancheFlows
    terms: Terms
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    def __getitem__(self, name: str):
        """A line item (P, F, T) of operations or financing, by name."""
        return self.financing.items[name] if name in self.financing.items else self.operations[name]

    def once(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """compute() the first time ``key`` is asked of this model; its result after that."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def portfolio(self, name: str) -> np.ndarray:
        """A line item summed over the factories, (P, T), computed once per model."""
        return self.once(("portfolio", name), lambda: factory_sum(self[name]))

    def lines(self) -> dict:
        """Every line item (P, F, T): operations first, then financing."""
        return {**dict(self.operations.items), **self.financing.items}


SIZING_PRE_RUN = (1_000, 0)  # paths and seed of the downside case's pre-run (Latin hypercube)


def close_deal(sc: Scenario) -> Terms:
    """Fund allocation and senior debt fixed at close, sized on ``eib.sizing_case`` of
    ``sizing_scenario(sc)`` (this scenario's own, or the one it closes on): the base case
    (every input at its central value, its mean or its median), or a downside of it."""
    sizing = sizing_scenario(sc)
    case = sizing.eib.sizing_case
    drivers = _sizing_drivers(sizing)
    ops = operate(drivers)
    cost = (ops["capex_construction"] + ops["capex_gpu_initial"])[0].sum(-1)
    fund = allocate_fund(sizing, cost)
    scale = _downside_scale(sizing, ops) if case == "downside" else None
    label = f"downside (quantile {sizing.eib.sizing_quantile:g})" if case == "downside" else case
    return replace(size_debt(sizing, drivers, ops, fund, cfads_scale=scale),
                   eu_eur_m=eu_part(sizing, cost, fund), sized_on=sizing.name, sizing_case=label)


def _sizing_drivers(sizing: Scenario) -> Drivers:
    """The one path the deal is sized on (a downside case scales the central one's CFADS)."""
    case = sizing.eib.sizing_case
    return sizing_drivers(sizing, "central" if case == "downside" else case)


def _operating_cash(ops) -> np.ndarray:
    """(P, F) operating cash over the horizon before financing: EBITDA - tax + resale, EUR m."""
    return (ops["ebitda"] - ops["tax"] + ops["resale_proceeds"]).sum(-1)


def _downside_scale(sc: Scenario, base_ops) -> np.ndarray:
    """(F,) the ``eib.sizing_quantile`` over a pre-run (``SIZING_PRE_RUN``) of each site's
    operating cash over the horizon, as a share of the base case's: the downside case is the
    base case's CFADS profile scaled by it (a P90 case keeps the base case's shape)."""
    from finmodel.sampling import make_design, path_noise, scalar_draws

    paths, seed = SIZING_PRE_RUN
    design = make_design(sc, paths, seed, "lhs")
    drivers = drivers_from_draws(sc, scalar_draws(sc, design, 0, paths), paths,
                                 path_noise(sc, seed, 0, paths))
    cash = np.quantile(_operating_cash(operate(drivers)), sc.eib.sizing_quantile, axis=0)
    base = _operating_cash(base_ops)[0]
    return np.where(base > 0, np.clip(cash / np.where(base > 0, base, 1.0), 0.0, None), 0.0)


_DEAL = ("fund", "eib", "private", "tranches")  # what a scenario agrees at close


def sizing_scenario(sc: Scenario) -> Scenario:
    """The scenario whose base case sizes ``sc``'s deal: ``sc`` itself, or (``close_on``) the
    named preset with ``sc``'s own deal terms (fund, EIB, private, tranches), so that a stress
    in the market, energy, costs, factories or macro inputs hits after close."""
    if sc.close_on is None:
        return sc
    from finmodel.scenario.io import load_scenario, validate_data

    ref = load_scenario(sc.close_on)
    source = f"close_on = {sc.close_on!r}"
    problems = []
    if ref.close_on is not None:
        problems.append(Problem("close_on", sc.close_on, f"{ref.name!r} itself closes on "
                                f"{ref.close_on!r}; name a preset sized on its own base case"))
    if [f.name for f in ref.factories] != [f.name for f in sc.factories]:
        problems.append(Problem("close_on", sc.close_on, f"{ref.name!r} has other factories "
                                f"({', '.join(f.name for f in ref.factories)}); the deal needs the "
                                f"same sites"))
    if (ref.timeline.start_year, ref.timeline.horizon_years) != (sc.timeline.start_year,
                                                                   sc.timeline.horizon_years):
        problems.append(Problem("close_on", sc.close_on, f"{ref.name!r} has another timeline"))
    if problems:
        raise ScenarioError(problems, source)
    data, own = ref.model_dump(mode="python"), sc.model_dump(mode="python")
    data.update({key: own[key] for key in _DEAL})
    data["name"] = ref.name
    return validate_data(data, source)


def minimum_eib_tenor_years(sc: Scenario) -> int:
    """The shortest ``eib.tenor_years`` with which ``close_deal`` can size this scenario's
    loans: every site's first repayment on the base case falls before its loan matures."""
    sc = sizing_scenario(sc)
    drivers = _sizing_drivers(sc)
    return int(years_to_first_repayment(sc, drivers, operate(drivers)).max()) + 1


def run(sc: Scenario, drivers: Drivers, terms: Terms, keep: Collection[str] | None = None) -> Model:
    """Operations, financing and the fund's tranches for the paths in ``drivers``. ``keep``:
    the financing line items to keep (default: all; the fund's tranches read ``fund_flow``)."""
    ops = operate(drivers)
    fin = finance(sc, drivers, ops, terms, keep=keep)
    fund_flow = factory_sum(fin["fund_flow"])
    tranches = tranche_waterfall(sc, fund_flow)
    return Model(ops, fin, tranches, terms, memo={("portfolio", "fund_flow"): fund_flow})
