"""The calibration report: generated, in sync, and its figures worked out independently."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import finmodel
from finmodel.calibration import COMPARABLES, METRICS, calibration_markdown, calibration_table
from finmodel.cli import main


def test_docs_calibration_report_is_up_to_date(base):
    text = (ROOT / "docs" / "calibration.md").read_text()
    assert text == calibration_markdown(base), "stale: run `finmodel calibration --out docs/calibration.md`"


def test_every_metric_has_sourced_comparables_and_every_comparable_a_metric():
    sources = (ROOT / "assumptions" / "SOURCES.md").read_text()
    for name in METRICS:
        assert any(c.metric == name for c in COMPARABLES), name
    for c in COMPARABLES:
        assert c.metric in METRICS and c.date
        assert f"- {c.source} " in sources, c.source


def test_calibration_figures_recomputed_from_the_results(base):
    """The EBITDA margin's and capex per MW's percentiles from the factory KPIs directly."""
    table = calibration_table(base, paths=300, seed=3)
    res = finmodel.simulate(base, paths=300, seed=3)
    giga = res.factory_kpis[res.factory_kpis["factory"].str.contains("gigafactory")]
    margin = np.percentile(giga["ebitda_margin"], [10, 50, 90])
    np.testing.assert_allclose(table.loc["ebitda_margin", ["p10", "p50", "p90"]].to_numpy(float),
                               margin, rtol=1e-10)
    per_mw = np.percentile(giga["capex_initial_eur_m"] / giga["facility_mw"], [10, 50, 90])
    np.testing.assert_allclose(table.loc["capex_per_mw", ["p10", "p50", "p90"]].to_numpy(float),
                               per_mw, rtol=1e-10)
    assert table.loc["ebitda_margin", "judgement"].startswith(("above", "within", "below"))


def test_calibration_cli_writes_the_report(tmp_path, capsys):
    out = tmp_path / "calibration.md"
    assert main(["calibration", "--paths", "64", "--out", str(out)]) == 0
    assert out.read_text().startswith("# Calibration report")
    assert main(["calibration", "nonexistent_preset"]) == 2
    assert "nonexistent_preset" in capsys.readouterr().err


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_is_finite(base, metric):
    table = calibration_table(base, paths=64)
    assert np.isfinite(table.loc[metric, ["p10", "p50", "p90"]].to_numpy(float)).all()
