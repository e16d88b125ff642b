"""A corpus of bad scenario files: each error names the field and the value; CLI exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import finmodel
from finmodel.cli import main

BAD = sorted((Path(__file__).parent / "data" / "bad").glob("*.toml"))


def expectation(path: Path) -> tuple[str, str]:
    """The file's first line: ``# expect: FIELD | VALUE``."""
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect:"), path
    field, value = (part.strip() for part in first.removeprefix("# expect:").split("|"))
    return field, value


def test_corpus_is_large_enough():
    assert len(BAD) >= 25


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_api_error_names_field_and_value(path):
    field, value = expectation(path)
    with pytest.raises(finmodel.ScenarioError) as err:
        finmodel.load_scenario(path)
    text = str(err.value)
    assert field in text, text
    assert value in text, text


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_cli_validate_exits_2_with_one_line_per_problem(path, capsys):
    field, value = expectation(path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), err
    assert field in err and value in err
    assert "Traceback" not in err


def test_cli_in_a_real_process_prints_no_traceback():
    out = subprocess.run(
        [sys.executable, "-m", "finmodel.cli", "validate", *map(str, BAD[:3])],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.count("error: ") >= 3


def test_all_problems_reported_at_once(tmp_path):
    path = tmp_path / "many.toml"
    path.write_text('extends = "base"\n[eib]\ntenor_yeras = 4\nmargin = -1.0\n'
                    '[energy]\npue = 0.5\n[market]\nutilisation_steady = 2.0\n')
    with pytest.raises(finmodel.ScenarioError) as err:
        finmodel.load_scenario(path)
    paths = sorted(p.path for p in err.value.problems)
    assert paths == ["eib.margin", "eib.tenor_yeras", "energy.pue", "market.utilisation_steady"]
