"""The Streamlit app (issue 3 scope): assumptions shown, bad input shown as a message."""

from __future__ import annotations

import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

import finmodel
from finmodel.ui import UPLOAD

APP = str(ROOT / "app.py")


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def test_default_is_base_with_assumptions_units_and_sources(app, base):
    assert not app.exception
    assert app.sidebar.selectbox[0].value == "base"
    assert app.subheader[0].value == "base"
    table = app.dataframe[1].value
    row = table.set_index("field").loc["eib.tenor_years"]
    assert row["value"] == "15" and row["unit"] == "years" and row["source"].startswith("[S12]")
    assert app.metric[0].value == str(base.n_factories)
    shown = {m.label: m.value for m in app.metric}
    kpis = finmodel.base_case(base).path_kpis.iloc[0]
    assert shown["Portfolio project IRR"] == f"{kpis['project_irr']:.1%}"
    assert shown["Project NPV"] == f"EUR {kpis['project_npv_eur_m'] / 1000:,.1f}B"


def test_switching_preset(app):
    app.sidebar.selectbox[0].select("thirteen_factories").run()
    assert not app.exception
    assert app.subheader[0].value == "thirteen_factories"
    assert app.metric[0].value == "13"


def test_upload_valid_and_malformed_toml(app):
    app.sidebar.selectbox[0].select(UPLOAD).run()
    uploader = app.sidebar.get("file_uploader")[0]
    uploader.set_value(("mine.toml", b'extends = "base"\nname = "mine"\n', "application/toml"))
    app.run()
    assert not app.exception and app.subheader[0].value == "mine"

    uploader = app.sidebar.get("file_uploader")[0]
    uploader.set_value(("bad.toml", b'extends = "base"\n[eib]\ntenor_yeras = 3\n', "text/plain"))
    app.run()
    assert not app.exception
    assert "1 problem" in app.error[0].value
    assert "tenor_yeras" in app.markdown[0].value and "tenor_years" in app.markdown[0].value

    uploader = app.sidebar.get("file_uploader")[0]
    uploader.set_value(("broken.toml", b"[eib\n", "text/plain"))
    app.run()
    assert not app.exception
    assert "malformed TOML" in " ".join(m.value for m in app.markdown)

    uploader = app.sidebar.get("file_uploader")[0]
    uploader.set_value(("binary.toml", b"\xff\xfe\x00", "text/plain"))
    app.run()
    assert not app.exception and "not a UTF-8 text file" in app.error[0].value


def test_invalid_preset_shows_message_not_traceback(tmp_path, monkeypatch):
    (tmp_path / "base.toml").write_text((ROOT / "assumptions" / "base.toml").read_text()
                                        .replace("tenor_years = 15", "tenor_years = -15"))
    monkeypatch.setenv("FINMODEL_ASSUMPTIONS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "eib.tenor_years" in " ".join(m.value for m in at.markdown)
    assert finmodel.list_scenarios() == ["base"]
