"""Shared fixtures and the rule for tests that need a system tool."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SYSTEM_TESTS = os.environ.get("FINMODEL_REQUIRE_SYSTEM_TESTS") == "1"


def require_tool(*names: str) -> str:
    """Path of the first tool found; skip (or fail under FINMODEL_REQUIRE_SYSTEM_TESTS=1)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    reason = f"system tool not installed: {' or '.join(names)}"
    if REQUIRE_SYSTEM_TESTS:
        pytest.fail(f"{reason} (FINMODEL_REQUIRE_SYSTEM_TESTS=1)")
    pytest.skip(reason)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def base():
    import finmodel

    return finmodel.load_scenario("base")
