"""The sql tool's ``files_root``: the database, ATTACH and VACUUM INTO stay inside it, enforced
at run time (the statement's tokens, then an SQLite authorizer) in the real worker."""

from __future__ import annotations

from conveyor_sgl.runtime.run_tool import run_tool


def test_attach_and_vacuum_into_stay_inside_the_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    config = {"files_root": str(root), "database": "main.db"}
    inside = f"ATTACH DATABASE '{root / 'other.db'}' AS o;\nCREATE TABLE o.t(x);\n"
    result = run_tool("sql", inside, config=config, timeout=20)
    assert result.status == "ok", result.error
    assert (root / "main.db").exists() and (root / "other.db").exists()
    for sql in (
        f"ATTACH DATABASE '{tmp_path / 'out.db'}' AS o;\n",
        f"ATTACH DATABASE '{root}/../out.db' AS o;\n",
        f"VACUUM INTO '{tmp_path / 'out.db'}';\n",
    ):
        result = run_tool("sql", sql, config=config, timeout=20)
        assert result.status == "error", sql
        # The statement's tokens are checked before SQLite sees it (the authorizer is the
        # second check: tests/tools/test_tool_sql_file_literals.py).
        assert result.error.startswith("statement 1: SqlFileError: "), result.error
        assert "is outside files_root" in result.error
    assert not (tmp_path / "out.db").exists()


def test_an_empty_root_allows_memory_only_and_no_root_allows_any_file(tmp_path):
    memory = run_tool("sql", "SELECT 1 AS one;\n", config={"files_root": ""}, timeout=20)
    assert memory.status == "ok" and "one" in memory.output
    attach = f"ATTACH DATABASE '{tmp_path / 'a.db'}' AS a;\n"
    refused = run_tool("sql", attach, config={"files_root": ""}, timeout=20)
    assert refused.status == "error" and not (tmp_path / "a.db").exists()
    # Without a files root the kernel confines sql to its database's directory: the SQL is
    # model-written, whoever set up the tool.
    elsewhere = run_tool("sql", attach, timeout=20)
    assert elsewhere.status == "error" and not (tmp_path / "a.db").exists()
    beside = run_tool("sql", attach, config={"database": str(tmp_path / "main.db")}, timeout=20)
    assert beside.status == "ok" and (tmp_path / "a.db").exists()
