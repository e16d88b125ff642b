"""The finmodel command line for issue 3: scenarios, show, validate."""

from __future__ import annotations

import finmodel
from finmodel.cli import main
from finmodel.scenario import field_rows


def test_scenarios_lists_every_preset(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in finmodel.list_scenarios():
        assert name in out


def test_show_prints_every_assumption_with_unit_and_source(capsys, base):
    assert main(["show", "base"]) == 0
    out = capsys.readouterr().out
    table, corr = out.split("rank correlation")
    lines = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    for row in field_rows(base):
        if row.path.startswith("correlation.") or row.path in ("name", "description"):
            continue
        line = lines[row.path]
        assert row.unit in line, row.path
        assert row.source in line, row.path
    assert "market.gpu_hour_price_erosion_per_year" in corr


def test_show_markdown_and_csv(capsys):
    assert main(["show", "thirteen_factories", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| field | value | unit | description | source |")
    assert "factories\\[12].tax_rate" in md  # brackets escaped: text, not a markdown link
    assert main(["show", "base", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("field,value,unit,description,source")


def test_validate_ok_and_bad_mix(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "base"\n[eib]\nmargin = -0.01\n')
    assert main(["validate", "base", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "base: OK" in captured.out
    assert captured.err.strip() == (
        f"error: {bad}: eib.margin = -0.01: values must lie in [0, inf]; "
        "this distribution spans [-0.01, -0.01]"
    )


def test_show_unknown_preset_exits_2(capsys):
    assert main(["show", "bsae"]) == 2
    assert "did you mean 'base'" in capsys.readouterr().err
