"""The hostile-input corpus (tests/data/hostile) against every surface that takes user text:
the loader, the CLI, the Excel export and the app. User text never becomes a path that is
read, a spreadsheet formula or markup, and every problem is a message, never a traceback."""

from __future__ import annotations

import errno
import os
import re
import stat

import openpyxl
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

import finmodel
from finmodel import excel
from finmodel.cli import main
from finmodel.ui import MAX_UPLOAD_MB, UPLOAD, file_stem, literal

HOSTILE = ROOT / "tests" / "data" / "hostile"
EXTENDS = sorted(HOSTILE.glob("extends_*.toml"))
# text that would show that a file outside the presets was read
LEAKS = ("root:", "/bin/", "PATH=", "HOME=", "hatchling", "build-system", "testpaths")


def text(name: str) -> str:
    return (HOSTILE / name).read_text(encoding="utf-8")


def hostile_strings(sc: finmodel.Scenario) -> list[str]:
    """The user's text in a scenario (a preset's own name, e.g. "base", is not)."""
    texts = (sc.name, sc.description, *(f.name for f in sc.factories))
    return [s for s in texts if len(s) >= 4 and s not in finmodel.list_scenarios()]


# -- the loader --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXTENDS, ids=[p.stem for p in EXTENDS])
def test_untrusted_text_may_extend_only_a_preset_and_reads_no_file(path):
    with pytest.raises(finmodel.ScenarioError) as info:
        finmodel.loads_scenario(path.read_text(encoding="utf-8"), source=path.name)
    message = str(info.value)
    assert "extends" in message and "not a shipped preset" in message
    assert not any(leak in message for leak in LEAKS), message


def test_trusted_files_read_only_toml_files_and_presets(tmp_path):
    # a scenario file on disk may extend another .toml file, but never a file of another kind
    for target in ("/etc/passwd", "/proc/self/environ", "../../../../etc/passwd", str(tmp_path)):
        mine = tmp_path / "mine.toml"
        mine.write_text(f'extends = "{target}"\n', encoding="utf-8")
        with pytest.raises(finmodel.ScenarioError, match="no such preset") as info:
            finmodel.load_scenario(mine)
        assert not any(leak in str(info.value) for leak in LEAKS)
    (tmp_path / "folder.toml").mkdir()
    mine.write_text('extends = "folder.toml"\n', encoding="utf-8")
    with pytest.raises(finmodel.ScenarioError, match="is a folder"):
        finmodel.load_scenario(mine)


def test_byte_order_mark_and_empty_files():
    assert finmodel.loads_scenario(text("bom.toml")).name == "saved with a byte-order mark"
    assert finmodel.load_scenario(HOSTILE / "bom.toml").name == "saved with a byte-order mark"
    for name in ("empty.toml", "blank.toml"):
        with pytest.raises(finmodel.ScenarioError, match="the file is empty"):
            finmodel.loads_scenario(text(name))


def test_control_characters_are_refused_naming_the_field():
    with pytest.raises(finmodel.ScenarioError) as info:
        finmodel.loads_scenario(text("control_characters.toml"))
    problems = {p.path: p.message for p in info.value.problems}
    assert set(problems) == {"name", "description", "factories[0].name"}
    assert "U+0007 at position 4" in problems["name"]
    assert "U+001B" in problems["description"] and "U+0000" in problems["factories[0].name"]
    # tabs and line breaks are fine in free text, not in a name
    base = finmodel.load_scenario("base")
    assert base.with_updates({"description": "two\nlines\tand a tab"}).description.count("\n") == 1
    with pytest.raises(finmodel.ScenarioError, match="U\\+000A"):
        base.with_updates({"factories[1].name": "two\nlines"})
    with pytest.raises(finmodel.ScenarioError, match="U\\+FFFF"):
        base.with_updates({"tranches[0].name": "non\uffffcharacter"})


# -- the CLI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*EXTENDS, HOSTILE / "control_characters.toml", HOSTILE / "empty.toml"],
                         ids=lambda p: p.stem)
def test_cli_validate_reports_hostile_files_without_reading_other_files(path, capsys):
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err
    if path.name != "extends_server_toml.toml":  # a .toml beside the user's file is theirs to read
        assert not any(leak in captured.err for leak in LEAKS), captured.err


def test_cli_export_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    assert main(["export", "base", str(tmp_path)]) == 2  # a folder
    assert main(["export", "base", str(tmp_path / "folder.xlsx")]) == 0
    (tmp_path / "taken.xlsx").mkdir()
    assert main(["export", "base", str(tmp_path / "taken.xlsx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "must end in .xlsx" in err[0], err
    assert err[1] == f"error: path = '{tmp_path / 'taken.xlsx'}': cannot write: is a folder; give a file name"
    # a read-only or full disk: the old file stays as it was
    old = tmp_path / "folder.xlsx"
    before = old.read_bytes()
    for code in (errno.EROFS, errno.ENOSPC):
        def fail(*_args, code=code):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "replace", fail)
        assert main(["export", "base", str(old)]) == 2
        monkeypatch.undo()
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and os.strerror(code) in err, err
        assert old.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.xlsx", "taken.xlsx"]
    # a missing parent folder is created (documented)
    assert main(["export", "base", str(tmp_path / "new" / "deeper" / "b.xlsx")]) == 0


def test_written_files_get_the_users_permissions(tmp_path):
    base = finmodel.load_scenario("base")
    old = os.umask(0o022)
    try:
        new = finmodel.export_excel(base, tmp_path / "new.xlsx")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        kept = tmp_path / "kept.xlsx"
        kept.write_bytes(b"")
        kept.chmod(0o640)
        finmodel.export_excel(base, kept)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    finally:
        os.umask(old)


# -- the Excel export ----------------------------------------------------------------------------

QUOTED_SHEET = re.compile(r"'((?:[^']|'')+)'!")
PLAIN_SHEET = re.compile(r"(?<![A-Za-z0-9_.'\"])([A-Za-z][A-Za-z0-9_]*)!")


@pytest.mark.parametrize("name", ["formulas.toml", "sheet_names.toml", "markdown.toml"])
def test_no_formula_holds_user_text_and_every_reference_names_a_real_sheet(tmp_path, name):
    sc = finmodel.load_scenario(HOSTILE / name)
    res = finmodel.simulate(sc, paths=64, seed=1)
    wb = openpyxl.load_workbook(finmodel.export_excel(sc, tmp_path / "h.xlsx", results=res))
    titles = excel.sheet_titles(sc)
    assert len({t.casefold() for t in wb.sheetnames}) == len(wb.sheetnames)
    first = wb.sheetnames.index("Sizing") + 1  # the factory sheets follow the workbook's own
    assert wb.sheetnames[first:first + len(titles)] == titles  # each under its own name
    own = {s.casefold() for s in excel.RESERVED_SHEETS}
    assert not any(t.casefold() in own for t in titles)
    user = [s for s in hostile_strings(sc) if s.casefold() not in own]  # "Engine!" is the workbook's
    texts, formulas = 0, 0
    defined = re.compile(r"\b(" + "|".join(map(re.escape, wb.defined_names)) + r")\b")  # the inputs' names
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                if not isinstance(cell.value, str):
                    continue
                if cell.data_type == "f":
                    formulas += 1
                    for sheet in QUOTED_SHEET.findall(cell.value):
                        assert sheet.replace("''", "'") in wb.sheetnames, (ws.title, cell.coordinate)
                    bare = defined.sub("", QUOTED_SHEET.sub("", cell.value))
                    for sheet in PLAIN_SHEET.findall(bare):
                        assert sheet in wb.sheetnames, (ws.title, cell.coordinate, sheet)
                    assert not any(s in bare for s in user), (ws.title, cell.coordinate, cell.value)
                elif any(s in cell.value for s in user):
                    texts += 1
                    assert cell.data_type == "s"
    assert texts >= 3 * len(titles) and formulas > 1000


# -- the app ---------------------------------------------------------------------------------------


def upload(app: AppTest, name: str, data: bytes) -> AppTest:
    if app.sidebar.selectbox[0].value != UPLOAD:
        app.sidebar.selectbox[0].select(UPLOAD).run()
    app.sidebar.get("file_uploader")[0].set_value((name, data, "text/plain"))
    return app.run()


def everything_shown(app: AppTest) -> str:
    parts = []
    for kind in ("error", "code", "markdown", "caption", "text", "subheader", "info", "warning"):
        parts += [str(e.value) for e in app.get(kind)]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def app():
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()


@pytest.mark.parametrize("path", sorted(HOSTILE.glob("*.toml")), ids=lambda p: p.stem)
def test_the_app_shows_hostile_uploads_as_text_and_never_a_traceback(app, path):
    upload(app, path.name, path.read_bytes())
    assert not app.exception
    shown = everything_shown(app)
    assert not any(leak in shown for leak in LEAKS), shown
    try:
        sc = finmodel.loads_scenario(path.read_text(encoding="utf-8"))
    except finmodel.ScenarioError as exc:
        assert app.error and "nothing was run" in app.error[0].value
        # the problems are shown as plain text (a code block), exactly as the API words them
        assert all(str(p) in app.code[0].value for p in exc.problems)
        return
    assert not app.error
    assert app.subheader[0].value == literal(sc.name)


def test_an_oversized_upload_is_refused_with_a_message(app):
    big = b'extends = "base"\n' + b"# padding\n" * (MAX_UPLOAD_MB * 110_000)
    upload(app, "big.toml", big)
    assert not app.exception and "at most 1 MB" in app.error[0].value


def test_literal_and_file_stem():
    assert literal("base-edited") == "base-edited"
    assert literal("- item") == "\\- item" and literal("12. twelve") == "12\\. twelve"
    assert literal(":x: **b**") == "\\:x\\: \\*\\*b\\*\\*"
    assert file_stem("../../etc/passwd") == "etc_passwd" and file_stem("...") == "scenario"
    assert file_stem("=1+2 <b>") == "1_2__b" and file_stem("base-edited") == "base-edited"
