"""Distribution specs for uncertain inputs: what the user writes in TOML.

Each spec knows its central value (what the base case uses) and its support; turning a spec
into draws is the sampling layer's job. In TOML a bare number means a fixed value::

    pue = 1.2
    utilisation_steady = { dist = "pert", low = 0.75, mode = 0.85, high = 0.95 }
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = [
    "DIST_TAGS",
    "Discrete",
    "Dist",
    "DistNonNegative",
    "DistPositive",
    "DistShare",
    "Fixed",
    "LogNormal",
    "Pert",
    "Triangular",
    "TruncNormal",
    "Uniform",
    "dist_within",
]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @property
    def central(self) -> float:
        """Value used by the base case (mode, median or the fixed value)."""
        raise NotImplementedError

    @property
    def support(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        raise NotImplementedError

    @property
    def is_fixed(self) -> bool:
        return False

    def describe(self) -> str:
        """Compact human-readable form, e.g. ``tri(0.75, 0.85, 0.95)``."""
        raise NotImplementedError

    def moved_to(self, centre: float, how: str = "scale") -> dict:
        """This distribution moved so that its central value is ``centre``, as a plain dict.

        ``how="scale"`` multiplies every value by centre / central (the relative spread stays;
        falls back to a shift when the central value is 0); ``"shift"`` adds centre - central
        (the absolute spread stays)."""
        c = self.central
        if how == "scale" and c != 0:
            a, b = centre / c, 0.0
        elif how in ("scale", "shift"):
            a, b = 1.0, centre - c
        else:
            raise ValueError(f"how must be 'scale' or 'shift', not {how!r}")
        data = self.model_dump()
        for key in ("value", "low", "mode", "high", "mean"):
            if key in data and math.isfinite(data[key]):
                data[key] = a * data[key] + b
        if "values" in data:
            data["values"] = [a * v + b for v in data["values"]]
        if "sd" in data:
            data["sd"] = abs(a) * data["sd"]
        return data


def _g(x: float) -> str:
    return f"{x:,.6g}" if abs(x) >= 1000 else f"{x:.6g}"


class Fixed(_Spec):
    dist: Literal["fixed"] = "fixed"
    value: float

    @property
    def central(self) -> float:
        return self.value

    @property
    def support(self) -> tuple[float, float]:
        return (self.value, self.value)

    @property
    def is_fixed(self) -> bool:
        return True

    def describe(self) -> str:
        return _g(self.value)


class _LowModeHigh(_Spec):
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        if not (self.low <= self.mode <= self.high and self.low < self.high):
            raise ValueError(
                f"needs low <= mode <= high and low < high; got low={self.low}, "
                f"mode={self.mode}, high={self.high}"
            )
        return self

    @property
    def central(self) -> float:
        return self.mode

    @property
    def support(self) -> tuple[float, float]:
        return (self.low, self.high)


class Triangular(_LowModeHigh):
    """Triangular on [low, high] with its peak at mode."""

    dist: Literal["triangular"] = "triangular"

    def describe(self) -> str:
        return f"tri({_g(self.low)}, {_g(self.mode)}, {_g(self.high)})"


class Pert(_LowModeHigh):
    """(Modified) PERT: a beta on [low, high] with mean (low + lamb*mode + high) / (lamb + 2)."""

    dist: Literal["pert"] = "pert"
    lamb: float = Field(4.0, gt=0, description="shape weight of the mode; 4 is classic PERT")

    def describe(self) -> str:
        return f"pert({_g(self.low)}, {_g(self.mode)}, {_g(self.high)})"


class LogNormal(_Spec):
    """Lognormal given by its 5th and 95th percentiles; central value is the median."""

    dist: Literal["lognormal"] = "lognormal"
    low: float = Field(gt=0, description="5th percentile")
    high: float = Field(gt=0, description="95th percentile")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"needs 0 < low (p5) < high (p95); got low={self.low}, high={self.high}")
        return self

    @property
    def central(self) -> float:
        return math.sqrt(self.low * self.high)

    @property
    def support(self) -> tuple[float, float]:
        return (math.ulp(0.0), math.inf)  # strictly positive

    def describe(self) -> str:
        return f"lognormal(p5={_g(self.low)}, p95={_g(self.high)})"


class TruncNormal(_Spec):
    """Normal(mean, sd) truncated to [low, high]; central value is ``mean``."""

    dist: Literal["truncnormal"] = "truncnormal"
    mean: float
    sd: float = Field(gt=0)
    low: float = -math.inf
    high: float = math.inf

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=True)

    @model_validator(mode="after")
    def _ordered(self):
        if math.isnan(self.mean) or math.isnan(self.sd) or math.isinf(self.mean):
            raise ValueError("mean and sd must be finite numbers")
        if not self.low <= self.mean <= self.high:
            raise ValueError(
                f"needs low <= mean <= high; got low={self.low}, mean={self.mean}, high={self.high}"
            )
        return self

    @property
    def central(self) -> float:
        return self.mean

    @property
    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def describe(self) -> str:
        return f"truncnormal({_g(self.mean)}, sd={_g(self.sd)}, [{_g(self.low)}, {_g(self.high)}])"


class Uniform(_Spec):
    dist: Literal["uniform"] = "uniform"
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"needs low < high; got low={self.low}, high={self.high}")
        return self

    @property
    def central(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def describe(self) -> str:
        return f"uniform({_g(self.low)}, {_g(self.high)})"


class Discrete(_Spec):
    """Finite set of values with probabilities; central value is the most likely value."""

    dist: Literal["discrete"] = "discrete"
    values: list[float] = Field(min_length=1)
    probs: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _probabilities(self):
        if len(self.values) != len(self.probs):
            raise ValueError(
                f"values ({len(self.values)}) and probs ({len(self.probs)}) differ in length"
            )
        if any(p < 0 for p in self.probs) or abs(sum(self.probs) - 1.0) > 1e-9:
            raise ValueError(f"probs must be >= 0 and sum to 1; they sum to {sum(self.probs):.12g}")
        if len(set(self.values)) != len(self.values):
            raise ValueError("values must be distinct")
        return self

    @property
    def central(self) -> float:
        return self.values[max(range(len(self.probs)), key=self.probs.__getitem__)]

    @property
    def support(self) -> tuple[float, float]:
        return (min(self.values), max(self.values))

    def describe(self) -> str:
        """``discrete(0:0.7, 1..7:0.0429 each)``: runs of equal probability are folded."""
        parts, i, n = [], 0, len(self.values)
        while i < n:
            j = i
            while j + 1 < n and abs(self.probs[j + 1] - self.probs[i]) < 1e-12:
                j += 1
            if j - i >= 2:
                parts.append(f"{_g(self.values[i])}..{_g(self.values[j])}:{self.probs[i]:.3g} each")
            else:
                parts.extend(f"{_g(self.values[k])}:{self.probs[k]:.3g}" for k in range(i, j + 1))
            i = j + 1
        return f"discrete({', '.join(parts)})"


def _number_means_fixed(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


DIST_TAGS = ("fixed", "triangular", "pert", "lognormal", "truncnormal", "uniform", "discrete")

Dist = Annotated[
    Fixed | Triangular | Pert | LogNormal | TruncNormal | Uniform | Discrete,
    Field(discriminator="dist"),
    BeforeValidator(_number_means_fixed),
]


def dist_within(lo: float, hi: float, *, open_low: bool = False):
    """After-validator: the distribution's support must lie in [lo, hi] (or (lo, hi])."""

    def check(spec: _Spec) -> _Spec:
        s_lo, s_hi = spec.support
        too_low = s_lo <= lo if open_low else s_lo < lo
        if too_low or s_hi > hi:
            left = "(" if open_low else "["
            raise ValueError(
                f"values must lie in {left}{_g(lo)}, {_g(hi)}]; this distribution spans "
                f"[{_g(s_lo)}, {_g(s_hi)}]"
            )
        return spec

    return AfterValidator(check)


DistShare = Annotated[Dist, dist_within(0.0, 1.0)]
DistPositive = Annotated[Dist, dist_within(0.0, math.inf, open_low=True)]
DistNonNegative = Annotated[Dist, dist_within(0.0, math.inf)]
