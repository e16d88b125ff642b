"""The README's promises: two commands up front, the same test command in CI, a live table."""

from __future__ import annotations

import re

from conftest import ROOT

from finmodel.cli import assumptions_table, markdown_table

README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block and README.index(block.group(0)) < 40, "commands must open the README"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    app, tests = readme_commands()
    assert "streamlit run app.py" in app and "pip install" in app
    assert "pytest" in tests and "pip install" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci
    assert "FINMODEL_REQUIRE_SYSTEM_TESTS=1" in ci
    assert "ruff check" in ci


def test_readme_assumptions_table_is_generated_from_the_field_table(base):
    section = re.search(r"<!-- assumptions:begin -->\n(.*?)\n<!-- assumptions:end -->", README, re.S)
    assert section, "README needs the assumptions markers"
    assert section.group(1).strip() == markdown_table(assumptions_table(base)).strip(), (
        "README table out of date: run `finmodel show base --format markdown`"
    )


def test_readme_preset_outcomes_are_generated():
    from finmodel.cli import preset_outcomes_table

    section = re.search(r"<!-- presets:begin -->\n(.*?)\n<!-- presets:end -->", README, re.S)
    assert section, "README needs the presets markers"
    assert section.group(1).strip() == markdown_table(preset_outcomes_table()).strip(), (
        "README preset outcomes out of date: regenerate with finmodel.cli.preset_outcomes_table()"
    )
