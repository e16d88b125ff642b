"""The validated scenario: one pydantic model per section, one field table for everything.

Every field carries a unit (``json_schema_extra["unit"]``) and a one-line description; that
table drives validation messages, ``finmodel show``, the README's assumptions table and the
Excel Inputs sheet. Sections carry a ``sources`` table: field name -> citation and date.
"""

from __future__ import annotations

import difflib
import unicodedata
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from finmodel.scenario.distributions import Dist, DistNonNegative, DistPositive, DistShare

__all__ = [
    "EIB",
    "Correlation",
    "Costs",
    "Energy",
    "Factory",
    "Fund",
    "Macro",
    "Market",
    "Private",
    "Scenario",
    "Tax",
    "Timeline",
    "Tranche",
]

Unit = str


def f(default: Any, unit: Unit, description: str, **constraints: Any) -> Any:
    """A field with its unit and description (the field table's one row)."""
    return Field(default, description=description, json_schema_extra={"unit": unit}, **constraints)


def closest(name: str, candidates: list[str]) -> str:
    """' (did you mean X?)' for the nearest valid name, or ''."""
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _printable(text: str, line_breaks: bool) -> str:
    """``text`` unchanged, or a named error at its first character that a workbook, a terminal
    or a file name cannot show safely: control characters (tabs and line breaks only where
    ``line_breaks``), lone surrogates and the XML non-characters U+FFFE and U+FFFF."""
    for pos, ch in enumerate(text):
        if line_breaks and ch in "\t\n\r":
            continue
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in "\ufffe\uffff":
            raise PydanticCustomError(
                "text_character",
                "holds the character U+{code} at position {pos}; {allowed}",
                {"code": f"{ord(ch):04X}", "pos": pos, "allowed": (
                    "text fields hold printable characters, tabs and line breaks" if line_breaks
                    else "names hold printable characters only (no control characters or line breaks)")},
            )
    return text


Name = Annotated[str, AfterValidator(lambda s: _printable(s, line_breaks=False))]
"""A one-line name (scenario, factory, tranche): printable characters only."""
Text = Annotated[str, AfterValidator(lambda s: _printable(s, line_breaks=True))]
"""Free text (description, sources): printable characters, tabs and line breaks."""


class Section(BaseModel):
    """Base of every section: frozen, no unknown keys, no NaN/inf, a checked ``sources`` table."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True)

    sources: dict[str, Text] = Field(
        default_factory=dict,
        description="where each value comes from: field name -> citation and date",
        json_schema_extra={"unit": "text"},
    )

    @field_validator("sources")
    @classmethod
    def _sources_name_fields(cls, sources: dict[str, str]) -> dict[str, str]:
        fields = [n for n in cls.model_fields if n != "sources"]
        for key in sources:
            if key not in fields:
                raise PydanticCustomError(
                    "unknown_source_key",
                    "not a field of this section{hint}",
                    {"key": key, "hint": closest(key, fields)},
                )
        return sources


class Timeline(Section):
    start_year: int = f(2026, "year", "calendar year of financial close (period 0)", ge=2020, le=2100)
    horizon_years: int = f(25, "years", "number of annual periods modelled", ge=3, le=60)


class Macro(Section):
    eur_usd: DistPositive = f(1.16, "USD per EUR", "exchange rate; USD inputs are divided by it")
    inflation_per_year: float = f(
        0.02, "1/yr", "inflation applied to other opex (nominal model)", ge=-0.05, le=0.5
    )
    base_rate: DistNonNegative = f(
        0.024, "1/yr", "EUR swap rate underlying senior loans (10-15y)"
    )
    project_discount_rate: float = f(
        0.075, "1/yr", "nominal rate for project (unlevered) NPV", gt=-0.5, le=1.0
    )
    public_discount_rate: float = f(
        0.05, "1/yr", "nominal social discount rate for public subsidy PV", gt=-0.5, le=1.0
    )


class Fund(Section):
    size_eur_m: float = f(20_000.0, "EUR m", "cap on public commitments of the gigafactory fund", gt=0)
    eu_grant_total_eur_m: float = f(
        4_100.0, "EUR m", "EU grant element reported for the first call: the EU part of each "
        "site's public money is served from it in order of close; host states pay the rest", ge=0
    )
    instrument: Literal["grant", "equity", "sub_loan"] = f(
        "grant", "choice", "how the fund invests in each factory"
    )
    allocation: Literal["equal", "pro_rata_capex", "share_of_capex", "explicit"] = f(
        "share_of_capex",
        "choice",
        "how the fund is split: each site's public share of capex (capped), equal, "
        "pro rata to capex, or explicit amounts per factory",
    )
    public_share_of_capex_max: float = f(
        0.35, "share", "cap on public (EU + host state) money as a share of site capex", ge=0, le=1
    )
    eu_share_of_capex_max: float = f(
        0.17, "share", "cap on the EU part of public money as a share of site capex", ge=0, le=1
    )
    public_eur_m_per_site_max: float = f(
        2_000.0, "EUR m", "cap on public money per site", ge=0
    )
    sub_loan_rate: float = f(
        0.04, "1/yr", "interest on the fund's subordinated loans (if instrument = sub_loan)",
        ge=0, le=0.5,
    )


class Tranche(Section):
    name: Name = f(..., "text", "tranche name", min_length=1, max_length=80)
    share: float = f(..., "share", "share of every fund commitment this tranche funds", gt=0, le=1)
    target_return: float = f(
        0.0, "1/yr", "return accrued on the tranche's claim before junior tranches are paid",
        ge=0, le=0.5,
    )
    priority: int = f(
        ..., "rank", "order of payment: 1 is paid first; the last tranche takes the first loss "
        "and any residual", ge=1, le=20,
    )
    public: bool = f(True, "yes/no", "public money (EU, member states, promotional banks)")


class EIB(Section):
    share_of_cost: float = f(0.33, "share", "EIB senior loan as a share of eligible cost", ge=0, le=1)
    share_of_cost_max: float = f(
        0.50, "share", "EIB policy cap on its share of eligible cost", ge=0, le=0.5
    )
    tenor_years: int = f(15, "years", "from financial close to final repayment", ge=2, le=40)
    grace_years: int | None = f(
        None, "years", "interest-only years from close; unset = until commercial operation",
        ge=0, le=20,
    )
    margin: DistNonNegative = f(0.01, "1/yr", "EIB margin over the base rate")
    repayment: Literal["annuity", "linear", "sculpted"] = f(
        "sculpted", "choice", "repayment profile of the senior loan"
    )
    target_dscr: float = f(1.35, "ratio", "DSCR the sculpted loan is sized to", gt=1, le=5)
    lockup_dscr: float = f(1.15, "ratio", "below this DSCR distributions stop", gt=0, le=5)
    sizing_case: Literal["central", "mean", "p50", "downside"] = f(
        "central", "choice", "the case the senior debt is sized on: every uncertain input at its "
        "central value, its mean or its median, or (downside) the central case's CFADS scaled to "
        "the sizing_quantile of each site's operating cash over a pre-run of 1,000 paths",
    )
    sizing_quantile: float = f(
        0.1, "quantile", "quantile of operating cash the downside case sizes on (0.1: a P90 case, "
        "exceeded on 90% of paths)", gt=0, lt=1,
    )
    default_dscr: float = f(1.05, "ratio", "below this DSCR the loan is in default", gt=0, le=5)
    dsra_months: float = f(6.0, "months", "debt service held in reserve", ge=0, le=24)
    gearing_max: float = f(
        0.60, "share", "cap on senior debt commitments as a share of construction cost", ge=0, le=1
    )
    upfront_fee: float = f(0.0, "share", "front-end fee on the EIB commitment, paid at close",
                           ge=0, le=0.1)
    default_trigger: Literal["dscr_or_payment", "payment"] = f(
        "dscr_or_payment", "choice",
        "event of default: DSCR below default_dscr or a missed payment, or a missed payment only",
    )
    availability_years: int = f(
        4, "years", "years after a site's close in which the senior loans can be drawn; what is "
        "not drawn by then is cancelled and equity pays", ge=1, le=60,
    )
    equity_cures_max: int = f(
        2, "cures", "covenant breaches the sponsors may cure with equity (up to the default DSCR) "
        "over the loan's life, never on two tests in a row", ge=0, le=10,
    )
    cash_sweep_share: float = f(
        0.5, "share", "share of the trapped cash that prepays the senior loans in a lock-up year",
        ge=0, le=1,
    )
    cash_sweep_share_repeat: float = f(
        1.0, "share", "the same from the second lock-up year in a row", ge=0, le=1,
    )
    cash_sweep_to: Literal["pro_rata", "eib_first", "commercial_first"] = f(
        "pro_rata", "choice", "which senior loan the cash sweep prepays: both pro rata to their "
        "balances, or one first and the other with what is left",
    )
    breaches_to_acceleration: int = f(
        2, "tests", "annual DSCR tests below default_dscr in a row before lenders accelerate "
        "(a payment default accelerates at once); 1 = the first breach", ge=1, le=10,
    )
    facility_recovery_haircut: DistShare = f(
        0.5, "share", "share of the facility's book value lost when lenders enforce"
    )
    enforcement_cost_share: float = f(
        0.05, "share", "enforcement costs as a share of the assets recovered", ge=0, le=1
    )


class Private(Section):
    equity_hurdle_irr: float = f(0.12, "1/yr", "return private equity requires", gt=-1, le=1)
    commercial_debt_share: float = f(
        0.0, "share", "commercial senior debt (pari passu with EIB) as a share of cost", ge=0, le=1
    )
    senior_spread: DistNonNegative = f(
        0.0225, "1/yr", "commercial senior debt spread over the base rate"
    )
    commercial_upfront_fee: float = f(
        0.015, "share", "front-end fee on commercial senior commitments, paid at close", ge=0, le=0.1
    )
    refresh_funding: Literal["hardware_loan", "equity", "cash"] = f(
        "hardware_loan", "choice",
        "how GPU refreshes are paid: a hardware loan (senior, pari passu) plus equity, equity "
        "only, or from operating cash (inside CFADS)",
    )
    hardware_loan_share: float = f(
        0.6, "share", "share of each refresh borrowed as a hardware loan", ge=0, le=1
    )
    hardware_loan_tenor_years: int = f(
        5, "years", "annuity term of each hardware loan (from the period after drawing)", ge=1, le=15
    )
    hardware_loan_spread: DistNonNegative = f(
        0.045, "1/yr", "hardware (GPU-backed) loan spread over the base rate"
    )


def _support_within(spec, low: float, high: float, rule: str):
    """``spec`` if its whole support lies in [low, high]; else ValueError(rule and the span)."""
    lo, hi = spec.support
    if lo < low or hi > high:
        raise ValueError(f"{rule}; this distribution spans [{lo:g}, {hi:g}]")
    return spec


class Market(Section):
    gpu_price_usd: DistPositive = f(40_000.0, "USD per GPU", "price of a current-generation GPU")
    gpu_price_growth_per_year: Dist = f(
        0.0, "1/yr", "nominal change per year of a flagship GPU's price (at refresh)"
    )
    system_cost_share_of_gpu_price: DistNonNegative = f(
        0.19, "share", "servers, network and storage per GPU, as a share of the GPU price"
    )
    gpu_hour_price_launch_usd: DistPositive = f(
        4.00, "USD per GPU-hour", "reserved price of a new-generation GPU-hour at launch"
    )
    on_demand_premium: DistNonNegative = f(
        0.25, "share", "on-demand price above the reserved price"
    )
    gpu_hour_price_erosion_per_year: DistShare = f(
        0.29, "1/yr", "yearly fall of a given chip's GPU-hour price with age"
    )
    gpu_hour_price_shock: DistShare = f(
        0.0, "share", "market-wide fall of GPU-hour prices (oversupply), reached after shock years"
    )
    gpu_hour_price_shock_years: float = f(
        2.0, "years", "years over which the GPU-hour price shock builds up", gt=0, le=30
    )
    gpu_hour_price_shock_start_years: float = f(
        0.0, "years", "years after portfolio close at which the GPU-hour price shock starts",
        ge=0, le=60,
    )
    price_performance_growth_per_year: DistNonNegative = f(
        0.40, "1/yr", "yearly gain in compute per euro of ML GPUs (new generations)"
    )
    gpu_useful_life_years: Dist = f(
        5, "years", "years a GPU fleet serves before refresh"
    )
    gpu_resale_share_5y: DistShare = f(
        0.12, "share", "resale value of a 5-year-old GPU as a share of its cost (age a: share^(a/5))"
    )
    utilisation_launch_year: DistShare = f(
        0.35, "share", "utilisation in the first 12 months of operation"
    )
    utilisation_steady: DistShare = f(0.85, "share", "utilisation after the launch year")
    public_access_share: DistShare = f(
        0.20, "share", "share of sold capacity reserved for research, start-ups and SMEs"
    )
    anchor_share_of_commercial: float = f(
        0.75, "share", "anchor contracts as a share of commercial (non-public) capacity",
        ge=0, le=1,
    )
    anchor_contract_years: Dist = f(
        2.0, "years", "term of an anchor contract: signed at a fleet's start at the market price "
        "of that year, then renewed at the market price every term"
    )
    retire_unprofitable_fleets: bool = f(
        False, "yes/no", "retire a GPU fleet early, resell it and buy the next, at the end of the "
        "first year its cash margin per GPU-hour (market price - energy - its opex) is negative "
        "while a new fleet's would be positive"
    )
    anchor_take_or_pay: bool = f(
        True, "yes/no", "anchor customers pay for their contracted capacity whether they use it "
        "or not (utilisation risk stays on the uncontracted capacity)"
    )
    public_access_discount: DistShare = f(
        0.5, "share", "discount on the reserved price for public-access hours (1 = free)"
    )
    public_access_payer: Literal["project", "fund"] = f(
        "project",
        "choice",
        "who bears the discount: the project forgoes it, or the fund buys the hours at market price",
    )
    chip_delivery_delay_months: DistNonNegative = f(
        0.0, "months", "GPU delivery delay after the facility is ready"
    )
    gpu_price_volatility: float = f(
        0.10, "1/sqrt(yr)", "volatility of the log GPU price path (random walk, global market)",
        ge=0, le=2,
    )
    gpu_hour_price_volatility: float = f(
        0.10, "1/sqrt(yr)", "volatility of the log GPU-hour price factor", ge=0, le=2
    )
    gpu_hour_price_half_life_years: float | None = f(
        None, "years", "half-life of the log GPU-hour price factor's reversion to its trend "
        "(empty: a random walk)", gt=0, le=100,
    )
    chip_demand_correlation: float = f(
        0.0, "correlation", "correlation of the GPU purchase price shocks with the common AI-demand "
        "shocks that move GPU-hour prices and utilisation", ge=-1, le=1,
    )
    utilisation_volatility: float = f(
        0.30, "1/sqrt(yr)", "volatility of steady utilisation in logit space (mean-reverting)",
        ge=0, le=5,
    )
    demand_common_share: float = f(
        0.7, "share", "share of GPU-hour price and utilisation noise common to all sites (AI demand)",
        ge=0, le=1,
    )

    @field_validator("anchor_contract_years")
    @classmethod
    def _contract_at_least_a_year(cls, spec):
        return _support_within(spec, 1, 30, "contract terms must lie in [1, 30] years")

    @field_validator("gpu_useful_life_years")
    @classmethod
    def _life_whole_years(cls, spec):
        lo, hi = spec.support
        values = getattr(spec, "values", [spec.central])
        if spec.dist not in ("fixed", "discrete") or any(v != int(v) for v in values):
            raise ValueError("useful life must be whole years: a fixed number or a discrete spec")
        if lo < 1 or hi > 30:
            raise ValueError(f"useful life must lie in [1, 30] years; spans [{lo:g}, {hi:g}]")
        return spec


class Energy(Section):
    it_kw_per_gpu: DistPositive = f(1.8, "kW per GPU", "IT power per GPU incl. its share of servers")
    pue: Dist = f(1.2, "ratio", "power usage effectiveness (facility / IT power)")
    idle_power_share: DistShare = f(
        0.30, "share", "power an idle GPU still draws, as a share of full load"
    )
    power_price_eur_mwh: DistPositive = f(
        110.0, "EUR/MWh", "long-run level of the power price paid"
    )
    power_price_start_eur_mwh: float | None = f(
        None, "EUR/MWh", "power price in period 0; unset = the long-run level", gt=0
    )
    power_price_half_life_years: float = f(
        1.0, "years", "half-life of reversion to the long-run level (in logs)", gt=0, le=50
    )
    power_price_volatility: float = f(
        0.25, "1/sqrt(yr)", "volatility of the log power price", ge=0, le=3
    )
    power_price_jump_probability: float = f(
        0.05, "1/yr", "yearly probability of a power price shock", ge=0, le=1
    )
    power_price_jump_log_size: float = f(
        0.7, "log", "size of a power price shock in logs (0.7 = x2), then it reverts", ge=-3, le=3
    )
    power_price_common_share: float = f(
        0.7, "share", "share of power price noise and shocks common to all sites (energy market)",
        ge=0, le=1,
    )

    @field_validator("pue")
    @classmethod
    def _pue_at_least_one(cls, spec):
        return _support_within(spec, 1.0, 3.0, "PUE must lie in [1, 3]")


class Costs(Section):
    facility_capex_usd_m_per_mw: DistPositive = f(
        16.5, "USD m per MW", "shell, cooling and electrical plant per MW of facility power"
    )
    grid_capex_eur_m_per_mw: DistNonNegative = f(
        0.10, "EUR m per MW", "grid connection (substation, lines) per MW of facility power"
    )
    build_months: DistPositive = f(24.0, "months", "construction time from financial close")
    staff_maintenance_share_of_capex: DistShare = f(
        0.0052, "1/yr", "staff and maintenance per year, as a share of the capex in service "
        "(facility and GPU fleet)"
    )
    network_software_share_of_capex: DistShare = f(
        0.0012, "1/yr", "network, bandwidth and software per year, as a share of the capex in service"
    )
    insurance_property_share_of_capex: DistShare = f(
        0.0016, "1/yr", "insurance and property tax per year, as a share of the capex in service"
    )
    facility_life_years: int = f(
        15, "years", "depreciation life of facility and grid connection", ge=1, le=60
    )
    plant_share_of_facility: DistShare = f(
        0.0, "share", "mechanical and electrical plant (power, cooling) as a share of facility "
        "capex, replaced at the end of its life at that year's cost"
    )
    plant_life_years: int = f(
        12, "years", "life of the mechanical and electrical plant", ge=1, le=60
    )
    gpus_bought_at: Literal["energisation", "close"] = f(
        "energisation", "choice", "when the first GPU fleet is paid: at energisation or at close"
    )


class Tax(Section):
    interest_limitation: bool = f(
        True, "yes/no", "EU interest limitation (ATAD art. 4): net borrowing costs deductible up to "
        "a share of EBITDA or the safe harbour, the rest carried forward",
    )
    interest_limit_share_of_ebitda: float = f(
        0.30, "share", "net borrowing costs deductible up to this share of EBITDA", ge=0, le=1
    )
    interest_safe_harbour_eur_m: float = f(
        3.0, "EUR m", "net borrowing costs deductible in any case, per site and year", ge=0, le=1000
    )


class Factory(Section):
    name: Name = f(..., "text", "site name", min_length=1, max_length=80)
    country: str = f(..., "ISO 3166 alpha-2", "host member state", pattern=r"^[A-Z]{2}$")
    kind: Literal["gigafactory", "ai_factory"] = f("gigafactory", "choice", "type of site")
    gpus: int | None = f(None, "GPUs", "GPU count (give this or facility_mw)", ge=1, le=5_000_000)
    facility_mw: float | None = f(
        None, "MW", "facility power budget (give this or gpus)", gt=0, le=20_000
    )
    tax_rate: float = f(..., "share", "corporate income tax rate of the host country", ge=0, lt=1)
    public_share_of_capex: float = f(
        0.35, "share", "public (EU + host state) money as a share of capex, before caps", ge=0, le=1
    )
    public_eur_m_max: float | None = f(
        None, "EUR m", "cap on public money for this site; unset = the fund's per-site cap", ge=0
    )
    fund_eur_m: float | None = f(
        None, "EUR m", "explicit fund amount (allocation = explicit)", ge=0
    )
    grid_delay_years: DistNonNegative = f(
        0.0, "years", "grid connection delay after construction"
    )
    start_delay_years: int = f(
        0, "years", "years after the portfolio's close that this site reaches close", ge=0, le=30
    )

    @model_validator(mode="after")
    def _size_given_once(self):
        if self.gpus is None and self.facility_mw is None:
            raise PydanticCustomError(
                "sizing", "give either gpus or facility_mw for factory {name!r}", {"name": self.name}
            )
        return self


class Correlation(Section):
    inputs: list[str] = f([], "field paths", "uncertain inputs, by dotted path, that are correlated")
    matrix: list[list[float]] = f([], "rank correlation", "target rank correlation among inputs")


class Scenario(BaseModel):
    """A complete, validated set of inputs. Frozen: change it with ``with_updates``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True)

    name: Name = f("custom", "text", "scenario name", min_length=1, max_length=80)
    description: Text = f("", "text", "what this scenario represents", max_length=2000)
    close_on: str | None = f(
        None, "preset", "a shipped preset whose base case sizes this scenario's deal at close "
        "(its market, energy, cost, macro, factory and timeline inputs; the fund, EIB, private "
        "and tranche terms stay this scenario's): a stress that lenders did not foresee; unset = "
        "this scenario's own base case",
    )
    timeline: Timeline = Field(default_factory=Timeline)
    macro: Macro = Field(default_factory=Macro)
    fund: Fund = Field(default_factory=Fund)
    eib: EIB = Field(default_factory=EIB)
    private: Private = Field(default_factory=Private)
    market: Market = Field(default_factory=Market)
    energy: Energy = Field(default_factory=Energy)
    costs: Costs = Field(default_factory=Costs)
    tax: Tax = Field(default_factory=Tax)
    tranches: list[Tranche] = Field(
        default_factory=lambda: [Tranche(name="public", share=1.0, priority=1)],
        min_length=1, max_length=10,
        description="layers of the fund, from senior (priority 1) to first loss",
    )
    factories: list[Factory] = Field(min_length=1, max_length=40)
    correlation: Correlation = Field(default_factory=Correlation)

    @model_validator(mode="after")
    def _cross_checks(self):
        from finmodel.scenario.checks import cross_field_problems

        problems = cross_field_problems(self)
        if problems:
            raise PydanticCustomError(
                "cross_checks",
                "{count} cross-field problems",
                {"count": len(problems), "problems": tuple(problems)},
            )
        return self

    # -- convenience used across the engine -------------------------------------------------
    @property
    def n_factories(self) -> int:
        return len(self.factories)

    @property
    def years(self) -> np.ndarray:
        """(T,) calendar years of the periods."""
        return self.timeline.start_year + np.arange(self.timeline.horizon_years)

    def uncertain_inputs(self) -> dict[str, Any]:
        """Dotted path -> distribution spec, for every input that is not fixed."""
        from finmodel.scenario.fields import iter_dists

        return {path: spec for path, spec in iter_dists(self) if not spec.is_fixed}

    def with_updates(self, updates: dict[str, Any]) -> Scenario:
        """New scenario with dotted-path updates applied and everything re-validated.

        ``{"eib.tenor_years": 20, "factories[2].gpus": 50_000, "energy.pue": 1.3}``; a number
        given for an uncertain input pins it to that value; the field's source becomes
        "user override".
        """
        from finmodel.scenario.io import apply_updates

        return apply_updates(self, updates)

    def with_centres(self, centres: dict[str, float], how: str = "scale") -> Scenario:
        """New scenario with uncertain inputs moved to new central values, keeping them uncertain.

        ``{"market.gpu_price_usd": 50_000}`` scales the GPU price distribution so that its
        central value is 50,000 (``how="scale"``, relative spread kept) or shifts it
        (``how="shift"``, absolute spread kept). A fixed input simply takes the value."""
        from finmodel.errors import Problem, ScenarioError
        from finmodel.scenario.distributions import _Spec
        from finmodel.scenario.fields import resolve

        updates, problems = {}, []
        for path, value in centres.items():
            try:
                spec = resolve(self, path)
            except (KeyError, IndexError, ValueError):
                problems.append(Problem(path, value, "no such input"))
                continue
            if not isinstance(spec, _Spec):
                problems.append(Problem(path, value, "not a distribution-valued input; use "
                                                     "with_updates"))
                continue
            try:
                updates[path] = spec.moved_to(float(value), how)
            except (TypeError, ValueError) as exc:
                problems.append(Problem(path, value, str(exc)))
        if problems:
            raise ScenarioError(problems, "with_centres")
        return self.with_updates(updates)

    def with_factories(self, names: list[str]) -> Scenario:
        """New scenario with only the factories named, in their original order."""
        from finmodel.errors import Problem, ScenarioError
        from finmodel.scenario.io import validate_data

        known = [f.name for f in self.factories]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise ScenarioError(Problem("factories", list(names), f"choose one or more of {known}"),
                                "with_factories")
        data = self.model_dump(mode="python")
        data["factories"] = [f for f in data["factories"] if f["name"] in names]
        return validate_data(data, "with_factories")

    def to_toml(self) -> str:
        """The scenario as TOML text; ``loads_scenario(sc.to_toml()) == sc``."""
        from finmodel.scenario.io import dumps_scenario

        return dumps_scenario(self)
