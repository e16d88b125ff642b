"""Portfolio: the fund's budget across factories, the layered fund's waterfall, aggregation.

Shapes: (P, F) per path and factory, (P, T) per path and period, (P, K) per path and tranche.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from finmodel.compiled import kernel
from finmodel.errors import Problem, ScenarioError
from finmodel.scenario.checks import site_euro_cap
from finmodel.scenario.model import Scenario

__all__ = ["TrancheFlows", "allocate_fund", "eu_part", "factory_sum", "site_caps", "tranche_waterfall"]

Array = NDArray[np.float64]


def factory_sum(item: Array) -> Array:
    """(P, T) a line item (P, F, T) summed over its factories, added in factory order (as
    ``item.sum(1)`` does, in one pass instead of numpy's strided reduction)."""
    out = np.empty((item.shape[0], item.shape[2]))
    _factory_sum_rows(np.ascontiguousarray(item, dtype=float), out)
    return out


@kernel
def _factory_sum_rows(item: Array, out: Array) -> None:
    for p in range(item.shape[0]):
        for t in range(item.shape[2]):
            out[p, t] = item[p, 0, t] if item.shape[1] else 0.0
        for f in range(1, item.shape[1]):
            for t in range(item.shape[2]):
                out[p, t] += item[p, f, t]


def site_caps(sc: Scenario, cost: Array) -> Array:
    """(F,) EUR m most public money each site may get, given its construction cost (F,) EUR m:
    the per-site euro cap and the public share cap."""
    euro = np.array([site_euro_cap(sc, i) for i in range(sc.n_factories)])
    return np.minimum(euro, sc.fund.public_share_of_capex_max * cost)


def allocate_fund(sc: Scenario, cost: Array) -> Array:
    """(F,) EUR m fund commitment per factory from its base-case construction cost (F,) EUR m.

    ``share_of_capex``: each site's ``public_share_of_capex`` of its cost, within its caps,
    served in order of close (then listing) until the fund is spent; ``equal`` and
    ``pro_rata_capex`` split ``fund.size_eur_m`` and cap each share; ``explicit`` takes the
    amounts given and raises ``ScenarioError`` if one breaks a cap.
    """
    fund = sc.fund
    caps = site_caps(sc, cost)
    rule = fund.allocation
    if rule == "explicit":
        amounts = np.array([f.fund_eur_m for f in sc.factories], dtype=float)
        problems = [
            Problem(f"factories[{i}].fund_eur_m", amounts[i],
                    f"is {amounts[i] / cost[i]:.1%} of the site's base-case construction cost "
                    f"(EUR {cost[i]:,.0f}m); the public share may be at most "
                    f"fund.public_share_of_capex_max = {fund.public_share_of_capex_max:g}")
            for i in range(len(amounts)) if amounts[i] > fund.public_share_of_capex_max * cost[i] + 1e-6
        ]
        if problems:
            raise ScenarioError(problems, "allocation")
        return amounts
    if rule == "equal":
        return np.minimum(np.full(len(cost), fund.size_eur_m / len(cost)), caps)
    if rule == "pro_rata_capex":
        return np.minimum(fund.size_eur_m * cost / cost.sum(), caps)
    wanted = np.minimum(np.array([f.public_share_of_capex for f in sc.factories]) * cost, caps)
    return _in_order_of_close(sc, wanted, fund.size_eur_m)


def _in_order_of_close(sc: Scenario, wanted: Array, budget: float) -> Array:
    """(F,) each site's wanted amount, served in order of close (then listing) until the
    budget is spent."""
    order = sorted(range(len(wanted)), key=lambda i: (sc.factories[i].start_delay_years, i))
    out = np.zeros(len(wanted))
    left = budget
    for i in order:
        out[i] = min(wanted[i], left)
        left -= out[i]
    return out


def eu_part(sc: Scenario, cost: Array, fund: Array) -> Array:
    """(F,) EUR m of each site's public money (F,) that the EU pays: up to
    ``fund.eu_share_of_capex_max`` of its construction cost (F,), from the EU grant total in
    order of close; the host state pays the rest. Attribution only: the site gets ``fund``."""
    wanted = np.minimum(sc.fund.eu_share_of_capex_max * cost, fund)
    return _in_order_of_close(sc, wanted, sc.fund.eu_grant_total_eur_m)


@dataclass(frozen=True)
class TrancheFlows:
    """Each tranche's flows (P, K, T) EUR m: paid in (negative) and received (positive)."""

    flows: Array  # (P, K, T)
    contributed: Array  # (P, K) EUR m
    received: Array  # (P, K) EUR m
    loss: Array  # (P, K) EUR m contributed - received, floored at 0


def tranche_waterfall(sc: Scenario, fund_flow: Array) -> TrancheFlows:
    """The layered fund's waterfall over the fund's net flows (P, T) across its factories.

    Every tranche pays its ``share`` of each outflow. Inflows go to tranches in order of
    ``priority``: each is paid its claim (contributions compounded at ``target_return``, less
    what it has received) before the next; the last tranche (first loss) takes what is left.
    A tranche's loss is what it paid in and did not get back.
    """
    order = sorted(range(len(sc.tranches)), key=lambda k: sc.tranches[k].priority)
    share = np.array([sc.tranches[k].share for k in order])
    rate = np.array([sc.tranches[k].target_return for k in order])
    n_p, n_t = fund_flow.shape
    flows = np.empty((n_p, len(order), n_t))
    contributed, received = np.empty((n_p, len(order))), np.empty((n_p, len(order)))
    _tranche_rows(np.ascontiguousarray(fund_flow, dtype=float), share, rate, flows, contributed,
                  received)
    back = np.empty(len(order), dtype=int)
    back[order] = np.arange(len(order))
    contributed, received = contributed[:, back], received[:, back]
    return TrancheFlows(flows[:, back], contributed, received,
                        np.maximum(contributed - received, 0.0))


@kernel
def _tranche_rows(fund_flow: Array, share: Array, rate: Array, flows: Array, contributed: Array,
                  received: Array) -> None:
    """``tranche_waterfall`` for each path: fund_flow (P, T); share, rate (K,) in order of
    priority; fills flows (P, K, T), contributed and received (P, K) in that order."""
    n_k = share.size
    claim = np.empty(n_k)
    for p in range(fund_flow.shape[0]):
        claim[:] = 0.0
        contributed[p, :] = 0.0
        received[p, :] = 0.0
        for t in range(fund_flow.shape[1]):
            outflow, left = min(fund_flow[p, t], 0.0), max(fund_flow[p, t], 0.0)
            for j in range(n_k):
                paid_in = -outflow * share[j]
                claim[j] = claim[j] * (1.0 + rate[j]) + paid_in
                got = min(left, claim[j]) if j < n_k - 1 else left
                left = left - got
                claim[j] = max(claim[j] - got, 0.0)
                flows[p, j, t] = got - paid_in
                contributed[p, j] += paid_in
                received[p, j] += got
