"""The one error type users see for bad input, and the problems it carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Problem", "ScenarioError", "format_value"]


def format_value(value: Any, limit: int = 120) -> str:
    """Short, readable rendering of a user's value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input.

    path: dotted field path such as ``eib.tenor_years`` or ``factories[2].gpus``;
    value: what the user gave; message: what is allowed.
    """

    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        if not self.path:  # a problem with the file or name itself
            return self.message if self.value is None else f"{self.value!s}: {self.message}"
        return f"{self.path} = {format_value(self.value)}: {self.message}"


class ScenarioError(ValueError):
    """Bad scenario input. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | Problem, source: str | None = None):
        self.problems: list[Problem] = [problems] if isinstance(problems, Problem) else problems
        self.source = source
        head = f"{source}: " if source else ""
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}{count} problem{'s' if count != 1 else ''} in scenario:\n{lines}")
