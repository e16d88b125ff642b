"""A straightforward per-path, per-factory Python implementation of the operations model.

Written independently of ``finmodel.operations`` (scalar loops over fleets and periods, no
numpy) to check the vectorised engine and to measure its speed-up (benchmarks/).
"""

from __future__ import annotations

import math

HOURS = 8760.0


def overlap(t0: float, t1: float, a: float, b: float) -> float:
    return max(0.0, min(t1, b) - max(t0, a))


def pay_period(time: float, periods: int) -> int:
    return min(max(math.ceil(time) - 1, 0), periods - 1)


def factory_reference(x: dict, periods: int) -> dict[str, list[float]]:
    """One factory on one path. ``x`` holds scalars and per-period lists named as in Drivers."""
    T = periods
    gpus = x["gpus"]
    build_end = x["close_year"] + x["build_years"]
    cod = build_end + max(x["grid_delay_years"], x["chip_delay_years"])
    life = x["gpu_life_years"]
    mw = gpus * x["it_kw_per_gpu"] * x["pue"] / 1000.0
    facility_capex = mw * (x["facility_capex_eur_m_per_mw"] + x["grid_capex_eur_m_per_mw"])
    first_purchase = x["close_year"] if x["gpus_bought_at_close"] else cod

    z = [0.0] * T
    out = {k: list(z) for k in (
        "hours", "rev_market", "rev_contract", "util_years", "serve_years", "fleet_dep",
        "fleet_opex_base", "resale", "capex_gpu_initial", "capex_gpu_refresh", "compute_hours")}
    erosion = x["gpu_hour_price_erosion_per_year"]
    growth = x["price_performance_growth_per_year"]
    term = x["anchor_contract_years"]
    # a contract's price against a one-year contract signed at the same time: the average
    # of (1 - erosion)^s over its term, over that average over one year
    keep = 1 - erosion
    level = 1.0 if erosion == 0 else (1 - keep ** term) / (term * (1 - keep))
    fleet_terminal = 0.0
    k = 0
    while True:
        start = cod + k * life
        end = start + life
        purchase = first_purchase if k == 0 else start
        if purchase >= T:
            break
        j = pay_period(purchase, T)
        cost = gpus * x["compute_capex_eur_per_gpu"][j] / 1e6
        generation = ((1 + growth) * (1 - erosion)) ** (purchase - first_purchase)
        contracts = []  # (from, to, price per GPU-hour)
        signed = start
        while signed < end:
            period = min(max(math.floor(signed), 0), T - 1)
            contracts.append((signed, min(signed + term, end),
                              x["gpu_hour_price_launch_eur"] * x["gpu_hour_price_factor"][period]
                              * keep ** (signed - purchase) * generation * level))
            signed += term
        out["capex_gpu_initial" if k == 0 else "capex_gpu_refresh"][j] += cost
        for t in range(T):
            serve = overlap(t, t + 1, start, end)
            if serve <= 0:
                continue
            ramp = overlap(t, t + 1, cod, cod + 1) if k == 0 else 0.0
            used = ramp * x["utilisation_launch_year"] + (serve - ramp) * x["utilisation_steady"][t]
            age = max(t, start) - purchase
            price = (x["gpu_hour_price_launch_eur"] * keep ** age * x["gpu_hour_price_factor"][t]
                     * generation)
            h = gpus * HOURS * used
            out["hours"][t] += h
            out["rev_market"][t] += h * price / 1e6
            paid = 1.0 if x["anchor_take_or_pay"] else used / serve
            out["rev_contract"][t] += sum(gpus * HOURS * overlap(t, t + 1, a, b) * paid * p / 1e6
                                          for a, b, p in contracts)
            out["compute_hours"][t] += h * (1 + x["price_performance_growth_per_year"]) ** (
                purchase - first_purchase)
            out["util_years"][t] += used
            out["serve_years"][t] += serve
            out["fleet_dep"][t] += cost / life * serve
            out["fleet_opex_base"][t] += cost * serve
        if end <= T:
            out["resale"][pay_period(end, T)] += cost * x["gpu_resale_share_5y"] ** ((end - purchase) / 5)
        else:
            fleet_terminal += cost * x["gpu_resale_share_5y"] ** ((T - purchase) / 5)
        k += 1

    q, a, disc = x["public_access_share"], x["anchor_share_of_commercial"], x["public_access_discount"]
    market_share = (1 - q) * (1 - a) * (1 + x["on_demand_premium"]) + q * (1 - disc)
    if x["public_access_paid_by_fund"]:
        market_share += q * disc
    opex_share = (x["staff_maintenance_share_of_capex"] + x["network_software_share_of_capex"]
                  + x["insurance_property_share_of_capex"])
    life_f = x["facility_life_years"]
    res: dict[str, list[float]] = {k: list(z) for k in (
        "revenue", "energy_cost", "other_opex", "ebitda", "depreciation", "tax", "capex",
        "unlevered_fcf", "pre_financing_cash", "gpu_hours_m", "energy_gwh", "compute_hours_adjusted_m")}
    fac_dep_total = 0.0
    pool = 0.0
    # plant replacements: due every plant life from the end of construction, at the cost index
    # of the period they are paid in (the index grows beyond the horizon at its last rate),
    # reserved for evenly over the life before each
    index = x["opex_index"]
    growth = index[-1] / index[-2] if T > 1 else 1.0
    plant_life = x["plant_life_years"]
    plant, reserve_in, plant_dep = [0.0] * T, [0.0] * T, [0.0] * T
    due = build_end + plant_life
    while due - plant_life < T:
        pay = max(math.ceil(due) - 1, 0)
        cost = (x["plant_share_of_facility"] * facility_capex
                * (index[pay] if pay < T else index[-1] * growth ** (pay - T + 1)))
        for t in range(T):
            reserve_in[t] += cost / plant_life * overlap(t, t + 1, due - plant_life, due)
            if due < T:
                plant_dep[t] += cost / plant_life * overlap(t, t + 1, due, due + plant_life)
        if due < T:
            plant[pay] += cost
        due += plant_life
    cap_total = 0.0
    dep_fleet_total = sum(out["fleet_dep"])
    for t in range(T):
        construction = facility_capex * overlap(t, t + 1, x["close_year"], build_end) / x["build_years"]
        revenue = out["rev_contract"][t] * (1 - q) * a + out["rev_market"][t] * market_share
        mwh = gpus * x["it_kw_per_gpu"] * x["pue"] * HOURS * (
            x["idle_power_share"] * out["serve_years"][t]
            + (1 - x["idle_power_share"]) * out["util_years"][t]) / 1000
        energy = mwh * x["power_price_eur_mwh"][t] / 1e6
        active = min(max(t + 1 - build_end, 0.0), 1.0)
        other = opex_share * (facility_capex * active * x["opex_index"][t] + out["fleet_opex_base"][t])
        ebitda = revenue - energy - other
        fac_dep = facility_capex / life_f * overlap(t, t + 1, build_end, build_end + life_f) + plant_dep[t]
        fac_dep_total += fac_dep
        capex = construction + out["capex_gpu_initial"][t] + out["capex_gpu_refresh"][t] + plant[t]
        cap_total += capex
        res["revenue"][t], res["energy_cost"][t], res["other_opex"][t] = revenue, energy, other
        res["ebitda"][t], res["capex"][t] = ebitda, capex
        res["depreciation"][t] = out["fleet_dep"][t] + fac_dep
        res["gpu_hours_m"][t] = out["hours"][t] / 1e6
        res["compute_hours_adjusted_m"][t] = out["compute_hours"][t] / 1e6
        res["energy_gwh"][t] = mwh / 1000
    fleet_book = sum(out["capex_gpu_initial"]) + sum(out["capex_gpu_refresh"]) - dep_fleet_total
    construction_total = cap_total - sum(out["capex_gpu_initial"]) - sum(out["capex_gpu_refresh"])
    facility_book = construction_total - fac_dep_total
    for t in range(T):
        taxable = res["ebitda"][t] - res["depreciation"][t] + out["resale"][t]
        terminal = 0.0
        if t == T - 1:
            taxable += fleet_terminal - fleet_book
            terminal = fleet_terminal + facility_book
        profit = max(taxable, 0.0)
        used = min(pool, profit)
        tax = x["tax_rate"] * (profit - used)
        pool += max(-taxable, 0.0) - used
        res["tax"][t] = tax
        res["unlevered_fcf"][t] = res["ebitda"][t] - tax - res["capex"][t] + out["resale"][t] + terminal
        res["pre_financing_cash"][t] = (res["ebitda"][t] - tax - out["capex_gpu_refresh"][t]
                                        - reserve_in[t] + out["resale"][t])
    return res


def drivers_row(d, p: int, f: int) -> dict:
    """Scalars and per-period lists of one (path, factory) from a Drivers object."""
    import numpy as np

    row = {}
    for name, value in vars(d).items():
        if isinstance(value, np.ndarray):
            arr = np.broadcast_to(value, (d.n_paths, d.n_factories, *value.shape[2:]))
            cell = arr[p, f]
            row[name] = cell.tolist() if cell.ndim else float(cell)
        else:
            row[name] = value
    return row
