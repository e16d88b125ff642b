"""The field table: walk a scenario as rows of (path, value, unit, description, source)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from finmodel.scenario.distributions import _Spec

if TYPE_CHECKING:
    from finmodel.scenario.model import Scenario

__all__ = ["FieldRow", "dist_paths", "field_rows", "iter_dists", "parse_path", "resolve"]

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


@dataclass(frozen=True)
class FieldRow:
    path: str
    value: Any
    unit: str
    description: str
    source: str
    choices: tuple[str, ...] = ()  # the allowed values of a switch (a choice or yes/no field)

    @property
    def display_value(self) -> str:
        if isinstance(self.value, _Spec):
            return self.value.describe()
        if self.value is None:
            return "(unset)"
        if isinstance(self.value, float):
            return f"{self.value:,.6g}" if abs(self.value) >= 1000 else f"{self.value:.6g}"
        return str(self.value)


def parse_path(path: str) -> list[str | int]:
    """``factories[2].gpus`` -> ``['factories', 2, 'gpus']``; ValueError if malformed."""
    steps: list[str | int] = []
    for part in path.split("."):
        pos = 0
        if not part:
            raise ValueError(f"malformed field path {path!r}")
        for m in _STEP.finditer(part):
            if m.start() != pos:
                raise ValueError(f"malformed field path {path!r}")
            steps.append(m.group(1) if m.group(1) else int(m.group(2)))
            pos = m.end()
        if pos != len(part):
            raise ValueError(f"malformed field path {path!r}")
    return steps


def resolve(sc: Scenario, path: str) -> Any:
    """The value at a dotted path (KeyError/IndexError if absent)."""
    obj: Any = sc
    for step in parse_path(path):
        if isinstance(step, int):
            obj = obj[step]
        elif isinstance(obj, BaseModel) and step in type(obj).model_fields:
            obj = getattr(obj, step)
        else:
            raise KeyError(step)
    return obj


def _section_rows(section: BaseModel, prefix: str) -> Iterator[FieldRow]:
    cls = type(section)
    sources: dict[str, str] = getattr(section, "sources", {})
    for name, info in cls.model_fields.items():
        if name == "sources":
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        yield FieldRow(
            path=f"{prefix}{name}",
            value=getattr(section, name),
            unit=str(extra.get("unit", "")),
            description=info.description or "",
            source=sources.get(name, ""),
            choices=_choices(info.annotation),
        )


def _choices(annotation: Any) -> tuple[str, ...]:
    """The values a switch allows, as shown: a Literal's options, or True / False."""
    if annotation is bool:
        return ("True", "False")
    if get_origin(annotation) is Literal:
        return tuple(str(a) for a in get_args(annotation))
    return ()


def field_rows(sc: Scenario) -> Iterator[FieldRow]:
    """Every input of the scenario, sections in file order, factories last but one."""
    for name, info in type(sc).model_fields.items():
        value = getattr(sc, name)
        if isinstance(value, BaseModel):
            yield from _section_rows(value, f"{name}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from _section_rows(item, f"{name}[{i}].")
        else:
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            yield FieldRow(name, value, str(extra.get("unit", "")), info.description or "", "")


def iter_dists(sc: Scenario) -> Iterator[tuple[str, _Spec]]:
    """(path, spec) for every distribution-valued input, fixed ones included."""
    for row in field_rows(sc):
        if isinstance(row.value, _Spec):
            yield row.path, row.value


def dist_paths(sc: Scenario) -> list[str]:
    return [path for path, _ in iter_dists(sc)]
