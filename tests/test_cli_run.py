"""finmodel run: summary, files written atomically, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from finmodel import report
from finmodel.cli import main


def test_run_writes_every_file(tmp_path, capsys):
    out = tmp_path / "base"
    assert main(["run", "base", "--paths", "300", "--seed", "3", "--out", str(out)]) == 0
    text = capsys.readouterr()
    assert "project_irr" in text.out and "300 paths" in text.out
    assert "100% 300/300 paths" in text.err
    names = {p.name for p in out.iterdir()}
    assert names == {"summary.csv", "risk.csv", "path_kpis.csv", "factory_kpis.csv",
                     "tranche_kpis.csv", "inputs.csv", "fan.csv", "scenario.toml", "report.html"}
    risk = pd.read_csv(out / "risk.csv", index_col="kpi")
    kpis = pd.read_csv(out / "path_kpis.csv")
    assert risk.loc["eib_loss_eur_m", "expected"] == pytest.approx(kpis["eib_loss_eur_m"].mean())
    assert len(pd.read_csv(out / "path_kpis.csv")) == 300
    assert "<h1>base</h1>" in (out / "report.html").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["base"]  # no temporary folders left


def test_rerun_replaces_and_a_failure_keeps_the_old_folder(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert main(["run", "base", "--paths", "200", "--out", str(out)]) == 0
    before = (out / "path_kpis.csv").read_text()

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_html", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["run", "base", "--paths", "100", "--out", str(out)])
    assert (out / "path_kpis.csv").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize(("args", "message"), [
    (["--paths", "0"], "paths = 0"), (["--method", "quasi"], "method = 'quasi'"),
    (["--seed", "-4"], "seed = -4"),
])
def test_bad_run_arguments_exit_2(args, message, capsys):
    assert main(["run", "base", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_compare_prints_scenarios_side_by_side(tmp_path, capsys):
    out = tmp_path / "cmp.csv"
    assert main(["compare", "four_gigafactories", "thirteen_factories", "--paths", "128",
                 "--stats", "mean,p50", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "four_gigafactories" in text and "thirteen_factories" in text
    table = pd.read_csv(out, index_col=[0, 1, 2])
    assert list(table.columns) == ["four_gigafactories", "thirteen_factories"]
    sites = table.loc[("sites_operating", "sites", "mean")]
    assert sites.tolist() == [4.0, 13.0]


@pytest.mark.parametrize(("args", "message"), [
    (["base", "base"], "scenario names must differ"),
    (["base", "--stats", "p7"], "stats = ['p7']"),
    (["base", "nope"], "nope"),
])
def test_bad_compare_arguments_exit_2(args, message, capsys):
    assert main(["compare", *args, "--paths", "16"]) == 2
    assert message in capsys.readouterr().err
