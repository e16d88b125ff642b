"""The README's promises: two commands up front, the same test command in CI, a short text; the
API reference lists every public name and the version agrees everywhere."""

from __future__ import annotations

import re

from conftest import ROOT

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


def test_readme_is_short_and_speaks_of_the_software_only():
    lines = README.splitlines()
    assert len(lines) <= 150
    for phrase in ("this session", "review commit", "after the review", "this round"):
        assert phrase not in README.lower(), phrase


def test_every_public_name_has_a_docstring_and_is_in_the_api_reference():
    import inspect

    import finmodel

    reference = (ROOT / "docs" / "reference.md").read_text()
    for name in finmodel.__all__:
        if name == "__version__":
            continue
        obj = getattr(finmodel, name)
        assert len(inspect.getdoc(obj) or "") > 30, name
        assert f"::: finmodel.{name}" in reference, name
    for method in ("summary", "fan", "event_curve", "covenant_curve", "cashflow_table", "risk",
                   "line_items", "to_xarray", "save", "load"):
        assert len(inspect.getdoc(getattr(finmodel.Results, method)) or "") > 30, method


def test_version_changelog_and_docs_agree():
    import tomllib

    import finmodel

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert finmodel.__version__ == version
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "mkdocs build --strict" in ci
