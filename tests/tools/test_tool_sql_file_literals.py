"""The sql tool under a ``files_root``: ATTACH and VACUUM INTO name a file only as one plain
string literal inside the root. An expression (concatenation, ``char()``, a subquery, NULL, a
parameter), ``''`` or a URI filename is refused by the statement's tokens, and SQLite's
authorizer refuses it again where the token check is bypassed; nothing is created outside."""

from __future__ import annotations

import os
import sqlite3

import pytest
from tool_drive import drive

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.tools.sql import (
    SqlFileError,
    SqlTool,
    attach_guard,
    check_file_statements,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def root(tmp_path):
    inside = tmp_path / "root"
    inside.mkdir()
    return inside


def _escapes(out: str) -> list[str]:
    """ATTACH / VACUUM INTO statements that would create ``out`` (outside the root) if the
    file expression were evaluated; each must be refused."""
    head, tail = out[:5], out[5:]
    codes = ",".join(str(ord(c)) for c in out)
    return [
        f"ATTACH '{head}' || '{tail}' AS a",
        f"ATTACH DATABASE '{head}' || '{tail}' AS a",
        f"attach database '{head}'||'{tail}' as a",
        f"AtTaCh DaTaBaSe '{head}' || '{tail}' aS a",
        f"ATTACH char({codes}) AS a",
        f"ATTACH (SELECT '{out}') AS a",
        f"ATTACH ((('{out}'))) AS a",
        f"ATTACH (WITH f(n) AS (SELECT '{out}') SELECT n FROM f) AS a",  # noqa: S608
        f"ATTACH printf('%s', '{out}') AS a",
        f"ATTACH '{out}' COLLATE nocase AS a",
        f"ATTACH CAST('{out}' AS TEXT) AS a",
        f"ATTACH /* c */ DATABASE /* c */ '{head}' /* c */ || /* c */ '{tail}' AS a",
        f"ATTACH -- c\n'{head}' -- c\n|| '{tail}' AS a",
        f"ATTACH x'{out.encode().hex()}' AS a",
        f'ATTACH "{out}" AS a',
        f"EXPLAIN ATTACH '{head}' || '{tail}' AS a",
        f"VACUUM INTO '{head}' || '{tail}'",
        f"VACUUM main INTO '{head}' || '{tail}'",
        f"VACUUM \"main\" INTO printf('%s', '{out}')",
        f"vacuum into char({codes})",
        f"VACUUM INTO (SELECT '{out}')",
        f"VACUUM INTO '{out}'",
        f"ATTACH '{out}' AS a",
        f"ATTACH 'file:{out}?mode=rwc' AS a",
        f"ATTACH 'FILE:{out}' AS a",
        f"VACUUM INTO 'file:{out}'",
        "ATTACH NULL AS a",
        "ATTACH ? AS a",
        "ATTACH :name AS a",
        "ATTACH '' AS a",
        "VACUUM INTO NULL",
        "VACUUM INTO ''",
        "VACUUM INTO ?",
    ]


def _allowed(root) -> list[str]:
    inside = root / "in.db"
    return [
        f"ATTACH '{inside}' AS a",
        f"ATTACH DATABASE '{inside}' AS a",
        f"attach /* c */ database -- c\n '{inside}' /**/ as a",
        f"ATTACH '{root}/it''s.db' AS a",
        "ATTACH ':memory:' AS m",
        "VACUUM",
        "VACUUM main",
        f"VACUUM INTO '{root / 'copy.db'}'",
        f"VACUUM main INTO '{root / 'copy.db'}'",
        "SELECT 'ATTACH ''x'' || ''y'' AS a; VACUUM INTO NULL'",
        "SELECT 1 AS attach, 2 AS vacuum",
        "-- ATTACH 'a' || 'b' AS c;\nSELECT 1",
        "/* ATTACH 'a' || 'b' AS c; */ SELECT 1",
        "SELECT 1 AS \"; ATTACH 'a' || 'b' AS c\"",
        "SELECT 1 AS [; ATTACH 'a' || 'b' AS c]",
        "SELECT 1 AS `; ATTACH 'a' || 'b' AS c`",
    ]


def test_each_escape_is_refused_by_the_tokens(tmp_path, root):
    for sql in _escapes(str(tmp_path / "out.db")):
        with pytest.raises(SqlFileError) as refused:
            check_file_statements(sql, str(root))
        assert isinstance(refused.value, ConveyorError) and isinstance(refused.value, ValueError)
        message = str(refused.value)
        assert "files_root" in message and ("ATTACH" in message or "VACUUM INTO" in message), sql


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("ATTACH 'a' || 'b' AS c", "one plain string literal"),
        ("ATTACH NULL AS c", "one plain string literal"),
        ("VACUUM INTO printf('x')", "VACUUM INTO takes its file only as one plain string"),
        ("ATTACH '' AS c", "a temporary database file"),
        ("ATTACH 'file:x.db?mode=rwc' AS c", "URI filenames are not allowed"),
        ("ATTACH '/elsewhere/x.db' AS c", "is outside files_root"),
    ],
)
def test_the_refusal_names_the_rule(root, sql, words):
    with pytest.raises(SqlFileError, match=words):
        check_file_statements(sql, str(root))


def test_literals_inside_the_root_and_other_statements_pass(root):
    for sql in _allowed(root):
        check_file_statements(sql, str(root))


def test_a_statement_after_a_semicolon_in_a_script_is_checked_too(tmp_path, root):
    out = tmp_path / "out.db"
    for script in (
        f"SELECT 1; ATTACH '{out}' || '' AS a;",
        f";;ATTACH '{out}' || '' AS a",
        f"SELECT ';'; /* ; */ ATTACH '{out}' || '' AS a",
        # A TCL-style variable may hold a quote: SQLite reads $v(') as one token.
        f"SELECT $v(') ; ATTACH '{out}' || '' AS a; --'",
        f"CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END; VACUUM INTO '{out}' || ''",
    ):
        with pytest.raises(SqlFileError):
            check_file_statements(script, str(root))


def test_an_empty_root_allows_memory_only(tmp_path):
    check_file_statements("ATTACH ':memory:' AS m", "")
    with pytest.raises(SqlFileError, match="memory only"):
        check_file_statements(f"ATTACH '{tmp_path / 'a.db'}' AS a", "")
    with pytest.raises(SqlFileError, match="memory only"):
        check_file_statements(f"VACUUM INTO '{tmp_path / 'a.db'}'", "")


def test_a_symlink_out_of_the_root_is_outside(tmp_path, root):
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    with pytest.raises(SqlFileError, match="outside files_root"):
        check_file_statements(f"ATTACH '{root / 'link' / 'x.db'}' AS a", str(root))
    with pytest.raises(SqlFileError, match="outside files_root"):
        check_file_statements(f"ATTACH '{root}/../x.db' AS a", str(root))


def test_in_the_tool_every_escape_is_an_error_and_creates_nothing(tmp_path, root):
    out = tmp_path / "out.db"
    config = {"files_root": str(root), "database": "main.db"}
    for sql in _escapes(str(out)):
        result = drive(SqlTool, sql + ";\n", config).out
        assert result.status == "error", sql
        assert result.error.startswith("statement 1: SqlFileError: "), (sql, result.error)
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["root"]


def test_in_the_tool_literals_inside_the_root_work(root):
    # Autocommit: a VACUUM after the call's writes cannot run inside its transaction.
    config = {"files_root": str(root), "database": "main.db", "transaction": False}
    script = (
        f"ATTACH DATABASE '{root / 'other.db'}' AS o;\n"
        "CREATE TABLE o.t(x);\nINSERT INTO o.t VALUES (1);\n"
        "ATTACH ':memory:' AS m;\n"
        "VACUUM;\n"  # SQLite attaches '' itself for a plain VACUUM: the authorizer allows it
        f"VACUUM o INTO '{root / 'copy.db'}';\n"
        "SELECT x FROM o.t;\n"
    )
    result = drive(SqlTool, script, config).out
    assert result.status == "ok", result.error
    assert (root / "other.db").exists() and (root / "copy.db").exists()


def test_a_setup_script_is_held_to_the_same_rule(tmp_path, root):
    out = tmp_path / "out.db"
    setup = f"CREATE TABLE t(x);\nATTACH '{out}' || '' AS a;\n"
    config = {"files_root": str(root), "setup": setup}
    with pytest.raises(SqlFileError, match="setup script: ATTACH takes its file only"):
        SqlTool.check_config(config)
    with pytest.raises(SqlFileError, match="setup script: ATTACH takes its file only"):
        SqlTool().start(config)
    # A server sets files_root after the request's config was checked: start still refuses.
    SqlTool.check_config({"setup": setup})
    with pytest.raises(SqlFileError):
        SqlTool().start({"setup": setup, "files_root": ""})
    assert not out.exists()
    inside = {"files_root": str(root), "setup": f"ATTACH '{root / 's.db'}' AS s;"}
    drive(SqlTool, "SELECT 1;\n", inside)
    assert (root / "s.db").exists()


def test_without_a_root_the_client_may_name_any_file(tmp_path):
    # Client mode: the program's author is the user (README); only extensions stay off.
    out = tmp_path / "any.db"
    result = drive(SqlTool, f"ATTACH '{tmp_path}/' || 'any.db' AS a;\n").out
    assert result.status == "ok", result.error
    assert out.exists()


# The second check: the authorizer alone, as if the token check had been bypassed.

DENIED = r"not authorized|authorization denied"  # SQLite's words for an authorizer's no


def _guarded(root: str | None) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.set_authorizer(attach_guard(root))
    return db


def test_the_authorizer_alone_lets_no_escape_create_a_file(tmp_path, root):
    out = str(tmp_path / "out.db")
    db = _guarded(str(root))
    accepted = []
    for sql in _escapes(out):
        params: tuple[str, ...] | dict[str, str] = ()
        if sql in ("ATTACH ? AS a", "VACUUM INTO ?"):
            params = (out,)
        elif sql == "ATTACH :name AS a":
            params = {"name": out}
        try:
            db.execute(sql, params)
        except sqlite3.DatabaseError:
            continue
        accepted.append(sql)
        if sql.startswith("ATTACH"):
            db.execute("DETACH a")
    assert sorted(os.listdir(tmp_path)) == ["root"]
    # What SQLite ran is a private temporary database (no file of the program's naming).
    assert set(accepted) <= {"ATTACH '' AS a", "VACUUM INTO ''"}, accepted


def test_the_authorizer_denies_an_unseen_filename(tmp_path, root):
    db = _guarded(str(root))
    for sql in (
        f"ATTACH '{tmp_path}/' || 'a.db' AS a",
        "ATTACH (SELECT 'a.db') AS a",
        "ATTACH NULL AS a",
    ):
        with pytest.raises(sqlite3.DatabaseError, match=DENIED):
            db.execute(sql)
    with pytest.raises(sqlite3.DatabaseError, match=DENIED):
        db.execute("ATTACH ? AS a", (str(tmp_path / "a.db"),))
    # VACUUM INTO evaluates its expression first and attaches the result: checked as a path.
    with pytest.raises(sqlite3.DatabaseError):
        db.execute(f"VACUUM INTO printf('%s', '{tmp_path / 'v.db'}')")
    db.execute(f"ATTACH '{root / 'ok.db'}' AS ok")
    db.execute("VACUUM")
    assert sorted(os.listdir(tmp_path)) == ["root"]


def test_temp_file_pragmas_are_refused_under_a_root(root):
    db = _guarded(str(root))
    for pragma in ("temp_store_directory", "data_store_directory"):
        with pytest.raises(sqlite3.DatabaseError, match=DENIED):
            db.execute(f"PRAGMA {pragma} = '/tmp'")
    db.execute("PRAGMA temp_store = MEMORY")  # other pragmas as before


@pytest.mark.parametrize("root_option", [None, ""])
def test_load_extension_is_off_in_every_mode(root_option):
    config = {} if root_option is None else {"files_root": root_option}
    for sql in ("SELECT load_extension('/tmp/x.so');", "SELECT fts3_tokenizer('simple');"):
        result = drive(SqlTool, sql + "\n", config).out
        assert result.status == "error", sql
        assert "not authorized" in result.error or "no such function" in result.error
    db = _guarded(root_option)
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("SELECT load_extension('/tmp/x.so')")
